"""The job state machine, immutable facts, and one event + one broadcast per change."""

from __future__ import annotations

import itertools
import uuid

import pytest
from db.helpers import (
    STATUSES,
    T2V,
    Conn,
    as_service,
    as_user,
    claim,
    create_job,
    create_user,
    dispatched_job,
    for_user,
    make_due,
    raises_sqlstate,
    register_worker,
)

# queued → dispatched → processing → completed / failed / canceled, plus retries back to
# queued; a status may "change" to itself while the job runs (progress, lease updates).
LEGAL = {
    ("queued", "queued"),
    ("queued", "dispatched"),
    ("queued", "canceled"),
    ("queued", "failed"),
    ("dispatched", "dispatched"),
    ("dispatched", "processing"),
    ("dispatched", "completed"),
    ("dispatched", "failed"),
    ("dispatched", "queued"),
    ("dispatched", "canceled"),
    ("processing", "processing"),
    ("processing", "completed"),
    ("processing", "failed"),
    ("processing", "queued"),
    ("processing", "canceled"),
}


def job_in_every_status(conn: Conn, user_id: uuid.UUID) -> dict[str, str]:
    """One job per status, written directly (triggers off for the setup only)."""
    jobs = {}
    with conn.transaction():
        conn.execute("set local session_replication_role = replica")
        for status in STATUSES:
            row = conn.execute(
                """
                insert into public.jobs (user_id, model_id, job_type, status, cost, max_attempts,
                                         credits_used, finished_at)
                values (%s, %s, 'text_to_video', %s, 10, 3,
                        case when %s = 'completed' then 10 end,
                        case when %s in ('completed', 'failed', 'canceled') then now() end)
                returning id
                """,
                (user_id, T2V, status, status, status),
            ).fetchone()
            assert row is not None
            jobs[status] = str(row[0])
    return jobs


@pytest.mark.books_unbalanced  # jobs written straight into every status, no ledger
def test_only_legal_transitions_are_accepted(db: Conn, user: uuid.UUID) -> None:
    declared = {
        (a, b)
        for a, b in itertools.product(STATUSES, repeat=2)
        if db.execute("select private.job_transition_allowed(%s, %s)", (a, b)).fetchone() == (True,)
    }
    assert declared == LEGAL

    jobs = job_in_every_status(db, user)
    refused = set()
    for source, target in itertools.product(STATUSES, repeat=2):
        try:
            with db.transaction(force_rollback=True):
                db.execute(
                    """
                    update public.jobs
                       set status = %(to)s::public.job_status,
                           finished_at = case when %(to)s::text in ('completed', 'failed',
                                                                   'canceled') then now() end,
                           credits_used = case when %(to)s::text = 'completed' then 0 end
                     where id = %(id)s
                    """,
                    {"to": target, "id": jobs[source]},
                )
        except Exception as exc:
            assert getattr(exc, "sqlstate", None) == "VGJ09", (source, target, exc)
            refused.add((source, target))
    assert refused == set(itertools.product(STATUSES, repeat=2)) - LEGAL


@pytest.mark.books_unbalanced  # jobs written straight into every status, no ledger
def test_finished_jobs_are_immutable(db: Conn, user: uuid.UUID) -> None:
    jobs = job_in_every_status(db, user)
    for status in ("completed", "failed", "canceled"):
        for change in ("output = '{\"x\": 1}'", "progress = 1", "error_code = 'X'"):
            with raises_sqlstate("VGJ09"):
                db.execute(f"update public.jobs set {change} where id = %s", (jobs[status],))


def test_owner_model_and_cost_never_change(
    db: Conn, user: uuid.UUID, other_user: uuid.UUID
) -> None:
    job = create_job(db, user)
    for change, value in (
        ("user_id", str(other_user)),
        ("model_id", "runpod/wan-2.1-t2v"),
        ("cost", 0),
    ):
        with raises_sqlstate("VGJ09"):
            db.execute(f"update public.jobs set {change} = %s where id = %s", (value, job["id"]))


def test_a_worker_with_finished_jobs_can_be_removed(db: Conn, user: uuid.UUID) -> None:
    job, worker_id = dispatched_job(db, user)
    as_service(db, "service.job_complete", job["id"], 1, {"video": "v.mp4"})
    db.execute("delete from public.workers where id = %s", (worker_id,))
    row = db.execute(
        "select status::text, worker_id, output from public.jobs where id = %s", (job["id"],)
    ).fetchone()
    assert row == ("completed", None, {"video": "v.mp4"})


def test_ledger_and_history_are_append_only(db: Conn, user: uuid.UUID) -> None:
    create_job(db, user)
    for table in ("credit_ledger", "job_events"):
        with raises_sqlstate("VG403"):
            db.execute(f"update public.{table} set created_at = now()")
        with raises_sqlstate("VG403"):
            db.execute(f"delete from public.{table}")
    # Only whole accounts go away, with their history; their jobs and ledger stay for the
    # books, under an id that names nobody (module 21).
    count = (
        "select (select count(*) from public.credit_ledger), (select count(*) from public.jobs),"
        " (select count(*) from public.job_events)"
    )
    ledger, jobs, events = db.execute(count).fetchone()
    assert ledger >= 2 and jobs == 1 and events >= 1
    db.execute("delete from auth.users where id = %s", (user,))
    assert db.execute(count).fetchone() == (ledger, jobs, 0)


