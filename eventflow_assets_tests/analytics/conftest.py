"""A database holding the hand-built dataset, and a reader for the analytics tables."""

from __future__ import annotations

import psycopg
import pytest

from eventflow_assets.storage.schema import apply_schema
from eventflow_assets_tests.analytics import dataset


@pytest.fixture
def loaded_url(pg_url) -> str:
    apply_schema(pg_url)
    dataset.load(pg_url)
    return pg_url


def table_rows(url: str, table: str) -> set:
    """Every row of an analytics table as a tuple, without computed_at."""
    with psycopg.connect(url) as conn:
        cur = conn.execute(f"SELECT * FROM {table}")
        keep = [i for i, col in enumerate(cur.description) if col.name != "computed_at"]
        return {tuple(row[i] for i in keep) for row in cur.fetchall()}
