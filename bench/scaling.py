"""Scaling benchmark: one backlog drained on local[2] and on the local standalone cluster with 1 and 2
workers, from topics of 3 and of 6 partitions, and where each configuration's time goes.

    python bench/scaling.py [--events 1000000] [--partitions 3,6] [--spark local,1,2] [--backlog-minutes 60]

Per topic layout (EVENTFLOW_TOPIC_PARTITIONS = 3, then 6): one embedded Apache Kafka and PostgreSQL,
one seeded backlog and the plain-Python oracle over the records read back (bench/compare.py's
seed_backlog: EventGenerator seed 1, event times spread over the last --backlog-minutes). Then, per
Spark configuration, emptied tables and a new checkpoint, `jobs/streaming_app.py --available-now`
(Spark's Kafka connector, every query) drains the backlog (compare.py's catch_up_eventflow):
- `local`: EVENTFLOW_SPARK_MASTER=local[2]: the driver and two executor threads in one JVM;
- `N` (1, 2, ...): the local standalone cluster that `eventflow services --spark-workers N` starts
  (eventflow_assets/local/spark_cluster.py): a master and N workers of one core each, new for the run.

Printed per configuration (and as tables at the end):
- wall: from the app's start to its exit (JVM start included); drain: from the first batch's start to
  the last commit (stream_progress); events/s for both; exact: orders_raw, revenue, funnel and rejected
  equal the oracle's.
- per query, from the line the sink logs per batch (processing/sinks.py BATCH_LINE): batches, rows and
  Arrow bytes collected to the driver per batch; seconds computing+collecting (the executors' read,
  parse, dedup and windows, and the transfer to the driver), seconds committing (the batch's one
  PostgreSQL transaction: COPY into staging, merge); batch seconds (stream_progress, trigger execution).
  commit share = commit s / batch s (the driver's part that more executors do not shorten);
  commit-bound = input rows / commit s: the query's rate if the executors took no time at all.
- CPU seconds over the run, from psutil samples of the process trees every 0.2 s (a process's CPU
  after its last sample is missed): the driver's Python process; its JVM with the Python workers under
  it (with local[2] that JVM also runs the executors' tasks); the executors (everything under the
  cluster's worker daemons); PostgreSQL; Kafka.

Every process shares this machine's cores: on 2 cores, 2 one-core workers give the stream no more
cores than local[2]. docs/scaling.md says how the figures extrapolate to more machines.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from compare import _tree_cpu, catch_up_eventflow, seed_backlog  # bench/compare.py
from streaming import drain_figures  # bench/streaming.py

from eventflow_assets.ingestion.topics import configured_topics, provision_topics
from eventflow_assets.local.processes import free_port
from eventflow_assets.local.spark_cluster import SparkCluster
from eventflow_assets.local.stack import LocalStack
from eventflow_assets.processing.sinks import BatchTimes, parse_batch_line
from eventflow_assets.processing.spark import DEFAULT_MASTER
from eventflow_assets.settings import HOME_VAR, SPARK_MASTER_VAR, TOPIC_PARTITIONS_VAR, Settings
from eventflow_assets.storage.schema import apply_schema

SAMPLE_S = 0.2
ROLES = ("driver Python", "driver JVM", "executors", "PostgreSQL", "Kafka")


# --- CPU per role --------------------------------------------------------------------------------

class RoleCpu(threading.Thread):
    """Samples the CPU seconds of the driver's process tree (the new children of this process) and of
    everything under the cluster's worker daemons, keeping each process's latest figure and the role
    it was first seen in (an executor's Python worker orphaned at exit stays an executor's)."""

    def __init__(self, known: set[int], workers: list[int]):
        super().__init__(daemon=True)
        self.known, self.workers = known, workers
        self._cpu: dict[tuple[int, float], tuple[str, float]] = {}
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(SAMPLE_S):
            self.sample()

    def sample(self) -> None:
        for app in psutil.Process().children():
            if app.pid not in self.known:
                self._take(app, "driver Python")
                for proc in _descendants(app):
                    self._take(proc, "driver JVM")
        for pid in self.workers:
            with contextlib.suppress(psutil.Error):
                for proc in _descendants(psutil.Process(pid)):
                    self._take(proc, "executors")

    def _take(self, proc: psutil.Process, role: str) -> None:
        with contextlib.suppress(psutil.Error):
            t = proc.cpu_times()
            key = (proc.pid, proc.create_time())
            self._cpu[key] = (self._cpu.get(key, (role,))[0], t.user + t.system)

    def stop(self) -> dict[str, float]:
        self._done.set()
        self.join()
        totals = dict.fromkeys(ROLES[:3], 0.0)
        for role, cpu in self._cpu.values():
            totals[role] += cpu
        return totals


def _descendants(proc: psutil.Process) -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        return proc.children(recursive=True)
    return []


def _cpu_of(pids: list[int]) -> float:
    return sum(_tree_cpu(pid) for pid in pids)


# --- per-query stage split -----------------------------------------------------------------------

@dataclass(frozen=True)
class QuerySplit:
    """One query's batches over a run: from the sink's log lines and stream_progress."""

    query: str
    batches: list[BatchTimes]
    input_rows: int
    batch_s: float

    @property
    def collect_s(self) -> float:
        return sum(b.collect_s for b in self.batches)

    @property
    def commit_s(self) -> float:
        return sum(b.commit_s for b in self.batches)

    @property
    def rows(self) -> int:
        return sum(b.rows for b in self.batches)

    @property
    def bytes(self) -> int:
        return sum(b.bytes for b in self.batches)

    @property
    def per_batch(self) -> tuple[float, float]:
        """Mean rows and bytes collected per batch that had any (no-data batches only move the watermark)."""
        data = [b for b in self.batches if b.rows]
        return (self.rows / len(data), self.bytes / len(data)) if data else (0.0, 0.0)

    @property
    def commit_share(self) -> float:
        return self.commit_s / self.batch_s if self.batch_s else float("nan")

    @property
    def commit_bound(self) -> float:
        """Input rows per second of commit: the query's rate if only its commits took time."""
        return self.input_rows / self.commit_s if self.commit_s else float("nan")


