"""The Supabase platform stand-in (sql/platform) behaves like Supabase, and
videogen_dev.migrations applies it.

These tests use databases holding the stand-in alone, or a throwaway project root, so they
do not depend on the application schema in supabase/migrations.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from videogen_dev import migrations

Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture
def conn(platform_db_url: str) -> Any:
    """Autocommit connection as postgres to a database holding only the platform stand-in."""
    with psycopg.connect(platform_db_url, autocommit=True) as connection:
        yield connection


def as_user(conn: Conn, claims: dict[str, Any], role: str = "authenticated") -> None:
    """Inside a transaction: act as PostgREST does for a request carrying these claims."""
    conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
    conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))


# ------------------------------------------------------------------------------------------
# Roles and grants
# ------------------------------------------------------------------------------------------


def test_api_roles_have_supabase_attributes(conn: Conn) -> None:
    rows = conn.execute(
        """
        select rolname, rolcanlogin, rolinherit, rolbypassrls from pg_roles
        where rolname in ('anon', 'authenticated', 'service_role', 'authenticator')
        order by rolname
        """
    ).fetchall()
    assert rows == [
        ("anon", False, False, False),
        ("authenticated", False, False, False),
        ("authenticator", True, False, False),
        ("service_role", False, False, True),
    ]


def test_authenticator_can_become_each_api_role(conn: Conn) -> None:
    granted = conn.execute(
        """
        select r.rolname from pg_auth_members m
        join pg_roles r on r.oid = m.roleid
        join pg_roles u on u.oid = m.member
        where u.rolname = 'authenticator' order by 1
        """
    ).fetchall()
    assert [r[0] for r in granted] == ["anon", "authenticated", "service_role"]


CRUD = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"})
ALL = CRUD | {"TRUNCATE", "REFERENCES", "TRIGGER"}  # Postgres 15-16 (17 adds MAINTAIN)
NONE: frozenset[str] = frozenset()
# Table privileges of the API roles on a current hosted project, read from Supabase's own
# definitions: supabase/storage migrations/tenant 0046-buckets-objects-grants.sql (ALL on
# buckets and objects to anon, authenticated and service_role) as scoped down by
# 0073-revoke-grants-to-unused-operations.sql (REVOKE TRUNCATE, REFERENCES, TRIGGER — and
# MAINTAIN on 17+ — from anon and authenticated: RLS filters none of them; service_role
# keeps ALL); supabase/auth and supabase/postgres 20211115181400_update-auth-permissions.sql
# (nothing on auth.*); supabase/realtime 20241030150047_messages_partitioning (SELECT,
# INSERT, UPDATE on realtime.messages). The stand-in mirrors these exactly, so what holds
# locally holds there; a table the stand-in adds must be listed here to pass.
SUPABASE_TABLE_GRANTS = {
    "auth.users": {"anon": NONE, "authenticated": NONE, "service_role": NONE},
    "auth.identities": {"anon": NONE, "authenticated": NONE, "service_role": NONE},
    "auth.sessions": {"anon": NONE, "authenticated": NONE, "service_role": NONE},
    "auth.refresh_tokens": {"anon": NONE, "authenticated": NONE, "service_role": NONE},
    "auth.mfa_amr_claims": {"anon": NONE, "authenticated": NONE, "service_role": NONE},
    "storage.buckets": {"anon": CRUD, "authenticated": CRUD, "service_role": ALL},
    "storage.objects": {"anon": CRUD, "authenticated": CRUD, "service_role": ALL},
    "realtime.messages": {
        "anon": frozenset({"SELECT", "INSERT", "UPDATE"}),
        "authenticated": frozenset({"SELECT", "INSERT", "UPDATE"}),
        "service_role": frozenset({"SELECT", "INSERT", "UPDATE"}),
    },
}


def test_platform_tables_grant_exactly_what_supabase_grants(conn: Conn) -> None:
    tables = conn.execute(
        """
        select n.nspname || '.' || c.relname from pg_class c
          join pg_namespace n on n.oid = c.relnamespace
         where n.nspname in ('auth', 'storage', 'realtime') and c.relkind in ('r', 'p')
           and not c.relispartition
         order by 1
        """
    ).fetchall()
    assert sorted(t[0] for t in tables) == sorted(SUPABASE_TABLE_GRANTS)
    for table, expected in SUPABASE_TABLE_GRANTS.items():
        for role, privileges in expected.items():
            rows = conn.execute(
                """
                select a.privilege_type from pg_class c,
                       aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
                 where c.oid = %s::regclass and a.grantee = %s::regrole
                """,
                (table, role),
            ).fetchall()
            assert {r[0] for r in rows} == privileges, (table, role)


def test_api_roles_cannot_truncate_or_hook_storage_tables(conn: Conn) -> None:
    """What 0073 closes: RLS filters no TRUNCATE, and TRIGGER / REFERENCES would let a
    caller attach code or constraints to Storage's tables."""
    for role in ("anon", "authenticated"):
        for table in ("storage.objects", "storage.buckets"):
            for privilege in ("TRUNCATE", "REFERENCES", "TRIGGER"):
                row = conn.execute(
                    "select has_table_privilege(%s, %s, %s)", (role, table, privilege)
                ).fetchone()
                assert row == (False,), (role, table, privilege)
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
            conn.execute("truncate storage.objects")


