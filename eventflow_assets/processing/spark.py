"""The SparkSession every EventFlow job uses, sized for a 2-core machine."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

from eventflow_assets.processing.kafka_source import KafkaDataSource

POSTGRES_JDBC_JAR = "/usr/share/java/postgresql.jar"

DEFAULTS = {
    # The default of 200 makes every stateful micro-batch crawl on 2 cores.
    "spark.sql.shuffle.partitions": "2",
    "spark.sql.streaming.stateStore.providerClass":
        "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # 15 s by default: on a loaded 2-core machine a result socket can take longer to accept,
    # which failed a streaming batch (CANNOT_OPEN_SOCKET) during a test run.
    "spark.python.authenticate.socketTimeout": "120s",
}


def build_spark_session(app_name: str = "eventflow", master: str | None = None,
                        conf: dict | None = None) -> SparkSession:
    """A session with the ``eventflow_kafka`` source registered; ``conf`` overrides the defaults.

    Without ``master``, ``local[2]`` is used unless spark-submit (or PYSPARK_SUBMIT_ARGS) chose one.
    Python workers run this interpreter unless PYSPARK_PYTHON says otherwise; otherwise they would
    start the system Python, which lacks our packages.
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_AUTH_SOCKET_TIMEOUT", "120")  # the driver side of the same sockets
    settings = {**DEFAULTS, **(conf or {})}
    if os.path.exists(POSTGRES_JDBC_JAR):
        jars = [j for j in settings.get("spark.jars", "").split(",") if j]
        settings["spark.jars"] = ",".join(dict.fromkeys(jars + [POSTGRES_JDBC_JAR]))
    launched_with_master = "PYSPARK_GATEWAY_PORT" in os.environ \
        or "--master" in os.environ.get("PYSPARK_SUBMIT_ARGS", "")
    if master is None and not launched_with_master:
        master = "local[2]"
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    spark.dataSource.register(KafkaDataSource)
    return spark
