"""The push body and the reference worker's job are one model (videogen.results.WorkerJob)."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError
from videogen_worker.job import JobRun

from videogen.config import Settings
from videogen.routing import push_payload


def test_the_push_body_is_the_model_the_worker_reads():
    """routing.push_payload builds a WorkerJob; the reference worker validates the same."""

    job = {
        "id": str(uuid.uuid4()),
        "attempt": 2,
        "user_id": str(uuid.uuid4()),
        "model_id": "reference/text-to-video",
        "job_type": "text_to_video",
        "params": {"prompt": "a fox", "duration": 3},
        "cost": 5,
        "lease_expires_at": "2026-12-01T12:00:00+00:00",
    }
    body = push_payload(job, Settings())
    run = JobRun.from_push(body)
    assert (run.job_id, run.attempt, run.model, run.cost) == (job["id"], 2, job["model_id"], 5)
    assert run.callback_url.endswith("/job-callback")
    with pytest.raises(ValidationError):
        JobRun.from_push({**body, "attempt": "two"})
