"""A function server killed between a POST's arrival and its answer: the write had
committed with its answer, so the client's retry with the same Idempotency-Key — on a new
server — replays it, or runs it when it had not committed: one job, one reserve, never a
"still in progress" 409."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor

import httpx
import psycopg
from serverkit import running_server, wait_until
from videogen_dev.users import ensure_user

from videogen.kit.auth import issue_access_token

T2V = "reference/text-to-video"


def _kill_hard(pid: int, pending: Future[httpx.Response]) -> None:
    """SIGKILL the server and its gunicorn workers mid-request: no drain, and the waiting
    client sees its connection die without an answer."""
    children = subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    for child in [*children, str(pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(child), signal.SIGKILL)
    try:
        pending.result(timeout=30)
    except httpx.HTTPError:
        return
    raise AssertionError("the killed server answered")


def _grant(db_url: str, user_id: str, amount: int) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "select service.credits_grant(%s, %s, %s)", [user_id, amount, str(uuid.uuid4())]
        )


def _user(db_url: str) -> tuple[str, dict[str, str]]:
    user_id, email = ensure_user(db_url, f"crash-{uuid.uuid4().hex[:8]}@example.test")
    _grant(db_url, user_id, 100)
    return user_id, {
        "Authorization": f"Bearer {issue_access_token(user_id, email=email)}",
        "Idempotency-Key": f"crash-{uuid.uuid4()}",
    }


def _books(db_url: str, user_id: str) -> tuple[int, list[str]]:
    with psycopg.connect(db_url) as conn:
        jobs = conn.execute("select id from public.jobs where user_id = %s", [user_id]).fetchall()
        kinds = conn.execute(
            "select kind::text from public.credit_ledger where user_id = %s and job_id is not null",
            [user_id],
        ).fetchall()
    return len(jobs), [k[0] for k in kinds]


def _wait_for_a_lock_wait(db_url: str, timeout: float = 120.0) -> None:
    """Until a backend of this database waits on a lock: the write is inside its
    transaction (however long a busy machine took to get there)."""
    with psycopg.connect(db_url, autocommit=True) as conn:

        def waiting() -> bool:
            row = conn.execute(
                "select count(*) from pg_stat_activity"
                " where datname = current_database() and wait_event_type = 'Lock'"
            ).fetchone()
            return bool(row and row[0])

        wait_until(waiting, timeout, "the write never reached the profile lock")


def test_a_server_killed_inside_the_write_strands_no_key(db_url, tmp_path):
    """Killed while its write waits inside the transaction (the user's profile is locked):
    the key is not committed "in progress", so the retry on a new server is not a 409 — it
    waits for the dead request's transaction, then replays it or, if it rolled back, runs."""
    user_id, headers = _user(db_url)
    body = {"model": T2V, "prompt": "a paper boat", "duration": 4}
    with psycopg.connect(db_url) as holder:
        holder.execute("select 1 from public.profiles where id = %s for update", [user_id])
        with (
            running_server(db_url, tmp_path / "first") as first,
            ThreadPoolExecutor(2) as pool,
        ):
            pending = pool.submit(
                httpx.post, first.url("generate-video"), json=body, headers=headers, timeout=60
            )
            _wait_for_a_lock_wait(db_url)  # the write is now waiting on the profile lock
            assert not pending.done()
            assert first.pid is not None
            _kill_hard(first.pid, pending)
            with running_server(db_url, tmp_path / "second") as second:
                retry = pool.submit(
                    httpx.post,
                    second.url("generate-video"),
                    json=body,
                    headers=headers,
                    timeout=60,
                )
                time.sleep(0.5)
                holder.rollback()  # the lock goes; the dead request's transaction ends
                answer = retry.result(timeout=60)
    assert answer.status_code == 202, answer.text
    assert _books(db_url, user_id) == (1, ["reserve"])


def test_a_retry_after_the_server_died_mid_request_replays_the_committed_answer(db_url, tmp_path):
    """Killed after the write committed (while pushing to a worker that never answers): the
    retry replays the committed answer."""
    # A push worker that takes the connection and never answers: the POST hangs in its
    # dispatch step, after its write has committed.
    black_hole = socket.socket()
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(16)
    port = black_hole.getsockname()[1]
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "select service.worker_register('black-hole', %s, null, %s, 4, 'push')",
            [f"http://127.0.0.1:{port}", [T2V]],
        )
    user_id, headers = _user(db_url)
    body = {"model": T2V, "prompt": "a paper boat", "duration": 4}

    with (
        running_server(db_url, tmp_path / "first", DISPATCH_TIMEOUT_SECONDS="60") as first,
        ThreadPoolExecutor(1) as pool,
    ):
        pending = pool.submit(
            httpx.post, first.url("generate-video"), json=body, headers=headers, timeout=90
        )
        deadline = time.monotonic() + 20
        with psycopg.connect(db_url, autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "select id, status from public.jobs where user_id = %s", [user_id]
                ).fetchone()
                if row and row[1] == "dispatched":
                    break
                time.sleep(0.05)
        assert row is not None and row[1] == "dispatched"  # committed, mid-push
        assert not pending.done()
        assert first.pid is not None
        _kill_hard(first.pid, pending)

    black_hole.close()
    with running_server(db_url, tmp_path / "second") as second:
        retry = httpx.post(second.url("generate-video"), json=body, headers=headers, timeout=30)
    assert retry.status_code == 202, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json()["data"]["id"] == str(row[0])
    assert _books(db_url, user_id) == (1, ["reserve"])
    assert json.loads(retry.text)["success"] is True
