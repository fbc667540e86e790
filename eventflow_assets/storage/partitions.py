"""``orders_raw``'s day partitions: made ahead, and archived once older than the retention.

``orders_raw`` is partitioned by the UTC day of ``"timestamp"`` (sql/migrations/0007), one table
``orders_raw_pYYYYMMDD`` per day, made by the database function ``orders_raw_day_partition`` (its
one home: the schema's appliers, this module and the orders sink call it). A day's archive is:

1. claim the day in ``orders_raw_archive`` (committed first: from then on the sink adds no row of
   that day and makes no partition for it), with the file it goes to;
2. ``DETACH PARTITION ... CONCURRENTLY`` (readers and the sink go on; a detach left pending by a
   crash is finished with ``FINALIZE``);
3. export the detached table to ``<day>.csv.gz`` (CSV with a header, timestamps in UTC, ordered by
   time): written under ``.partial`` and renamed once complete and synced, so a file with the
   final name is always whole;
4. drop the table, and record the rows and the time in ``orders_raw_archive``.

Every step can be repeated, and a run first finishes what an earlier one left (any claimed day
not yet archived, any ``orders_raw_p*`` table found detached), so a crash at any point loses
nothing: the next run completes the day.
"""

from __future__ import annotations

import csv
import gzip
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

from eventflow_assets.errors import EventFlowError
from eventflow_assets.storage.postgres import connect
from eventflow_assets.storage.tables import ORDERS_ARCHIVE, ORDERS_RAW

# Partitions exist from yesterday to this many days ahead, made at every schema apply and every
# daily archive run; the sink makes any other day itself.
DAYS_AHEAD = 3
_PARTITION = re.compile(rf"^{ORDERS_RAW}_p(\d{{8}})$")
# Held for a whole archive run (session advisory lock): runs never overlap.
_ARCHIVE_LOCK = (7010, 2)


def partition_name(day: date) -> str:
    return f"{ORDERS_RAW}_p{day:%Y%m%d}"


def partition_day(name: str) -> date | None:
    match = _PARTITION.match(name)
    return datetime.strptime(match.group(1), "%Y%m%d").date() if match else None


def make_days(conn: psycopg.Connection, first: date, last: date) -> list[date]:
    """Make the partitions of ``first``..``last`` that are missing; the days made."""
    made = []
    for n in range((last - first).days + 1):
        day = first + timedelta(days=n)
        if conn.execute("SELECT orders_raw_day_partition(%s)", (day,)).fetchone()[0]:
            made.append(day)
    return made


def make_days_ahead(conn: psycopg.Connection, today: date | None = None) -> list[date]:
    """Yesterday to :data:`DAYS_AHEAD` days ahead (UTC); nothing before migration 0007."""
    if not conn.execute("SELECT to_regprocedure('orders_raw_day_partition(date)') IS NOT NULL").fetchone()[0]:
        return []
    today = today or _utc_today(conn)
    return make_days(conn, today - timedelta(days=1), today + timedelta(days=DAYS_AHEAD))


def day_partitions(conn: psycopg.Connection) -> dict[date, str]:
    """{day: 'attached' | 'detaching' | 'detached'} of every ``orders_raw_p*`` table."""
    rows = conn.execute(
        "SELECT c.relname, i.inhdetachpending FROM pg_class c "
        "LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = %s::regclass "
        "WHERE c.relkind = 'r' AND c.relnamespace = to_regnamespace(current_schema()) AND c.relname LIKE %s",
        (ORDERS_RAW, f"{ORDERS_RAW}_p%")).fetchall()
    states = {None: "detached", False: "attached", True: "detaching"}
    return {day: states[pending] for name, pending in rows if (day := partition_day(name))}


@dataclass(frozen=True)
class ArchivedDay:
    day: date
    rows: int
    file: str


@dataclass(frozen=True)
class ArchiveRun:
    made: list[date]              # partitions made by this run (the schema's apply may have made them first)
    ready_through: date           # partitions exist from yesterday through this day
    archived: list[ArchivedDay]   # days archived by this run (including ones an earlier run had begun)
    horizon: date | None          # days before it are archived; None: every day is kept


