"""The sink tables' materializations, read from the stream's own record wherever the stream runs.

Every micro-batch of every query leaves a row in ``stream_progress`` (``processing/progress.py``):
its checkpoint's query id, batch id, the rows each table received (``table_rows``, copied from
the exactly-once ledger ``stream_batches``), input, late and rejected rows, watermark, lag and
duration. The stream writes it whether it runs under ``streaming_job``, as ``python
jobs/streaming_app.py``, in the compose file's container or by ``spark-submit`` on a cluster, so
the ``sink_table_materializations`` sensor reads it and reports, per table, one
``AssetMaterialization`` summarizing the batches since its cursor (``SensorResult(asset_events=...)``,
the idiom for tables written outside Dagster). Materializations, not observations: the stream
changed the table's contents, and materializations are what freshness, automation conditions
and the asset's "last materialized" follow.

At most one event per table per minute: the daemon evaluates the sensor at most every
``REPORT_INTERVAL_S`` (its ``minimum_interval_seconds``) and each evaluation reports a table once.
The cursor also refuses a report within ``REPORT_GUARD_S`` of the previous one on the sensor's own
clock, for evaluations outside the daemon's cadence; it is set 10 s below the interval because a
regular tick's evaluation can start a little less than 60 s after the previous one's (the daemon
spaces tick *starts*; the code server's latency varies: measured 59.999 to 60.063 s between
evaluations on an idle daemon), and a strict 60 s would then skip that tick and leave a two-minute
gap. Batches held back wait for the next report. A table only gets an
event for a period in which it received rows.

The cursor keeps, per query and checkpoint (Spark's persistent query id), the last batch id
reported: a new checkpoint (batch ids restart at 0) is a key of its own, and a batch recorded again
(same ids) is never counted twice. Rows are read by ``recorded_at`` from a little before the last
reported batch (``RESCAN_S``, for rows committed late), or over the last ``FIRST_LOOKBACK_S``
without a cursor (a new instance over a stream that already ran).

Metadata of each event (the asset page's Metadata > Plots draws the numbers over time):
- ``rows_written``: rows the table received; ``rows_per_s``: those over ``period_s``, the seconds
  from the newest batch the previous tick read (for the first report: from the start of the
  earliest batch summarized) to the newest batch summarized;
- ``batches`` (of the queries that write the table), ``batches_with_rows``, ``input_rows``,
  ``late_rows`` (dropped by the watermark), ``rejected_rows`` (kept in rejected_events);
- ``lag``: records waiting in Kafka as of each query's newest batch, summed over the queries;
- ``batch_duration_s_avg`` / ``batch_duration_s_max``;
- ``watermark`` (the lowest of the queries' newest watermarks: the table is complete up to it) and
  ``watermark_delay_s`` (how far it trails the newest batch's time);
- ``dagster/row_count``: the table's rows when the sensor reports (``count(*)``, one snapshot for all);
- ``table_size_bytes``: the table on disk when reported, indexes and TOAST included
  (``pg_total_relation_size``). On the materializations because the size only grows when rows are
  written (deleted rows' space is reused, not returned to the system), so each report catches it.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import dagster as dg
import psycopg

from eventflow_assets.errors import EventFlowError, first_line
from eventflow_assets.orchestration.assets.tables import table_key
from eventflow_assets.orchestration.probes import table_sizes
from eventflow_assets.orchestration.resources import EventFlowEndpoints
from eventflow_assets.processing.queries import QUERY_TABLES
from eventflow_assets.storage.postgres import connect, row_counts

SENSOR = "sink_table_materializations"
REPORT_INTERVAL_S = 60
REPORT_GUARD_S = 50
RESCAN_S = 300
FIRST_LOOKBACK_S = 3600
CHECKPOINTS_KEPT = 4  # per query, in the cursor

# Table -> the queries that write it, in QUERY_TABLES' order.
TABLE_QUERIES: dict[str, tuple[str, ...]] = {}
for _query, _tables in QUERY_TABLES.items():
    for _table in _tables:
        TABLE_QUERIES[_table] = TABLE_QUERIES.get(_table, ()) + (_query,)

_clock = time.time  # tests move time forward

_BATCHES = """
    SELECT query_name, checkpoint_id, batch_id, recorded_at, watermark, input_rows, late_rows, rejected_rows,
           duration_ms, lag, table_rows
    FROM stream_progress
    WHERE query_name = ANY(%(queries)s)
      AND recorded_at > COALESCE(%(since)s, now() - make_interval(secs => %(lookback)s))
    ORDER BY recorded_at, query_name, batch_id"""


def _iso(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).isoformat()


def _fmt(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def read_batches(postgres_url: str, since: datetime | None) -> list[dict]:
    """``stream_progress`` rows recorded after ``since`` (without it: in the last FIRST_LOOKBACK_S)."""
    with connect(postgres_url, connect_timeout=5) as conn:
        conn.execute("SET statement_timeout = '20s'")
        cur = conn.execute(_BATCHES, {"queries": list(QUERY_TABLES), "since": since, "lookback": FIRST_LOOKBACK_S})
        names = [d.name for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def new_batches(rows: list[dict], reported: dict) -> list[dict]:
    """The rows whose batch id is past the cursor's last one for their query and checkpoint."""
    return [r for r in rows
            if r["batch_id"] > reported.get(r["query_name"], {}).get(r["checkpoint_id"], {}).get("batch", -1)]


