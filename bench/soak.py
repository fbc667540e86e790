"""Soak: the platform as `make up` runs it, at a steady rate for a long time. Is anything growing?

    python bench/soak.py [--minutes 30] [--rate 1000] [--interval 60] [--warmup-minutes 5] [--home DIR]

Runs `eventflow up --rate R` (bench/footprint.py's launcher: embedded Kafka and PostgreSQL,
Dagster with the stream as `streaming_job`, the dashboard, the producer inside `up`) on free ports
with its own EVENTFLOW_HOME. From the stream's first committed batch on, every --interval seconds
it prints one line: resident memory (RSS) of the broker, the PostgreSQL server (postmaster) and of
all PostgreSQL processes together (PSS: shared buffers counted once, not once per backend), the
stream's Spark JVM, the stream's Python driver (the Dagster run process hosting the queries) and
its Python workers, all processes (PSS); the live heap of the broker's and the stream's JVMs (heap
in use right after a full collection that `jcmd <pid> GC.run` forces, a pause of well under a
second: what the JVM cannot free, unlike its RSS, which grows until the heap is as large as the
collector chooses); PostgreSQL's private memory (anonymous resident memory, RSS minus shared and
file pages, summed over its processes: what backends hold for themselves; not USS, which counts
the shared buffers that only one process has touched, such as those the checkpointer wrote, and so
grows up to `shared_buffers` by design); and over the interval the stream's batches: count and
median/max batch time (``stream_progress.duration_ms``) and the records still waiting (lag).

At the end it compares the first and the last half of the samples after the warm-up (JVM heaps
and caches fill during the first minutes) and says, per series, whether it is flat: memory
within max(5%, 20 MiB), median batch time within max(20%, 0.5 s), lag grown by less than one
trigger's worth of events (10 s x rate). "all" includes runs that come and go (an analytics run
brings its own Spark JVM for a minute or two). PostgreSQL as a whole is "bounded" rather than
growing when only its buffer cache fills (private memory flat, shared part within shared_buffers +
wal_buffers). Exit status 0 when every series is flat or bounded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
from footprint import _kind, _tree, launch, stop, wait_for_first_batch  # bench/footprint.py

from eventflow_assets.processing.spark import STREAM_APP

MIB = 2 ** 20
TRIGGER_S = 10  # the stream's trigger: lag may differ by one trigger's worth of events between samples
MEMORY = ("kafka", "kafka_live", "pg_server", "pg_all", "pg_private", "stream_jvm", "stream_live", "stream_py",
          "stream_workers", "all")
LABELS = {"kafka": "broker", "kafka_live": "broker live", "pg_server": "pg server", "pg_all": "pg all(PSS)",
          "pg_private": "pg private", "stream_jvm": "stream JVM", "stream_live": "stream live",
          "stream_py": "stream py", "stream_workers": "py workers", "all": "all(PSS)"}


@dataclass
class Sample:
    elapsed_s: float
    memory_mib: dict[str, float]
    batches: int
    batch_p50_s: float
    batch_max_s: float
    lag: int


def _pss(proc: psutil.Process) -> int:
    try:
        return proc.memory_full_info().pss
    except psutil.Error:
        return 0


def _private(proc: psutil.Process) -> int:
    try:
        info = proc.memory_info()
    except psutil.Error:
        return 0
    return info.rss - info.shared  # RssAnon: Linux's shared = RssFile + RssShmem


def _live_heap(proc: psutil.Process | None) -> int:
    """Bytes of heap in use after a full collection, asked of the JVM with the jcmd beside its java."""
    if proc is None:
        return 0
    try:
        jcmd = str(Path(proc.exe()).with_name("jcmd"))
        subprocess.run([jcmd, str(proc.pid), "GC.run"], capture_output=True, timeout=60, check=True)
        info = subprocess.run([jcmd, str(proc.pid), "GC.heap_info"], capture_output=True, text=True, timeout=60,
                              check=True).stdout
    except (psutil.Error, OSError, subprocess.SubprocessError):
        return 0
    used = re.search(r"used (\d+)K", info)
    return int(used.group(1)) * 1024 if used else 0


def _rss(proc: psutil.Process | None) -> int:
    try:
        return proc.memory_info().rss if proc else 0
    except psutil.Error:
        return 0


def _of_home(proc: psutil.Process, home: Path) -> bool:
    try:
        return proc.environ().get("EVENTFLOW_HOME") == str(home)
    except psutil.Error:
        return False


def memory(root: psutil.Process, home: Path) -> dict[str, float]:
    """MiB per series (see the module's docstring) over the process tree of `eventflow up`.

    Dagster launches runs from its code server, which `up` does not parent: the stream's JVM is
    found among all processes by its app name and this run's EVENTFLOW_HOME (other stacks on the
    machine have streams too), its Python driver as the JVM's parent."""
    procs = _tree(root)
    jvm = next((p for p in psutil.process_iter(["name", "cmdline"]) if p.info["name"] == "java"
                and f"spark.app.name={STREAM_APP}" in (p.info["cmdline"] or []) and _of_home(p, home)), None)
    driver = workers = None
    if jvm is not None:
        try:
            driver = jvm.parent()
            workers = [c for c in jvm.children(recursive=True) if "python" in c.name()]
        except psutil.Error:
            pass
    seen = {p.pid for p in procs}
    procs += [p for p in [jvm, driver, *(workers or [])] if p is not None and p.pid not in seen]
    kafka = next((p for p in procs if _kind(p) == "kafka"), None)
    postgres = [p for p in procs if _kind(p) == "postgres"]
    postmaster = next((p for p in postgres if p.pid in {c.pid for c in root.children()}), None)
    return {"kafka": _rss(kafka) / MIB, "kafka_live": _live_heap(kafka) / MIB, "pg_server": _rss(postmaster) / MIB,
            "pg_all": sum(map(_pss, postgres)) / MIB, "pg_private": sum(map(_private, postgres)) / MIB,
            "stream_jvm": _rss(jvm) / MIB, "stream_live": _live_heap(jvm) / MIB, "stream_py": _rss(driver) / MIB,
            "stream_workers": sum(map(_rss, workers or [])) / MIB, "all": sum(map(_pss, procs)) / MIB}


