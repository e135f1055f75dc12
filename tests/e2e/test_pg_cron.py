"""pg_cron runs the schedules, as on Supabase: on a cluster of its own started by
videogen_dev.localdb (which preloads pg_cron where Debian's postgresql-<major>-cron is
installed, as .ci/system-deps does), the migrations make private.schedules the cron.job
rows, and a lease that runs out is requeued with nobody calling anything.

pg_cron 1.4 (Debian bookworm) runs schedules by the minute: the wait is up to a minute.
Skipped where pg_cron is not installed for the server binaries in use.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from db.helpers import create_user, dispatched_job, job_row
from serverkit import free_port, wait_until
from videogen_dev import localdb, migrations
from videogen_dev.scheduler import Scheduler

pytestmark = pytest.mark.skipif(
    not localdb.pg_cron_installed(localdb.find_bindir()),
    reason="pg_cron is not installed (Debian: postgresql-<major>-cron, .ci/system-deps)",
)


@pytest.fixture
def cron_cluster() -> Iterator[str]:
    """A throwaway cluster (pg_cron preloaded) with the schema in ``postgres``; its DSN."""
    home = migrations.project_root() / ".videogen" / "test-clusters" / uuid.uuid4().hex[:8]
    paths = localdb.ClusterPaths(
        home=home,
        data_dir=home / "pgdata",
        log_file=home / "pg.log",
        lock_file=home / "pg.lock",
        port=free_port(),
    )
    dsn = localdb.start_cluster(paths, fast=True)
    try:
        migrations.apply_all(dsn)
        yield dsn
    finally:
        localdb.stop_cluster(paths)
        shutil.rmtree(home, ignore_errors=True)


def test_pg_cron_requeues_an_expired_lease_by_itself(cron_cluster: str) -> None:
    with psycopg.connect(cron_cluster, autocommit=True) as db:
        assert db.execute("select private.schedules_by_pg_cron()").fetchone() == (True,)
        jobs = dict(db.execute("select jobname, schedule from cron.job").fetchall())
        assert jobs == dict(db.execute("select name, schedule from private.schedules").fetchall())
        assert jobs["videogen-requeue-expired"] == "* * * * *"

        user = create_user(db, credits=100)
        job, _worker = dispatched_job(db, user)
        db.execute(
            "update public.jobs set lease_expires_at = now() + interval '1 second' where id = %s",
            (job["id"],),
        )
        wait_until(
            lambda: job_row(db, job["id"])["status"] == "queued",
            150,  # pg_cron 1.4 runs once a minute
            "pg_cron did not requeue the job",
        )
        assert job_row(db, job["id"])["error_code"] == "LEASE_EXPIRED"

        def runs() -> list[str]:
            rows = db.execute(
                "select d.status from cron.job_run_details d join cron.job j using (jobid) "
                "where j.jobname = 'videogen-requeue-expired'"
            ).fetchall()
            return [str(row[0]) for row in rows]

        # pg_cron marks its run succeeded just after the command commits.
        wait_until(lambda: "succeeded" in runs(), 60, f"pg_cron's run did not end: {runs()}")

        # The row is the schedule: changing it changes pg_cron's job.
        db.execute(
            "update private.schedules set schedule = '*/5 * * * *' "
            "where name = 'videogen-requeue-expired'"
        )
        changed = db.execute(
            "select schedule from cron.job where jobname = 'videogen-requeue-expired'"
        ).fetchone()
        assert changed == ("*/5 * * * *",)


def test_after_a_reset_the_stacks_scheduler_runs_what_pg_cron_no_longer_does(
    cron_cluster: str,
) -> None:
    """pg_cron's scheduler ends for good when its database is dropped (until the server
    restarts): after `db reset`, the schedules are no longer pg_cron's to run, and the
    stack's scheduler runs them instead of standing by."""
    scheduler = Scheduler(cron_cluster)
    assert scheduler.tick_once() == []  # pg_cron runs them: standing by
    migrations.reset(cron_cluster)
    migrations.apply_all(cron_cluster)
    assert migrations.pg_cron_stopped(cron_cluster)
    with psycopg.connect(cron_cluster, autocommit=True) as db:
        assert db.execute("select private.schedules_by_pg_cron()").fetchone() == (False,)
        kept = db.execute("select count(*) from private.schedules").fetchone()
        assert db.execute("select count(*) from cron.job").fetchone() == kept  # kept in step
    scheduler = Scheduler(cron_cluster)
    start = datetime(2026, 12, 4, 10, 0, 30, tzinfo=UTC)  # the rows' schedule, on a given clock
    assert scheduler.tick_once(start) == []
    assert scheduler.tick_once(start + timedelta(seconds=31)) == [
        "videogen-cancel-overdue",
        "videogen-requeue-expired",
    ]
