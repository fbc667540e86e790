"""The Definitions object holds exactly the documented assets, checks, jobs, sensors and schedules;
topic assets provision for real."""

import dagster as dg

from eventflow_assets.definitions import defs
from eventflow_assets_tests.helpers import read_all

TOPICS = ("user-events", "product-view", "orders")
TABLES = ("orders_raw", "revenue_by_currency_5min", "conversion_funnel_5min", "rejected_events")
TOPIC_KEYS = {dg.AssetKey(["kafka", t]) for t in TOPICS}
TABLE_KEYS = {dg.AssetKey(["postgres", t]) for t in TABLES}
RATES_KEY = dg.AssetKey(["postgres", "currency_rates"])
SERVER_KEY = dg.AssetKey(["postgres_server"])  # observed by postgres_observations
TREND_TABLES = ("analytics_revenue_trends", "analytics_revenue_trends_hourly", "analytics_revenue_trends_daily",
                "analytics_revenue_trends_usd")
GLOBAL_TABLES = ("analytics_top_revenue_by_currency", "analytics_conversion_rates", "analytics_user_segments",
                 "analytics_segment_summary")
ANALYTICS_KEYS = {dg.AssetKey(["postgres", t]) for t in TREND_TABLES + GLOBAL_TABLES}


def _key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["postgres", table])


