"""Empty EventFlow's tables for `eventflow reset` (reference data such as currency rates and the
schema itself stay)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from psycopg import sql

from eventflow_assets.errors import EventFlowError
from eventflow_assets.storage.postgres import connect
from eventflow_assets.storage.tables import (
    ANALYTICS_TABLES,
    ORDERS_ARCHIVE,
    SINK_TABLES,
    STREAM_LEDGER,
    STREAM_PROGRESS,
)

# The archive's record goes too: the stream starting over adds again the orders of days archived
# before (their files stay; a later archive of such a day writes a file of its own).
RESET_TABLES = SINK_TABLES + STREAM_LEDGER + ANALYTICS_TABLES + (ORDERS_ARCHIVE,)


def local_checkpoints(location: str) -> Path:
    """The directory of a checkpoint location on this machine: a path, or a ``file:`` URI.

    Any other location (``hdfs://``, ``s3a://``...) is an EventFlowError: reset cannot delete
    on that file system.
    """
    parts = urlsplit(location)
    if not parts.scheme:
        return Path(location)
    if parts.scheme == "file" and parts.netloc in ("", "localhost"):
        return Path(url2pathname(parts.path))
    raise EventFlowError(f"the checkpoints are at {location}, which reset can only delete on this machine's "
                         "file system: delete that location with your storage's tools, or point "
                         "EVENTFLOW_CHECKPOINT_LOCATION at a new one, then run reset again")


def last_progress_age(url: str) -> timedelta | None:
    """How long ago any streaming query last recorded progress (a running stream records one
    at least every 10 s, idle or not); None if none ever did."""
    with connect(url) as conn:
        return conn.execute(sql.SQL("SELECT now() - max(recorded_at) FROM {}").format(
            sql.Identifier(STREAM_PROGRESS))).fetchone()[0]


def empty_tables(url: str) -> None:
    """TRUNCATE them all in one transaction: all emptied, or none."""
    with connect(url) as conn:
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, RESET_TABLES))))
