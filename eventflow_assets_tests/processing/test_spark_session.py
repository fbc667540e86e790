"""The SparkSession every job builds listens on the loopback address only when its master is on
this machine (Spark's default binds the driver to the host name's address)."""

import psutil

from eventflow_assets.processing.spark import loopback_driver
from eventflow_assets_tests.exposure import listening_beyond_loopback


def test_the_local_driver_listens_on_loopback_only(spark):
    spark.range(100).repartition(2).count()  # a shuffle: the block manager is up and serving
    drivers = [p for p in psutil.Process().children(recursive=True)
               if p.name() == "java" and "spark.app.name=eventflow-tests" in p.cmdline()]
    assert len(drivers) == 1
    listening = [c.laddr.ip for c in drivers[0].net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    assert len(listening) >= 2  # at least the driver's RPC endpoint and its block manager
    assert listening_beyond_loopback(drivers) == []
    assert spark.conf.get("spark.driver.bindAddress") == "127.0.0.1"


def test_only_masters_on_this_machine_get_a_loopback_driver():
    loopback = {"spark.driver.bindAddress": "127.0.0.1", "spark.driver.host": "127.0.0.1"}
    for master in ("local[2]", "local", "local[*]", "spark://127.0.0.1:7077", "spark://localhost:7077"):
        assert loopback_driver(master) == loopback, master
    for master in ("spark://spark-master:7077", "k8s://https://10.0.0.1:6443", "yarn", None):
        assert loopback_driver(master) == {}, master
