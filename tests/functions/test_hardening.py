"""What an outside security and reliability test found, each pinned over real HTTP:
bad input is a 4xx envelope, the caller is authenticated before anything is parsed, tokens
of users Auth does not know are refused, and the database failing is a fast 503."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from serverkit import free_port, running_server

from videogen.config import LOCAL_SECRET_KEY
from videogen.db.connection import CONNECT_TIMEOUT_S, POOL_TIMEOUT_S
from videogen.integrations import webhooks
from videogen.kit.auth import issue_access_token

T2V = "reference/text-to-video"
DEEP = b"[" * 1000 + b"]" * 1000
DEEPISH = b'{"a":' * 40 + b"1" + b"}" * 40  # parses, but deeper than we accept

POSTS = ("generate-video", "queue-job", "update-credits", "health-check-workers", "job-callback")


def signed_headers(body: bytes) -> dict[str, str]:
    """Standard Webhooks headers for this body, as a worker sends them."""
    return {"content-type": "application/json", **webhooks.sign(body)}


def credentials(api, name: str, body: bytes) -> dict[str, str]:
    """Valid credentials for a POST to this function."""
    if name in ("job-callback", "health-check-workers"):
        return signed_headers(body)
    return {"content-type": "application/json", **api.user().headers}


# Bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", POSTS)
@pytest.mark.parametrize("body", [DEEP, DEEPISH], ids=["1000-deep", "40-deep"])
def test_deeply_nested_json_is_a_422_on_every_post(api, name, body):
    resp = api.post(name, content=body, headers=credentials(api, name, body))
    error = api.fails(resp, 422, "BODY_TOO_DEEP")
    assert "32 levels" in error["message"]


@pytest.mark.parametrize("name", POSTS)
def test_every_post_authenticates_before_it_parses(api, name):
    """No credentials: 401, whatever the body (deep, broken or schema-less)."""
    for body in (DEEP, b"{not json", b'{"action": "register"}'):
        resp = api.post(name, content=body, headers={"content-type": "application/json"})
        error = api.fails(resp, 401)
        assert "details" not in error  # no schema field list for the unauthenticated


def test_unsigned_worker_actions_are_401_not_a_schema(api):
    for action in ("register", "heartbeat", "claim"):
        error = api.fails(api.post("health-check-workers", json={"action": action}), 401)
        assert "details" not in error and "name" not in error["message"]
    forged = api.post(
        "health-check-workers",
        content=b'{"action": "register"}',
        headers={**webhooks.sign(b"{}"), "content-type": "application/json"},
    )
    api.fails(forged, 401, "INVALID_SIGNATURE")


def test_text_must_say_something_and_booleans_are_booleans(api):
    user = api.user(credits=100)
    for body, field in (
        ({"model": T2V, "prompt": "   \n\t "}, "prompt"),
        ({"model": T2V, "prompt": "a fox", "captions": 0}, "captions"),
        ({"model": T2V, "prompt": "a fox", "captions": "yes"}, "captions"),
        ({"model": T2V, "prompt": "a fox", "voice": " "}, "voice"),
    ):
        error = api.fails(api.post("generate-video", user=user, json=body), 422, "VALIDATION_ERROR")
        assert [d["field"] for d in error["details"]] == [field]
    job = api.ok(
        api.post("generate-video", user=user, json={"model": T2V, "prompt": " a fox "}), 202
    )
    assert job["params"]["prompt"] == "a fox"


def test_402_says_what_it_costs_and_what_you_can_spend(api):
    user = api.user(credits=5)
    error = api.fails(
        api.post("generate-video", user=user, json={"model": T2V, "prompt": "a fox"}),
        402,
        "INSUFFICIENT_CREDITS",
    )
    assert error["details"] == [{"required": 11, "balance": 5, "reserved": 0}]
    assert "needs 11, you have 5" in error["message"]


@pytest.mark.parametrize("key", [""])  # HTTP strips spaces around a value: "  " arrives as ""
def test_a_blank_idempotency_key_is_a_422(api, key):
    user = api.user(credits=100)
    resp = api.post(
        "generate-video",
        user=user,
        json={"model": T2V, "prompt": "a fox"},
        headers={"Idempotency-Key": key},
    )
    error = api.fails(resp, 422, "VALIDATION_ERROR")
    assert error["details"][0]["field"] == "Idempotency-Key"


# Tokens of users Auth does not know ---------------------------------------------------------


def test_a_signed_token_for_an_unknown_user_is_401(api):
    stranger = {"Authorization": f"Bearer {issue_access_token(uuid.uuid4())}"}
    for resp in (
        api.get("generate-video", headers=stranger),
        api.get("update-credits", headers=stranger),
        api.post("update-credits", headers=stranger, json={"action": "claim_initial_grant"}),
        api.post("generate-video", headers=stranger, json={"model": T2V, "prompt": "a fox"}),
    ):
        error = api.fails(resp, 401, "USER_NOT_FOUND")
        assert error["hint"]


def test_a_deleted_user_is_401_at_once(api):
    user = api.user(credits=100)
    api.ok(api.get("generate-video", user=user))
    api.sql("update auth.users set deleted_at = now() where id = %s", [user.id])
    api.fails(api.get("generate-video", user=user), 401, "USER_NOT_FOUND")


# Oversized requests ---------------------------------------------------------------------------


def test_an_oversized_header_gets_the_envelope(api):
    huge = {"Authorization": "Bearer " + "a" * 16_384}
    resp = api.get("generate-video", headers=huge)
    error = api.fails(resp, 431, "HEADERS_TOO_LARGE")
    assert error["message"]
    line = api.http.get(api.url("generate-video") + "?q=" + "x" * 9000)
    assert line.status_code in (414, 431) and line.json()["success"] is False


# Faults ---------------------------------------------------------------------------------


def test_a_database_that_is_down_fails_fast_with_retry_after(tmp_path):
    down = f"postgresql://postgres:postgres@127.0.0.1:{free_port()}/postgres"
    with running_server(down, tmp_path) as server:
        token = issue_access_token(uuid.uuid4())
        for _ in range(2):
            started = time.monotonic()
            resp = httpx.get(
                server.url("generate-video"),
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            took = time.monotonic() - started
            assert resp.status_code == 503, resp.text
            assert resp.headers["Retry-After"] == "2"
            assert resp.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
            # The mechanism: the pool waits POOL_TIMEOUT_S for a connection, then answers
            # 503. How long HTTP around it takes depends on the machine: a wide bound only.
            assert took <= 3 * (POOL_TIMEOUT_S + CONNECT_TIMEOUT_S), took
        sweep = httpx.get(server.url("health-check-workers"), headers={"apikey": LOCAL_SECRET_KEY})
        assert sweep.status_code == 503


def test_connections_the_server_closed_are_replaced_transparently(api):
    """What `make db-reset` with the stack up does to the pool: every backend is gone."""
    user = api.user(credits=100)
    api.ok(api.get("generate-video", user=user))
    api.sql(
        "select pg_terminate_backend(pid) from pg_stat_activity"
        " where datname = current_database() and pid <> pg_backend_pid()"
    )
    time.sleep(0.2)
    for _ in range(3):
        api.ok(api.get("generate-video", user=user))
    job = api.ok(api.post("generate-video", user=user, json={"model": T2V, "prompt": "a fox"}), 202)
    assert job["status"] in ("queued", "dispatched")


def test_headers_over_gunicorns_own_limit_still_get_the_envelope(api):
    """Past what the server parses at all (64 KiB a field), gunicorn answers — in JSON."""
    resp = api.get("generate-video", headers={"x-filler": "a" * 70_000})
    assert resp.status_code == 431
    assert resp.json() == {
        "success": False,
        "error": {"code": "HEADERS_TOO_LARGE", "message": "Request Header Fields Too Large."},
    }


# A newcomer's path ------------------------------------------------------------------------


def test_the_demo_tops_its_user_up_so_make_run_works_every_time(api):
    """`make run` a second time: the grant is spent, so the demo grants what its jobs need
    with the secret key — once, and not again while the balance suffices."""
    from io import StringIO

    from videogen_dev.stack import _top_up, demo_console

    from videogen.config import Settings

    user = api.user(credits=30)
    out = StringIO()
    with httpx.Client(headers=user.headers, timeout=30) as client:
        for _ in range(2):
            _top_up(client, demo_console(out), api.server.functions, Settings(), user.id, 200)
    assert api.ok(api.get("update-credits", user=user))["balance"] == 200
    assert out.getvalue().count("Topped up 170 credits") == 1


def test_the_demo_console_does_not_wrap_piped_output():
    from io import StringIO

    from videogen_dev.stack import demo_console

    out = StringIO()
    line = "video: /tmp/" + "x" * 200 + ".mp4"
    demo_console(out).print(line)
    assert out.getvalue() == line + "\n"


def test_the_model_catalogue_is_one_curl_away(api):
    from videogen.config import LOCAL_PUBLISHABLE_KEY

    models = api.ok(api.get("queue-job/models", headers={"apikey": LOCAL_PUBLISHABLE_KEY}))
    ids = {m["id"] for m in models}
    assert {"reference/text-to-video", "reference/compose"} <= ids
    assert all("provider_model_id" not in m for m in models)
    assert api.ok(api.get("queue-job/models", user=api.user())) == models
    api.fails(api.get("queue-job/models"), 401)
    # The publishable key reads the catalogue, not anybody's jobs.
    api.fails(api.get("queue-job", headers={"apikey": LOCAL_PUBLISHABLE_KEY}), 401)
    error = api.fails(
        api.post("queue-job", user=api.user(credits=50), json={"model": "no/such-model"}),
        404,
        "MODEL_NOT_FOUND",
    )
    assert "/functions/v1/queue-job/models" in error["hint"]


def test_the_repository_explains_itself():
    """Nothing tracked points at the team folder beside the repository."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    found = subprocess.run(
        ["git", "grep", "-l", "-F", "../" + "shared", "--", "."],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert found.returncode in (0, 1), found.stderr
    assert found.stdout == ""
    assert (root / "docs" / "architecture.md").is_file()
