"""Run the streaming queries until stopped, caught up, or failed; shared by the spark-submit job,
`eventflow up` and the Dagster op."""

from __future__ import annotations

import logging
import os
import re
import threading
import time

from pyspark.sql import SparkSession

from eventflow_assets.errors import EventFlowError
from eventflow_assets.processing.progress import ProgressRecorder
from eventflow_assets.processing.queries import QUERY_NAMES, StreamConfig, start_queries
from eventflow_assets.settings import Endpoints

log = logging.getLogger("eventflow.streaming")
PROGRESS_WAIT_S = 30.0


class StreamingFailed(EventFlowError):
    exit_code = 1


def _last_batch(query) -> int:
    progress = query.lastProgress
    return -1 if progress is None else progress.batchId


def stop_after_batch(query, timeout: float = 60.0) -> None:
    """Stop once the micro-batch in flight (if any) has committed, or after ``timeout`` regardless.

    Waiting for the next batch id to complete bounds the wait to one batch, even when batches run
    back to back. Stopping mid-batch would be safe too (its transaction rolls back and the batch
    is replayed on restart); waiting avoids redoing the work.
    """
    if query.isActive and query.status.get("isTriggerActive"):
        running = _last_batch(query) + 1
        deadline = time.monotonic() + timeout
        while query.isActive and _last_batch(query) < running and time.monotonic() < deadline:
            time.sleep(0.02)
    query.stop()


def stop_all(queries, timeout: float = 60.0) -> None:
    """Stop every query after its batch in flight, all at once."""
    threads = [threading.Thread(target=stop_after_batch, args=(q, timeout)) for q in queries]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def run_streaming(spark: SparkSession, endpoints: Endpoints, checkpoint_root: str | os.PathLike, config: StreamConfig,
                  stop: threading.Event | None = None, on_progress=None, only=QUERY_NAMES) -> None:
    """Block until ``stop`` is set (or, with ``config.available_now``, until every query is done).

    Raises :class:`StreamingFailed` naming the query when one fails; the others are stopped first.
    """
    stop = stop or threading.Event()
    listener = ProgressRecorder(endpoints.postgres_url, only, on_progress, endpoints.kafka_config())
    spark.streams.addListener(listener)
    queries = start_queries(spark, endpoints, checkpoint_root, config, only)
    log.info("started %s", ", ".join(queries))
    try:
        while not stop.is_set():
            failed = [(n, q.exception()) for n, q in queries.items() if not q.isActive and q.exception()]
            if failed:
                name, exc = failed[0]
                raise StreamingFailed(f"streaming query {name} failed: {_query_error(exc)}")
            if all(not q.isActive for q in queries.values()):
                return
            stop.wait(0.5)
    finally:
        stop_all(queries.values())
        last = {name: batch for name, q in queries.items() if (batch := _last_batch(q)) >= 0}
        late = listener.wait_for(last, timeout=PROGRESS_WAIT_S)
        if late:
            log.warning("progress of the last batch of %s not recorded within %ss", ", ".join(late), PROGRESS_WAIT_S)
        spark.streams.removeListener(listener)


def _query_error(exc) -> str:
    text = str(exc.desc if hasattr(exc, "desc") else exc).strip()
    lines = text.splitlines()
    # An error raised in Python inside a query (a foreachBatch sink: the database unreachable, a
    # topic recreated) arrives wrapped by the JVM: "An exception was raised by the Python Proxy.
    # Return Message: Traceback ...". Its own message is the traceback's last, unindented line.
    for i, line in enumerate(lines):
        if line.rstrip().endswith("Traceback (most recent call last):"):
            raised = next((later for later in lines[i + 1:] if later.strip() and not later[0].isspace()), None)
            if raised:
                return _PYTHON_MODULE.sub("", raised.strip())[:1000]
    for line in lines:
        if "Error" in line:
            return line.strip()[:1000]
    return lines[0][:1000] if text else type(exc).__name__


_PYTHON_MODULE = re.compile(r"^(?:[A-Za-z_]\w*\.)+(?=\w+: )")  # eventflow_assets.processing.sinks.X: -> X:
