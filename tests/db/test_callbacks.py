"""Worker callbacks and the lease sweep: started, progress, completed, failed, expired."""

from __future__ import annotations

import math
import uuid

import pytest
from db.helpers import (
    Conn,
    as_service,
    assert_books_balance,
    claim,
    dispatched_job,
    expire_lease,
    job_row,
    ledger,
    make_due,
    profile,
    raises_sqlstate,
)
from psycopg.types.json import Jsonb


def seconds_until(conn: Conn, job_id: str, column: str) -> float:
    """Seconds from now to a job's timestamp column."""
    assert column in ("run_after", "lease_expires_at")
    row = conn.execute(
        f"select extract(epoch from {column} - now()) from public.jobs where id = %s", (job_id,)
    ).fetchone()
    assert row is not None
    return float(row[0])


# ------------------------------------------------------------------------------------------
# started / progress
# ------------------------------------------------------------------------------------------


def test_start_then_duplicate_then_stale(db: Conn, user: uuid.UUID) -> None:
    job, _ = dispatched_job(db, user)
    started = as_service(db, "service.job_start", job["id"], 1)
    assert started["applied"] is True
    assert started["job"]["status"] == "processing"
    assert started["job"]["started_at"] is not None

    dup = as_service(db, "service.job_start", job["id"], 1)
    assert (dup["applied"], dup["reason"], dup["job"]["status"]) == (
        False,
        "duplicate",
        "processing",
    )
    stale = as_service(db, "service.job_start", job["id"], 2)
    assert (stale["applied"], stale["reason"]) == (False, "stale_attempt")
    with raises_sqlstate("VGJ04"):
        as_service(db, "service.job_start", str(uuid.uuid4()), 1)


def test_progress_only_moves_forward_and_extends_the_lease(db: Conn, user: uuid.UUID) -> None:
    job, _ = dispatched_job(db, user)
    first = as_service(db, "service.job_progress", job["id"], 1, 30, "rendering")
    assert first["applied"] is True
    assert (first["job"]["status"], first["job"]["progress"]) == ("processing", 30)
    assert first["job"]["progress_message"] == "rendering"

    db.execute(
        "update public.jobs set lease_expires_at = now() + interval '2 seconds' where id = %s",
        (job["id"],),
    )
    back = as_service(db, "service.job_progress", job["id"], 1, 20)
    assert (back["applied"], back["reason"]) == (False, "not_newer")
    assert as_service(db, "service.job_progress", job["id"], 1, 30)["applied"] is False
    on = as_service(db, "service.job_progress", job["id"], 1, 60)
    assert (on["job"]["progress"], on["job"]["progress_message"]) == (60, "rendering")
    assert seconds_until(db, job["id"], "lease_expires_at") > 50

    for bad in (-1, 101):
        with raises_sqlstate("VG400"):
            as_service(db, "service.job_progress", job["id"], 1, bad)
    assert as_service(db, "service.job_progress", job["id"], 7, 90)["reason"] == "stale_attempt"
    assert job_row(db, job["id"])["progress"] == 60


# ------------------------------------------------------------------------------------------
# completed
# ------------------------------------------------------------------------------------------


def test_complete_captures_what_was_used_and_releases_the_rest(db: Conn, user: uuid.UUID) -> None:
    job, _ = dispatched_job(db, user)  # costs 11
    done = as_service(db, "service.job_complete", job["id"], 1, {"video_path": f"{user}/x.mp4"}, 8)
    assert done["applied"] is True
    j = done["job"]
    assert (j["status"], j["progress"], j["credits_used"]) == ("completed", 100, 8)
    assert j["output"] == {"video_path": f"{user}/x.mp4"}
    assert j["finished_at"] is not None and j["lease_expires_at"] is None
    assert ledger(db, job["id"]) == [("reserve", -11, 11), ("capture", 0, -8), ("release", 3, -3)]
    assert profile(db, user) == (992, 0)

    again = as_service(db, "service.job_complete", job["id"], 1, {"video_path": f"{user}/y.mp4"}, 1)
    assert (again["applied"], again["reason"]) == (False, "stale_attempt")
    assert job_row(db, job["id"])["output"] == {"video_path": f"{user}/x.mp4"}
    assert len(ledger(db, job["id"])) == 3
    assert_books_balance(db, user)


@pytest.mark.parametrize(
    ("used", "rows"),
    [
        (None, [("reserve", -11, 11), ("capture", 0, -11)]),  # default: all of it
        (0, [("reserve", -11, 11), ("release", 11, -11)]),  # free after all
    ],
)
def test_complete_default_and_free(
    db: Conn, user: uuid.UUID, used: int | None, rows: list[tuple[str, int, int]]
) -> None:
    job, _ = dispatched_job(db, user)
    as_service(db, "service.job_complete", job["id"], 1, {}, used)
    assert ledger(db, job["id"]) == rows
    assert_books_balance(db, user)


def pro_rata(cost: int, params: dict[str, object], rendered_s: float) -> int:
    """The rule as the services computed it in Python before the database did."""
    requested = max(float(params.get("duration", rendered_s)), 1.0)  # type: ignore[arg-type]
    return min(cost, math.ceil(cost * min(1.0, rendered_s / requested)))


