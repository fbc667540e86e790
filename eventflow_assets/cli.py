"""The `eventflow` command: up, services, env, produce, status."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import threading
from pathlib import Path

from eventflow_assets.errors import EventFlowError
from eventflow_assets.ingestion.generator import Anomalies, EventGenerator
from eventflow_assets.ingestion.producer import DEFAULT_DELAY_MS, ProduceStats, produce
from eventflow_assets.ingestion.topics import provision_topics
from eventflow_assets.local.kafka_broker import KAFKA_VERSION
from eventflow_assets.local.spark_cluster import DEFAULT_MASTER_PORT
from eventflow_assets.local.stack import (
    DEFAULT_KAFKA_PORT,
    DEFAULT_POSTGRES_PORT,
    LocalStack,
    env_exports,
    resolve_endpoints,
    running_stack_state,
)
from eventflow_assets.processing.java import check_java
from eventflow_assets.settings import BOOTSTRAP_VAR, POSTGRES_VAR, Settings, redact_url
from eventflow_assets.storage.schema import apply_schema

DEFAULT_DAGSTER_PORT = 3000
DEFAULT_DASHBOARD_PORT = 8501

ENVIRONMENT_HELP = """environment:
  EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS  Kafka to use (unset: `up`/`services` start an embedded Apache Kafka)
  EVENTFLOW_KAFKA_<PROPERTY>         any other client property, e.g. EVENTFLOW_KAFKA_SECURITY_PROTOCOL
  EVENTFLOW_SPARK_KAFKA_<PROPERTY>   a property for Spark's Java Kafka client, verbatim
                                     (the common security settings are translated from EVENTFLOW_KAFKA_*)
  EVENTFLOW_POSTGRES_URL             PostgreSQL to use (unset: `up`/`services` start an embedded server)
  EVENTFLOW_SPARK_MASTER             Spark master for the stream and the analytics (default: local[2])
  EVENTFLOW_CHECKPOINT_LOCATION      streaming checkpoints (default: $EVENTFLOW_HOME/checkpoints)
  EVENTFLOW_HOME                     state directory (default: ./.eventflow)
