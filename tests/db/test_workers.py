"""Workers and routing: register, heartbeat, health, push assignment and pull claims."""

from __future__ import annotations

import threading
import uuid

import psycopg
from db.helpers import (
    FAL,
    RUNPOD,
    T2V,
    Conn,
    as_service,
    claim,
    create_job,
    create_user,
    dispatched_job,
    for_user,
    job_row,
    raises_sqlstate,
    register_worker,
)

# ------------------------------------------------------------------------------------------
# worker_register / worker_heartbeat / worker_record_health
# ------------------------------------------------------------------------------------------


def test_register_is_an_upsert_by_name(db: Conn) -> None:
    first = as_service(
        db, "service.worker_register", "gpu-1", "http://a/jobs", None, [T2V], 2, "push"
    )
    assert (first["status"], first["capacity"], first["mode"]) == ("online", 2, "push")
    db.execute(
        "update public.workers set status = 'unhealthy', consecutive_failures = 5 where id = %s",
        (first["id"],),
    )
    again = as_service(
        db, "service.worker_register", "gpu-1", "http://b/jobs", "http://b/health", [T2V, RUNPOD], 4
    )
    assert again["id"] == first["id"]
    assert again["url"] == "http://b/jobs"
    assert again["models"] == [T2V, RUNPOD]
    assert (again["status"], again["consecutive_failures"], again["capacity"]) == ("online", 0, 4)


def test_register_refuses_unknown_models(db: Conn) -> None:
    with raises_sqlstate("VGM04") as info:
        as_service(db, "service.worker_register", "gpu-x", "http://x", None, [T2V, "nope/model"])
    assert "nope/model" in str(info.value)
    assert db.execute("select count(*) from public.workers").fetchone() == (0,)


def test_heartbeat_extends_leases_and_lists_the_workers_jobs(db: Conn, user: uuid.UUID) -> None:
    job, worker_id = dispatched_job(db, user)
    db.execute(
        "update public.jobs set lease_expires_at = now() + interval '1 second' where id = %s",
        (job["id"],),
    )
    db.execute(
        "update public.workers set last_heartbeat_at = now() - interval '1 hour' where id = %s",
        (worker_id,),
    )
    beat = as_service(db, "service.worker_heartbeat", worker_id, "draining")
    assert beat["worker"]["status"] == "draining"
    assert beat["jobs"] == [{"job_id": job["id"], "attempt": 1}]
    lease_left = db.execute(
        "select extract(epoch from lease_expires_at - now()) from public.jobs where id = %s",
        (job["id"],),
    ).fetchone()
    assert lease_left is not None and 55 < float(lease_left[0]) <= 60  # model lease: 60 s
    fresh = db.execute(
        "select last_heartbeat_at > now() - interval '5 seconds' from public.workers where id = %s",
        (worker_id,),
    ).fetchone()
    assert fresh == (True,)


def test_heartbeat_errors(db: Conn) -> None:
    worker_id = register_worker(db)
    with raises_sqlstate("VGW04"):
        as_service(db, "service.worker_heartbeat", str(uuid.uuid4()))
    with raises_sqlstate("VG400"):
        as_service(db, "service.worker_heartbeat", worker_id, "offline")
    assert as_service(db, "service.worker_heartbeat", worker_id)["jobs"] == []


def test_worker_turns_unhealthy_after_n_failed_probes(db: Conn) -> None:
    worker_id = register_worker(db)
    seen = [
        as_service(db, "service.worker_health_record", worker_id, False, {"error": "timeout"})
        for _ in range(3)
    ]
    assert [(w["status"], w["consecutive_failures"]) for w in seen] == [
        ("online", 1),
        ("online", 2),
        ("unhealthy", 3),
    ]
    assert seen[-1]["metadata"]["last_health"] == {"error": "timeout"}
    back = as_service(db, "service.worker_health_record", worker_id, True)
    assert (back["status"], back["consecutive_failures"]) == ("online", 0)
    assert back["last_health_at"] is not None

    as_service(db, "service.worker_heartbeat", worker_id, "draining")
    for _ in range(4):
        drained = as_service(db, "service.worker_health_record", worker_id, False)
    assert drained["status"] == "draining"  # an operator's drain is not overridden

    with raises_sqlstate("VGW04"):
        as_service(db, "service.worker_health_record", str(uuid.uuid4()), True)