def test_new_storage_tables_get_storage_s_default_grants(conn: Conn) -> None:
    """The storage schema's default privileges (0002, scoped down by 0073): a table made
    there later is row-level CRUD for anon and authenticated, everything for service_role."""
    conn.execute("create table storage.later (id int)")
    rows = conn.execute(
        """
        select a.grantee::regrole::text, array_agg(a.privilege_type::text)
          from pg_class c, aclexplode(c.relacl) a
         where c.oid = 'storage.later'::regclass
           and a.grantee::regrole::text in ('anon', 'authenticated', 'service_role')
         group by 1
        """
    ).fetchall()
    grants = {role: frozenset(privileges) for role, privileges in rows}
    assert grants == {"anon": CRUD, "authenticated": CRUD, "service_role": ALL}


def test_new_public_objects_are_granted_to_api_roles_by_default(conn: Conn) -> None:
    conn.execute("create table public.things (id bigint generated always as identity)")
    conn.execute("create function public.answer() returns int language sql as 'select 42'")
    for role in ("anon", "authenticated", "service_role"):
        checks = conn.execute(
            """
            select has_table_privilege(%(r)s, 'public.things', 'select,insert,update,delete'),
                   has_sequence_privilege(%(r)s, 'public.things_id_seq', 'usage'),
                   has_function_privilege(%(r)s, 'public.answer()', 'execute'),
                   has_schema_privilege(%(r)s, 'public', 'usage'),
                   has_schema_privilege(%(r)s, 'extensions', 'usage')
            """,
            {"r": role},
        ).fetchone()
        assert checks == (True, True, True, True, True), role


def test_pgcrypto_lives_in_extensions(conn: Conn) -> None:
    schema_name = conn.execute(
        "select extnamespace::regnamespace::text from pg_extension where extname = 'pgcrypto'"
    ).fetchone()
    assert schema_name == ("extensions",)
    row = conn.execute("select length(extensions.gen_random_bytes(16))").fetchone()
    assert row == (16,)


# ------------------------------------------------------------------------------------------
# auth
# ------------------------------------------------------------------------------------------


def test_auth_helpers_read_request_jwt_claims(conn: Conn) -> None:
    user_id = uuid.uuid4()
    claims = {"sub": str(user_id), "role": "authenticated", "email": "a@example.com"}
    with conn.transaction():
        as_user(conn, claims)
        row = conn.execute(
            "select auth.uid(), auth.role(), auth.email(), auth.jwt(), current_user"
        ).fetchone()
    assert row == (user_id, "authenticated", "a@example.com", claims, "authenticated")


def test_auth_helpers_are_null_without_a_request(conn: Conn) -> None:
    row = conn.execute("select auth.uid(), auth.role(), auth.jwt()").fetchone()
    assert row == (None, None, None)


def test_legacy_per_claim_setting_wins_as_on_supabase(conn: Conn) -> None:
    legacy, current = uuid.uuid4(), uuid.uuid4()
    with conn.transaction():
        conn.execute("select set_config('request.jwt.claim.sub', %s, true)", (str(legacy),))
        as_user(conn, {"sub": str(current), "role": "authenticated"})
        assert conn.execute("select auth.uid()").fetchone() == (legacy,)


