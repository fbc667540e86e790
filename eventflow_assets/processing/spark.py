"""The SparkSession every EventFlow job uses, sized for a 2-core machine.

Spark's Kafka connector and the PostgreSQL JDBC driver are not in the pyspark wheel: they come
from Maven Central on first use (:func:`spark_jars`) and are handed to Spark as ``spark.jars``,
which ships them to executors on any cluster. This is what ``spark.jars.packages`` would do, but
resolved once into EventFlow's cache, so later sessions start offline and without an Ivy run.
"""

from __future__ import annotations

import os
import sys

import pyspark
from pyspark.sql import SparkSession

from eventflow_assets import maven
from eventflow_assets.processing.kafka_source import KafkaDataSource

POSTGRES_JDBC_VERSION = "42.7.8"
# The connector links against Spark's internals: exactly the version pyspark runs.
SPARK_PACKAGES = (
    f"org.apache.spark:spark-sql-kafka-0-10_2.13:{pyspark.__version__}",
    f"org.postgresql:postgresql:{POSTGRES_JDBC_VERSION}",
)
# Spark itself, Scala and Hadoop are on Spark's classpath already (spark.jars.packages excludes them too).
_PROVIDED = ("org.scala-lang", "org.apache.hadoop", "org.apache.spark:spark-tags_2.13")
DEFAULT_MASTER = "local[2]"
STREAM_APP = "eventflow-streaming"  # the streaming application's name (Spark UI, ``ps``, bench/soak.py)

# The stream's driver JVM runs for weeks (under local[N] it holds the executors too). Its heap is
# fixed and touched at start (-Xms = spark.driver.memory, AlwaysPreTouch) and the JIT's code cache
# capped below the JVM's 240 MiB, so its resident memory is reached within minutes and then stays:
# otherwise G1 resizes the committed heap with the load and the code cache fills for the better part
# of an hour, which a soak cannot tell from a leak (bench/README.md, the soak). Applies when
# EventFlow starts the JVM (`eventflow stream`, streaming_job); spark-submit takes its own options.
STREAM_CODE_CACHE = "96m"


def stream_jvm_conf(driver_memory: str = "1g") -> dict[str, str]:
    """The stream driver's memory settings (``driver_memory`` is Spark's default ``spark.driver.memory``)."""
    return {"spark.driver.memory": driver_memory,
            "spark.driver.extraJavaOptions": f"-Xms{driver_memory} -XX:+AlwaysPreTouch "
                                             f"-XX:ReservedCodeCacheSize={STREAM_CODE_CACHE}"}

# Native memory of a JVM that runs the state store: glibc gives each thread group its own malloc
# arena (up to 8 per core), where RocksDB's and the JVM's freed memory fragments; 2 arenas keep that
# bounded (the usual setting for RocksDB under a JVM). Set for the driver's JVM when EventFlow starts
# it (build_spark_session) and for executors on a cluster (spark.executorEnv below).
MALLOC_ARENAS = "2"
# RocksDB's memtables, block cache and index/filter blocks of every state store in one JVM share one
# LRU cache of this size, instead of a cache per store plus unbounded table readers.
STATE_STORE_MEMORY_MB = "128"

# Executors and cores are the master's to give (spark-submit, the cluster's defaults): never set here.
DEFAULTS = {
    "spark.sql.streaming.stateStore.providerClass":
        "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider",
    "spark.sql.streaming.stateStore.rocksdb.boundedMemoryUsage": "true",
    "spark.sql.streaming.stateStore.rocksdb.maxMemoryUsageMB": STATE_STORE_MEMORY_MB,
    "spark.executorEnv.MALLOC_ARENA_MAX": MALLOC_ARENAS,
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # 15 s by default: on a loaded 2-core machine a result socket can take longer to accept,
    # which failed a streaming batch (CANNOT_OPEN_SOCKET) during a test run.
    "spark.python.authenticate.socketTimeout": "120s",
}


