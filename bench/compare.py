"""Side by side on one broker: EventFlow and its Python peers on the same seeded backlog.

    python bench/compare.py [--backlog 1000000] [--backlog-minutes 60] [--rate 20000 --duration 60]
                            [--contenders eventflow,eventflow_python,quix,bare] [--quix-python PATH]

Contenders, each a process of its own, one after the other:
- `eventflow`: jobs/streaming_app.py with Spark's Kafka connector, every query (orders_raw, revenue,
  funnel, rejected records); `eventflow_python`: the same with EventFlow's Python source.
- `quix`: Quix Streams computing the revenue query alone (bench/peers.py quix), in a virtualenv of
  its own (--quix-python; made on first use): quixstreams 3.x requires confluent-kafka < 2.13,
  the project requires >= 2.16, so the two cannot share the project's environment.
- `bare`: confluent-kafka + json.loads + dicts, the revenue query alone (bench/peers.py bare).

One embedded Apache Kafka and PostgreSQL; one backlog of --backlog events (EventGenerator, seed 1,
the seed's 40/40/20 mix) whose event times are spread evenly over the last --backlog-minutes
(0: stamped as produced, a few seconds in all), so that windows close and lateness matters.

Catch-up: each contender reads the whole backlog from the beginning (EventFlow: tables truncated, a
new checkpoint, --available-now; peers: a new consumer group, until every order record is handled).
- events/s = all backlog events (three topics) / wall time from the process's start to its exit
  (JVM or interpreter start included); orders/s = order records / the same time. Peers read `orders` only.
- CPU s per million events = user+sys of the contender's whole process tree (rusage of waited
  children; this script is the subreaper of any orphan, so none escapes) / backlog events x 1e6.
  For EventFlow the PostgreSQL server's CPU over the run is added (and shown in parentheses).
- exact: EventFlow: orders_raw, revenue, funnel and rejected equal expected_tables(), the plain
  Python oracle of eventflow_assets_tests/processing/expected.py over the records read back from
  Kafka; peers: their (window, currency) -> (total, count) equals the oracle's revenue.

Sustained (--rate R, for --duration D): each contender in turn runs from the topics' end
(EventFlow --starting-offsets latest; peers a new group with its offsets set to the end) while R
events/s are produced for D s, then 25 s to drain.
- latency = EventFlow: orders_raw.ingested_at - event time (the row is committed); peers: the time
  the order was counted in memory - event time. p50 / p95 over all orders, and the p50 of the
  first and last third of the run.
- lag "flat" when the last third's p50 is within 5 s of the first third's and every order produced
  was counted by the end of the drain; else "growing".
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import itertools
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import psycopg
from confluent_kafka import Consumer, ConsumerGroupState, TopicPartition
from confluent_kafka.admin import AdminClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # eventflow_assets_tests: the oracle

from streaming import APP, _env, _pct, _reset_tables  # noqa: E402  (bench/streaming.py)

from eventflow_assets.ingestion.events import ORDERS, PRODUCT_VIEW, USER_EVENTS  # noqa: E402
from eventflow_assets.ingestion.generator import EventGenerator  # noqa: E402
from eventflow_assets.ingestion.producer import produce  # noqa: E402
from eventflow_assets.ingestion.topics import provision_topics  # noqa: E402
from eventflow_assets.local.processes import free_port  # noqa: E402
from eventflow_assets.local.stack import LocalStack  # noqa: E402
from eventflow_assets.settings import Settings  # noqa: E402
from eventflow_assets.storage.schema import apply_schema  # noqa: E402
from eventflow_assets_tests.helpers import read_all  # noqa: E402
from eventflow_assets_tests.processing.expected import actual_tables, expected_tables  # noqa: E402

PEERS = Path(__file__).resolve().parent / "peers.py"
QUIX_REQUIREMENT = "quixstreams>=3.28,<4"
QUIX_PYTHON = Path.home() / ".cache" / "eventflow-bench" / "quix-venv" / "bin" / "python"
EVENTFLOW_SOURCES = {"eventflow": "kafka", "eventflow_python": "eventflow_kafka"}
TABLES = ("orders_raw", "revenue", "funnel", "rejected")
DRAIN_S = 25


def spread_clock(count: int, minutes: float):
    """A generator clock that spreads ``count`` events evenly over the last ``minutes``."""
    step, start, ticks = minutes * 60 / max(count, 1), time.time() - minutes * 60, itertools.count()
    return lambda: start + next(ticks) * step


# --- CPU of a process tree ---------------------------------------------------------------------

def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a running process, its reaped children and its live children (PostgreSQL)."""
    proc = psutil.Process(pid)
    t = proc.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in proc.children():
        with contextlib.suppress(psutil.Error):
            total += sum(child.cpu_times()[:2])
    return total