def test_pruning_removes_only_old_finished_history(db: Conn, user: uuid.UUID) -> None:
    old, _ = dispatched_job(db, user)
    as_service(db, "service.job_complete", old["id"], 1, {})
    running = create_job(db, user)
    with db.transaction():
        db.execute("set local session_replication_role = replica")  # backdate a finished job
        db.execute(
            "update public.jobs set finished_at = now() - interval '100 days' where id = %s",
            (old["id"],),
        )
    assert as_service(db, "service.job_events_prune", 90) == 3  # created, dispatched, completed
    assert db.execute("select count(*) from public.job_events").fetchone() == (1,)
    assert db.execute("select job_id::text from public.job_events").fetchone() == (running["id"],)
    with raises_sqlstate("VG403"):  # the pruning switch does not outlive the call
        db.execute("delete from public.job_events")


def test_each_change_is_one_event_and_one_broadcast_in_order(db: Conn) -> None:
    uid = create_user(db, credits=1000)
    job = create_job(db, uid)
    worker_id = register_worker(db)
    claim(db, worker_id)
    as_service(db, "service.worker_heartbeat", worker_id)  # lease only: no event
    as_service(db, "service.job_start", job["id"], 1)
    as_service(db, "service.job_progress", job["id"], 1, 50, "half")
    as_service(db, "service.job_progress", job["id"], 1, 40)  # not newer: no event
    as_service(db, "service.job_fail", job["id"], 1, "OOM", "out of memory")
    make_due(db, job["id"])  # run_after only: no event
    claim(db, worker_id)
    as_service(db, "service.job_progress", job["id"], 2, 90)
    as_service(db, "service.job_complete", job["id"], 2, {"video": "v.mp4"}, 5)

    events = db.execute(
        "select id, event, status::text, progress, attempt from public.job_events"
        " where job_id = %s order by id",
        (job["id"],),
    ).fetchall()
    assert [(e[1], e[2], e[3], e[4]) for e in events] == [
        ("created", "queued", 0, 0),
        ("dispatched", "dispatched", 0, 1),
        ("processing", "processing", 0, 1),
        ("progress", "processing", 50, 1),
        ("queued", "queued", 0, 1),
        ("dispatched", "dispatched", 0, 2),
        ("processing", "processing", 90, 2),
        ("completed", "completed", 100, 2),
    ]
    messages = db.execute(
        """
        select topic, event, private, (payload ->> 'id')::bigint, payload ->> 'status'
          from realtime.messages where payload ->> 'job_id' = %s
         order by (payload ->> 'id')::bigint
        """,
        (job["id"],),
    ).fetchall()
    assert [m[3] for m in messages] == [e[0] for e in events]
    assert {m[0] for m in messages} == {f"user:{uid}:jobs"}
    assert all(m[2] is True for m in messages)
    assert [m[1] for m in messages] == [f"job_{e[1]}" for e in events]
    assert [m[4] for m in messages] == [e[2] for e in events]
    assert db.execute("select count(*) from realtime.messages").fetchone() == (len(events),)

    completed = db.execute(
        "select data from public.job_events where id = %s", (events[-1][0],)
    ).fetchone()
    assert completed == ({"output": {"video": "v.mp4"}},)
    retry = db.execute("select data from public.job_events where id = %s", (events[4][0],))
    data = retry.fetchone()
    assert data is not None and set(data[0]) == {"error_code", "error_message", "run_after"}


def test_a_failed_create_broadcasts_nothing(db: Conn) -> None:
    uid = create_user(db, credits=1)
    with raises_sqlstate("VG402"):
        for_user(db, uid, "service.job_create", T2V, {})
    assert db.execute("select count(*) from realtime.messages").fetchone() == (0,)
    assert db.execute("select count(*) from public.job_events").fetchone() == (0,)


def test_a_broadcast_is_exactly_the_event_get_job_returns(db: Conn) -> None:
    """One event shape: the realtime payload is the job_events row as GET ?id= returns it."""
    uid = create_user(db, credits=100)
    job = create_job(db, uid)
    for_user(db, uid, "service.job_cancel", job["id"])
    events = as_user(db, uid, "get_job", job["id"])["events"]
    payloads = [
        row[0]
        for row in db.execute(
            "select payload from realtime.messages where payload ->> 'job_id' = %s"
            " order by (payload ->> 'id')::bigint",
            (job["id"],),
        ).fetchall()
    ]
    assert payloads == events
    assert set(events[0]) == {
        "id",
        "job_id",
        "event",
        "status",
        "progress",
        "attempt",
        "data",
        "created_at",
    }
