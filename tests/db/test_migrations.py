"""Replaying supabase/migrations gives exactly the schema sql/schema describes.

Two fresh databases holding the platform stand-in: one gets the migrations the way
production does (``migrations.apply_migrations``), the other the readable modules in
sql/schema applied in name order. ``pg_dump --schema-only`` of both must match, grants,
policies and comments included (the migration bookkeeping schema aside).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from videogen_dev import localdb, migrations


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

    from_migrations = localdb.dump_schema(platform_db_url)
    from_modules = localdb.dump_schema(second_platform_db_url)
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
    before = localdb.dump_schema(platform_db_url)
    assert migrations.apply_all(platform_db_url) == []
    assert localdb.dump_schema(platform_db_url) == before
    with psycopg.connect(platform_db_url, autocommit=True) as conn:
        models = conn.execute("select count(*) from public.models").fetchone()
        conn.execute(
            "drop table auth.mfa_amr_claims, auth.refresh_tokens, auth.sessions, auth.identities;"
            " drop type auth.aal_level"
        )
    assert migrations.apply_all(platform_db_url) == ["sql/platform/15_auth_sessions.sql"]
    assert localdb.dump_schema(platform_db_url) == before
    with psycopg.connect(platform_db_url, autocommit=True) as conn:
        conn.execute("drop schema vault cascade")  # made before the Vault stand-in existed
    assert migrations.apply_all(platform_db_url) == ["sql/platform/40_vault.sql"]
    assert localdb.dump_schema(platform_db_url) == before
    with psycopg.connect(platform_db_url, autocommit=True) as conn:
        # Made before Storage's unused grants were revoked (0073).
        conn.execute("grant all on storage.objects, storage.buckets to anon, authenticated")
    assert migrations.apply_all(platform_db_url) == ["sql/platform/25_storage_unused_grants.sql"]
    assert localdb.dump_schema(platform_db_url) == before
    with psycopg.connect(platform_db_url, autocommit=True) as conn:
        assert conn.execute("select count(*) from public.models").fetchone() == models
