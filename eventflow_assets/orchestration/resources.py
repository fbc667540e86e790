"""Dagster resources: where Kafka and PostgreSQL are, and the SparkSession the streaming op runs on."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dagster as dg
from dagster_pyspark import PySparkResource
from dagster_pyspark.resources import spark_session_from_config

from eventflow_assets.local.stack import Endpoints, resolve_endpoints, spark_master
from eventflow_assets.processing.kafka_source import KafkaDataSource
from eventflow_assets.processing.spark import DEFAULT_MASTER, DEFAULTS, loopback_driver, with_spark_jars
from eventflow_assets.settings import Settings


class EventFlowEndpoints(dg.ConfigurableResource):
    """Kafka and PostgreSQL as configured by EVENTFLOW_* variables, else the running local stack."""

    def endpoints(self) -> Endpoints:
        return resolve_endpoints(Settings.from_env())

    def checkpoint_root(self) -> Path:
        """EVENTFLOW_CHECKPOINT_LOCATION, else $EVENTFLOW_HOME/checkpoints: where jobs/streaming_app.py
        keeps them too, so either can resume the other's stream."""
        return Path(Settings.from_env().checkpoints)


def spark_config(app_name: str) -> dict[str, str]:
    """The settings of :func:`eventflow_assets.processing.spark.build_spark_session`, as resource config.

    The stream's session is named ``eventflow-streaming`` and the analytics' ``eventflow-analytics``,
    so the Spark UI and ``ps`` (the name is on the driver's command line) tell the two apart.
    """
    return {**DEFAULTS, "spark.app.name": app_name,
            "spark.pyspark.python": sys.executable, "spark.pyspark.driver.python": sys.executable}


class EventFlowPySpark(PySparkResource):
    """dagster-pyspark's session with EventFlow's Kafka source registered.

    Python workers must run this interpreter (PYSPARK_PYTHON), or they start a system Python
    without our packages; the variable has to be set before the session's JVM starts.
    """

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        conf = dict(self.spark_config)
        conf.setdefault("spark.master", spark_master(Settings.from_env()) or DEFAULT_MASTER)
        conf = {**loopback_driver(conf["spark.master"]), **conf}
        # Jars are resolved when a run starts, not when the definitions load (that may download).
        self._spark_session = spark_session_from_config(with_spark_jars(conf))
        self.spark_session.sparkContext.setLogLevel("WARN")
        self.spark_session.dataSource.register(KafkaDataSource)