# ------------------------------------------------------------------------------------------
# job_assign / jobs_assign_pending (push)
# ------------------------------------------------------------------------------------------


def test_assign_picks_the_least_loaded_worker_serving_the_model(db: Conn, user: uuid.UUID) -> None:
    busy = register_worker(db, "busy", [T2V], capacity=2, mode="push")
    idle = register_worker(db, "idle", [T2V], capacity=2, mode="push")
    register_worker(db, "other-model", [RUNPOD], capacity=10, mode="push")
    register_worker(db, "puller", [T2V], capacity=10, mode="pull")
    stale = register_worker(db, "stale", [T2V], capacity=10, mode="push")
    sick = register_worker(db, "sick", [T2V], capacity=10, mode="push")
    db.execute(
        "update public.workers set last_heartbeat_at = now() - interval '5 minutes' where id = %s",
        (stale,),
    )
    db.execute("update public.workers set status = 'unhealthy' where id = %s", (sick,))

    first = as_service(db, "service.job_assign", create_job(db, user)["id"], busy)  # named worker
    assert first["worker"]["id"] == busy
    second = as_service(db, "service.job_assign", create_job(db, user)["id"])
    assert second["worker"]["id"] == idle  # 0/2 beats 1/2
    third = as_service(db, "service.job_assign", create_job(db, user)["id"])
    fourth = as_service(db, "service.job_assign", create_job(db, user)["id"])
    assert {third["worker"]["id"], fourth["worker"]["id"]} == {busy, idle}

    full = create_job(db, user)
    assert as_service(db, "service.job_assign", full["id"]) is None  # both at capacity
    assert job_row(db, full["id"])["status"] == "queued"

    job = second["job"]
    assert (job["status"], job["attempt"], job["worker_id"]) == ("dispatched", 1, idle)
    assert job["lease_expires_at"] is not None and job["dispatched_at"] is not None


def test_assign_ignores_jobs_that_are_not_due_or_not_queued(db: Conn, user: uuid.UUID) -> None:
    register_worker(db, "w", [T2V], capacity=5, mode="push")
    later = create_job(db, user)
    db.execute(
        "update public.jobs set run_after = now() + interval '1 minute' where id = %s",
        (later["id"],),
    )
    assert as_service(db, "service.job_assign", later["id"]) is None
    assert as_service(db, "service.job_assign", str(uuid.uuid4())) is None
    job = create_job(db, user)
    assert as_service(db, "service.job_assign", job["id"]) is not None
    assert as_service(db, "service.job_assign", job["id"]) is None  # already dispatched


def test_assign_pending_fills_capacity_and_leaves_external_models(db: Conn) -> None:
    uid = create_user(db, credits=5000, job_limit=20)
    register_worker(db, "a", [T2V], capacity=2, mode="push")
    register_worker(db, "b", [T2V, RUNPOD], capacity=1, mode="push")
    t2v = [create_job(db, uid)["id"] for _ in range(4)]
    fal = create_job(db, uid, FAL)["id"]

    assigned = as_service(db, "service.jobs_assign_pending", 10)
    assert [a["job"]["id"] for a in assigned] == t2v[:3]  # oldest first, 3 slots in all
    per_worker = db.execute(
        """
        select w.name, count(j.id) from public.workers w
          left join public.jobs j on j.worker_id = w.id and j.status = 'dispatched'
         group by w.name order by w.name
        """
    ).fetchall()
    assert per_worker == [("a", 2), ("b", 1)]
    assert job_row(db, t2v[3])["status"] == "queued"
    assert job_row(db, fal)["status"] == "queued"  # fal is dispatched by its adapter
    assert as_service(db, "service.jobs_assign_pending") == []


# ------------------------------------------------------------------------------------------
# job_claim (pull)
# ------------------------------------------------------------------------------------------


