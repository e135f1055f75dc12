"""Cold start: loading a function builds no pydantic schema but its settings'; every model
and TypeAdapter is built on first use (``defer_build``). bench/cold_start.py measures it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/main.py"))

PROBE = """
import gc, json, sys
from functions_framework import _function_registry as registry
module, spec = registry.load_function_module(sys.argv[1])
spec.loader.exec_module(module)
from pydantic import BaseModel, TypeAdapter
seen, todo, built = set(), [BaseModel], []
while todo:
    cls = todo.pop()
    if cls in seen:
        continue
    seen.add(cls)
    todo.extend(cls.__subclasses__())
    generic = cls.__dict__.get("__pydantic_generic_metadata__", {}).get("parameters")
    if cls.__module__.startswith("videogen") and cls.__dict__.get("__pydantic_complete__"):
        if not generic and cls.__qualname__ != "Settings":
            built.append(f"{cls.__module__}.{cls.__qualname__}")
gc.unfreeze()  # get_objects() leaves out what the runtime froze
for adapter in gc.get_objects():
    if isinstance(adapter, TypeAdapter):
        if type(adapter.__dict__.get("validator")).__name__ != "MockValSer":
            built.append(f"TypeAdapter({adapter._type!r})")
print(json.dumps(built))
"""


@pytest.mark.parametrize("name", FUNCTIONS)
def test_loading_a_function_builds_no_schema(name: str) -> None:
    path = os.pathsep.join(filter(None, [str(ROOT / "shared"), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / "functions" / name / "main.py")],
        env={**os.environ, "PYTHONPATH": path},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout) == []
