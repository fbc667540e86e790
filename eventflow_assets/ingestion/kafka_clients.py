"""confluent-kafka clients built from :class:`Endpoints`, with librdkafka's logs routed to logging.

librdkafka otherwise writes every reconnect attempt to stderr (20 lines a second while a broker
is down); the ``eventflow.kafka`` logger keeps them out of the user's terminal unless asked.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from eventflow_assets.errors import EventFlowError

log = logging.getLogger("eventflow.kafka")
log.addHandler(logging.NullHandler())  # not on stderr by default (logging.lastResort), see above


def admin_client(config: dict) -> AdminClient:
    """An admin client that keeps the authentication errors librdkafka reports (``auth_errors``)."""
    errors: list[KafkaError] = []

    def on_error(error: KafkaError) -> None:
        if error.code() == KafkaError._AUTHENTICATION:
            errors.append(error)

    admin = AdminClient({**config, "logger": log, "error_cb": on_error})
    admin.auth_errors = errors
    return admin


def producer(config: dict) -> Producer:
    return Producer({**config, "logger": log})


def consumer(config: dict) -> Consumer:
    return Consumer({**config, "logger": log})


class KafkaAuthenticationError(EventFlowError):
    """The cluster answered but refused our credentials."""


def check_reachable(admin: AdminClient, bootstrap: str, timeout: float = 10.0):
    """Cluster metadata, or an error that says which bootstrap servers did not answer.

    Asks in one-second slices so that refused credentials (an answer, not silence) fail at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return admin.list_topics(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
        except KafkaException as exc:
            admin.poll(0)  # delivers error_cb
            refused = getattr(admin, "auth_errors", None)
            if refused:
                reason = refused[0].str().split(": ", 1)[-1].split(" (after")[0]
                raise KafkaAuthenticationError(
                    f"Kafka at {bootstrap} refused the login ({reason}); check EVENTFLOW_KAFKA_SASL_USERNAME, "
                    "EVENTFLOW_KAFKA_SASL_PASSWORD and EVENTFLOW_KAFKA_SASL_MECHANISM") from None
            if time.monotonic() >= deadline:
                raise EventFlowError(
                    f"cannot reach Kafka at {bootstrap} within {timeout:.0f}s ({exc.args[0].str()}); check "
                    "EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS, or start the local services with `eventflow services`"
                ) from None


# librdkafka property -> the Java client's name for the same setting (same value).
_SAME_MEANING = {"security.protocol": "security.protocol", "sasl.mechanism": "sasl.mechanism",
                 "sasl.mechanisms": "sasl.mechanism", "client.id": "client.id"}
_LOGIN_MODULES = {"PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
                  "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
                  "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule"}


def _jaas_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def jvm_properties(librdkafka: dict[str, str], verbatim: dict[str, str] | None = None) -> dict[str, str]:
    """Java-client properties for Spark's Kafka connector from librdkafka ones.

    Translated: security protocol, SASL mechanism, ``sasl.username``/``sasl.password`` for PLAIN
    and SCRAM (into ``sasl.jaas.config``), a PEM CA file (``ssl.ca.location``), hostname
    verification. Anything else the JVM client needs comes ``verbatim`` (EVENTFLOW_SPARK_KAFKA_*),
    which also overrides a translation. ``bootstrap.servers`` is the caller's.
    """
    out = {jvm: librdkafka[name] for name, jvm in _SAME_MEANING.items() if name in librdkafka}
    mechanism = out.get("sasl.mechanism", "").upper()
    if "sasl.username" in librdkafka and mechanism in _LOGIN_MODULES:
        out["sasl.jaas.config"] = (f"{_LOGIN_MODULES[mechanism]} required "
                                   f"username={_jaas_quote(librdkafka['sasl.username'])} "
                                   f"password={_jaas_quote(librdkafka.get('sasl.password', ''))};")
    if "ssl.ca.location" in librdkafka:
        out["ssl.truststore.type"] = "PEM"
        out["ssl.truststore.location"] = librdkafka["ssl.ca.location"]
    if "ssl.endpoint.identification.algorithm" in librdkafka:
        algorithm = librdkafka["ssl.endpoint.identification.algorithm"]
        out["ssl.endpoint.identification.algorithm"] = "" if algorithm == "none" else algorithm
    return {**out, **(verbatim or {})}
