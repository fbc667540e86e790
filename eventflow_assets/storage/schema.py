"""Versioned, idempotent schema: numbered files in sql/migrations, recorded in schema_migrations.

Each pending migration runs in one transaction with its record; an advisory lock makes
concurrent appliers (the CLI, the streaming job, Dagster) wait for each other. A migration
file edited after it was applied is an error, not a silent divergence. Each apply also makes the
coming days' partitions of ``orders_raw`` (``storage/partitions.py``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from eventflow_assets.errors import EventFlowError
from eventflow_assets.storage.partitions import make_days_ahead
from eventflow_assets.storage.postgres import SQL_DIR, connect

MIGRATIONS_DIR = SQL_DIR / "migrations"
_LOCK_KEY = 0x6576656E74666C6F  # "eventflo"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise EventFlowError(f"migration file name {path.name!r} is not NNNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise EventFlowError(f"duplicate migration versions in {directory}")
    return found


def apply_schema(url: str, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply pending migrations and make ``orders_raw``'s coming days; returns the versions applied
    now (empty when up to date)."""
    applied_now = []
    with connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
                                version integer PRIMARY KEY, name text NOT NULL,
                                checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())""")
            done = {v: c for v, c in conn.execute("SELECT version, checksum FROM schema_migrations")}
            for m in migrations(directory):
                if m.version in done:
                    if done[m.version] != m.checksum:
                        raise EventFlowError(
                            f"migration {m.path.name} changed after it was applied; "
                            "add a new migration instead of editing an applied one")
                    continue
                with conn.transaction():
                    conn.execute(m.path.read_text())
                    conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                                 (m.version, m.name, m.checksum))
                applied_now.append(m.version)
            make_days_ahead(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


def schema_version(url: str) -> int | None:
    with connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()[0]
        if not exists:
            return None
        return conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
