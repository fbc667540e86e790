"""libpq URL -> JDBC, and parallel JDBC reads that lose no row."""

from __future__ import annotations

import psycopg
import pytest

from eventflow_assets.analytics import sources
from eventflow_assets.analytics.jdbc import Partitioning, jdbc_target, read
from eventflow_assets.errors import EventFlowError
from eventflow_assets_tests.analytics import dataset


def test_libpq_url_becomes_jdbc_url_and_properties():
    target = jdbc_target("postgresql://ev%40user:p%40ss%3Aw0rd@db.example:6543/events"
                         "?sslmode=require&application_name=eventflow&keepalives=1")
    assert target.url == "jdbc:postgresql://db.example:6543/events"
    assert (target.user, target.password) == ("ev@user", "p@ss:w0rd")
    assert target.options() == {"url": "jdbc:postgresql://db.example:6543/events", "driver": "org.postgresql.Driver",
                                "ApplicationName": "eventflow", "sslmode": "require", "user": "ev@user",
                                "password": "p@ss:w0rd"}
    assert "p@ss" not in repr(target)


def test_urls_jdbc_cannot_use_are_clear_errors():
    with pytest.raises(EventFlowError, match=r"needs a TCP host .* postgresql://u:\*\*\*@/db\?host=/run/pg"):
        jdbc_target("postgresql://u:secret@/db?host=/run/pg")
    with pytest.raises(EventFlowError, match="must be a libpq URI"):
        jdbc_target("mysql://u:secret@h/db")


def test_partitioned_reads_return_every_row(spark, loaded_url, monkeypatch):
    target = jdbc_target(loaded_url)
    # Bounds well inside the data: the open-ended first and last partitions still get the rest.
    narrow = Partitioning("timestamp", "2026-11-24 00:10:00", "2026-11-24 00:20:00", 3)
    df = read(spark, target, "orders_raw", partitioning=narrow)
    assert df.rdd.getNumPartitions() == 3
    assert sorted(r.order_id for r in df.select("order_id").collect()) == sorted(
        f"o{i}" for i in range(len(dataset.ORDERS)))

    with psycopg.connect(loaded_url, autocommit=True) as conn:
        conn.execute("ANALYZE orders_raw")
    monkeypatch.setattr(sources, "PARALLEL_READ_ROWS", 1)
    orders = sources.orders_raw(spark, loaded_url)
    assert orders.rdd.getNumPartitions() == spark.sparkContext.defaultParallelism == 2
    assert orders.count() == len(dataset.ORDERS)
