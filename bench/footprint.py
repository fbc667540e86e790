"""Footprint of the whole platform as `make up` runs it: start-up time and CPU and memory at rest.

    python bench/footprint.py [--minutes 5] [--rate 10] [--home DIR]

Runs `eventflow up` (embedded Apache Kafka and PostgreSQL, Dagster, the stream, the producer at
--rate events/s) on free ports with its own EVENTFLOW_HOME (a new temporary one unless --home
names one: run twice with the same --home for a warm start), and prints:

- seconds from the command's start to the stream's first committed micro-batch (the first
  ``stream_progress`` row of the ``orders`` query with input) and to the producer's first events;
- after that, over --minutes: CPU used by every process of the tree, as a share of the machine's
  cores, in total and per kind of process; resident memory (sum of RSS) at the end;
- the Kafka broker's heap setting and resident memory.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import psutil
import psycopg

from eventflow_assets.local.processes import free_port
from eventflow_assets.local.stack import running_stack_state
from eventflow_assets.processing.spark import STREAM_APP


def _kind(proc: psutil.Process) -> str:
    try:  # a process can end between two reads: short-lived ones (rm, psql) come and go
        cmd, name = " ".join(proc.cmdline()), proc.name()
    except psutil.Error:
        return "gone"
    if "kafka.Kafka" in cmd:
        return "kafka"
    if "postgres" in name:
        return "postgres"
    if "java" in name:
        return "spark-stream" if STREAM_APP in cmd else "spark-other"
    if "dagster" in cmd:
        return "dagster"
    if "eventflow_assets.cli" in cmd or cmd.endswith("eventflow up") or " up " in cmd:
        return "eventflow-up"
    return "python-other"


def _tree(root: psutil.Process) -> list[psutil.Process]:
    return [root, *root.children(recursive=True)]


def _cpu(procs) -> dict[int, tuple[str, float]]:
    out = {}
    for p in procs:
        try:
            t = p.cpu_times()
            out[p.pid] = (_kind(p), t.user + t.system + t.children_user + t.children_system)
        except psutil.Error:
            pass
    return out


def _first_batch(url: str, since: float) -> bool:
    """A batch of the orders query with input committed after ``since`` (epoch seconds): this run's."""
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            return conn.execute("SELECT count(*) FROM stream_progress WHERE query_name = 'orders' "
                                "AND input_rows > 0 AND recorded_at >= to_timestamp(%s)", (since,)).fetchone()[0] > 0
    except psycopg.Error:
        return False


def launch(rate: float, home: Path) -> tuple[subprocess.Popen, dict, float, float]:
    """`eventflow up --rate R` on free ports with its own EVENTFLOW_HOME, in its own session;
    returns the process, the stack's state (services' addresses) once it is up, and when it started
    (monotonic, epoch)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTFLOW_")}
    env["EVENTFLOW_HOME"] = str(home)
    cmd = [sys.executable, "-m", "eventflow_assets.cli", "up", "--rate", str(rate),
           "--kafka-port", str(free_port()), "--postgres-port", str(free_port()), "--dagster-port", str(free_port()),
           "--dashboard-port", str(free_port())]
    started, started_at = time.monotonic(), time.time()
    up = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
    state = None
    try:
        while state is None:
            assert up.poll() is None, "eventflow up exited; see its logs under " + str(home / "logs")
            state = running_stack_state(home)
            time.sleep(0.5)
    except BaseException:
        stop(up)
        raise
    return up, state, started, started_at


def wait_for_first_batch(up: subprocess.Popen, state: dict, started: float, started_at: float, home: Path) -> None:
    while not _first_batch(state["postgres_url"], started_at):
        assert up.poll() is None, "eventflow up exited; see its logs under " + str(home / "logs")
        assert time.monotonic() - started < 900, "no committed batch within 15 minutes"
        time.sleep(0.5)


def stop(up: subprocess.Popen) -> None:
    """Ctrl-C, as a user stops it; killed with its whole session after 2 minutes."""
    up.send_signal(signal.SIGINT)
    try:
        up.wait(120)
    except subprocess.TimeoutExpired:
        os.killpg(up.pid, signal.SIGKILL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--home", help="EVENTFLOW_HOME (default: a new temporary folder)")
    args = parser.parse_args()
    home = Path(args.home or tempfile.mkdtemp(prefix="eventflow-footprint-")).absolute()
    up, state, started, started_at = launch(args.rate, home)
    root = psutil.Process(up.pid)
    try:
        services_s = time.monotonic() - started
        wait_for_first_batch(up, state, started, started_at, home)
        first_batch_s = time.monotonic() - started
        print(f"services up after {services_s:.1f}s; first committed batch of the orders query after {first_batch_s:.1f}s")
        before = _cpu(_tree(root))
        t0 = time.monotonic()
        time.sleep(args.minutes * 60)
        procs = _tree(root)
        after = _cpu(procs)
        wall = time.monotonic() - t0
        by_kind: dict[str, float] = defaultdict(float)
        for pid, (kind, seconds) in after.items():
            by_kind[kind] += seconds - before.get(pid, (kind, 0.0))[1]
        cores = psutil.cpu_count()
        total = sum(by_kind.values())
        rss: dict[str, int] = defaultdict(int)
        kafka_heap = "?"
        for p in procs:
            try:
                rss[_kind(p)] += p.memory_info().rss
                if _kind(p) == "kafka":
                    kafka_heap = re.search(r"-Xmx(\S+)", " ".join(p.cmdline())).group(1)
            except psutil.Error:
                pass
        print(f"CPU over {wall / 60:.1f} min at {args.rate:g} events/s: {total / wall / cores:.1%} of {cores} cores "
              f"({total:.0f} CPU-s)")
        for kind, seconds in sorted(by_kind.items(), key=lambda kv: -kv[1]):
            print(f"  {kind:<14} {seconds / wall / cores:6.1%}  rss {rss[kind] / 2**20:7.0f} MiB")
        print(f"resident memory, all processes: {sum(rss.values()) / 2**30:.2f} GiB; "
              f"Kafka heap -Xmx{kafka_heap}, Kafka RSS {rss['kafka'] / 2**20:.0f} MiB")
    finally:
        stop(up)
    return 0


if __name__ == "__main__":
    sys.exit(main())
