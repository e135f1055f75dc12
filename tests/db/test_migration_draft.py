"""``videogen migration draft``: a new migration drafted by diffing migrations and sql/schema.

Each test works on a copy of the project's sql/ and supabase/ (the tool's ``root``), so
nothing is written into the repository; the drafts are checked by applying them to a fresh
platform database and comparing ``pg_dump`` with the schema modules, as
tests/db/test_migrations.py does.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from videogen_dev import cli, localdb, migrations
from videogen_dev.migration_draft import draft_migration, next_version

CHANGE = """
-- Added by tests/db/test_migration_draft.py.
alter table public.profiles add column nickname text check (char_length(nickname) <= 40);
comment on column public.profiles.nickname is 'Shown instead of the display name.';

create function public.profile_nickname(p_id uuid) returns text
language sql stable security definer set search_path = '' as $$
  select nickname from public.profiles where id = p_id
$$;
revoke execute on function public.profile_nickname(uuid) from public, anon;
grant execute on function public.profile_nickname(uuid) to authenticated;

create policy "Nicknames are visible to everyone" on public.profiles
  for select to anon using (nickname is not null);
grant select (id, nickname) on public.profiles to anon;
"""


# Read before any test points VIDEOGEN_ROOT at its copy.
REPOSITORY_MIGRATIONS = {p.name for p in migrations.migration_files(migrations.project_root())}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A copy of the project's SQL: sql/ and supabase/."""
    source = migrations.project_root()
    for folder in ("sql", "supabase"):
        shutil.copytree(source / folder, tmp_path / folder)
    return tmp_path


def _new_migrations(root: Path) -> list[Path]:
    return [p for p in migrations.migration_files(root) if p.name not in REPOSITORY_MIGRATIONS]


def _replay_equals_modules(database_server: str, root: Path, template: str) -> bool:
    """Platform + the root's migrations dumps the same as platform + its schema modules."""
    with (
        _clone(database_server, template, "m") as from_migrations,
        _clone(database_server, template, "s") as from_modules,
    ):
        with psycopg.connect(from_migrations, autocommit=True) as conn:
            migrations.apply_migrations(conn, root)
        with psycopg.connect(from_modules, autocommit=True) as conn:
            for path in sorted((root / "sql" / "schema").glob("*.sql")):
                migrations.apply_file(conn, path)
        return localdb.dump_schema(from_migrations) == localdb.dump_schema(from_modules)


@contextmanager
def _clone(database_server: str, template: str, role: str) -> Iterator[str]:
    name = f"videogen_test_{uuid.uuid4().hex[:10]}_{role}"
    try:
        yield migrations.clone_database(database_server, template, name)
    finally:
        migrations.drop_database(database_server, name)


def test_the_repository_has_nothing_to_draft(
    database_server: str,
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("VIDEOGEN_ROOT", str(root))
    monkeypatch.setattr(localdb, "ensure_running", lambda: database_server)
    assert cli.main(["migration", "draft", "nothing_changed"]) == 0
    assert "nothing to draft" in capsys.readouterr().out
    assert _new_migrations(root) == []


def test_a_schema_change_is_drafted_and_the_draft_gives_the_schema(
    database_server: str, platform_template_database: str, root: Path
) -> None:
    last_module = sorted((root / "sql" / "schema").glob("*.sql"))[-1]
    with last_module.open("a") as module:
        module.write(CHANGE)

    draft = draft_migration("profile_nickname", root=root, admin_dsn=database_server)

    assert draft.path is not None and _new_migrations(root) == [draft.path]
    assert re.fullmatch(r"\d{14}_profile_nickname\.sql", draft.path.name)
    text = draft.path.read_text()
    assert text.startswith("-- Migration profile_nickname: drafted by `make migration`")
    for expected in (
        'alter table "public"."profiles" add column "nickname" text;',
        "CHECK ((char_length(nickname) <= 40))",
        'COMMENT ON COLUMN "public"."profiles"."nickname" IS \'Shown instead',
        "CREATE OR REPLACE FUNCTION public.profile_nickname(p_id uuid)",
        'create policy "Nicknames are visible to everyone"',
        "revoke execute on function public.profile_nickname(p_id uuid) from public;",
        "revoke execute on function public.profile_nickname(p_id uuid) from anon;",
        "grant select (id) on table public.profiles to anon;",
        "grant select (nickname) on table public.profiles to anon;",
    ):
        assert expected in text, expected
    # The foreign key of the changed table is dropped and added again: listed as unsafe.
    drop_fkey = 'alter table "public"."profiles" drop constraint "profiles_id_fkey";'
    assert draft.unsafe == [f"{drop_fkey}  (added again below)"]
    assert "-- Unsafe statements (drops" in text and f"--   {draft.unsafe[0]}" in text
    assert draft.error is None and draft.remaining == [] and draft.verified
    assert _replay_equals_modules(database_server, root, platform_template_database)


def test_what_a_diff_cannot_express_is_reported_and_drops_are_listed(
    database_server: str,
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (security,) = (root / "sql" / "schema").glob("*_security.sql")
    policy = (
        'create policy "Available models are visible to everyone" on public.models\n'
        "  for select to anon, authenticated using (is_available);\n"
    )
    assert policy in security.read_text()
    security.write_text(
        security.read_text().replace(policy, "")
        + "\nalter default privileges in schema private grant select on tables to service_role;\n"
    )
    monkeypatch.setenv("VIDEOGEN_ROOT", str(root))
    monkeypatch.setattr(localdb, "ensure_running", lambda: database_server)

    assert cli.main(["migration", "draft", "drop_models_policy"]) == 1

    [path] = _new_migrations(root)
    drop = 'drop policy "Available models are visible to everyone" on "public"."models";'
    text = path.read_text()
    assert f"--   {drop}" in text and f"\n\n{drop}\n" in text
    out = capsys.readouterr().out
    assert f"wrote {path}" in out and f"  unsafe: {drop}" in out
    # Default privileges are left to the author: the check shows them as pg_dump lines.
    assert "draft not verified" in out
    remaining = out.split("by hand:\n", 1)[1].splitlines()
    assert any(
        line.startswith("+ALTER DEFAULT PRIVILEGES") and "IN SCHEMA private" in line
        for line in remaining
    ), remaining
    assert not any("POLICY" in line for line in remaining)


def test_the_version_is_the_utc_time_after_the_newest_migration(root: Path) -> None:
    newest = max(migrations.migration_version(p) for p in migrations.migration_files(root))
    later = datetime(2099, 1, 2, 3, 4, 5, 678, tzinfo=UTC)
    assert next_version(root, later) == "20990102030405"
    # Hand-numbered versions ahead of the clock: one second after the newest.
    after = datetime.strptime(newest, "%Y%m%d%H%M%S") + timedelta(seconds=1)
    assert next_version(root, datetime(2000, 1, 1, tzinfo=UTC)) == after.strftime("%Y%m%d%H%M%S")