def stage_split(log_lines, progress: list[tuple[str, int, int, int]]) -> list[QuerySplit]:
    """Per query, its batches' figures from the app's log (replays left out: they wrote nothing) beside
    its input rows and batch time from stream_progress (``drain_figures``' rows)."""
    batches: dict[str, list[BatchTimes]] = {}
    for line in log_lines:
        b = parse_batch_line(line)
        if b is not None and not b.replayed:
            batches.setdefault(b.query, []).append(b)
    return [QuerySplit(name, batches.get(name, []), int(rows), ms / 1000) for name, rows, ms, _ in progress]


# --- one configuration -----------------------------------------------------------------------------

def run_configuration(stack, home: Path, partitions: int, spark: str, events: int, expected: dict) -> dict:
    """Drain the backlog once on ``spark`` ("local" or a worker count): figures as printed."""
    label = f"{partitions}p-{spark}"
    cluster = None
    if spark != "local":
        cluster = SparkCluster(home / f"spark-{label}", home / "logs", int(spark), master_port=free_port())
        cluster.start()
    try:
        master = cluster.master_url if cluster else DEFAULT_MASTER
        env = {SPARK_MASTER_VAR: master, TOPIC_PARTITIONS_VAR: str(partitions)}
        services = {"PostgreSQL": [stack.postgres.proc.pid], "Kafka": [p.pid for p in stack.kafka.procs.values()]}
        before = {role: _cpu_of(pids) for role, pids in services.items()}
        sampler = RoleCpu({c.pid for c in psutil.Process().children()},
                          [p.pid for p in cluster.procs[1:]] if cluster else [])
        sampler.start()
        try:
            run = catch_up_eventflow(stack, home, "kafka", expected, label=label, env=env)
        finally:
            cpu = sampler.stop()
        cpu.update({role: _cpu_of(pids) - before[role] for role, pids in services.items()})
    finally:
        if cluster:
            cluster.stop()
    progress, drain_s = drain_figures(stack.endpoints.postgres_url)
    log = (home / f"catchup-{label}.log").read_text(errors="replace").splitlines()
    return {"partitions": partitions, "spark": spark, "master": master, "events": events, "wall": run["wall"],
            "drain": drain_s, "exact": run["exact"], "split": stage_split(log, progress), "cpu": cpu,
            "log": home / f"catchup-{label}.log"}


def describe_spark(spark: str) -> str:
    return DEFAULT_MASTER if spark == "local" else f"cluster, {spark} worker{'s' * (spark != '1')}"


def report(r: dict) -> str:
    """The lines printed as a configuration finishes."""
    n, split, cpu = r["events"], r["split"], r["cpu"]
    lines = [f"[{r['partitions']} partitions, {describe_spark(r['spark'])}] {n:,} events: {r['wall']:.1f}s wall "
             f"= {n / r['wall']:,.0f} events/s (JVM start included); first batch start to last commit "
             f"{r['drain']:.1f}s = {n / r['drain']:,.0f} events/s; exact: {r['exact']}"]
    for q in split:
        rows, size = q.per_batch
        lines.append(
            f"  {q.query:<13} {len(q.batches)} batch{'es' * (len(q.batches) != 1)}, {q.input_rows:,} rows in; collected {rows:,.0f} rows "
            f"= {_mib(size)} per data batch (max {max((b.rows for b in q.batches), default=0):,} rows = "
            f"{_mib(max((b.bytes for b in q.batches), default=0))}); compute+collect {q.collect_s:.2f}s, commit "
            f"{q.commit_s:.2f}s of {q.batch_s:.2f}s batch time: commit share {q.commit_share:.0%}, "
            f"commit-bound {_rate(q.commit_bound)} rows/s")
    lines.append(f"  driver share: commit {_commit_share(split):.0%} of batch time; CPU s: "
                 + ", ".join(f"{role} {cpu[role]:.1f}" for role in ROLES)
                 + f"; driver {_driver_cpu_share(cpu):.0%} of the stream's CPU")
    lines.append("  events per CPU-second (one core's ceiling for that part): "
                 + ", ".join(f"{role} {_rate(n / cpu[role] if cpu[role] else float('nan'))}" for role in ROLES))
    return "\n".join(lines)


