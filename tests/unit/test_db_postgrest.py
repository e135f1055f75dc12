"""The PostgREST adapter calls the same procedures through /rest/v1/rpc with supabase-py's
postgrest client — contract-tested against recorded PostgREST responses."""

from __future__ import annotations

import json

import httpx
import pytest

from videogen.config import LOCAL_PUBLISHABLE_KEY, LOCAL_SECRET_KEY, Settings
from videogen.db.connection import SERVICE, PostgrestDatabase
from videogen.errors import AppError, ServiceUnavailable
from videogen.principal import Principal

USER_TOKEN = "eyJhbGciOiJIUzI1NiJ9.user.token"  # opaque to the adapter: forwarded as is
USER = Principal(
    kind="user",
    role="authenticated",
    user_id="7b7c0f0e-3f38-4a8c-9a53-5d1b0c1d2e3f",
    claims={"sub": "7b7c0f0e-3f38-4a8c-9a53-5d1b0c1d2e3f", "role": "authenticated"},
    token=USER_TOKEN,
)
JOB = {
    "id": "3e0b5a36-8f2e-4b55-9d8c-0f0f1e2d3c4b",
    "status": "queued",
    "cost": 8,
    "queue_position": 1,
}


def _db(handler) -> tuple[PostgrestDatabase, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    client = httpx.Client(transport=httpx.MockTransport(record))
    settings = Settings(SUPABASE_URL="https://abc.supabase.co", DB_ADAPTER="postgrest")
    return PostgrestDatabase(settings, http_client=client), seen


def test_user_call_forwards_the_users_token_and_named_arguments():
    db, seen = _db(lambda r: httpx.Response(200, json=JOB))
    with db.session(USER) as session:
        job = session.rpc("create_job", model_id="reference/text-to-video", params={"prompt": "x"})
    assert job == JOB
    request = seen[0]
    assert request.method == "POST"
    assert str(request.url) == "https://abc.supabase.co/rest/v1/rpc/create_job"
    assert request.headers["authorization"] == f"Bearer {USER_TOKEN}"
    assert request.headers["apikey"] == LOCAL_PUBLISHABLE_KEY
    assert json.loads(request.content) == {
        "p_model_id": "reference/text-to-video",
        "p_params": {"prompt": "x"},
    }


def test_admin_call_uses_the_secret_key():
    db, seen = _db(lambda r: httpx.Response(200, json=119))
    assert db.admin_call("rate_limit_take", principal="user:1", bucket="b", limit=120) == 119
    assert seen[0].headers["apikey"] == LOCAL_SECRET_KEY
    assert seen[0].url.path == "/rest/v1/rpc/rate_limit_take"
    with db.admin() as admin:
        admin.rpc("workers_list")
    assert seen[1].headers["apikey"] == LOCAL_SECRET_KEY
    assert db.client_for(SERVICE) is not None


def test_procedure_errors_map_to_the_same_envelope_codes():
    # PostgREST answers a RAISE with the SQLSTATE in "code" (recorded from PostgREST 12).
    body = {
        "code": "VG402",
        "details": None,
        "hint": "Buy credits or claim the initial grant.",
        "message": "insufficient credits",
    }
    db, _ = _db(lambda r: httpx.Response(400, json=body))
    with pytest.raises(AppError) as err, db.session(USER) as session:
        session.rpc("create_job", model_id="reference/text-to-video", params={})
    assert (err.value.status, err.value.code) == (402, "INSUFFICIENT_CREDITS")
    assert err.value.message == "insufficient credits"


def test_rate_limit_error_carries_retry_after():
    body = {
        "code": "VGR29",
        "details": "retry_after=17",
        "hint": None,
        "message": "rate limit of 3 requests per 60 s exceeded",
    }
    db, _ = _db(lambda r: httpx.Response(400, json=body))
    with pytest.raises(AppError) as err:
        db.admin_call("rate_limit_take", principal="user:1", bucket="b", limit=3, window_seconds=60)
    assert err.value.status == 429
    assert err.value.headers["Retry-After"] == "17"


def test_permission_denied_is_403_and_transport_failure_is_503():
    denied = {
        "code": "42501",
        "details": None,
        "hint": None,
        "message": "permission denied for function job_claim",
    }
    db, _ = _db(lambda r: httpx.Response(401, json=denied))
    with pytest.raises(AppError) as err, db.session(USER) as session:
        session.rpc("job_claim", worker_id="x", limit=1)
    assert err.value.status == 403

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    db, _ = _db(down)
    with pytest.raises(ServiceUnavailable), db.session(USER) as session:
        session.rpc("list_models")


def test_user_writes_are_refused_plainly_and_send_nothing():
    """create_job & co. are service-only procedures run with the user's claims, which a
    PostgREST request cannot carry: the adapter says so instead of failing obscurely."""
    db, seen = _db(lambda r: httpx.Response(200, json=JOB))
    with pytest.raises(AppError) as info:
        db.user_call(USER, "create_job_request", model_id="reference/text-to-video", params={})
    assert (info.value.status, info.value.code) == (501, "NOT_SUPPORTED_BY_ADAPTER")
    assert "DB_ADAPTER=postgres" in (info.value.hint or "")
    assert seen == []


def test_a_session_that_would_span_two_transactions_is_refused():
    """PostgREST commits each request: two calls in one session (a webhook receipt and the
    change it records) could not commit together, so the second is refused, not sent."""
    db, seen = _db(lambda r: httpx.Response(200, json=True))
    with db.admin() as admin:
        assert admin.rpc("webhook_receipt", webhook_id="w1", source="worker") is True
        with pytest.raises(AppError) as info:
            admin.rpc("job_start", job_id=JOB["id"], attempt=1)
    assert (info.value.status, info.value.code) == (501, "NOT_SUPPORTED_BY_ADAPTER")
    assert [r.url.path for r in seen] == ["/rest/v1/rpc/webhook_receipt"]


def test_service_procedures_are_refused_plainly_and_send_nothing():
    """The `service` schema is not exposed by PostgREST: its procedures are refused, not
    sent (they would only come back as a 404)."""
    db, seen = _db(lambda r: httpx.Response(200, json=[]))
    with pytest.raises(AppError) as info:
        db.admin_call("service.workers_list")
    assert (info.value.status, info.value.code) == (501, "NOT_SUPPORTED_BY_ADAPTER")
    assert "DB_ADAPTER=postgres" in (info.value.hint or "")
    assert seen == []