def advance(reported: dict, batches: list[dict]) -> dict:
    """The cursor's {query: {checkpoint: {"batch", "at"}}} after ``batches``; the CHECKPOINTS_KEPT
    most recently seen checkpoints of each query are kept."""
    out = {q: {c: dict(v) for c, v in cps.items()} for q, cps in reported.items()}
    for b in batches:
        entry = out.setdefault(b["query_name"], {}).setdefault(b["checkpoint_id"], {"batch": -1, "at": 0.0})
        entry["batch"] = max(entry["batch"], b["batch_id"])
        entry["at"] = max(entry["at"], b["recorded_at"].timestamp())
    return {q: dict(sorted(cps.items(), key=lambda kv: kv[1]["at"], reverse=True)[:CHECKPOINTS_KEPT])
            for q, cps in out.items()}


def table_summary(table: str, batches: list[dict], previous_until: datetime | None) -> dict | None:
    """The metadata of one table's event over ``batches`` (all new batches, any query); None when
    the table received no rows in them."""
    mine = [b for b in batches if b["query_name"] in TABLE_QUERIES[table]]
    rows = [int(b["table_rows"].get(table, 0)) for b in mine]
    if not mine or sum(rows) == 0:
        return None
    until = max(b["recorded_at"] for b in mine)
    start = previous_until.timestamp() if previous_until else min(
        b["recorded_at"].timestamp() - b["duration_ms"] / 1000.0 for b in mine)
    period = until.timestamp() - start
    newest = {}
    for b in sorted(mine, key=lambda b: b["recorded_at"]):
        newest[b["query_name"]] = b
    durations = [b["duration_ms"] / 1000.0 for b in mine]
    metadata: dict = {
        "rows_written": dg.MetadataValue.int(sum(rows)),
        "period_s": dg.MetadataValue.float(round(period, 3)),
        "batches": dg.MetadataValue.int(len(mine)),
        "batches_with_rows": dg.MetadataValue.int(sum(1 for n in rows if n)),
        "input_rows": dg.MetadataValue.int(sum(b["input_rows"] for b in mine)),
        "late_rows": dg.MetadataValue.int(sum(b["late_rows"] for b in mine)),
        "rejected_rows": dg.MetadataValue.int(sum(b["rejected_rows"] for b in mine)),
        "lag": dg.MetadataValue.int(sum(int(n) for b in newest.values() for n in b["lag"].values())),
        "batch_duration_s_avg": dg.MetadataValue.float(round(sum(durations) / len(durations), 3)),
        "batch_duration_s_max": dg.MetadataValue.float(max(durations)),
    }
    if period > 0:
        metadata["rows_per_s"] = dg.MetadataValue.float(round(sum(rows) / period, 3))
    watermarks = [b["watermark"] for b in newest.values() if b["watermark"] is not None]
    if watermarks:
        metadata["watermark"] = dg.MetadataValue.timestamp(min(watermarks))
        metadata["watermark_delay_s"] = dg.MetadataValue.float(round((until - min(watermarks)).total_seconds(), 3))
    ranges = []
    for query in TABLE_QUERIES[table]:
        ids = [b["batch_id"] for b in mine if b["query_name"] == query]
        if ids:
            ranges.append(f"{query} {min(ids)}-{max(ids)}" if len(ids) > 1 else f"{query} {ids[0]}")
    metadata["queries"] = dg.MetadataValue.text(", ".join(ranges))
    return metadata


