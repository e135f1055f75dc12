"""``videogen build <function>``: one self-contained, deployable folder per function.

``build/<name>/`` gets the function's ``main.py``, a copy of the ``videogen`` package (the
function runtime: no dev tooling, no reference worker) and
a ``requirements.txt``: the runtime's dependencies (``[project].dependencies`` of the
project's pyproject.toml — not the ``local``, ``worker`` or ``dev`` extras) pinned to the
versions installed here. That is what Cloud Run functions / Cloud Functions (and
functions-framework anywhere) install and run, with target ``<name in snake_case>``.
"""

from __future__ import annotations

import re
import shutil
import tomllib
from importlib import metadata
from pathlib import Path

import videogen
from videogen_dev.devserver import FUNCTIONS

_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")


def runtime_dependencies(pyproject: Path | None = None) -> list[str]:
    """``[project].dependencies`` of the project's pyproject.toml: what a deployed function
    imports (read from the checkout, so a build follows the file, not an older install)."""
    from videogen_dev.migrations import project_root

    path = pyproject or project_root() / "pyproject.toml"
    project = tomllib.loads(path.read_text())["project"]
    return [str(req) for req in project.get("dependencies", [])]


def pinned_requirements(pyproject: Path | None = None) -> list[str]:
    """The runtime's dependencies pinned to the installed versions (extras kept)."""
    lines = []
    for req in runtime_dependencies(pyproject):
        match = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*(\[[^\]]+\])?", req)
        if match is None:
            raise ValueError(f"cannot read the requirement {req!r}")
        name, extras = match.group(1), (match.group(2) or "").replace(" ", "")
        lines.append(f"{name}{extras}=={metadata.version(name)}")
    return sorted(lines, key=str.lower)


def build(name: str, out_dir: Path | None = None) -> Path:
    """Write ``build/<name>`` (replacing an older build); returns its path."""
    from videogen_dev.migrations import project_root

    if name not in FUNCTIONS:
        raise ValueError(f"unknown function {name!r}; one of {', '.join(FUNCTIONS)}")
    root = project_root()
    target = (out_dir or root / "build") / name
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(root / "functions" / name / "main.py", target / "main.py")
    # The function runtime only: neither the dev tooling (this package) nor the worker.
    shutil.copytree(Path(videogen.__file__).resolve().parent, target / "videogen", ignore=_IGNORE)
    (target / "requirements.txt").write_text("\n".join(pinned_requirements()) + "\n")
    (target / ".gcloudignore").write_text("__pycache__/\n*.pyc\n")
    return target