def archive(url: str, keep_days: int | None, directory: Path, today: date | None = None) -> ArchiveRun:
    """Make the coming days, archive the days before ``today - keep_days`` into ``directory``, and
    finish any day an earlier run began. ``keep_days`` None keeps every day."""
    with connect(url, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        if not conn.execute("SELECT pg_try_advisory_lock(%s, %s)", _ARCHIVE_LOCK).fetchone()[0]:
            raise EventFlowError("another archive run of orders_raw is under way on this database; try again "
                                 "when it has finished")
        try:
            today = today or _utc_today(conn)
            made = make_days_ahead(conn, today)
            horizon = None if keep_days is None else today - timedelta(days=keep_days)
            _claim(conn, horizon, directory)
            pending = conn.execute(sql.SQL("SELECT day, file FROM {} WHERE archived_at IS NULL ORDER BY day").format(
                sql.Identifier(ORDERS_ARCHIVE))).fetchall()
            return ArchiveRun(made, today + timedelta(days=DAYS_AHEAD),
                              [_archive_day(conn, day, Path(file)) for day, file in pending], horizon)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", _ARCHIVE_LOCK)


def _claim(conn: psycopg.Connection, horizon: date | None, directory: Path) -> None:
    """Record in the archive table the attached days before ``horizon`` and any table found detached."""
    claimed = {day for (day,) in conn.execute(sql.SQL("SELECT day FROM {}").format(sql.Identifier(ORDERS_ARCHIVE)))}
    for day, state in sorted(day_partitions(conn).items()):
        due = state != "attached" or (horizon is not None and day < horizon)
        if due and day not in claimed:
            conn.execute(sql.SQL("INSERT INTO {} (day, file) VALUES (%s, %s)").format(sql.Identifier(ORDERS_ARCHIVE)),
                         (day, str(_free_file(directory, day))))


def _free_file(directory: Path, day: date) -> Path:
    """``<day>.csv.gz``, or ``<day>.<n>.csv.gz`` when a file of an earlier archive of the day (before
    an ``eventflow reset``) has that name: an archive never overwrites another."""
    path, n = directory / f"{day.isoformat()}.csv.gz", 0
    while path.exists() or path.with_name(path.name + ".partial").exists():
        n += 1
        path = directory / f"{day.isoformat()}.{n}.csv.gz"
    return path


def _archive_day(conn: psycopg.Connection, day: date, file: Path) -> ArchivedDay:
    table = sql.Identifier(partition_name(day))
    state = day_partitions(conn).get(day)
    if state == "attached":
        conn.execute(sql.SQL("ALTER TABLE {} DETACH PARTITION {} CONCURRENTLY").format(
            sql.Identifier(ORDERS_RAW), table))
    elif state == "detaching":
        conn.execute(sql.SQL("ALTER TABLE {} DETACH PARTITION {} FINALIZE").format(sql.Identifier(ORDERS_RAW), table))
    if state is not None:
        rows = _export(conn, table, file)
        conn.execute(sql.SQL("DROP TABLE {}").format(table))
    elif file.exists():  # dropped by a run that stopped before recording it: the file is whole
        rows = _count_rows(file)
    else:
        raise EventFlowError(f"day {day} of {ORDERS_RAW} is being archived but neither its table "
                             f"{partition_name(day)} nor its file {file} exists")
    conn.execute(sql.SQL("UPDATE {} SET row_count = %s, archived_at = now() WHERE day = %s").format(
        sql.Identifier(ORDERS_ARCHIVE)), (rows, day))
    return ArchivedDay(day, rows, str(file))


def _export(conn: psycopg.Connection, table: sql.Identifier, file: Path) -> int:
    """COPY the detached table into ``file`` (gzip CSV, header), whole or not at all; its row count."""
    file.parent.mkdir(parents=True, exist_ok=True)
    partial = file.with_name(file.name + ".partial")
    query = sql.SQL('COPY (SELECT * FROM {} ORDER BY "timestamp", order_id) TO STDOUT WITH (FORMAT csv, HEADER)')
    with open(partial, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out, conn.cursor().copy(query.format(table)) as copy:
            for chunk in copy:
                out.write(chunk)
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(partial, file)
    directory = os.open(file.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()[0]


def _count_rows(file: Path) -> int:
    with gzip.open(file, "rt", newline="") as f:
        return sum(1 for _ in csv.reader(f)) - 1


def _utc_today(conn: psycopg.Connection) -> date:
    return conn.execute("SELECT (now() AT TIME ZONE 'UTC')::date").fetchone()[0]
