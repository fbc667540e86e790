"""The Definitions object holds exactly the documented assets, checks, jobs, sensors and schedules;
topic assets provision for real."""

import dagster as dg

from eventflow_assets.definitions import defs
from eventflow_assets_tests.helpers import read_all

TOPICS = ("user-events", "product-view", "orders")
TABLES = ("orders_raw", "revenue_by_currency_5min", "conversion_funnel_5min", "rejected_events")
TOPIC_KEYS = {dg.AssetKey(["kafka", t]) for t in TOPICS}
TABLE_KEYS = {dg.AssetKey(["postgres", t]) for t in TABLES}


def _key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["postgres", table])


def test_definitions_hold_exactly_the_documented_objects():
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    assert set(graph.get_all_asset_keys()) == TOPIC_KEYS | TABLE_KEYS
    assert {j.name for j in repo.get_all_jobs() if not j.name.startswith("__")} == {
        "streaming_job", "producer_job", "sink_checks_job"}
    assert {s.name for s in repo.sensor_defs} == {"streaming_supervisor", "topic_observations"}
    assert {s.name for s in repo.schedule_defs} == {"sink_checks_schedule"}
    assert set(graph.asset_check_keys) == {
        dg.AssetCheckKey(_key("revenue_by_currency_5min"), "agrees_with_orders_raw"),
        dg.AssetCheckKey(_key("conversion_funnel_5min"), "agrees_with_orders_raw"),
        dg.AssetCheckKey(_key("orders_raw"), "no_duplicate_order_ids"),
        dg.AssetCheckKey(_key("orders_raw"), "fresh_while_events_arrive"),
        dg.AssetCheckKey(_key("revenue_by_currency_5min"), "fresh_while_events_arrive"),
        dg.AssetCheckKey(_key("conversion_funnel_5min"), "fresh_while_events_arrive"),
        dg.AssetCheckKey(_key("rejected_events"), "rejected_rate_below_5_percent"),
    }


def test_lineage_groups_and_automation():
    graph = defs.get_repository_def().asset_graph
    assert {k: graph.get(k).parent_keys for k in TABLE_KEYS} == {
        _key("orders_raw"): {dg.AssetKey(["kafka", "orders"])},
        _key("revenue_by_currency_5min"): {dg.AssetKey(["kafka", "orders"])},
        _key("conversion_funnel_5min"): {dg.AssetKey(["kafka", "orders"]), dg.AssetKey(["kafka", "product-view"])},
        _key("rejected_events"): TOPIC_KEYS,
    }
    assert {k: graph.get(k).group_name for k in TOPIC_KEYS | TABLE_KEYS} == {
        **{k: "ingestion" for k in TOPIC_KEYS}, **{k: "storage" for k in TABLE_KEYS}}
    repo = defs.get_repository_def()
    # On without a click under `eventflow up`.
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in repo.sensor_defs)
    assert all(s.default_status == dg.DefaultScheduleStatus.RUNNING for s in repo.schedule_defs)
    assert repo.get_sensor_def("streaming_supervisor").job_name == "streaming_job"
    assert defs.get_job_def("streaming_job").tags["eventflow/stream"] == "true"


def test_materializing_topic_assets_provisions_them(kafka_broker, pg_url, monkeypatch, tmp_path):
    monkeypatch.setenv("EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS", kafka_broker.bootstrap_servers)
    monkeypatch.setenv("EVENTFLOW_POSTGRES_URL", pg_url)
    monkeypatch.setenv("EVENTFLOW_HOME", str(tmp_path))
    from eventflow_assets.orchestration.resources import EventFlowEndpoints
    from eventflow_assets.orchestration.topic_assets import topic_assets

    result = dg.materialize(topic_assets, resources={"eventflow": EventFlowEndpoints()})
    assert result.success
    materializations = {e.asset_key: e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert set(materializations) == TOPIC_KEYS
    for key, meta in materializations.items():
        assert meta["outcome"].value == "created"
        assert meta["partitions"].value == 3
        assert meta["records"].value == 0
    assert read_all(kafka_broker.bootstrap_servers, ["user-events", "product-view", "orders"]) == []

    again = dg.materialize(topic_assets, resources={"eventflow": EventFlowEndpoints()})
    assert {e.materialization.metadata["outcome"].value for e in again.get_asset_materialization_events()} == {"exists"}
