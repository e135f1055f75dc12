"""What a frontend team leans on all day against the dev server (THREADS=8 here): open
websockets hold no request thread, and functions that sign links to their outputs reach the
server's own Storage API without waiting for another of its threads."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import httpx
from websockets.sync.client import connect

from videogen.config import LOCAL_PUBLISHABLE_KEY

MP4 = b"\x00\x00\x00\x18ftypmp42"
IDLE_SOCKETS = 120  # far more than the server's 8 threads (the bench holds 500)
READERS = 32  # concurrent reads of a finished job, 4 per thread


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
