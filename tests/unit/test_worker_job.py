"""The push body, the claim's answer and the reference worker's job are one model
(videogen.models.workers.WorkerJob); a cancel notice reaches the worker of the job and of
each section clip canceled with it."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from pydantic import ValidationError
from videogen_worker.job import JobRun

from videogen.config import Settings
from videogen.models.jobs import Job
from videogen.models.workers import Cancellation
from videogen.services.routing import notify_cancel, worker_job


def a_job(**changes: object) -> Job:
    """A dispatched job as the procedures return it."""
    now = "2026-12-01T12:00:00+00:00"
    row = {
        "id": str(uuid.uuid4()),
        "user_id": str(uuid.uuid4()),
        "model_id": "reference/text-to-video",
        "job_type": "text_to_video",
        "status": "dispatched",
        "params": {"prompt": "a fox", "duration": 3},
        "priority": 0,
        "cost": 5,
        "credits_used": None,
        "progress": 0,
        "progress_message": None,
        "attempt": 2,
        "failures": 1,
        "max_attempts": 3,
        "worker_id": str(uuid.uuid4()),
        "provider": "reference",
        "lease_expires_at": now,
        "run_after": now,
        "output": None,
        "error_code": None,
        "error_message": None,
        "created_at": now,
        "updated_at": now,
        "dispatched_at": now,
        "started_at": None,
        "finished_at": None,
    }
    return Job.model_validate({**row, **changes})


def test_the_push_body_is_the_model_the_worker_reads():
    """routing.worker_job builds a WorkerJob; the reference worker validates the same."""
    job = a_job()
    body = worker_job(job, Settings()).model_dump(mode="json")
    run = JobRun.of(body)
    assert (run.job_id, run.attempt, run.model, run.cost) == (str(job.id), 2, job.model_id, 5)
    assert run.callback_url.endswith("/job-callback")
    with pytest.raises(ValidationError):
        JobRun.of({**body, "attempt": "two"})


def test_a_job_that_was_never_dispatched_is_no_worker_job():
    """Attempt 0 means nobody holds it: there is nothing to send a worker."""
    with pytest.raises(ValidationError):
        worker_job(a_job(attempt=0, status="queued"), Settings())


def test_a_cancel_notice_reaches_the_workers_of_the_job_and_of_its_clips():
    """private.job_cancellation's shape: the compose job's worker and each clip's are told,
    each at its own URL with its own job and attempt; one that fails does not stop the rest."""
    compose, clip, lost = a_job(job_type="compose"), a_job(attempt=1), a_job(attempt=3)

    def notice(job: Job, url: str, **more: object) -> dict[str, object]:
        return {"job": job.model_dump(mode="json"),
                "notify": {"worker_id": str(uuid.uuid4()), "url": url}, **more}  # fmt: skip

    canceled = Cancellation.model_validate(
        notice(compose, "http://gpu-a", clips=[notice(lost, "http://gone"), notice(clip, "http://gpu-b/")])
    )  # fmt: skip
    told: list[tuple[str, dict[str, object]]] = []

    def worker(request: httpx.Request) -> httpx.Response:
        if request.url.host == "gone":
            raise httpx.ConnectError("no route", request=request)
        told.append((str(request.url), json.loads(request.content)))
        assert "webhook-signature" in request.headers
        return httpx.Response(200, json={"ok": True})

    with httpx.Client(transport=httpx.MockTransport(worker)) as client:
        assert notify_cancel(Settings(), canceled, client) is True
    assert told == [
        (f"http://gpu-b/jobs/{clip.id}/cancel", {"job_id": str(clip.id), "attempt": 1}),
        (f"http://gpu-a/jobs/{compose.id}/cancel", {"job_id": str(compose.id), "attempt": 2}),
    ]
