"""Prompt templates and the admin view as their callers meet them (sql/schema/15): an
admin (``app_metadata.role = 'admin'`` in the claims), a normal user, anon."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from db.helpers import (
    T2V,
    Conn,
    as_anon,
    as_service,
    as_user,
    assert_books_balance,
    call_sql,
    create_job,
    create_user,
    dispatched_job,
    for_user,
    job_row,
    ledger,
    profile,
    raises_sqlstate,
    register_worker,
    select_as,
)

ADMIN_META = {"provider": "email", "providers": ["email"], "role": "admin"}


def make_admin(conn: Conn) -> uuid.UUID:
    """A user whose raw_app_meta_data says admin (as `videogen admin grant` sets it)."""
    user_id = create_user(conn, credits=1000)
    conn.execute(
        "update auth.users set raw_app_meta_data = %s where id = %s",
        (json.dumps(ADMIN_META), user_id),
    )
    return user_id


def admin_claims(user_id: uuid.UUID, app_metadata: dict[str, Any] | None = None) -> str:
    return json.dumps(
        {"sub": str(user_id), "role": "authenticated", "app_metadata": app_metadata or ADMIN_META}
    )


@contextmanager
def as_claims(conn: Conn, role: str, claims: str) -> Iterator[Conn]:
    with conn.transaction():
        conn.execute(
            "select set_config('request.jwt.claims', %s, true), set_config('role', %s, true)",
            (claims, role),
        )
        yield conn


def admin_rpc(conn: Conn, user_id: uuid.UUID, fn: str, *args: Any, **kwargs: Any) -> Any:
    """An admin's read over PostgREST: role authenticated, the admin's claims."""
    query, params = call_sql(fn, args, kwargs)
    with as_claims(conn, "authenticated", admin_claims(user_id)) as c:
        row = c.execute(query, params).fetchone()
    return None if row is None else row[0]


def for_admin(conn: Conn, user_id: uuid.UUID, fn: str, *args: Any, **kwargs: Any) -> Any:
    """An admin's write as the functions send it: service_role carrying the admin's claims."""
    query, params = call_sql(fn, args, kwargs)
    with as_claims(conn, "service_role", admin_claims(user_id)) as c:
        c.execute("select private.require_known_user()")
        row = c.execute(query, params).fetchone()
    return None if row is None else row[0]


def select_as_admin(conn: Conn, user_id: uuid.UUID, query: str) -> list[tuple[Any, ...]]:
    with as_claims(conn, "authenticated", admin_claims(user_id)) as c:
        return c.execute(query).fetchall()


@pytest.fixture
def admin(db: Conn) -> uuid.UUID:
    return make_admin(db)


# ------------------------------------------------------------------------------------------
# Reading: RLS
# ------------------------------------------------------------------------------------------


def test_an_admin_reads_every_job_and_worker_others_only_their_own(
    db: Conn, admin: uuid.UUID, user: uuid.UUID, other_user: uuid.UUID
) -> None:
    theirs, worker_id = dispatched_job(db, other_user)
    mine = create_job(db, user)

    everyone = {r[0] for r in select_as_admin(db, admin, "select id::text from public.jobs")}
    assert everyone == {mine["id"], theirs["id"]}
    workers = select_as_admin(db, admin, "select id::text from public.workers")
    assert workers == [(worker_id,)]

    assert select_as(db, "authenticated", user, "select id::text from public.jobs") == [
        (mine["id"],)
    ]
    assert select_as(db, "authenticated", user, "select * from public.workers") == []
    with raises_sqlstate("42501"):
        select_as(db, "anon", None, "select * from public.workers")


def test_user_metadata_saying_admin_is_not_admin(db: Conn, user: uuid.UUID) -> None:
    """Only app_metadata counts: user_metadata is the user's to write."""
    create_job(db, user)
    claims = json.dumps(
        {"sub": str(user), "role": "authenticated", "user_metadata": {"role": "admin"}}
    )
    with as_claims(db, "authenticated", claims) as c, raises_sqlstate("VG403"):
        c.execute("select public.admin_list_jobs()")


