"""The analytics assets as Dagster Pipes launches them: each step is ``spark-submit
jobs/batch_analytics_app.py --analysis ...``, and the application reports its tables'
materializations, its log lines and its failure back to the run.

Real PostgreSQL holding the hand-built dataset (eventflow_assets_tests/analytics/dataset.py), real
spark-submit; every expected value is worked out from the dataset here.
"""

import dagster as dg

from eventflow_assets.definitions import defs
from eventflow_assets.local.processes import free_port
from eventflow_assets_tests.analytics import dataset
from eventflow_assets_tests.helpers import table_rows


def pipes_env(monkeypatch, tmp_path, postgres_url: str) -> None:
    monkeypatch.setenv("EVENTFLOW_POSTGRES_URL", postgres_url)
    monkeypatch.setenv("EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")  # never contacted
    monkeypatch.setenv("EVENTFLOW_HOME", str(tmp_path))


def test_each_global_analysis_is_a_spark_submit_that_reports_its_tables_through_pipes(loaded_url, tmp_path,
                                                                                        monkeypatch):
    """The hand-built dataset: the tables, and the metadata the application sent, worked out here."""
    pipes_env(monkeypatch, tmp_path, loaded_url)
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("global_analytics_job").execute_in_process(instance=instance)
        assert result.success
        logs = [r.user_message for r in instance.all_logs(result.run_id)]
    users, summary = dataset.expected_segments()
    assert {t: table_rows(loaded_url, t) for t in ("analytics_top_revenue_by_currency", "analytics_conversion_rates",
                                                   "analytics_user_segments", "analytics_segment_summary")} == {
        "analytics_top_revenue_by_currency": dataset.expected_top_revenue(),
        "analytics_conversion_rates": dataset.expected_conversion(),
        "analytics_user_segments": users, "analytics_segment_summary": summary}
    # Three applications (one per step), each opened Pipes and sent its own log lines back.
    assert sum("external process successfully opened dagster pipes" in m for m in logs) == 3
    for analysis in ("top_revenue_by_currency", "conversion_rates", "user_segments"):
        assert any(m.startswith(f"{analysis}: {{'analytics_") for m in logs), analysis  # rows written

    meta = {e.asset_key.path[1]: {k: v.value for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events()}
    top = dataset.expected_top_revenue()
    assert {k: v for k, v in meta["analytics_top_revenue_by_currency"].items() if k != "preview"} == {
        "dagster/row_count": 5, "currencies": 5, "orders": sum(n for _, _, n, _, _ in top),
        "revenue_usd": float(sum(usd for *_, usd in top if usd is not None))}
    preview = meta["analytics_top_revenue_by_currency"]["preview"]
    assert [(c.name, c.type) for c in preview.schema.columns] == [
        ("currency", "string"), ("total_revenue", "float"), ("total_orders", "int"), ("avg_order_value", "float"),
        ("total_revenue_usd", "float")]
    rated = sorted((r for r in top if r[4] is not None), key=lambda r: (-r[4], r[0]))
    assert [r.data for r in preview.records] == [
        {"currency": c, "total_revenue": float(t), "total_orders": n, "avg_order_value": float(a),
         "total_revenue_usd": None if u is None else float(u)}
        for c, t, n, a, u in rated + [r for r in top if r[4] is None]]

    per_user = {}
    for _, user, views, orders in dataset.FUNNEL:
        per_user[user] = [a + b for a, b in zip(per_user.get(user, [0, 0]), (views, orders), strict=True)]
    viewers = {u: vo for u, vo in per_user.items() if vo[0]}
    conversion = meta["analytics_conversion_rates"]
    assert (conversion["dagster/row_count"], conversion["users"], conversion["users_with_views"]) == (7, 7, 6)
    assert conversion["conversion_pct"] == round(sum(o for _, o in viewers.values()) * 100
                                                 / sum(v for v, _ in viewers.values()), 2) == 1.46
    assert [r.data["user_id"] for r in conversion["preview"].records] == ["u_f", "u_g", "u_d", "u_a", "u_e", "u_b",
                                                                          "u_c"]

    assert (meta["analytics_user_segments"]["dagster/row_count"], meta["analytics_user_segments"]["users"]) == (10, 10)
    segments = meta["analytics_segment_summary"]
    assert segments["dagster/row_count"] == 4
    for name, (count, revenue, _, _) in dataset.HAND_SUMMARY.items():
        assert (segments[f"{name.lower()}_users"], segments[f"{name.lower()}_revenue_usd"]) == (count, float(revenue))
    assert [r.data["segment"] for r in segments["preview"].records] == ["Premium", "VIP", "Regular", "New"]


def test_a_failing_application_fails_the_run_with_its_own_error(pg_url, tmp_path, monkeypatch):
    port = free_port()
    pipes_env(monkeypatch, tmp_path, f"postgresql://u:hunter2@127.0.0.1:{port}/db")
    key = dg.AssetKey(["postgres", "analytics_top_revenue_by_currency"])
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("global_analytics_job").execute_in_process(
            instance=instance, asset_selection=[key], raise_on_error=False)
        assert not result.success
        assert instance.get_latest_materialization_event(key) is None
    failure = result.get_step_failure_events()[0].step_failure_data
    description = failure.user_failure_data.description
    assert description.startswith(
        f"top_revenue_by_currency: cannot connect to PostgreSQL at postgresql://u:***@127.0.0.1:{port}/db")
    assert "\n" not in description and "hunter2" not in description
