"""Webhooks to the user's server, deadlines and Prefer: wait, over real HTTP: a real
receiver (an HTTP server in the test), real function servers (restarted on one database),
a pull worker that reports through signed callbacks, and the money audit."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import psycopg
import pytest
from functions.conftest import Api, _serving, audit_money
from serverkit import running_server, wait_until
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from videogen.config import LOCAL_SECRET_KEY

LOCAL_HOSTS = {"OUTBOUND_ALLOW_PRIVATE_HOSTS": "true"}


@pytest.fixture(scope="module")
def webhook_api(start_server: Any) -> Iterator[Api]:
    """A server whose deliveries may reach a receiver on 127.0.0.1 (the local stack's
    setting), with fast retries."""
    for client in _serving(
        start_server,
        RATE_LIMIT_PER_MINUTE="100000",
        FREE_CALLS_PER_MINUTE="100000",
        **LOCAL_HOSTS,
    ):
        client.sql(
            "update private.settings set value = '1' where name = 'webhook_retry_base_seconds'"
        )
        yield client


class Receiver:
    """A real HTTP server that records each request and answers from a script (then 200)."""

    def __init__(self, answers: list[int] | None = None) -> None:
        self.answers = list(answers or [])
        self.seen: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.lock:
                    status = outer.answers.pop(0) if outer.answers else 200
                    outer.seen.append(
                        {
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": body,
                            "status": status,
                        }
                    )
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"not now")

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def count(self) -> int:
        with self.lock:
            return len(self.seen)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def secret_of(api: Api, user: Any) -> str:
    data = api.ok(api.get("update-credits/webhook-secret", user=user))
    assert data["secret"].startswith("whsec_")
    return str(data["secret"])


def verify(secret: str, request: dict[str, Any]) -> dict[str, Any]:
    """The body, once standardwebhooks' own verify accepts the signature."""
    verified: dict[str, Any] = Webhook(secret).verify(request["body"], request["headers"])
    return verified


def report(api: Api, job: dict[str, Any], kind: str, **fields: Any) -> httpx.Response:
    return api.signed(
        "job-callback", {"type": kind, "job_id": job["id"], "attempt": job["attempt"], **fields}
    )


def complete(api: Api, job: dict[str, Any]) -> None:
    """The worker's run: started, then completed with a stored video."""
    assert api.ok(report(api, job, "started"))["applied"] is True
    video = f"{job['user_id']}/{job['id']}.mp4"
    api.put_object("videos", video, b"\x00\x00\x00\x18ftypmp42", "video/mp4")
    done = api.ok(report(api, job, "completed", output={"video_path": video}, credits_used=3))
    assert done["applied"] is True


def claim_one(api: Api, worker_id: str) -> dict[str, Any]:
    """Wait for a job to claim (the create may still be in flight); the leased job."""
    leased: list[dict[str, Any]] = []

    def claimed() -> bool:
        got = api.ok(
            api.signed(
                "health-check-workers", {"action": "claim", "worker_id": worker_id, "limit": 1}
            )
        )
        leased.extend(got)
        return bool(got)

    wait_until(claimed, 90, "no job to claim")
    return leased[0]


def credits_of(api: Api, user: Any) -> tuple[int, int]:
    data = api.ok(api.get("update-credits", user=user))
    return data["balance"], data["reserved"]


def attempts(db_url: str) -> int:
    """Attempts recorded on the database's deliveries."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute("select count(*) from public.webhook_delivery_attempts").fetchone()
    return int(row[0]) if row else 0


def postpone(db_url: str, seconds: float) -> None:
    """Set when the pending deliveries are next due (``seconds`` from now)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "update public.webhook_deliveries set next_attempt_at = now()"
            " + make_interval(secs => %s) where status = 'pending'",
            [seconds],
        )


def sweep(api: Api) -> dict[str, Any]:
    summary: dict[str, Any] = api.ok(
        api.get("health-check-workers", headers={"apikey": LOCAL_SECRET_KEY})
    )
    return summary


# Deliveries ---------------------------------------------------------------------------------