@pytest.mark.parametrize("cost", [0, 1, 7, 11, 12, 30, 97, 1000])
@pytest.mark.parametrize("duration", [None, 0.5, 1, 3, 5, 7.5, 10, 12.34])
def test_the_pro_rata_rule_gives_the_numbers_python_gave(
    shared_db: Conn, cost: int, duration: float | None
) -> None:
    params = {} if duration is None else {"duration": duration}
    seconds = [0.0, 0.001, 0.3, 1.0, 2.9999, 3.3, 4.999, 5.0, 5.001, 7.2, 9.87654321, 10.0, 30.0]
    rows = shared_db.execute(
        "select s, private.credits_pro_rata(jsonb_populate_record(null::public.jobs, %s), s)"
        " from unnest(%s::float8[]) s",
        (Jsonb({"cost": cost, "params": params}), seconds),
    ).fetchall()
    assert [(s, used) for s, used in rows] == [(s, pro_rata(cost, params, s)) for s in seconds]


def test_a_report_of_rendered_seconds_captures_pro_rata(db: Conn, user: uuid.UUID) -> None:
    job, _ = dispatched_job(db, user)  # costs 11
    report = {"type": "completed", "job_id": job["id"], "attempt": 1, "output": {},
              "rendered_seconds": 2.2}  # fmt: skip
    done = as_service(db, "service.job_report", None, "worker", report)
    expected = pro_rata(11, job["params"], 2.2)
    assert 0 < expected < 11
    assert done["job"]["credits_used"] == expected
    assert ledger(db, job["id"]) == [
        ("reserve", -11, 11), ("capture", 0, -expected), ("release", 11 - expected, expected - 11)
    ]  # fmt: skip
    assert_books_balance(db, user)
    # A worker's own credits_used (docs/worker-protocol.md) wins; negative seconds are refused.
    job, _ = dispatched_job(db, user)
    report = {**report, "job_id": job["id"], "credits_used": 4}
    assert as_service(db, "service.job_report", None, "worker", report)["job"]["credits_used"] == 4
    job, _ = dispatched_job(db, user)
    with raises_sqlstate("VGC22"):
        as_service(db, "service.job_complete", job["id"], 1, {}, None, -1.0)
    assert_books_balance(db, user)


def test_complete_refuses_more_than_the_cost(db: Conn, user: uuid.UUID) -> None:
    job, _ = dispatched_job(db, user)
    for used in (12, -1):
        with raises_sqlstate("VGC22"):
            as_service(db, "service.job_complete", job["id"], 1, {}, used)
    assert job_row(db, job["id"])["status"] == "dispatched"
    assert profile(db, user) == (989, 11)


# ------------------------------------------------------------------------------------------
# failed: retry with backoff, then fail for good
# ------------------------------------------------------------------------------------------


def test_failures_retry_with_backoff_then_fail_and_release(db: Conn, user: uuid.UUID) -> None:
    job, worker_id = dispatched_job(db, user)  # 3 attempts
    first = as_service(db, "service.job_fail", job["id"], 1, "OOM", "out of memory")
    assert first["applied"] is True
    j = first["job"]
    assert (j["status"], j["failures"], j["attempt"], j["worker_id"]) == ("queued", 1, 1, None)
    assert (j["error_code"], j["error_message"], j["progress"]) == ("OOM", "out of memory", 0)
    assert 1 < seconds_until(db, job["id"], "run_after") <= 2  # base 2 s
    assert claim(db, worker_id) == []  # not due yet
    assert profile(db, user) == (989, 11)  # still held

    make_due(db, job["id"])
    assert claim(db, worker_id)[0]["attempt"] == 2
    assert (
        as_service(db, "service.job_fail", job["id"], 1, "LATE", "old attempt")["applied"] is False
    )
    second = as_service(db, "service.job_fail", job["id"], 2, "OOM", "again")
    assert second["job"]["failures"] == 2
    assert 3 < seconds_until(db, job["id"], "run_after") <= 4  # doubled

    make_due(db, job["id"])
    claim(db, worker_id)
    last = as_service(db, "service.job_fail", job["id"], 3, "OOM", "third time")
    j = last["job"]
    assert (j["status"], j["failures"], j["finished_at"] is not None) == ("failed", 3, True)
    assert ledger(db, job["id"]) == [("reserve", -11, 11), ("release", 11, -11)]
    assert profile(db, user) == (1000, 0)
    assert as_service(db, "service.job_fail", job["id"], 3, "OOM", "dup")["applied"] is False
    assert len(ledger(db, job["id"])) == 2


def test_a_non_retryable_failure_is_final_at_once(db: Conn, user: uuid.UUID) -> None:
    job, _ = dispatched_job(db, user)
    failed = as_service(db, "service.job_fail", job["id"], 1, None, "x" * 5000, False)["job"]
    assert (failed["status"], failed["failures"], failed["error_code"]) == (
        "failed",
        1,
        "WORKER_ERROR",
    )
    assert len(failed["error_message"]) == 2000
    assert profile(db, user) == (1000, 0)