def test_auth_users_defaults_and_privacy(conn: Conn) -> None:
    user_id = uuid.uuid4()
    conn.execute(
        """
        insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data,
                                raw_user_meta_data, created_at, updated_at)
        values (%s, 'authenticated', 'authenticated', 'b@example.com', now(), '{}', '{}',
                now(), now())
        """,
        (user_id,),
    )
    row = conn.execute(
        "select is_anonymous, is_sso_user, confirmed_at is not null from auth.users where id = %s",
        (user_id,),
    ).fetchone()
    assert row == (False, False, True)
    with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
        as_user(conn, {"sub": str(user_id), "role": "authenticated"})
        conn.execute("select * from auth.users")


# ------------------------------------------------------------------------------------------
# storage
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "folders", "filename", "extension"),
    [
        ("user-1/jobs/out.mp4", ["user-1", "jobs"], "out.mp4", "mp4"),
        ("thumb.final.jpg", [], "thumb.final.jpg", "jpg"),
        ("a/b/noext", ["a", "b"], "noext", "noext"),
    ],
)
def test_storage_path_helpers(
    conn: Conn, name: str, folders: list[str], filename: str, extension: str
) -> None:
    row = conn.execute(
        "select storage.foldername(%(n)s), storage.filename(%(n)s), storage.extension(%(n)s)",
        {"n": name},
    ).fetchone()
    assert row == (folders, filename, extension)


def test_storage_tables_are_closed_until_a_policy_opens_them(conn: Conn) -> None:
    conn.execute("insert into storage.buckets (id, name) values ('videos', 'videos')")
    conn.execute("insert into storage.objects (bucket_id, name) values ('videos', 'u/1/a.mp4')")
    assert conn.execute("select path_tokens from storage.objects").fetchone() == (
        ["u", "1", "a.mp4"],
    )
    with conn.transaction():
        as_user(conn, {"sub": str(uuid.uuid4()), "role": "authenticated"})
        assert conn.execute("select count(*) from storage.objects").fetchone() == (0,)
        assert conn.execute("select count(*) from storage.buckets").fetchone() == (0,)
    with conn.transaction():
        as_user(conn, {"role": "service_role"}, role="service_role")
        assert conn.execute("select count(*) from storage.objects").fetchone() == (1,)


# ------------------------------------------------------------------------------------------
# realtime
# ------------------------------------------------------------------------------------------


def test_platform_tables_have_rls_enabled(conn: Conn) -> None:
    rows = conn.execute(
        """
        select c.oid::regclass::text, c.relrowsecurity from pg_class c
        where c.oid in ('auth.users'::regclass, 'storage.buckets'::regclass,
                        'storage.objects'::regclass, 'realtime.messages'::regclass)
        order by 1
        """
    ).fetchall()
    assert rows == [
        ("auth.users", True),
        ("realtime.messages", True),
        ("storage.buckets", True),
        ("storage.objects", True),
    ]


def test_realtime_send_stores_the_message(conn: Conn) -> None:
    conn.execute(
        "select realtime.send(%s::jsonb, 'job_status', 'user:42', true)",
        (json.dumps({"status": "queued"}),),
    )
    row = conn.execute(
        "select id, topic, event, private, extension, payload from realtime.messages"
    ).fetchone()
    assert row is not None
    message_id, *rest = row
    assert rest == [
        "user:42",
        "job_status",
        True,
        "broadcast",
        {"status": "queued", "id": str(message_id)},
    ]


def test_realtime_send_takes_no_global_lock_at_commit(conn: Conn, platform_db_url: str) -> None:
    """No NOTIFY (Supabase's send has none): committing broadcasts never queue on one lock."""
    with psycopg.connect(platform_db_url, autocommit=True) as listener:
        listener.execute("listen videogen_realtime")
        conn.execute("select realtime.send('{\"a\": 1}', 'e', 'user:1')")
        assert list(listener.notifies(timeout=0.3, stop_after=1)) == []
    source = conn.execute("select prosrc from pg_proc where oid = 'realtime.send'::regproc")
    assert "pg_notify" not in source.fetchone()[0]