def test_a_completed_job_is_delivered_signed_exactly_once_across_a_restart(
    db_url: str, tmp_path: Any
) -> None:
    """The receiver answers 500 twice, then 200; the function server is restarted between
    attempts. One webhook-id, three signed attempts, one success, recorded for the owner."""
    with psycopg.connect(db_url, autocommit=True) as conn:  # retries the test makes due
        conn.execute(
            "update private.settings set value = '600' where name = 'webhook_retry_base_seconds'"
        )
    hook = Receiver([500, 500])
    try:
        with running_server(db_url, tmp_path / "first", **LOCAL_HOSTS) as first:
            api = Api(first)
            user = api.user(credits=100)
            secret = secret_of(api, user)
            model = api.test_model()
            worker_id = api.pull_worker(model)
            created = api.ok(
                api.post(
                    "queue-job",
                    user=user,
                    json={"model": model, "params": {"prompt": "a cat"}, "webhook": hook.url},
                ),
                202,
            )
            assert created["webhook"] == hook.url
            assert created["webhook_events"] == ["canceled", "completed", "failed"]
            try:
                leased = claim_one(api, worker_id)
                job = {"id": leased["job_id"], "attempt": leased["attempt"], "user_id": user.id}
                complete(api, job)
                # The first attempt is recorded; its retry waits for the backoff (made long
                # here, so that stopping the server cuts no send: a cut one waits for its
                # lease, which tests/db/test_webhooks.py covers).
                wait_until(lambda: attempts(db_url) == 1, 90, "the first attempt never came")
            finally:
                api.close()
        # The first server is gone; the delivery waits in the outbox for its retry.
        with running_server(db_url, tmp_path / "second", **LOCAL_HOSTS) as second:
            api = Api(second)
            try:
                api.ok(api.get("queue-job/webhook-deliveries", user=user))  # its first request
                postpone(db_url, 0)  # the backoff is over
                wait_until(lambda: attempts(db_url) == 2, 90, "the second attempt never came")
                postpone(db_url, 0)
                wait_until(lambda: attempts(db_url) == 3, 90, "the third attempt never came")

                def delivered() -> bool:
                    page = api.ok(api.get("queue-job/webhook-deliveries", user=user))
                    return bool(page["items"]) and page["items"][0]["status"] == "delivered"

                wait_until(delivered, 90, "the delivery was never marked delivered")
                sweep(api)  # a drain more: nothing is left to send
                page = api.ok(
                    api.get("queue-job/webhook-deliveries", user=user, params={"job_id": job["id"]})
                )
            finally:
                api.close()
    finally:
        hook.close()

    assert [r["status"] for r in hook.seen] == [500, 500, 200]  # exactly one success
    ids = {r["headers"]["webhook-id"] for r in hook.seen}
    assert len(ids) == 1  # every retry is the same message
    for request in hook.seen:
        body = verify(secret, request)
        assert request["headers"]["videogen-event"] == "job.completed"
        assert body["id"] == job["id"] and body["status"] == "completed"
        assert body["events"][-1]["status"] == "completed"  # the job as GET ?id= answers it
        assert "/storage/v1/object/sign/videos/" in body["output"]["video_url"]
    (delivery,) = page["items"]
    assert page["total"] == 1 and str(delivery["id"]) == ids.pop()
    assert delivery["event"] == "completed" and delivery["attempts"] == 3
    assert [a["status_code"] for a in delivery["attempts_log"]] == [500, 500, 200]
    assert delivery["attempts_log"][0]["next_attempt_at"] is not None
    assert delivery["attempts_log"][-1]["next_attempt_at"] is None
    assert delivery["delivered_at"] is not None and delivery["next_attempt_at"] is None


def test_subscribed_events_arrive_in_order_and_only_those(
    webhook_api: Api, receiver: Receiver
) -> None:
    api = webhook_api
    user = api.user(credits=100)
    secret = secret_of(api, user)
    model = api.test_model()
    worker_id = api.pull_worker(model)
    api.ok(
        api.post(
            "queue-job",
            user=user,
            json={
                "model": model,
                "params": {"prompt": "a dog"},
                "webhook": receiver.url,
                "webhook_events": ["started", "completed"],
            },
        ),
        202,
    )
    leased = claim_one(api, worker_id)
    job = {"id": leased["job_id"], "attempt": leased["attempt"], "user_id": user.id}
    complete(api, job)
    wait_until(lambda: receiver.count() >= 2, 90, "two deliveries never came")
    events = [r["headers"]["videogen-event"] for r in receiver.seen]
    assert sorted(events) == ["job.completed", "job.started"]
    for request in receiver.seen:
        verify(secret, request)
    page = api.ok(api.get("queue-job/webhook-deliveries", user=user, params={"limit": 1}))
    assert page["total"] == 2 and page["has_next"] is True and len(page["items"]) == 1
    # Nobody else sees them.
    stranger = api.user()
    assert api.ok(api.get("queue-job/webhook-deliveries", user=stranger))["total"] == 0