def batches(url: str, since: float, until: float) -> tuple[int, float, float, int]:
    """Batches recorded in [since, until) (epoch s): count, median and max time (s), and the records
    waiting after the latest batch of each query (summed)."""
    with psycopg.connect(url, connect_timeout=5) as conn:
        times = [ms / 1000 for (ms,) in conn.execute(
            "SELECT duration_ms FROM stream_progress WHERE recorded_at >= to_timestamp(%s) "
            "AND recorded_at < to_timestamp(%s)", (since, until))]
        (lag,) = conn.execute("""
            SELECT coalesce(sum((SELECT coalesce(sum(value::bigint), 0) FROM jsonb_each_text(lag))), 0)
            FROM (SELECT DISTINCT ON (query_name) lag FROM stream_progress ORDER BY query_name, recorded_at DESC) l
            """).fetchone()
    return len(times), (statistics.median(times) if times else float("nan")), max(times, default=float("nan")), \
        int(lag)


def shared_cap_mib(url: str) -> float:
    """What PostgreSQL's shared memory can grow to: its buffer cache and WAL buffers (the lock tables
    and the rest are a few MiB more, allowed for by :data:`SHARED_SLACK_MIB`)."""
    with psycopg.connect(url, connect_timeout=5) as conn:
        rows = conn.execute("SELECT name, setting::bigint * pg_size_bytes(coalesce(unit, '1B')) FROM pg_settings "
                            "WHERE name IN ('shared_buffers', 'wal_buffers')").fetchall()
    return sum(size for _, size in rows) / MIB


SHARED_SLACK_MIB = 32  # PostgreSQL's other shared memory and its binary's pages, counted in its PSS


