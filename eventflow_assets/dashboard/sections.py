"""The dashboard's sections and the tables each one shows: the page's anchors, and the links from
Dagster's assets to them. Light on purpose (no Dash): the Dagster definitions import it."""

from __future__ import annotations

import os
from collections.abc import Mapping

from eventflow_assets.storage.tables import (
    CONVERSION_TABLE,
    FUNNEL,
    ORDERS_RAW,
    REJECTED,
    REVENUE,
    SEGMENTS_TABLE,
    SUMMARY_TABLE,
    TOP_REVENUE_TABLE,
    TRENDS_TABLES,
)

DASHBOARD_URL_VAR = "EVENTFLOW_DASHBOARD_URL"
DEFAULT_DASHBOARD_URL = "http://127.0.0.1:8501"

# section title -> the tables it draws (anchor: "section-" and the title in lower case, dashes for spaces)
SECTIONS = {
    "Revenue": (REVENUE, ORDERS_RAW, TOP_REVENUE_TABLE, *TRENDS_TABLES.values()),
    "Conversion": (FUNNEL, CONVERSION_TABLE),
    "Segments": (SEGMENTS_TABLE, SUMMARY_TABLE),
    "Stream health": (REJECTED,),
}


def anchor(title: str) -> str:
    return "section-" + title.lower().replace(" ", "-")


def dashboard_url(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return (env.get(DASHBOARD_URL_VAR) or DEFAULT_DASHBOARD_URL).rstrip("/")


def table_link(table: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The dashboard section that shows ``table``, as a URL; None for a table it does not show."""
    for title, tables in SECTIONS.items():
        if table in tables:
            return f"{dashboard_url(environ)}/#{anchor(title)}"
    return None