def shuffle_conf(settings) -> dict[str, str]:
    """``spark.sql.shuffle.partitions`` from EVENTFLOW_SPARK_SHUFFLE_PARTITIONS (2 by default: Spark's
    200 makes every stateful micro-batch crawl on 2 cores). A streaming query keeps the value its
    checkpoint started with (docs/streaming.md)."""
    return {"spark.sql.shuffle.partitions": str(settings.shuffle_partitions)}


def resolve_master(settings, master: str | None = None) -> str:
    """``master``, else EVENTFLOW_SPARK_MASTER, else the local cluster of ``eventflow services
    --spark-workers N`` running on this home, else ``local[2]``."""
    from eventflow_assets.local.stack import spark_master

    return master or spark_master(settings) or DEFAULT_MASTER


def python_conf() -> dict[str, str]:
    """The driver and the Python workers run this interpreter (the system Python lacks our packages)."""
    return {"spark.pyspark.python": sys.executable, "spark.pyspark.driver.python": sys.executable}


def session_conf(settings, master: str | None) -> dict[str, str]:
    """What every EventFlow Spark application runs with on ``master``: :data:`DEFAULTS`, the shuffle
    partitions, and the driver on 127.0.0.1 for a master on this machine."""
    return {**DEFAULTS, **shuffle_conf(settings), **loopback_driver(master)}


LOOPBACK = "127.0.0.1"


def loopback_driver(master: str | None) -> dict[str, str]:
    """For a master on this machine, the driver's RPC and block manager on 127.0.0.1 only.

    Spark binds them to the host name's address otherwise (all interfaces, in effect: seen on the
    stream's driver as ``192.0.2.2:<port>``), reachable from the network with no authentication.
    A remote master needs the driver reachable from its executors: left as Spark decides.
    """
    if master is None:
        return {}
    local = master.startswith("local") or master.split("://", 1)[-1].split(":", 1)[0] in (LOOPBACK, "localhost")
    return {"spark.driver.bindAddress": LOOPBACK, "spark.driver.host": LOOPBACK} if local else {}


def spark_jars() -> list[str]:
    """Local paths of the Kafka connector, the JDBC driver and what they need beyond Spark's own jars."""
    paths = maven.resolve(f"spark-{pyspark.__version__}-connectors", SPARK_PACKAGES, excludes=_PROVIDED,
                          skip_present_in=maven.spark_jars_dir())
    return [str(p) for p in paths]


def with_spark_jars(conf: dict[str, str]) -> dict[str, str]:
    """``conf`` with :func:`spark_jars` added to any ``spark.jars`` it already names."""
    jars = [j for j in conf.get("spark.jars", "").split(",") if j]
    return {**conf, "spark.jars": ",".join(dict.fromkeys(jars + spark_jars()))}


def build_spark_session(app_name: str = "eventflow", master: str | None = None,
                        conf: dict | None = None) -> SparkSession:
    """A session with the connectors on its classpath and the ``eventflow_kafka`` source registered.

    ``conf`` overrides the defaults. Without ``master``: what spark-submit (or PYSPARK_SUBMIT_ARGS)
    chose, else EVENTFLOW_SPARK_MASTER, else the local cluster of ``eventflow services
    --spark-workers N`` running on this home, else ``local[2]``. Python workers run this
    interpreter unless PYSPARK_PYTHON says otherwise; otherwise they would start the system
    Python, which lacks our packages.
    """
    from eventflow_assets.settings import Settings

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_AUTH_SOCKET_TIMEOUT", "120")  # the driver side of the same sockets
    os.environ.setdefault("MALLOC_ARENA_MAX", MALLOC_ARENAS)  # read by the JVM's glibc when it starts
    launched_with_master = "PYSPARK_GATEWAY_PORT" in os.environ \
        or "--master" in os.environ.get("PYSPARK_SUBMIT_ARGS", "")
    env = Settings.from_env()
    if master is None and not launched_with_master:
        master = resolve_master(env)
    settings = with_spark_jars({**session_conf(env, master), **(conf or {})})
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    spark.dataSource.register(KafkaDataSource)
    return spark
