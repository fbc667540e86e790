"""After every micro-batch, one row per query in ``stream_progress``: what the CLI and Dagster read.

The latest row of a query is the one recorded last (batch ids restart with a new checkpoint).

A Spark ``StreamingQueryListener`` on the driver. Progress is monitoring, not data: a row is
upserted by (query, batch id), and a failure to write it is logged, never raised into Spark.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime

from psycopg.types.json import Jsonb
from pyspark.sql.streaming import StreamingQueryListener

from eventflow_assets.ingestion.offsets import end_offsets
from eventflow_assets.storage.postgres import connect

log = logging.getLogger("eventflow.progress")
_EPOCH = "1970-01-01T00:00:00.000Z"


def parse_watermark(text: str | None) -> datetime | None:
    """Spark's watermark text as a datetime; None before the first watermark.

    Also None, with a warning, for one Python cannot represent: a checkpoint written before
    far-future event times were rejected can hold a watermark like ``+10000-11-20T09:53:00.000Z``,
    and the batch's row must still be recorded.
    """
    if text in (None, _EPOCH):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        log.warning("watermark %r is outside the dates Python can represent: recorded as NULL", text)
        return None


def batch_ends(p) -> dict[tuple[str, int], int]:
    """{(topic, partition): offset the batch read up to}, over all sources of the query."""
    ends = {}
    for source in p.sources:
        for topic, parts in (json.loads(source.endOffset) if source.endOffset else {}).items():
            for part, offset in parts.items():
                ends[(topic, int(part))] = int(offset)
    return ends


def progress_row(p, log_ends: dict[tuple[str, int], int] | None = None) -> dict:
    """The figures of one StreamingQueryProgress that EventFlow keeps.

    ``log_ends`` are the partitions' end offsets right after the batch; lag is how many
    records they are ahead of what the batch read. Without them, lag counts only what the
    batch itself left for later (``maxOffsetsPerTrigger``).
    """
    ends = batch_ends(p)
    if log_ends is None:
        log_ends = {}
        for source in p.sources:
            for topic, parts in (json.loads(source.latestOffset) if source.latestOffset else {}).items():
                for part, offset in parts.items():
                    log_ends[(topic, int(part))] = int(offset)
    lag = {f"{t}:{part}": max(0, log_ends.get((t, part), end) - end) for (t, part), end in sorted(ends.items())}
    metrics = p.observedMetrics or {}
    return {
        "query_name": p.name,
        "checkpoint_id": str(p.id),  # the query id kept in the checkpoint, as the sinks' ledger uses
        "batch_id": p.batchId,
        "watermark": parse_watermark((p.eventTime or {}).get("watermark")),
        "input_rows": p.numInputRows,
        "late_rows": sum(op.numRowsDroppedByWatermark for op in p.stateOperators),
        "rejected_rows": sum(int(row["rejected"]) for name, row in metrics.items() if name.startswith("parse:")),
        "duration_ms": int((p.durationMs or {}).get("triggerExecution", 0)),
        "lag": lag,
        "read_offsets": {f"{t}:{part}": end for (t, part), end in sorted(ends.items())},
    }


def record_progress(postgres_url: str, row: dict) -> None:
    with connect(postgres_url) as conn:
        conn.execute("""
            INSERT INTO stream_progress (query_name, checkpoint_id, batch_id, watermark, input_rows, output_rows,
                                         late_rows, rejected_rows, duration_ms, lag, read_offsets, table_rows)
            SELECT %(query_name)s, %(checkpoint_id)s, %(batch_id)s, %(watermark)s, %(input_rows)s,
                   COALESCE(b.row_count, 0), %(late_rows)s, %(rejected_rows)s, %(duration_ms)s, %(lag)s,
                   %(read_offsets)s, COALESCE(b.table_rows, '{}')
            FROM (SELECT 1) AS one
            LEFT JOIN stream_batches b ON b.query_name = %(query_name)s AND b.checkpoint_id = %(checkpoint_id)s
                                      AND b.batch_id = %(batch_id)s
            ON CONFLICT (query_name, checkpoint_id, batch_id) DO UPDATE SET
                recorded_at = now(), watermark = EXCLUDED.watermark, input_rows = EXCLUDED.input_rows,
                output_rows = EXCLUDED.output_rows, late_rows = EXCLUDED.late_rows,
                rejected_rows = EXCLUDED.rejected_rows, duration_ms = EXCLUDED.duration_ms, lag = EXCLUDED.lag,
                read_offsets = EXCLUDED.read_offsets, table_rows = EXCLUDED.table_rows""",
                     {**row, "lag": Jsonb(row["lag"]), "read_offsets": Jsonb(row.get("read_offsets", {}))})


class ProgressRecorder(StreamingQueryListener):
    """Spark delivers progress events asynchronously: a caller that stops listening when its
    queries end must first :meth:`wait_for` their last batches, or those rows are never written
    (with availableNow, the last batch is the one that moves the watermark)."""

    def __init__(self, postgres_url: str, query_names, on_progress=None, kafka_config: dict | None = None):
        self.url = postgres_url
        self.query_names = set(query_names)
        self.on_progress = on_progress
        self.kafka_config = kafka_config
        self._handled: dict[str, int] = {}
        self._changed = threading.Condition()

    def wait_for(self, batches: dict[str, int], timeout: float) -> list[str]:
        """Wait until the progress of batch ``batches[name]`` of each query has been handled
        (recorded, or failed and logged); returns the queries still waiting after ``timeout``."""
        def missing():
            return [n for n, b in batches.items() if self._handled.get(n, -1) < b]
        with self._changed:
            self._changed.wait_for(lambda: not missing(), timeout)
            return missing()

    def _log_ends(self, progress) -> dict | None:
        if not self.kafka_config:
            return None
        try:
            return end_offsets(self.kafka_config, sorted(batch_ends(progress)), timeout=5.0)
        except Exception:  # noqa: BLE001 - fall back to the lag Spark planned with
            log.warning("could not read end offsets for the lag of %s", progress.name, exc_info=True)
            return None

    def onQueryStarted(self, event) -> None:
        pass

    def onQueryProgress(self, event) -> None:
        progress = event.progress
        if progress.name not in self.query_names:
            return
        try:
            row = progress_row(progress, self._log_ends(progress))
            record_progress(self.url, row)
            if self.on_progress:
                self.on_progress(row)
        except Exception:  # noqa: BLE001 - monitoring must never take the stream down
            log.exception("could not record progress of %s batch %s", progress.name, progress.batchId)
        finally:
            with self._changed:
                self._handled[progress.name] = max(self._handled.get(progress.name, -1), progress.batchId)
                self._changed.notify_all()

    def onQueryIdle(self, event) -> None:
        pass

    def onQueryTerminated(self, event) -> None:
        pass