def test_backoff_is_capped(db: Conn, user: uuid.UUID) -> None:
    db.execute("update private.settings set value = '3' where name = 'retry_backoff_max_seconds'")
    db.execute("update public.models set max_attempts = 5 where id = 'reference/text-to-video'")
    job, worker_id = dispatched_job(db, user)
    waits = []
    for attempt in (1, 2, 3):
        as_service(db, "service.job_fail", job["id"], attempt, "E", "e")
        waits.append(seconds_until(db, job["id"], "run_after"))
        make_due(db, job["id"])
        claim(db, worker_id)
    assert [round(w) for w in waits] == [2, 3, 3]


# ------------------------------------------------------------------------------------------
# jobs_requeue_expired
# ------------------------------------------------------------------------------------------


def test_expired_leases_are_requeued_with_backoff(db: Conn, user: uuid.UUID) -> None:
    job, _ = dispatched_job(db, user)
    healthy, _ = dispatched_job(db, user)
    as_service(db, "service.job_start", job["id"], 1)
    expire_lease(db, job["id"])

    assert as_service(db, "service.jobs_requeue_expired") == {"requeued": 1, "failed": 0}
    row = job_row(db, job["id"])
    assert (row["status"], row["failures"], row["error_code"], row["worker_id"]) == (
        "queued",
        1,
        "LEASE_EXPIRED",
        None,
    )
    assert 1 < seconds_until(db, job["id"], "run_after") <= 2
    assert job_row(db, healthy["id"])["status"] == "dispatched"  # lease still running
    # The lost attempt's late report changes nothing.
    assert as_service(db, "service.job_complete", job["id"], 1, {})["applied"] is False
    assert as_service(db, "service.jobs_requeue_expired") == {"requeued": 0, "failed": 0}


def test_expired_lease_on_the_last_attempt_fails_and_releases(db: Conn, user: uuid.UUID) -> None:
    job, _ = dispatched_job(db, user)
    db.execute("update public.jobs set failures = 2 where id = %s", (job["id"],))  # 3rd try
    expire_lease(db, job["id"])
    assert as_service(db, "service.jobs_requeue_expired") == {"requeued": 0, "failed": 1}
    row = job_row(db, job["id"])
    assert (row["status"], row["failures"], row["error_code"]) == ("failed", 3, "LEASE_EXPIRED")
    assert ledger(db, job["id"]) == [("reserve", -11, 11), ("release", 11, -11)]
    assert as_service(db, "service.jobs_requeue_expired") == {"requeued": 0, "failed": 0}
    assert_books_balance(db, user)


def test_webhook_receipt_is_true_once(db: Conn) -> None:
    assert as_service(db, "private.webhook_receipt_record", "msg_1", "worker") is True
    assert as_service(db, "private.webhook_receipt_record", "msg_1", "worker") is False
    assert (
        as_service(db, "private.webhook_receipt_record", "msg_1", "fal") is False
    )  # ids are global
    assert as_service(db, "private.webhook_receipt_record", "msg_2", "fal") is True


def test_complete_refuses_outputs_outside_the_owners_folder(db: Conn, user: uuid.UUID) -> None:
    """A signed callback cannot point the owner at someone else's file, the server's disk or
    a link of its choosing: VGO22, and the job and the money stay as they were."""
    job, _ = dispatched_job(db, user)
    other = uuid.uuid4()
    for output in (
        {"video_path": f"{other}/{job['id']}.mp4"},
        {"video_path": f"{user}/../../etc/passwd"},
        {"video_path": "/etc/passwd"},
        {"thumbnail_path": f"{user}//x.jpg"},
        {"video_path": 42},
        {"download_url": "http://169.254.169.254/latest/meta-data/"},
        {"source_url": "http://127.0.0.1:54322/"},
    ):
        with raises_sqlstate("VGO22", case=output):
            as_service(db, "service.job_complete", job["id"], 1, output)
    row = job_row(db, job["id"])
    assert (row["status"], row["output"]) == ("dispatched", None)
    assert ledger(db, job["id"]) == [("reserve", -11, 11)]


def test_a_report_and_its_receipt_are_one_transaction(db: Conn, user: uuid.UUID) -> None:
    """job_report: a refused report keeps no receipt (the sender may fix and resend under
    the same webhook-id); an applied one is applied once."""
    job, _ = dispatched_job(db, user)
    bad = {"type": "completed", "job_id": job["id"], "attempt": 1, "output": {"video_path": "/x"}}
    with raises_sqlstate("VGO22"):
        as_service(db, "service.job_report", "msg_1", "worker", bad)
    good = {**bad, "output": {"video_path": f"{user}/{job['id']}.mp4"}}
    assert as_service(db, "service.job_report", "msg_1", "worker", good)["applied"] is True
    again = as_service(db, "service.job_report", "msg_1", "worker", good)
    assert again == {"applied": False, "reason": "duplicate_delivery"}
    assert ledger(db, job["id"]) == [("reserve", -11, 11), ("capture", 0, -11)]
    with raises_sqlstate("VG400"):
        as_service(db, "service.job_report", None, "worker", {**good, "type": "exploded"})
