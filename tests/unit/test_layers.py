"""The shape of the code, kept: the walk from a function to the SQL goes down and never
climbs back (import-linter's contracts in pyproject.toml), each procedure is spelled once in
Python, and the functions send no SQL."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_each_procedure_is_spelled_once_in_python():
    sql = "".join(p.read_text() for p in (ROOT / "sql" / "schema").glob("*.sql"))
    names = set(re.findall(r"create function (?:public|service)\.([a-z_]+)\(", sql))
    sources = [*(ROOT / "shared").rglob("*.py"), *(ROOT / "functions").rglob("*.py")]
    spelled: dict[str, list[str]] = {}
    for path in sources:
        text = path.read_text()
        for name in names:
            if re.search(
                rf"""["'](?:service\.)?{name}["']\s*,|\.\w+\(\s*["'](?:service\.)?{name}["']""",
                text,
            ):
                spelled.setdefault(name, []).append(str(path.relative_to(ROOT)))
    db_face = "shared/videogen/db/"
    assert {n: f for n, f in spelled.items() if len(f) != 1 or not f[0].startswith(db_face)} == {}
    assert len(spelled) >= 25  # the rest run only from SQL (pg_cron) or inside procedures


def test_the_import_contracts_hold():
    """pyproject.toml's import-linter contracts: rooms by layer, no cycles, the runtime and
    the worker apart from the tooling (in-function imports count too)."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    run = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT / "shared")},
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout and "BROKEN" not in run.stdout
    assert run.stdout.count(" KEPT") >= 4


def test_functions_send_no_sql():
    for path in (ROOT / "functions").glob("*/main.py"):
        imported = _imports(path)
        assert not {i for i in imported if i.startswith(("psycopg", "videogen.db.connection"))}, (
            path
        )
        text = path.read_text()
        assert ".rpc(" not in text and "admin_call(" not in text, path


def test_every_import_inside_a_function_says_why():
    """The runtime imports at module level; an import inside a function is there for cold
    start (or another reason) and says so on its line or the line above."""
    silent = []
    for path in (ROOT / "shared" / "videogen").rglob("*.py"):
        lines = path.read_text().splitlines()
        for fn in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    line, above = lines[node.lineno - 1], lines[node.lineno - 2].strip()
                    if "#" not in line and not above.startswith("#"):
                        silent.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert silent == []
