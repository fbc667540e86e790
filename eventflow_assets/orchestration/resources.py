"""Dagster resources: where Kafka and PostgreSQL are, and the SparkSession the streaming op runs on."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dagster as dg
from dagster_pyspark import PySparkResource

from eventflow_assets.local.stack import Endpoints, resolve_endpoints
from eventflow_assets.processing.kafka_source import KafkaDataSource
from eventflow_assets.processing.spark import DEFAULTS, POSTGRES_JDBC_JAR
from eventflow_assets.settings import Settings


class EventFlowEndpoints(dg.ConfigurableResource):
    """Kafka and PostgreSQL as configured by EVENTFLOW_* variables, else the running local stack."""

    def endpoints(self) -> Endpoints:
        return resolve_endpoints(Settings.from_env())

    def checkpoint_root(self) -> Path:
        """$EVENTFLOW_HOME/checkpoints: the same place jobs/streaming_app.py uses, so either can resume."""
        return Settings.from_env().home / "checkpoints"


def spark_config(app_name: str) -> dict[str, str]:
    """The settings of :func:`eventflow_assets.processing.spark.build_spark_session`, as resource config.

    The stream's session is named ``eventflow-streaming`` and the analytics' ``eventflow-analytics``,
    so the Spark UI and ``ps`` (the name is on the driver's command line) tell the two apart.
    """
    config = {**DEFAULTS, "spark.master": "local[2]", "spark.app.name": app_name,
              "spark.pyspark.python": sys.executable, "spark.pyspark.driver.python": sys.executable}
    if os.path.exists(POSTGRES_JDBC_JAR):
        config["spark.jars"] = POSTGRES_JDBC_JAR
    return config


class EventFlowPySpark(PySparkResource):
    """dagster-pyspark's session with EventFlow's Kafka source registered.

    Python workers must run this interpreter (PYSPARK_PYTHON), or they start a system Python
    without our packages; the variable has to be set before the session's JVM starts.
    """

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        super().setup_for_execution(context)
        self.spark_session.sparkContext.setLogLevel("WARN")
        self.spark_session.dataSource.register(KafkaDataSource)