def test_rotating_the_secret_changes_the_signing_key(webhook_api: Api, receiver: Receiver) -> None:
    api = webhook_api
    user = api.user(credits=100)
    old = secret_of(api, user)
    rotated = api.ok(
        api.post("update-credits/webhook-secret", user=user, json={"action": "rotate"})
    )
    new = rotated["secret"]
    assert new != old and rotated["rotated_at"] is not None
    assert secret_of(api, user) == new
    created = api.ok(
        api.post(
            "queue-job",
            user=user,
            json={"model": api.test_model(), "params": {"prompt": "x"}, "webhook": receiver.url},
        ),
        202,
    )
    api.ok(api.delete("queue-job", user=user, params={"id": created["id"]}))
    wait_until(lambda: receiver.count() >= 1, 90, "the canceled delivery never came")
    (request,) = receiver.seen
    assert verify(new, request)["status"] == "canceled"
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(request["body"], request["headers"])


def test_a_batch_webhook_covers_each_job(webhook_api: Api, receiver: Receiver) -> None:
    api = webhook_api
    user = api.user(credits=100)
    model = api.test_model()
    batch = api.ok(
        api.post(
            "queue-job/batches",
            user=user,
            json={
                "items": [{"model": model, "params": {"prompt": p}} for p in ("a", "b")],
                "webhook": receiver.url,
                "webhook_events": ["canceled"],
            },
        ),
        202,
    )
    assert {j["webhook"] for j in batch["jobs"]} == {receiver.url}
    api.ok(api.delete("queue-job/batches", user=user, params={"id": batch["id"]}))
    wait_until(lambda: receiver.count() >= 2, 90, "two canceled deliveries never came")
    bodies = [json.loads(r["body"]) for r in receiver.seen]
    assert sorted(b["id"] for b in bodies) == sorted(j["id"] for j in batch["jobs"])


def test_private_hosts_are_refused_when_not_allowed(api: Api) -> None:
    """The shared server runs with OUTBOUND_ALLOW_PRIVATE_HOSTS unset: nothing is created."""
    user = api.user(credits=100)
    model = api.test_model()
    for url in (
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::ffff:10.0.0.1]/x",
        "https://localhost/hook",
        "http://example.com/hook",  # only https
    ):
        error = api.fails(
            api.post(
                "queue-job",
                user=user,
                json={"model": model, "params": {"prompt": "x"}, "webhook": url},
            ),
            422,
            "URL_NOT_ALLOWED",
        )
        assert error["details"][0]["field"] == "webhook", error
    assert credits_of(api, user) == (100, 0)
    assert api.ok(api.get("queue-job", user=user))["total"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"webhook_events": ["completed"]}, None),  # events without a webhook
        ({"webhook": "https://example.com/h", "webhook_events": ["done"]}, "webhook_events.0"),
        ({"webhook": "ftp://example.com/h"}, "webhook"),
        ({"cancel_after": 0}, "cancel_after"),
        ({"cancel_after": "P30D"}, "cancel_after"),
        ({"cancel_after": "soon"}, "cancel_after"),
    ],
)
def test_delivery_options_are_validated(api: Api, body: dict[str, Any], field: str | None) -> None:
    user = api.user(credits=100)
    resp = api.post(
        "queue-job",
        user=user,
        json={"model": api.test_model(), "params": {"prompt": "x"}, **body},
    )
    assert resp.status_code == 422, resp.text
    if field is not None:
        assert resp.json()["error"]["details"][0]["field"] == field
    assert credits_of(api, user) == (100, 0)


# Deadlines ----------------------------------------------------------------------------------


