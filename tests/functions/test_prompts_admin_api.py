"""queue-job /enhance and the admin routes over real HTTP: as an admin (app_metadata.role
in the token), as a normal user, without credentials; `videogen admin grant` and the
local Auth API's next token."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from typing import Any

import jwt
from rate_window import in_one_window
from supabase_auth import SyncGoTrueClient

from videogen.config import LOCAL_PUBLISHABLE_KEY
from videogen.kit.auth import issue_access_token

Api = Any  # tests/functions/conftest.py's Api
ADMIN_META = {"provider": "email", "providers": ["email"], "role": "admin"}


def admin_headers(api: Api) -> dict[str, str]:
    """A user whose token says admin (HS256, as `videogen token` issues them)."""
    user = api.user()
    token = issue_access_token(user.id, email=user.email, app_metadata=ADMIN_META)
    return {"Authorization": f"Bearer {token}"}


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


# Enhancement ------------------------------------------------------------------------------


def test_enhance_then_create_keeps_both_prompts_and_charges_nothing(api: Api) -> None:
    user = api.user(credits=100)
    enhanced = api.ok(
        api.post(
            "queue-job/enhance",
            user=user,
            json={"model": "reference/text-to-video", "prompt": "a paper boat on a river"},
        )
    )
    assert enhanced["original"] == "a paper boat on a river"
    assert enhanced["enhanced"].startswith("a paper boat on a river, ")
    assert "dolly-in" in enhanced["enhanced"] and enhanced["engine"] == "offline"
    assert (enhanced["job_type"], enhanced["template_version"]) == ("text_to_video", 1)
    balance = api.ok(api.get("update-credits", user=user))["balance"]
    assert balance == 100

    params = {"prompt": enhanced["enhanced"], "original_prompt": enhanced["original"]}
    job = api.ok(
        api.post(
            "queue-job",
            user=user,
            headers=key(),
            json={"model": "reference/text-to-video", "params": params},
        ),
        202,
    )
    assert job["params"]["prompt"] == enhanced["enhanced"]
    assert job["params"]["original_prompt"] == "a paper boat on a river"
    api.ok(api.delete("queue-job", user=user, params={"id": job["id"]}))


def test_enhance_is_checked_after_the_credentials(api: Api) -> None:
    api.fails(api.post("queue-job/enhance", json={"prompt": ""}), 401)
    user = api.user()
    api.fails(api.post("queue-job/enhance", user=user, json={"prompt": "a boat"}), 422)
    api.fails(
        api.post("queue-job/enhance", user=user, json={"model": "nobody/none", "prompt": "x"}),
        404,
        "MODEL_NOT_FOUND",
    )
    by_type = api.ok(
        api.post("queue-job/enhance", user=user, json={"job_type": "compose", "prompt": "tides"})
    )
    assert by_type["enhanced"].startswith("tides, ") and by_type["job_type"] == "compose"
    api.fails(
        api.post(
            "queue-job",
            user=user,
            json={"model": "reference/text-to-video", "params": {"original_prompt": "alone"}},
        ),
        422,
        "INVALID_PARAMS",
    )


def test_enhance_is_rate_limited_like_writes(strict_api: Api) -> None:
    body = {"job_type": "text_to_video", "prompt": "a boat"}

    def four() -> tuple[bool, Any]:
        user = strict_api.user()
        for _ in range(3):
            strict_api.ok(strict_api.post("queue-job/enhance", user=user, json=body))
        refused = strict_api.post("queue-job/enhance", user=user, json=body)
        return refused.status_code == 429, refused

    refused = in_one_window(four)
    strict_api.fails(refused, 429, "RATE_LIMITED")
    assert int(refused.headers["Retry-After"]) >= 1


# The admin view ---------------------------------------------------------------------------


def test_an_admin_sees_every_job_and_worker_a_user_gets_403(api: Api) -> None:
    admin = admin_headers(api)
    owner = api.user(credits=100)
    model_id = api.test_model()
    job, worker_id = api.claimed_job(owner, model_id)

    page = api.ok(api.get("queue-job/admin/jobs", headers=admin, params={"model": model_id}))
    assert [j["id"] for j in page["items"]] == [job["id"]] and page["total"] == 1
    assert page["items"][0]["user_id"] == owner.id
    workers = api.ok(api.get("queue-job/admin/workers", headers=admin))
    assert worker_id in {w["id"] for w in workers}

    for path in ("queue-job/admin/jobs", "queue-job/admin/workers", "queue-job/admin/templates"):
        api.fails(api.get(path, user=owner), 403, "ADMIN_ONLY")
        api.fails(api.get(path), 401)
    # A non-admin is refused before the body is read, whatever it holds.
    api.fails(api.post("queue-job/admin/jobs", user=owner, json={"x": 1}), 403, "ADMIN_ONLY")
    # user_metadata is the user's own to write: it does not make an admin.
    forged = issue_access_token(owner.id, email=owner.email, user_metadata={"role": "admin"})
    api.fails(
        api.get("queue-job/admin/jobs", headers={"Authorization": f"Bearer {forged}"}),
        403,
        "ADMIN_ONLY",
    )
    api.ok(
        api.post(
            "queue-job/admin/jobs",
            headers={**admin, **key()},
            json={"action": "fail", "id": job["id"], "reason": "test over"},
        )
    )


def test_an_admin_requeues_a_stuck_job_and_fails_it_once(api: Api) -> None:
    admin = admin_headers(api)
    owner = api.user(credits=100)
    job, _ = api.claimed_job(owner)
    before = api.ok(api.get("update-credits", user=owner))

    requeued = api.ok(
        api.post(
            "queue-job/admin/jobs",
            headers={**admin, **key()},
            json={"action": "requeue", "id": job["id"], "reason": "worker hung"},
        )
    )
    assert requeued["action"] == "requeue" and requeued["job"]["status"] == "queued"
    assert requeued["job"]["error_code"] == "ADMIN_REQUEUED"
    assert requeued["job"]["attempt"] == job["attempt"]
    assert api.ok(api.get("update-credits", user=owner))["reserved"] == before["reserved"]

    fail = {"action": "fail", "id": job["id"], "reason": "bad input"}
    retry_key = key()
    failed = api.ok(api.post("queue-job/admin/jobs", headers={**admin, **retry_key}, json=fail))
    assert failed["job"]["status"] == "failed" and failed["job"]["error_code"] == "ADMIN_FAILED"
    after = api.ok(api.get("update-credits", user=owner))
    assert (after["balance"], after["reserved"]) == (100, 0)
    replay = api.post("queue-job/admin/jobs", headers={**admin, **retry_key}, json=fail)
    assert api.ok(replay) == failed and replay.headers["Idempotent-Replayed"] == "true"
    api.fails(
        api.post("queue-job/admin/jobs", headers={**admin, **key()}, json=fail),
        409,
        "INVALID_TRANSITION",
    )
    api.fails(
        api.post(
            "queue-job/admin/jobs",
            headers=admin,
            json={"action": "delete", "id": job["id"], "reason": "x"},
        ),
        422,
    )
    api.fails(
        api.post(
            "queue-job/admin/jobs",
            headers=admin,
            json={"action": "fail", "id": str(uuid.uuid4()), "reason": "x"},
        ),
        404,
        "JOB_NOT_FOUND",
    )
    assert api.ok(api.get("update-credits", user=owner))["balance"] == 100


def test_an_admin_changes_a_template_without_a_deploy(api: Api) -> None:
    admin = admin_headers(api)
    user = api.user()
    body = {"job_type": "narration", "prompt": "hello there"}
    assert api.ok(api.post("queue-job/enhance", user=user, json=body))["enhanced"] == (
        "hello there"
    )
    hints = {"cues": [{"kind": "tone", "text": "warm and calm", "skip_if": ["tone"]}]}
    created = api.ok(
        api.post(
            "queue-job/admin/templates",
            headers={**admin, **key()},
            json={
                "action": "create",
                "job_type": "narration",
                "instruction": "Make it read well aloud.",
                "hints": hints,
                "note": "a tone cue",
            },
        ),
        201,
    )
    assert created["version"] >= 2 and created["active"] is True
    after = api.ok(api.post("queue-job/enhance", user=user, json=body))
    assert after["enhanced"] == "hello there, warm and calm."
    assert after["template_id"] == created["id"]

    history = api.ok(
        api.get("queue-job/admin/templates", headers=admin, params={"job_type": "narration"})
    )
    assert history[0]["id"] == created["id"]
    first = next(t for t in history if t["version"] == 1)
    back = api.ok(
        api.post(
            "queue-job/admin/templates",
            headers={**admin, **key()},
            json={"action": "activate", "id": first["id"]},
        )
    )
    assert back["active"] is True
    assert api.ok(api.post("queue-job/enhance", user=user, json=body))["enhanced"] == (
        "hello there"
    )
    api.fails(
        api.post(
            "queue-job/admin/templates",
            headers=admin,
            json={"action": "activate", "id": str(uuid.uuid4())},
        ),
        404,
        "TEMPLATE_NOT_FOUND",
    )
    api.fails(
        api.post(
            "queue-job/admin/templates",
            headers=admin,
            json={"action": "create", "job_type": "narration", "instruction": " "},
        ),
        422,
    )
    api.fails(
        api.post(
            "queue-job/admin/templates",
            user=user,
            json={"action": "activate", "id": first["id"]},
        ),
        403,
        "ADMIN_ONLY",
    )


def test_videogen_admin_grant_puts_the_role_in_the_next_token(api: Api) -> None:
    auth = SyncGoTrueClient(
        url=f"{api.server.base}/auth/v1",
        headers={"apikey": LOCAL_PUBLISHABLE_KEY},
        auto_refresh_token=False,
        persist_session=False,
    )
    try:
        email = f"admin-{uuid.uuid4().hex[:10]}@example.test"
        password = "correct horse battery staple"
        before = auth.sign_up({"email": email, "password": password}).session
        assert before is not None
        claims = jwt.decode(before.access_token, options={"verify_signature": False})
        assert "role" not in claims["app_metadata"]
        refused = api.get(
            "queue-job/admin/jobs", headers={"Authorization": f"Bearer {before.access_token}"}
        )
        api.fails(refused, 403, "ADMIN_ONLY")

        env = {**os.environ, "DATABASE_URL": api.server.db_url}
        done = subprocess.run(
            [sys.executable, "-m", "videogen_dev", "admin", "grant", email.upper()],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "is now an admin" in done.stdout

        after = auth.sign_in_with_password({"email": email, "password": password}).session
        assert after is not None
        claims = jwt.decode(after.access_token, options={"verify_signature": False})
        assert claims["app_metadata"]["role"] == "admin"
        headers = {"Authorization": f"Bearer {after.access_token}"}  # ES256, through the JWKS
        api.ok(api.get("queue-job/admin/jobs", headers=headers))

        revoked = subprocess.run(
            [sys.executable, "-m", "videogen_dev", "admin", "revoke", email],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert revoked.returncode == 0, revoked.stderr
        again = auth.sign_in_with_password({"email": email, "password": password}).session
        assert again is not None
        fresh = {"Authorization": f"Bearer {again.access_token}"}
        api.fails(api.get("queue-job/admin/jobs", headers=fresh), 403, "ADMIN_ONLY")

        missing = subprocess.run(
            [sys.executable, "-m", "videogen_dev", "admin", "grant", "nobody@example.test"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert missing.returncode == 1 and "no user with the email" in missing.stderr
    finally:
        auth._http_client.close()
