"""Every table's columns as the migrations declare them, read from sql/migrations (their one home).

The migrations are replayed in order over a small model of the schema: ``CREATE TABLE``,
``ALTER TABLE`` (columns added, dropped, renamed, retyped, made (not) null; the primary key
dropped and added), ``DROP TABLE``. Other statements (indexes, inserts) leave columns alone; an
``ALTER TABLE`` action this model does not know is an error, so the result never silently drifts
from what PostgreSQL holds (a test compares it with ``information_schema`` after the migrations).
A column's description is the SQL comment on its line, else the comment lines just above it (for a
column added by ``ALTER TABLE``: above its group of statements).

Light on purpose (no Dagster, no database): the Dagster definitions derive their column schemas
from it when they load.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

from eventflow_assets.errors import EventFlowError
from eventflow_assets.storage.schema import MIGRATIONS_DIR, migrations

_TOKEN = re.compile(r"""(?P<comment>--[^\n]*)|(?P<string>'(?:[^']|'')*')|(?P<quoted>"(?:[^"]|"")*")
                        |(?P<space>\s+)|(?P<punct>[(),;])|(?P<word>[^\s(),;'"]+)""", re.X)
# PostgreSQL's own names for the aliases (format_type's spelling).
_ALIASES = {"timestamptz": "timestamp with time zone", "timestamp": "timestamp without time zone",
            "int": "integer", "int4": "integer", "int8": "bigint", "int2": "smallint", "bool": "boolean",
            "float8": "double precision", "float4": "real", "varchar": "character varying",
            "decimal": "numeric", "serial": "integer", "bigserial": "bigint"}
# Words that end a column's type and start its constraints.
_CONSTRAINTS = {"not", "null", "primary", "unique", "check", "default", "references", "constraint", "generated",
                "collate"}
_TABLE_CONSTRAINTS = {"primary", "constraint", "unique", "check", "foreign", "exclude"}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # as format_type() spells it: "numeric(12,2)", "timestamp with time zone"
    nullable: bool = True
    unique: bool = False
    other: tuple[str, ...] = ()  # CHECK and DEFAULT clauses, as written
    description: str | None = None


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    line: int
    spaced: bool  # after white space or a comment, as written

    @property
    def word(self) -> str:
        """The token as PostgreSQL reads a name or keyword: unquoted folded to lower case."""
        return self.text[1:-1].replace('""', '"') if self.kind == "quoted" else self.text.lower()


@dataclass
class _Source:
    """One migration file: its statements (tokens without comments) and its comment lines."""
    lines: list[str]
    statements: list[list[_Token]] = field(default_factory=list)
    trailing: dict[int, str] = field(default_factory=dict)  # line -> a comment after code on it

    def comment_above(self, line: int, across_statements: bool) -> str | None:
        """The ``--`` lines right above ``line`` (1-based); ``across_statements``: also above the
        statement lines between, up to a blank line."""
        found, n = [], line - 1
        while n >= 1 and self.lines[n - 1].strip():
            text = self.lines[n - 1].strip()
            if text.startswith("--"):
                found.insert(0, text[2:].strip())
            elif found or not across_statements:
                break
            n -= 1
        return " ".join(found) or None

    def comment_on(self, first: int, last: int) -> str | None:
        """A trailing ``--`` comment on lines first..last."""
        return next((self.trailing[n] for n in range(first, last + 1) if n in self.trailing), None)


def _tokenize(text: str) -> _Source:
    source, current, line, spaced = _Source(text.splitlines()), [], 1, False
    for match in _TOKEN.finditer(text):
        kind, value = match.lastgroup, match.group()
        if kind == "punct" and value == ";":
            if current:
                source.statements.append(current)
            current = []
        elif kind == "comment":
            if text[:match.start()].rpartition("\n")[2].strip():
                source.trailing[line] = value[2:].strip()
        elif kind != "space":
            current.append(_Token(kind, value, line, spaced))
        spaced = kind in ("space", "comment")
        line += value.count("\n")
    if current:
        source.statements.append(current)
    return source


def _split(tokens: list[_Token]) -> list[list[_Token]]:
    """``tokens`` split at the commas outside parentheses."""
    parts, depth, current = [], 0, []
    for t in tokens:
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
        if t.text == "," and depth == 0:
            parts.append(current)
            current = []
        else:
            current.append(t)
    return parts + [current] if current else parts


def _group(tokens: list[_Token], start: int) -> int:
    """The index just past the parenthesized group opening at ``start``."""
    depth = 0
    for i in range(start, len(tokens)):
        depth += {"(": 1, ")": -1}.get(tokens[i].text, 0)
        if depth == 0:
            return i + 1
    raise EventFlowError("unbalanced parentheses in a migration")


def _sql(tokens: list[_Token]) -> str:
    """The tokens as written, white space and comments between them made one space."""
    return "".join((" " if t.spaced and i else "") + t.text for i, t in enumerate(tokens))


def _type(tokens: list[_Token]) -> str:
    paren = next((i for i, t in enumerate(tokens) if t.text == "("), len(tokens))
    name = " ".join(t.word for t in tokens[:paren])
    return _ALIASES.get(name, name) + re.sub(r"\s", "", _sql(tokens[paren:]))


def _names(tokens: list[_Token]) -> tuple[str, ...]:
    return tuple(t.word for t in tokens if t.kind != "punct")


def _column(tokens: list[_Token], source: _Source, in_create: bool) -> tuple[Column, bool]:
    """A column definition; also whether it declares the primary key."""
    end = next((i for i, t in enumerate(tokens) if i > 0 and t.kind == "word" and t.word in _CONSTRAINTS),
               len(tokens))
    nullable, unique, primary, other, i = True, False, False, [], end
    while i < len(tokens):
        word = tokens[i].word
        if word == "not":
            nullable, i = False, i + 2
        elif word == "null":
            i += 1
        elif word == "primary":
            primary, nullable, unique, i = True, False, True, i + 2
        elif word == "unique":
            unique, i = True, i + 1
        elif word == "constraint":
            i += 2
        else:  # CHECK (...), DEFAULT expr, REFERENCES t (c), GENERATED ..., COLLATE x: kept as written
            j = i + 1
            while j < len(tokens) and not (tokens[j].kind == "word" and tokens[j].word in _CONSTRAINTS):
                j = _group(tokens, j) if tokens[j].text == "(" else j + 1
            other.append(_sql(tokens[i:j]))
            i = j
    first, last = tokens[0].line, tokens[-1].line
    description = source.comment_on(first, last) or source.comment_above(first, across_statements=not in_create)
    return Column(tokens[0].word, _type(tokens[1:end]), nullable, unique, tuple(other), description), primary


def _with_key(table: Table, key: tuple[str, ...]) -> Table:
    columns = tuple(replace(c, nullable=False) if c.name in key else c for c in table.columns)
    return replace(table, columns=columns, primary_key=key)


def _create(tokens: list[_Token], source: _Source) -> Table | None:
    i = [t.word for t in tokens].index("table") + 1
    if [t.word for t in tokens[i:i + 3]] == ["if", "not", "exists"]:
        i += 3
    name = tokens[i].word
    if i + 1 >= len(tokens) or tokens[i + 1].text != "(":
        return None  # CREATE TABLE ... PARTITION OF / AS: no columns of its own
    body = tokens[i + 2:_group(tokens, i + 1) - 1]
    table, key = Table(name, ()), ()
    for element in _split(body):
        head = element[0].word
        if element[0].kind == "word" and head in _TABLE_CONSTRAINTS:
            words = [t.word for t in element]
            if "primary" in words:
                start = words.index("primary") + 2
                key = _names(element[start:_group(element, start)])
            continue
        column, primary = _column(element, source, in_create=True)
        table = replace(table, columns=table.columns + (column,))
        if primary:
            key = (column.name,)
    return _with_key(table, key)


def _alter(table: Table, action: list[_Token], source: _Source) -> Table:
    words = [t.word for t in action]
    verb = words[0]
    if verb == "add":
        if "primary" in words[:4]:
            start = words.index("primary") + 2
            return _with_key(table, _names(action[start:_group(action, start)]))
        if words[1] == "constraint":
            return table  # CHECK, UNIQUE, FOREIGN KEY on the table: columns unchanged
        rest = action[2:] if words[1] == "column" else action[1:]
        if [t.word for t in rest[:3]] == ["if", "not", "exists"]:
            rest = rest[3:]
        column, primary = _column(rest, source, in_create=False)
        if any(c.name == column.name for c in table.columns):
            return table
        table = replace(table, columns=table.columns + (column,))
        return _with_key(table, (column.name,)) if primary else table
    if verb == "drop" and words[1] == "constraint":
        name = words[4] if words[2:4] == ["if", "exists"] else words[2]
        return replace(table, primary_key=()) if name == f"{table.name}_pkey" else table
    if verb == "drop":
        rest = words[2:] if words[1] == "column" else words[1:]
        name = rest[2] if rest[:2] == ["if", "exists"] else rest[0]
        return replace(table, columns=tuple(c for c in table.columns if c.name != name),
                       primary_key=() if name in table.primary_key else table.primary_key)
    if verb == "rename" and words[1] != "to":
        old, new = (words[2], words[4]) if words[1] == "column" else (words[1], words[3])
        return replace(table, columns=tuple(replace(c, name=new) if c.name == old else c for c in table.columns),
                       primary_key=tuple(new if k == old else k for k in table.primary_key))
    if verb == "alter":
        rest = action[2:] if words[1] == "column" else action[1:]
        name, what = rest[0].word, [t.word for t in rest[1:3]]
        if what == ["set", "not"] or what == ["drop", "not"]:
            return replace(table, columns=tuple(replace(c, nullable=what[0] == "drop") if c.name == name else c
                                                for c in table.columns))
        if what[:1] == ["type"] or what == ["set", "data"]:
            start = 2 if what[0] == "type" else 4
            end = next((i for i, t in enumerate(rest) if t.word in ("using", "collate")), len(rest))
            new_type = _type(rest[start:end])
            return replace(table, columns=tuple(replace(c, type=new_type) if c.name == name else c
                                                for c in table.columns))
        if what[:1] in (["set"], ["drop"]):  # defaults, statistics, storage: the columns' shape is unchanged
            return table
    raise EventFlowError(f"storage/columns.py does not know ALTER TABLE {table.name} {_sql(action)}")


def _replay(tables: dict[str, Table], tokens: list[_Token], source: _Source) -> None:
    words = [t.word for t in tokens]
    if words[0] == "create" and "table" in words[:4]:
        table = _create(tokens, source)
        if table is not None:
            tables[table.name] = table
    elif words[:2] == ["alter", "table"]:
        i = 2 + (words[2:4] == ["if", "exists"]) * 2
        i += words[i] == "only"
        name = tokens[i].word
        if words[i + 1:i + 3] == ["rename", "to"]:
            tables[words[i + 3]] = replace(tables.pop(name), name=words[i + 3])
            return
        if words[i + 1] in ("attach", "detach", "owner", "set", "enable", "disable"):
            return
        for action in _split(tokens[i + 1:]):
            tables[name] = _alter(tables[name], action, source)
    elif words[:2] == ["drop", "table"]:
        rest = words[4:] if words[2:4] == ["if", "exists"] else words[2:]
        for name in rest:
            if name not in ("cascade", "restrict", ","):
                tables.pop(name, None)


def declared_tables(directory: Path = MIGRATIONS_DIR) -> dict[str, Table]:
    """{table: its columns and primary key} after every migration in ``directory``, in creation order."""
    tables: dict[str, Table] = {}
    for migration in migrations(directory):
        source = _tokenize(migration.path.read_text())
        for statement in source.statements:
            _replay(tables, statement, source)
    return tables


@cache
def table_columns(table: str) -> Table:
    """``table`` as the project's migrations leave it (read once per process)."""
    return _declared()[table]


@cache
def _declared() -> dict[str, Table]:
    return declared_tables()
