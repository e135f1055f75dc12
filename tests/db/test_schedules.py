"""The schedules run by themselves: private.schedules is the one list, and where pg_cron does
not run it (these test databases: pg_cron lives only in the cluster's ``postgres``
database), ``videogen scheduler`` — what ``videogen up`` starts — runs the same rows.
tests/e2e/test_pg_cron.py covers the pg_cron side on a cluster of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from db.helpers import Conn, dispatched_job, job_row
from serverkit import wait_until
from videogen_dev.scheduler import Schedule, Scheduler


def test_the_schedules_are_rows_and_pg_cron_does_not_run_them_here(db: Conn) -> None:
    rows = dict(db.execute("select name, command from private.schedules").fetchall())
    assert rows["videogen-requeue-expired"] == "select service.jobs_requeue_expired()"
    assert set(rows) == {
        "videogen-requeue-expired",
        "videogen-cancel-overdue",
        "videogen-requests-cleanup",
        "videogen-prune-events",
        "videogen-subscriptions-expire",
    }
    assert db.execute("select private.schedules_by_pg_cron()").fetchone() == (False,)
    assert db.execute("select private.pg_cron_possible()").fetchone() == (False,)


def test_the_scheduler_reads_pg_cron_syntax() -> None:
    at = datetime(2026, 12, 4, 10, 0, 30, tzinfo=UTC)
    assert Schedule("a", "* * * * *", "select 1").next_after(at) == at.replace(minute=1, second=0)
    assert Schedule("b", "17 * * * *", "select 1").next_after(at) == at.replace(minute=17, second=0)
    assert (Schedule("c", "5 seconds", "select 1").next_after(at) - at).total_seconds() == 5


def test_a_schedule_runs_one_interval_after_the_scheduler_starts(db: Conn, db_url: str) -> None:
    db.execute(
        "update private.schedules set schedule = '1 seconds' "
        "where name = 'videogen-requeue-expired'"
    )
    scheduler = Scheduler(db_url)
    assert scheduler.tick_once(datetime(2026, 1, 1, tzinfo=UTC)) == []
    assert scheduler.tick_once(datetime(2026, 1, 1, 0, 0, 0, 500_000, tzinfo=UTC)) == []
    ran = scheduler.tick_once(datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC))
    assert ran == ["videogen-requeue-expired"]


def test_an_expired_lease_is_requeued_with_nobody_calling_the_sweep(
    db: Conn, db_url: str, user: object, tmp_path: Path
) -> None:
    # The interval is a row: a test makes it short, as a developer could.
    db.execute(
        "update private.schedules set schedule = '1 seconds' "
        "where name = 'videogen-requeue-expired'"
    )
    job, _worker = dispatched_job(db, user)  # type: ignore[arg-type]
    db.execute(
        "update public.jobs set lease_expires_at = now() + interval '1 second' where id = %s",
        (job["id"],),
    )
    assert job_row(db, job["id"])["status"] == "dispatched"
    log = tmp_path / "scheduler.log"
    env = {**os.environ, "DATABASE_URL": db_url}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "videogen_dev", "scheduler", "--tick", "0.2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: job_row(db, job["id"])["status"] == "queued",
            60,
            f"the scheduler did not requeue the job; its log:\n{log.read_text()}",
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    row = job_row(db, job["id"])
    assert (row["error_code"], row["failures"], row["worker_id"]) == ("LEASE_EXPIRED", 1, None)
    text = log.read_text()
    assert "pg_cron does not run here" in text
    assert 'videogen-requeue-expired: {"failed": 0, "requeued": 1}' in text
