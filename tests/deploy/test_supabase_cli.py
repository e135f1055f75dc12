"""The Supabase CLI's own layout: the real CLI reads supabase/config.toml and pushes the
migrations and seed to a plain Postgres that holds only the platform stand-in.

The CLI is the npm package ``supabase``, pinned in package.json and installed by
``make setup`` (``npm ci``) into node_modules/. ``supabase db push --db-url`` applies
supabase/migrations (recording them in ``supabase_migrations.schema_migrations``) and, with
``--include-seed``, the files ``[db.seed]`` names; the result must equal what our own
runner (``videogen_dev.migrations``) builds, and the runner's history must be one the CLI
reads as up to date.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from videogen_dev import localdb, migrations

ROOT = migrations.project_root()
CLI = ROOT / "node_modules" / ".bin" / "supabase"
CLI_VERSION = "2.117.0"  # package.json pins the same
STORAGE_BUCKETS = {"uploads", "videos", "thumbnails"}


@pytest.fixture(scope="module")
def cli() -> Path:
    """The pinned CLI; skipped (failed on CI) when `make setup` has not installed it."""
    missing = None
    if not CLI.is_file():
        missing = f"{CLI.relative_to(ROOT)} is missing"
    elif shutil.which("node") is None:
        missing = "node is not installed"
    if missing:
        reason = f"Supabase CLI not installed ({missing}): run `make setup` (npm ci)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return CLI


def run_cli(
    cli: Path, home: Path, *args: str, workdir: Path = ROOT, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the CLI offline-friendly: its own HOME, no telemetry, no update check."""
    env = {
        **os.environ,
        "HOME": str(home),
        "SUPABASE_TELEMETRY_DISABLED": "1",
        "DO_NOT_TRACK": "1",
        "SUPABASE_NO_UPDATE_NOTIFIER": "1",
        "NO_COLOR": "1",
    }
    proc = subprocess.run(
        [str(cli), *args, "--workdir", str(workdir), "--yes"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if check and proc.returncode != 0:
        pytest.fail(f"supabase {' '.join(args)} failed ({proc.returncode}):\n{output(proc)}")
    return proc


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def as_url(dsn: str) -> str:
    """The DSN as a percent-encoded postgresql:// URL (what ``--db-url`` takes)."""
    if "://" in dsn:
        return dsn
    parts = conninfo_to_dict(dsn)
    user = quote(str(parts.get("user", "postgres")), safe="")
    password = parts.get("password")
    auth = f"{user}:{quote(str(password), safe='')}" if password else user
    host = str(parts.get("host", "127.0.0.1"))
    return f"postgresql://{auth}@{host}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


def rows(dsn: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(query).fetchall()


def content(table: str) -> str:
    """A query for a table's rows, ordered by id, without their timestamps."""
    return f"select to_jsonb(t) - array['created_at', 'updated_at'] from {table} t order by id"


def test_the_pinned_cli_is_installed(cli: Path, tmp_path: Path) -> None:
    proc = run_cli(cli, tmp_path, "--version")
    assert proc.stdout.strip() == CLI_VERSION


def test_config_matches_the_embedded_database() -> None:
    config = tomllib.loads((ROOT / "supabase" / "config.toml").read_text())
    assert config["db"]["port"] == localdb.PORT
    major = localdb.find_bindir().parent.name  # /usr/lib/postgresql/<major>/bin
    if major.isdigit():
        assert config["db"]["major_version"] == int(major)
    assert config["db"]["seed"]["sql_paths"] == ["./seed.sql"]


def test_cli_reads_config_toml(cli: Path, tmp_path: Path, platform_db_url: str) -> None:
    """``db push --dry-run`` loads supabase/config.toml from --workdir, and rejects a bad one."""
    url = as_url(platform_db_url)
    proc = run_cli(cli, tmp_path, "db", "push", "--db-url", url, "--include-seed", "--dry-run")
    for path in migrations.migration_files(ROOT):
        assert path.name in output(proc)
    assert "supabase/seed.sql" in output(proc)

    # The same layout with one invalid value: the CLI refuses it, so it did parse the file.
    broken = tmp_path / "broken"
    shutil.copytree(ROOT / "supabase", broken / "supabase", ignore=shutil.ignore_patterns(".*"))
    config = broken / "supabase" / "config.toml"
    text = config.read_text()
    assert "major_version = 15" in text
    config.write_text(text.replace("major_version = 15", "major_version = 99"))
    args = ("db", "push", "--db-url", url, "--dry-run")
    proc = run_cli(cli, tmp_path, *args, workdir=broken, check=False)
    assert proc.returncode != 0
    assert "major_version" in output(proc)


def test_cli_pushes_migrations_and_seed(
    cli: Path, tmp_path: Path, platform_db_url: str, db_url: str
) -> None:
    """On a fresh database with only the platform stand-in; ``db_url`` is our runner's."""
    url = as_url(platform_db_url)
    run_cli(cli, tmp_path, "db", "push", "--db-url", url, "--include-seed")

    # History as the CLI records it, the same versions and names as our runner records.
    history = "select version, name from supabase_migrations.schema_migrations order by 1"
    files = migrations.migration_files(ROOT)
    assert [v for v, _ in rows(platform_db_url, history)] == [
        migrations.migration_version(p) for p in files
    ]
    assert rows(platform_db_url, history) == rows(db_url, history)
    assert rows(platform_db_url, "select path from supabase_migrations.seed_files") == [
        ("supabase/seed.sql",)
    ]

    # The seed: the model catalogue, row for row what our runner seeds.
    models = content("public.models")
    assert rows(platform_db_url, models)
    assert rows(platform_db_url, models) == rows(db_url, models)

    # The schema: identical to our runner's, grants, policies and functions included.
    assert localdb.dump_schema(platform_db_url) == localdb.dump_schema(db_url)

    # Storage: only once a `*_storage.sql` migration exists (the buckets-and-policies
    # migration from issue 10's storage part; not on every branch yet). Then the buckets
    # must be there and storage.objects must carry its policies.
    if list((ROOT / "supabase" / "migrations").glob("*_storage.sql")):
        buckets = {r[0] for r in rows(platform_db_url, "select id from storage.buckets")}
        assert buckets >= STORAGE_BUCKETS
        policies = rows(
            platform_db_url,
            "select policyname from pg_policies where schemaname = 'storage'"
            " and tablename = 'objects'",
        )
        assert len(policies) >= 4, policies
        bucket_rows = content("storage.buckets")
        assert rows(platform_db_url, bucket_rows) == rows(db_url, bucket_rows)

    # Pushing again finds nothing to do; nor does it on the database our runner built.
    for target in (url, as_url(db_url)):
        proc = run_cli(cli, tmp_path, "db", "push", "--db-url", target, "--dry-run")
        assert not any(p.name in output(proc) for p in files), output(proc)
        assert "up to date" in output(proc).lower(), output(proc)
