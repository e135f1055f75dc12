"""Every answer of the functions is what its pydantic model (videogen.models, the source of
openapi.yaml) says — checked on real answers, field by field, not only by fuzzing."""

from __future__ import annotations

import uuid

from videogen.config import LOCAL_PUBLISHABLE_KEY, LOCAL_SECRET_KEY
from videogen.models.catalogue import ModelList
from videogen.models.common import ErrorEnvelope
from videogen.models.credits import CreditResult, CreditsOverview
from videogen.models.jobs import CancelResult, Job, JobChange, JobPage, JobWithEvents
from videogen.models.ops import SweepSummary
from videogen.models.workers import HeartbeatResult, WorkerJob, WorkerJobList

T2V = "reference/text-to-video"


def test_job_answers_match_their_models(api):
    user = api.user(credits=100)
    job = Job.model_validate(
        api.ok(api.post("generate-video", user=user, json={"model": T2V, "prompt": "a fox"}), 202)
    )
    one = api.ok(api.get("generate-video", user=user, params={"id": str(job.id)}))
    assert JobWithEvents.model_validate(one).events[0].event == "created"
    page = JobPage.model_validate(api.ok(api.get("queue-job", user=user)))
    assert [j.id for j in page.items] == [job.id]
    canceled = api.ok(api.delete("queue-job", user=user, params={"id": str(job.id)}))
    assert CancelResult.model_validate(canceled).job.status == "canceled"
    models = api.ok(api.get("queue-job/models", headers={"apikey": LOCAL_PUBLISHABLE_KEY}))
    assert T2V in {m.id for m in ModelList.model_validate(models).root}


def test_credit_answers_match_their_models(api):
    user = api.user()
    claim = api.ok(api.post("update-credits", user=user, json={"action": "claim_initial_grant"}))
    assert CreditResult.model_validate(claim).applied is True
    grant = {"action": "grant", "user_id": user.id, "amount": 5, "grant_id": str(uuid.uuid4())}
    granted = api.ok(api.post("update-credits", json=grant, headers={"apikey": LOCAL_SECRET_KEY}))
    assert CreditResult.model_validate(granted).entry is not None
    overview = CreditsOverview.model_validate(api.ok(api.get("update-credits", user=user)))
    assert [e.kind for e in overview.ledger.items] == ["grant", "initial_grant"]


def test_worker_answers_match_their_models(api):
    user = api.user(credits=100)
    job, worker_id = api.claimed_job(user)
    assert Job.model_validate(job).status == "dispatched"
    beat = api.signed("health-check-workers", {"action": "heartbeat", "worker_id": worker_id})
    held = HeartbeatResult.model_validate(api.ok(beat))
    assert [str(j.job_id) for j in held.jobs] == [job["id"]]
    report = {"type": "started", "job_id": job["id"], "attempt": job["attempt"]}
    started = JobChange.model_validate(api.ok(api.signed("job-callback", report)))
    assert started.applied is True and started.job is not None
    sweep = api.ok(api.get("health-check-workers", headers={"apikey": LOCAL_SECRET_KEY}))
    assert SweepSummary.model_validate(sweep).reconciled >= 0


def test_a_claim_answers_jobs_as_a_push_sends_them(api):
    model = api.test_model()
    worker_id = api.pull_worker(model)
    user = api.user(credits=100)
    job = api.ok(api.post("queue-job", user=user, json={"model": model}), 202)
    claim = {"action": "claim", "worker_id": worker_id, "limit": 2}
    [leased] = WorkerJobList.model_validate(api.ok(api.signed("health-check-workers", claim))).root
    assert (str(leased.job_id), leased.attempt, leased.model) == (job["id"], 1, model)
    assert set(leased.model_dump()) == set(WorkerJob.model_fields)


def test_error_answers_match_the_error_envelope(api):
    resp = api.post("generate-video", json={"model": T2V, "prompt": "a fox"})
    envelope = ErrorEnvelope.model_validate(resp.json())
    assert envelope.error.code == "UNAUTHORIZED" and resp.status_code == 401
