"""The drills' machinery: the stream as a child process that can be SIGKILLed, a steady producer,
recovery measured from the stream's checkpoint, and the final comparison of every table.

Recovery after a fault is measured from what the restarted stream has *committed* (Spark's
checkpoint: ``<query>/commits/N`` is written after batch N's transaction is in PostgreSQL):
- resumed: the first batch committed after the fault (by any query);
- caught up: every query has committed offsets at or past the topics' ends at the moment of
  the fault, i.e. all that had arrived before the fault is in the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg

from eventflow_assets.errors import EventFlowError
from eventflow_assets.ingestion.events import TOPIC_NAMES
from eventflow_assets.ingestion.generator import EventGenerator
from eventflow_assets.ingestion.offsets import end_offsets
from eventflow_assets.ingestion.producer import ProduceStats, produce
from eventflow_assets.local.processes import die_with_parent

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "jobs" / "streaming_app.py"


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- the stream's checkpoint -------------------------------------------------------------------

def _latest_commit(query_dir: Path) -> int:
    try:
        names = os.listdir(query_dir / "commits")
    except FileNotFoundError:
        return -1
    return max((int(n) for n in names if n.isdigit()), default=-1)


def committed_batches(checkpoint_root: Path) -> dict[str, int]:
    """{query: id of its latest committed batch (-1: none yet)}."""
    return {q: _latest_commit(checkpoint_root / q) for q in TOPIC_NAMES}


def committed_ends(checkpoint_root: Path) -> dict[tuple[str, int], int]:
    """{(topic, partition): offset up to which the queries have committed}: the end offsets of each
    query's latest committed batch, from its offsets log (third line on: one JSON per source)."""
    ends: dict[tuple[str, int], int] = {}
    for query in TOPIC_NAMES:
        batch = _latest_commit(checkpoint_root / query)
        if batch < 0:
            continue
        lines = (checkpoint_root / query / "offsets" / str(batch)).read_text().splitlines()
        for line in lines[2:]:
            for topic, parts in json.loads(line).items():
                for part, offset in parts.items():
                    ends[(topic, int(part))] = int(offset)
    return ends


def covers(committed: dict, target: dict) -> bool:
    return all(committed.get(tp, 0) >= end for tp, end in target.items() if end > 0)


def all_partitions(partitions: int = 3) -> list[tuple[str, int]]:
    return [(t, p) for t in TOPIC_NAMES for p in range(partitions)]


