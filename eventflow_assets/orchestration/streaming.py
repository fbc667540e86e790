"""``streaming_job``: one long-running op hosts the streaming queries and reports each micro-batch.

The queries run in a worker thread (:func:`run_streaming`); Spark calls ``on_progress`` on its
py4j listener thread after each batch. Dagster's step context is not meant to be used from other
threads, so those rows go through a queue and the op's main thread turns them into
``AssetMaterialization`` events while it waits. Terminating the run from the UI raises
``DagsterExecutionInterruptedError`` in that main thread: the queries then stop after their
batch in flight commits and the interruption is re-raised, so the run ends CANCELED.
"""

import queue
import threading
import time
from pathlib import Path

import dagster as dg
from pydantic import Field

from eventflow_assets.ingestion.topics import provision_topics
from eventflow_assets.orchestration.resources import EventFlowEndpoints, EventFlowPySpark, spark_config
from eventflow_assets.orchestration.table_assets import table_key
from eventflow_assets.processing.queries import QUERY_TABLES, StreamConfig
from eventflow_assets.processing.runner import run_streaming
from eventflow_assets.storage.postgres import connect
from eventflow_assets.storage.schema import apply_schema

STREAMING_JOB = "streaming_job"
# The instance's run queue admits one run with this tag at a time (see orchestration/instance.py).
STREAM_TAG = "eventflow/stream"


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
        default=None, description="Spark checkpoints; unset: $EVENTFLOW_HOME/checkpoints, shared with "
                                  "jobs/streaming_app.py.")


def _materialization(row: dict, table: str, rows_written: int) -> dg.AssetMaterialization:
    metadata = {
        "query": row["query_name"],
        "batch_id": row["batch_id"],
        "rows_written": rows_written,
        "input_rows": row["input_rows"],
        "rejected_rows": row["rejected_rows"],
        "late_rows": row["late_rows"],
        "batch_duration_s": row["duration_ms"] / 1000.0,
        "lag": sum(row["lag"].values()),
    }
    if row["watermark"] is not None:
        metadata["watermark"] = dg.MetadataValue.timestamp(row["watermark"])
    return dg.AssetMaterialization(asset_key=table_key(table), metadata=metadata,
                                   description=f"micro-batch {row['batch_id']} of the {row['query_name']} query")


class BatchReporter:
    """Turns ``stream_progress`` rows into materializations of the tables each batch wrote to,
    once per (query, batch) of this run.

    Batch ids are unique per query within one checkpoint, and a run uses one checkpoint.
    """

    def __init__(self, context: dg.OpExecutionContext, postgres_url: str):
        self.context = context
        self.url = postgres_url
        self.reported: set[tuple[str, int]] = set()
        with connect(postgres_url) as conn:
            self.started_at = conn.execute("SELECT now()").fetchone()[0]

    def report(self, row: dict) -> None:
        key = (row["query_name"], row["batch_id"])
        if key in self.reported:
            return
        self.reported.add(key)
        with connect(self.url) as conn:
            found = conn.execute("SELECT table_rows FROM stream_progress WHERE query_name = %s AND batch_id = %s "
                                 "ORDER BY recorded_at DESC LIMIT 1", key).fetchone()
        table_rows = found[0] if found else {}
        for table in QUERY_TABLES.get(row["query_name"], ()):
            if table_rows.get(table):
                self.context.log_event(_materialization(row, table, table_rows[table]))

    def catch_up(self) -> None:
        """Report batches recorded since the op started whose callback never arrived.

        Spark delivers listener events asynchronously; the last ones can still be in flight when
        the queries have stopped and the listener is removed.
        """
        with connect(self.url) as conn:
            cur = conn.execute("""
                SELECT query_name, batch_id, watermark, input_rows, late_rows, rejected_rows, duration_ms, lag
                FROM stream_progress WHERE recorded_at >= %s ORDER BY recorded_at""", (self.started_at,))
            names = [d.name for d in cur.description]
            rows = [dict(zip(names, r)) for r in cur.fetchall()]
        for row in rows:
            self.report(row)


def host_queries(context: dg.OpExecutionContext, start_queries, stop: threading.Event,
                 events: queue.Queue, reporter: BatchReporter, max_seconds: float | None) -> None:
    """Run ``start_queries`` in a worker thread; report batches from this thread until it ends."""
    failure: list[BaseException] = []

    def work() -> None:
        try:
            start_queries()
        except BaseException as exc:  # noqa: BLE001 - handed to the op's thread, which raises it
            failure.append(exc)

    def drain() -> None:
        while True:
            try:
                reporter.report(events.get_nowait())
            except queue.Empty:
                return

    worker = threading.Thread(target=work, name="eventflow-streaming", daemon=True)
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    worker.start()
    try:
        while worker.is_alive():
            if deadline is not None and time.monotonic() >= deadline and not stop.is_set():
                context.log.info(f"bounded run: {max_seconds:g}s passed, stopping after the current batches")
                stop.set()
            try:
                reporter.report(events.get(timeout=0.5))
            except queue.Empty:
                pass
    except dg.DagsterExecutionInterruptedError:
        context.log.info("terminated: stopping the queries after the batches in flight commit")
        stop.set()
        worker.join()
        drain()
        reporter.catch_up()
        raise
    drain()
    reporter.catch_up()
    if failure:
        raise dg.Failure(description=str(failure[0])) from failure[0]


@dg.op(description="Run the streaming queries (Kafka -> PostgreSQL) until terminated, or bounded by config; "
                   "materializes the sink tables after every micro-batch.")
def stream_to_postgres(context: dg.OpExecutionContext, config: StreamingConfig, eventflow: EventFlowEndpoints,
                       pyspark: EventFlowPySpark) -> None:
    endpoints = eventflow.endpoints()
    apply_schema(endpoints.postgres_url)
    provision_topics(endpoints.kafka_config())
    checkpoints = Path(config.checkpoint_dir) if config.checkpoint_dir else eventflow.checkpoint_root()
    stream_config = StreamConfig(available_now=config.available_now).with_overrides(
        trigger_seconds=config.trigger_seconds, max_offsets_per_trigger=config.max_offsets_per_trigger)
    context.log.info(f"streaming from {endpoints.kafka_bootstrap_servers}; checkpoints in {checkpoints}")
    stop, events = threading.Event(), queue.Queue()
    reporter = BatchReporter(context, endpoints.postgres_url)
    host_queries(context, lambda: run_streaming(pyspark.spark_session, endpoints, checkpoints, stream_config,
                                                stop=stop, on_progress=events.put),
                 stop, events, reporter, config.max_seconds)


@dg.job(name=STREAMING_JOB, executor_def=dg.in_process_executor, tags={STREAM_TAG: "true"},
        resource_defs={"eventflow": EventFlowEndpoints(),
                       "pyspark": EventFlowPySpark(spark_config=spark_config("eventflow-streaming"))},
        description="The streaming queries, hosted by one long-running op. `streaming_supervisor` keeps one "
                    "run of it going; terminate the run to stop the stream (queries stop after their batch).")
def streaming_job() -> None:
    stream_to_postgres()
