"""Read PostgreSQL into Spark through the JDBC source, given the libpq URL the rest of EventFlow uses.

``postgresql://user:pass@host:port/db?sslmode=require`` becomes ``jdbc:postgresql://host:port/db``
plus ``user``/``password``/``sslmode`` properties. The password lives only in the options handed
to Spark (which redacts ``password`` in plans and logs); :class:`JdbcTarget`'s repr omits it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from pyspark.sql import DataFrame, SparkSession

from eventflow_assets.errors import EventFlowError
from eventflow_assets.settings import redact_url, validate_postgres_url

DRIVER = "org.postgresql.Driver"
# libpq URI parameters with a pgjdbc equivalent; others are dropped (pgjdbc would not know them).
_PARAMS = {"sslmode": "sslmode", "sslrootcert": "sslrootcert", "sslcert": "sslcert", "sslkey": "sslkey",
           "application_name": "ApplicationName", "connect_timeout": "connectTimeout",
           "options": "options", "target_session_attrs": "targetServerType"}
_DRIVER_HINT = ("the PostgreSQL JDBC driver is not on Spark's classpath: start Spark through "
                "eventflow_assets.processing.spark (which adds it) or add org.postgresql:postgresql to spark.jars")


@dataclass(frozen=True)
class JdbcTarget:
    url: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    properties: tuple[tuple[str, str], ...] = ()

    def options(self) -> dict[str, str]:
        opts = {"url": self.url, "driver": DRIVER, **dict(self.properties)}
        if self.user is not None:
            opts["user"] = self.user
        if self.password is not None:
            opts["password"] = self.password
        return opts


def jdbc_target(postgres_url: str) -> JdbcTarget:
    """The JDBC URL and connection properties for a libpq URI (unix sockets are refused: JDBC needs TCP)."""
    validate_postgres_url(postgres_url)
    parts = urlsplit(postgres_url)
    query = dict(parse_qsl(parts.query))
    hostport = parts.netloc.rsplit("@", 1)[-1]
    if not hostport or "host" in query or "hostaddr" in query:
        raise EventFlowError(f"Spark's JDBC driver needs a TCP host and port in the PostgreSQL URL, "
                             f"got {redact_url(postgres_url)}")
    database = unquote(parts.path.lstrip("/")) or query.get("dbname", "")
    user = unquote(parts.username) if parts.username is not None else query.get("user")
    password = unquote(parts.password) if parts.password is not None else query.get("password")
    props = tuple((_PARAMS[k], v) for k, v in sorted(query.items()) if k in _PARAMS)
    return JdbcTarget(f"jdbc:postgresql://{hostport}/{database}", user, password, props)


@dataclass(frozen=True)
class Partitioning:
    """Spark's parallel JDBC read: ``num_partitions`` ranges of a numeric, date or timestamp column."""

    column: str
    lower: object
    upper: object
    num_partitions: int


def read(spark: SparkSession, target: JdbcTarget, table: str | None = None, *, query: str | None = None,
         partitioning: Partitioning | None = None, fetch_size: int = 10_000) -> DataFrame:
    """A lazy DataFrame over ``table`` or the SELECT ``query``.

    ``fetchsize`` matters: without it the driver buffers the whole result in the executor's memory.
    """
    if (table is None) == (query is None):
        raise ValueError("give exactly one of table and query")
    reader = spark.read.format("jdbc").options(**target.options())
    reader = reader.option("dbtable", table if query is None else f"({query}) AS src")
    reader = reader.option("fetchsize", str(fetch_size))
    if partitioning is not None:
        reader = (reader.option("partitionColumn", partitioning.column)
                  .option("lowerBound", str(partitioning.lower))
                  .option("upperBound", str(partitioning.upper))
                  .option("numPartitions", str(partitioning.num_partitions)))
    try:
        return reader.load()
    except Exception as exc:
        if DRIVER in str(exc) and "ClassNotFound" in str(exc):
            raise EventFlowError(_DRIVER_HINT) from None
        raise
