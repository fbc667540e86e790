"""The analytics read a real streaming replica (EVENTFLOW_POSTGRES_READ_URL) and write the primary;
a replica that has not replayed the primary's WAL within the bound stops the run with a clear error."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from eventflow_assets.analytics.run import TRENDS, run_analyses
from eventflow_assets.errors import EventFlowError
from eventflow_assets.local.postgres_server import HOST, SUPERUSER, SYSTEM_USER, EmbeddedPostgres, _bin
from eventflow_assets.local.processes import free_port
from eventflow_assets.orchestration.assets.analytics import _database_env
from eventflow_assets.orchestration.resources import EventFlowEndpoints
from eventflow_assets.storage.schema import apply_schema
from eventflow_assets.storage.tables import FUNNEL, ORDERS_RAW, REVENUE
from eventflow_assets_tests.analytics import dataset
from eventflow_assets_tests.analytics.test_app import run_app
from eventflow_assets_tests.analytics.test_run import expected_tables, snapshot
from eventflow_assets_tests.conftest import running

SOURCES = (REVENUE, FUNNEL, ORDERS_RAW, "currency_rates")


def _start_replica(primary: EmbeddedPostgres, state: Path) -> EmbeddedPostgres:
    """``pg_basebackup -R`` of ``primary`` into ``state``, started as a hot standby streaming from it.

    initdb's pg_hba.conf already admits replication from 127.0.0.1 with the password, and the
    defaults (wal_level=replica, max_wal_senders=10) allow a streaming standby."""
    owner = pwd.getpwnam(SYSTEM_USER) if os.geteuid() == 0 else None
    shutil.copy(primary.password_file, state / "password")
    if owner is not None:  # the replica's files belong to the user the server runs as
        for path in (state, state / "password"):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    result = subprocess.run(
        [_bin("pg_basebackup"), "-D", str(state / "data"), "-h", HOST,
         "-p", str(primary.port), "-U", SUPERUSER, "-R", "-X", "stream", "-c", "fast"],
        env={**os.environ, "PGPASSWORD": primary.password_file.read_text().strip()},
        capture_output=True, text=True, timeout=120,
        user=owner.pw_uid if owner else None, group=owner.pw_gid if owner else None)
    assert result.returncode == 0, result.stderr
    replica = EmbeddedPostgres(state, free_port())
    replica.start()
    return replica


@pytest.fixture(scope="module")
def primary_and_replica():
    """A fresh primary holding the analytics dataset, and its streaming replica (this module's own)."""
    with running(EmbeddedPostgres, "eventflow-test-primary-") as primary:
        apply_schema(primary.url())
        dataset.load(primary.url())
        state = Path(tempfile.mkdtemp(prefix="eventflow-test-replica-"))
        replica = None
        try:
            replica = _start_replica(primary, state)
            yield primary.url(), replica.url()
        finally:
            if replica is not None:
                replica.stop()
            shutil.rmtree(state, ignore_errors=True)


def scans(url: str) -> dict[str, int]:
    """Sequential plus index scans of the source tables counted by this server (counts are not replicated);
    a partitioned table's are its partitions' (orders_raw is partitioned by day)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("""
            SELECT coalesce(i.inhparent::regclass::text, s.relname) AS source, sum(seq_scan + coalesce(idx_scan, 0))
            FROM pg_stat_user_tables s LEFT JOIN pg_inherits i ON i.inhrelid = s.relid
            GROUP BY 1 HAVING coalesce(i.inhparent::regclass::text, s.relname) = ANY(%s)""",
                            (list(SOURCES),)).fetchall()
    return {table: int(n) for table, n in rows}


def test_the_analytics_read_the_replica_and_write_the_primary(primary_and_replica, tmp_path):
    """The application as users run it, with both variables set."""
    primary, replica = primary_and_replica
    with psycopg.connect(replica) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
    before = scans(replica)

    done = run_app(tmp_path, postgres_url=primary, env={"EVENTFLOW_POSTGRES_READ_URL": replica})

    assert done.returncode == 0, done.stderr[-3000:]
    assert snapshot(primary) == expected_tables()
    after = scans(replica)
    assert set(after) == set(SOURCES)
    assert all(after[t] > before.get(t, 0) for t in SOURCES), (before, after)
    assert password(replica) not in done.stdout + done.stderr
    # The replica replays what the run wrote to the primary.
    for _ in range(100):
        if snapshot(replica) == expected_tables():
            break
        time.sleep(0.1)
    assert snapshot(replica) == expected_tables()


def password(url: str) -> str:
    return url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]


def test_a_replica_behind_the_bound_stops_the_run_before_it_computes(spark, primary_and_replica):
    primary, replica = primary_and_replica
    before = snapshot(primary)
    with psycopg.connect(replica, autocommit=True) as standby:
        standby.execute("SELECT pg_wal_replay_pause()")
        try:
            # A window the paused replica does not see.
            dataset.load(primary, revenue=[("2026-11-24 02:00", "USD", "1.00", 1)], funnel=[], orders=[])
            with pytest.raises(EventFlowError) as raised:
                run_analyses(spark, primary, analyses=(TRENDS,), read_url=replica, replica_wait=1.5)
        finally:
            standby.execute("SELECT pg_wal_replay_resume()")
    message = str(raised.value)
    host_port = replica.split("@")[1]
    assert message.startswith(f"the read replica postgresql://postgres:***@{host_port} has not replayed "
                              f"the primary's WAL up to ")
    assert "within 1.5s" in message and "bytes behind" in message and "EVENTFLOW_POSTGRES_READ_URL" in message
    assert password(replica) not in message
    assert snapshot(primary) == before


def test_the_dagster_assets_hand_the_replica_to_the_application_in_its_environment(monkeypatch):
    monkeypatch.delenv("EVENTFLOW_POSTGRES_READ_URL", raising=False)
    primary, replica = "postgresql://u:p@db:5432/eventflow", "postgresql://u:p@replica:5432/eventflow"
    assert _database_env(EventFlowEndpoints(kafka_bootstrap_servers="k:9092", postgres_url=primary)) \
        == {"EVENTFLOW_POSTGRES_URL": primary}
    assert _database_env(EventFlowEndpoints(kafka_bootstrap_servers="k:9092", postgres_url=primary,
                                            postgres_read_url=replica)) \
        == {"EVENTFLOW_POSTGRES_URL": primary, "EVENTFLOW_POSTGRES_READ_URL": replica}
