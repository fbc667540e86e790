"""What `eventflow status` reports: topic end offsets, streaming progress, table row counts, how far
the analytics are (rows, last computed, latest window of the revenue trends), and a verdict a
script can gate on (:func:`health`: the command's exit status)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from psycopg import sql

from eventflow_assets.ingestion.kafka_clients import admin_client, check_reachable
from eventflow_assets.ingestion.offsets import partition_ranges
from eventflow_assets.ingestion.topics import TOPICS
from eventflow_assets.processing.queries import QUERY_NAMES
from eventflow_assets.settings import Endpoints
from eventflow_assets.storage.postgres import connect
from eventflow_assets.storage.schema import apply_schema
from eventflow_assets.storage.tables import (
    CONVERSION_TABLE,
    SEGMENTS_TABLE,
    SINK_TABLES,
    TOP_REVENUE_TABLE,
    TRENDS_TABLES,
)

TABLES = SINK_TABLES
STALE_AFTER = timedelta(minutes=2)
ANALYTICS = (TRENDS_TABLES["five_min"], TOP_REVENUE_TABLE, CONVERSION_TABLE, SEGMENTS_TABLE)


def collect_status(endpoints: Endpoints) -> dict:
    config = endpoints.kafka_config()
    metadata = check_reachable(admin_client(config), endpoints.kafka_bootstrap_servers)
    partitions = [(s.name, p) for s in TOPICS if s.name in metadata.topics
                  for p in sorted(metadata.topics[s.name].partitions)]
    ranges = partition_ranges(config, partitions)
    topics = {}
    for spec in TOPICS:
        if spec.name not in metadata.topics:
            topics[spec.name] = None
            continue
        ends = {p: hi for (t, p), (_, hi) in ranges.items() if t == spec.name}
        topics[spec.name] = {"end_offsets": ends, "records": sum(hi - lo for (t, _), (lo, hi) in ranges.items()
                                                                  if t == spec.name)}
    apply_schema(endpoints.postgres_url)
    with connect(endpoints.postgres_url) as conn:
        tables = {t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]
                  for t in TABLES}
        streaming = {}
        for row in conn.execute("""
                SELECT DISTINCT ON (query_name) query_name, batch_id, recorded_at, watermark, input_rows,
                       rejected_rows, late_rows, duration_ms, lag, read_offsets
                FROM stream_progress ORDER BY query_name, recorded_at DESC"""):
            name, batch_id, recorded_at, watermark, input_rows, rejected, late, duration_ms, lag, read = row
            streaming[name] = {"batch_id": batch_id, "recorded_at": recorded_at, "watermark": watermark,
                               "input_rows": input_rows, "rejected_rows": rejected, "late_rows": late,
                               "duration_ms": duration_ms, "lag": sum(lag.values()) if lag else 0,
                               "waiting": waiting(read, ranges)}
        analytics = {}
        for t in ANALYTICS:
            rows, computed_at = conn.execute(sql.SQL("SELECT count(*), max(computed_at) FROM {}").format(
                sql.Identifier(t))).fetchone()
            analytics[t] = {"rows": rows, "computed_at": computed_at}
        five_min = TRENDS_TABLES["five_min"]
        analytics[five_min]["latest_window_end"] = conn.execute(
            sql.SQL("SELECT max(window_end) FROM {}").format(sql.Identifier(five_min))).fetchone()[0]
    return {"topics": topics, "streaming": streaming, "tables": tables, "analytics": analytics}


def waiting(read_offsets: dict, ranges: dict) -> int:
    """Records in the partitions now beyond what a query's last batch read."""
    total = 0
    for key, offset in (read_offsets or {}).items():
        topic, _, part = key.rpartition(":")
        _, end = ranges.get((topic, int(part)), (0, offset))
        total += max(0, end - offset)
    return total


def health(report: dict, now: datetime | None = None, max_silence: float | None = None) -> tuple[int, list[str]]:
    """(exit status, problems): 0 when every query committed a batch in the last two minutes or has
    nothing waiting; 1 when a query never ran, or has records waiting and no commit for two minutes.

    With ``max_silence`` (seconds), also 1 when a query recorded nothing for that long: a running
    stream records progress at least every 10 s even when idle, so silence means it is down.
    """
    now = now or datetime.now(timezone.utc)
    problems = []
    for name in QUERY_NAMES:
        s = report["streaming"].get(name)
        if s is None:
            problems.append(f"{name}: no micro-batch recorded yet")
            continue
        silent = now - s["recorded_at"]
        if s["waiting"] and silent > STALE_AFTER:
            problems.append(f"{name}: {s['waiting']:,} records waiting, last batch {silent.total_seconds() / 60:.0f} "
                            "min ago")
        elif max_silence is not None and silent.total_seconds() > max_silence:
            problems.append(f"{name}: no progress recorded for {silent.total_seconds():.0f}s (more than "
                            f"{max_silence:g}s): the stream is not running")
    return (1 if problems else 0), problems


def render_status(report: dict, code: int | None = None, problems: list[str] | None = None) -> str:
    lines = ["Topics (end offset per partition):"]
    for name, info in report["topics"].items():
        if info is None:
            lines.append(f"  {name:<14} missing (run `eventflow up` or `eventflow produce`)")
            continue
        parts = "  ".join(f"p{p}={off:,}" for p, off in sorted(info["end_offsets"].items()))
        lines.append(f"  {name:<14} {parts}   ({info['records']:,} records)")
    lines.append("Streaming:")
    if not report["streaming"]:
        lines.append("  no micro-batch recorded yet")
    for name, s in sorted(report["streaming"].items()):
        lines.append(f"  {name:<26} batch {s['batch_id']}  watermark {s['watermark'] or '-'}  lag {s['lag']:,}  "
                     f"last batch {s['input_rows']:,} rows in {s['duration_ms']:,} ms "
                     f"({s['rejected_rows']:,} rejected, {s['late_rows']:,} late)  at {s['recorded_at']:%H:%M:%S}")
    lines.append("Tables (rows):")
    lines += [f"  {t:<26} {n:,}" for t, n in report["tables"].items()]
    lines.append("Analytics (rows, last computed):")
    for t, a in report["analytics"].items():
        when = f"{a['computed_at']:%Y-%m-%d %H:%M:%S %Z}" if a["computed_at"] else "never"
        latest = f", latest window ends {a['latest_window_end']:%Y-%m-%d %H:%M %Z}" if a.get("latest_window_end") else ""
        lines.append(f"  {t:<34} {a['rows']:,}  computed {when}{latest}")
    if code is None:
        code, problems = health(report)
    lines.append("Health: " + ("ok" if code == 0 else "STALE (exit status 1)"))
    lines += [f"  {p}" for p in problems]
    return "\n".join(lines)
