"""The Definitions object loads and holds exactly the documented assets; topic assets provision for real."""

import dagster as dg

from eventflow_assets.definitions import defs
from eventflow_assets_tests.helpers import read_all

TOPIC_KEYS = {dg.AssetKey(["kafka", t]) for t in ("user-events", "product-view", "orders")}


def test_definitions_asset_keys():
    repo = defs.get_repository_def()
    assert set(repo.asset_graph.get_all_asset_keys()) == TOPIC_KEYS


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
