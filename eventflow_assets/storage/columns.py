"""Every table's columns as the migrations declare them, read from sql/migrations (their one home).

sqlglot parses the migrations; this module replays the parsed ``CREATE TABLE``, ``ALTER TABLE``
and ``DROP TABLE`` statements in order over a small model of the schema and spells types as
PostgreSQL's format_type() does. An ``ALTER TABLE`` action it does not know is an error, so the
result never silently drifts from what PostgreSQL holds. A column's description is its SQL
comment (for a column added by ``ALTER TABLE``: the comment above its group of statements, read
from the file's lines since sqlglot does not keep blank lines).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import sqlglot
from sqlglot import exp

from eventflow_assets.errors import EventFlowError
from eventflow_assets.storage.schema import MIGRATIONS_DIR, migrations

# PostgreSQL's own names for the aliases (format_type's spelling).
_ALIASES = {"timestamptz": "timestamp with time zone", "timestamp": "timestamp without time zone",
            "int": "integer", "bool": "boolean", "varchar": "character varying", "decimal": "numeric",
            "serial": "integer", "bigserial": "bigint"}
# ALTER TABLE forms sqlglot leaves unparsed (a Command) that change no column.
_NO_COLUMN_CHANGE = re.compile(r"TABLE\s+(IF\s+EXISTS\s+)?(ONLY\s+)?\S+\s+(OWNER|ENABLE|DISABLE|SET|ATTACH|DETACH"
                               r"|ALTER\s+(COLUMN\s+)?\S+\s+SET\s+(STATISTICS|STORAGE|COMPRESSION))\b", re.I)


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # as format_type() spells it: "numeric(12,2)", "timestamp with time zone"
    nullable: bool = True
    unique: bool = False
    other: tuple[str, ...] = ()  # CHECK and DEFAULT clauses, in sqlglot's PostgreSQL spelling
    description: str | None = None


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def changed(self, column: str, **change) -> Table:
        return replace(self, columns=tuple(replace(c, **change) if c.name == column else c for c in self.columns))

    def keyed(self, key: tuple[str, ...]) -> Table:
        columns = tuple(replace(c, nullable=False) if c.name in key else c for c in self.columns)
        return replace(self, columns=columns, primary_key=key)


def _name(node: exp.Expression) -> str:
    """A name as PostgreSQL reads it: unquoted folded to lower case."""
    ident = node if isinstance(node, exp.Identifier) else node.find(exp.Identifier)
    return ident.this if ident.quoted else ident.this.lower()


def _type(dtype: exp.DataType) -> str:
    name, _, params = dtype.sql("postgres").lower().partition("(")
    return _ALIASES.get(name, name) + ("(" + params.replace(" ", "") if params else "")


def _comment_above(lines: list[str], line: int) -> str | None:
    """The ``--`` lines above ``line`` (1-based) and the statement lines between, up to a blank line."""
    found = []
    for text in (t.strip() for t in reversed(lines[:line - 1])):
        if not text or (found and not text.startswith("--")):
            break
        if text.startswith("--"):
            found.insert(0, text[2:].strip())
    return " ".join(found) or None


def _column(node: exp.ColumnDef, lines: list[str] | None) -> tuple[Column, bool]:
    """A column definition (``lines``: the file's, for a column added by ALTER TABLE); also whether
    it declares the primary key."""
    kinds = [c.kind for c in node.constraints]
    primary = any(isinstance(k, exp.PrimaryKeyColumnConstraint) for k in kinds)
    other = tuple(k.sql("postgres", normalize_functions=False, comments=False) for k in kinds
                  if isinstance(k, (exp.CheckColumnConstraint, exp.DefaultColumnConstraint)))
    trailing = [c for n in node.walk() if n is not node.this for c in n.comments or ()]
    above = node.this.comments or ()
    description = " ".join(c.strip() for c in trailing or above) or None
    if lines is not None and description is None:
        description = _comment_above(lines, node.this.meta["line"])
    return Column(_name(node.this), _type(node.kind),
                  nullable=not primary and not any(isinstance(k, exp.NotNullColumnConstraint) for k in kinds),
                  unique=primary or any(isinstance(k, exp.UniqueColumnConstraint) for k in kinds),
                  other=other, description=description), primary


def _create(statement: exp.Create) -> Table:
    table, key = Table(_name(statement.this.this), ()), ()
    for element in statement.this.expressions:
        if isinstance(element, exp.ColumnDef):
            column, primary = _column(element, None)
            table = replace(table, columns=table.columns + (column,))
            key = (column.name,) if primary else key
        elif pk := element.find(exp.PrimaryKey):
            key = tuple(_name(e) for e in pk.expressions)
    return table.keyed(key)


def _alter(table: Table, action: exp.Expression, lines: list[str]) -> Table:
    if isinstance(action, exp.ColumnDef):  # ADD COLUMN [IF NOT EXISTS]
        column, primary = _column(action, lines)
        if any(c.name == column.name for c in table.columns):
            return table
        table = replace(table, columns=table.columns + (column,))
        return table.keyed((column.name,)) if primary else table
    if isinstance(action, exp.AlterSet):  # SET LOGGED, SET (storage parameters), SET TABLESPACE ...
        return table
    if isinstance(action, exp.AddConstraint):
        pk = action.find(exp.PrimaryKey)
        return table.keyed(tuple(_name(e) for e in pk.expressions)) if pk else table
    if isinstance(action, exp.Drop) and action.args.get("kind") == "CONSTRAINT":
        names = {_name(t) for t in action.args["tables"]}
        return replace(table, primary_key=()) if f"{table.name}_pkey" in names else table
    if isinstance(action, exp.Drop) and action.args.get("kind") == "COLUMN":
        for name in (_name(t) for t in action.args["tables"]):
            table = replace(table, columns=tuple(c for c in table.columns if c.name != name),
                            primary_key=() if name in table.primary_key else table.primary_key)
        return table
    if isinstance(action, exp.RenameColumn):
        old, new = _name(action.this), _name(action.args["to"])
        return replace(table.changed(old, name=new),
                       primary_key=tuple(new if k == old else k for k in table.primary_key))
    if isinstance(action, exp.AlterColumn):
        name, args = _name(action.this), action.args
        if args.get("dtype"):
            return table.changed(name, type=_type(args["dtype"]))
        if args.get("allow_null") is not None:
            return table.changed(name, nullable=bool(args["allow_null"]))
        if args.get("default") or args.get("drop"):  # SET / DROP DEFAULT: the column's shape is unchanged
            return table
    raise EventFlowError(f"storage/columns.py does not know ALTER TABLE {table.name} {action.sql('postgres')}")


def _replay(tables: dict[str, Table], statement: exp.Expression, lines: list[str]) -> None:
    if isinstance(statement, exp.Create) and statement.kind == "TABLE" and isinstance(statement.this, exp.Schema):
        table = _create(statement)  # (CREATE TABLE ... AS / PARTITION OF: no columns of its own)
        tables[table.name] = table
    elif isinstance(statement, exp.Alter) and statement.kind == "TABLE":
        name = _name(statement.this)
        for action in statement.args["actions"]:
            if isinstance(action, exp.AlterRename):
                tables[_name(action.this)] = replace(tables.pop(name), name=_name(action.this))
            else:
                tables[name] = _alter(tables[name], action, lines)
    elif isinstance(statement, exp.Drop) and statement.kind == "TABLE":
        for table in statement.args["tables"]:
            tables.pop(_name(table), None)
    elif isinstance(statement, exp.Command) and statement.this.upper() == "ALTER":
        text = str(statement.expression).strip()
        if text.upper().startswith("TABLE") and not _NO_COLUMN_CHANGE.match(text):
            raise EventFlowError(f"storage/columns.py does not know ALTER {text}")


def declared_tables(directory: Path = MIGRATIONS_DIR) -> dict[str, Table]:
    """{table: its columns and primary key} after every migration in ``directory``, in creation order."""
    tables: dict[str, Table] = {}
    for migration in migrations(directory):
        text = migration.path.read_text()
        for statement in sqlglot.parse(text, read="postgres"):
            if statement is not None:
                _replay(tables, statement, text.splitlines())
    return tables


@cache
def table_columns(table: str) -> Table:
    """``table`` as the project's migrations leave it (read once per process)."""
    return _declared()[table]


@cache
def _declared() -> dict[str, Table]:
    return declared_tables()
