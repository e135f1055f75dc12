"""Who may do what, as users meet it: RLS, column grants, function grants, realtime topics."""

from __future__ import annotations

import uuid

import pytest
from db.helpers import (
    Conn,
    acting_as,
    as_anon,
    as_user,
    create_job,
    dispatched_job,
    for_user,
    raises_sqlstate,
    register_worker,
    select_as,
)

# What each API role may execute in public; everything else is service-only.
ANON_FUNCTIONS = {"list_models", "list_voices", "quote_jobs"}
USER_FUNCTIONS = {
    # Admin reads (module 15): invoker, so RLS decides; anyone but an admin gets 42501-like
    # VG403 from private.require_admin.
    "admin_list_jobs",
    "admin_list_workers",
    "api_keys_list",  # invoker: RLS and column grants show a user their keys, never a hash
    "prompt_templates_list",
    "get_batch",
    "get_credits",
    "get_element_template",
    "get_job",
    "get_profile",
    "get_project",
    "list_batches",
    "list_element_templates",
    "list_jobs",
    "list_models",
    "list_projects",
    "list_voices",
    "list_webhook_deliveries",  # invoker: RLS shows a user their own deliveries (module 22)
    "provider_keys_list",  # invoker: RLS shows a user their own keys, masked (module 16)
    "quote_jobs",
    "share_links_list",  # invoker: RLS shows a user their own share links
    "update_profile",  # invoker: the column grants (display_name, language, theme) decide
}
USER_PRIVATE_FUNCTIONS = {
    "batch_progress",
    "job_estimate",
    "job_get_json",
    "job_json",
    "job_read_json",
    "list_order_asc",
    "model_run_seconds",
    "project_json",
    "queue_position",
    "require_admin",
    "require_known_user",
    "share_link_json",
}
# Writes a user asks for go through the functions (auth, rate limit, idempotency, routing
# after commit); the functions call them as service_role with the user's claims.
USER_WRITES_THROUGH_FUNCTIONS = (
    ("service.job_create", ("reference/text-to-video", "{}")),
    ("service.job_cancel", ("00000000-0000-4000-8000-000000000000",)),
    ("service.initial_grant_claim", ()),
    ("service.project_create", ("mine",)),
    ("service.project_delete", ("00000000-0000-4000-8000-000000000000",)),
    ("service.batch_create", ('[{"model": "reference/text-to-video"}]',)),
    ("service.batch_cancel", ("00000000-0000-4000-8000-000000000000",)),
    ("service.element_template_create", ("mine", "", '[{"type": "text"}]', "{}", "{}")),
    ("service.element_template_delete", ("00000000-0000-4000-8000-000000000000",)),
    ("service.admin_job_requeue", ("00000000-0000-4000-8000-000000000000", "stuck")),
    ("service.admin_job_fail", ("00000000-0000-4000-8000-000000000000", "stuck")),
    ("service.prompt_template_save", ("text_to_video", "Improve it.")),
    ("service.anonymous_merge", ("00000000-0000-4000-8000-000000000000",)),
    ("service.provider_key_save", ({"principal": "p"}, "fal", "key-id:0123456789abcdef0123")),
    ("service.provider_key_delete", ({"principal": "p"}, "fal")),
    ("service.webhook_secret_get", ()),
    ("service.webhook_secret_rotate", ()),
)


# ------------------------------------------------------------------------------------------
# Catalogue-wide checks
# ------------------------------------------------------------------------------------------


def test_every_table_has_row_level_security(shared_db: Conn) -> None:
    rows = shared_db.execute(
        """
        select n.nspname || '.' || c.relname, c.relrowsecurity from pg_class c
          join pg_namespace n on n.oid = c.relnamespace
         where n.nspname in ('public', 'private') and c.relkind in ('r', 'p')
         order by 1
        """
    ).fetchall()
    assert len(rows) >= 10
    assert [name for name, rls in rows if not rls] == []


def test_every_security_definer_function_pins_search_path(shared_db: Conn) -> None:
    rows = shared_db.execute(
        """
        select p.oid::regprocedure::text, p.proconfig from pg_proc p
          join pg_namespace n on n.oid = p.pronamespace
         where n.nspname in ('public', 'private') and p.prosecdef
        """
    ).fetchall()
    assert len(rows) > 30
    unpinned = [name for name, config in rows if 'search_path=""' not in (config or [])]
    assert unpinned == []


def executable(conn: Conn, role: str, schema: str) -> set[str]:
    """Names of the functions in ``schema`` that ``role`` may execute."""
    rows = conn.execute(
        """
        select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where n.nspname = %s and has_function_privilege(%s, p.oid, 'execute')
        """,
        (schema, role),
    ).fetchall()
    return {r[0] for r in rows}


