"""create_job and cancel_job as users meet them: validation, price, limits, money."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from db.helpers import (
    FAL,
    I2V,
    RUNPOD,
    T2V,
    Conn,
    as_anon,
    as_service,
    assert_books_balance,
    create_job,
    create_user,
    dispatched_job,
    for_user,
    job_row,
    ledger,
    profile,
    raises_sqlstate,
)
from psycopg.types.json import Jsonb

# ------------------------------------------------------------------------------------------
# create_job
# ------------------------------------------------------------------------------------------


def test_create_job_queues_prices_and_reserves(db: Conn, user: uuid.UUID) -> None:
    job = create_job(db, user, T2V, {"prompt": "a red fox"})
    # Defaults: 5 s, 16:9, 720p → ceil((2 + 1 x 5) x 1.5) = 11.
    assert job["status"] == "queued"
    assert job["cost"] == 11
    assert job["params"] == {
        "prompt": "a red fox",
        "duration": 5,
        "aspect_ratio": "16:9",
        "resolution": "720p",
    }
    assert job["job_type"] == "text_to_video"
    assert job["provider"] == "reference"
    assert (job["attempt"], job["failures"], job["max_attempts"]) == (0, 0, 3)
    assert job["queue_position"] == 1
    assert "provider_job_id" not in job
    assert job["user_id"] == str(user)

    assert profile(db, user) == (989, 11)
    assert ledger(db, job["id"]) == [("reserve", -11, 11)]
    events = db.execute(
        "select event, status::text from public.job_events where job_id = %s", (job["id"],)
    ).fetchall()
    assert events == [("created", "queued")]
    assert create_job(db, user, T2V)["queue_position"] == 2
    assert_books_balance(db, user)


@pytest.mark.parametrize(
    ("model", "params", "cost"),
    [
        (T2V, {"duration": 10, "resolution": "1080p"}, 30),  # (2 + 10) x 2.5
        (T2V, {"duration": 3, "resolution": "480p"}, 5),  # (2 + 3) x 1
        (T2V, {"duration": 1, "resolution": "720p"}, 5),  # ceil(4.5)
        (RUNPOD, {"duration": 2, "resolution": "480p"}, 18),  # 10 + 4 x 2
        (FAL, {"duration": 10, "resolution": "720p"}, 150),  # (20 + 80) x 1.5 (720p only)
        ("replicate/minimax-video-01", {}, 38),  # 6 s fixed, 720p only: ceil(25 x 1.5)
    ],
)
def test_price_follows_the_model_rule(
    shared_db: Conn, model: str, params: dict[str, Any], cost: int
) -> None:
    uid = create_user(shared_db, credits=1000)
    assert create_job(shared_db, uid, model, params)["cost"] == cost
    assert profile(shared_db, uid) == (1000 - cost, cost)


def _bad_requests(uid: uuid.UUID) -> list[tuple[str, Any, str]]:
    """(model, params, expected SQLSTATE) that create_job must refuse."""
    other = uuid.uuid4()
    return [
        ("no/such-model", {}, "VGM04"),
        (T2V, {"duration": 0}, "VGP22"),
        (T2V, {"duration": 31}, "VGP22"),
        (T2V, {"duration": "five"}, "VGP22"),
        (T2V, {"duration": 2.5}, "VGP22"),
        (T2V, {"aspect_ratio": "4:3"}, "VGP22"),
        (T2V, {"resolution": "4k"}, "VGP22"),
        (RUNPOD, {"resolution": "1080p"}, "VGP22"),
        (I2V, {}, "VGP22"),  # needs an image
        (I2V, {"image_path": ""}, "VGP22"),
        (I2V, {"image_path": f"{other}/still.png"}, "VGP22"),  # someone else's folder
        (I2V, {"image_path": "still.png"}, "VGP22"),
        (I2V, {"image_path": f"{uid}/../{other}/still.png"}, "VGP22"),  # climbing out
        (I2V, {"image_path": f"{uid}//still.png"}, "VGP22"),
        (T2V, Jsonb(["not", "an", "object"]), "VGP22"),
        # Each job type takes its own params: nothing to forward to workers or providers.
        (T2V, {"callback_url": "https://evil.example/"}, "VGP22"),
        (T2V, {"webhook": "https://evil.example/"}, "VGP22"),
        (T2V, {"image_path": f"{uid}/still.png"}, "VGP22"),  # not an image-to-video model
        (T2V, {"script": {"title": "t", "sections": []}}, "VGP22"),  # compose only
        ("reference/compose", {"seed": 1}, "VGP22"),
        ("reference/compose", {"prompt": "x" * 70_000}, "VGP22"),  # over 64 KiB
    ]


def test_create_job_refuses_bad_requests_with_their_code(shared_db: Conn) -> None:
    uid = create_user(shared_db, credits=1000)
    for model, params, code in _bad_requests(uid):
        with raises_sqlstate(code, case=(model, params)):
            for_user(shared_db, uid, "service.job_create", model, params)
    with raises_sqlstate("VGP22"):
        for_user(shared_db, uid, "service.job_create", T2V, {}, 101)  # priority
    assert profile(shared_db, uid) == (1000, 0)
    assert shared_db.execute(
        "select count(*) from public.jobs where user_id = %s", (uid,)
    ).fetchone() == (0,)


def test_image_in_own_folder_is_accepted(db: Conn, user: uuid.UUID) -> None:
    job = create_job(db, user, I2V, {"image_path": f"{user}/uploads/still.png"})
    assert job["params"]["image_path"] == f"{user}/uploads/still.png"
    assert job["job_type"] == "image_to_video"


def test_unavailable_model_is_refused(db: Conn, user: uuid.UUID) -> None:
    db.execute("update public.models set is_available = false where id = %s", (T2V,))
    with raises_sqlstate("VGM03"):
        create_job(db, user, T2V)


def test_concurrent_job_limit(db: Conn) -> None:
    uid = create_user(db, credits=1000, job_limit=2)
    first = create_job(db, uid)
    create_job(db, uid)
    with raises_sqlstate("VGJ29"):
        create_job(db, uid)
    for_user(db, uid, "service.job_cancel", first["id"])
    create_job(db, uid)  # a finished job frees its slot
    assert db.execute("select count(*) from public.jobs where user_id = %s", (uid,)).fetchone() == (
        3,
    )


def test_insufficient_credits_leave_no_trace(db: Conn) -> None:
    uid = create_user(db, credits=10)
    with raises_sqlstate("VG402") as info:
        create_job(db, uid)  # costs 11
    assert info.value.diag.message_hint == "Buy credits or claim the initial grant."
    # What a client shows: "you need 11, you have 10".
    assert json.loads(info.value.diag.message_detail or "") == {
        "required": 11,
        "balance": 10,
        "reserved": 0,
    }
    assert "needs 11, you have 10" in (info.value.diag.message_primary or "")
    assert profile(db, uid) == (10, 0)
    counts = db.execute(
        """
        select (select count(*) from public.jobs where user_id = %(u)s),
               (select count(*) from public.job_events where user_id = %(u)s),
               (select count(*) from public.credit_ledger where user_id = %(u)s),
               (select count(*) from realtime.messages where topic = 'user:' || %(u)s || ':jobs')
        """,
        {"u": str(uid)},
    ).fetchone()
    assert counts == (0, 0, 1, 0)  # the grant only
    create_job(db, uid, T2V, {"duration": 1, "resolution": "480p"})  # costs 3: fits
    assert profile(db, uid) == (7, 3)


def test_create_job_needs_a_signed_in_user(shared_db: Conn) -> None:
    with raises_sqlstate("42501"):
        as_anon(shared_db, "service.job_create", T2V, {})
    with raises_sqlstate("VG403"), shared_db.transaction():
        shared_db.execute(
            "select set_config('request.jwt.claims', '{\"role\": \"authenticated\"}', true),"
            " set_config('role', 'service_role', true)"
        )
        shared_db.execute("select service.job_create('reference/text-to-video')")


# ------------------------------------------------------------------------------------------
# cancel_job
# ------------------------------------------------------------------------------------------


def test_owner_cancels_and_gets_credits_back_once(db: Conn, user: uuid.UUID) -> None:
    job = create_job(db, user)
    result = for_user(db, user, "service.job_cancel", job["id"])
    assert result["job"]["status"] == "canceled"
    assert result["job"]["error_code"] == "CANCELED"
    assert result["job"]["queue_position"] is None
    assert result["notify"] is None
    assert profile(db, user) == (1000, 0)
    assert ledger(db, job["id"]) == [("reserve", -11, 11), ("release", 11, -11)]

    with raises_sqlstate("VGJ09"):
        for_user(db, user, "service.job_cancel", job["id"])
    assert ledger(db, job["id"]) == [("reserve", -11, 11), ("release", 11, -11)]
    assert_books_balance(db, user)


def test_only_the_owner_may_cancel(db: Conn, user: uuid.UUID, other_user: uuid.UUID) -> None:
    job = create_job(db, user)
    with raises_sqlstate("VGJ04"):
        for_user(db, other_user, "service.job_cancel", job["id"])
    with raises_sqlstate("VGJ04"):
        for_user(db, user, "service.job_cancel", str(uuid.uuid4()))
    with raises_sqlstate("42501"):
        as_anon(db, "service.job_cancel", job["id"])
    assert job_row(db, job["id"])["status"] == "queued"


def test_service_cancels_any_job_and_learns_whom_to_tell(db: Conn, user: uuid.UUID) -> None:
    job, worker_id = dispatched_job(db, user)
    result = as_service(db, "service.job_cancel", job["id"])
    assert result["job"]["status"] == "canceled"
    assert result["notify"]["worker_id"] == worker_id
    assert result["notify"]["url"].startswith("http://")
    assert result["provider"] == "reference"
    assert profile(db, user) == (1000, 0)


@pytest.mark.parametrize("finish", ["complete", "fail"])
def test_finished_jobs_cannot_be_canceled(db: Conn, user: uuid.UUID, finish: str) -> None:
    job, _ = dispatched_job(db, user)
    if finish == "complete":
        as_service(db, "service.job_complete", job["id"], 1, {"video": "v.mp4"}, 4)
    else:
        as_service(db, "service.job_fail", job["id"], 1, "BAD", "bad prompt", False)
    before = ledger(db, job["id"])
    with raises_sqlstate("VGJ09"):
        for_user(db, user, "service.job_cancel", job["id"])
    assert ledger(db, job["id"]) == before
    assert_books_balance(db, user)


@pytest.mark.books_unbalanced  # the queue is written straight into jobs, without reserves
def test_queue_position_is_exact_to_100_and_then_says_more(db: Conn) -> None:
    """Counting stops at 100 jobs ahead, so a create costs the same with a long queue."""
    users = [create_user(db, credits=1000) for _ in range(3)]
    db.execute(
        """
        insert into public.jobs (user_id, model_id, job_type, params, priority, cost,
                                 max_attempts, provider, created_at)
        select %s, %s, 'text_to_video', '{}', case when i <= 30 then 5 else 0 end, 1, 1,
               'reference', now() - interval '1 hour' + i * interval '1 second'
          from generate_series(1, 150) i
        """,
        (users[0], T2V),
    )
    newest = create_job(db, users[1], T2V)
    assert newest["queue_position"] == 101  # 150 ahead: "more than 100"
    db.execute("update public.profiles set tier = 'premium' where id = %s", (users[2],))
    urgent = for_user(db, users[2], "service.job_create", T2V, {}, 9)  # premium: up to 50
    assert urgent["queue_position"] == 1  # nobody of a higher priority ahead
    tenth = db.execute(
        "select private.queue_position(j) from public.jobs j where j.user_id = %s"
        " order by priority desc, created_at limit 1 offset 9",
        (users[0],),
    ).fetchone()
    assert tenth == (11,)  # the urgent job, then nine of priority 5
