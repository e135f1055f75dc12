"""Webhooks to users' servers: the outbox's drain, the drainer thread, the signing secret,
the deliveries list; and the deadlines the sweep enforces.

The outbox is ``public.webhook_deliveries`` (sql/schema/22_webhooks.sql): the jobs trigger
writes a row in the transaction of each subscribed change. :func:`drain` leases due rows
(``FOR UPDATE SKIP LOCKED`` with a lease, so concurrent drainers never send one row at the
same time), POSTs each to its URL through :mod:`videogen.integrations.public_http` (public
hosts only, bounded), signed per Standard Webhooks with the owner's secret — ``webhook-id``
is the row's id, the same on every retry — and records the attempt; the database schedules
retries (exponential backoff, bounded by attempts and age). A process that dies mid-send
loses nothing: the row stays pending and its lease runs out.

Who drains: a :class:`Drainer` thread per function process (started on the first request),
woken by ``NOTIFY videogen_webhooks`` at each commit that wrote a row and polling for
retries; and the sweep (``health-check-workers``), which also cancels overdue jobs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from videogen.db import reads
from videogen.db import webhooks as outbox
from videogen.errors import AppError
from videogen.integrations import webhooks as signing
from videogen.integrations.public_http import OutboundFailed, OutboundRefused, PublicHttp
from videogen.models.jobs import Batch, JobWithEvents
from videogen.models.webhooks import (
    ClaimedDelivery,
    DeadlineSweep,
    DeliveryQuery,
    DrainSummary,
    WebhookDeliveryPage,
    WebhookSecret,
)

if TYPE_CHECKING:
    from videogen.config import Settings
    from videogen.db.connection import Database, Session
    from videogen.db.outcomes import Outcome
    from videogen.integrations.storage import Storage
    from videogen.principal import Principal
    from videogen.services.scope import Scope

log = logging.getLogger(__name__)

CHANNEL = "videogen_webhooks"
LEASE_SECONDS = 60  # well over a send's bound (SEND_TIMEOUT_S): one holder at a time
SEND_TIMEOUT_S = 10.0
MAX_ANSWER_BYTES = 64 * 1024  # what we read of a receiver's answer
POLL_SECONDS = 2.0
BATCH = 20
USER_AGENT = "videogen-webhooks/1"


# Sending ----------------------------------------------------------------------------------


def check_url(settings: Settings, url: str, http: PublicHttp | None = None) -> None:
    """422 URL_NOT_ALLOWED unless ``url`` may receive deliveries (https, public host)."""
    client = http or PublicHttp(settings=settings)
    try:
        client.target(url)
    except OutboundRefused as err:
        err.details = [{"field": "webhook", "message": err.message}]
        raise
    finally:
        if http is None:
            client.close()


def payload(delivery: ClaimedDelivery, storage: Storage, expires_in: int) -> bytes:
    """The body: the job as GET ?id= answers it now (fresh links to its files)."""
    # cold start: services.links loads only on this path
    from videogen.services.links import add_links

    if delivery.job is None:  # the job is gone (its owner was deleted)
        return json.dumps({"id": str(delivery.job_id), "status": "unknown"}).encode()
    job = JobWithEvents.model_validate(delivery.job)
    add_links(storage, [job], expires_in)
    return json.dumps(job.model_dump(mode="json", exclude_unset=True)).encode()


def send(
    http: PublicHttp, delivery: ClaimedDelivery, body: bytes
) -> tuple[int | None, str | None, int]:
    """POST one delivery; (status code or None, error or None, milliseconds)."""
    headers = signing.sign(
        body, msg_id=str(delivery.id), timestamp=time.time(), secret=delivery.secret
    )
    headers["Content-Type"] = "application/json"
    headers["videogen-event"] = f"job.{delivery.event}"
    started = time.monotonic()
    try:
        answer = http.post(
            delivery.url,
            content=body,
            headers=headers,
            max_bytes=MAX_ANSWER_BYTES,
            timeout_s=SEND_TIMEOUT_S,
        )
    except (OutboundRefused, OutboundFailed) as err:
        elapsed = int((time.monotonic() - started) * 1000)
        return None, f"{err.reason}: {err.message}", elapsed
    elapsed = int((time.monotonic() - started) * 1000)
    if answer.is_success:
        return answer.status_code, None, elapsed
    return answer.status_code, f"HTTP {answer.status_code}: {answer.text[:200]}", elapsed


def drain(
    db: Database,
    settings: Settings,
    *,
    http: PublicHttp | None = None,
    storage: Storage | None = None,
    limit: int = BATCH,
) -> DrainSummary:
    """Send what is due, ``limit`` at a time until nothing is; each attempt recorded."""
    # cold start: integrations.storage loads only on this path
    from videogen.integrations.storage import storage_for

    summary = DrainSummary()
    claimed = outbox.deliveries_claim(db, limit, LEASE_SECONDS)
    if not claimed:
        return summary  # the usual case: no client made (a TLS context costs ~50 ms)
    client = http or PublicHttp(settings=settings, user_agent=USER_AGENT)
    files = storage or storage_for(settings)
    try:
        while claimed:
            summary.claimed += len(claimed)
            with ThreadPoolExecutor(max_workers=min(8, len(claimed))) as pool:
                results = list(
                    pool.map(lambda d: _deliver(db, settings, client, files, d), claimed)
                )
            for status in results:
                if status == "delivered":
                    summary.delivered += 1
                elif status == "failed":
                    summary.failed += 1
                elif status == "pending":
                    summary.retrying += 1
            claimed = (
                outbox.deliveries_claim(db, limit, LEASE_SECONDS) if len(claimed) == limit else []
            )
    finally:
        if http is None:
            client.close()
    return summary


def _deliver(
    db: Database,
    settings: Settings,
    http: PublicHttp,
    storage: Storage,
    delivery: ClaimedDelivery,
) -> str:
    try:
        body = payload(delivery, storage, settings.signed_url_expires_s)
        status_code, error, elapsed = send(http, delivery, body)
    except Exception as exc:  # never lose the attempt: it is recorded as failed
        log.exception("webhook delivery %s could not be sent", delivery.id)
        status_code, error, elapsed = None, f"internal: {type(exc).__name__}", 0
    recorded = outbox.delivery_record(
        db, str(delivery.id), delivery.attempt, status_code, error, elapsed
    )
    state = str((recorded.get("delivery") or {}).get("status") or "")
    log.info(
        "webhook %s %s attempt %d → %s",
        delivery.id,
        delivery.event,
        delivery.attempt,
        status_code or error,
        extra={"fields": {"delivery_id": str(delivery.id), "state": state}},
    )
    return state


# The drainer thread -----------------------------------------------------------------------


class Drainer:
    """One thread per process: drains on ``NOTIFY videogen_webhooks`` (the commit of a change
    that wrote a delivery) and every ``poll_s`` (retries that came due). With the PostgREST
    adapter there is no LISTEN: it polls."""

    def __init__(self, db: Database, settings: Settings, poll_s: float = POLL_SECONDS) -> None:
        self.db = db
        self.settings = settings
        self.poll_s = poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook-drainer", daemon=True)

    def start(self) -> None:
        """Run in the background."""
        self._thread.start()

    def kick(self) -> None:
        """Drain now (e.g. right after a commit that wrote a delivery)."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread (tests)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        listener = None
        failures = 0
        while not self._stop.is_set():
            try:
                if listener is None and self.settings.db_adapter == "postgres":
                    listener = self._listen()
                drain(self.db, self.settings)
                failures = 0
                self._wait(listener)
            except Exception as exc:  # the database may be down: try again, more slowly
                failures += 1
                log.warning("webhook drainer: %s", type(exc).__name__)
                if listener is not None:
                    _close(listener)
                    listener = None
                self._stop.wait(min(30.0, self.poll_s * 2**failures))
        if listener is not None:
            _close(listener)

    def _listen(self) -> object:
        import psycopg  # cold start: only the drainer thread listens

        conn = psycopg.connect(self.settings.database_url, autocommit=True, connect_timeout=5)
        conn.execute(f"listen {CHANNEL}")
        return conn

    def _wait(self, listener: object) -> None:
        if self._wake.is_set():
            self._wake.clear()
            return
        if listener is None:
            self._wake.wait(self.poll_s)
            self._wake.clear()
            return
        for _ in listener.notifies(timeout=self.poll_s, stop_after=1):  # type: ignore[attr-defined]
            break