def _commit_share(split: list[QuerySplit]) -> float:
    batch = sum(q.batch_s for q in split)
    return sum(q.commit_s for q in split) / batch if batch else float("nan")


def _driver_cpu_share(cpu: dict[str, float]) -> float:
    """The driver's share of the stream's own CPU (driver and executors). With local[2] the driver's
    JVM runs the executors' tasks too, so only its Python process is the driver's alone."""
    stream = cpu["driver Python"] + cpu["driver JVM"] + cpu["executors"]
    driver = cpu["driver Python"] + (cpu["driver JVM"] if cpu["executors"] else 0.0)
    return driver / stream if stream else float("nan")


def _rate(x: float) -> str:
    return "-" if x != x else f"{x:,.0f}"


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def tables(results: list[dict]) -> str:
    """The markdown tables docs/scaling.md quotes."""
    out = ["| topic partitions | Spark | wall s | events/s (wall) | drain s | events/s (drain) | exact | "
           "commit share | CPU s: driver Python / driver JVM / executors / PostgreSQL / Kafka |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        n = r["events"]
        out.append(f"| {r['partitions']} | {describe_spark(r['spark'])} | {r['wall']:.1f} | {n / r['wall']:,.0f} | "
                   f"{r['drain']:.1f} | {n / r['drain']:,.0f} | {r['exact'].split(' ')[0].rstrip(':')} | "
                   f"{_commit_share(r['split']):.0%} | " + " / ".join(f"{r['cpu'][k]:.1f}" for k in ROLES) + " |")
    out += ["", "| topic partitions | Spark | query | batches | rows in | collected per data batch | "
            "compute+collect s | commit s | batch s | commit share | commit-bound rows/s |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for q in r["split"]:
            rows, size = q.per_batch
            out.append(f"| {r['partitions']} | {describe_spark(r['spark'])} | {q.query} | {len(q.batches)} | "
                       f"{q.input_rows:,} | {rows:,.0f} rows, {_mib(size)} | {q.collect_s:.2f} | "
                       f"{q.commit_s:.2f} | {q.batch_s:.2f} | {q.commit_share:.0%} | {_rate(q.commit_bound)} |")
    return "\n".join(out)


# --- the run ---------------------------------------------------------------------------------------

def _csv(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the backlog (default 1,000,000)")
    parser.add_argument("--partitions", default="3,6", help="topic layouts to run: partitions per topic (default 3,6)")
    parser.add_argument("--spark", default="local,1,2",
                        help="Spark configurations: 'local' (local[2]) and worker counts of the local "
                             "standalone cluster (default local,1,2)")
    parser.add_argument("--backlog-minutes", type=float, default=60.0,
                        help="event times spread over this many minutes up to now (0: as produced)")
    args = parser.parse_args(argv)
    try:
        layouts = [int(p) for p in _csv(args.partitions)]
        sparks = [s if s == "local" else str(int(s)) for s in _csv(args.spark)]
    except ValueError:
        parser.error("--partitions takes numbers, --spark 'local' and numbers of workers")
    if not layouts or not sparks or min(layouts) < 1 or any(s != "local" and int(s) < 1 for s in sparks):
        parser.error("at least one layout and one Spark configuration, each at least 1")
    home = Path(tempfile.mkdtemp(prefix="eventflow-scaling-"))
    results = []
    for partitions in layouts:
        settings = Settings.from_env({HOME_VAR: str(home / f"{partitions}p"), TOPIC_PARTITIONS_VAR: str(partitions)})
        with LocalStack(settings, free_port(), free_port()) as stack:
            provision_topics(stack.endpoints.kafka_config(), configured_topics(settings))
            apply_schema(stack.endpoints.postgres_url)
            started = time.monotonic()
            stats, expected = seed_backlog(stack, args.events, args.backlog_minutes, partitions)
            print(f"{partitions} partitions per topic: {args.events:,} events seeded in "
                  f"{time.monotonic() - started:.1f}s ({stats.by_topic['orders']:,} orders, "
                  f"{len(expected['orders_raw']):,} valid and distinct)", flush=True)
            for spark in sparks:
                result = run_configuration(stack, home / f"{partitions}p", partitions, spark, args.events, expected)
                results.append(result)
                print(report(result), flush=True)
    print()
    print(tables(results))
    print(f"\nlogs: {home}")
    return 0 if all(r["exact"].startswith("yes") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
