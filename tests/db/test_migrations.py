"""Replaying supabase/migrations gives exactly the schema sql/schema describes.

Two fresh databases holding the platform stand-in: one gets the migrations the way
production does (``migrations.apply_migrations``), the other the readable modules in
sql/schema applied in name order. ``pg_dump --schema-only`` of both must match, grants,
policies and comments included (the migration bookkeeping schema aside).
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from videogen_dev import localdb, migrations


def pg_dump() -> Path:
    """The pg_dump of the server's major version, else the newest one installed."""
    for directory in (localdb.find_bindir(), *sorted(Path("/usr/lib/postgresql").glob("*/bin"))):
        if (directory / "pg_dump").is_file():
            return directory / "pg_dump"
    pytest.skip("pg_dump not installed")


def dump_schema(dsn: str) -> str:
    """The schema of a database as pg_dump writes it, without comments and session noise."""
    out = subprocess.run(
        [
            str(pg_dump()),
            "--schema-only",
            "--no-owner",
            "--exclude-schema=supabase_migrations",
            f"--dbname={dsn}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    # \restrict / \unrestrict carry a random key per run (pg_dump ≥ 15.14).
    lines = [
        line
        for line in out.splitlines()
        if line.strip() and not line.startswith(("--", "\\restrict", "\\unrestrict"))
    ]
    return "\n".join(lines)


@pytest.fixture
def second_platform_db_url(database_server: str, platform_template_database: str) -> Iterator[str]:
    """Another fresh database with the platform stand-in only."""
    name = f"videogen_test_{uuid.uuid4().hex[:12]}"
    url = migrations.clone_database(database_server, platform_template_database, name)
    try:
        yield url
    finally:
        migrations.drop_database(database_server, name)


def test_migrations_equal_the_schema_modules(
    platform_db_url: str, second_platform_db_url: str
) -> None:
    root = migrations.project_root()
    with psycopg.connect(platform_db_url, autocommit=True) as conn:
        applied = migrations.apply_migrations(conn, root)
    assert applied, "no migrations found"
    modules = sorted((root / "sql" / "schema").glob("*.sql"))
    with psycopg.connect(second_platform_db_url, autocommit=True) as conn:
        for path in modules:
            migrations.apply_file(conn, path)

    from_migrations = dump_schema(platform_db_url)
    from_modules = dump_schema(second_platform_db_url)
    assert "FUNCTION service.job_create" in from_modules
    assert "POLICY" in from_modules and "GRANT" in from_modules
    if from_migrations != from_modules:
        import difflib

        diff = difflib.unified_diff(
            from_modules.splitlines(),
            from_migrations.splitlines(),
            "sql/schema",
            "supabase/migrations",
            lineterm="",
            n=1,
        )
        pytest.fail("migrations and sql/schema disagree:\n" + "\n".join(list(diff)[:80]))


def test_applying_everything_again_changes_nothing_and_older_databases_catch_up(
    platform_db_url: str,
) -> None:
    """``apply_all`` on a live database is a no-op; one made before the stand-in grew (here:
    without GoTrue's session tables) gains them, its data untouched."""
    migrations.apply_all(platform_db_url)
    before = dump_schema(platform_db_url)
    assert migrations.apply_all(platform_db_url) == []
    assert dump_schema(platform_db_url) == before
    with psycopg.connect(platform_db_url, autocommit=True) as conn:
        models = conn.execute("select count(*) from public.models").fetchone()
        conn.execute(
            "drop table auth.mfa_amr_claims, auth.refresh_tokens, auth.sessions, auth.identities;"
            " drop type auth.aal_level"
        )
    assert migrations.apply_all(platform_db_url) == ["sql/platform/15_auth_sessions.sql"]
    assert dump_schema(platform_db_url) == before
    with psycopg.connect(platform_db_url, autocommit=True) as conn:
        conn.execute("drop schema vault cascade")  # made before the Vault stand-in existed
    assert migrations.apply_all(platform_db_url) == ["sql/platform/40_vault.sql"]
    assert dump_schema(platform_db_url) == before
    with psycopg.connect(platform_db_url, autocommit=True) as conn:
        # Made before Storage's unused grants were revoked (0073).
        conn.execute("grant all on storage.objects, storage.buckets to anon, authenticated")
    assert migrations.apply_all(platform_db_url) == ["sql/platform/25_storage_unused_grants.sql"]
    assert dump_schema(platform_db_url) == before
    with psycopg.connect(platform_db_url, autocommit=True) as conn:
        assert conn.execute("select count(*) from public.models").fetchone() == models
