"""Module 11: the money audit finds what is wrong with the books (and nothing when they are
right), the metrics and readiness procedures count what is there, the business views add
up, and none of it is reachable by anon or authenticated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest
from db.helpers import (
    T2V,
    Conn,
    as_anon,
    as_service,
    as_user,
    claim,
    create_job,
    create_user,
    dispatched_job,
    expire_lease,
    raises_sqlstate,
    register_worker,
    select_as,
)


def audit(conn: Conn, grace_seconds: int = 300) -> list[dict[str, Any]]:
    """The audit's rows as the service reads them."""
    rows: list[dict[str, Any]] = as_service(conn, "service.money_audit_report", grace_seconds)
    return rows


def checks(rows: list[dict[str, Any]]) -> set[tuple[str, str | None, str | None]]:
    return {(r["check_name"], r["user_id"], r["job_id"]) for r in rows}


def corrupt(conn: Conn, statement: str, params: tuple[Any, ...]) -> None:
    """Write past the guards (append-only ledger, state machine), as a bug or a hand would."""
    with conn.transaction():
        conn.execute("set local session_replication_role = replica")
        conn.execute(statement, params)


# ------------------------------------------------------------------------------------------
# Healthy books
# ------------------------------------------------------------------------------------------


def test_a_whole_life_of_money_audits_clean(db: Conn, user: uuid.UUID) -> None:
    done, _ = dispatched_job(db, user)
    as_service(db, "service.job_complete", done["id"], done["attempt"], {}, 3)  # partial capture
    failed, _ = dispatched_job(db, user)
    assert (
        as_service(db, "service.job_fail", failed["id"], 1, "X", "x", False)["job"]["status"]
        == "failed"
    )
    canceled = create_job(db, user)
    as_service(db, "service.job_cancel", canceled["id"])
    create_job(db, user)  # still queued, holding its cost: legitimate
    assert audit(db) == []
    assert audit(db, 0) == []
    assert as_service(db, "service.money_audit_report") == []  # the default grace


# ------------------------------------------------------------------------------------------
# Corrupted on purpose: each check reports it
# ------------------------------------------------------------------------------------------


@pytest.mark.books_unbalanced
def test_a_balance_changed_behind_the_ledger_is_reported(db: Conn, user: uuid.UUID) -> None:
    corrupt(db, "update public.profiles set balance = balance + 7 where id = %s", (user,))
    rows = audit(db)
    [row] = [r for r in rows if r["check_name"] == "balance"]
    assert (row["user_id"], row["expected"], row["actual"]) == (str(user), 1000, 1007)
    assert checks(rows) == {("balance", str(user), None)}


@pytest.mark.books_unbalanced
def test_a_reserved_amount_changed_behind_the_ledger_is_reported(db: Conn, user: uuid.UUID) -> None:
    job = create_job(db, user)
    corrupt(db, "update public.profiles set reserved = 0 where id = %s", (user,))
    rows = audit(db)
    [row] = rows
    assert (row["check_name"], row["expected"], row["actual"]) == ("reserved", job["cost"], 0)


@pytest.mark.books_unbalanced
def test_an_edited_ledger_row_breaks_the_chain_and_the_sum(db: Conn, user: uuid.UUID) -> None:
    create_job(db, user)
    first = db.execute(
        "select min(id) from public.credit_ledger where user_id = %s", (user,)
    ).fetchone()
    assert first is not None
    corrupt(db, "update public.credit_ledger set amount = amount - 1 where id = %s", (first[0],))
    rows = audit(db)
    assert checks(rows) == {("balance", str(user), None), ("ledger_chain", str(user), None)}
    [chain] = [r for r in rows if r["check_name"] == "ledger_chain"]
    assert f"ledger row {first[0]}:" in chain["detail"]


@pytest.mark.books_unbalanced
def test_a_finished_job_still_holding_its_credits_is_reported(db: Conn, user: uuid.UUID) -> None:
    job = create_job(db, user)
    corrupt(
        db,
        "update public.jobs set status = 'failed', finished_at = now() where id = %s",
        (job["id"],),
    )
    rows = audit(db)
    assert checks(rows) == {("job_hold", str(user), job["id"])}
    assert (rows[0]["expected"], rows[0]["actual"]) == (0, job["cost"])
    assert "failed" in rows[0]["detail"]