def test_admin_list_jobs_pages_and_filters_everyones_jobs(
    db: Conn, admin: uuid.UUID, user: uuid.UUID, other_user: uuid.UUID
) -> None:
    first = create_job(db, user)
    second = create_job(db, other_user)
    page = admin_rpc(db, admin, "admin_list_jobs", p_limit=1)
    assert page["total"] == 2 and [j["id"] for j in page["items"]] == [second["id"]]
    of_user = admin_rpc(db, admin, "admin_list_jobs", p_user_id=user)
    assert [j["id"] for j in of_user["items"]] == [first["id"]]
    assert admin_rpc(db, admin, "admin_list_jobs", p_status="completed")["total"] == 0

    with raises_sqlstate("VG403"):
        as_user(db, user, "admin_list_jobs")
    with raises_sqlstate("VG403"):
        as_user(db, user, "admin_list_workers")
    with raises_sqlstate("VG403"):
        as_user(db, user, "prompt_templates_list")
    for fn in ("admin_list_jobs", "admin_list_workers", "prompt_templates_list"):
        with raises_sqlstate("42501"):
            as_anon(db, fn)


def test_a_normal_users_own_reads_do_not_change_for_an_admin(
    db: Conn, admin: uuid.UUID, user: uuid.UUID
) -> None:
    """An admin's own history stays their own: list_jobs filters by auth.uid()."""
    create_job(db, user)
    own = create_job(db, admin)
    page = admin_rpc(db, admin, "list_jobs")
    assert [j["id"] for j in page["items"]] == [own["id"]]


# ------------------------------------------------------------------------------------------
# Requeue and fail
# ------------------------------------------------------------------------------------------


def test_requeue_puts_a_stuck_job_back_without_counting_a_failure(
    db: Conn, admin: uuid.UUID, user: uuid.UUID
) -> None:
    job, worker_id = dispatched_job(db, user)
    as_service(db, "service.job_progress", job["id"], 1, 40)
    before = profile(db, user)

    done = for_admin(db, admin, "service.admin_job_requeue", job["id"], "worker hung")

    assert done["notify"]["worker_id"] == worker_id
    row = job_row(db, job["id"])
    assert row["status"] == "queued" and row["worker_id"] is None
    assert row["lease_expires_at"] is None and row["progress"] == 0
    assert row["attempt"] == 1 and row["failures"] == 0
    assert row["error_code"] == "ADMIN_REQUEUED" and row["error_message"] == "worker hung"
    assert profile(db, user) == before  # still reserved
    # The abandoned attempt's reports are stale; the next claim is attempt 2.
    late = as_service(db, "service.job_complete", job["id"], 1, {})
    assert late["applied"] is False
    again = as_service(db, "service.worker_claim", register_worker(db), 1)
    assert [(j["id"], j["attempt"]) for j in again] == [(job["id"], 2)]
    assert_books_balance(db, user)


def test_fail_releases_the_credits_once(db: Conn, admin: uuid.UUID, user: uuid.UUID) -> None:
    job, _ = dispatched_job(db, user)
    assert profile(db, user) == (1000 - job["cost"], job["cost"])

    for_admin(db, admin, "service.admin_job_fail", job["id"], "bad model output")

    row = job_row(db, job["id"])
    assert row["status"] == "failed" and row["error_code"] == "ADMIN_FAILED"
    assert row["finished_at"] is not None
    assert profile(db, user) == (1000, 0)
    with raises_sqlstate("VGJ09"):
        for_admin(db, admin, "service.admin_job_fail", job["id"], "again")
    with raises_sqlstate("VGJ09"):
        for_admin(db, admin, "service.admin_job_requeue", job["id"], "again")
    assert [k for k, _, _ in ledger(db, job["id"])] == ["reserve", "release"]
    assert_books_balance(db, user)