"""


def _ratio(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _add_producer_options(p: argparse.ArgumentParser, *, with_count: bool) -> None:
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=_positive_float, metavar="EVENTS_PER_S",
                      help="target events per second across the three topics")
    pace.add_argument("--delay-ms", type=_positive_float, metavar="MS",
                      help=f"delay between events (default {DEFAULT_DELAY_MS:g} ms, i.e. 10 events/s; "
                           "with --count and no pace option: as fast as possible)" if with_count
                      else f"delay between events (default {DEFAULT_DELAY_MS:g} ms, i.e. 10 events/s)")
    p.add_argument("--seed", type=int, help="seed for reproducible users, products, ids and choices")
    p.add_argument("--replication-factor", type=int,
                   help="replication factor for topics created now (default: the cluster's, at most 3)")


def _add_service_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kafka-port", type=int, default=DEFAULT_KAFKA_PORT,
                   help=f"client port of the embedded Kafka on 127.0.0.1; with 3 brokers, this port and the next "
                        f"two (default {DEFAULT_KAFKA_PORT})")
    p.add_argument("--kafka-brokers", type=int, choices=[1, 3], default=1,
                   help="embedded Kafka nodes: 1, or 3 (topics replicated 3 times, min.insync.replicas=2)")
    p.add_argument("--postgres-port", type=int, default=DEFAULT_POSTGRES_PORT,
                   help=f"port of the embedded PostgreSQL on 127.0.0.1 (default {DEFAULT_POSTGRES_PORT})")
    p.add_argument("--spark-workers", type=_non_negative_int, default=0, metavar="N",
                   help="also run a Spark standalone cluster: a master and N workers of 1 core each, on 127.0.0.1; "
                        "the stream and the analytics then run on it (default 0: no cluster, Spark runs local[2])")
    p.add_argument("--spark-master-port", type=int, default=DEFAULT_MASTER_PORT,
                   help=f"port of that cluster's master (default {DEFAULT_MASTER_PORT})")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from eventflow_assets.local.kafka_broker import KAFKA_VERSION

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"
    return (f"eventflow {installed('eventflow')} (Apache Kafka {KAFKA_VERSION} embedded, Spark {installed('pyspark')}, "
            f"Dagster {installed('dagster')})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eventflow", description="EventFlow: real-time event analytics on Kafka, Spark and PostgreSQL.",
        epilog=ENVIRONMENT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=_version(),
                        help="print EventFlow's version and those of the parts it runs, then exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="run the platform until Ctrl-C",
                        description="Start embedded Kafka and PostgreSQL unless configured, provision the topics "
                                    "and the schema, start Dagster (`dg dev`: UI, daemon, and the sensor that "
                                    "keeps streaming_job running), the live dashboard (--dashboard-port), with "
                                    "--spark-workers N a local Spark cluster, and the event producer until "
                                    "Ctrl-C, which stops all of it.", epilog=ENVIRONMENT_HELP,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_service_options(up)
    up.add_argument("--dagster-port", type=int, default=DEFAULT_DAGSTER_PORT,
                    help=f"port of the Dagster UI on 127.0.0.1 (default {DEFAULT_DAGSTER_PORT})")
    up.add_argument("--dashboard-port", type=int, default=DEFAULT_DASHBOARD_PORT,
                    help=f"port of the live dashboard on 127.0.0.1 (default {DEFAULT_DASHBOARD_PORT})")
    up.add_argument("--no-producer", action="store_true", help="do not run the event producer")
    up.add_argument("--no-streaming", action="store_true",
                    help="do not stream: the streaming_supervisor sensor skips instead of launching streaming_job")
    _add_producer_options(up, with_count=False)

    services = sub.add_parser(
        "services", help="run only the embedded Kafka and PostgreSQL until Ctrl-C",
        description="Start the embedded services on 127.0.0.1 under EVENTFLOW_HOME (Apache Kafka in KRaft mode, "
                    "PostgreSQL), provision the three topics and the database schema, and keep them running until "
                    "Ctrl-C or SIGTERM. Their data survives a restart. Another shell gets their addresses with "
                    "`eval \"$(eventflow env)\"`.", epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_service_options(services)

    sub.add_parser("env", help="print `export` lines for the running services",
                   description="For the services of `eventflow up` or `eventflow services` running on this "
                               "EVENTFLOW_HOME, print POSIX shell `export NAME=value` lines (the database password "
                               "included): `eval \"$(eventflow env)\"`. Exits 2 when nothing runs.",
                   epilog=ENVIRONMENT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)

    prod = sub.add_parser("produce", help="publish generated events",
                          description="Publish generated events to the three topics (creating missing topics "
                                      "first). With --count, exit once exactly N events are acknowledged; the "
                                      "exit status is 1 if any delivery failed.", epilog=ENVIRONMENT_HELP,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    prod.add_argument("--count", type=_non_negative_int, metavar="N", help="number of events to publish")
    prod.add_argument("--duration", type=_positive_float, metavar="SECONDS", help="stop after this long")
    _add_producer_options(prod, with_count=True)
    prod.add_argument("--out-of-order", type=_ratio, default=0.0, metavar="RATIO",
                      help="fraction of events with an earlier time, still within the 10 min watermark")
    prod.add_argument("--late", type=_ratio, default=0.0, metavar="RATIO",
                      help="fraction of events older than the watermark (15-60 min old)")
    prod.add_argument("--malformed", type=_ratio, default=0.0, metavar="RATIO",
                      help="fraction of records that break the contract (bad JSON, missing field, wrong type, "
                           "bad price, currency or time)")
    prod.add_argument("--quiet", action="store_true", help="no progress display")

    status = sub.add_parser("status", help="topics, streaming progress, table row counts, analytics",
                            description="Show end offsets per topic partition, streaming progress (watermark, "
                                        "lag), row counts of the EventFlow tables, and for the analytics their rows, "
                                        "when they were last computed and the latest window of the revenue "
                                        "trends. Exit status: 0 when every streaming query committed a batch in the "
                                        "last 2 minutes or has nothing waiting; 1 when a query never ran, or has "
                                        "records waiting and no commit for 2 minutes; 2 when Kafka or PostgreSQL "
                                        "cannot be reached.", epilog=ENVIRONMENT_HELP,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    _add_dashboard_parser(sub)
    return parser


def _add_dashboard_parser(sub) -> None:
    dash = sub.add_parser(
        "dashboard", help="serve the live dashboard of the tables",
        description="Serve a web dashboard of the tables on 127.0.0.1 until Ctrl-C: revenue by currency per "
                    "5-minute window, orders and average order value, the conversion funnel and top converting "
                    "users, customer segments, and the stream's health (events/s per topic, lag, watermark delay, "
                    "rejected records). The page refreshes itself. It reads EVENTFLOW_POSTGRES_READ_URL if set, "
                    "else the database of EVENTFLOW_POSTGRES_URL or of the running local stack.",
        epilog="examples:\n  eventflow dashboard                # http://127.0.0.1:8501\n"
               "  eventflow dashboard --port 8600\n\n" + ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    dash.add_argument("--port", type=int, default=DEFAULT_DASHBOARD_PORT,
                      help=f"port to serve on (default {DEFAULT_DASHBOARD_PORT})")
    dash.add_argument("--host", default="127.0.0.1",
                      help="address to listen on (default 127.0.0.1; 0.0.0.0 only inside a container)")
    dash.add_argument("--dagster-url", default=os.environ.get("EVENTFLOW_DAGSTER_URL", "http://127.0.0.1:3000"),
                      help="the Dagster UI the dashboard links to (default $EVENTFLOW_DAGSTER_URL, else "
                           "http://127.0.0.1:3000)")
    dash.add_argument("--refresh", type=_positive_float, default=5.0, metavar="SECONDS",
                      help="how often the page re-reads the tables (default 5)")


def _rate(args, default_unpaced: bool) -> float | None:
    if args.rate is not None:
        return args.rate
    if args.delay_ms is not None:
        return 1000.0 / args.delay_ms
    return None if default_unpaced else 1000.0 / DEFAULT_DELAY_MS


class _Progress:
    """One status line, rewritten in place on a terminal, printed every 10 s otherwise."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.tty = stream.isatty()
        self.calls = 0

    def __call__(self, stats: ProduceStats) -> None:
        self.calls += 1
        line = (f"sent {stats.sent:,}  acked {stats.delivered:,}  failed {stats.failed:,}  "
                f"{stats.rate:,.0f} events/s")
        if self.tty:
            self.stream.write("\r" + line.ljust(78))
            self.stream.flush()
        elif self.calls % 10 == 0:
            print(line, file=self.stream, flush=True)

    def done(self) -> None:
        if self.tty and self.calls:
            self.stream.write("\n")


