"""job-callback and health-check-workers over real HTTP: signed worker traffic and the sweep."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest

from videogen.config import LOCAL_CRON_SECRET, LOCAL_SECRET_KEY, LOCAL_SERVICE_ROLE_KEY


def job_of(api, user, job_id):
    return api.ok(api.get("queue-job", user=user, params={"id": job_id}))


def credits_of(api, user):
    data = api.ok(api.get("update-credits", user=user))
    return data["balance"], data["reserved"]


def report(api, job, kind, **fields):
    return api.signed(
        "job-callback", {"type": kind, "job_id": job["id"], "attempt": job["attempt"], **fields}
    )


# job-callback -----------------------------------------------------------------------------


def test_callbacks_take_a_job_from_claim_to_completed(api):
    user = api.user(credits=100)
    job, _ = api.claimed_job(user)
    assert (job["status"], job["attempt"]) == ("dispatched", 1)
    assert credits_of(api, user) == (89, 11)

    started = api.ok(report(api, job, "started"))
    assert started["applied"] is True and started["job"]["status"] == "processing"
    progress = api.ok(report(api, job, "progress", progress=40, message="frames"))
    assert progress["job"]["progress"] == 40
    older = api.ok(report(api, job, "progress", progress=30))
    assert (older["applied"], older["reason"]) == (False, "not_newer")

    video = f"{job['user_id']}/{job['id']}.mp4"
    # The worker stores the video (through the server's Storage API) before reporting it:
    # links are signed for objects that exist, as Supabase Storage signs them.
    api.put_object("videos", video, b"\x00\x00\x00\x18ftypmp42", "video/mp4")
    done = api.ok(
        report(api, job, "completed", output={"video_path": video, "width": 640}, credits_used=9)
    )
    assert done["applied"] is True and done["job"]["status"] == "completed"
    assert credits_of(api, user) == (91, 0)  # 9 captured, 2 released

    seen = job_of(api, user, job["id"])
    link = seen["output"].pop("video_url")  # signed by us from the path, never the worker's
    assert f"/storage/v1/object/sign/videos/{video}?" in link
    assert api.http.get(link).content.endswith(b"ftypmp42")  # signed now, and it works
    until = datetime.fromisoformat(seen["output"].pop("links_expire_at"))
    assert 3500 < (until - datetime.now(UTC)).total_seconds() <= 3600  # SIGNED_URL_EXPIRES
    assert seen["output"] == {"video_path": video, "width": 640}
    assert seen["credits_used"] == 9
    events = [e["status"] for e in seen["events"]]
    assert events[0] == "queued" and events[-1] == "completed"

    late = api.ok(report(api, job, "failed", error={"code": "OOM", "retryable": False}))
    assert (late["applied"], late["reason"]) == (False, "stale_attempt")
    assert credits_of(api, user) == (91, 0)


def test_failed_callback_releases_credits_or_retries(api):
    user = api.user(credits=100)
    model = api.test_model(max_attempts=2)
    job, _ = api.claimed_job(user, model)
    retried = api.ok(report(api, job, "failed", error={"code": "GPU_LOST", "retryable": True}))
    assert retried["job"]["status"] == "queued"  # one failure of two allowed: back in line
    assert credits_of(api, user) == (89, 11)

    job2, _ = api.claimed_job(user)
    failed = api.ok(
        report(
            api, job2, "failed", error={"code": "BAD_INPUT", "message": "no", "retryable": False}
        )
    )
    assert failed["job"]["status"] == "failed" and failed["job"]["error_code"] == "BAD_INPUT"
    assert credits_of(api, user) == (89, 11)  # only the retried job still holds credits


def test_replayed_webhook_id_is_applied_once(api):
    user = api.user(credits=100)
    job, _ = api.claimed_job(user)
    payload = {"type": "progress", "job_id": job["id"], "attempt": 1, "progress": 10}
    first = api.ok(api.signed("job-callback", payload, msg_id="msg_replay_" + job["id"]))
    assert first["applied"] is True
    payload["progress"] = 50  # same delivery id, even with another body that is signed again
    again = api.ok(api.signed("job-callback", payload, msg_id="msg_replay_" + job["id"]))
    assert again == {"applied": False, "reason": "duplicate_delivery"}
    assert job_of(api, user, job["id"])["progress"] == 10


def test_late_attempt_changes_nothing(api):
    user = api.user(credits=100)
    job, _ = api.claimed_job(user)
    stale = api.ok(report(api, {**job, "attempt": 2}, "completed", output={}))
    assert (stale["applied"], stale["reason"]) == (False, "stale_attempt")
    assert stale["job"]["status"] == "dispatched"
    assert credits_of(api, user) == (89, 11)


def test_callback_after_cancel_is_not_applied(api):
    user = api.user(credits=100)
    job, _ = api.claimed_job(user)
    canceled = api.ok(api.delete("queue-job", user=user, params={"id": job["id"]}))
    assert canceled["worker_notified"] is False  # a pull worker has no URL to tell
    done = api.ok(report(api, job, "completed", output={}))
    assert (done["applied"], done["job"]["status"]) == (False, "canceled")
    assert credits_of(api, user) == (100, 0)


def test_a_replayed_cancel_answers_what_the_first_did_and_no_more(api):
    """The stored answer is the client's {job, worker_notified}: the routing facts (which
    worker, its URL, the provider's id) never reach a user through a replay."""
    user = api.user(credits=100)
    job, _ = api.claimed_job(user)
    key = {"Idempotency-Key": f"cancel-{job['id']}"}
    first = api.delete("queue-job", user=user, params={"id": job["id"]}, headers=key)
    again = api.delete("queue-job", user=user, params={"id": job["id"]}, headers=key)
    assert again.headers.get("idempotent-replayed") == "true"
    assert api.ok(again) == api.ok(first)
    assert set(api.ok(again)) == {"job", "worker_notified"}


