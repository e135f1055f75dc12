"""When workers die, hang, fail, get canceled or shut down: every job ends exactly once and
its credits are captured or released exactly once."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import psycopg
import pytest
from e2e_stack import Stack, User, pid_alive
from psycopg.conninfo import make_conninfo


def _event_names(stack: Stack, job_id: str) -> list[str]:
    rows = stack.sql("select event from public.job_events where job_id = %s order by id", job_id)
    return [r["event"] for r in rows]


def _assert_charged_once(stack: Stack, user: User, job: dict[str, Any]) -> None:
    assert stack.ledger(job["id"]) == ["reserve", "capture"]
    assert stack.balance(user) == {"balance": 100 - job["cost"], "reserved": 0}
    last = stack.sql(
        "select balance_after from public.credit_ledger where user_id = %s order by id desc",
        user.id,
    )[0]
    assert last["balance_after"] == 100 - job["cost"]


def _assert_released(stack: Stack, user: User, job_id: str) -> None:
    assert stack.ledger(job_id) == ["reserve", "release"]
    assert stack.balance(user) == {"balance": 100, "reserved": 0}


def test_killed_worker_job_is_requeued_and_finished_elsewhere(stack: Stack) -> None:
    stack.model(lease_seconds=5)
    ada = stack.user()
    doomed = stack.start_worker("doomed", "--crash-at", "40", "--speed", "1")
    created = stack.generate(ada, duration=3)

    assert doomed.proc.wait(timeout=20) == 137  # died mid-render, like kill -9
    row = stack.job_row(created["id"])
    assert row["status"] == "processing" and row["worker_id"] == doomed.worker_id

    rescuer = stack.start_worker("rescuer")
    row = stack.wait_status(created["id"], "completed", "failed", timeout=180, sweep_every=1.0)

    assert row["status"] == "completed" and row["worker_id"] == rescuer.worker_id
    assert row["failures"] == 1 and row["attempt"] >= 2
    requeued = stack.sql(
        "select data from public.job_events where job_id = %s and event = 'queued'",
        created["id"],
    )
    assert requeued and requeued[0]["data"]["error_code"] == "LEASE_EXPIRED"
    _assert_charged_once(stack, ada, row)


def test_hung_worker_loses_the_job_after_its_lease(stack: Stack) -> None:
    stack.model(lease_seconds=5)
    ada = stack.user()
    hung = stack.start_worker("hung", "--hang-at", "30", "--speed", "1", "--capacity", "1")
    created = stack.generate(ada, duration=3)

    stack.wait_for(created["id"], lambda r: r["status"] == "processing")
    deadline = time.monotonic() + 10
    while hung.health().json()["status"] != "hung":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert hung.health().status_code == 503

    row = stack.wait_for(created["id"], lambda r: r["failures"] == 1, timeout=180, sweep_every=1.0)
    assert row["status"] == "queued" and row["error_code"] in ("LEASE_EXPIRED", "DISPATCH_FAILED")
    assert hung.alive()  # hung, not dead: it just stopped vouching for the job

    rescuer = stack.start_worker("rescuer")
    row = stack.wait_status(created["id"], "completed", "failed", timeout=180, sweep_every=1.0)
    assert row["status"] == "completed" and row["worker_id"] == rescuer.worker_id
    _assert_charged_once(stack, ada, row)


def test_failing_every_attempt_fails_the_job_and_releases_credits(stack: Stack) -> None:
    stack.model(max_attempts=2)
    ada = stack.user()
    stack.start_worker("flaky", "--fail-at", "10")
    created = stack.generate(ada, duration=2)

    row = stack.wait_status(created["id"], "failed", "completed", timeout=180, sweep_every=1.0)

    assert row["status"] == "failed" and row["error_code"] == "INJECTED_FAILURE"
    assert row["failures"] == 2
    events = _event_names(stack, created["id"])
    assert events.count("processing") == 2 and events[-1] == "failed"
    _assert_released(stack, ada, created["id"])


def test_cancel_reaches_the_worker_and_stops_the_render(stack: Stack) -> None:
    ada = stack.user()
    worker = stack.start_worker("busy", "--speed", "1")
    created = stack.generate(ada, duration=8)
    stack.wait_for(created["id"], lambda r: r["status"] == "processing" and r["progress"] >= 5)
    renders = worker.children()
    assert renders, "ffmpeg should be running"

    resp = stack.http.delete(
        stack.server.url("queue-job"), params={"id": created["id"]}, headers=ada.headers
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["worker_notified"] is True

    deadline = time.monotonic() + 10
    while worker.health().json()["in_flight"] or any(pid_alive(p) for p in renders):
        assert time.monotonic() < deadline, "the render kept running"
        time.sleep(0.1)
    time.sleep(1.5)  # nothing more may arrive from the stopped attempt
    assert stack.job_row(created["id"])["status"] == "canceled"
    assert _event_names(stack, created["id"])[-1] == "canceled"
    _assert_released(stack, ada, created["id"])


def test_sigterm_drains_running_jobs_then_exits(stack: Stack) -> None:
    ada = stack.user()
    # The drain waits for the running job however slow the machine is: what is tested is
    # that it finishes the job, not how fast (the stack's default drain is 5 s).
    worker = stack.start_worker("leaving", "--speed", "1", "--drain-timeout", "600")
    created = stack.generate(ada, duration=3)
    stack.wait_for(created["id"], lambda r: r["status"] == "processing")

    worker.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 60
    while (
        stack.sql("select status from public.workers where name = 'leaving'")[0]["status"]
        != "draining"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert worker.health().status_code == 503  # no new work while draining

    assert worker.proc.wait(timeout=600) == 0
    row = stack.job_row(created["id"])
    assert row["status"] == "completed"
    _assert_charged_once(stack, ada, row)


# A callback whose answer is lost -------------------------------------------------------------


class _LossyProxy(ThreadingHTTPServer):
    """Forwards to the functions; answers the first ``completed`` callback with a 502 after
    it was delivered, as a load balancer dropping the response would."""

    daemon_threads = True

    def __init__(self, target: str) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.target = target
        self.completed: list[str] = []  # webhook-ids of completed callbacks, in order

    @property
    def url(self) -> str:
        """Base URL standing in for FUNCTIONS_URL."""
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(BaseHTTPRequestHandler):
    server: _LossyProxy

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        keep = ("content-type", "webhook-id", "webhook-timestamp", "webhook-signature")
        headers = {k: v for k, v in self.headers.items() if k.lower() in keep}
        resp = httpx.post(self.server.target + self.path, content=raw, headers=headers, timeout=30)
        status, body = resp.status_code, resp.content
        if self.path.endswith("/job-callback") and json.loads(raw).get("type") == "completed":
            self.server.completed.append(self.headers["webhook-id"])
            if len(self.server.completed) == 1:
                status, body = 502, b'{"error": "bad gateway"}'
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def lossy_proxy(stack: Stack) -> Iterator[_LossyProxy]:
    """A proxy in front of the functions that loses one response."""
    proxy = _LossyProxy(stack.server.functions)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_lost_callback_answer_is_retried_and_applied_once(
    stack: Stack, lossy_proxy: _LossyProxy
) -> None:
    ada = stack.user()
    created = stack.generate(ada, duration=1)
    stack.start_worker("retrier", "--mode", "pull", "--functions-url", lossy_proxy.url)

    row = stack.wait_status(created["id"], "completed", "failed")
    deadline = time.monotonic() + 5
    while len(lossy_proxy.completed) < 2:
        assert time.monotonic() < deadline, "the worker did not retry"
        time.sleep(0.1)

    first, retry = lossy_proxy.completed[:2]
    assert first == retry  # the same webhook-id, so the backend sees a duplicate
    assert row["status"] == "completed"
    assert _event_names(stack, created["id"]).count("completed") == 1
    receipts = stack.sql("select 1 from private.webhook_receipts where webhook_id = %s", first)
    assert len(receipts) == 1
    _assert_charged_once(stack, ada, row)


def test_database_outage_mid_job_is_ridden_out(stack: Stack) -> None:
    """Stand-in for a Postgres restart: every connection to this test's database is cut and
    new ones are refused for a while. (Restarting the server itself would also cut the
    other databases of the shared test cluster.)"""
    ada = stack.user()
    steady = stack.start_worker("steady", "--speed", "1")
    created = stack.generate(ada, duration=2)
    stack.wait_for(created["id"], lambda r: r["progress"] >= 20)

    name = stack.sql("select current_database() as db")[0]["db"]
    maintenance = make_conninfo(stack.server.db_url, dbname="postgres")
    with psycopg.connect(maintenance, autocommit=True) as admin:
        admin.execute(f'alter database "{name}" allow_connections false')
        try:
            admin.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s",
                [name],
            )
            time.sleep(3.0)  # the render ends meanwhile: its completed callback must retry
        finally:
            admin.execute(f'alter database "{name}" allow_connections true')
    stack.reconnect()

    row = stack.wait_status(created["id"], "completed", "failed", timeout=180)
    assert row["status"] == "completed" and row["attempt"] == 1
    assert "SERVICE_UNAVAILABLE" in steady.log.read_text()  # the outage was felt
    _assert_charged_once(stack, ada, row)
