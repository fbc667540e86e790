"""The `eventflow` command: one subcommand per daily task (`eventflow --help` lists them)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from urllib.parse import unquote

from eventflow_assets.errors import EventFlowError
from eventflow_assets.ingestion.events import WATERMARK_LABEL, WINDOW_LABEL
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
from eventflow_assets.settings import BOOTSTRAP_VAR, ENVIRONMENT_HELP, POSTGRES_VAR, Settings, redact_url
from eventflow_assets.storage.schema import apply_schema

DEFAULT_DAGSTER_PORT = 3000
DEFAULT_DASHBOARD_PORT = 8501
RESET_QUIET_S = 60  # a running stream records progress at least every 10 s



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
        epilog=_examples("eventflow up                      # the whole platform on this machine",
                         "eventflow status --watch          # is the stream keeping up?",
                         "eventflow logs stream -f",
                         "eventflow reset                   # start over (asks first)",
                         "eventflow <command> --help        # each command's options and examples"),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=_version(),
                        help="print EventFlow's version and those of the parts it runs, then exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="run the platform until Ctrl-C",
                        description="Start embedded Kafka and PostgreSQL unless configured, provision the topics "
                                    "and the schema, start Dagster (`dg dev`: UI, daemon, and the sensor that "
                                    "keeps streaming_job running), the live dashboard (--dashboard-port), with "
                                    "--spark-workers N a local Spark cluster, and the event producer until "
                                    "Ctrl-C, which stops all of it.",
                        epilog=_examples("eventflow up", "eventflow up --rate 1000",
                                         "eventflow up --no-producer --spark-workers 2",
                                         "eventflow up --kafka-brokers 3 --dagster-port 3001"),
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
        "services", help="run only the embedded services (Kafka, PostgreSQL, optionally a Spark cluster) until Ctrl-C",
        description="Start the embedded services on 127.0.0.1 under EVENTFLOW_HOME (Apache Kafka in KRaft mode, "
                    "PostgreSQL), provision the three topics and the database schema, and keep them running until "
                    "Ctrl-C or SIGTERM. Their data survives a restart. Another shell gets their addresses with "
                    "`eval \"$(eventflow env)\"`.",
        epilog=_examples("eventflow services", "eventflow services --kafka-brokers 3 --spark-workers 2"),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_service_options(services)

    sub.add_parser("env", help="print `export` lines for the running services",
                   description="For the services of `eventflow up` or `eventflow services` running on this "
                               "EVENTFLOW_HOME, print POSIX shell `export NAME=value` lines (the database password "
                               "included): `eval \"$(eventflow env)\"`. Exits 2 when nothing runs.",
                   epilog=_examples("eventflow env                     # print them",
                                    'eval "$(eventflow env)"           # set them in this shell'),
                   formatter_class=argparse.RawDescriptionHelpFormatter)

    prod = sub.add_parser("produce", help="publish generated events",
                          description="Publish generated events to the three topics (creating missing topics "
                                      "first). With --count, exit once exactly N events are acknowledged; the "
                                      "exit status is 1 if any delivery failed.",
                          epilog=_examples("eventflow produce                       # 10 events/s until Ctrl-C",
                                           "eventflow produce --count 100000          # as fast as possible",
                                           "eventflow produce --rate 500 --duration 60 --seed 7",
                                           "eventflow produce --count 1000 --malformed 0.05 --late 0.1"),
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    prod.add_argument("--count", type=_non_negative_int, metavar="N", help="number of events to publish")
    prod.add_argument("--duration", type=_positive_float, metavar="SECONDS", help="stop after this long")
    _add_producer_options(prod, with_count=True)
    prod.add_argument("--out-of-order", type=_ratio, default=0.0, metavar="RATIO",
                      help=f"fraction of events with an earlier time, still within the {WATERMARK_LABEL} watermark")
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
                                        "cannot be reached. --max-silence adds a liveness condition.",
                            epilog=_examples("eventflow status", "eventflow status --json | jq .health",
                                             "eventflow status --watch 5",
                                             "eventflow status --max-silence 120 >/dev/null || alert"),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--watch", type=_positive_float, nargs="?", const=5.0, metavar="SECONDS",
                        help="show it again every SECONDS (default 5) until Ctrl-C; the exit status is the last one")
    status.add_argument("--max-silence", type=_positive_float, metavar="SECONDS",
                        help="also exit 1 when a query recorded no progress for SECONDS: a running stream records "
                             "some at least every 10 s, idle or not, so this tells a stopped stream from an idle one")
    _add_dashboard_parser(sub)
    _add_daily_parsers(sub)
    return parser


def _examples(*lines: str) -> str:
    return "examples:\n" + "".join(f"  {line}\n" for line in lines) + "\n" + ENVIRONMENT_HELP


def _add_daily_parsers(sub) -> None:
    from eventflow_assets.analytics import app as analytics_app
    from eventflow_assets.entrypoints import describe
    from eventflow_assets.local.logs import SERVICES
    from eventflow_assets.processing import app as stream_app

    describe(sub.add_parser("stream", help="run the streaming job (what jobs/streaming_app.py runs)"),
             stream_app, "eventflow stream")
    analytics = sub.add_parser("analytics", help="run the batch analytics once and print them "
                                                 "(what jobs/batch_analytics_app.py runs)")
    describe(analytics, analytics_app, "eventflow analytics")
    analytics.set_defaults(validate=lambda args: analytics_app.check_arguments(analytics, args))

    logs = sub.add_parser(
        "logs", help="show or follow the local services' logs",
        description="Print the end of a local service's log under EVENTFLOW_HOME, or follow it. Without a "
                    "service, list the log files. 'stream' is the streaming job's own log (wherever it runs on "
                    "this EVENTFLOW_HOME: under `eventflow up`, `eventflow stream` or spark-submit).",
        epilog=_examples("eventflow logs", "eventflow logs stream -f", "eventflow logs kafka -n 200"),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    logs.add_argument("service", nargs="?", choices=sorted(SERVICES), metavar="SERVICE",
                      help=f"one of {', '.join(sorted(SERVICES))}")
    logs.add_argument("-n", "--lines", type=_non_negative_int, default=50, metavar="N",
                      help="lines to show from the end of each file (default 50)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing what is appended until Ctrl-C")

    reset = sub.add_parser(
        "reset", help="start over: empty EventFlow's tables and delete the stream's checkpoints",
        description=f"Empty the tables the stream and the analytics write (orders_raw, the {WINDOW_LABEL} "
                    "aggregates, rejected_events, the stream's ledger and progress, analytics_*) and delete the "
                    "streaming checkpoints, so that the next stream reads the topics again from their start "
                    "(earliest offsets by default). With --topics, also delete and recreate the three topics "
                    "(their records are lost). Refused while a stream is recording progress: stop it first. "
                    "Asks for confirmation unless --yes.",
        epilog=_examples("eventflow reset", "eventflow reset --yes --topics"),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    reset.add_argument("--topics", action="store_true", help="also delete and recreate the topics")

    db = sub.add_parser(
        "db", help="open psql on EventFlow's database, or print its URL",
        description="Run psql on the database of EVENTFLOW_POSTGRES_URL or of the running local stack (the "
                    "password is handed to psql through its environment, not its command line). Arguments after "
                    "`--` go to psql.",
        epilog=_examples("eventflow db", "eventflow db --url",
                         "eventflow db -- -c 'SELECT currency, sum(total_revenue) FROM revenue_by_currency_5min "
                         "GROUP BY 1'"),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    db.add_argument("--url", action="store_true", help="print the URL (password included) instead")
    db.add_argument("psql_args", nargs=argparse.REMAINDER, metavar="-- PSQL_ARGS", help="passed to psql")

    completion = sub.add_parser(
        "completion", help="print a shell completion script",
        description="Print a completion script for eventflow's commands and options.",
        epilog="examples:\n  eventflow completion bash > ~/.local/share/bash-completion/completions/eventflow\n"
               "  eventflow completion zsh > \"${fpath[1]}/_eventflow\"\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    completion.add_argument("shell", choices=["bash", "zsh", "tcsh"])


def _add_dashboard_parser(sub) -> None:
    dash = sub.add_parser(
        "dashboard", help="serve the live dashboard of the tables",
        description="Serve a web dashboard of the tables on 127.0.0.1 until Ctrl-C: revenue by currency per "
                    f"{WINDOW_LABEL} window, orders and average order value, the conversion funnel and top converting "
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
    """One status line, rewritten in place on a terminal, printed every 10 s otherwise; with a
    total, the share done and the time left at the rate so far."""

    def __init__(self, stream=sys.stderr, total: int | None = None):
        self.stream = stream
        self.tty = stream.isatty()
        self.calls = 0
        self.total = total

    def __call__(self, stats: ProduceStats) -> None:
        self.calls += 1
        line = progress_line(stats.sent, stats.delivered, stats.failed, stats.rate, self.total)
        if self.tty:
            self.stream.write("\r" + line.ljust(78))
            self.stream.flush()
        elif self.calls % 10 == 0:
            print(line, file=self.stream, flush=True)

    def done(self) -> None:
        if self.tty and self.calls:
            self.stream.write("\n")


def progress_line(sent: int, acked: int, failed: int, rate: float, total: int | None) -> str:
    line = f"sent {sent:,}  acked {acked:,}  failed {failed:,}  {rate:,.0f} events/s"
    if total:
        left = f"{(total - acked) / rate:,.0f}s left" if rate > 0 else "time left unknown"
        line = f"{100 * acked / total:5.1f}%  {line}  {left}"
    return line


def _report(stats: ProduceStats) -> None:
    print(f"{stats.delivered:,} events acknowledged in {stats.elapsed:.1f}s ({stats.rate:,.0f} events/s): "
          + ", ".join(f"{t} {n:,}" for t, n in sorted(stats.by_topic.items())))
    if stats.failed:
        print(f"{stats.failed:,} deliveries FAILED:", file=sys.stderr)
        for reason, n in stats.errors.most_common():
            print(f"  {n:,} x {reason}", file=sys.stderr)


def _wait_for(stop: threading.Event) -> None:
    """Block the main thread until ``stop`` is set, waking every second: a signal the kernel
    delivers to another thread only runs Python's handler once the main thread runs again, and
    an untimed wait would sleep through SIGTERM (seen: a dashboard outliving its killed parent)."""
    while not stop.wait(1.0):
        pass


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
    from eventflow_assets.local.dagster_instance import instance_env
    from eventflow_assets.orchestration.sensors.supervisor import SUPERVISOR_SWITCH

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
    from eventflow_assets.dashboard.sections import DASHBOARD_URL_VAR
    from eventflow_assets.dashboard.server import DashboardProcess
    from eventflow_assets.local.dagster_dev import DagsterDev
    from eventflow_assets.local.dagster_instance import cancel_leftover_runs, open_instance, write_instance

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
        dagster.env = {**_dagster_env(ep, settings, dagster_home, streaming=not args.no_streaming),
                       DASHBOARD_URL_VAR: dashboard.url}
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
                _wait_for(stop)
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
    progress = None if args.quiet else _Progress(total=args.count)
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

    endpoints = resolve_endpoints(settings)
    stop = _stop_on_signals() if args.watch else threading.Event()
    while True:
        report = collect_status(endpoints)
        code, problems = health(report, max_silence=args.max_silence)
        text = (json.dumps({**report, "health": {"exit_status": code, "problems": problems}}, indent=2, default=str)
                if args.json else render_status(report, code, problems))
        if args.watch and sys.stdout.isatty():
            text = "\033[H\033[2J" + text  # redraw in place
        print(text, flush=True)
        if not args.watch or stop.wait(args.watch):
            return code


def cmd_logs(args, settings: Settings) -> int:
    from eventflow_assets.local.logs import SERVICES, follow, log_files, tail

    if args.service is None:
        for service in sorted(SERVICES):
            files = log_files(settings.home, service)
            for f in files:
                print(f"{service:<10} {f}  ({f.stat().st_size:,} bytes)")
            if not files:
                print(f"{service:<10} (no log yet under {settings.home})")
        return 0
    files = log_files(settings.home, args.service)
    if not files:
        raise EventFlowError(f"no {args.service} log under {settings.home}: is it running on this EVENTFLOW_HOME?")
    for f in files:
        if len(files) > 1:
            print(f"==> {f} <==")
        for line in tail(f, args.lines):
            print(line)
    if args.follow:
        sys.stdout.flush()
        follow(files, lambda line: print(line, flush=True), _stop_on_signals())
    return 0


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise EventFlowError("not confirmed: stdin is not a terminal; add --yes to confirm")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def cmd_reset(args, settings: Settings) -> int:
    import shutil

    from eventflow_assets.ingestion.topics import delete_topics
    from eventflow_assets.storage.postgres import row_counts
    from eventflow_assets.storage.reset import RESET_TABLES, empty_tables, last_progress_age, local_checkpoints

    local = local_checkpoints(settings.checkpoints)
    endpoints = resolve_endpoints(settings)
    apply_schema(endpoints.postgres_url)
    age = last_progress_age(endpoints.postgres_url)
    if age is not None and age.total_seconds() < RESET_QUIET_S:
        raise EventFlowError(f"a stream recorded progress {age.total_seconds():.0f}s ago: stop it first (Ctrl-C on "
                             "`eventflow up` or `eventflow stream`, or terminate streaming_job in Dagster), or wait "
                             f"until it has been quiet for {RESET_QUIET_S}s")
    counts = row_counts(endpoints.postgres_url, RESET_TABLES)
    print(f"This deletes {sum(counts.values()):,} rows from {len(counts)} tables in "
          f"{redact_url(endpoints.postgres_url)} and the checkpoints in {local}"
          + (f", and deletes and recreates the topics on {endpoints.kafka_bootstrap_servers}" if args.topics else "")
          + ".")
    if not args.yes and not _confirm("Reset?"):
        print("nothing changed")
        return 1
    if args.topics:
        deleted = delete_topics(endpoints.kafka_config())
        provision_topics(endpoints.kafka_config())
        print(f"topics:      {', '.join(deleted) or 'none existed'} deleted; created again empty")
    if local.exists():
        shutil.rmtree(local)
    print(f"checkpoints: {local} deleted")
    empty_tables(endpoints.postgres_url)
    print(f"tables:      {len(counts)} emptied; the next stream starts from the topics' earliest offsets")
    return 0


def cmd_db(args, settings: Settings) -> int:
    import shutil
    from urllib.parse import urlsplit, urlunsplit

    from eventflow_assets.analytics.app import postgres_url

    url = postgres_url(settings)
    if args.url:
        print(url)
        return 0
    psql = shutil.which("psql")
    if psql is None:
        raise EventFlowError("psql is not installed (Debian/Ubuntu: apt-get install postgresql-client); "
                             "`eventflow db --url` prints the URL for another client")
    parts = urlsplit(url)
    env = dict(os.environ)
    if parts.password is not None:
        env["PGPASSWORD"] = unquote(parts.password)
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        user = f"{parts.username}@" if parts.username else ""
        url = urlunsplit(parts._replace(netloc=user + host))
    extra = args.psql_args[1:] if args.psql_args[:1] == ["--"] else args.psql_args
    os.execve(psql, [psql, url, *extra], env)


def cmd_completion(args, settings: Settings) -> int:
    import shtab

    print(shtab.complete(build_parser(), shell=args.shell))
    return 0


def cmd_stream(args, settings: Settings) -> int:
    from eventflow_assets.entrypoints import configure_logging
    from eventflow_assets.processing import app

    configure_logging()
    return app.run(args, settings)


def cmd_analytics(args, settings: Settings) -> int:
    from eventflow_assets.analytics import app
    from eventflow_assets.entrypoints import configure_logging

    configure_logging()
    return app.run(args, settings)


def cmd_dashboard(args, settings: Settings) -> int:
    from eventflow_assets.dashboard.app import build_app
    from eventflow_assets.dashboard.server import read_url, start_server

    app = build_app(read_url(settings), args.dagster_url, args.refresh)
    stop = _stop_on_signals()
    server = start_server(app, args.port, args.host)
    print(f"Dashboard:  http://{args.host}:{args.port}  (Dagster UI {args.dagster_url}); Ctrl-C stops it", flush=True)
    try:
        _wait_for(stop)
    finally:
        server.shutdown()
    return 0


COMMANDS = {"up": cmd_up, "services": cmd_services, "env": cmd_env, "produce": cmd_produce, "status": cmd_status,
            "dashboard": cmd_dashboard, "stream": cmd_stream, "analytics": cmd_analytics, "logs": cmd_logs,
            "reset": cmd_reset, "db": cmd_db, "completion": cmd_completion}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(args, "validate"):
        args.validate(args)
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