def test_forged_stale_and_unsigned_callbacks_are_401(api):
    user = api.user(credits=100)
    job, _ = api.claimed_job(user)
    payload = {"type": "started", "job_id": job["id"], "attempt": 1}
    api.fails(api.signed("job-callback", payload, tamper=True), 401, "INVALID_SIGNATURE")
    other_secret = "whsec_" + "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC0wMDAwMDA="
    api.fails(api.signed("job-callback", payload, secret=other_secret), 401, "INVALID_SIGNATURE")
    api.fails(
        api.signed("job-callback", payload, timestamp=time.time() - 600), 401, "STALE_WEBHOOK"
    )
    api.fails(
        api.signed("job-callback", payload, timestamp=time.time() + 600), 401, "STALE_WEBHOOK"
    )
    api.fails(api.post("job-callback", json=payload), 401, "INVALID_SIGNATURE")
    assert job_of(api, user, job["id"])["status"] == "dispatched"  # none of them applied


def test_callback_errors(api):
    unknown = {"type": "started", "job_id": str(uuid.uuid4()), "attempt": 1}
    api.fails(api.signed("job-callback", unknown), 404, "JOB_NOT_FOUND")
    bad = {"type": "progress", "job_id": str(uuid.uuid4()), "attempt": 1, "progress": 101}
    error = api.fails(api.signed("job-callback", bad), 422, "VALIDATION_ERROR")
    assert [d["field"] for d in error["details"]] == ["progress"]
    api.fails(api.signed("job-callback", {"type": "exploded"}), 422, "VALIDATION_ERROR")
    api.fails(api.signed("job-callback", "not an object"), 422, "VALIDATION_ERROR")


def test_provider_callbacks_name_a_known_provider(api):
    # The provider names the signature scheme: an unknown one cannot be authenticated.
    error = api.fails(
        api.post("job-callback", params={"provider": "acme"}, json={}), 401, "INVALID_SIGNATURE"
    )
    assert "fal" in error["hint"]
    # Known, but this deployment has no FAL_KEY.
    api.fails(
        api.post("job-callback", params={"provider": "fal"}, json={}),
        503,
        "PROVIDER_NOT_CONFIGURED",
    )


# health-check-workers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"x-cron-secret": LOCAL_CRON_SECRET},
        {"Authorization": f"Bearer {LOCAL_CRON_SECRET}"},
        {"apikey": LOCAL_SECRET_KEY},
        {"Authorization": f"Bearer {LOCAL_SECRET_KEY}"},
        {"apikey": LOCAL_SERVICE_ROLE_KEY},
    ],
)
def test_sweep_with_cron_secret_or_secret_key(api, headers):
    summary = api.ok(api.get("health-check-workers", headers=headers))
    assert set(summary) == {
        "workers",
        "leases",
        "deadlines",
        "webhooks",
        "reconciled",
        "runpod_endpoints",
        "dispatched",
        "retention",
        "tiers_expired",
        "cleanup",
        "money_audit",
    }
    assert summary["money_audit"] == {"differences": 0}
    assert summary["runpod_endpoints"] == []  # RUNPOD_API_KEY is not set here


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "UNAUTHORIZED"),
        ({"x-cron-secret": "wrong"}, "UNAUTHORIZED"),
        ({"apikey": "sb_secret_wrong"}, "INVALID_API_KEY"),
    ],
)
def test_sweep_refuses_other_callers(api, headers, code):
    api.fails(api.get("health-check-workers", headers=headers), 401, code)
    api.fails(api.post("health-check-workers", headers=headers, json={"action": "sweep"}), 401)


