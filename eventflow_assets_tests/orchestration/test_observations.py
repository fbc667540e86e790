"""The PostgreSQL server's observation on a real server: connections counted as pg_stat_activity
counts them, rising by exactly the connections the test opens."""

from contextlib import ExitStack

import dagster as dg
import psycopg

from eventflow_assets.local.processes import free_port
from eventflow_assets.orchestration.resources import EventFlowEndpoints
from eventflow_assets.orchestration.sensors.observations import postgres_observations


def observe() -> dg.SensorResult | dg.SkipReason:
    return postgres_observations(dg.build_sensor_context(resources={"eventflow": EventFlowEndpoints()}))


def figures(result) -> dict:
    (event,) = result.asset_events
    assert isinstance(event, dg.AssetObservation) and event.asset_key == dg.AssetKey(["postgres_server"])
    return {k: v.value for k, v in event.metadata.items()}


def test_connections_rise_by_the_connections_opened(eventflow_env, pg_url):
    with psycopg.connect(pg_url) as conn:
        max_connections, reserved = (int(conn.execute(f"SHOW {name}").fetchone()[0])
                                     for name in ("max_connections", "superuser_reserved_connections"))
    before = figures(observe())
    assert before["max_connections"] == max_connections and before["superuser_reserved_connections"] == reserved
    # The sensor's own connection is the only one to this test's new database, and it is active.
    assert before["connections_this_database"] == 1 and before["connections_active"] >= 1
    with ExitStack() as stack:
        for _ in range(3):
            stack.enter_context(psycopg.connect(pg_url))
        during = figures(observe())
        with psycopg.connect(pg_url) as conn:
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    assert during["connections"] - before["connections"] == 3
    assert during["connections_this_database"] == 4
    assert during["connections_used_share"] == round(during["connections"] / (max_connections - reserved), 4)
    assert during["database_size_bytes"] == size > 0


def test_an_unreachable_server_is_a_skip_that_says_so(eventflow_env, monkeypatch):
    monkeypatch.setenv("EVENTFLOW_POSTGRES_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/eventflow")
    result = observe()
    assert isinstance(result, dg.SkipReason)
    assert result.skip_message.startswith("cannot observe PostgreSQL: cannot connect to PostgreSQL at ")