def _report(stats: ProduceStats) -> None:
    print(f"{stats.delivered:,} events acknowledged in {stats.elapsed:.1f}s ({stats.rate:,.0f} events/s): "
          + ", ".join(f"{t} {n:,}" for t, n in sorted(stats.by_topic.items())))
    if stats.failed:
        print(f"{stats.failed:,} deliveries FAILED:", file=sys.stderr)
        for reason, n in stats.errors.most_common():
            print(f"  {n:,} x {reason}", file=sys.stderr)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        print("\nstopping (again to force)...", file=sys.stderr)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def _dagster_env(endpoints, settings: Settings, dagster_home: Path, streaming: bool) -> dict[str, str]:
    from eventflow_assets.orchestration.instance import instance_env
    from eventflow_assets.orchestration.sensors import SUPERVISOR_SWITCH

    return {**os.environ, **instance_env(dagster_home, endpoints.dagster_postgres_url),
            "EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS": endpoints.kafka_bootstrap_servers,
            "EVENTFLOW_POSTGRES_URL": endpoints.postgres_url, "EVENTFLOW_HOME": str(settings.home),
            "PYSPARK_PYTHON": sys.executable, SUPERVISOR_SWITCH: "on" if streaming else "off"}


def _watch(dagster, stop: threading.Event) -> None:
    """Stop everything if `dg dev` dies, and say where its log is."""
    proc = dagster.proc

    def watch() -> None:
        while not stop.is_set():
            if proc.poll() is not None:
                print(f"\n`dg dev` exited with status {proc.returncode}; see {dagster.log_path}",
                      file=sys.stderr)
                dagster.failed = True
                stop.set()
                return
            stop.wait(1.0)

    threading.Thread(target=watch, daemon=True).start()