def test_only_admins_requeue_or_fail(db: Conn, user: uuid.UUID, other_user: uuid.UUID) -> None:
    job = create_job(db, other_user)
    for fn in ("service.admin_job_requeue", "service.admin_job_fail"):
        with raises_sqlstate("VG403"):
            for_user(db, user, fn, job["id"], "mine now")
        with raises_sqlstate("42501"):
            as_user(db, user, fn, job["id"], "mine now")
        with raises_sqlstate("42501"):
            as_anon(db, fn, job["id"], "mine now")
    assert job_row(db, job["id"])["status"] == "queued"
    # The secret key (the operator) may, as it may cancel.
    as_service(db, "service.admin_job_fail", job["id"], "operator")
    assert job_row(db, job["id"])["status"] == "failed"


def test_admin_job_request_stores_its_answer_for_the_key(
    db: Conn, admin: uuid.UUID, user: uuid.UUID
) -> None:
    job = create_job(db, user)
    request = {
        "principal": f"user:{admin}",
        "scope": "queue-job:POST",
        "bucket": "queue-job",
        "limit": 10,
        "key": "k1",
        "hash": "h",
    }
    first = for_admin(db, admin, "service.admin_job_request", request, "fail", job["id"], "stuck")
    assert first["status"] == 200 and first["data"]["job"]["status"] == "failed"
    assert first["data"]["action"] == "fail" and "running" in first
    replay = for_admin(db, admin, "service.admin_job_request", request, "fail", job["id"], "stuck")
    assert replay["replayed"] is True and replay["body"]["data"] == first["data"]
    assert [k for k, _, _ in ledger(db, job["id"])] == ["reserve", "release"]


# ------------------------------------------------------------------------------------------
# Templates
# ------------------------------------------------------------------------------------------


def active_template(db: Conn, job_type: str) -> dict[str, Any]:
    request = {"principal": "p", "bucket": "queue-job", "limit": None}
    result: dict[str, Any] = as_service(
        db, "service.prompt_template_get", request, p_job_type=job_type
    )
    return result


def test_every_job_type_has_an_active_template_the_service_reads(db: Conn, user: uuid.UUID) -> None:
    types = [r[0] for r in db.execute("select unnest(enum_range(null::public.job_type))::text")]
    for job_type in types:
        template = active_template(db, job_type)
        assert template["active"] is True and template["version"] == 1, job_type
    request = {"principal": f"user:{user}", "bucket": "queue-job", "limit": 2}
    by_model = for_user(db, user, "service.prompt_template_get", request, T2V)
    assert by_model["job_type"] == "text_to_video"
    with raises_sqlstate("VGM04"):
        for_user(db, user, "service.prompt_template_get", request, "nobody/none")
    with raises_sqlstate("VGP22"):
        for_user(db, user, "service.prompt_template_get", request)
    # It takes the caller's rate-limit slot like a write (refusals roll theirs back): 2.
    for_user(db, user, "service.prompt_template_get", request, p_job_type="script")
    with raises_sqlstate("VGR29"):
        for_user(db, user, "service.prompt_template_get", request, T2V)


def test_an_admin_saves_a_new_version_and_rolls_back(db: Conn, admin: uuid.UUID) -> None:
    first = active_template(db, "text_to_video")
    hints = {"max_chars": 300, "cues": [{"kind": "style", "text": "in watercolor"}]}
    saved = for_admin(
        db,
        admin,
        "service.prompt_template_save",
        "text_to_video",
        "  Make it vivid.  ",
        hints,
        "v2",
    )
    assert saved["version"] == 2 and saved["active"] is True
    assert saved["instruction"] == "Make it vivid." and saved["updated_by"] == str(admin)
    assert active_template(db, "text_to_video")["id"] == saved["id"]

    draft = for_admin(
        db, admin, "service.prompt_template_save", "text_to_video", "Draft.", p_activate=False
    )
    assert draft["version"] == 3 and draft["active"] is False
    assert active_template(db, "text_to_video")["id"] == saved["id"]

    back = for_admin(db, admin, "service.prompt_template_activate", first["id"])
    assert back["active"] is True and back["updated_by"] == str(admin)
    assert active_template(db, "text_to_video")["id"] == first["id"]

    history = admin_rpc(db, admin, "prompt_templates_list", p_job_type="text_to_video")
    assert [(t["version"], t["active"]) for t in history] == [(3, False), (2, False), (1, True)]
    assert select_as_admin(db, admin, "select count(*) from public.prompt_templates")[0][0] >= 7