def test_claim_takes_only_its_models_up_to_capacity_with_a_lease(db: Conn) -> None:
    uid = create_user(db, credits=5000, job_limit=20)
    runpod = create_job(db, uid, RUNPOD)
    low = for_user(db, uid, "service.job_create", T2V, {}, -5)["id"]
    jobs = [create_job(db, uid)["id"] for _ in range(3)]
    worker_id = register_worker(db, models=[T2V], capacity=2)

    got = claim(db, worker_id, limit=10)
    assert [j["id"] for j in got] == jobs[:2]  # capacity 2; priority then age
    for j in got:  # the claim answers the attempt; the job row says who has it
        row = db.execute(
            "select status::text, attempt, worker_id::text from public.jobs where id = %s",
            (j["id"],),
        ).fetchone()
        assert (row, j["attempt"]) == (("dispatched", 1, worker_id), 1)
    lease = db.execute(
        "select extract(epoch from lease_expires_at - now()) from public.jobs where id = %s",
        (jobs[0],),
    ).fetchone()
    assert lease is not None and 55 < float(lease[0]) <= 60

    assert claim(db, worker_id, limit=10) == []  # full
    as_service(db, "service.job_complete", jobs[0], 1, {})
    assert [j["id"] for j in claim(db, worker_id, limit=10)] == [jobs[2]]
    as_service(db, "service.job_complete", jobs[1], 1, {})
    assert [j["id"] for j in claim(db, worker_id, limit=10)] == [low]  # priority -5 last
    assert job_row(db, runpod["id"])["status"] == "queued"


def test_claim_skips_jobs_locked_by_another_transaction(db_url: str, db: Conn) -> None:
    uid = create_user(db, credits=1000)
    first, second = create_job(db, uid)["id"], create_job(db, uid)["id"]
    worker_id = register_worker(db, models=[T2V], capacity=5)
    with psycopg.connect(db_url) as other:
        other.execute("select 1 from public.jobs where id = %s for update", (first,))
        done = threading.Event()
        got: list[str] = []

        def claim_now() -> None:
            got.extend(j["id"] for j in claim(db, worker_id, limit=5))
            done.set()

        thread = threading.Thread(target=claim_now)
        thread.start()
        assert done.wait(10), "job_claim waited for a locked job instead of skipping it"
        thread.join()
        other.rollback()
    assert got == [second]
    assert [j["id"] for j in claim(db, worker_id, limit=5)] == [first]


def test_claim_by_unknown_or_stopped_workers(db: Conn, user: uuid.UUID) -> None:
    create_job(db, user)
    with raises_sqlstate("VGW04"):
        claim(db, str(uuid.uuid4()))
    worker_id = register_worker(db)
    for status in ("draining", "offline"):
        db.execute("update public.workers set status = %s where id = %s", (status, worker_id))
        assert claim(db, worker_id) == []
    db.execute("update public.workers set status = 'unhealthy' where id = %s", (worker_id,))
    assert len(claim(db, worker_id)) == 1  # claiming is proof of life


# ------------------------------------------------------------------------------------------
# External providers
# ------------------------------------------------------------------------------------------


def test_external_dispatch_provider_id_and_lookup(db: Conn, user: uuid.UUID) -> None:
    job = create_job(db, user, FAL)
    sent = as_service(db, "service.job_dispatch_external", job["id"])
    assert (sent["status"], sent["attempt"], sent["worker_id"]) == ("dispatched", 1, None)
    assert as_service(db, "service.job_dispatch_external", job["id"]) is None

    assert as_service(db, "service.job_set_provider_id", job["id"], 2, "req-x")["applied"] is False
    assert as_service(db, "service.job_set_provider_id", job["id"], 1, "req-1")["applied"] is True
    found = as_service(db, "service.job_get_by_provider_id", "fal", "req-1")
    assert (found["id"], found["attempt"]) == (job["id"], 1)
    assert as_service(db, "service.job_get_by_provider_id", "replicate", "req-1") is None
    active = as_service(db, "service.jobs_list_active_external")
    assert active == [
        {"id": job["id"], "attempt": 1, "provider": "fal", "provider_job_id": "req-1"}
    ]


def test_job_return_puts_a_refused_push_back_without_counting_it(db: Conn, user: uuid.UUID) -> None:
    job, _ = dispatched_job(db, user)
    back = as_service(db, "service.job_return", job["id"], 1, "connection refused")
    assert back["applied"] is True
    row = job_row(db, job["id"])
    assert (row["status"], row["failures"], row["worker_id"], row["error_code"]) == (
        "queued",
        0,
        None,
        "DISPATCH_FAILED",
    )
    assert as_service(db, "service.job_return", job["id"], 1, "again")["applied"] is False