def _close(conn: object) -> None:
    with contextlib.suppress(Exception):  # a broken connection is being dropped anyway
        conn.close()  # type: ignore[attr-defined]


_drainer: Drainer | None = None
_drainer_lock = threading.Lock()


def ensure_drainer(db: Database, settings: Settings) -> Drainer:
    """This process's drainer, started on first use."""
    global _drainer
    with _drainer_lock:
        if _drainer is None:
            _drainer = Drainer(db, settings)
            _drainer.start()
        return _drainer


# Secrets and the deliveries list ----------------------------------------------------------


def secret(db: Database, principal: Principal) -> WebhookSecret:
    """The user's signing secret (made on first use)."""
    return outbox.secret_get(db, principal)


def rotate_secret(scope: Scope) -> Outcome[WebhookSecret]:
    """A new signing secret; the old one signs nothing from now on. Takes no
    Idempotency-Key: the answer holds the secret, which no key's stored answer may keep."""
    from dataclasses import replace  # cold start: only a rotation needs it

    # cold start: db.writes loads only on this path
    from videogen.db.writes import record_refusal

    unkeyed = replace(scope.write, key=None, hash="")
    try:
        return outbox.secret_rotate_request(scope.db, scope.principal, unkeyed)
    except AppError as err:
        record_refusal(scope.db, unkeyed, err)
        raise