def test_realtime_send_is_transactional(conn: Conn) -> None:
    conn.execute("begin")
    conn.execute("select realtime.send('{\"a\": 1}', 'e', 'rolled-back')")
    conn.execute("rollback")
    assert conn.execute("select count(*) from realtime.messages").fetchone() == (0,)


def test_realtime_send_keeps_a_payload_id_and_sets_the_topic(conn: Conn) -> None:
    with conn.transaction():
        conn.execute("select realtime.send('{\"id\": \"mine\"}', 'e', 'room:1', false)")
        assert conn.execute("select realtime.topic()").fetchone() == ("room:1",)
    row = conn.execute("select payload, private from realtime.messages").fetchone()
    assert row == ({"id": "mine"}, False)


def test_realtime_large_payloads_are_stored_whole(conn: Conn) -> None:
    big = {"text": "x" * 10_000}
    conn.execute("select realtime.send(%s::jsonb, 'big', 'user:1')", (json.dumps(big),))
    stored = conn.execute("select payload->>'text' from realtime.messages").fetchone()
    assert stored == (big["text"],)


def test_realtime_send_failure_is_a_warning_not_an_error(conn: Conn) -> None:
    notices: list[str] = []
    conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    with conn.transaction():
        # No insert policy on realtime.messages: RLS refuses the row, send() only warns.
        as_user(conn, {"sub": str(uuid.uuid4()), "role": "authenticated"})
        conn.execute("select realtime.send('{}', 'e', 'user:1')")
    assert any(n.startswith("ErrorSendingBroadcastMessage") for n in notices)
    assert conn.execute("select count(*) from realtime.messages").fetchone() == (0,)


def test_realtime_topic_reads_the_setting(conn: Conn) -> None:
    assert conn.execute("select realtime.topic()").fetchone() == (None,)
    with conn.transaction():
        conn.execute("select set_config('realtime.topic', 'user:7', true)")
        assert conn.execute("select realtime.topic()").fetchone() == ("user:7",)


