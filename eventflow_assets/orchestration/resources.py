"""Dagster resources: where Kafka and PostgreSQL are, and the SparkSession the streaming op runs on.

Their settings are fields, shown on the UI's resource pages. :meth:`EventFlowEndpoints.from_env` and
:meth:`EventFlowPySpark.from_env` bind each field whose EVENTFLOW_* variable is set to that variable
(``dg.EnvVar``: the UI shows the variable's name, never its value, and each run reads the value). A
field left unset reads its variable when used, and an unset variable keeps its docs/contracts.md meaning
(the running local stack's service, the default home...): binding an unset variable instead would make
Dagster refuse to launch the run.
"""

from __future__ import annotations

import os
from typing import Optional

import dagster as dg
from dagster_pyspark import PySparkResource
from pydantic import Field

from eventflow_assets.local.stack import resolve_endpoints
from eventflow_assets.processing.spark import (
    DEFAULT_MASTER,
    DEFAULTS,
    build_spark_session,
    python_conf,
    resolve_master,
)
from eventflow_assets.settings import (
    BOOTSTRAP_VAR,
    CHECKPOINT_VAR,
    HOME_VAR,
    KAFKA_PREFIX,
    POSTGRES_READ_VAR,
    POSTGRES_VAR,
    SPARK_MASTER_VAR,
    Endpoints,
    Settings,
)

# Field -> the variable it stands for. Other EVENTFLOW_KAFKA_<PROPERTY> variables still apply, read at use.
ENDPOINT_VARS = {
    "kafka_bootstrap_servers": BOOTSTRAP_VAR,
    "kafka_security_protocol": f"{KAFKA_PREFIX}SECURITY_PROTOCOL",
    "kafka_sasl_mechanism": f"{KAFKA_PREFIX}SASL_MECHANISM",
    "kafka_sasl_username": f"{KAFKA_PREFIX}SASL_USERNAME",
    "kafka_sasl_password": f"{KAFKA_PREFIX}SASL_PASSWORD",
    "postgres_url": POSTGRES_VAR,
    "postgres_read_url": POSTGRES_READ_VAR,
    "home": HOME_VAR,
    "checkpoint_location": CHECKPOINT_VAR,
}
_SECRET = "Holds a secret: bind it with dg.EnvVar (a literal value would be shown on the resource page). "


def _bound(fields: dict[str, str]) -> dict[str, dg.EnvVar]:
    """{field: EnvVar(variable)} for the fields whose variable is set (not empty) in this process."""
    return {name: dg.EnvVar(var) for name, var in fields.items() if os.environ.get(var)}


def _value(field: str | None) -> str | None:
    """A field's value; an EnvVar is resolved by Dagster before a run uses the resource, and here when
    the resource object is used directly (in a test, a script)."""
    return field.get_value() if isinstance(field, dg.EnvVar) else field


class EventFlowEndpoints(dg.ConfigurableResource):
    """Kafka and PostgreSQL as configured by EVENTFLOW_* variables, else the running local stack."""

    kafka_bootstrap_servers: Optional[str] = Field(
        default=None, description=f"{BOOTSTRAP_VAR}. Unset: the broker of the local stack (`eventflow up`/`services`).")
    kafka_security_protocol: Optional[str] = Field(
        default=None, description=f"{KAFKA_PREFIX}SECURITY_PROTOCOL (SASL_SSL, ...). Unset: the client's default.")
    kafka_sasl_mechanism: Optional[str] = Field(
        default=None, description=f"{KAFKA_PREFIX}SASL_MECHANISM (SCRAM-SHA-512, ...).")
    kafka_sasl_username: Optional[str] = Field(default=None, description=f"{KAFKA_PREFIX}SASL_USERNAME.")
    kafka_sasl_password: Optional[str] = Field(default=None, description=f"{_SECRET}{KAFKA_PREFIX}SASL_PASSWORD.")
    postgres_url: Optional[str] = Field(
        default=None, description=f"{_SECRET}{POSTGRES_VAR}, a libpq URI. Unset: the local stack's PostgreSQL.")
    postgres_read_url: Optional[str] = Field(
        default=None, description=f"{_SECRET}{POSTGRES_READ_VAR}: a read replica of that database, read by the "
                                  f"batch analytics (the tables are written to the primary). Unset: they read {POSTGRES_VAR}.")
    home: Optional[str] = Field(
        default=None, description=f"{HOME_VAR}: the state directory (the local stack's, the checkpoints' "
                                  "default). Unset: .eventflow under the working directory.")
    checkpoint_location: Optional[str] = Field(
        default=None, description=f"{CHECKPOINT_VAR}: the streaming checkpoints, a path or a URI Spark "
                                  f"understands. Unset: {HOME_VAR}/checkpoints.")

    @classmethod
    def from_env(cls) -> EventFlowEndpoints:
        """The resource with every field whose variable is set bound to it."""
        return cls(**_bound(ENDPOINT_VARS))

    def settings(self) -> Settings:
        """The environment's settings, with the fields that are set in place of their variables."""
        fields = {var: _value(getattr(self, name)) for name, var in ENDPOINT_VARS.items()}
        return Settings.from_env({**os.environ, **{var: value for var, value in fields.items() if value}})

    def endpoints(self) -> Endpoints:
        return resolve_endpoints(self.settings())

    def checkpoint_root(self) -> str:
        """EVENTFLOW_CHECKPOINT_LOCATION, else $EVENTFLOW_HOME/checkpoints (a path or a URI): where
        jobs/streaming_app.py keeps them too, so either can resume the other's stream."""
        return self.settings().checkpoints


def spark_config(app_name: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The settings of :func:`eventflow_assets.processing.spark.build_spark_session`, as resource config.

    ``app_name`` tells sessions apart in the Spark UI and ``ps`` (the name is on the driver's command
    line); ``extra`` adds settings (the stream's JVM sizing).
    """
    return {**DEFAULTS, "spark.app.name": app_name, **python_conf(), **(extra or {})}


class EventFlowPySpark(PySparkResource):
    """dagster-pyspark's session with EventFlow's Kafka source registered.

    Python workers must run this interpreter (PYSPARK_PYTHON), or they start a system Python
    without our packages; the variable has to be set before the session's JVM starts.
    """

    spark_master: Optional[str] = Field(
        default=None, description=f"{SPARK_MASTER_VAR} (spark://host:7077, k8s://..., local[N]). Unset: the "
                                  "local cluster of `eventflow services --spark-workers N` if one runs, else "
                                  f"{DEFAULT_MASTER}. A spark.master in spark_config wins.")

    @classmethod
    def from_env(cls, app_name: str, extra: dict[str, str] | None = None) -> EventFlowPySpark:
        """The session of :func:`spark_config`, its master bound to EVENTFLOW_SPARK_MASTER if set."""
        return cls(spark_config=spark_config(app_name, extra), **_bound({"spark_master": SPARK_MASTER_VAR}))

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """The session of :func:`build_spark_session` (the one builder of every EventFlow session), with
        ``spark_config`` over its defaults; settings are read and jars resolved when a run starts, not
        when the definitions load (that may download)."""
        conf = dict(self.spark_config)
        master = conf.pop("spark.master", None) or resolve_master(Settings.from_env(), _value(self.spark_master))
        self._spark_session = build_spark_session(conf.pop("spark.app.name", "eventflow"), master, conf)