def deliveries(session: Session, query: DeliveryQuery) -> WebhookDeliveryPage:
    """A page of the caller's deliveries with their attempts, newest first."""
    result = outbox.list_deliveries(
        session,
        None if query.job_id is None else str(query.job_id),
        query.limit,
        (query.page - 1) * query.limit,
    )
    return WebhookDeliveryPage.of(result["items"], result["total"], query.page, query.limit)


# Deadlines ---------------------------------------------------------------------------------


def cancel_overdue(db: Database, settings: Settings, limit: int = 500) -> DeadlineSweep:
    """Cancel unfinished jobs past their deadline (credits released, error_code DEADLINE)
    and tell whoever was running them, after the commit."""
    from videogen.services import routing  # cold start: services.routing loads only on this path

    count, running = outbox.jobs_cancel_overdue(db, limit)
    told = sum(routing.notify_cancel(settings, canceled, db=db) for canceled in running)
    return DeadlineSweep(canceled=count, notified=told)


# Prefer: wait -----------------------------------------------------------------------------


def wait_for_job(
    db: Database, principal: Principal, job_id: str, seconds: float
) -> JobWithEvents | None:
    """The job once it has finished, if it does within ``seconds`` (reads as its owner,
    backing off from 50 ms to 1 s; no lock held); else None."""
    deadline = time.monotonic() + seconds
    pause = 0.05
    while True:
        with db.session(principal) as session:
            job = reads.get_job(session, job_id)
        if job is None or job.finished_at is not None:
            return job
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        time.sleep(min(pause, left))
        pause = min(pause * 2, 1.0)


def wait_for_batch(
    db: Database, principal: Principal, batch_id: str, seconds: float
) -> Batch | None:
    """The batch once all its jobs have finished, within ``seconds``; else None."""
    deadline = time.monotonic() + seconds
    pause = 0.05
    while True:
        with db.session(principal) as session:
            batch = reads.get_batch(session, batch_id)
        if batch is None or all(job.finished_at is not None for job in batch.jobs):
            return batch
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        time.sleep(min(pause, left))
        pause = min(pause * 2, 1.0)
