"""Money under real concurrency: many connections at once, each its own transaction.

Every thread opens its own connection, waits at a barrier, then makes one call, so the
calls really overlap in the server. The books must balance whatever the interleaving.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from db.helpers import (
    T2V,
    Conn,
    as_service,
    assert_books_balance,
    claim,
    create_job,
    create_user,
    expire_lease,
    for_user,
    ledger,
    profile,
    register_worker,
)

CLIENTS = 64


def run_concurrently(db_url: str, calls: list[Callable[[Conn], Any]]) -> list[Any]:
    """Run each call on its own connection, all released at once; results or exceptions."""
    results: list[Any] = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(i: int) -> None:
        try:
            with psycopg.connect(db_url, autocommit=True) as conn:
                barrier.wait(timeout=60)
                results[i] = calls[i](conn)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def service_call(fn: str, *args: Any) -> Callable[[Conn], Any]:
    """A call of ``public.fn`` as service_role, for run_concurrently."""
    return lambda conn: as_service(conn, fn, *args)


def user_call(user_id: uuid.UUID, fn: str, *args: Any) -> Callable[[Conn], Any]:
    """A user's write as the functions make it (``for_user``), for run_concurrently."""
    return lambda conn: for_user(conn, user_id, fn, *args)


def sqlstates(results: list[Any]) -> list[str]:
    """The SQLSTATE of every failed call (other exceptions as their type name)."""
    return [
        getattr(r, "sqlstate", None) or type(r).__name__
        for r in results
        if isinstance(r, Exception)
    ]


def test_concurrent_creates_never_overspend(db_url: str, db: Conn) -> None:
    cost, fits = 11, 20
    uid = create_user(db, credits=cost * fits + 5, job_limit=100)

    results = run_concurrently(db_url, [user_call(uid, "service.job_create", T2V, {})] * CLIENTS)
    created = [r for r in results if isinstance(r, dict)]
    assert len(created) == fits
    assert sqlstates(results) == ["VG402"] * (CLIENTS - fits)
    assert profile(db, uid) == (5, cost * fits)
    assert_books_balance(db, uid)
    after = db.execute(
        "select balance_after from public.credit_ledger where user_id = %s and kind = 'reserve'",
        (uid,),
    ).fetchall()
    assert sorted(r[0] for r in after) == [5 + cost * n for n in range(fits)]  # all distinct
    assert db.execute("select count(*) from public.jobs where user_id = %s", (uid,)).fetchone() == (
        fits,
    )


def test_concurrent_creates_respect_the_job_limit(db_url: str, db: Conn) -> None:
    uid = create_user(db, credits=10_000, job_limit=7)
    results = run_concurrently(db_url, [user_call(uid, "service.job_create", T2V, {})] * 32)
    assert len([r for r in results if isinstance(r, dict)]) == 7
    assert sqlstates(results) == ["VGJ29"] * 25
    assert_books_balance(db, uid)


def test_concurrent_duplicate_purchases_credit_once(db_url: str, db: Conn) -> None:
    uid = create_user(db)
    results = run_concurrently(
        db_url, [service_call("service.credits_purchase", uid, "pi_dup", 500)] * CLIENTS
    )
    assert sqlstates(results) == []
    assert sorted(r["applied"] for r in results) == [False] * (CLIENTS - 1) + [True]
    assert len({r["entry"]["id"] for r in results}) == 1
    assert profile(db, uid) == (500, 0)
    assert_books_balance(db, uid)


def dispatched_jobs(db: Conn, count: int) -> tuple[uuid.UUID, list[str]]:
    """A user with ``count`` jobs, all claimed (attempt 1) by one pull worker."""
    uid = create_user(db, credits=11 * count, job_limit=100)
    ids = [create_job(db, uid)["id"] for _ in range(count)]
    worker_id = register_worker(db, capacity=count)
    assert len(claim(db, worker_id, count)) == count
    return uid, ids


def test_fail_racing_the_lease_sweep_releases_once(db_url: str, db: Conn) -> None:
    uid, ids = dispatched_jobs(db, 24)
    db.execute("update public.jobs set failures = max_attempts - 1")  # the last attempt
    for job_id in ids:
        expire_lease(db, job_id)

    fails = [service_call("service.job_fail", j, 1, "OOM", "late report") for j in ids]
    sweeps = [service_call("service.jobs_requeue_expired", 5)] * 16
    results = run_concurrently(db_url, fails + sweeps)
    assert sqlstates(results) == []

    applied = sum(r["applied"] for r in results[: len(ids)])
    swept = sum(r["failed"] for r in results[len(ids) :])
    assert applied + swept == len(ids)  # each job ended by exactly one of them
    for job_id in ids:
        assert ledger(db, job_id) == [("reserve", -11, 11), ("release", 11, -11)]
    statuses = db.execute("select distinct status::text from public.jobs").fetchall()
    assert statuses == [("failed",)]
    assert profile(db, uid) == (11 * len(ids), 0)
    assert_books_balance(db, uid)


def test_complete_racing_cancel_settles_once(db_url: str, db: Conn) -> None:
    uid, ids = dispatched_jobs(db, 24)
    completes = [service_call("service.job_complete", j, 1, {"video": "v.mp4"}, 5) for j in ids]
    cancels = [user_call(uid, "service.job_cancel", j) for j in ids]
    results = run_concurrently(db_url, completes + cancels)
    assert set(sqlstates(results)) <= {"VGJ09"}  # a cancel that came second

    completed = canceled = 0
    for job_id in ids:
        status = db.execute(
            "select status::text from public.jobs where id = %s", (job_id,)
        ).fetchone()
        if status == ("completed",):
            completed += 1
            assert ledger(db, job_id) == [
                ("reserve", -11, 11),
                ("capture", 0, -5),
                ("release", 6, -6),
            ]
        else:
            assert status == ("canceled",)
            canceled += 1
            assert ledger(db, job_id) == [("reserve", -11, 11), ("release", 11, -11)]
    late_completes = sum(not r["applied"] for r in results[: len(ids)])
    assert late_completes == canceled
    assert len(sqlstates(results)) == completed
    assert profile(db, uid) == (11 * len(ids) - 5 * completed, 0)
    assert_books_balance(db, uid)


def test_concurrent_duplicate_requests_start_once(db_url: str, db: Conn) -> None:
    """64 copies of one request with one key: one job, one reserve; every twin waited for
    the first to commit and replays its answer (no 409, nothing in progress to strand)."""
    uid = create_user(db, credits=1000)
    request = {
        "principal": f"user:{uid}",
        "scope": "queue-job:POST",
        "bucket": "queue-job",
        "limit": None,
        "key": "key-1",
        "hash": "hash-1",
    }
    twin = user_call(uid, "service.job_create_request", request, T2V, {})
    results = run_concurrently(db_url, [twin] * CLIENTS)
    assert sqlstates(results) == []
    fresh = [r for r in results if not r.get("replayed")]
    assert len(fresh) == 1 and fresh[0]["status"] == 202
    job = fresh[0]["data"]
    assert all(r["body"]["data"]["id"] == job["id"] for r in results if r.get("replayed"))
    assert db.execute("select count(*) from public.jobs where user_id = %s", (uid,)).fetchone() == (
        1,
    )
    assert ledger(db, job["id"]) == [("reserve", -11, 11)]
    assert_books_balance(db, uid)