@pytest.mark.books_unbalanced
def test_a_capture_that_is_not_the_credits_used_is_reported(db: Conn, user: uuid.UUID) -> None:
    job, _ = dispatched_job(db, user)
    as_service(db, "service.job_complete", job["id"], job["attempt"], {}, 3)
    corrupt(db, "update public.jobs set credits_used = 4 where id = %s", (job["id"],))
    rows = audit(db)
    assert checks(rows) == {("capture", str(user), job["id"])}
    assert (rows[0]["expected"], rows[0]["actual"]) == (4, 3)


@pytest.mark.books_unbalanced
def test_a_job_queued_without_its_reserve_is_reported(db: Conn, user: uuid.UUID) -> None:
    corrupt(
        db,
        "insert into public.jobs (user_id, model_id, job_type, cost, max_attempts)"
        " values (%s, %s, 'text_to_video', 9, 3)",
        (user, T2V),
    )
    [row] = audit(db)
    assert (row["check_name"], row["expected"], row["actual"]) == ("job_hold", 9, 0)


def test_a_reservation_held_past_its_lease_and_the_grace_is_stale(
    db: Conn, user: uuid.UUID
) -> None:
    job, _ = dispatched_job(db, user)
    expire_lease(db, job["id"])  # ran out a second ago: within any grace
    assert audit(db, 300) == []
    db.execute(
        "update public.jobs set lease_expires_at = now() - interval '10 minutes' where id = %s",
        (job["id"],),
    )
    [row] = audit(db, 300)
    assert (row["check_name"], row["job_id"], row["actual"]) == (
        "stale_reservation",
        job["id"],
        job["cost"],
    )
    assert "lease ran out" in row["detail"]
    assert audit(db, 3600) == []  # a longer grace forgives it
    as_service(db, "service.jobs_requeue_expired")  # what the sweep does: back in the queue
    assert audit(db, 0) == []


# ------------------------------------------------------------------------------------------
# Metrics, readiness, views
# ------------------------------------------------------------------------------------------


def test_metrics_count_jobs_queue_failures_workers_and_money(db: Conn, user: uuid.UUID) -> None:
    db.execute("delete from public.workers")
    before = as_service(db, "service.ops_metrics_read")
    assert before["healthy_workers"] == 0 and before["attempts"] == 0
    job, _ = dispatched_job(db, user, params={"duration": 4})
    as_service(db, "service.job_fail", job["id"], job["attempt"], "GPU_OOM", "out of memory", True)
    queued = create_job(db, user)
    again = claim(db, register_worker(db, models=[T2V]))
    assert [j["id"] for j in again] == [queued["id"]]  # the failed one waits out its backoff
    as_service(db, "service.job_complete", queued["id"], 1, {"duration_s": 5}, 4)
    corrupt(  # backdate its start (a finished job's row is otherwise frozen)
        db,
        "update public.jobs set started_at = finished_at - interval '10 seconds' where id = %s",
        (queued["id"],),
    )
    m = as_service(db, "service.ops_metrics_read")
    jobs = {(j["model"], j["status"]): j["count"] for j in m["jobs"]}
    assert jobs == {(T2V, "completed"): 1, (T2V, "queued"): 1}
    [queue] = m["queue"]
    assert queue["model"] == T2V and queue["depth"] == 1 and queue["oldest_age_seconds"] >= 0
    assert m["attempts"] == 2
    assert m["failures"] == [{"error_code": "GPU_OOM", "count": 1}]
    assert m["workers"] == [{"status": "online", "count": 2}] and m["healthy_workers"] == 2
    cost = queued["cost"]
    assert m["credits"] == {
        "reserved": cost + job["cost"],
        "captured": 4,
        "released": cost - 4,
        "granted": 1000,
    }
    assert m["credits_outstanding"] == {"balance": 1000 - 4 - job["cost"], "reserved": job["cost"]}
    [rtf] = m["render_realtime_factor"]
    assert rtf["model"] == T2V and rtf["jobs"] == 1 and float(rtf["factor"]) == pytest.approx(2.0)