def _reap_orphans(known: set[int], timeout: float = 60) -> None:
    """Wait for descendants re-parented to this process (their subreaper), so their CPU is counted."""
    deadline = time.monotonic() + timeout
    while extra := [c for c in psutil.Process().children() if c.pid not in known]:
        for child in extra:
            with contextlib.suppress(psutil.Error, ChildProcessError):
                if child.status() == psutil.STATUS_ZOMBIE:
                    os.waitpid(child.pid, 0)
                elif time.monotonic() > deadline:
                    child.kill()
        time.sleep(0.2)


def run_measured(cmd: list[str], log: Path, env: dict | None = None, pg_pid: int | None = None) -> dict:
    """Run ``cmd`` to its end: wall time, CPU of its process tree, PostgreSQL's CPU meanwhile, stdout."""
    known = {c.pid for c in psutil.Process().children()}
    cpu0, pg0 = _children_cpu(), _tree_cpu(pg_pid) if pg_pid else 0.0
    started = time.monotonic()
    with open(log, "wb") as err:
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=err)
    wall = time.monotonic() - started
    _reap_orphans(known)
    if proc.returncode:
        raise RuntimeError(f"{cmd[1]} exited with {proc.returncode}; see {log}")
    return {"wall": wall, "cpu": _children_cpu() - cpu0, "pg_cpu": (_tree_cpu(pg_pid) - pg0) if pg_pid else 0.0,
            "stdout": proc.stdout.decode()}


# --- exactness -------------------------------------------------------------------------------

def oracle_revenue(expected: dict) -> dict:
    """The oracle's revenue as the peers report it: (window start ms, currency) -> (cents, count)."""
    return {(int(w.timestamp() * 1000), c): (int(total * 100), n)
            for (w, c, _), (total, n, _) in expected["revenue"].items()}


def peer_exactness(report: dict, revenue: dict) -> str:
    got = {(w, c): (cents, n) for w, c, cents, n in report["windows"]}
    want = sum(n for _, n in revenue.values())
    if got == revenue:
        return f"yes ({report['counted']:,} orders)"
    wrong = sum(1 for k in revenue.keys() | got.keys() if got.get(k) != revenue.get(k))
    return (f"no: {report['counted']:,} of {want:,} orders counted ({report['late']:,} dropped as late), "
            f"{wrong} of {len(revenue)} windows differ")


def eventflow_exactness(url: str, expected: dict) -> str:
    with psycopg.connect(url) as conn:
        actual = actual_tables(conn)
    differ = [t for t in TABLES if actual[t] != expected[t]]
    if not differ:
        return f"yes (4 tables, {len(actual['orders_raw']):,} orders)"
    return (f"no: {', '.join(differ)} differ; orders_raw {len(actual['orders_raw']):,} of "
            f"{len(expected['orders_raw']):,} rows")


# --- catch-up ------------------------------------------------------------------------------------

def seed_backlog(stack, count: int, minutes: float, partitions: int = 3) -> tuple:
    """``count`` events (EventGenerator seed 1, event times over the last ``minutes``; 0: as produced)
    into the stack's topics, and the oracle's tables over the records read back: (stats, expected)."""
    clock = spread_clock(count, minutes) if minutes else time.time
    stats = produce(stack.endpoints.kafka_config(), EventGenerator(seed=1, clock=clock), count=count)
    assert stats.delivered == count, f"only {stats.delivered:,} of {count:,} events delivered"
    records = read_all(stack.endpoints.kafka_bootstrap_servers, (USER_EVENTS, PRODUCT_VIEW, ORDERS), partitions,
                       timeout=600)
    return stats, expected_tables(records)


def catch_up_eventflow(stack, home: Path, source: str, expected: dict, label: str | None = None,
                       env: dict | None = None) -> dict:
    """Emptied tables, a new checkpoint, ``streaming_app.py --available-now`` to its end (its log:
    ``home/catchup-<label>.log``; ``env`` added to the app's), then the exactness check."""
    label = label or source
    _reset_tables(stack.endpoints.postgres_url)
    cmd = [sys.executable, str(APP), "--available-now", "--source-format", source,
           "--checkpoint-dir", str(home / f"chk-catchup-{label}")]
    run = run_measured(cmd, home / f"catchup-{label}.log", {**_env(stack.endpoints, home), **(env or {})},
                       stack.postgres.proc.pid)
    return {**run, "exact": eventflow_exactness(stack.endpoints.postgres_url, expected)}


def catch_up_peer(stack, home: Path, peer: str, python: str, orders: int, revenue: dict) -> dict:
    cmd = [python, str(PEERS), peer, "--bootstrap", stack.endpoints.kafka_bootstrap_servers,
           "--group", f"bench-{peer}-catchup-{time.time_ns()}", "--orders", str(orders)]
    run = run_measured(cmd, home / f"catchup-{peer}.log")
    report = _report(run["stdout"])
    return {**run, "report": report, "exact": peer_exactness(report, revenue)}