def verdict(samples: list[Sample], warmup_s: float, rate: float,
            pg_shared_cap: float) -> list[tuple[str, str, str]]:
    """(series, verdict, first half -> last half) for every series, over the samples after the warm-up.

    The verdict is "flat", "GROWING" or, for all of PostgreSQL, "bounded": its growth is the buffer
    cache filling (its private memory is flat and its shared part is within ``pg_shared_cap``), which
    stops at the configured size by design."""
    steady = [s for s in samples if s.elapsed_s >= warmup_s]
    if len(steady) < 4:
        return [("samples", "GROWING", f"only {len(steady)} after the warm-up: run longer or sample more often")]
    first, last = steady[:len(steady) // 2], steady[len(steady) - len(steady) // 2:]
    out = []
    median = {}
    for key in MEMORY:
        a = statistics.median(s.memory_mib[key] for s in first)
        b = statistics.median(s.memory_mib[key] for s in last)
        median[key] = b
        out.append((f"{LABELS[key]} MiB", _flat(b - a <= max(0.05 * a, 20)), f"{a:,.0f} -> {b:,.0f}"))
    pg_all = MEMORY.index("pg_all")
    if out[pg_all][1] != "flat" and out[MEMORY.index("pg_private")][1] == "flat" \
            and median["pg_all"] - median["pg_private"] <= pg_shared_cap + SHARED_SLACK_MIB:
        out[pg_all] = (out[pg_all][0], "bounded", out[pg_all][2])
    a = statistics.median(s.batch_p50_s for s in first if s.batches)
    b = statistics.median(s.batch_p50_s for s in last if s.batches)
    out.append(("batch time p50 s", _flat(b - a <= max(0.2 * a, 0.5)), f"{a:.2f} -> {b:.2f}"))
    a, b = statistics.median(s.lag for s in first), statistics.median(s.lag for s in last)
    out.append(("lag records", _flat(b - a <= rate * TRIGGER_S), f"{a:,.0f} -> {b:,.0f}"))
    return out


def _flat(ok: bool) -> str:
    return "flat" if ok else "GROWING"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the measured part (default 30)")
    parser.add_argument("--rate", type=float, default=1000.0, help="events/s the producer sends (default 1000)")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between samples (default 60)")
    parser.add_argument("--warmup-minutes", type=float, default=None,
                        help="samples left out of the verdict (default: 5, at most a third of --minutes)")
    parser.add_argument("--home", help="EVENTFLOW_HOME (default: a new temporary folder)")
    args = parser.parse_args()
    warmup_s = 60 * (args.warmup_minutes if args.warmup_minutes is not None else min(5.0, args.minutes / 3))
    home = Path(args.home or tempfile.mkdtemp(prefix="eventflow-soak-")).absolute()
    print(f"eventflow up --rate {args.rate:g} under {home}; {args.minutes:g} min, a sample every {args.interval:g}s, "
          f"warm-up {warmup_s / 60:g} min", flush=True)
    up, state, started, started_at = launch(args.rate, home)
    root = psutil.Process(up.pid)
    samples: list[Sample] = []
    try:
        wait_for_first_batch(up, state, started, started_at, home)
        print(f"first committed batch after {time.monotonic() - started:.1f}s", flush=True)
        print(f"{'min':>5} " + " ".join(f"{LABELS[k]:>11}" for k in MEMORY)
              + f" {'batches':>7} {'p50 s':>6} {'max s':>6} {'lag':>8}", flush=True)
        t0, mark = time.monotonic(), time.time()
        while time.monotonic() - t0 < args.minutes * 60:
            time.sleep(max(0.0, args.interval - (time.monotonic() - t0) % args.interval))
            assert up.poll() is None, "eventflow up exited; see its logs under " + str(home / "logs")
            now = time.time()
            count, p50, worst, lag = batches(state["postgres_url"], mark, now)
            mark = now
            sample = Sample(time.monotonic() - t0, memory(root, home), count, p50, worst, lag)
            samples.append(sample)
            print(f"{sample.elapsed_s / 60:5.1f} " + " ".join(f"{sample.memory_mib[k]:11,.0f}" for k in MEMORY)
                  + f" {count:7d} {p50:6.2f} {worst:6.2f} {lag:8,d}", flush=True)
        pg_shared_cap = shared_cap_mib(state["postgres_url"])
    finally:
        stop(up)
    results = verdict(samples, warmup_s, args.rate, pg_shared_cap)
    print("after the warm-up, median of the first half -> of the last half of the samples:")
    for name, flat, change in results:
        print(f"  {name:<18} {change:>18}  {flat}")
    print(f"(bounded: PostgreSQL's private memory flat, its shared part within shared_buffers + wal_buffers "
          f"= {pg_shared_cap:,.0f} MiB + {SHARED_SLACK_MIB} MiB)")
    growing = [n for n, flat, _ in results if flat == "GROWING"]
    print("not flat: " + ", ".join(growing) if growing else "all flat or bounded")
    return 1 if growing else 0


if __name__ == "__main__":
    sys.exit(main())