def test_readiness_counts_fresh_online_workers_and_catalogue_providers(db: Conn) -> None:
    db.execute("delete from public.workers")
    ready = as_service(db, "service.ops_readiness_check")
    assert ready["healthy_workers"] == 0
    assert set(ready["providers"]) == {"fal", "replicate", "runpod", "runway"} & set(
        ready["providers"]
    )
    assert "reference" not in ready["providers"] and ready["providers"]
    fresh = register_worker(db)
    stale = register_worker(db)
    db.execute(
        "update public.workers set last_heartbeat_at = now() - interval '1 hour' where id = %s",
        (stale,),
    )
    assert as_service(db, "service.ops_readiness_check")["healthy_workers"] == 1
    db.execute("update public.workers set status = 'draining' where id = %s", (fresh,))
    assert as_service(db, "service.ops_readiness_check")["healthy_workers"] == 0


def test_business_views_add_up_per_day_and_model(db: Conn, user: uuid.UUID) -> None:
    done, _ = dispatched_job(db, user)
    as_service(db, "service.job_complete", done["id"], done["attempt"], {}, 5)
    done2, _ = dispatched_job(db, user)
    as_service(db, "service.job_complete", done2["id"], done2["attempt"], {}, 3)
    failed, _ = dispatched_job(db, user)
    assert (
        as_service(db, "service.job_fail", failed["id"], 1, "X", "x", False)["job"]["status"]
        == "failed"
    )
    as_service(db, "service.job_cancel", create_job(db, user)["id"])
    create_job(db, user)  # unfinished: not counted
    corrupt(  # backdate them (a finished job's row is otherwise frozen)
        db,
        "update public.jobs set started_at = finished_at - interval '4 seconds',"
        " created_at = finished_at - interval '6 seconds' where id in (%s, %s)",
        (done["id"], done2["id"]),
    )
    [day] = select_as(
        db,
        "service_role",
        None,
        "select finished, completed, failed, canceled, success_rate, avg_generation_seconds,"
        " avg_turnaround_seconds, credits_captured, credits_per_video, day = (now() at time"
        " zone 'utc')::date from service.ops_videos_daily",
    )
    assert [float(v) if v is not None else None for v in day[:9]] == [
        4, 2, 1, 1, pytest.approx(0.6667), 4.0, 6.0, 8, 4.0
    ]  # fmt: skip
    assert day[9] is True
    [by_model] = select_as(
        db,
        "service_role",
        None,
        "select model_id, job_type, finished, completed from service.ops_videos_daily_by_model",
    )
    assert by_model == (T2V, "text_to_video", 4, 2)


@pytest.mark.parametrize(
    "call",
    [
        "select service.money_audit()",
        "select service.money_audit_report()",
        "select service.ops_metrics_read()",
        "select service.ops_readiness_check()",
        "select * from service.ops_videos_daily",
        "select * from service.ops_videos_daily_by_model",
    ],
)
@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_operations_are_for_the_service_only(db: Conn, call: str, role: str) -> None:
    user = create_user(db) if role == "authenticated" else None
    with raises_sqlstate("42501", case=(role, call)):
        select_as(db, role, user, call)


def test_clients_cannot_call_the_audit_over_the_api(db: Conn, user: uuid.UUID) -> None:
    with raises_sqlstate("42501"):
        as_anon(db, "service.money_audit_report")
    with raises_sqlstate("42501"):
        as_user(db, user, "service.ops_metrics_read")


# ------------------------------------------------------------------------------------------
# videogen audit
# ------------------------------------------------------------------------------------------


def _cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": db_url, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "videogen_dev", "audit", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.books_unbalanced
def test_the_cli_prints_the_differences_and_exits_non_zero(
    db: Conn, db_url: str, user: uuid.UUID
) -> None:
    create_job(db, user)
    clean = _cli(db_url)
    assert clean.returncode == 0, clean.stderr
    assert "no differences" in clean.stdout
    corrupt(db, "update public.profiles set reserved = reserved + 2 where id = %s", (user,))
    found = _cli(db_url)
    assert found.returncode == 1, found.stderr
    assert "1 difference" in found.stdout and "reserved" in found.stdout
    assert str(user) in found.stdout
    as_json = _cli(db_url, "--json")
    assert as_json.returncode == 1
    [row] = json.loads(as_json.stdout)
    assert (row["check_name"], row["user_id"]) == ("reserved", str(user))
