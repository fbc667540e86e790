"""Dagster's table assets link to the dashboard section that draws them, and those sections exist."""

from __future__ import annotations

import dagster as dg

from eventflow_assets.dashboard.app import build_layout
from eventflow_assets.definitions import defs
from eventflow_assets.orchestration.assets.tables import table_metadata

# Which section of the page shows which table (read off the page's layout by hand).
EXPECTED = {
    "orders_raw": "section-revenue", "revenue_by_currency_5min": "section-revenue",
    "analytics_top_revenue_by_currency": "section-revenue", "analytics_revenue_trends": "section-revenue",
    "conversion_funnel_5min": "section-conversion", "analytics_conversion_rates": "section-conversion",
    "analytics_user_segments": "section-segments", "analytics_segment_summary": "section-segments",
    "rejected_events": "section-stream-health",
}


def _ids(component) -> list[str]:
    found = [component.id] if getattr(component, "id", None) else []
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list) else [children] if children is not None else []:
        found += _ids(child)
    return found


def test_each_linked_section_exists_on_the_page_once():
    ids = _ids(build_layout("http://dagster.example", 5.0))
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert set(EXPECTED.values()) <= set(ids)


def test_table_metadata_links_to_the_section_at_the_configured_address(monkeypatch):
    monkeypatch.setenv("EVENTFLOW_DASHBOARD_URL", "http://dash.example:9000/")
    for table, section in EXPECTED.items():
        meta = table_metadata(table)
        assert meta["dagster/table_name"] == table
        assert meta["dashboard"] == dg.MetadataValue.url(f"http://dash.example:9000/#{section}"), table
    assert "dashboard" not in table_metadata("currency_rates")  # no section draws it


def test_the_definitions_carry_the_links():
    specs = {key.to_user_string(): spec for key, spec in
             ((s.key, s) for a in defs.assets if isinstance(a, dg.AssetsDefinition) for s in a.specs)}
    specs.update({s.key.to_user_string(): s for s in defs.assets if isinstance(s, dg.AssetSpec)})
    for table, section in EXPECTED.items():
        link = specs[f"postgres/{table}"].metadata["dashboard"]
        assert link.url.endswith(f"/#{section}"), table
