"""The webhook outbox in SQL (module 22): rows written by the jobs trigger in the change's
transaction, claimed with SKIP LOCKED and a lease, attempts recorded once by their holder,
retries with backoff, given up at the bounds; deadlines canceled by the sweep."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from db.helpers import (
    Conn,
    as_service,
    as_user,
    assert_books_balance,
    dispatched_job,
    for_user,
    job_row,
    profile,
    raises_sqlstate,
    select_as,
)

HOOK = "https://hooks.example.com/videogen"
T2V = "reference/text-to-video"


def job_with_hook(conn: Conn, user: uuid.UUID, **delivery: Any) -> dict[str, Any]:
    options = {"webhook": HOOK, **delivery}
    job: dict[str, Any] = for_user(
        conn, user, "service.job_create", T2V, {"prompt": "a cat"}, p_delivery=options
    )
    return job


def deliveries(conn: Conn, job_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        "select to_jsonb(d) from public.webhook_deliveries d where job_id = %s order by created_at",
        (job_id,),
    ).fetchall()
    return [r[0] for r in rows]


def claim(conn: Conn, limit: int = 10, lease: int = 60) -> list[dict[str, Any]]:
    claimed: list[dict[str, Any]] = as_service(
        conn, "service.webhook_deliveries_claim", limit, lease
    )
    return claimed


def record(conn: Conn, row: dict[str, Any], status: int | None, error: str | None = None) -> Any:
    return as_service(
        conn, "service.webhook_delivery_record", row["id"], row["attempt"], status, error, 12
    )


def test_only_subscribed_events_become_deliveries_in_the_same_transaction(
    db: Conn, user: uuid.UUID
) -> None:
    job = job_with_hook(db, user)
    assert job["webhook_events"] == ["canceled", "completed", "failed"]
    assert deliveries(db, job["id"]) == []  # "created" and "queued" are not subscribed
    # A cancel that rolls back leaves no delivery; one that commits leaves exactly one.
    try:
        with db.transaction():
            for_user(db, user, "service.job_cancel", job["id"])
            assert len(deliveries(db, job["id"])) == 1
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    assert deliveries(db, job["id"]) == []
    for_user(db, user, "service.job_cancel", job["id"])
    (row,) = deliveries(db, job["id"])
    assert (row["event"], row["url"], row["status"]) == ("canceled", HOOK, "pending")
    assert_books_balance(db, user)


def test_started_and_throttled_progress(db: Conn, user: uuid.UUID) -> None:
    job, _ = dispatched_job(db, user)
    db.execute(
        "update public.jobs set webhook = %s, webhook_events = '{started,progress}' where id = %s",
        (HOOK, job["id"]),
    )
    attempt = job["attempt"]
    as_service(db, "service.job_start", job["id"], attempt)
    for pct in (10, 20, 30):  # within 500 ms of each other: one progress delivery
        as_service(db, "service.job_progress", job["id"], attempt, pct, None)
    events = [d["event"] for d in deliveries(db, job["id"])]
    assert events == ["started", "progress"]


def test_claims_skip_locked_rows_and_leases_hide_them(
    db_url: str, db: Conn, user: uuid.UUID
) -> None:
    first, second = (job_with_hook(db, user) for _ in range(2))
    for job in (first, second):
        for_user(db, user, "service.job_cancel", job["id"])
    with psycopg.connect(db_url) as other:
        # Another drainer holds one row's lock mid-claim: this claim skips it.
        other.execute(
            "select 1 from public.webhook_deliveries where job_id = %s for update", (first["id"],)
        )
        claimed = claim(db)
        assert [c["job_id"] for c in claimed] == [second["id"]]
        other.rollback()
    (rest,) = claim(db)  # the leased one is hidden until its lease runs out
    assert rest["job_id"] == first["id"] and rest["attempt"] == 1
    assert rest["secret"].startswith("whsec_") and rest["job"]["status"] == "canceled"
    assert rest["job"]["events"][-1]["status"] == "canceled"  # as GET ?id= answers it
    assert claim(db) == []


def test_a_crashed_sender_loses_nothing_and_a_late_record_changes_nothing(
    db: Conn, user: uuid.UUID
) -> None:
    job = job_with_hook(db, user)
    for_user(db, user, "service.job_cancel", job["id"])
    (held,) = claim(db, lease=5)
    # The holder died: its lease runs out and the row is claimed again, same id.
    db.execute("update public.webhook_deliveries set lease_expires_at = now() - interval '1 s'")
    (again,) = claim(db)
    assert again["id"] == held["id"] and again["attempt"] == 2
    late = record(db, held, 200)
    assert late["applied"] is False  # not the holder of the current attempt
    done = record(db, again, 204)
    assert done["applied"] is True and done["delivery"]["status"] == "delivered"
    assert record(db, again, 200)["applied"] is False  # delivered once
    assert claim(db) == []
    attempts = db.execute(
        "select attempt, status_code from public.webhook_delivery_attempts"
        " where delivery_id = %s order by attempt",
        (held["id"],),
    ).fetchall()
    assert attempts == [(2, 204)]


def test_failures_back_off_then_give_up(db: Conn, user: uuid.UUID) -> None:
    db.execute("update private.settings set value = '3' where name = 'webhook_max_attempts'")
    job = job_with_hook(db, user)
    for_user(db, user, "service.job_cancel", job["id"])
    waits = []
    for attempt in (1, 2, 3):
        db.execute(
            "update public.webhook_deliveries set next_attempt_at = now() where status = 'pending'"
        )
        (row,) = claim(db)
        assert row["attempt"] == attempt
        result = record(db, row, None if attempt == 2 else 500, "boom")
        delivery = result["delivery"]
        if attempt < 3:
            assert delivery["status"] == "pending"
            wait = db.execute(
                "select extract(epoch from next_attempt_at - now()) from"
                " public.webhook_deliveries where id = %s",
                (row["id"],),
            ).fetchone()
            assert wait is not None
            waits.append(float(wait[0]))
        else:
            assert delivery["status"] == "failed" and delivery["next_attempt_at"] is None
    assert 4 <= waits[0] <= 5 and 19 <= waits[1] <= 20  # 5 s, then 4 times longer
    assert claim(db) == []


def test_owners_read_their_deliveries_and_nobody_writes_them(
    db: Conn, user: uuid.UUID, other_user: uuid.UUID
) -> None:
    job = job_with_hook(db, user)
    for_user(db, user, "service.job_cancel", job["id"])
    (row,) = claim(db)
    record(db, row, 500, "HTTP 500")
    page = as_user(db, user, "list_webhook_deliveries")
    assert page["total"] == 1
    (item,) = page["items"]
    assert item["attempts_log"][0]["status_code"] == 500 and "user_id" not in item
    assert as_user(db, other_user, "list_webhook_deliveries")["total"] == 0
    assert (
        select_as(db, "authenticated", other_user, "select * from public.webhook_deliveries") == []
    )
    with raises_sqlstate("42501"):
        select_as(
            db, "authenticated", user, "update public.webhook_deliveries set url = 'https://x.y/'"
        )
    with raises_sqlstate("42501"):
        select_as(db, "authenticated", user, "select * from private.webhook_signing_secrets")


def test_ended_deliveries_are_dropped_after_retention(db: Conn, user: uuid.UUID) -> None:
    old, pending = (job_with_hook(db, user) for _ in range(2))
    for job in (old, pending):
        for_user(db, user, "service.job_cancel", job["id"])
    (row,) = [c for c in claim(db) if c["job_id"] == old["id"]]
    record(db, row, 200)
    db.execute("update public.webhook_deliveries set created_at = now() - interval '31 days'")
    assert as_service(db, "service.requests_clean_up")["webhook_deliveries"] == 1
    assert deliveries(db, old["id"]) == []
    assert [d["status"] for d in deliveries(db, pending["id"])] == ["pending"]  # still to send


def test_delivery_options_are_checked(db: Conn, user: uuid.UUID) -> None:
    for bad in (
        {"webhook_events": ["completed"]},
        {"webhook": "ftp://x.example/"},
        {"webhook": HOOK, "webhook_events": ["done"]},
        {"cancel_after_seconds": 0},
        {"cancel_after_seconds": "10"},
        {"surprise": 1},
    ):
        with raises_sqlstate("VGP22"):
            for_user(db, user, "service.job_create", T2V, {"prompt": "x"}, p_delivery=bad)
    assert profile(db, user) == (1000, 0)


def test_the_sweep_cancels_overdue_jobs_and_releases_their_credits(
    db: Conn, user: uuid.UUID
) -> None:
    running, worker_id = dispatched_job(db, user)
    job = for_user(
        db,
        user,
        "service.job_create",
        T2V,
        {"prompt": "x"},
        p_delivery={"cancel_after_seconds": 60},
    )
    assert job["deadline_at"] is not None
    db.execute(
        "update public.jobs set deadline_at = now() + interval '1 hour' where id = %s",
        (job["id"],),
    )
    assert as_service(db, "service.jobs_cancel_overdue")["canceled"] == 0
    db.execute(
        "update public.jobs set deadline_at = now() - interval '1 second' where id in (%s, %s)",
        (job["id"], running["id"]),
    )
    swept = as_service(db, "service.jobs_cancel_overdue")
    assert swept["canceled"] == 2
    (told,) = swept["running"]  # the queued job had nobody to tell
    assert told["job"]["id"] == running["id"] and told["notify"]["worker_id"] == worker_id
    for job_id in (job["id"], running["id"]):
        row = job_row(db, job_id)
        assert (row["status"], row["error_code"]) == ("canceled", "DEADLINE")
    assert profile(db, user) == (1000, 0)
    assert_books_balance(db, user)
    assert as_service(db, "service.jobs_cancel_overdue")["canceled"] == 0  # once


def test_an_erased_account_keeps_no_webhook_url_delivery_or_secret(
    db: Conn, user: uuid.UUID
) -> None:
    job = job_with_hook(db, user)
    for_user(db, user, "service.job_cancel", job["id"])
    assert len(deliveries(db, job["id"])) == 1
    erase = {
        "principal": f"user:{user}",
        "scope": "update-credits:DELETE",
        "bucket": "update-credits",
        "limit": None,
        "key": None,
        "hash": "",
    }
    for_user(db, user, "service.account_erase", erase)
    assert job_row(db, job["id"])["webhook"] is None
    assert deliveries(db, job["id"]) == []
    secrets = db.execute(
        "select count(*) from private.webhook_signing_secrets where user_id = %s", (user,)
    ).fetchone()
    assert secrets == (0,)