def test_sweep_refuses_a_user_token(api):
    api.fails(api.get("health-check-workers", user=api.user()), 401)


def test_sweep_by_post_and_unsigned_worker_actions(api):
    cron = {"x-cron-secret": LOCAL_CRON_SECRET}
    api.ok(api.post("health-check-workers", headers=cron))  # no body: a sweep
    api.ok(api.post("health-check-workers", headers=cron, json={"action": "sweep"}))
    # Worker actions must be signed: unsigned, the body is read as a sweep and refused.
    api.fails(
        api.post("health-check-workers", headers=cron, json={"action": "claim", "worker_id": "x"}),
        422,
        "VALIDATION_ERROR",
    )


def test_sweep_requeues_expired_leases(api):
    user = api.user(credits=100)
    job, _ = api.claimed_job(user)
    api.sql(
        "update public.jobs set lease_expires_at = now() - interval '1 minute' where id = %s",
        [job["id"]],
    )
    summary = api.ok(api.get("health-check-workers", headers={"x-cron-secret": LOCAL_CRON_SECRET}))
    assert summary["leases"]["requeued"] >= 1
    seen = job_of(api, user, job["id"])
    assert (seen["status"], seen["failures"], seen["error_code"]) == ("queued", 1, "LEASE_EXPIRED")


def test_register_heartbeat_and_claim(api):
    model = api.test_model()
    name = f"w-{uuid.uuid4().hex[:8]}"
    body = {"action": "register", "name": name, "models": [model], "mode": "pull", "capacity": 2}
    worker = api.ok(api.signed("health-check-workers", body), 201)
    assert (worker["name"], worker["mode"], worker["status"]) == (name, "pull", "online")
    again = api.ok(api.signed("health-check-workers", {**body, "capacity": 3}), 201)
    assert again["id"] == worker["id"] and again["capacity"] == 3  # re-register by name

    empty = api.ok(
        api.signed("health-check-workers", {"action": "claim", "worker_id": worker["id"]})
    )
    assert empty == []
    user = api.user(credits=100)
    job = api.ok(api.post("queue-job", user=user, json={"model": model}), 202)
    [claimed] = api.ok(
        api.signed(
            "health-check-workers", {"action": "claim", "worker_id": worker["id"], "limit": 5}
        )
    )
    assert (claimed["job_id"], claimed["attempt"]) == (job["id"], 1)
    held = api.ok(api.get("queue-job", user=user, params={"id": job["id"]}))
    assert held["worker_id"] == worker["id"]

    beat = api.ok(
        api.signed("health-check-workers", {"action": "heartbeat", "worker_id": worker["id"]})
    )
    assert beat["worker"]["id"] == worker["id"]
    assert beat["jobs"] == [{"job_id": job["id"], "attempt": 1}]
    assert isinstance(beat["render_speeds"], list)  # the fleet's figures (none rendered yet)
    draining = api.ok(
        api.signed(
            "health-check-workers",
            {"action": "heartbeat", "worker_id": worker["id"], "status": "draining"},
        )
    )
    assert draining["worker"]["status"] == "draining"


def test_worker_action_errors(api):
    nobody = str(uuid.uuid4())
    api.fails(
        api.signed("health-check-workers", {"action": "heartbeat", "worker_id": nobody}),
        404,
        "WORKER_NOT_FOUND",
    )
    api.fails(
        api.signed("health-check-workers", {"action": "claim", "worker_id": nobody}),
        404,
        "WORKER_NOT_FOUND",
    )
    api.fails(
        api.signed(
            "health-check-workers",
            {"action": "register", "name": "w-unknown-model", "models": ["no/such-model"]},
        ),
        404,
        "MODEL_NOT_FOUND",
    )
    api.fails(
        api.signed("health-check-workers", {"action": "register", "name": "w", "models": []}),
        422,
        "VALIDATION_ERROR",
    )
    api.fails(api.signed("health-check-workers", {"action": "reboot"}), 422, "VALIDATION_ERROR")
    forged = {"action": "claim", "worker_id": nobody}
    api.fails(api.signed("health-check-workers", forged, tamper=True), 401, "INVALID_SIGNATURE")
    api.fails(
        api.signed("health-check-workers", forged, timestamp=time.time() - 3600),
        401,
        "STALE_WEBHOOK",
    )


