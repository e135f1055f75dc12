"""The worker protocol from a GPU-worker author's side: the test plays the worker over real
HTTP (register, claim, callbacks) and checks what the backend accepts and ignores."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from e2e_stack import T2V, Stack, User

from videogen.config import LOCAL_SECRET_KEY
from videogen.integrations import webhooks
from videogen.integrations.storage import SupabaseStorage

FORGED_SECRET = "whsec_Zm9yZ2VkLXNlY3JldC1mb3ItdGVzdHMtb25seS0wMQ=="


class FakeWorker:
    """A pull worker made of nothing but signed HTTP calls."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.worker_id = self.front_door(
            {"action": "register", "name": "by-hand", "models": [T2V], "mode": "pull"}
        ).json()["data"]["id"]

    def post(self, url: str, body: dict[str, Any], **sign: Any) -> httpx.Response:
        """A signed POST (``sign`` overrides msg_id, timestamp or secret)."""
        raw = json.dumps(body).encode()
        headers = {"content-type": "application/json", **webhooks.sign(raw, **sign)}
        return self.stack.http.post(url, content=raw, headers=headers)

    def front_door(self, body: dict[str, Any]) -> httpx.Response:
        """POST health-check-workers."""
        return self.post(self.stack.server.url("health-check-workers"), body)

    def claim(self) -> list[dict[str, Any]]:
        """Claim one job."""
        resp = self.front_door({"action": "claim", "worker_id": self.worker_id, "limit": 1})
        assert resp.status_code == 200, resp.text
        jobs: list[dict[str, Any]] = resp.json()["data"]
        return jobs

    def callback(self, job: dict[str, Any], type_: str, **extra: Any) -> httpx.Response:
        """POST job-callback for ``job``'s attempt unless ``attempt`` is given."""
        sign = {k: extra.pop(k) for k in ("msg_id", "timestamp", "secret") if k in extra}
        body = {"type": type_, "job_id": job["job_id"], "attempt": job["attempt"], **extra}
        return self.post(self.stack.server.url("job-callback"), body, **sign)


def _applied(resp: httpx.Response) -> tuple[bool, str | None]:
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    return data["applied"], data.get("reason")


def _events(stack: Stack, job_id: str) -> list[str]:
    rows = stack.sql("select event from public.job_events where job_id = %s order by id", job_id)
    return [r["event"] for r in rows]


def test_only_fresh_signed_current_callbacks_change_a_job(stack: Stack) -> None:
    ada: User = stack.user()
    created = stack.generate(ada)
    worker = FakeWorker(stack)
    (job,) = worker.claim()
    assert job["job_id"] == created["id"] and job["attempt"] == 1 and job["user_id"] == ada.id

    forged = worker.callback(job, "started", secret=FORGED_SECRET)
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "INVALID_SIGNATURE"
    stale = worker.callback(job, "started", timestamp=time.time() - 600)
    assert stale.status_code == 401 and stale.json()["error"]["code"] == "STALE_WEBHOOK"
    assert stack.job_row(job["job_id"])["status"] == "dispatched"

    started = worker.callback(job, "started", msg_id="msg_started_1")
    assert _applied(started) == (True, None)
    replayed = worker.callback(job, "started", msg_id="msg_started_1")
    assert _applied(replayed) == (False, "duplicate_delivery")
    assert _applied(worker.callback(job, "started")) == (False, "duplicate")

    assert _applied(worker.callback(job, "progress", progress=40)) == (True, None)
    assert _applied(worker.callback(job, "progress", progress=30)) == (False, "not_newer")
    wrong_attempt = worker.callback({**job, "attempt": 2}, "progress", progress=60)
    assert _applied(wrong_attempt) == (False, "stale_attempt")

    output = {"video_path": f"{ada.id}/{job['job_id']}.mp4"}
    # A worker stores its video before reporting it (links are signed for existing objects).
    storage = SupabaseStorage(stack.server.base, LOCAL_SECRET_KEY)
    storage.upload("videos", output["video_path"], b"mp4", "video/mp4")
    storage.close()
    assert _applied(worker.callback(job, "completed", output=output)) == (True, None)
    assert _applied(worker.callback(job, "completed", output=output)) == (False, "stale_attempt")
    late_failure = worker.callback(job, "failed", error={"code": "X", "retryable": False})
    assert _applied(late_failure) == (False, "stale_attempt")

    row = stack.job_row(job["job_id"])
    assert row["status"] == "completed" and row["progress"] == 100
    assert _events(stack, job["job_id"]) == [
        "created",
        "dispatched",
        "processing",
        "progress",
        "completed",
    ]
    assert stack.ledger(job["job_id"]) == ["reserve", "capture"]


def test_a_lost_attempt_cannot_finish_the_job(stack: Stack) -> None:
    ada = stack.user()
    created = stack.generate(ada)
    worker = FakeWorker(stack)
    (first,) = worker.claim()
    assert _applied(worker.callback(first, "started")) == (True, None)

    # The lease runs out (the worker went quiet); the sweep requeues, the job is re-claimed.
    stack.sql(
        "update public.jobs set lease_expires_at = now() - interval '1 second' where id = %s",
        created["id"],
    )
    assert stack.sql("select service.jobs_requeue_expired() as r")[0]["r"]["requeued"] == 1
    (second,) = worker.claim()
    assert second["attempt"] == first["attempt"] + 1

    late = worker.callback(first, "completed", output={"title": "the lost attempt"})
    assert _applied(late) == (False, "stale_attempt")
    assert _applied(worker.callback(second, "completed", output={"title": "ok"})) == (True, None)
    row = stack.job_row(created["id"])
    assert row["output"] == {"title": "ok"} and row["failures"] == 1
    assert stack.ledger(created["id"]) == ["reserve", "capture"]


def test_unsigned_worker_calls_are_refused(stack: Stack) -> None:
    body = {"action": "register", "name": "rogue", "models": [T2V]}
    resp = stack.http.post(
        stack.server.url("health-check-workers"),
        json=body,
        headers={"webhook-id": "msg_x", "webhook-timestamp": str(int(time.time())),
                 "webhook-signature": "v1,AAAA"},
    )  # fmt: skip
    assert resp.status_code == 401
    assert not stack.sql("select 1 from public.workers where name = 'rogue'")
