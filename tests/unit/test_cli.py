"""The CLI a newcomer meets: the local keys, the deploy env file, `make help` when piped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from videogen_dev.cli import main

from videogen.config import LOCAL_PUBLISHABLE_KEY, LOCAL_SECRET_KEY

ROOT = Path(__file__).resolve().parents[2]
# A production environment with real-looking secrets (none of them the local defaults).
PRODUCTION = {
    "PATH": "/usr/bin:/bin",
    "VIDEOGEN_ENV": "production",
    "SUPABASE_JWT_SECRET": "j" * 40,
    "SUPABASE_SERVICE_ROLE_KEY": "eyJ.real.key",
    "SUPABASE_SECRET_KEY": "sb_secret_real",
    "WEBHOOK_SECRETS": "whsec_cmVhbC1zZWNyZXQ=",
    "CRON_SECRET": "real-cron",
}


def test_keys_print_the_local_url_and_keys(capsys, monkeypatch):
    monkeypatch.delenv("VIDEOGEN_ENV", raising=False)
    assert main(["keys"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["publishable_key"] == LOCAL_PUBLISHABLE_KEY
    assert shown["secret_key"] == LOCAL_SECRET_KEY
    assert main(["keys", "secret_key"]) == 0
    assert capsys.readouterr().out.strip() == LOCAL_SECRET_KEY


def test_keys_refuse_to_print_production_secrets():
    done = subprocess.run(
        [sys.executable, "-m", "videogen_dev", "keys"],
        env=PRODUCTION,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and "sb_secret_real" not in done.stdout


def test_env_file_writes_the_settings_it_was_given_and_names_the_secrets(tmp_path):
    env = {
        **PRODUCTION,
        "SUPABASE_URL": "https://abc.supabase.co",
        "RATE_LIMIT_PER_MINUTE": "60",
        "DATABASE_URL": "postgresql://postgres.abc:pa55word@pooler.example:6543/postgres",
    }
    done = subprocess.run(
        [sys.executable, "-m", "videogen_dev", "env-file"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert yaml.safe_load(done.stdout) == {
        "VIDEOGEN_ENV": "production",
        "SUPABASE_URL": "https://abc.supabase.co",
        "RATE_LIMIT_PER_MINUTE": "60",
    }
    for secret in ("sb_secret_real", "real-cron", "pa55word"):
        assert secret not in done.stdout
    assert "--set-secrets=" in done.stdout and "SUPABASE_SECRET_KEY=" in done.stdout


def test_make_help_piped_has_no_terminal_codes():
    out = subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "\x1b" not in out
    assert "  run " in out and "  test " in out
