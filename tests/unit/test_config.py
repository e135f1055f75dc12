"""Production refuses what only works on a developer's machine, before it serves anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from videogen.config import Settings

ROOT = Path(__file__).resolve().parents[2]
# Real-looking secrets (none of them the local defaults).
REAL = {
    "SUPABASE_JWT_SECRET": "j" * 40,
    "SUPABASE_SERVICE_ROLE_KEY": "eyJ.real.key",
    "SUPABASE_SECRET_KEY": "sb_secret_real",
    "WEBHOOK_SECRETS": "whsec_cmVhbC1zZWNyZXQ=",
    "CRON_SECRET": "real-cron",
}


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name in ("VIDEOGEN_ENV", "STORAGE_BACKEND", *REAL):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_storage_defaults_to_supabase_in_production_and_to_disk_locally(monkeypatch):
    assert settings(monkeypatch, VIDEOGEN_ENV="production", **REAL).storage_backend == "supabase"
    assert settings(monkeypatch).storage_backend == "local"
    assert settings(monkeypatch, STORAGE_BACKEND="supabase").storage_backend == "supabase"


def test_production_refuses_local_storage(monkeypatch):
    with pytest.raises(ValidationError, match="STORAGE_BACKEND=supabase"):
        settings(monkeypatch, VIDEOGEN_ENV="production", STORAGE_BACKEND="local", **REAL)


@pytest.mark.parametrize("name", sorted(REAL))
def test_production_refuses_each_local_secret(monkeypatch, name):
    env = {k: v for k, v in REAL.items() if k != name}
    with pytest.raises(ValidationError, match=name):
        settings(monkeypatch, VIDEOGEN_ENV="production", **env)


def test_a_misconfigured_function_does_not_start():
    """Loading the function (what functions-framework does at start-up) fails, loudly."""
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT / "shared"),  # this checkout's runtime, not the installed one
        "VIDEOGEN_ENV": "production",
        "STORAGE_BACKEND": "local",
    }
    load = "import runpy; runpy.run_path('functions/queue-job/main.py')"
    done = subprocess.run(
        [sys.executable, "-c", load], env={**env, **REAL}, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode != 0 and "STORAGE_BACKEND=supabase" in done.stderr
    fine = subprocess.run(
        [sys.executable, "-c", load],
        env={**env, **REAL, "STORAGE_BACKEND": "supabase"},
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert fine.returncode == 0, fine.stderr