def cmd_up(args, settings: Settings) -> int:
    from eventflow_assets.dashboard.server import DashboardProcess
    from eventflow_assets.orchestration.dev_server import DagsterDev
    from eventflow_assets.orchestration.instance import cancel_leftover_runs, open_instance, write_instance

    check_java()
    dagster_home = settings.home / "dagster"
    dagster = DagsterDev(args.dagster_port, {}, settings.home / "logs" / "dagster.log")
    dagster.check_port()
    dashboard = DashboardProcess(args.dashboard_port, dagster.url, settings.home / "logs" / "dashboard.log")
    dashboard.check_port()
    stop = _stop_on_signals()
    stats = None
    with LocalStack(settings, args.kafka_port, args.postgres_port, args.kafka_brokers,
                    spark_workers=args.spark_workers, spark_master_port=args.spark_master_port) as stack:
        ep = stack.endpoints
        _provision(stack, settings, args.replication_factor)
        dagster.env = _dagster_env(ep, settings, dagster_home, streaming=not args.no_streaming)
        write_instance(dagster_home, ep.dagster_postgres_url)
        instance = open_instance(dagster_home, {k: v for k, v in dagster.env.items() if k.startswith("DAGSTER_")})
        leftovers = cancel_leftover_runs(instance)
        if leftovers:
            print(f"dagster:    marked {len(leftovers)} run(s) left unfinished by an earlier `up` as canceled")
        try:
            dashboard.start(dagster.env)
            dagster.start()
            print(f"Dagster:    {dagster.url}  (DAGSTER_HOME {dagster_home}, log {dagster.log_path})")
            dashboard.wait_ready()
            print(f"Dashboard:  {dashboard.url}  (log {dashboard.log_path})")
            print("streaming:  " + ("off (--no-streaming): the streaming_supervisor sensor skips; launch "
                                    "streaming_job from the UI to stream" if args.no_streaming else
                                    "streaming_job, launched and kept running by the streaming_supervisor sensor"))
            _watch(dagster, stop)
            if args.no_producer:
                print("running; Ctrl-C stops everything")
                stop.wait()
            else:
                rate = _rate(args, default_unpaced=False)
                print(f"producer:   {rate:g} events/s; Ctrl-C stops everything")
                progress = _Progress()
                stats = produce(ep.kafka_config(), EventGenerator(seed=args.seed), rate=rate, stop=stop,
                                on_progress=progress)
                progress.done()
                _report(stats)
        finally:
            stop.set()
            dashboard.stop()
            print("stopping Dagster and its runs (the stream stops after its current batch)...", file=sys.stderr)
            killed = dagster.stop(instance)
            if killed:
                print(f"runs that did not stop in time and were killed: {', '.join(killed)}", file=sys.stderr)
            instance.dispose()
    return 1 if (stats is not None and stats.failed) or dagster.failed else 0


def _provision(stack: LocalStack, settings: Settings, replication_factor: int | None = None) -> None:
    """Print where the services are; create the topics and apply the schema."""
    ep = stack.endpoints
    brokers = f"  (embedded Apache Kafka {KAFKA_VERSION}, {stack.kafka.brokers} broker" \
              f"{'s' if stack.kafka.brokers > 1 else ''}, logs {settings.home / 'logs'})" if stack.kafka else ""
    print(f"Kafka:      {ep.kafka_bootstrap_servers}{brokers}")
    print(f"PostgreSQL: {redact_url(ep.postgres_url)}{'  (embedded)' if stack.postgres else ''}")
    if stack.spark:
        print(f"Spark:      {stack.spark.master_url}  (master UI {stack.spark.master_ui}; "
              f"{stack.spark.workers} worker{'s' if stack.spark.workers > 1 else ''}: "
              f"{', '.join(stack.spark.worker_uis)})")
    print(f"state:      {settings.home}")
    topics = provision_topics(ep.kafka_config(), replication_factor=replication_factor)
    print("topics:     " + ", ".join(f"{t} ({s})" for t, s in topics.items()))
    applied = apply_schema(ep.postgres_url)
    print(f"schema:     {'applied ' + ', '.join(map(str, applied)) if applied else 'up to date'}", flush=True)