def with_table_figures(context: dg.SensorEvaluationContext, postgres_url: str,
                       events: list[dg.AssetMaterialization]) -> list[dg.AssetMaterialization]:
    """``events`` with each table's ``table_size_bytes`` and ``dagster/row_count`` as of this report;
    a figure the database cannot give now is left out (the report itself still stands)."""
    tables = [e.asset_key.path[-1] for e in events]
    figures: dict[str, dict] = {t: {} for t in tables}
    for name, read in (("table_size_bytes", table_sizes), ("dagster/row_count", row_counts)):
        try:
            for table, value in read(postgres_url, tables).items():
                figures[table][name] = dg.MetadataValue.int(value)
        except (EventFlowError, psycopg.Error) as exc:
            context.log.warning(f"{name} left out: {first_line(exc)}")
    return [e.with_metadata({**e.metadata, **figures[e.asset_key.path[-1]]}) for e in events]


def summarize(batches: list[dict], previous_until: datetime | None) -> list[dg.AssetMaterialization]:
    """One materialization per table that received rows in ``batches``, in TABLE_QUERIES' order."""
    events = []
    for table in TABLE_QUERIES:
        metadata = table_summary(table, batches, previous_until)
        if metadata is not None:
            mine = [b for b in batches if b["query_name"] in TABLE_QUERIES[table]]
            first, last = min(b["recorded_at"] for b in mine), max(b["recorded_at"] for b in mine)
            events.append(dg.AssetMaterialization(
                asset_key=table_key(table), metadata=metadata,
                description=f"{metadata['rows_written'].value} rows from {len(mine)} micro-batches recorded "
                            f"{_fmt(first)} to {_fmt(last)} ({metadata['queries'].value})"))
    return events


@dg.sensor(name=SENSOR, minimum_interval_seconds=REPORT_INTERVAL_S, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Reports the sink tables' materializations from stream_progress, the stream's own record of "
                       "every micro-batch, wherever the stream runs (streaming_job, jobs/streaming_app.py, its own "
                       "container, spark-submit): at most one per table per minute, summarizing the batches since "
                       "the last report (rows written and per second, batches, input, late and rejected rows, lag, "
                       "batch duration, watermark and its delay, the table's size on disk).")
def sink_table_materializations(context: dg.SensorEvaluationContext, eventflow: EventFlowEndpoints):
    cursor = json.loads(context.cursor) if context.cursor else {}
    now = _clock()
    if cursor.get("reported_at") is not None and now - cursor["reported_at"] < REPORT_GUARD_S:
        return dg.SkipReason(f"reported {now - cursor['reported_at']:.0f}s ago: at most one report per table "
                             f"a minute; newer batches wait for the next tick")
    previous_until = datetime.fromisoformat(cursor["until"]) if cursor.get("until") else None
    since = None if previous_until is None else datetime.fromtimestamp(
        previous_until.timestamp() - RESCAN_S, tz=timezone.utc)
    try:
        url = eventflow.endpoints().postgres_url
        rows = read_batches(url, since)
    except (EventFlowError, psycopg.Error) as exc:
        return dg.SkipReason(f"cannot read stream_progress: {first_line(exc)}")
    batches = new_batches(rows, cursor.get("batches", {}))
    if not batches:
        where = (f"since {_fmt(previous_until)}" if previous_until
                 else f"in the last {FIRST_LOOKBACK_S // 60} minutes (has the stream run?)")
        return dg.SkipReason(f"no new micro-batch recorded in stream_progress {where}")
    events = summarize(batches, previous_until)
    until = max([b["recorded_at"] for b in batches] + ([previous_until] if previous_until else []))
    new_cursor = {"until": _iso(until), "batches": advance(cursor.get("batches", {}), batches),
                  "reported_at": now if events else cursor.get("reported_at")}
    if not events:
        return dg.SensorResult(skip_reason=f"{len(batches)} new micro-batches wrote no rows to the sink tables",
                               cursor=json.dumps(new_cursor))
    return dg.SensorResult(asset_events=with_table_figures(context, url, events), cursor=json.dumps(new_cursor))
