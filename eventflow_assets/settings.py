"""Configuration from the environment (see docs/contracts.md), read when asked, never at import.

| variable                           | when unset                                   |
|------------------------------------|----------------------------------------------|
| EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS  | the local stack's embedded broker            |
| EVENTFLOW_KAFKA_<PROPERTY>         | librdkafka defaults                          |
| EVENTFLOW_POSTGRES_URL             | the local stack's embedded PostgreSQL        |
| EVENTFLOW_POSTGRES_READ_URL        | EVENTFLOW_POSTGRES_URL (analytics reads)     |
| EVENTFLOW_HOME                     | ./.eventflow                                 |
| EVENTFLOW_SPARK_MASTER             | a local cluster on this home, else local[2]  |
| EVENTFLOW_SPARK_KAFKA_<PROPERTY>   | translated from EVENTFLOW_KAFKA_*            |
| EVENTFLOW_CHECKPOINT_LOCATION      | $EVENTFLOW_HOME/checkpoints                  |
| EVENTFLOW_TOPIC_PARTITIONS         | 3                                            |
| EVENTFLOW_SPARK_SHUFFLE_PARTITIONS | 2                                            |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from eventflow_assets.errors import EventFlowError

KAFKA_PREFIX = "EVENTFLOW_KAFKA_"
BOOTSTRAP_VAR = "EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS"
POSTGRES_VAR = "EVENTFLOW_POSTGRES_URL"
POSTGRES_READ_VAR = "EVENTFLOW_POSTGRES_READ_URL"
HOME_VAR = "EVENTFLOW_HOME"
SPARK_KAFKA_PREFIX = "EVENTFLOW_SPARK_KAFKA_"
SPARK_MASTER_VAR = "EVENTFLOW_SPARK_MASTER"
CHECKPOINT_VAR = "EVENTFLOW_CHECKPOINT_LOCATION"
TOPIC_PARTITIONS_VAR = "EVENTFLOW_TOPIC_PARTITIONS"
SHUFFLE_PARTITIONS_VAR = "EVENTFLOW_SPARK_SHUFFLE_PARTITIONS"
DEFAULT_TOPIC_PARTITIONS = 3
# Spark's default of 200 makes every stateful micro-batch crawl on 2 cores.
DEFAULT_SHUFFLE_PARTITIONS = 2

# The variables as `--help` texts list them.
ENVIRONMENT_HELP = """environment:
  EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS  Kafka to use (unset: `up`/`services` start an embedded Apache Kafka)
  EVENTFLOW_KAFKA_<PROPERTY>         any other client property, e.g. EVENTFLOW_KAFKA_SECURITY_PROTOCOL
  EVENTFLOW_SPARK_KAFKA_<PROPERTY>   a property for Spark's Java Kafka client, verbatim
                                     (the common security settings are translated from EVENTFLOW_KAFKA_*)
  EVENTFLOW_POSTGRES_URL             PostgreSQL to use (unset: `up`/`services` start an embedded server)
  EVENTFLOW_POSTGRES_READ_URL        a read replica of it, read by the batch analytics and the dashboard
                                     (unset: they read EVENTFLOW_POSTGRES_URL); writes stay on the primary
  EVENTFLOW_SPARK_MASTER             Spark master for the stream and the analytics (default: the cluster of
                                     `eventflow services --spark-workers N` on this home, else local[2])
  EVENTFLOW_CHECKPOINT_LOCATION      streaming checkpoints (default: $EVENTFLOW_HOME/checkpoints)
  EVENTFLOW_TOPIC_PARTITIONS         partitions of the topics EventFlow creates (default: 3)
  EVENTFLOW_SPARK_SHUFFLE_PARTITIONS spark.sql.shuffle.partitions (default: 2); a streaming
                                     checkpoint keeps the value of its first start
  EVENTFLOW_HOME                     state directory (default: ./.eventflow)
