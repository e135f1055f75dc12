"""Postgres restarts while jobs run: nothing is lost, nobody is charged twice.

This test runs its own Postgres cluster (a private data directory and port), so the
restart cuts only its own connections, not the shared test cluster's.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_stack import Stack
from serverkit import free_port, running_server
from videogen_dev import localdb, migrations


@pytest.fixture
def own_cluster() -> Iterator[localdb.ClusterPaths]:
    """A throwaway cluster under the state folder (reachable by the unprivileged user)."""
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
        yield paths
    finally:
        localdb.stop_cluster(paths)
        shutil.rmtree(home, ignore_errors=True)


def test_restart_while_jobs_run(own_cluster: localdb.ClusterPaths, tmp_path: Path) -> None:
    with running_server(own_cluster.dsn, tmp_path) as server:
        stack = Stack(server, tmp_path)
        try:
            stack.sql(
                "update private.settings set value = '0' where name = 'retry_backoff_base_seconds'"
            )
            ada = stack.user()
            stack.start_worker("w1", "--speed", "1")
            stack.start_worker("w2", "--speed", "1")
            jobs = [stack.generate(ada, duration=3) for _ in range(3)]
            stack.wait_for(jobs[0]["id"], lambda r: r["progress"] >= 20)

            localdb.restart_cluster(own_cluster)  # every connection is cut
            stack.reconnect()
            in_flight = [j for j in jobs if stack.job_row(j["id"])["status"] != "completed"]
            assert in_flight, "the restart should have hit jobs that were still running"

            rows = [stack.wait_status(j["id"], "completed", "failed", timeout=180) for j in jobs]
            assert [r["status"] for r in rows] == ["completed"] * 3
            for row in rows:
                kinds = stack.ledger(row["id"])
                assert kinds.count("reserve") == 1 and kinds.count("capture") == 1
                assert "release" not in kinds or row["credits_used"] < row["cost"]
            money = stack.balance(ada)
            spent = sum(r["credits_used"] for r in rows)
            assert money["reserved"] == 0
            assert money["balance"] == 100 - spent
            # The server answered something during the outage, and recovered after it.
            assert stack.get_job(ada, jobs[0]["id"])["status"] == "completed"
        finally:
            stack.close()