def test_broadcast_changes_from_a_row_trigger(conn: Conn) -> None:
    conn.execute(
        """
        create table public.items (id int primary key, label text);
        create function public.items_broadcast() returns trigger
            language plpgsql security definer set search_path = '' as $$
        begin
            perform realtime.broadcast_changes(
                'items:' || coalesce(new.id, old.id), tg_op, tg_op, tg_table_name,
                tg_table_schema, new, old);
            return null;
        end $$;
        create trigger items_broadcast after insert or update or delete on public.items
            for each row execute function public.items_broadcast();
        """
    )
    conn.execute("insert into public.items values (1, 'one')")
    conn.execute("update public.items set label = 'uno' where id = 1")
    rows = conn.execute(
        "select topic, event, payload from realtime.messages order by inserted_at, event"
    ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [("items:1", "INSERT"), ("items:1", "UPDATE")]
    insert, update = rows[0][2], rows[1][2]
    assert insert["record"] == {"id": 1, "label": "one"}
    assert insert["old_record"] is None
    assert (insert["operation"], insert["table"], insert["schema"]) == ("INSERT", "items", "public")
    assert update["old_record"] == {"id": 1, "label": "one"}
    assert update["record"] == {"id": 1, "label": "uno"}


def test_supabase_realtime_publication_exists_and_is_empty(conn: Conn) -> None:
    row = conn.execute(
        """
        select p.puballtables, count(pt.tablename) from pg_publication p
        left join pg_publication_tables pt on pt.pubname = p.pubname
        where p.pubname = 'supabase_realtime' group by p.puballtables
        """
    ).fetchone()
    assert row == (False, 0)


# ------------------------------------------------------------------------------------------
# videogen_dev.migrations: detection, apply_all, reset
# ------------------------------------------------------------------------------------------


def test_real_supabase_detected_by_supabase_admin_role(conn: Conn) -> None:
    assert migrations.is_real_supabase(conn) is False
    # Roles are cluster-wide: create it only inside a transaction nobody else can see.
    with pytest.raises(_Rollback), conn.transaction():
        conn.execute("create role supabase_admin")
        assert migrations.is_real_supabase(conn) is True
        raise _Rollback
    assert migrations.is_real_supabase(conn) is False


def test_real_supabase_detected_by_auth_schema_migrations(conn: Conn) -> None:
    conn.execute("create table auth.schema_migrations (version varchar(255) primary key)")
    assert migrations.is_real_supabase(conn) is True


class _Rollback(Exception):
    """Raised to roll a test transaction back."""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A throwaway project root: the real sql/platform, a small migration, a seed."""
    root = tmp_path / "project"
    shutil.copytree(
        migrations.project_root() / migrations.PLATFORM_DIR, root / migrations.PLATFORM_DIR
    )
    folder = root / migrations.MIGRATIONS_DIR
    folder.mkdir(parents=True)
    (folder / "20250101000000_notes.sql").write_text(
        "create table public.notes (id int primary key, owner uuid default auth.uid());\n"
        "-- a trailing comment without a newline"
    )
    (root / migrations.SEED_FILE).write_text("insert into public.notes (id) values (1);\n")
    return root


def test_apply_all_applies_platform_migrations_and_seed_once(
    empty_db_url: str, project: Path
) -> None:
    applied = migrations.apply_all(empty_db_url, root=project)
    assert applied == [
        "sql/platform/00_roles.sql",
        "sql/platform/10_auth.sql",
        "sql/platform/15_auth_sessions.sql",
        "sql/platform/20_storage.sql",
        "sql/platform/25_storage_unused_grants.sql",
        "sql/platform/30_realtime.sql",
        "sql/platform/40_vault.sql",
        "supabase/migrations/20250101000000_notes.sql",
        "supabase/seed.sql",
    ]
    assert migrations.apply_all(empty_db_url, root=project) == []

    (project / migrations.MIGRATIONS_DIR / "20250102000000_more.sql").write_text(
        "alter table public.notes add column body text;"
    )
    assert migrations.apply_all(empty_db_url, root=project) == [
        "supabase/migrations/20250102000000_more.sql"
    ]
    with psycopg.connect(empty_db_url) as check:
        assert check.execute("select count(*) from public.notes").fetchone() == (1,)
        history = check.execute(
            "select version, name from supabase_migrations.schema_migrations order by 1"
        ).fetchall()
    assert history == [("20250101000000", "notes"), ("20250102000000", "more")]


def test_apply_all_skips_the_platform_on_real_supabase(empty_db_url: str, project: Path) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as setup:
        # What a Supabase database has and the stand-in never creates.
        setup.execute("create schema auth; create table auth.schema_migrations (version text)")
        setup.execute("create function auth.uid() returns uuid language sql as 'select null::uuid'")
    applied = migrations.apply_all(empty_db_url, root=project)
    assert not [name for name in applied if name.startswith("sql/platform/")]
    with psycopg.connect(empty_db_url) as check:
        assert check.execute("select to_regnamespace('realtime')").fetchone() == (None,)


def test_a_failing_file_is_named_with_its_line(empty_db_url: str, project: Path) -> None:
    (project / migrations.MIGRATIONS_DIR / "20250103000000_broken.sql").write_text(
        "select 1;\n\nselect * from no_such_table;\n"
    )
    with pytest.raises(
        migrations.SchemaError, match=r"20250103000000_broken\.sql:3: .*no_such_table"
    ):
        migrations.apply_all(empty_db_url, root=project)
    with psycopg.connect(empty_db_url) as check:
        versions = check.execute("select version from supabase_migrations.schema_migrations")
        assert [v[0] for v in versions] == ["20250101000000"]


def test_reset_recreates_the_database_empty(empty_db_url: str) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as setup:
        setup.execute("create table public.leftover (id int)")
    migrations.reset(empty_db_url)
    with psycopg.connect(empty_db_url) as check:
        assert check.execute("select to_regclass('public.leftover')").fetchone() == (None,)


def test_database_dsn_swaps_only_the_database() -> None:
    url = "postgresql://postgres:postgres@127.0.0.1:54322/postgres?sslmode=disable"
    assert migrations.database_dsn(url, "other") == (
        "postgresql://postgres:postgres@127.0.0.1:54322/other?sslmode=disable"
    )
    assert migrations.database_name(migrations.database_dsn(url, "other")) == "other"