"""

# Properties whose values must never reach a log line.
_SECRET_MARKERS = ("password", "secret", "token", "jaas", "key.pem", "credentials")


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap_servers: str | None
    kafka_properties: Mapping[str, str] = field(default_factory=dict)
    postgres_url: str | None = None
    postgres_read_url: str | None = None
    home: Path = Path(".eventflow")
    spark_kafka_properties: Mapping[str, str] = field(default_factory=dict)
    spark_master: str | None = None
    checkpoint_location: str | None = None
    topic_partitions: int = DEFAULT_TOPIC_PARTITIONS
    shuffle_partitions: int = DEFAULT_SHUFFLE_PARTITIONS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        props = _prefixed(env, KAFKA_PREFIX, exclude=BOOTSTRAP_VAR)
        postgres_url = env.get(POSTGRES_VAR) or None
        if postgres_url is not None:
            validate_postgres_url(postgres_url)
        postgres_read_url = env.get(POSTGRES_READ_VAR) or None
        if postgres_read_url is not None:
            validate_postgres_url(postgres_read_url, POSTGRES_READ_VAR)
        home = Path(env.get(HOME_VAR) or ".eventflow").expanduser().absolute()
        return cls(
            kafka_bootstrap_servers=env.get(BOOTSTRAP_VAR) or None,
            kafka_properties=props,
            postgres_url=postgres_url,
            postgres_read_url=postgres_read_url,
            home=home,
            spark_kafka_properties=_prefixed(env, SPARK_KAFKA_PREFIX),
            spark_master=env.get(SPARK_MASTER_VAR) or None,
            checkpoint_location=env.get(CHECKPOINT_VAR) or None,
            topic_partitions=_positive_int(env, TOPIC_PARTITIONS_VAR, DEFAULT_TOPIC_PARTITIONS),
            shuffle_partitions=_positive_int(env, SHUFFLE_PARTITIONS_VAR, DEFAULT_SHUFFLE_PARTITIONS),
        )

    @property
    def checkpoints(self) -> str:
        """Where the streaming queries keep their checkpoints: a local path or a URI Spark understands."""
        return self.checkpoint_location or str(self.home / "checkpoints")

    @property
    def uses_embedded_kafka(self) -> bool:
        return self.kafka_bootstrap_servers is None

    @property
    def uses_embedded_postgres(self) -> bool:
        return self.postgres_url is None

    def read_url(self, primary: str) -> str:
        """The database the batch analytics and the dashboard read: the read replica
        (EVENTFLOW_POSTGRES_READ_URL) when set, else ``primary``, the one EventFlow writes."""
        return self.postgres_read_url or primary


@dataclass(frozen=True)
class Endpoints:
    """Where the services are, resolved (local/stack.py ``resolve_endpoints``: the settings, else the
    running local stack's)."""

    kafka_bootstrap_servers: str
    postgres_url: str
    dagster_postgres_url: str
    kafka_properties: Mapping[str, str] = field(default_factory=dict)
    spark_kafka_properties: Mapping[str, str] = field(default_factory=dict)

    def kafka_config(self, **overrides: object) -> dict:
        """librdkafka configuration: bootstrap servers, EVENTFLOW_KAFKA_* passthrough, then overrides."""
        return {"bootstrap.servers": self.kafka_bootstrap_servers, **self.kafka_properties, **overrides}

    def jvm_kafka_properties(self) -> dict[str, str]:
        """The same settings for the Java client (Spark's connector): translated, then EVENTFLOW_SPARK_KAFKA_*."""
        from eventflow_assets.ingestion.kafka_clients import jvm_properties

        return jvm_properties(dict(self.kafka_properties), dict(self.spark_kafka_properties))


def _prefixed(env: Mapping[str, str], prefix: str, exclude: str = "") -> dict[str, str]:
    """{property: value} of ``PREFIX_SOME_PROPERTY=value`` variables (property ``some.property``)."""
    return {name[len(prefix):].lower().replace("_", "."): value
            for name, value in env.items() if name.startswith(prefix) and name != exclude and value != ""}


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise EventFlowError(f"{name} must be a whole number of at least 1, got {raw!r}")
    return int(raw)


def validate_postgres_url(url: str, variable: str = POSTGRES_VAR) -> None:
    """Reject what libpq would reject later with a less helpful message (naming ``variable``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise EventFlowError(
            f"{variable} must be a libpq URI like postgresql://user:password@host:5432/db, "
            f"got scheme {parts.scheme!r} in {redact_url(url)}"
        )
    if not parts.path.strip("/") and "dbname=" not in parts.query:
        raise EventFlowError(f"{variable} names no database: {redact_url(url)}")
    try:
        _ = parts.port  # urllib parses the port lazily: a bad one raises here
    except ValueError as exc:
        raise EventFlowError(f"{variable} has an invalid port: {redact_url(url)}") from exc


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, safe for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))


def redact_properties(props: Mapping[str, str]) -> dict[str, str]:
    return {
        k: ("***" if any(m in k.lower() for m in _SECRET_MARKERS) else v) for k, v in props.items()
    }
