"""The progress row of a micro-batch, from hand-built StreamingQueryProgress stand-ins."""

import json
import logging
from datetime import UTC, datetime
from types import SimpleNamespace

from eventflow_assets.processing.progress import progress_row


def _progress(watermark: str | None) -> SimpleNamespace:
    source = SimpleNamespace(endOffset=json.dumps({"orders": {"0": 7}}), latestOffset=json.dumps({"orders": {"0": 9}}))
    return SimpleNamespace(
        name="orders_raw", id="q-1", batchId=3, eventTime={"watermark": watermark} if watermark else {},
        sources=[source], numInputRows=5, stateOperators=[SimpleNamespace(numRowsDroppedByWatermark=4)],
        observedMetrics={"parse:orders": {"valid": 1, "rejected": 2}}, durationMs={"triggerExecution": 120})


def test_watermarks_are_recorded_as_utc_datetimes():
    assert progress_row(_progress("2026-11-24T10:55:00.000Z"))["watermark"] == datetime(2026, 11, 24, 10, 55,
                                                                                         tzinfo=UTC)
    assert progress_row(_progress("1970-01-01T00:00:00.000Z"))["watermark"] is None
    assert progress_row(_progress(None))["watermark"] is None


def test_a_watermark_beyond_the_year_9999_still_records_the_batch(caplog):
    """Issue 14: a checkpoint poisoned by an event of the year 10000 made every progress row fail
    (``Invalid isoformat string``), so its late drops never showed in ``stream_progress``."""
    with caplog.at_level(logging.WARNING, "eventflow.progress"):
        row = progress_row(_progress("+10000-11-20T09:53:00.000Z"))
    assert row == {"query_name": "orders_raw", "checkpoint_id": "q-1", "batch_id": 3, "watermark": None,
                   "input_rows": 5, "late_rows": 4, "rejected_rows": 2, "duration_ms": 120, "lag": {"orders:0": 2},
                   "read_offsets": {"orders:0": 7}}
    assert "+10000-11-20T09:53:00.000Z" in caplog.text
