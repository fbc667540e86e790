"""confluent-kafka clients built from :class:`Endpoints`, with librdkafka's logs routed to logging.

librdkafka otherwise writes every reconnect attempt to stderr (20 lines a second while a broker
is down); the ``eventflow.kafka`` logger keeps them out of the user's terminal unless asked.
"""

from __future__ import annotations

import logging

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from eventflow_assets.errors import EventFlowError

log = logging.getLogger("eventflow.kafka")


def admin_client(config: dict) -> AdminClient:
    return AdminClient({**config, "logger": log})


def producer(config: dict) -> Producer:
    return Producer({**config, "logger": log})


def consumer(config: dict) -> Consumer:
    return Consumer({**config, "logger": log})


def check_reachable(admin: AdminClient, bootstrap: str, timeout: float = 10.0):
    """Cluster metadata, or an error that says which bootstrap servers did not answer."""
    try:
        return admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise EventFlowError(
            f"cannot reach Kafka at {bootstrap} within {timeout:.0f}s ({exc.args[0].str()}); "
            "check EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS, or start the local stack with `eventflow up`"
        ) from None
