"""A built function folder is deployable on its own: installed into a fresh virtualenv
from its requirements.txt and served by functions-framework, it answers over HTTP."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
import venv
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import pytest
from packaging.requirements import Requirement
from serverkit import free_port, server_env, wait_http
from videogen_dev.build import build, pinned_requirements
from videogen_dev.devserver import FUNCTIONS
from videogen_dev.migrations import project_root

# What only the local stack, the worker or the tests need: never in a deployed function.
NOT_RUNTIME = {
    "rich",
    "wsproto",
    "pyyaml",
    "supabase",
    "supabase-auth",
    "supabase-functions",
    "realtime",
    "gunicorn",
    "pytest",
    "ruff",
    "mypy",
    "schemathesis",
    "moviepy",
}


def test_requirements_are_pinned_runtime_dependencies():
    reqs = pinned_requirements()
    names = {r.split("==")[0].split("[")[0].lower() for r in reqs}
    assert {"functions-framework", "psycopg", "pydantic", "pyjwt"} <= names
    assert all("==" in r for r in reqs)
    assert "pytest" not in names  # dev extras stay out


def _name(requirement: str) -> str:
    """A requirement's distribution name, normalized (PEP 503)."""
    return re.sub(r"[-_.]+", "-", Requirement(requirement).name).lower()


def _project() -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((project_root() / "pyproject.toml").read_text())[
        "project"
    ]
    return project


def _installed_closure(requirements: list[str]) -> set[str]:
    """The distributions these requirements install (with their extras), as installed here."""
    seen: set[str] = set()
    pending = [Requirement(r) for r in requirements]
    while pending:
        req = pending.pop()
        name = _name(str(req))
        extras = set(req.extras)
        key = f"{name}[{','.join(sorted(extras))}]"
        if key in seen:
            continue
        seen.add(key)
        for raw in metadata.requires(req.name) or []:
            sub = Requirement(raw)
            envs = [{"extra": e} for e in extras] or [{"extra": ""}]
            if sub.marker is None or any(sub.marker.evaluate(env) for env in envs):
                pending.append(sub)
    return {key.split("[")[0] for key in seen}


def _imports(folder: Path) -> set[str]:
    """The top-level modules every ``.py`` file in ``folder`` imports, at any depth."""
    found: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def test_the_runtime_dependencies_are_the_deployed_code_s_only():
    """pyproject.toml's ``dependencies`` are the runtime's: the local stack's, the worker's
    and the tests' packages are extras (``local``, ``worker``, ``dev``, which holds both)."""
    project = _project()
    runtime = {_name(r) for r in project["dependencies"]}
    assert not runtime & NOT_RUNTIME
    extras = project["optional-dependencies"]
    assert {"local", "worker", "dev"} <= set(extras)
    local = {_name(r) for r in extras["local"]}
    assert {"rich", "wsproto", "pyyaml", "supabase", "gunicorn"} <= local
    assert Requirement(extras["dev"][0]).extras == {"local", "worker"}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_a_built_function_holds_the_runtime_and_declares_its_dependencies_only(
    tmp_path: Path, name: str
):
    """What ``make build`` ships: the function, the ``videogen`` package alone (no dev
    tooling, no worker, as packages or modules) and a requirements.txt of exactly the
    runtime's dependencies, pinned — enough for every import the shipped code makes."""
    folder = build(name, tmp_path / "build")
    assert {p.name for p in folder.iterdir()} == {
        "main.py",
        "videogen",
        "requirements.txt",
        ".gcloudignore",
    }
    packages = {p.parent.relative_to(folder).as_posix() for p in folder.rglob("__init__.py")}
    assert {p.split("/")[0] for p in packages} == {"videogen"}
    assert not list(folder.rglob("__pycache__"))
    shipped = {p.stem for p in (folder / "videogen").rglob("*.py")}
    dev_modules = {p.stem for p in (project_root() / "shared" / "videogen_dev").glob("*.py")}
    worker_modules = {p.stem for p in (project_root() / "shared" / "videogen_worker").glob("*.py")}
    assert not shipped & ((dev_modules | worker_modules) - {"__init__", "__main__"})

    declared = (folder / "requirements.txt").read_text().split()
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+(\[[a-z,]+\])?==[^=\s]+", r) for r in declared)
    runtime = [str(r) for r in _project()["dependencies"]]
    assert {_name(r) for r in declared} == {_name(r) for r in runtime}
    assert not {_name(r) for r in declared} & NOT_RUNTIME

    # Every third-party module the shipped code imports comes with what it declares.
    imported = _imports(folder) - set(sys.stdlib_module_names) - {"__future__", "videogen"}
    assert "videogen_dev" not in imported and "videogen_worker" not in imported
    providers = metadata.packages_distributions()
    installed = _installed_closure(declared)
    missing = {
        module: providers.get(module)
        for module in imported
        if not {_name(d) for d in providers.get(module, [])} & installed
    }
    assert missing == {}


def test_built_function_runs_alone_in_a_fresh_venv(tmp_path: Path, db_url: str):
    folder = build("generate-video", tmp_path / "build")
    assert (folder / "main.py").is_file()
    assert (folder / "videogen" / "kit" / "endpoint.py").is_file()
    assert not list(folder.rglob("__pycache__"))
    # The function runtime and nothing else: no dev tooling, no reference worker.
    shipped = {p.name for p in folder.iterdir()}
    assert shipped == {"main.py", "videogen", "requirements.txt", ".gcloudignore"}
    modules = {p.stem for p in (folder / "videogen").glob("*.py")}
    assert not modules & {"cli", "stack", "localdb", "migrations", "devserver", "build", "worker"}

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    _require_package_index(py, folder / "requirements.txt")
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "-r", str(folder / "requirements.txt")],
        check=True,
        timeout=600,
    )
    port = free_port()
    env = server_env(db_url, port, tmp_path / "storage")
    env.pop("PYTHONPATH", None)
    proc = subprocess.Popen(
        [
            str(env_dir / "bin" / "functions-framework"),
            "--source",
            "main.py",
            "--target",
            "generate_video",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
        ],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/", timeout=60)
        resp = httpx.get(f"http://127.0.0.1:{port}/")
        assert resp.status_code == 401
        assert resp.json()["error"]["code"] == "UNAUTHORIZED"
        # The package came from the folder, not from this checkout.
        check = subprocess.run(
            [str(py), "-c", "import videogen, sys; print(videogen.__file__)"],
            cwd=folder,
            capture_output=True,
            text=True,
            check=True,
        )
        assert check.stdout.strip().startswith(str(folder))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert proc.stderr is not None
        proc.stderr.close()
    assert sys.executable != str(py)


def _require_package_index(py: Path, requirements: Path) -> None:
    """Skip, saying what is missing, when pip cannot resolve the pinned requirements here
    (no package index reachable); in CI, which has the registries, that is a failure."""
    resolved = subprocess.run(
        [str(py), "-m", "pip", "install", "--dry-run", "--no-deps", "-q", "-r", str(requirements)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if resolved.returncode == 0:
        return
    last = (resolved.stderr.strip().splitlines() or ["pip failed"])[-1]
    message = f"no package index serves the pinned requirements here: {last}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
