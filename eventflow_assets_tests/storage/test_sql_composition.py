"""No SQL statement in the code is assembled by string formatting: identifiers go through
psycopg.sql.Identifier and values through parameters, so a name that comes from a setting or a
file can never change a statement. Scans the source (f-strings, %-formatting, .format, +)."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SQL_START = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|COPY|TRUNCATE|LOCK|WITH|GRANT|SET|"
                       r"VACUUM|ANALYZE)\b", re.IGNORECASE)


def _leading_text(node: ast.AST) -> str | None:
    """The literal text a formatted string starts with, for the forms that format at run time."""
    if isinstance(node, ast.JoinedStr) and any(isinstance(v, ast.FormattedValue) for v in node.values):
        first = node.values[0]
        return first.value if isinstance(first, ast.Constant) else ""
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)):
        if isinstance(node.left, ast.Constant) and isinstance(node.left.value, str):
            return node.left.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format" \
            and isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str):
        return node.func.value.value
    return None


def formatted_sql(paths) -> list[str]:
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            text = _leading_text(node)
            if text is not None and SQL_START.match(text):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_sql_is_built_by_string_formatting():
    sources = sorted([*(ROOT / "eventflow_assets").rglob("*.py"), *(ROOT / "jobs").rglob("*.py")])
    assert len(sources) > 40
    assert formatted_sql(sources) == []


def test_the_scan_finds_each_form(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('t = "x"\n'
                      'a = f"SELECT count(*) FROM {t}"\n'
                      'b = "DELETE FROM %s" % t\n'
                      'c = "CREATE TABLE " + t\n'
                      'd = "  insert into {} values (1)".format(t)\n'
                      'e = f"checks/{t}.sql"\n'            # a path, not SQL
                      'f = "SELECT 1 WHERE x = %s"\n'       # a parameter placeholder, not formatting
                      'g = f"SELECT 1"\n')                  # nothing interpolated
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert formatted_sql([sample]) == ["sample.py:2", "sample.py:3", "sample.py:4", "sample.py:5"]
    finally:
        ROOT = saved
