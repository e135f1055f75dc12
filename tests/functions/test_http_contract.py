"""The shared HTTP contract (docs/architecture.md) over real HTTP: auth modes, idempotency, rate
limits, body limits, malformed requests, headers, and a Python frontend via supabase-py."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from psycopg.types.json import Jsonb
from rate_window import in_one_window
from supabase_functions import SyncFunctionsClient
from supabase_functions.errors import FunctionsHttpError

from videogen.config import (
    LOCAL_ANON_KEY,
    LOCAL_JWT_SECRET,
    LOCAL_PUBLISHABLE_KEY,
    LOCAL_SECRET_KEY,
    LOCAL_SERVICE_ROLE_KEY,
)
from videogen.kit.auth import issue_access_token

T2V = "reference/text-to-video"
VIDEO = {"model": T2V, "prompt": "a paper boat on a river", "resolution": "480p"}


def token_with(user, secret=LOCAL_JWT_SECRET, **claims):
    now = int(time.time())
    payload = {
        "sub": user.id,
        "role": "authenticated",
        "aud": "authenticated",
        "iat": now,
        "exp": now + 600,
        **claims,
    }
    return jwt.encode(payload, secret, algorithm="HS256")


# Auth -------------------------------------------------------------------------------------


def test_auth_failures_are_401_with_a_code(api):
    user = api.user()
    bad = {
        "missing": ({}, "UNAUTHORIZED"),
        "expired": (
            {"Authorization": f"Bearer {issue_access_token(user.id, expires_in=-120)}"},
            "TOKEN_EXPIRED",
        ),
        "wrong signature": (
            {"Authorization": f"Bearer {token_with(user, secret='x' * 40)}"},
            "INVALID_TOKEN",
        ),
        "wrong audience": (
            {"Authorization": f"Bearer {token_with(user, aud='somebody-else')}"},
            "INVALID_TOKEN",
        ),
        "not a user role": (
            {"Authorization": f"Bearer {token_with(user, role='supabase_admin')}"},
            "INVALID_TOKEN",
        ),
        "garbage": ({"Authorization": "Bearer not-a-token"}, "INVALID_TOKEN"),
        "anon key as user": ({"Authorization": f"Bearer {LOCAL_ANON_KEY}"}, "UNAUTHORIZED"),
        "publishable key only": ({"apikey": LOCAL_PUBLISHABLE_KEY}, "UNAUTHORIZED"),
        "secret key on a user endpoint": ({"apikey": LOCAL_SECRET_KEY}, "UNAUTHORIZED"),
        "service role on a user endpoint": (
            {"Authorization": f"Bearer {LOCAL_SERVICE_ROLE_KEY}"},
            "UNAUTHORIZED",
        ),
    }
    for case, (headers, code) in bad.items():
        for method in ("GET", "POST"):
            resp = api.request(method, "generate-video", headers=headers, json=VIDEO)
            error = api.fails(resp, 401, code)
            assert error["hint"], case
            assert LOCAL_JWT_SECRET not in resp.text


def test_user_token_with_the_publishable_key_as_supabase_clients_send_it(api):
    user = api.user()
    headers = {**user.headers, "apikey": LOCAL_PUBLISHABLE_KEY}
    assert api.ok(api.get("generate-video", headers=headers))["total"] == 0


def test_secret_keys_reach_service_actions(api):
    user = api.user()
    for i, headers in enumerate(
        [
            {"apikey": LOCAL_SECRET_KEY},
            {"Authorization": f"Bearer {LOCAL_SECRET_KEY}"},
            {"apikey": LOCAL_SERVICE_ROLE_KEY},
            {"apikey": LOCAL_PUBLISHABLE_KEY, "Authorization": f"Bearer {LOCAL_SECRET_KEY}"},
        ]
    ):
        grant = {"action": "grant", "user_id": user.id, "amount": 1, "grant_id": f"k{i}"}
        assert api.ok(api.post("update-credits", headers=headers, json=grant))["applied"]
    api.fails(
        api.post(
            "update-credits",
            headers={"apikey": "sb_secret_forged"},
            json={"action": "grant", "user_id": user.id, "amount": 1, "grant_id": "forged"},
        ),
        401,
        "INVALID_API_KEY",
    )
    assert api.ok(api.get("update-credits", user=user))["balance"] == 4


# Idempotency ------------------------------------------------------------------------------


def test_idempotent_replay_returns_the_same_answer(api):
    user = api.user(credits=100)
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    first = api.post("generate-video", user=user, json=VIDEO, headers=key)
    job = api.ok(first, 202)
    assert "Idempotent-Replayed" not in first.headers
    again = api.post("generate-video", user=user, json=VIDEO, headers=key)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert api.ok(again, 202)["id"] == job["id"]
    assert api.ok(api.get("generate-video", user=user))["total"] == 1  # one job, one charge
    assert api.ok(api.get("update-credits", user=user))["reserved"] == 7

    other_body = {**VIDEO, "prompt": "something else"}
    api.fails(
        api.post("generate-video", user=user, json=other_body, headers=key),
        422,
        "IDEMPOTENCY_KEY_REUSED",
    )
    # Keys are per user: somebody else's request with the same key is its own.
    other = api.user(credits=100)
    assert (
        api.ok(api.post("generate-video", user=other, json=VIDEO, headers=key), 202)["id"]
        != (job["id"])
    )


def test_a_definite_error_is_replayed_too(api):
    user = api.user()
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    api.fails(api.post("generate-video", user=user, json=VIDEO, headers=key), 402)
    api.sql("select service.credits_grant(%s, 100, %s)", [user.id, f"g-{uuid.uuid4()}"])
    replay = api.post("generate-video", user=user, json=VIDEO, headers=key)
    api.fails(replay, 402, "INSUFFICIENT_CREDITS")
    assert replay.headers["Idempotent-Replayed"] == "true"


def test_idempotent_claim_replays_instead_of_409(api):
    user = api.user()
    key = {"Idempotency-Key": "claim-once"}
    body = {"action": "claim_initial_grant"}
    first = api.ok(api.post("update-credits", user=user, json=body, headers=key))
    again = api.post("update-credits", user=user, json=body, headers=key)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert api.ok(again) == first
    api.fails(api.post("update-credits", user=user, json=body), 409, "ALREADY_CLAIMED")


def _twin_in_flight(api, user, key: str, body: bytes):
    """The first request, stopped between its action and its commit: an open transaction
    that ran create_job_request with the key, as the function does."""
    conn = psycopg.connect(api.server.db_url, autocommit=True)
    conn.execute("begin")
    conn.execute(
        "select set_config('request.jwt.claims', %s, true),"
        " set_config('role', 'service_role', true)",
        [json.dumps({"sub": user.id, "role": "authenticated"})],
    )
    request = {
        "principal": f"user:{user.id}",
        "scope": "generate-video:POST",
        "bucket": "generate-video",
        "limit": None,
        "key": key,
        "hash": hashlib.sha256(body + b"|").hexdigest(),
    }
    row = conn.execute(
        "select service.job_create_request(%s, %s, %s)",
        [Jsonb(request), VIDEO["model"], Jsonb({k: v for k, v in VIDEO.items() if k != "model"})],
    ).fetchone()
    return conn, row[0]["data"]


def _twin_of(api, first_ends: str):
    """POST while a first request with the same key is in flight; the first then commits
    or rolls back. (the twin's answer, the first one's job, the user)."""
    user = api.user(credits=100)
    key = f"k-{uuid.uuid4()}"
    body = json.dumps(VIDEO).encode()
    conn, first = _twin_in_flight(api, user, key, body)
    headers = {"Idempotency-Key": key, "content-type": "application/json"}
    with ThreadPoolExecutor(1) as pool:
        twin = pool.submit(api.post, "generate-video", user=user, content=body, headers=headers)
        time.sleep(0.5)
        assert not twin.done()  # waiting on the first one's key, not answering 409
        conn.execute(first_ends)
        resp = twin.result(timeout=30)
    conn.close()
    return resp, first, user


def test_a_request_whose_twin_is_still_running_waits_and_replays_it(api):
    resp, first, user = _twin_of(api, "commit")
    assert resp.headers["Idempotent-Replayed"] == "true"
    assert api.ok(resp, 202)["id"] == first["id"]
    assert api.ok(api.get("generate-video", user=user))["total"] == 1


def test_a_twin_whose_first_request_died_simply_runs(api):
    resp, first, user = _twin_of(api, "rollback")  # the first process died before its commit
    assert "Idempotent-Replayed" not in resp.headers
    job = api.ok(resp, 202)
    assert job["id"] != first["id"]
    assert api.ok(api.get("generate-video", user=user))["total"] == 1


def test_bad_idempotency_key_is_422(api):
    user = api.user(credits=100)
    resp = api.post("generate-video", user=user, json=VIDEO, headers={"Idempotency-Key": "k" * 256})
    api.fails(resp, 422, "VALIDATION_ERROR")


# Malformed requests and headers -----------------------------------------------------------


def test_malformed_json_is_400_and_wrong_shapes_422(api):
    user = api.user(credits=100)
    json_type = {"content-type": "application/json"}
    api.fails(
        api.post("generate-video", user=user, content=b'{"model": ', headers=json_type),
        400,
        "BAD_REQUEST",
    )
    api.fails(
        api.post("generate-video", user=user, content=b"\xff\xfe", headers=json_type),
        400,
        "BAD_REQUEST",
    )
    api.fails(api.post("generate-video", user=user), 400, "BAD_REQUEST")
    api.fails(api.post("generate-video", user=user, json=[VIDEO]), 422, "VALIDATION_ERROR")
    error = api.fails(
        api.post("generate-video", user=user, json={**VIDEO, "admin": True}),
        422,
        "VALIDATION_ERROR",
    )
    assert error["details"] == [
        {"field": "admin", "message": "Extra inputs are not permitted", "type": "extra_forbidden"}
    ]


def test_nul_characters_are_refused_before_the_database(api):
    user = api.user(credits=100)
    error = api.fails(
        api.post("generate-video", user=user, json={**VIDEO, "prompt": "a\x00b"}),
        422,
        "VALIDATION_ERROR",
    )
    assert error["details"][0]["field"] == "prompt"
    nested = {"model": T2V, "params": {"style": {"k\x00": 1}}}
    error = api.fails(api.post("queue-job", user=user, json=nested), 422, "VALIDATION_ERROR")
    assert error["details"][0]["field"] == "params.style.k\x00"
    assert api.ok(api.get("generate-video", user=user))["total"] == 0


@pytest.mark.parametrize(
    ("method", "name", "allowed"),
    [
        ("PUT", "generate-video", "POST, GET, OPTIONS"),
        ("DELETE", "generate-video", "POST, GET, OPTIONS"),
        ("GET", "job-callback", "POST, OPTIONS"),
        ("PATCH", "update-credits", "GET, POST, OPTIONS"),
        ("DELETE", "health-check-workers", "GET, POST, OPTIONS"),
    ],
)
def test_wrong_method_is_405_with_allow(api, method, name, allowed):
    resp = api.request(method, name)
    api.fails(resp, 405, "METHOD_NOT_ALLOWED")
    assert resp.headers["allow"] == allowed


def test_security_headers_and_request_id(api):
    user = api.user()
    for resp in (api.get("generate-video", user=user), api.get("generate-video")):
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in resp.headers["content-security-policy"]
        assert resp.headers["access-control-allow-origin"] == "*"
        assert resp.headers["content-type"].startswith("application/json")
        uuid.UUID(resp.headers["x-request-id"])
    echoed = api.get("generate-video", user=user, headers={"x-request-id": "trace-0123456789"})
    assert echoed.headers["x-request-id"] == "trace-0123456789"
    short = api.get("generate-video", user=user, headers={"x-request-id": "abc"})
    uuid.UUID(short.headers["x-request-id"])


def test_unknown_function_is_404_envelope(api):
    resp = api.http.get(api.server.url("no-such-function"))
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "NOT_FOUND"


# Limits (a server of their own) -----------------------------------------------------------


def test_fourth_write_in_a_minute_is_429_with_retry_after(strict_api):
    api = strict_api

    def four_writes() -> tuple[bool, tuple[Any, Any]]:
        user = api.user()
        for _ in range(3):  # refused for credits, but each one counts
            api.fails(api.post("generate-video", user=user, json=VIDEO), 402)
        resp = api.post("generate-video", user=user, json=VIDEO)
        return resp.status_code == 429, (user, resp)

    user, resp = in_one_window(four_writes)
    other = api.user()
    api.fails(resp, 429, "RATE_LIMITED")
    assert 1 <= int(resp.headers["retry-after"]) <= 60
    assert "retry-after" in resp.headers["access-control-expose-headers"]
    api.fails(
        api.delete("queue-job", user=user, params={"id": str(uuid.uuid4())}), 404
    )  # own bucket
    api.ok(api.get("generate-video", user=user))  # reads are not limited
    api.fails(api.post("generate-video", user=other, json=VIDEO), 402)  # per user


def test_oversized_body_is_413(strict_api):
    api = strict_api
    user = api.user()
    big = {**VIDEO, "prompt": "x" * 1500}
    api.fails(api.post("generate-video", user=user, json=big), 413, "PAYLOAD_TOO_LARGE")

    def chunks():  # no Content-Length: the limit applies to what arrives
        yield json.dumps(big).encode()

    resp = api.post(
        "generate-video", user=user, content=chunks(), headers={"content-type": "application/json"}
    )
    api.fails(resp, 413, "PAYLOAD_TOO_LARGE")
    api.fails(api.post("job-callback", content=b"{" + b" " * 2000 + b"}"), 413)


# A Python frontend ------------------------------------------------------------------------


def test_supabase_py_functions_client(api):
    user = api.user(credits=100)
    with httpx.Client(timeout=30) as http:
        _frontend_calls(
            SyncFunctionsClient(
                url=api.server.functions,
                headers={"Authorization": f"Bearer {user.token}", "apikey": LOCAL_PUBLISHABLE_KEY},
                http_client=http,
            )
        )


def _frontend_calls(client):
    created = client.invoke("generate-video", {"body": VIDEO, "responseType": "json"})
    assert created["success"] is True and created["data"]["status"] == "queued"
    job_id = created["data"]["id"]

    one = client.invoke(f"generate-video?id={job_id}", {"method": "GET", "responseType": "json"})
    assert one["data"]["id"] == job_id
    page = client.invoke("queue-job?limit=1", {"method": "GET", "responseType": "json"})
    assert page["data"]["total"] == 1

    canceled = client.invoke(f"queue-job?id={job_id}", {"method": "DELETE", "responseType": "json"})
    assert canceled["data"]["job"]["status"] == "canceled"
    with pytest.raises(FunctionsHttpError) as err:
        client.invoke(f"queue-job?id={job_id}", {"method": "DELETE"})
    assert err.value.status == 409
    with pytest.raises(FunctionsHttpError) as err:
        client.invoke("generate-video", {"body": {"model": T2V}})
    assert err.value.status == 422