def topic_ends(kafka_config: dict, timeout: float = 120.0) -> dict[tuple[str, int], int]:
    """End offsets of every partition, asked again while the cluster answers "not leader" and the
    like (topics just created, leadership moving after a broker came back)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return end_offsets(kafka_config, all_partitions())
        except EventFlowError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


# --- the stream as a process -------------------------------------------------------------------

class StreamDriver:
    """``jobs/streaming_app.py`` as a child process. Start it from the main thread.

    :meth:`kill` is ``kill -9``: of the whole driver (the PySpark process, the JVM that is Spark's
    driver, any Python workers) at once, or of the PySpark process alone, after which the JVM must
    exit by itself (it would otherwise keep writing to the checkpoint beside its successor).
    """

    def __init__(self, env: dict, checkpoint_root: Path, logs: Path, trigger_seconds: float,
                 extra_args: tuple[str, ...] = ()):
        self.env = env
        self.checkpoint_root = checkpoint_root
        self.logs = logs
        self.args = ("--trigger-seconds", f"{trigger_seconds:g}", "--checkpoint-dir", str(checkpoint_root),
                     *extra_args)
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def log_file(self) -> Path:
        return self.logs / f"driver-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, str(APP), *self.args], env=self.env, cwd=REPO,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                         preexec_fn=die_with_parent())  # a killed drill leaves no stream behind

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def failure(self) -> str | None:
        """Why the stream is not running (None while it runs)."""
        return None if self.alive() else f"the stream exited with status {self.proc.returncode}:\n{self.tail()}"

    def tail(self, chars: int = 3000) -> str:
        return self.log_file.read_text(errors="replace")[-chars:]

    def kill(self, whole_tree: bool = True, timeout: float = 60.0) -> float:
        """SIGKILL; returns the seconds until every process of the driver was gone."""
        started = time.monotonic()
        root = psutil.Process(self.proc.pid)
        tree = [root, *root.children(recursive=True)]
        for p in tree if whole_tree else [root]:
            try:
                p.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        self.proc.wait()
        _, alive = psutil.wait_procs(tree, timeout=timeout)
        if alive:
            raise DrillFailed(f"{len(alive)} process(es) of the killed driver still run after {timeout:.0f}s: "
                              f"{[p.pid for p in alive]}")
        return time.monotonic() - started

    def stop(self, timeout: float = 120.0) -> None:
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


class DrillFailed(Exception):
    pass


class StreamThread(threading.Thread):
    """The streaming queries in this process, on an existing SparkSession (tests that fault the
    services around a stream they do not kill). :meth:`stop` stops them after their batch."""

    def __init__(self, spark, endpoints, checkpoint_root: Path, config):
        super().__init__(name="drill-stream", daemon=True)
        self.spark, self.endpoints, self.checkpoint_root, self.config = spark, endpoints, checkpoint_root, config
        self._stop_event = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        from eventflow_assets.processing.runner import run_streaming

        try:
            run_streaming(self.spark, self.endpoints, self.checkpoint_root, self.config, self._stop_event)
        except BaseException as exc:  # noqa: BLE001 - reported through failure()
            self.error = exc

    def failure(self) -> str | None:
        if self.error is not None:
            return f"the stream failed: {self.error}"
        if not self.is_alive() and not self._stop_event.is_set():
            return "the stream ended"
        return None

    def stop(self, timeout: float = 120.0, check: bool = True) -> None:
        """Stop the queries after their batch; raise if the stream had failed (unless ``check`` is False)."""
        self._stop_event.set()
        self.join(timeout)
        if check and self.error is not None:
            raise DrillFailed(f"the stream failed: {self.error}")


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, stream=None, step: float = 0.25) -> float:
    """Seconds waited until ``predicate()``; fails if time runs out or the ``stream`` (anything with a
    ``failure()`` saying why it stopped, or None while it runs) stops meanwhile."""
    started = time.monotonic()
    while not predicate():
        failure = stream.failure() if stream is not None else None
        if failure:
            raise DrillFailed(f"while waiting for {what}: {failure}")
        if time.monotonic() - started > timeout:
            raise DrillFailed(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(step)
    return time.monotonic() - started


# --- the producer --------------------------------------------------------------------------------

class SteadyProducer(threading.Thread):
    """``produce`` at a steady rate in a thread (it only sends; services are forked elsewhere)."""

    def __init__(self, kafka_config: dict, events: int | None, rate: float, seed: int):
        super().__init__(name="drill-producer", daemon=True)
        self.kafka_config, self.events, self.rate, self.seed = kafka_config, events, rate, seed
        self.stats: ProduceStats | None = None
        self.error: BaseException | None = None
        self.stopping = threading.Event()  # events=None: produce until set

    def run(self) -> None:
        try:
            self.stats = produce(self.kafka_config, EventGenerator(seed=self.seed), count=self.events, rate=self.rate,
                                 stop=self.stopping)
        except BaseException as exc:  # noqa: BLE001 - reported by the drill
            self.error = exc

    def result(self, timeout: float) -> ProduceStats:
        if self.events is None:
            self.stopping.set()
        self.join(timeout)
        if self.is_alive():
            raise DrillFailed(f"the producer did not finish within {timeout:.0f}s")
        if self.error is not None:
            raise DrillFailed(f"the producer failed: {self.error!r}")
        return self.stats


# --- recovery and exactness ----------------------------------------------------------------------

@dataclass
class Recovery:
    fault: str
    at_s: float  # seconds into the run
    resumed_s: float | None = None  # fault -> first batch committed after it
    caught_up_s: float | None = None  # fault -> everything that had arrived before it committed
    note: str = ""

    def line(self) -> str:
        resumed = "-" if self.resumed_s is None else f"{self.resumed_s:6.1f} s"
        caught = "-" if self.caught_up_s is None else f"{self.caught_up_s:6.1f} s"
        return f"{self.fault:<34} at {self.at_s:6.1f} s   resumed after {resumed}   caught up after {caught}" + \
            (f"   ({self.note})" if self.note else "")


def measure_recovery(recovery: Recovery, checkpoint_root: Path, before: dict[str, int], target: dict,
                     started: float, driver, timeout: float) -> Recovery:
    """Fill in ``recovery``: ``before`` = committed batches, ``target`` = topic ends, both at the fault;
    ``started`` = monotonic time of the fault."""
    wait_until(lambda: any(b > before[q] for q, b in committed_batches(checkpoint_root).items()), timeout,
               f"a committed batch after {recovery.fault}", driver)
    recovery.resumed_s = time.monotonic() - started
    wait_until(lambda: covers(committed_ends(checkpoint_root), target), timeout,
               f"the stream to catch up after {recovery.fault}", driver)
    recovery.caught_up_s = time.monotonic() - started
    return recovery


def table_differences(bootstrap: str, pg_url: str) -> dict[str, str]:
    """{table: what differs} between the tables and the ones computed from the topics (empty: exact)."""
    from eventflow_assets_tests.helpers import read_all
    from eventflow_assets_tests.processing.expected import actual_tables, expected_tables

    expected = expected_tables(read_all(bootstrap, TOPIC_NAMES, timeout=120))
    with psycopg.connect(pg_url) as conn:
        actual = actual_tables(conn)
    differences = {}
    for table in ("orders_raw", "revenue", "funnel", "rejected"):
        want, got = expected[table], actual[table]
        if want == got:
            continue
        if isinstance(want, dict):
            missing = len(want.keys() - got.keys())
            extra = len(got.keys() - want.keys())
            wrong = sum(1 for k in want.keys() & got.keys() if want[k] != got[k])
        else:
            missing, extra, wrong = len(want - got), len(got - want), 0
        differences[table] = f"{missing} rows missing, {extra} extra, {wrong} with other values (of {len(want)})"
    return differences


def expected_row_counts(bootstrap: str) -> dict[str, int]:
    from eventflow_assets_tests.helpers import read_all
    from eventflow_assets_tests.processing.expected import expected_tables

    return {t: len(rows) for t, rows in expected_tables(read_all(bootstrap, TOPIC_NAMES, timeout=120)).items()}


@dataclass
class DrillResult:
    events: int | None  # None: as many as were sent until the faults were over
    stats: ProduceStats
    faults: int  # planned
    recoveries: list[Recovery] = field(default_factory=list)
    final_catch_up_s: float = 0.0
    differences: dict[str, str] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.differences and self.stats.failed == 0 and len(self.recoveries) == self.faults and \
            self.stats.delivered == (self.events if self.events is not None else self.stats.sent)

    def report(self) -> str:
        lines = [r.line() for r in self.recoveries]
        if len(self.recoveries) < self.faults:
            lines.append(f"only {len(self.recoveries)} of {self.faults} faults fell while events arrived")
        caught = [r.caught_up_s for r in self.recoveries if r.caught_up_s is not None]
        if caught:
            ordered = sorted(caught)
            lines.append(f"recovery (caught up): min {ordered[0]:.1f} s, median {ordered[len(ordered) // 2]:.1f} s, "
                         f"max {ordered[-1]:.1f} s over {len(caught)} fault(s)")
        errors = "; ".join(f"{n} x {e}" for e, n in self.stats.errors.items())
        wanted = self.events if self.events is not None else self.stats.sent
        lines.append(f"producer: {self.stats.delivered:,} of {wanted:,} delivered, {self.stats.failed} failed"
                     + (f" ({errors})" if errors else "") + f", {self.stats.rate:,.0f} events/s")
        lines.append(f"after the last event: caught up in {self.final_catch_up_s:.1f} s; run took {self.seconds:.0f} s")
        lines.append("tables: " + ("EXACT (" + ", ".join(f"{t} {n:,}" for t, n in self.rows.items()) + " rows)"
                                   if not self.differences else
                                   "NOT EXACT: " + "; ".join(f"{t}: {d}" for t, d in self.differences.items())))
        lines.append("PASSED" if self.passed else "FAILED")
        return "\n".join(lines)


def driver_env(bootstrap: str, pg_url: str, home: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTFLOW_")}
    return {**env, "EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS": bootstrap, "EVENTFLOW_POSTGRES_URL": pg_url,
            "EVENTFLOW_HOME": str(home), **extra}


def finish(result: DrillResult, driver: StreamDriver, producer: SteadyProducer, kafka_config: dict,
           checkpoint_root: Path, pg_url: str, started: float, timeout: float) -> DrillResult:
    """Wait for the producer and for the stream to read everything, stop it, compare the tables."""
    result.stats = producer.result(timeout)
    last_event = time.monotonic()
    target = topic_ends(kafka_config)
    wait_until(lambda: covers(committed_ends(checkpoint_root), target), timeout, "the stream to read every event",
               driver)
    result.final_catch_up_s = time.monotonic() - last_event
    driver.stop()
    result.differences = table_differences(kafka_config["bootstrap.servers"], pg_url)
    if not result.differences:
        result.rows = {t: n for t, n in expected_row_counts(kafka_config["bootstrap.servers"]).items()}
    result.seconds = time.monotonic() - started
    return result


# --- drill 1: the driver killed again and again (issue 14, item 3) ------------------------------

def crash_drill(kafka_config: dict, pg_url: str, workdir: Path, *, events: int | None, rate: float, kills: int,
                seed: int = 1, trigger_seconds: float = 10.0, timeout: float = 600.0,
                extra_args: tuple[str, ...] = (), env: dict | None = None) -> DrillResult:
    """``events`` at ``rate`` per second while the driver is ``kill -9``ed at ``kills`` random moments
    and started again at once each time (as a supervisor would).

    A kill is due at a random moment of its slice of the production time, and never before the
    stream has caught up from the previous one (so that every recovery is measured). With
    ``events=None`` (the test) events arrive until the last kill has been recovered from, and each
    kill comes 1-5 s after the stream caught up from the one before: every kill then falls while
    events arrive, however slow the machine.
    """
    rng = random.Random(seed)
    checkpoint_root = workdir / "checkpoints"
    driver = StreamDriver(env or driver_env(kafka_config["bootstrap.servers"], pg_url, workdir / "home"),
                          checkpoint_root, workdir / "logs", trigger_seconds, extra_args)
    duration = events / rate if events else None
    due = sorted(duration * (i + rng.uniform(0.1, 0.9)) / kills for i in range(kills)) if duration else None
    started = time.monotonic()
    result = DrillResult(events, ProduceStats(), kills)
    say(f"crash drill: {f'{events:,}' if events else 'events'} at {rate:g}/s"
        + (f" (~{duration:.0f} s)" if duration else "") + f", {kills} kills -9 of the driver, "
        f"trigger {trigger_seconds:g} s; logs in {workdir / 'logs'}")
    driver.start()
    producer = SteadyProducer(kafka_config, events, rate, seed)
    producer.start()
    try:
        first = Recovery("first start", 0.0)
        measure_recovery(first, checkpoint_root, committed_batches(checkpoint_root),
                         topic_ends(kafka_config), started, driver, timeout)
        say(first.line())
        for n in range(1, kills + 1):
            _sleep_until(started + due[n - 1] if due else time.monotonic() + rng.uniform(1.0, 5.0))
            if not producer.is_alive():  # a kill must fall while events arrive, or nothing shows its recovery
                say(f"kills #{n}-{kills} skipped: every event was sent before they were due (recoveries took "
                    "longer than their share of the run: lower --rate or --kills)")
                break
            whole = rng.random() < 0.5
            before = committed_batches(checkpoint_root)
            target = topic_ends(kafka_config)
            fault_at = time.monotonic()
            recovery = Recovery(f"kill -9 #{n} ({'driver + JVM' if whole else 'PySpark driver only'})",
                                fault_at - started)
            gone = driver.kill(whole_tree=whole)
            driver.start()
            recovery.note = f"driver gone in {gone:.1f} s"
            result.recoveries.append(measure_recovery(recovery, checkpoint_root, before, target, fault_at,
                                                      driver, timeout))
            say(recovery.line())
        return finish(result, driver, producer, kafka_config, checkpoint_root, pg_url, started, timeout)
    finally:
        if driver.alive():
            driver.kill()
        if producer.is_alive():
            producer.stopping.set()


# --- drill 2: a Spark worker and a Kafka broker (issue 11, item 8) -------------------------------

def cluster_drill(workdir: Path, *, events: int, rate: float, seed: int = 1, trigger_seconds: float = 10.0,
                  workers: int = 2, broker_down_s: float = 10.0, timeout: float = 600.0) -> DrillResult:
    """Three Kafka brokers and a Spark standalone cluster of ``workers`` one-core workers, all local.
    While ``events`` arrive at ``rate``/s: ``kill -9`` one worker at a random moment of the first
    half (started again once the stream has recovered), then one broker at a random moment of the
    second half, started again ``broker_down_s`` later."""
    from eventflow_assets.ingestion.topics import provision_topics
    from eventflow_assets.local.processes import free_port
    from eventflow_assets.local.stack import LocalStack
    from eventflow_assets.settings import Settings
    from eventflow_assets.storage.schema import apply_schema

    rng = random.Random(seed)
    home = workdir / "home"
    settings = Settings.from_env({"EVENTFLOW_HOME": str(home)})
    duration = events / rate
    say(f"cluster drill: 3 Kafka brokers, Spark standalone with {workers} workers; {events:,} events at "
        f"{rate:g}/s (~{duration:.0f} s); logs in {workdir / 'logs'} and {home / 'logs'}")
    with LocalStack(settings, kafka_port=free_port(), postgres_port=free_port(), kafka_brokers=3,
                    spark_workers=workers, spark_master_port=free_port()) as stack:
        kafka_config = stack.endpoints.kafka_config()
        pg_url = stack.endpoints.postgres_url
        apply_schema(pg_url)
        provision_topics(kafka_config)
        checkpoint_root = workdir / "checkpoints"
        # The driver finds Kafka, PostgreSQL and the Spark master through the running stack on its home.
        env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTFLOW_")}
        driver = StreamDriver({**env, "EVENTFLOW_HOME": str(home)}, checkpoint_root, workdir / "logs",
                              trigger_seconds)
        started = time.monotonic()
        result = DrillResult(events, ProduceStats(), 2)
        driver.start()
        producer = SteadyProducer(kafka_config, events, rate, seed)
        producer.start()
        try:
            first = measure_recovery(Recovery("first start", 0.0), checkpoint_root,
                                     committed_batches(checkpoint_root), topic_ends(kafka_config),
                                     started, driver, timeout)
            say(first.line())
            apps = _running_apps(stack.spark)
            say(f"the stream runs on the cluster: {apps}")

            worker = rng.randint(1, workers)
            _sleep_until(started + duration * rng.uniform(0.15, 0.4))
            before, target = committed_batches(checkpoint_root), topic_ends(kafka_config)
            fault_at = time.monotonic()
            stack.spark.kill_worker(worker)
            recovery = measure_recovery(Recovery(f"kill -9 of Spark worker {worker}", fault_at - started),
                                        checkpoint_root, before, target, fault_at, driver, timeout)
            stack.spark.restart_worker(worker)
            back = wait_until(lambda: stack.spark.alive_workers() >= workers, 120, "the worker to register again")
            recovery.note = f"worker restarted after recovery, registered in {back:.1f} s"
            result.recoveries.append(recovery)
            say(recovery.line())

            node = rng.randint(1, 3)
            _sleep_until(max(time.monotonic(), started + duration * rng.uniform(0.55, 0.8)))
            if not producer.is_alive():  # the point is a broker lost under the producer and the stream
                say("broker kill skipped: every event was sent before it was due (lower --rate)")
                return finish(result, driver, producer, kafka_config, checkpoint_root, pg_url, started, timeout)
            before, target = committed_batches(checkpoint_root), topic_ends(kafka_config)
            fault_at = time.monotonic()
            stack.kafka.kill(node)
            _sleep_until(fault_at + broker_down_s)
            stack.kafka.restart(node)  # from the main thread: a broker dies with the thread that forked it
            recovery = measure_recovery(Recovery(f"kill -9 of Kafka broker {node}", fault_at - started),
                                        checkpoint_root, before, target, fault_at, driver, timeout)
            recovery.note = f"restarted after {broker_down_s:g} s"
            result.recoveries.append(recovery)
            say(recovery.line())
            return finish(result, driver, producer, kafka_config, checkpoint_root, pg_url, started, timeout)
        finally:
            if driver.alive():
                driver.kill()


def _sleep_until(moment: float) -> None:
    wait = moment - time.monotonic()
    if wait > 0:
        time.sleep(wait)


def _running_apps(cluster) -> str:
    import urllib.request

    with urllib.request.urlopen(f"{cluster.master_ui}/json/", timeout=5) as response:
        state = json.loads(response.read())
    return ", ".join(f"{a['name']} ({a['cores']} cores)" for a in state.get("activeapps", [])) or "none"


# --- the command ---------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m drills", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="drill", required=True)
    crashes = sub.add_parser("crashes", help="kill -9 the stream's driver at random moments (issue 14, item 3)")
    crashes.add_argument("--kills", type=int, default=10)
    cluster = sub.add_parser("cluster", help="kill -9 a Spark worker, then a Kafka broker (issue 11, item 8)")
    cluster.add_argument("--workers", type=int, default=2)
    cluster.add_argument("--broker-down-seconds", type=float, default=10.0)
    for s in (crashes, cluster):
        s.add_argument("--events", type=int, default=200_000)
        s.add_argument("--rate", type=float, default=500.0, help="events per second (default 500)")
        s.add_argument("--seed", type=int, default=1, help="events and fault moments")
        s.add_argument("--trigger-seconds", type=float, default=10.0)
        s.add_argument("--keep", action="store_true", help="keep the work folder (logs, checkpoints, data)")
    args = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix=f"eventflow-drill-{args.drill}-"))
    os.chmod(workdir, 0o755)  # the embedded PostgreSQL runs as another user when we are root
    try:
        if args.drill == "crashes":
            result = _crashes(args, workdir)
        else:
            result = cluster_drill(workdir, events=args.events, rate=args.rate, seed=args.seed,
                                   trigger_seconds=args.trigger_seconds, workers=args.workers,
                                   broker_down_s=args.broker_down_seconds)
    except (DrillFailed, EventFlowError) as exc:
        say(f"FAILED: {exc}")
        args.keep = True
        return 1
    finally:
        if args.keep:
            say(f"work folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(result.report(), flush=True)
    return 0 if result.passed else 1


def _crashes(args, workdir: Path) -> DrillResult:
    from eventflow_assets.ingestion.topics import provision_topics
    from eventflow_assets.local.processes import free_port
    from eventflow_assets.local.stack import LocalStack
    from eventflow_assets.settings import Settings
    from eventflow_assets.storage.schema import apply_schema

    with LocalStack(Settings.from_env({"EVENTFLOW_HOME": str(workdir / "services")}), kafka_port=free_port(),
                    postgres_port=free_port()) as stack:
        kafka_config = stack.endpoints.kafka_config()
        apply_schema(stack.endpoints.postgres_url)
        provision_topics(kafka_config)
        return crash_drill(kafka_config, stack.endpoints.postgres_url, workdir, events=args.events, rate=args.rate,
                           kills=args.kills, seed=args.seed, trigger_seconds=args.trigger_seconds)