def test_a_completed_callback_cannot_point_the_owner_anywhere_else(api):
    """Signed outputs naming another user's file, the server's disk or any link are a 422;
    the job stays as it was and the same attempt can still report its real result."""
    user, other = api.user(credits=100), api.user()
    job, _ = api.claimed_job(user)
    own = f"{job['user_id']}/{job['id']}.mp4"
    # Both objects exist, so what refuses the other user's path is the database's
    # owner-folder check.
    for path in (own, f"{other.id}/{job['id']}.mp4"):
        api.put_object("videos", path, b"mp4", "video/mp4")
    for output, code in (
        ({"video_path": f"{other.id}/{job['id']}.mp4"}, "INVALID_OUTPUT"),
        ({"video_path": f"{job['user_id']}/../../etc/passwd"}, "INVALID_OBJECT_PATH"),
        ({"video_path": "/etc/passwd"}, "VALIDATION_ERROR"),
        ({"video_url": "file:///etc/passwd"}, "VALIDATION_ERROR"),
        ({"video_url": "http://169.254.169.254/latest/meta-data/"}, "VALIDATION_ERROR"),
        ({"video_url": "http://127.0.0.1:54322/"}, "VALIDATION_ERROR"),
        ({"callback_url": "https://evil.example/"}, "VALIDATION_ERROR"),
    ):
        api.fails(report(api, job, "completed", output=output), 422, code)
    row = job_of(api, user, job["id"])
    assert (row["status"], row["output"]) == ("dispatched", None)
    assert credits_of(api, user) == (89, 11)
    done = api.ok(report(api, job, "completed", output={"video_path": own}))
    assert done["applied"] is True and done["job"]["output"]["video_path"] == own


def usage_of(api, job_id):
    return api.sql(
        "select to_jsonb(u) - 'job_id' - 'created_at' - 'updated_at' from private.job_usage u"
        " where job_id = %s",
        [job_id],
    )


def test_a_completed_callback_with_usage_is_stored(api):
    user = api.user(credits=100)
    job, _ = api.claimed_job(user)
    usage = {
        "llm_model": "gpt-4o-mini",
        "prompt_tokens": 812,
        "completion_tokens": 240,
        "tts_engine": "google",
        "tts_characters": 1530,
        "provider_calls": 5,
        "render_seconds": 9.5,
        "render_output_seconds": 30.0,
    }
    speed = {
        "width": 1280,
        "height": 720,
        "fps": 30,
        "sections": 2,
        "wall_seconds": 9.5,
        "output_seconds": 30.0,
    }
    done = api.ok(
        report(
            api, job, "completed", output={}, credits_used=9, usage={**usage, "renders": [speed]}
        )
    )
    assert done["applied"] is True
    assert usage_of(api, job["id"]) == {
        **usage,
        "provider_seconds": 0,
        "provider_cost_usd": None,
        "reports": 1,
    }
    # Each sectioned render's speed is kept by its kind, for the fleet's figure.
    kept = api.sql(
        "select jsonb_agg(jsonb_build_object('width', width, 'height', height, 'fps', fps,"
        " 'sections', sections, 'wall_seconds', wall_seconds,"
        " 'output_seconds', output_seconds)) from private.render_speeds where job_id = %s",
        [job["id"]],
    )
    assert kept == [speed]
    [cost] = [
        api.sql(
            "select jsonb_build_object('captured', credits_captured, 'has_usage', has_usage)"
            " from service.ops_job_costs where job_id = %s",
            [job["id"]],
        )
    ]
    assert cost == {"captured": 9, "has_usage": True}


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": -5},
        {"prompt_tokens": 1.5},
        {"render_seconds": "fast"},
        {"tokens": 10},
        [1, 2],
        {"renders": [{"width": 1280, "height": 720, "fps": 30, "sections": 2}]},
    ],
)
def test_a_malformed_usage_is_a_422_and_applies_nothing(api, usage):
    user = api.user(credits=100)
    job, _ = api.claimed_job(user)
    api.fails(report(api, job, "completed", output={}, usage=usage), 422, "VALIDATION_ERROR")
    assert job_of(api, user, job["id"])["status"] == "dispatched"
    assert usage_of(api, job["id"]) is None
    assert credits_of(api, user) == (89, 11)
    # Usage belongs to a finished attempt only.
    api.fails(report(api, job, "progress", progress=5, usage={}), 422, "VALIDATION_ERROR")
