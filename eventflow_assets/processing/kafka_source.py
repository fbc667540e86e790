"""A Spark streaming source over confluent-kafka that behaves like Spark's built-in Kafka source.

There is no JVM Kafka connector here (no Maven), so ``format("kafka")`` is unavailable. This
Python data source, ``format("eventflow_kafka")``, has the built-in source's schema, option names
and offset JSON (``{"orders": {"0": 23, "1": 42}}``), so a cluster with the connector switches by
configuration alone.

- Offsets live only in the Spark checkpoint (the dicts returned to Spark); Kafka commits are never
  used, so a restarted query resumes exactly where its checkpoint says.
- Partition ends come from :func:`partition_ranges`, confirmed by a Fetch response's high
  watermark, so they are right even on brokers whose ListOffsets(latest) is not.
- Each Kafka partition with new records is one Spark input partition, read on an executor with
  ``assign()`` (no group join) into Arrow batches, exactly the offsets [start, end).
- ``Trigger.AvailableNow``: Spark calls :meth:`KafkaStreamReader.prepareForTriggerAvailableNow` once
  per run; the ends captured there bound every batch of the run, which ``maxOffsetsPerTrigger``
  may split into several batches.

Deviations from Spark: ``maxOffsetsPerTrigger`` never exceeds its total (Spark may round tiny
shares up); with ``failOnDataLoss=false`` a partition whose offsets restarted below the checkpoint
(topic recreated) is read again from its earliest offset, where Spark would skip those records.
Only ``subscribe`` is supported (not ``assign``/``subscribePattern``), without headers. Spark keeps a
query's initial offsets in its checkpoint; here they are resolved again if the query restarts
before its first batch (which matters only for ``startingOffsets=latest``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from functools import lru_cache

from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadLimit, ReadMaxRows, SupportsTriggerAvailableNow
from pyspark.sql.types import BinaryType, IntegerType, LongType, StringType, StructField, StructType, TimestampType

from eventflow_assets.errors import EventFlowError

log = logging.getLogger("eventflow.kafka_source")

NAME = "eventflow_kafka"
SCHEMA = StructType([
    StructField("key", BinaryType()),
    StructField("value", BinaryType()),
    StructField("topic", StringType()),
    StructField("partition", IntegerType()),
    StructField("offset", LongType()),
    StructField("timestamp", TimestampType()),
    StructField("timestampType", IntegerType()),
])
BATCH_ROWS = 10_000
OFFSETS_TIMEOUT_S = 30.0
EARLIEST, LATEST = -2, -1
UNSUPPORTED = ("assign", "subscribepattern", "includeheaders", "startingtimestamp",
               "startingoffsetsbytimestamp", "minoffsetspertrigger", "maxtriggerdelay")

PartitionId = tuple[str, int]  # (topic, partition)


class DataLossError(EventFlowError):
    """Offsets the checkpoint expects are no longer in Kafka."""


@dataclass(frozen=True)
class SourceOptions:
    kafka_config: dict
    topics: tuple[str, ...]
    starting_offsets: str | dict  # "earliest", "latest" or {(topic, partition): offset or -2/-1}
    max_offsets_per_trigger: int | None
    fail_on_data_loss: bool
    poll_timeout_s: float

    @classmethod
    def parse(cls, options) -> SourceOptions:
        opts = {k.lower(): v for k, v in options.items()}
        kafka_config = {k[len("kafka."):]: v for k, v in opts.items() if k.startswith("kafka.")}
        if not kafka_config.get("bootstrap.servers"):
            raise EventFlowError(f"the {NAME} source needs option 'kafka.bootstrap.servers' "
                                 "(the Kafka brokers, host:port[,host:port...])")
        unsupported = [k for k in UNSUPPORTED if k in opts]
        if unsupported:
            raise EventFlowError(f"the {NAME} source does not support option(s) {unsupported}")
        topics = tuple(t.strip() for t in opts.get("subscribe", "").split(",") if t.strip())
        if not topics:
            raise EventFlowError(f"the {NAME} source needs option 'subscribe' (comma-separated topics)")
        return cls(
            kafka_config=kafka_config,
            topics=topics,
            starting_offsets=_parse_starting_offsets(opts.get("startingoffsets", "latest"), topics),
            max_offsets_per_trigger=_positive_int(opts, "maxoffsetspertrigger"),
            fail_on_data_loss=_parse_bool(opts.get("failondataloss", "true"), "failOnDataLoss"),
            poll_timeout_s=(_positive_int(opts, "kafkaconsumer.polltimeoutms") or 120_000) / 1000,
        )


def _parse_starting_offsets(text: str, topics: tuple[str, ...]) -> str | dict:
    if text.strip().lower() in ("earliest", "latest"):
        return text.strip().lower()
    try:
        spec = json.loads(text)
        offsets = {(topic, int(p)): int(o) for topic, parts in spec.items() for p, o in parts.items()}
    except (ValueError, AttributeError, TypeError):
        raise EventFlowError(f"startingOffsets must be 'earliest', 'latest' or JSON like "
                             f'{{"orders":{{"0":23,"1":-2}}}}, got {text!r}') from None
    if any(o < EARLIEST for o in offsets.values()):
        raise EventFlowError(f"startingOffsets: offsets must be >= 0, or -2 (earliest) / -1 (latest): {text}")
    strangers = sorted({t for t, _ in offsets} - set(topics))
    if strangers:
        raise EventFlowError(f"startingOffsets names topics that are not subscribed: {strangers}")
    return offsets


def _positive_int(opts: dict, key: str) -> int | None:
    if key not in opts:
        return None
    try:
        value = int(opts[key])
    except ValueError:
        value = 0
    if value <= 0:
        raise EventFlowError(f"option {key} must be a positive integer, got {opts[key]!r}")
    return value


def _parse_bool(text: str, name: str) -> bool:
    if text.strip().lower() not in ("true", "false"):
        raise EventFlowError(f"option {name} must be true or false, got {text!r}")
    return text.strip().lower() == "true"


def offsets_to_json(offsets: dict[PartitionId, int]) -> dict:
    """Spark's Kafka offset JSON, sorted: Spark compares offsets as JSON text."""
    out: dict[str, dict[str, int]] = {}
    for (topic, part), offset in sorted(offsets.items()):
        out.setdefault(topic, {})[str(part)] = offset
    return out