def test_definitions_hold_exactly_the_documented_objects():
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    assert set(graph.get_all_asset_keys()) == TOPIC_KEYS | TABLE_KEYS | {RATES_KEY, SERVER_KEY} | ANALYTICS_KEYS
    assert {j.name for j in repo.get_all_jobs() if not j.name.startswith("__")} == {
        "streaming_job", "producer_job", "sink_checks_job", "revenue_trends_job", "global_analytics_job",
        "retention_job", "orders_archive_job"}
    assert {s.name for s in repo.sensor_defs} == {"streaming_supervisor", "topic_observations",
                                                  "sink_table_materializations", "finalized_windows",
                                                  "analytics_automation", "failure_alerts", "postgres_observations"}
    assert {s.name for s in repo.schedule_defs} == {"sink_checks_schedule", "retention_schedule",
                                                    "orders_archive_schedule"}
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
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    assert {k: graph.get(k).parent_keys for k in TABLE_KEYS} == {
        _key("orders_raw"): {dg.AssetKey(["kafka", "orders"])},
        _key("revenue_by_currency_5min"): {dg.AssetKey(["kafka", "orders"])},
        _key("conversion_funnel_5min"): {dg.AssetKey(["kafka", "orders"]), dg.AssetKey(["kafka", "product-view"])},
        _key("rejected_events"): TOPIC_KEYS,
    }
    # topics -> sink tables -> analytics
    assert {k: graph.get(k).parent_keys for k in ANALYTICS_KEYS} == {
        **{_key(t): {_key("revenue_by_currency_5min"), RATES_KEY} for t in TREND_TABLES},
        _key("analytics_top_revenue_by_currency"): {_key("revenue_by_currency_5min"), RATES_KEY},
        _key("analytics_conversion_rates"): {_key("conversion_funnel_5min")},
        _key("analytics_user_segments"): {_key("orders_raw"), RATES_KEY},
        _key("analytics_segment_summary"): {_key("analytics_user_segments")},
    }
    assert {k: graph.get(k).group_name for k in TOPIC_KEYS | TABLE_KEYS | {RATES_KEY, SERVER_KEY} | ANALYTICS_KEYS} == {
        **{k: "ingestion" for k in TOPIC_KEYS}, **{k: "storage" for k in TABLE_KEYS | {RATES_KEY, SERVER_KEY}},
        **{k: "analytics" for k in ANALYTICS_KEYS}}
    # Trends are partitioned by UTC day (today's included), the global analyses are not.
    assert {k for k in ANALYTICS_KEYS if graph.get(k).partitions_def is not None} == {
        _key(t) for t in TREND_TABLES}
    days = graph.get(_key("analytics_revenue_trends")).partitions_def
    assert isinstance(days, dg.DailyPartitionsDefinition)
    assert (days.get_first_partition_key(), days.end_offset, days.timezone) == ("2026-11-01", 1, "UTC")
    assert repo.get_sensor_def("finalized_windows").job_name == "revenue_trends_job"
    # The global analyses, and only they, follow an automation condition, evaluated by
    # analytics_automation (so Dagster adds no default_automation_condition_sensor), whose runs
    # are retried like the jobs' runs. Every analytics table has a freshness policy.
    automated = {k for k in graph.get_all_asset_keys() if graph.get(k).automation_condition is not None}
    assert automated == {_key(t) for t in GLOBAL_TABLES}
    automation = repo.get_sensor_def("analytics_automation")
    assert isinstance(automation, dg.AutomationConditionSensorDefinition)
    assert automation.asset_selection.resolve(graph) == automated
    assert automation.run_tags == {"dagster/max_retries": "2"}
    policies = {k: graph.get(k).freshness_policy for k in graph.get_all_asset_keys()}
    assert {k: (p.warn_window.to_timedelta().total_seconds() / 60, p.fail_window.to_timedelta().total_seconds() / 60)
            for k, p in policies.items() if p is not None} == {
        **{_key(t): (10, 20) for t in TREND_TABLES}, **{_key(t): (20, 35) for t in GLOBAL_TABLES}}
    assert repo.get_schedule_def("retention_schedule").job_name == "retention_job"
    assert repo.get_schedule_def("orders_archive_schedule").job_name == "orders_archive_job"
    for job in ("revenue_trends_job", "global_analytics_job"):
        assert defs.resolve_job_def(job).tags == {"dagster/max_retries": "2"}
    # Every analytics asset, and nothing else, is in the pool the instance limits to one run
    # (its default limit would hold back any other pool too).
    assert {k: graph.get(k).pools for k in graph.get_all_asset_keys()} == {
        k: ({"eventflow_spark_batch"} if k in ANALYTICS_KEYS
            else (None if k in TABLE_KEYS | {RATES_KEY, SERVER_KEY} else set()))
        for k in graph.get_all_asset_keys()}
    pooled = {(node.name, node.definition.pool) for job in repo.get_all_jobs() for node in job.graph.nodes
              if node.definition.pool}
    assert pooled == {(op, "eventflow_spark_batch") for op in
                      ("revenue_trends", "postgres__analytics_top_revenue_by_currency",
                       "postgres__analytics_conversion_rates", "user_segments")}
    # On without a click under `eventflow up`.
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in repo.sensor_defs)
    assert all(s.default_status == dg.DefaultScheduleStatus.RUNNING for s in repo.schedule_defs)
    assert repo.get_sensor_def("streaming_supervisor").job_name == "streaming_job"
    assert defs.get_job_def("streaming_job").tags["eventflow/stream"] == "true"


def test_materializing_topic_assets_provisions_them(kafka_broker, pg_url, monkeypatch, tmp_path):
    monkeypatch.setenv("EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS", kafka_broker.bootstrap_servers)
    monkeypatch.setenv("EVENTFLOW_POSTGRES_URL", pg_url)
    monkeypatch.setenv("EVENTFLOW_HOME", str(tmp_path))
    from eventflow_assets.orchestration.assets.topics import topic_assets
    from eventflow_assets.orchestration.resources import EventFlowEndpoints

    result = dg.materialize(topic_assets, resources={"eventflow": EventFlowEndpoints()})
    assert result.success
    materializations = {e.asset_key: e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert set(materializations) == TOPIC_KEYS
    for meta in materializations.values():
        assert meta["outcome"].value == "created"
        assert meta["partitions"].value == 3
        assert meta["records"].value == 0
    assert read_all(kafka_broker.bootstrap_servers, ["user-events", "product-view", "orders"]) == []

    again = dg.materialize(topic_assets, resources={"eventflow": EventFlowEndpoints()})
    assert {e.materialization.metadata["outcome"].value for e in again.get_asset_materialization_events()} == {"exists"}