def test_cancel_after_ends_jobs_and_releases_their_credits(
    webhook_api: Api, receiver: Receiver
) -> None:
    api = webhook_api
    user = api.user(credits=100)
    model = api.test_model()
    worker_id = api.pull_worker(model)
    # One by the body (a job a worker holds), one by the header (a job still queued).
    running = api.ok(
        api.post(
            "queue-job",
            user=user,
            json={
                "model": model,
                "params": {"prompt": "slow"},
                "cancel_after": "PT1S",
                "webhook": receiver.url,
            },
        ),
        202,
    )
    assert running["deadline_at"] is not None
    leased = claim_one(api, worker_id)
    assert leased["job_id"] == running["id"]
    queued = api.ok(
        api.post(
            "queue-job",
            user=user,
            json={"model": api.test_model(), "params": {"prompt": "waits"}},
            headers={"Cancel-After": "1"},
        ),
        202,
    )
    assert queued["deadline_at"] is not None
    assert credits_of(api, user)[1] > 0

    def both_canceled() -> bool:
        sweep(api)  # what pg_cron does every minute in production
        states = [
            api.ok(api.get("queue-job", user=user, params={"id": j["id"]}))["status"]
            for j in (running, queued)
        ]
        return states == ["canceled", "canceled"]

    wait_until(both_canceled, 90, "the deadline never canceled the jobs")
    for job in (running, queued):
        seen = api.ok(api.get("queue-job", user=user, params={"id": job["id"]}))
        assert seen["error_code"] == "DEADLINE"
    assert credits_of(api, user) == (100, 0)  # every credit released
    assert audit_money(api) == []
    # The worker's late report changes nothing; the owner's webhook heard the cancel.
    late = api.ok(
        report(api, {"id": running["id"], "attempt": leased["attempt"]}, "progress", progress=50)
    )
    assert late["applied"] is False
    wait_until(lambda: receiver.count() >= 1, 90, "the canceled delivery never came")
    assert json.loads(receiver.seen[0]["body"])["error_code"] == "DEADLINE"


# Prefer: wait -------------------------------------------------------------------------------


def test_prefer_wait_answers_200_when_the_job_finishes_in_time(webhook_api: Api) -> None:
    api = webhook_api
    user = api.user(credits=100)
    model = api.test_model()
    worker_id = api.pull_worker(model)
    answer: dict[str, httpx.Response] = {}
    key = str(uuid.uuid4())

    def create() -> None:
        answer["resp"] = api.post(
            "queue-job",
            user=user,
            json={"model": model, "params": {"prompt": "quick"}},
            headers={"Prefer": "respond-async, wait=50", "Idempotency-Key": key},
        )

    thread = threading.Thread(target=create)
    thread.start()
    leased = claim_one(api, worker_id)  # the create is still waiting
    complete(api, {"id": leased["job_id"], "attempt": leased["attempt"], "user_id": user.id})
    thread.join(60)
    resp = answer["resp"]
    assert resp.headers["preference-applied"] == "wait=50"
    job = api.ok(resp, 200)
    assert job["id"] == leased["job_id"] and job["status"] == "completed"
    assert job["events"][-1]["status"] == "completed" and job["output"]["video_url"]


def test_prefer_wait_answers_202_when_the_job_does_not_finish(webhook_api: Api) -> None:
    api = webhook_api
    user = api.user(credits=100)
    resp = api.post(
        "queue-job",
        user=user,
        json={"model": api.test_model(), "params": {"prompt": "nobody runs this"}},
        headers={"Prefer": "wait=1"},
    )
    job = api.ok(resp, 202)
    assert job["status"] == "queued" and resp.headers["preference-applied"] == "wait=1"
    # Without the preference nothing waits and nothing says it was applied.
    plain = api.post(
        "queue-job", user=user, json={"model": api.test_model(), "params": {"prompt": "y"}}
    )
    assert api.ok(plain, 202) and "preference-applied" not in plain.headers
    # wait=0 among other preferences: applied, nothing waited for.
    capped = api.post(
        "queue-job/batches",
        user=user,
        json={"items": [{"model": api.test_model(), "params": {"prompt": "z"}}]},
        headers={"Prefer": "wait=0, handling=lenient"},
    )
    assert api.ok(capped, 202) and capped.headers["preference-applied"] == "wait=0"
    for item in (job, *api.ok(api.get("queue-job", user=user))["items"]):
        api.delete("queue-job", user=user, params={"id": item["id"]})
