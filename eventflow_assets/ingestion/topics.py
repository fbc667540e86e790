"""The three topics as code: create what is missing, verify what exists.

New topics get ``EVENTFLOW_TOPIC_PARTITIONS`` partitions (3 by default). A topic with more
partitions than that is fine (partitions added to scale out: the stream picks them up, see
docs/streaming.md); one with fewer is reported, never altered.

Production guidance (docs/operations.md): replication factor 3 with ``min.insync.replicas=2``,
so that ``acks=all`` survives the loss of one broker. Unless told otherwise, topics get the
replication the cluster can give: 3 on three brokers or more, else one per broker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import ConfigResource, NewTopic

from eventflow_assets.errors import EventFlowError
from eventflow_assets.ingestion.events import ORDERS, PRODUCT_VIEW, USER_EVENTS
from eventflow_assets.ingestion.kafka_clients import admin_client, check_reachable
from eventflow_assets.settings import DEFAULT_TOPIC_PARTITIONS, Settings

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int

    def configs(self, replication_factor: int) -> dict[str, str]:
        configs = {"retention.ms": str(self.retention_ms), "cleanup.policy": "delete"}
        if replication_factor > 1:
            configs["min.insync.replicas"] = str(min(2, replication_factor - 1))
        return configs


def topic_specs(partitions: int = DEFAULT_TOPIC_PARTITIONS) -> tuple[TopicSpec, ...]:
    return (
        TopicSpec(USER_EVENTS, partitions, 7 * DAY_MS),
        TopicSpec(PRODUCT_VIEW, partitions, 7 * DAY_MS),
        TopicSpec(ORDERS, partitions, 30 * DAY_MS),
    )


# Names and retention; the partition count that applies is :func:`configured_topics`'.
TOPICS = topic_specs()


def configured_topics(settings: Settings | None = None) -> tuple[TopicSpec, ...]:
    """The topics with the partition count EVENTFLOW_TOPIC_PARTITIONS asks for."""
    return topic_specs((settings or Settings.from_env()).topic_partitions)


class TopicMismatchError(EventFlowError):
    """A topic exists with another layout than EventFlow needs; we never alter it silently."""


def provision_topics(kafka_config: dict, specs=None, replication_factor: int | None = None,
                     timeout: float = 15.0) -> dict[str, str]:
    """Create missing topics, verify existing ones. Returns {topic: "created" | "exists"}.

    ``specs`` None: :func:`configured_topics`. ``replication_factor`` None follows the cluster:
    min(3, number of brokers).
    """
    specs = configured_topics() if specs is None else specs
    if replication_factor is not None and replication_factor < 1:
        raise EventFlowError(f"replication factor must be at least 1, got {replication_factor}")
    admin = admin_client(kafka_config)
    metadata = check_reachable(admin, kafka_config["bootstrap.servers"], timeout)
    if replication_factor is None:
        replication_factor = max(1, min(3, len(metadata.brokers)))
    missing = [s for s in specs if s.name not in metadata.topics]
    result = {s.name: "exists" for s in specs if s.name in metadata.topics}
    if missing:
        futures = admin.create_topics(
            [NewTopic(s.name, s.partitions, replication_factor, config=s.configs(replication_factor))
             for s in missing],
            operation_timeout=timeout, request_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result(timeout)
                result[name] = "created"
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":  # a concurrent provisioner won the race
                    raise EventFlowError(f"could not create topic {name!r}: {exc.args[0].str()}") from None
                result[name] = "exists"
        _wait_until_listed(admin, [s.name for s in missing], timeout)
    problems = verify_topics(kafka_config, specs, timeout)
    if problems:
        raise TopicMismatchError(
            f"existing topics do not match what EventFlow needs (they were not changed): {'; '.join(problems)}; "
            "recreate them, or point EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS at another cluster"
        )
    return result


def delete_topics(kafka_config: dict, specs=TOPICS, timeout: float = 30.0) -> list[str]:
    """Delete EventFlow's topics (their records with them) and wait until no broker lists them,
    so that they can be created again at once. Returns the names deleted."""
    admin = admin_client(kafka_config)
    listed = check_reachable(admin, kafka_config["bootstrap.servers"], timeout).topics
    names = [s.name for s in specs if s.name in listed]
    if not names:
        return []
    for name, future in admin.delete_topics(names, operation_timeout=timeout, request_timeout=timeout).items():
        try:
            future.result(timeout)
        except KafkaException as exc:
            raise EventFlowError(f"could not delete topic {name!r}: {exc.args[0].str()}") from None
    deadline = time.monotonic() + timeout
    while set(names) & set(admin.list_topics(timeout=timeout).topics):
        if time.monotonic() > deadline:
            raise EventFlowError(f"topics {', '.join(names)} were still listed {timeout:.0f}s after deletion")
        time.sleep(0.05)
    return names


def _wait_until_listed(admin, names: list[str], timeout: float) -> None:
    """A topic just created can be missing from a broker's metadata for a moment: wait for it."""
    deadline = time.monotonic() + timeout
    while set(names) - set(admin.list_topics(timeout=timeout).topics) and time.monotonic() < deadline:
        time.sleep(0.05)


def verify_topics(kafka_config: dict, specs=None, timeout: float = 15.0) -> list[str]:
    """Human-readable differences between the cluster's topics and ``specs`` (empty when they agree;
    more partitions than a spec's agree). ``specs`` None: :func:`configured_topics`."""
    specs = configured_topics() if specs is None else specs
    admin = admin_client(kafka_config)
    metadata = check_reachable(admin, kafka_config["bootstrap.servers"], timeout)
    problems = []
    present = [s for s in specs if s.name in metadata.topics]
    problems += [f"{s.name}: does not exist" for s in specs if s.name not in metadata.topics]
    for spec in present:
        count = len(metadata.topics[spec.name].partitions)
        if count < spec.partitions:
            problems.append(f"{spec.name}: has {count} partitions, expected {spec.partitions} or more")
    if not present:
        return problems
    futures = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, s.name) for s in present],
                                     request_timeout=timeout)
    by_name = {resource.name: future for resource, future in futures.items()}
    for spec in present:
        try:
            entries = by_name[spec.name].result(timeout)
        except KafkaException as exc:
            problems.append(f"{spec.name}: cannot read its configs ({exc.args[0].str()})")
            continue
        retention = entries.get("retention.ms")
        if retention is None or retention.value is None:
            problems.append(f"{spec.name}: reports no retention.ms, expected {spec.retention_ms}")
        elif int(retention.value) != spec.retention_ms:
            problems.append(f"{spec.name}: retention.ms is {retention.value}, expected {spec.retention_ms}")
    return problems
