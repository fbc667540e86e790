"""PostgreSQL connections with errors that name the server, never the password."""

from __future__ import annotations

import io
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from eventflow_assets.errors import EventFlowError, first_line
from eventflow_assets.settings import redact_url, validate_postgres_url


def _sql_dir() -> Path:
    """The SQL files: inside the package when installed from the wheel (which carries sql/ there),
    else the repository's top-level sql/ of a checkout."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "sql"
    return installed if installed.is_dir() else package.parent / "sql"


SQL_DIR = _sql_dir()


class PostgresUnreachable(EventFlowError):
    """The server did not accept a connection (down, restarting, network): possibly transient."""


def connect(url: str, *, autocommit: bool = False, connect_timeout: int = 10) -> psycopg.Connection:
    validate_postgres_url(url)
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=connect_timeout)
    except psycopg.OperationalError as exc:
        raise PostgresUnreachable(f"cannot connect to PostgreSQL at {redact_url(url)}: {first_line(exc)}") from None
    except psycopg.ProgrammingError as exc:
        raise EventFlowError(f"invalid PostgreSQL URL {redact_url(url)}: {exc}") from None


def row_counts(url: str, tables) -> dict[str, int]:
    """``count(*)`` of each of ``tables``, all in one snapshot (a statement may take up to 20 s)."""
    with connect(url, connect_timeout=5) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.execute("SET statement_timeout = '20s'")
        return {t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]
                for t in tables}


def read_sql(name: str) -> str:
    return (SQL_DIR / name).read_text()


def arrow_to_csv(table: pa.Table) -> bytes:
    """CSV for ``COPY ... (FORMAT csv)``: NULL as an unquoted empty field, strings quoted (so '' stays '')."""
    out = io.BytesIO()
    pacsv.write_csv(table, out, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return out.getvalue()