def _report(stdout: str) -> dict:
    return json.loads([line for line in stdout.splitlines() if line.startswith('{"peer"')][-1])


# --- sustained -----------------------------------------------------------------------------------

def sustained_eventflow(stack, home: Path, source: str, rate: float, duration: float) -> dict:
    url = stack.endpoints.postgres_url
    _reset_tables(url)
    with open(home / f"sustained-{source}.log", "wb") as log:
        app = subprocess.Popen([sys.executable, str(APP), "--starting-offsets", "latest", "--source-format", source,
                                "--checkpoint-dir", str(home / f"chk-sustained-{source}")],
                               env=_env(stack.endpoints, home), stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until(lambda: _any_progress(url), app, "the stream did not commit a batch")
        time.sleep(15)  # one more trigger: every query has started
        started = time.time()
        stats = produce(stack.endpoints.kafka_config(), EventGenerator(seed=int(rate)), rate=rate, duration=duration)
        time.sleep(DRAIN_S)
        with psycopg.connect(url) as conn:
            samples = [(float(ts), float(lat)) for ts, lat in conn.execute(
                """SELECT extract(epoch FROM "timestamp"), extract(epoch FROM ingested_at - "timestamp")
                   FROM orders_raw WHERE "timestamp" >= to_timestamp(%s)""", (started,))]
    finally:
        app.terminate()
        app.wait(120)
    return _latency(samples, stats)


def sustained_peer(stack, home: Path, peer: str, python: str, rate: float, duration: float) -> dict:
    bootstrap = stack.endpoints.kafka_bootstrap_servers
    group = f"bench-{peer}-sustained-{time.time_ns()}"
    _commit_end_offsets(bootstrap, group)
    with open(home / f"sustained-{peer}.log", "wb") as log:
        proc = subprocess.Popen([python, str(PEERS), peer, "--bootstrap", bootstrap, "--group", group],
                                stdout=subprocess.PIPE, stderr=log)
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        _wait_until(lambda: _group_stable(admin, group), proc, f"the {peer} peer did not join its group")
        stats = produce(stack.endpoints.kafka_config(), EventGenerator(seed=int(rate)), rate=rate, duration=duration)
        time.sleep(DRAIN_S)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    report = _report(out.decode())
    # The peer's own summary of its samples: event times relative to its first and last order.
    lat = report["latency"]
    return {"p50": lat["p50"], "p95": lat["p95"], "early": lat["p50_first_third"], "late": lat["p50_last_third"],
            "counted": report["counted"] + report["late"] + report["duplicates"] + report["invalid"],
            "produced": stats.by_topic["orders"], "rate": stats.rate}


def _latency(samples: list[tuple[float, float]], stats) -> dict:
    lat = sorted(s for _, s in samples)
    lo, hi = (min(t for t, _ in samples), max(t for t, _ in samples)) if samples else (0, 0)
    third = (hi - lo) / 3
    return {"p50": _pct(lat, 50), "p95": _pct(lat, 95),
            "early": _pct(sorted(s for t, s in samples if t < lo + third), 50),
            "late": _pct(sorted(s for t, s in samples if t >= hi - third), 50),
            "counted": len(samples), "produced": stats.by_topic["orders"], "rate": stats.rate}


def _commit_end_offsets(bootstrap: str, group: str) -> None:
    """A new group positioned at the end of `orders`: the peer reads only what comes next."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        partitions = c.list_topics("orders", timeout=10).topics["orders"].partitions
        ends = [TopicPartition("orders", p, c.get_watermark_offsets(TopicPartition("orders", p), timeout=10)[1])
                for p in partitions]
        c.commit(offsets=ends, asynchronous=False)
    finally:
        c.close()


def _group_stable(admin: AdminClient, group: str) -> bool:
    try:
        desc = admin.describe_consumer_groups([group], request_timeout=5)[group].result()
    except Exception:  # not there yet
        return False
    return desc.state == ConsumerGroupState.STABLE and any(
        tp.topic == "orders" for m in desc.members for tp in m.assignment.topic_partitions)


def _any_progress(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT EXISTS (SELECT 1 FROM stream_progress)").fetchone()[0]


def _wait_until(condition, proc: subprocess.Popen, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(what)
        time.sleep(0.5)


# --- the run ---------------------------------------------------------------------------------------

def quix_python(path: Path) -> str:
    if not path.exists():
        venv = path.parent.parent
        print(f"making {venv} with {QUIX_REQUIREMENT} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(path), "-m", "pip", "install", "-q", QUIX_REQUIREMENT], check=True)
    return str(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backlog", type=int, default=1_000_000, help="events in the backlog")
    parser.add_argument("--backlog-minutes", type=float, default=60.0,
                        help="event times spread over this many minutes up to now (0: as produced)")
    parser.add_argument("--rate", type=float, help="sustained phase: events/s (default: no sustained phase)")
    parser.add_argument("--duration", type=float, default=60.0, help="sustained phase: seconds of producing")
    parser.add_argument("--contenders", default="eventflow,eventflow_python,quix,bare")
    parser.add_argument("--quix-python", type=Path, default=QUIX_PYTHON, help="an interpreter with quixstreams")
    args = parser.parse_args()
    contenders = [c for c in args.contenders.split(",") if c]
    unknown = set(contenders) - {*EVENTFLOW_SOURCES, "quix", "bare"}
    if unknown:
        parser.error(f"unknown contenders: {', '.join(sorted(unknown))}")
    python = {"bare": sys.executable, "quix": quix_python(args.quix_python) if "quix" in contenders else ""}
    home = Path(tempfile.mkdtemp(prefix="eventflow-compare-"))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphaned descendants come back to us
    settings = Settings.from_env({"EVENTFLOW_HOME": str(home)})
    results: dict[str, dict] = {c: {} for c in contenders}
    with LocalStack(settings, free_port(), free_port()) as stack:
        kafka = stack.endpoints.kafka_config()
        provision_topics(kafka)
        apply_schema(stack.endpoints.postgres_url)
        stats, expected = seed_backlog(stack, args.backlog, args.backlog_minutes)
        orders = stats.by_topic["orders"]
        revenue = oracle_revenue(expected)
        print(f"backlog: {args.backlog:,} events ({orders:,} orders, {len(expected['orders_raw']):,} valid and "
              f"distinct), event times over {args.backlog_minutes:g} min; {len(revenue)} revenue windows", flush=True)
        for c in contenders:
            if c in EVENTFLOW_SOURCES:
                r = catch_up_eventflow(stack, home, EVENTFLOW_SOURCES[c], expected)
            else:
                r = catch_up_peer(stack, home, c, python[c], orders, revenue)
            results[c]["catch_up"] = r
            extra = (f" + PostgreSQL {r['pg_cpu']:.1f}" if c in EVENTFLOW_SOURCES else
                     f"; in-process {r['report']['processing_s']:.1f}s from first to last record")
            print(f"catch-up [{c}]: {r['wall']:.1f}s wall = {args.backlog / r['wall']:,.0f} events/s "
                  f"({orders / r['wall']:,.0f} orders/s); CPU {r['cpu']:.1f}s{extra}; exact: {r['exact']}", flush=True)
        if args.rate:
            for c in contenders:
                r = (sustained_eventflow(stack, home, EVENTFLOW_SOURCES[c], args.rate, args.duration)
                     if c in EVENTFLOW_SOURCES else sustained_peer(stack, home, c, python[c], args.rate, args.duration))
                results[c]["sustained"] = r
                print(f"sustained [{c}] {args.rate:,.0f} events/s for {args.duration:g}s "
                      f"({r['rate']:,.0f} produced/s): latency p50 {_s(r['p50'])} p95 {_s(r['p95'])} "
                      f"(p50 first third {_s(r['early'])}, last third {_s(r['late'])}); "
                      f"{r['counted']:,} of {r['produced']:,} orders processed", flush=True)
    print()
    print(table(results, args, orders))
    print(f"\nlogs: {home}")
    return 0


def _s(value) -> str:
    return "-" if value is None or value != value else f"{value:.2f}s"


def table(results: dict, args, orders: int) -> str:
    rate = f"{args.rate:,.0f} ev/s" if args.rate else ""
    lines = [f"| contender | catch-up events/s (all 3 topics) | orders/s | CPU s per M events | exact | "
             f"latency p50 / p95{' at ' + rate if rate else ''} | lag |",
             "|---|---|---|---|---|---|---|"]
    for c, r in results.items():
        cu, su = r["catch_up"], r.get("sustained")
        cpu = (cu["cpu"] + cu["pg_cpu"]) / args.backlog * 1e6
        cpu_text = f"{cpu:.1f} (PostgreSQL {cu['pg_cpu'] / args.backlog * 1e6:.1f})" if c in EVENTFLOW_SOURCES \
            else f"{cpu:.1f}"
        if su:
            flat = (su["late"] is not None and su["early"] is not None and su["late"] - su["early"] < 5
                    and su["counted"] >= su["produced"])
            latency, lag = f"{_s(su['p50'])} / {_s(su['p95'])}", "flat" if flat else "growing"
        else:
            latency = lag = "-"
        lines.append(f"| {c} | {args.backlog / cu['wall']:,.0f} | {orders / cu['wall']:,.0f} | {cpu_text} | "
                     f"{cu['exact']} | {latency} | {lag} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
