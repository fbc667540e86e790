"""The op of ``streaming_job`` (orchestration/jobs.py): one long-running op hosts the streaming queries.

The queries run in a worker thread (:func:`run_streaming`); Spark calls ``on_progress`` on its
py4j listener thread after each batch. Dagster's step context is not meant to be used from other
threads, so those rows go through a queue and the op's main thread logs a summary of them at most
once a minute while it waits. The sink tables' materializations do not come from here: the
``sink_table_materializations`` sensor (``orchestration/sensors/materializations.py``) reads them from
``stream_progress``, which the stream writes wherever it runs. Terminating the run from the UI raises
``DagsterExecutionInterruptedError`` in that main thread: the queries then stop after their
batch in flight commits and the interruption is re-raised, so the run ends CANCELED.
"""

import queue
import threading
import time

import dagster as dg
from pydantic import Field

from eventflow_assets.ingestion.topics import provision_topics
from eventflow_assets.local.logs import service_log
from eventflow_assets.orchestration.resources import EventFlowEndpoints, EventFlowPySpark
from eventflow_assets.processing.queries import StreamConfig
from eventflow_assets.processing.runner import run_streaming
from eventflow_assets.settings import Settings
from eventflow_assets.storage.schema import apply_schema

LOG_EVERY_S = 60


class StreamingConfig(dg.Config):
    max_seconds: float | None = Field(
        default=None, description="Stop after this many seconds (bounded runs for tests and demos). "
                                  "Unset: run until the run is terminated.")
    available_now: bool = Field(
        default=False, description="Process what the topics hold now, then finish (Trigger.AvailableNow).")
    trigger_seconds: float = Field(default=StreamConfig.trigger_seconds, description="Micro-batch interval.")
    max_offsets_per_trigger: int | None = Field(
        default=None, description="Rate limit: records per micro-batch and query.")
    checkpoint_dir: str | None = Field(
        default=None, description="Spark checkpoints, a local path or a URI Spark understands; unset: "
                                  "EVENTFLOW_CHECKPOINT_LOCATION, else $EVENTFLOW_HOME/checkpoints, shared with "
                                  "jobs/streaming_app.py.")


class ProgressLog:
    """The op's run log, kept light: at most one line per ``every`` seconds summarizing the batches
    since the previous line (the sink tables' materializations come from the
    ``sink_table_materializations`` sensor, which reads the same rows from ``stream_progress``)."""

    def __init__(self, every: float = LOG_EVERY_S, clock=time.monotonic):
        self.every, self.clock = every, clock
        self.last = clock()
        self.batches: dict[str, list[dict]] = {}

    def add(self, row: dict) -> None:
        self.batches.setdefault(row["query_name"], []).append(row)

    def line(self) -> str | None:
        """The summary of the batches since the previous line, once ``every`` seconds have passed."""
        if not self.batches or self.clock() - self.last < self.every:
            return None
        return self.flush()

    def flush(self) -> str | None:
        """The summary of the batches not yet logged, now (the run's last line)."""
        if not self.batches:
            return None
        parts = []
        for query, rows in self.batches.items():
            latest = rows[-1]
            parts.append(f"{query}: {len(rows)} batches (last {latest['batch_id']}), "
                         f"{sum(r['input_rows'] for r in rows):,} records, lag {sum(latest['lag'].values()):,}")
        self.batches, self.last = {}, self.clock()
        return "micro-batches: " + "; ".join(parts)


def host_queries(context: dg.OpExecutionContext, start_queries, stop: threading.Event,
                 events: queue.Queue, progress: ProgressLog, max_seconds: float | None) -> None:
    """Run ``start_queries`` in a worker thread; this thread waits, logging progress (at most a
    line a minute), until it ends."""
    failure: list[BaseException] = []

    def work() -> None:
        try:
            start_queries()
        except BaseException as exc:  # noqa: BLE001 - handed to the op's thread, which raises it
            failure.append(exc)

    def drain() -> None:
        while True:
            try:
                progress.add(events.get_nowait())
            except queue.Empty:
                break
        if (line := progress.flush()) is not None:
            context.log.info(line)

    worker = threading.Thread(target=work, name="eventflow-streaming", daemon=True)
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    worker.start()
    try:
        while worker.is_alive():
            if deadline is not None and time.monotonic() >= deadline and not stop.is_set():
                context.log.info(f"bounded run: {max_seconds:g}s passed, stopping after the current batches")
                stop.set()
            try:
                progress.add(events.get(timeout=0.5))
            except queue.Empty:
                pass
            if (line := progress.line()) is not None:
                context.log.info(line)
    except dg.DagsterExecutionInterruptedError:
        context.log.info("terminated: stopping the queries after the batches in flight commit")
        stop.set()
        worker.join()
        drain()
        raise
    drain()
    if failure:
        raise dg.Failure(description=str(failure[0])) from failure[0]


@dg.op(description="Run the streaming queries (Kafka -> PostgreSQL) until terminated, or bounded by config; "
                   "logs a summary of the micro-batches at most once a minute (the sink tables' "
                   "materializations come from the sink_table_materializations sensor).")
def stream_to_postgres(context: dg.OpExecutionContext, config: StreamingConfig, eventflow: EventFlowEndpoints,
                       pyspark: EventFlowPySpark) -> None:
    endpoints = eventflow.endpoints()
    apply_schema(endpoints.postgres_url)
    provision_topics(endpoints.kafka_config())
    checkpoints = config.checkpoint_dir or eventflow.checkpoint_root()
    stream_config = StreamConfig(available_now=config.available_now).with_overrides(
        trigger_seconds=config.trigger_seconds, max_offsets_per_trigger=config.max_offsets_per_trigger)
    context.log.info(f"streaming from {endpoints.kafka_bootstrap_servers}; checkpoints in {checkpoints}")
    stop, events = threading.Event(), queue.Queue()
    with service_log(Settings.from_env().home, "stream"):  # `eventflow logs stream` finds it
        host_queries(context, lambda: run_streaming(pyspark.spark_session, endpoints, checkpoints, stream_config,
                                                    stop=stop, on_progress=events.put),
                     stop, events, ProgressLog(), config.max_seconds)