def cmd_services(args, settings: Settings) -> int:
    if not (settings.uses_embedded_kafka or settings.uses_embedded_postgres):
        raise EventFlowError(f"nothing to run: {BOOTSTRAP_VAR} and {POSTGRES_VAR} are both set, so there is no "
                             "embedded service to start; unset one to run it locally")
    stop = _stop_on_signals()
    with LocalStack(settings, args.kafka_port, args.postgres_port, args.kafka_brokers,
                    spark_workers=args.spark_workers, spark_master_port=args.spark_master_port) as stack:
        _provision(stack, settings)
        print('running; in another shell: eval "$(eventflow env)"; Ctrl-C stops the services', flush=True)
        while not stop.wait(1.0):
            dead = stack.dead_services()
            if dead:
                raise EventFlowError(f"{', '.join(dead)} exited unexpectedly; see {settings.home / 'logs'}")
    return 0


def cmd_env(args, settings: Settings) -> int:
    state = running_stack_state(settings.home)
    if state is None:
        print(f"eventflow: no services are running on EVENTFLOW_HOME={settings.home}: start `eventflow services` "
              "or `eventflow up`", file=sys.stderr)
        return 2
    for name, value in env_exports(state):
        print(f"export {name}={shlex.quote(value)}")
    return 0


def cmd_produce(args, settings: Settings) -> int:
    endpoints = resolve_endpoints(settings)
    provision_topics(endpoints.kafka_config(), replication_factor=args.replication_factor)
    try:
        anomalies = Anomalies(args.out_of_order, args.late, args.malformed)
    except ValueError as exc:
        raise EventFlowError(str(exc)) from None
    stop = _stop_on_signals()
    progress = None if args.quiet else _Progress()
    stats = produce(endpoints.kafka_config(), EventGenerator(seed=args.seed, anomalies=anomalies),
                    count=args.count, rate=_rate(args, default_unpaced=args.count is not None),
                    duration=args.duration, stop=stop, on_progress=progress)
    if progress:
        progress.done()
    _report(stats)
    if stats.failed:
        return 1
    if args.count is not None and stats.delivered != args.count:
        print(f"stopped after {stats.delivered:,} of {args.count:,} events", file=sys.stderr)
        return 1
    return 0


def cmd_status(args, settings: Settings) -> int:
    from eventflow_assets.status import collect_status, health, render_status

    report = collect_status(resolve_endpoints(settings))
    code, problems = health(report)
    print(json.dumps({**report, "health": {"exit_status": code, "problems": problems}}, indent=2, default=str)
          if args.json else render_status(report))
    return code


def cmd_dashboard(args, settings: Settings) -> int:
    from eventflow_assets.dashboard.app import build_app
    from eventflow_assets.dashboard.server import read_url, start_server

    app = build_app(read_url(settings), args.dagster_url, args.refresh)
    stop = _stop_on_signals()
    server = start_server(app, args.port, args.host)
    print(f"Dashboard:  http://{args.host}:{args.port}  (Dagster UI {args.dagster_url}); Ctrl-C stops it", flush=True)
    try:
        stop.wait()
    finally:
        server.shutdown()
    return 0


COMMANDS = {"up": cmd_up, "services": cmd_services, "env": cmd_env, "produce": cmd_produce, "status": cmd_status,
            "dashboard": cmd_dashboard}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        return COMMANDS[args.command](args, settings)
    except EventFlowError as exc:
        print(f"eventflow: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