def test_api_roles_execute_exactly_their_functions(shared_db: Conn) -> None:
    assert executable(shared_db, "anon", "public") == ANON_FUNCTIONS
    assert executable(shared_db, "authenticated", "public") == USER_FUNCTIONS
    assert executable(shared_db, "anon", "private") == set()
    assert executable(shared_db, "authenticated", "private") == USER_PRIVATE_FUNCTIONS
    everything = shared_db.execute(
        "select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname = 'public'"
    ).fetchone()
    assert everything is not None
    assert len(executable(shared_db, "service_role", "public")) == everything[0]


@pytest.mark.parametrize(("fn", "args"), USER_WRITES_THROUGH_FUNCTIONS)
def test_users_cannot_call_their_writes_around_the_functions(
    db: Conn, user: uuid.UUID, fn: str, args: tuple[object, ...]
) -> None:
    """A client calling create_job & co. over PostgREST would skip the rate limit, the
    idempotency key and routing: only the functions' service path may call them."""
    books = "select (select count(*) from public.credit_ledger), (select count(*) from public.jobs)"
    before = db.execute(books).fetchone()
    with raises_sqlstate("42501"):
        as_user(db, user, fn, *args)
    assert db.execute(books).fetchone() == before


def test_a_user_auth_does_not_know_is_refused_in_every_transaction(
    db: Conn, user: uuid.UUID
) -> None:
    """Claims whose `sub` is not in auth.users (deleted, or never issued) get VGU01."""
    stranger = uuid.uuid4()
    with raises_sqlstate("VGU01"):
        for_user(db, stranger, "service.initial_grant_claim")
    db.execute("update auth.users set deleted_at = now() where id = %s", (user,))
    with raises_sqlstate("VGU01"):
        for_user(db, user, "service.job_create", "reference/text-to-video", {})


@pytest.mark.parametrize(
    ("fn", "args"),
    [
        ("service.credits_purchase", (str(uuid.uuid4()), "tx", 10)),
        ("service.credits_grant", (str(uuid.uuid4()), 10, "g")),
        ("service.worker_register", ("w", "http://w", None, ["reference/text-to-video"])),
        ("service.worker_claim", (str(uuid.uuid4()),)),
        ("service.job_complete", (str(uuid.uuid4()), 1, "{}")),
        ("service.job_fail", (str(uuid.uuid4()), 1, "E", "e")),
        ("service.jobs_requeue_expired", ()),
        ("service.job_create_request", ({"principal": "p", "scope": "s", "hash": "h"}, "m")),
        ("service.request_refuse", ({"key": "k"}, 402, {}, True)),
        ("service.rate_limit_take", ("p", "b", 10)),
        ("private.webhook_receipt_record", ("id", "worker")),
        ("service.job_get_any", (str(uuid.uuid4()),)),
        ("service.workers_list", ()),
        ("service.prompt_template_get", ({"principal": "p"}, "reference/text-to-video")),
        ("service.admin_job_request", ({"principal": "p"}, "fail", str(uuid.uuid4()), "r")),
        ("service.prompt_template_change_request", ({"principal": "p"}, {"action": "activate"})),
        ("service.prompt_template_activate", (str(uuid.uuid4()),)),
        ("service.provider_key_get_for_job", (str(uuid.uuid4()), "fal")),
        ("service.provider_key_get_mine", ("fal",)),
    ],
)
def test_users_cannot_call_service_procedures(
    shared_db: Conn, fn: str, args: tuple[object, ...]
) -> None:
    with raises_sqlstate("42501"):
        as_user(shared_db, uuid.uuid4(), fn, *args)
    with raises_sqlstate("42501"):
        as_anon(shared_db, fn, *args)


# ------------------------------------------------------------------------------------------
# Reading
# ------------------------------------------------------------------------------------------


def test_anon_reads_only_available_models(db: Conn, user: uuid.UUID) -> None:
    create_job(db, user)
    for table in ("jobs", "profiles", "credit_ledger", "job_events", "workers"):
        with raises_sqlstate("42501"):
            select_as(db, "anon", None, f"select * from public.{table}")
    every = db.execute("select count(*) from public.models where is_available").fetchone()
    db.execute("update public.models set is_available = false where id = 'runway/gen4-turbo'")
    models = select_as(db, "anon", None, "select id from public.models")
    assert every is not None and len(models) == every[0] - 1 > 0
    assert ("runway/gen4-turbo",) not in models


def test_users_see_only_their_own_rows(db: Conn, user: uuid.UUID, other_user: uuid.UUID) -> None:
    dispatched_job(db, user)
    create_job(db, other_user)
    for table in ("jobs", "job_events", "credit_ledger"):
        mine = select_as(db, "authenticated", user, f"select distinct user_id from public.{table}")
        assert mine == [(user,)], table
    assert select_as(db, "authenticated", user, "select id from public.profiles") == [(user,)]
    assert select_as(db, "authenticated", user, "select count(*) from public.jobs") == [(1,)]