def offsets_from_json(doc: dict | None) -> dict[PartitionId, int]:
    return {(topic, int(p)): int(o) for topic, parts in (doc or {}).items() for p, o in parts.items()}


def rate_limit(begin: dict, end: dict, max_rows: int) -> dict:
    """Ends that take at most ``max_rows`` records in all, split in proportion to each partition's
    lag like Spark's Kafka source (largest remainders get the rows that flooring leaves over)."""
    lags = {tp: end[tp] - begin[tp] for tp in end}
    total = sum(lags.values())
    if total <= max_rows:
        return dict(end)
    quota = {tp: max_rows * lag // total for tp, lag in lags.items()}
    spare = max_rows - sum(quota.values())
    by_remainder = sorted(lags, key=lambda tp: (-(max_rows * lags[tp] % total), tp))
    for tp in by_remainder[:spare]:
        quota[tp] += 1
    return {tp: begin[tp] + quota[tp] for tp in end}


def report_data_loss(problems: list[str], fail: bool) -> None:
    """Raise (failOnDataLoss=true), or log a warning and let the caller go on from the earliest offset."""
    what = ("Kafka data loss: " + "; ".join(problems) + ". The records were deleted by retention, or "
            "the topic was deleted and recreated (a restarted local broker forgets its topics).")
    if fail:
        raise DataLossError(what + " To continue from the earliest offsets still available, skipping the "
                            "lost records, set option failOnDataLoss=false; or start the query with a new "
                            "checkpoint location.")
    log.warning("%s Continuing from the earliest available offsets (failOnDataLoss=false).", what)


class KafkaDataSource(DataSource):
    """``spark.readStream.format("eventflow_kafka")`` with the options of Spark's Kafka source."""

    @classmethod
    def name(cls) -> str:
        return NAME

    def schema(self) -> StructType:
        SourceOptions.parse(self.options)  # fail at load(), with the option named, like Spark
        return SCHEMA

    def streamReader(self, schema: StructType) -> KafkaStreamReader:
        if schema != SCHEMA:
            raise EventFlowError(f"the {NAME} source has a fixed schema and cannot take a custom one")
        return KafkaStreamReader(SourceOptions.parse(self.options))


@dataclass(frozen=True)
class KafkaInputPartition(InputPartition):
    topic: str
    partition: int
    start: int | None  # None: from the earliest offset (a new partition, or a recreated topic)
    end: int


class KafkaStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Offsets are ``{topic: {partition: next offset to read}}``, exactly like Spark's Kafka source.

    The driver-side methods run in one long-lived Python process per query, so the instance may
    remember the initial offsets and the availableNow target across calls.
    """

    def __init__(self, options: SourceOptions):
        self.options = options
        self._initial: dict | None = None
        self._target: dict[PartitionId, tuple[int, int]] | None = None
        self._latest: dict[PartitionId, tuple[int, int]] | None = None

    def _ranges(self) -> dict[PartitionId, tuple[int, int]]:
        """{(topic, partition): (earliest, end)} of every subscribed partition, now."""
        from eventflow_assets.ingestion.kafka_clients import admin_client, check_reachable
        from eventflow_assets.ingestion.offsets import partition_ranges

        config = self.options.kafka_config
        metadata = check_reachable(admin_client(config), config["bootstrap.servers"], OFFSETS_TIMEOUT_S)
        missing = [t for t in self.options.topics if t not in metadata.topics]
        if missing:
            raise EventFlowError(f"subscribed topic(s) {missing} do not exist on {config['bootstrap.servers']}"
                                 " (create them first, e.g. with `eventflow produce`)")
        for topic in self.options.topics:
            if metadata.topics[topic].error is not None:
                raise EventFlowError(f"topic {topic!r} is not available: {metadata.topics[topic].error.str()}")
        partitions = sorted((t, p) for t in self.options.topics for p in metadata.topics[t].partitions)
        self._latest = partition_ranges(config, partitions, timeout=OFFSETS_TIMEOUT_S)
        return self._latest

    def initialOffset(self) -> dict:
        """Resolved once per query run: Spark asks again on every trigger until a first batch runs."""
        if self._initial is None:
            ranges = self._target if self._target is not None else self._ranges()
            spec = self.options.starting_offsets
            if isinstance(spec, dict):
                absent = sorted(set(ranges) - set(spec))
                if absent:
                    raise EventFlowError(f"startingOffsets must give every partition of the subscribed "
                                         f"topics (-2 earliest, -1 latest); missing: {absent}")
                unknown = sorted(set(spec) - set(ranges))
                if unknown:
                    raise EventFlowError(f"startingOffsets names partitions that do not exist: {unknown}")
                chosen = {tp: {EARLIEST: lo, LATEST: hi}.get(spec[tp], spec[tp])
                          for tp, (lo, hi) in ranges.items()}
            else:
                chosen = {tp: lo if spec == "earliest" else hi for tp, (lo, hi) in ranges.items()}
            self._initial = offsets_to_json(chosen)
        return self._initial

    def getDefaultReadLimit(self) -> ReadLimit:
        limit = self.options.max_offsets_per_trigger
        return ReadMaxRows(limit) if limit else ReadAllAvailable()

    def prepareForTriggerAvailableNow(self) -> None:
        self._target = self._ranges()

    def latestOffset(self, start: dict, limit: ReadLimit) -> dict:
        ranges = self._target if self._target is not None else self._ranges()
        begin = self._begin_offsets(offsets_from_json(start), ranges)
        end = {tp: hi for tp, (_, hi) in ranges.items()}
        if isinstance(limit, ReadMaxRows):
            end = rate_limit(begin, end, limit.max_rows)
        return offsets_to_json(end)

    def _begin_offsets(self, start: dict, ranges: dict) -> dict[PartitionId, int]:
        """Where each partition's next batch really begins; reports checkpoints Kafka cannot honour."""
        begin, problems = {}, []
        for tp, (lo, hi) in ranges.items():
            offset = start.get(tp, lo)  # a new partition starts from its earliest offset, as in Spark
            if not lo <= offset <= hi:
                problems.append(f"{tp[0]} partition {tp[1]}: the checkpoint is at offset {offset} but the "
                                f"partition now holds offsets [{lo}, {hi})")
                offset = lo
            begin[tp] = offset
        for topic, part in sorted(set(start) - set(ranges)):
            problems.append(f"{topic} partition {part} no longer exists "
                            f"(the checkpoint is at offset {start[(topic, part)]})")
        if problems:
            report_data_loss(problems, self.options.fail_on_data_loss)
        return begin

    def reportLatestOffset(self) -> dict | None:
        if self._latest is None:
            return None
        return offsets_to_json({tp: hi for tp, (_, hi) in self._latest.items()})

    def partitions(self, start: dict, end: dict) -> list[KafkaInputPartition]:
        starts, parts = offsets_from_json(start), []
        for (topic, part), stop in sorted(offsets_from_json(end).items()):
            first = starts.get((topic, part))
            if first is not None and first > stop:
                # The end is below the checkpoint: the partition's offsets restarted, latestOffset warned
                # already. A batch planned so with failOnDataLoss=false may be replayed after it became true.
                if self.options.fail_on_data_loss:
                    report_data_loss([f"{topic} partition {part}: the batch to replay ends at offset {stop}, "
                                      f"below the checkpoint at {first}"], True)
                first = None
            if first == stop or (first is None and stop == 0):
                continue
            parts.append(KafkaInputPartition(topic, part, first, stop))
        return parts

    def read(self, partition: KafkaInputPartition):
        return read_partition(self.options, partition)

    def commit(self, end: dict) -> None:
        """Nothing to do: progress is the checkpoint, not Kafka's committed offsets (which Spark's own
        source does not use either); a consumer group would also cost a group join per read."""


@lru_cache(maxsize=1)
def _arrow_schema():
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(SCHEMA, timezone="UTC")


# librdkafka's timestamp kinds -> Kafka's TimestampType ids, as Spark reports them.
TIMESTAMP_TYPES = {0: -1, 1: 0, 2: 1}


def _record_batch(topic: str, partition: int, records: list):
    import pyarrow as pa

    keys, values, offsets, stamps, kinds = [], [], [], [], []
    for msg in records:
        kind, millis = msg.timestamp()
        keys.append(msg.key())
        values.append(msg.value())
        offsets.append(msg.offset())
        stamps.append(millis * 1000 if kind else None)
        kinds.append(TIMESTAMP_TYPES[kind])
    n = len(records)
    schema = _arrow_schema()
    columns = [
        pa.array(keys, pa.binary()),
        pa.array(values, pa.binary()),
        pa.repeat(pa.scalar(topic, pa.string()), n),
        pa.repeat(pa.scalar(partition, pa.int32()), n),
        pa.array(offsets, pa.int64()),
        pa.array(stamps, schema.field("timestamp").type),
        pa.array(kinds, pa.int32()),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def read_partition(options: SourceOptions, part: KafkaInputPartition):
    """Yield Arrow batches of exactly the records at offsets [start, end) of one partition.

    A fetch may return more than asked (some brokers ignore the fetch size limits), so everything
    from ``end`` on is dropped. Offsets may legitimately skip (compaction, transaction
    markers); records missing at the start or the end of the range are data loss.
    """
    from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

    from eventflow_assets.ingestion.kafka_clients import consumer

    where = f"{part.topic} partition {part.partition}"
    tp = TopicPartition(part.topic, part.partition, OFFSET_BEGINNING if part.start is None else part.start)
    c = consumer({"group.id": "eventflow-spark-source", "isolation.level": "read_uncommitted",
                  **options.kafka_config,
                  "enable.auto.commit": False, "enable.auto.offset.store": False,
                  "auto.offset.reset": "earliest", "enable.partition.eof": True})
    try:
        c.assign([tp])
        records: list = []
        first = True
        next_offset = part.start or 0
        deadline = time.monotonic() + options.poll_timeout_s
        while True:
            # consume() returns early only once it has as many messages as asked for: ask for no more
            # than the range still holds, or every call would wait out its timeout.
            wanted = max(1, min(BATCH_ROWS - len(records), part.end - next_offset))
            msgs = c.consume(wanted, timeout=0.2)
            if not msgs:
                if time.monotonic() > deadline:
                    raise EventFlowError(f"no record of {where} arrived within {options.poll_timeout_s:.0f}s "
                                         f"(reading offsets [{part.start}, {part.end})); see option "
                                         "kafkaConsumer.pollTimeoutMs")
                continue
            deadline = time.monotonic() + options.poll_timeout_s
            done = False
            for msg in msgs:
                err = msg.error()
                if err is not None:
                    if err.code() != KafkaError._PARTITION_EOF:
                        raise KafkaException(err)
                    if msg.offset() < part.end:
                        report_data_loss([f"{where} ends at offset {msg.offset()}, before the planned end "
                                          f"{part.end}"], options.fail_on_data_loss)
                    done = True
                    break
                offset = msg.offset()
                if first and part.start is not None and offset != part.start:
                    _check_gap(c, tp, offset, part, where, options.fail_on_data_loss)
                first = False
                if offset >= part.end:
                    done = True
                    break
                if part.start is None or offset >= part.start:
                    records.append(msg)
                next_offset = offset + 1
                if next_offset == part.end:
                    done = True
                    break
            if len(records) >= BATCH_ROWS or (done and records):
                yield _record_batch(part.topic, part.partition, records)
                records = []
            if done:
                return
    finally:
        c.close()


def _check_gap(c, tp, offset: int, part: KafkaInputPartition, where: str, fail: bool) -> None:
    """The first record is not at ``part.start``: data loss, or only a legitimate gap?"""
    if offset < part.start:  # the fetch position was reset below the checkpoint: offsets restarted
        report_data_loss([f"{where}: offset {part.start} is beyond the partition's end (its offsets "
                          f"restarted)"], fail)
        return
    low, _ = c.get_watermark_offsets(tp, timeout=OFFSETS_TIMEOUT_S)
    if low > part.start:
        report_data_loss([f"{where}: offsets [{part.start}, {low}) are gone; the earliest available is "
                          f"{low}"], fail)