def test_versions_are_never_rewritten_or_deleted(db: Conn) -> None:
    with raises_sqlstate("VGJ09"):
        db.execute("update public.prompt_templates set instruction = 'x'")
    with raises_sqlstate("VGJ09"):
        db.execute("delete from public.prompt_templates")
    with raises_sqlstate("23514"):
        db.execute(
            "insert into public.prompt_templates (job_type, version, instruction, hints) "
            "values ('script', 9, 'x', '{\"cues\": [{\"kind\": 1}]}')"
        )


def test_only_admins_change_or_read_templates(db: Conn, user: uuid.UUID) -> None:
    with raises_sqlstate("VG403"):
        for_user(db, user, "service.prompt_template_save", "script", "Mine.")
    t = active_template(db, "script")
    with raises_sqlstate("VG403"):
        for_user(db, user, "service.prompt_template_activate", t["id"])
    with raises_sqlstate("42501"):
        as_user(db, user, "service.prompt_template_save", "script", "Mine.")
    assert select_as(db, "authenticated", user, "select * from public.prompt_templates") == []
    with raises_sqlstate("42501"):
        select_as(db, "anon", None, "select * from public.prompt_templates")
    with raises_sqlstate("42501"), as_claims(db, "authenticated", admin_claims(user)) as c:
        c.execute(
            "insert into public.prompt_templates (job_type, version, instruction)"
            " values ('script', 5, 'direct')"
        )
    with raises_sqlstate("VGT04"):
        as_service(db, "service.prompt_template_activate", str(uuid.uuid4()))


def test_prompt_template_request_creates_and_activates(db: Conn, admin: uuid.UUID) -> None:
    request = {"principal": f"user:{admin}", "scope": "s", "bucket": "queue-job", "hash": "h"}
    created = for_admin(
        db,
        admin,
        "service.prompt_template_change_request",
        request,
        {"action": "create", "job_type": "compose", "instruction": "Brief it.", "activate": False},
    )
    assert created["status"] == 201 and created["data"]["version"] == 2
    activated = for_admin(
        db,
        admin,
        "service.prompt_template_change_request",
        request,
        {"action": "activate", "id": created["data"]["id"]},
    )
    assert activated["status"] == 200 and activated["data"]["active"] is True


# ------------------------------------------------------------------------------------------
# Jobs keep both prompts
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "params"),
    [
        (T2V, {}),
        ("reference/image-to-video", {"image_path": "{uid}/still.png"}),
        ("reference/compose", {}),
    ],
)
def test_every_job_type_keeps_the_original_prompt(
    db: Conn, user: uuid.UUID, model: str, params: dict[str, Any]
) -> None:
    exists = db.execute("select 1 from public.models where id = %s", (model,)).fetchone()
    if exists is None:
        pytest.skip(f"{model} is not in the seed")
    params = {k: v.format(uid=user) for k, v in params.items()}
    job = create_job(
        db, user, model, {**params, "prompt": "a boat, slow dolly-in", "original_prompt": "a boat"}
    )
    assert job["params"]["original_prompt"] == "a boat"
    assert job["params"]["prompt"] == "a boat, slow dolly-in"


@pytest.mark.parametrize(
    "params",
    [
        {"original_prompt": "a boat"},
        {"prompt": "p", "original_prompt": " "},
        {"prompt": "p", "original_prompt": 3},
    ],
)
def test_original_prompt_goes_with_a_prompt(
    db: Conn, user: uuid.UUID, params: dict[str, Any]
) -> None:
    with raises_sqlstate("VGP22"):
        create_job(db, user, T2V, params)
