"""What a frontend team leans on all day against the dev server (THREADS=8 here): open
websockets hold no request thread, functions that sign links to their outputs reach the
server's own Storage API without waiting for another of its threads, and a liveness probe
answers while every request thread is busy."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import httpx
import psycopg
from serverkit import wait_until
from websockets.sync.client import connect

from videogen.config import LOCAL_PUBLISHABLE_KEY

MP4 = b"\x00\x00\x00\x18ftypmp42"
IDLE_SOCKETS = 120  # far more than the server's 8 threads (the bench holds 500)
READERS = 32  # concurrent reads of a finished job, 4 per thread
THREADS = 8  # the test server's (tests/serverkit.py)


def ws_url(api: Any) -> str:
    base = api.server.base.replace("http://", "ws://")
    return f"{base}/realtime/v1/websocket?vsn=2.0.0&apikey={LOCAL_PUBLISHABLE_KEY}"


def test_idle_websockets_hold_no_request_thread(api: Any) -> None:
    user = api.user(credits=10)
    with ExitStack() as stack:
        sockets = [
            stack.enter_context(connect(ws_url(api), open_timeout=30)) for _ in range(IDLE_SOCKETS)
        ]
        # Every socket stays open and idle; the server still answers HTTP and websockets.
        live = httpx.get(f"{api.server.functions}/health-check-workers/live", timeout=30)
        assert live.status_code == 200, live.text
        assert api.ok(api.get("update-credits", user=user))["balance"] == 10
        first, last = sockets[0], sockets[-1]
        for n, ws in enumerate((first, last)):
            ws.send(json.dumps([None, str(n), "phoenix", "heartbeat", {}]))
            assert json.loads(ws.recv(timeout=30)) == [
                None,
                str(n),
                "phoenix",
                "phx_reply",
                {"status": "ok", "response": {}},
            ]


def test_concurrent_reads_of_finished_jobs_get_signed_links(api: Any) -> None:
    user = api.user(credits=100)
    job, _ = api.claimed_job(user)
    video = f"{user.id}/{job['id']}.mp4"
    api.put_object("videos", video, MP4, "video/mp4")
    body = {
        "type": "completed",
        "job_id": job["id"],
        "attempt": job["attempt"],
        "output": {"video_path": video},
        "credits_used": 5,
    }
    assert api.ok(api.signed("job-callback", body))["applied"]

    def read(_: int) -> httpx.Response:
        return api.get("generate-video", user=user, params={"id": job["id"]})

    with ThreadPoolExecutor(READERS) as pool:
        answers = list(pool.map(read, range(READERS)))
    outputs = [api.ok(answer)["output"] for answer in answers]
    assert [o.get("links_unavailable") for o in outputs] == [None] * READERS
    assert all(o["video_url"] and o["links_expire_at"] for o in outputs)


def test_a_liveness_probe_answers_while_every_request_thread_waits(api: Any) -> None:
    user = api.user()
    live = f"{api.server.functions}/health-check-workers/live"
    waiting = (
        "select count(*) from pg_stat_activity"
        " where datname = current_database() and wait_event_type = 'Lock'"
    )

    def stuck_in_the_database() -> int:
        with psycopg.connect(api.server.db_url) as conn:
            row = conn.execute(waiting).fetchone()
        return int(row[0]) if row else 0

    with httpx.Client(timeout=30) as prober:
        assert prober.get(live).status_code == 200  # kept alive, as a prober's connection
        with psycopg.connect(api.server.db_url) as locker, ThreadPoolExecutor(THREADS) as pool:
            locker.execute("lock table public.profiles in access exclusive mode")
            reads = [pool.submit(api.get, "update-credits", user=user) for _ in range(THREADS)]
            wait_until(lambda: stuck_in_the_database() >= THREADS, 60, "threads not all busy")
            # Every request thread waits on the lock; the probe has threads of its own.
            answer = prober.get(live, timeout=15)
            locker.rollback()
            answers = [read.result() for read in reads]
    assert answer.status_code == 200 and answer.json()["data"]["status"] == "ok"
    assert [a.status_code for a in answers] == [200] * THREADS