def test_users_cannot_read_workers_or_private_tables(db: Conn) -> None:
    register_worker(db)
    # Admins read workers by RLS (tests/db/test_prompts_admin.py); anyone else sees none.
    assert select_as(db, "authenticated", uuid.uuid4(), "select * from public.workers") == []
    for table in (
        "private.settings",
        "private.idempotency_keys",
        "private.rate_limits",
        "private.webhook_receipts",
        "private.webhook_signing_secrets",
    ):
        with raises_sqlstate("42501"):
            select_as(db, "authenticated", uuid.uuid4(), f"select * from {table}")


# ------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------


def test_users_may_rename_themselves_and_nothing_more(
    db: Conn, user: uuid.UUID, other_user: uuid.UUID
) -> None:
    with acting_as(db, "authenticated", user):
        renamed = db.execute(
            "update public.profiles set display_name = 'Ada' returning id"
        ).fetchall()
    assert renamed == [(user,)]
    with acting_as(db, "authenticated", user):
        others = db.execute(
            "update public.profiles set display_name = 'Eve' where id = %s", (other_user,)
        )
        assert others.rowcount == 0
    for column in ("balance", "reserved", "concurrent_job_limit", "initial_grant_claimed_at"):
        with raises_sqlstate("42501"):
            select_as(
                db,
                "authenticated",
                user,
                f"update public.profiles set {column} = {column} returning 1",
            )
    assert db.execute(
        "select display_name, balance from public.profiles where id = %s", (user,)
    ).fetchone() == ("Ada", 1000)


@pytest.mark.parametrize(
    "statement",
    [
        "insert into public.jobs (user_id, model_id, job_type, cost, max_attempts)"
        " values ('{uid}', 'reference/text-to-video', 'text_to_video', 0, 1) returning 1",
        "update public.jobs set status = 'completed', credits_used = 0 returning 1",
        "update public.jobs set cost = 0 returning 1",
        "delete from public.jobs returning 1",
        "insert into public.credit_ledger (user_id, kind, amount, balance_after, reserved_after,"
        " external_id) values ('{uid}', 'grant', 1000000, 1000000, 0, 'x') returning 1",
        "update public.credit_ledger set amount = 0 returning 1",
        "delete from public.credit_ledger returning 1",
        "insert into public.job_events (job_id, user_id, event, status, progress, attempt)"
        " select id, user_id, 'completed', 'completed', 100, 1 from public.jobs returning 1",
        "delete from public.job_events returning 1",
        "insert into public.profiles (id) values (gen_random_uuid()) returning 1",
        "delete from public.profiles returning 1",
        "update public.models set credits_base = 0 returning 1",
        "insert into private.settings values ('x', '1') returning 1",
    ],
)
def test_users_cannot_write_money_jobs_or_history(shared_db: Conn, statement: str) -> None:
    from db.helpers import create_user

    uid = create_user(shared_db, credits=100)
    create_job(shared_db, uid)
    with raises_sqlstate("42501"):
        select_as(shared_db, "authenticated", uid, statement.replace("{uid}", str(uid)))
    with raises_sqlstate("42501"):
        select_as(shared_db, "anon", None, statement.replace("{uid}", str(uid)))


# ------------------------------------------------------------------------------------------
# Realtime
# ------------------------------------------------------------------------------------------


def messages_as(conn: Conn, user_id: uuid.UUID | None, topic: str | None) -> list[tuple[str, str]]:
    """(topic, event) of the broadcasts a caller may receive while joining ``topic``."""
    with acting_as(conn, "authenticated" if user_id else "anon", user_id):
        if topic is not None:
            conn.execute("select set_config('realtime.topic', %s, true)", (topic,))
        rows = conn.execute(
            "select topic, event from realtime.messages order by inserted_at, event"
        ).fetchall()
    return [(str(t), str(e)) for t, e in rows]


def test_users_receive_only_their_own_jobs_topic(
    db: Conn, user: uuid.UUID, other_user: uuid.UUID
) -> None:
    dispatched_job(db, user)
    create_job(db, other_user)
    mine, theirs = f"user:{user}:jobs", f"user:{other_user}:jobs"

    own = messages_as(db, user, mine)
    assert sorted(e for _, e in own) == ["job_created", "job_dispatched"]
    assert {t for t, _ in own} == {mine}  # not the other user's, though both are broadcasts
    assert messages_as(db, user, theirs) == []
    assert messages_as(db, user, None) == []
    assert messages_as(db, other_user, theirs) == [(theirs, "job_created")]
    assert messages_as(db, None, mine) == []  # anon: no policy at all
