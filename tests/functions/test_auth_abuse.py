"""The local Auth API against abuse, answering as GoTrue does: rate limits per client,
CAPTCHA, banned users, refresh-token reuse, and a password check that costs the same whether
the email is known or not.

Most tests serve the dev server's Auth app from this process (werkzeug on a free port,
mounted at /auth/v1 as the dev server mounts it, on the test's own database) and drive it
over HTTP with supabase_auth, so that they can move its clock and stand in for the CAPTCHA
provider (``httpx.MockTransport`` with the providers' answers); none of them waits for time
to pass. Bans need neither and run against the shared dev server.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import psycopg
import pytest
from supabase_auth import SyncGoTrueClient
from supabase_auth.errors import AuthError
from videogen_dev import auth_api
from videogen_dev.auth_api import DUMMY_PASSWORD_HASH, AuthApi
from videogen_dev.auth_guard import (
    AuthConfigError,
    AuthSettings,
    CaptchaSettings,
    Limit,
)
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Response

from videogen.config import LOCAL_PUBLISHABLE_KEY, LOCAL_SECRET_KEY

Api = Any  # tests/functions/conftest.py's Api (conftest modules are not imported)

PASSWORD = "correct horse battery staple"
KEY = {"apikey": LOCAL_PUBLISHABLE_KEY}
RATE_LIMITED = {
    "code": 429,
    "error_code": "over_request_rate_limit",
    "msg": "Request rate limit reached",
}


# An Auth API in this process --------------------------------------------------------------
class Clock:
    """A clock the test moves: it starts at the wall time and stands still until told."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass  # no access log on the test's output (errors are still logged)


@dataclass
class LocalAuth:
    """A running Auth app: its URL, clock and database."""

    url: str
    app: AuthApi
    clock: Clock
    db_url: str
    clients: list[SyncGoTrueClient]

    def client(self) -> SyncGoTrueClient:
        """supabase_auth as supabase-py builds it (publishable key, session in memory)."""
        client = SyncGoTrueClient(url=self.url, headers=dict(KEY), auto_refresh_token=False)
        self.clients.append(client)
        return client

    def post(self, path: str, body: Any, **headers: str) -> httpx.Response:
        """A raw POST, for headers the client does not send."""
        return httpx.post(f"{self.url}{path}", json=body, headers={**KEY, **headers})

    def sql(self, query: str, params: list[Any]) -> Any:
        """The first column of the first row, as postgres."""
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            row = conn.execute(query, params).fetchone()
        return None if row is None else row[0]


@pytest.fixture
def serve_auth(db_url: str, tmp_path: Path) -> Iterator[Callable[..., LocalAuth]]:
    """Start Auth apps with given settings (config.toml's by default) on this test's
    database; each has its own clock and buckets. Stopped after the test."""
    running: list[tuple[Any, threading.Thread, LocalAuth]] = []

    def serve(settings: AuthSettings | None = None, captcha: Any = None) -> LocalAuth:
        clock = Clock()
        app = AuthApi(
            db_url,
            tmp_path / "signing_key.pem",
            settings=settings or AuthSettings.load(env={}),
            clock=clock,
            captcha_transport=captcha,
        )
        not_found = Response('{"error": "not found"}', 404, mimetype="application/json")
        wsgi = DispatcherMiddleware(not_found, {"/auth/v1": app})
        server = make_server("127.0.0.1", 0, wsgi, threaded=True, request_handler=_Quiet)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{server.server_port}/auth/v1"
        local = LocalAuth(url, app, clock, db_url, [])
        running.append((server, thread, local))
        return local

    yield serve
    for server, thread, local in running:
        server.shutdown()
        thread.join()
        server.server_close()
        for client in local.clients:
            client._http_client.close()
        local.app.close()


def new_email() -> str:
    return f"a-{uuid.uuid4().hex[:12]}@example.test"


def refused(call: Callable[[], Any]) -> Any:
    """The client's error for a call that must fail."""
    with pytest.raises(AuthError) as caught:
        call()
    return caught.value


def assert_rate_limited(error: Any) -> None:
    assert (error.status, error.code) == (429, "over_request_rate_limit")
    assert error.message == "Request rate limit reached"


# 1. Rate limits, as config.toml declares them ---------------------------------------------
def test_limits_and_captcha_are_read_from_config_toml(tmp_path: Path) -> None:
    project = AuthSettings.load(env={})  # supabase/config.toml
    assert (project.anonymous_users, project.sign_in_sign_ups, project.token_refresh) == (
        30,
        30,
        150,
    )
    assert project.refresh_token_reuse_interval == 10 and project.captcha is None
    limits = project.limits()
    assert limits["anonymous"] == Limit(30 / 3600, 30)  # an hour's worth in the bucket
    assert limits["signups"] == limits["user"] == Limit(30 / 300, 30)
    assert limits["token"] == Limit(150 / 300, 30)

    config = tmp_path / "config.toml"
    config.write_text(
        "[auth]\nrefresh_token_reuse_interval = 5\n"
        "[auth.rate_limit]\nanonymous_users = 7\n"
        '[auth.captcha]\nenabled = true\nprovider = "turnstile"\n'
        'secret = "env(TEST_CAPTCHA_SECRET)"\n'
    )
    read = AuthSettings.load(config, env={"TEST_CAPTCHA_SECRET": "0x4AAAAAAA"})
    assert (read.anonymous_users, read.sign_in_sign_ups, read.token_refresh) == (7, 30, 150)
    assert read.refresh_token_reuse_interval == 5
    assert read.captcha == CaptchaSettings("turnstile", "0x4AAAAAAA")
    # GoTrue's variables, as the CLI would set them, win over the file.
    env = {"GOTRUE_RATE_LIMIT_OTP": "3", "GOTRUE_SECURITY_CAPTCHA_ENABLED": "false"}
    overridden = AuthSettings.load(config, env=env)
    assert overridden.sign_in_sign_ups == 3 and overridden.captcha is None
    # What GoTrue refuses to start with.
    with pytest.raises(AuthConfigError, match="captcha provider secret is empty"):
        AuthSettings.load(config, env={})
    with pytest.raises(AuthConfigError, match="anonymous_users"):
        AuthSettings.load(config, env={"GOTRUE_RATE_LIMIT_ANONYMOUS_USERS": "-1"})


def test_anonymous_sign_ins_are_limited_per_hour_as_config_toml_says(
    serve_auth: Callable[..., LocalAuth],
) -> None:
    auth = serve_auth()  # anonymous_users = 30 (an hour, per client)
    for _ in range(30):
        assert auth.client().sign_in_anonymously().session is not None
    assert_rate_limited(refused(lambda: auth.client().sign_in_anonymously()))
    assert auth.post("/signup", {}).json() == RATE_LIMITED  # GoTrue's shape
    versioned = auth.post("/signup", {}, **{"X-Supabase-Api-Version": "2024-01-01"})
    assert versioned.status_code == 429
    assert versioned.json() == {
        "code": "over_request_rate_limit",
        "message": "Request rate limit reached",
    }
    auth.clock.advance(120)  # 30 an hour: one more every 2 minutes
    assert auth.client().sign_in_anonymously().session is not None
    assert_rate_limited(refused(lambda: auth.client().sign_in_anonymously()))


def test_sign_ups_and_user_updates_are_limited_in_buckets_of_their_own(
    serve_auth: Callable[..., LocalAuth],
) -> None:
    auth = serve_auth()  # sign_in_sign_ups = 30 per 5 minutes, bursts of 30
    member = auth.client()
    assert member.sign_up({"email": new_email(), "password": PASSWORD}).session is not None
    for _ in range(29):  # refused, but counted: the limit is checked first
        weak = refused(lambda: auth.client().sign_up({"email": new_email(), "password": "abc"}))
        assert weak.code == "weak_password"
    creds = {"email": new_email(), "password": PASSWORD}
    assert_rate_limited(refused(lambda: auth.client().sign_up(creds)))
    # Anonymous sign-ins and user updates count elsewhere.
    assert auth.client().sign_in_anonymously().session is not None
    for n in range(30):
        member.update_user({"data": {"n": n}})
    assert_rate_limited(refused(lambda: member.update_user({"data": {"n": 30}})))
    auth.clock.advance(10)  # 30 per 5 minutes: one more every 10 s
    assert auth.client().sign_up(creds).session is not None


def test_each_client_has_its_own_buckets(serve_auth: Callable[..., LocalAuth]) -> None:
    # Behind a proxy, GoTrue counts the client the header names (GOTRUE_RATE_LIMIT_HEADER).
    settings = replace(
        AuthSettings.load(env={}), anonymous_users=1, rate_limit_header="X-Forwarded-For"
    )
    auth = serve_auth(settings)

    def anonymous(client: str) -> int:
        return auth.post("/signup", {}, **{"X-Forwarded-For": client}).status_code

    assert anonymous("203.0.113.7, 10.0.0.1") == 200
    assert anonymous("203.0.113.7, 10.0.0.2") == 429
    assert anonymous("203.0.113.8") == 200
    assert auth.post("/signup", {}).status_code == 200  # no value, no limit (GoTrue)


def test_the_dev_server_enforces_the_configured_limits(start_server: Any) -> None:
    with start_server(GOTRUE_RATE_LIMIT_ANONYMOUS_USERS="2") as server:
        url = f"{server.base}/auth/v1/signup"
        assert [httpx.post(url, json={}, headers=KEY).status_code for _ in range(3)] == [
            200,
            200,
            429,
        ]
        assert httpx.post(url, json={}, headers=KEY).json() == RATE_LIMITED


# 2. CAPTCHA -------------------------------------------------------------------------------
SECRET = "0x0000000000000000000000000000000000000000"  # a test value, not a real secret
SOLVED = "10000000-aaaa-bbbb-cccc-000000000001"  # the token a widget gave a human
# The providers' answers, shaped as their siteverify documentation describes them.
HCAPTCHA = {
    "passed": {"success": True, "challenge_ts": "2026-01-01T12:00:00.000000Z",
               "hostname": "127.0.0.1", "credit": False},
    "failed": {"success": False, "error-codes": ["invalid-input-response"]},
}  # fmt: skip
TURNSTILE = {
    "passed": {"success": True, "challenge_ts": "2026-01-01T12:00:00.000Z",
               "hostname": "127.0.0.1", "error-codes": [], "action": "", "cdata": ""},
    "failed": {"success": False, "error-codes": ["invalid-input-response"], "messages": []},
}  # fmt: skip


def captcha_provider(answers: dict[str, Any]) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A provider that passes SOLVED and fails anything else; and what it was asked."""
    asked: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        passed = parse_qs(request.content.decode()).get("response") == [SOLVED]
        return httpx.Response(200, json=answers["passed" if passed else "failed"])

    return httpx.MockTransport(answer), asked


def with_captcha(provider: str) -> AuthSettings:
    return replace(AuthSettings.load(env={}), captcha=CaptchaSettings(provider, SECRET))


def test_captcha_guards_sign_ups_and_sign_ins_when_enabled(
    serve_auth: Callable[..., LocalAuth],
) -> None:
    transport, asked = captcha_provider(HCAPTCHA)
    auth = serve_auth(with_captcha("hcaptcha"), captcha=transport)
    solved = {"options": {"captcha_token": SOLVED}}

    missing = refused(lambda: auth.client().sign_in_anonymously())
    assert (missing.status, missing.code) == (400, "captcha_failed")
    assert missing.message == "captcha protection: request disallowed (no captcha_token found)"
    assert asked == []  # nothing to ask the provider about
    forged = {"options": {"captcha_token": "forged"}}
    failed = refused(lambda: auth.client().sign_in_anonymously(forged))
    assert (failed.status, failed.code) == (400, "captcha_failed")
    assert failed.message == "captcha protection: request disallowed (invalid-input-response)"
    assert auth.client().sign_in_anonymously(solved).session is not None

    email = new_email()
    creds = {"email": email, "password": PASSWORD}
    assert refused(lambda: auth.client().sign_up(creds)).code == "captcha_failed"
    assert auth.client().sign_up({**creds, **solved}).session is not None
    assert refused(lambda: auth.client().sign_in_with_password(creds)).code == "captcha_failed"
    session = auth.client().sign_in_with_password({**creds, **solved}).session
    assert session is not None
    # A refresh needs none (GoTrue skips the check for refresh_token grants).
    assert auth.client().refresh_session(session.refresh_token).session is not None

    # What the provider was asked: its siteverify, our secret, the token, the client.
    last = asked[-1]
    assert (last.method, str(last.url)) == ("POST", "https://api.hcaptcha.com/siteverify")
    assert last.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(last.content.decode()) == {
        "secret": [SECRET],
        "response": [SOLVED],
        "remoteip": ["127.0.0.1"],
    }
    # The service role is let through, as GoTrue lets its admin credentials through.
    service = auth.post("/signup", {}, Authorization=f"Bearer {LOCAL_SECRET_KEY}")
    assert service.status_code == 200, service.text


def test_turnstile_is_asked_and_its_outage_is_a_server_error(
    serve_auth: Callable[..., LocalAuth],
) -> None:
    transport, asked = captcha_provider(TURNSTILE)
    auth = serve_auth(with_captcha("turnstile"), captcha=transport)
    solved = {"options": {"captcha_token": SOLVED}}
    assert auth.client().sign_in_anonymously(solved).session is not None
    assert str(asked[-1].url) == "https://challenges.cloudflare.com/turnstile/v0/siteverify"

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("unreachable", request=request)

    outage = serve_auth(with_captcha("turnstile"), captcha=httpx.MockTransport(down))
    answer = outage.post("/signup", {"gotrue_meta_security": {"captcha_token": SOLVED}})
    assert answer.status_code == 500
    assert answer.json()["error_code"] == "unexpected_failure"
    assert answer.json()["msg"] == "captcha verification process failed"


# 3. Timing: one bcrypt whether the email is known or not ----------------------------------
def test_an_unknown_email_costs_the_same_bcrypt_as_a_known_one(
    serve_auth: Callable[..., LocalAuth], monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    check = auth_api.verify_password

    def spy(conn: Any, password: str, hashed: str) -> bool:
        checked.append(hashed)
        return check(conn, password, hashed)

    monkeypatch.setattr(auth_api, "verify_password", spy)
    auth = serve_auth()
    email = new_email()
    user = auth.client().sign_up({"email": email, "password": PASSWORD}).user
    assert user is not None
    stored = auth.sql("select encrypted_password from auth.users where id = %s", [user.id])

    for creds, hashed in (
        ({"email": email, "password": "wrong-password"}, stored),
        ({"email": new_email(), "password": PASSWORD}, DUMMY_PASSWORD_HASH),
    ):
        checked.clear()
        error = refused(lambda c=creds: auth.client().sign_in_with_password(c))
        assert (error.status, error.code) == (400, "invalid_credentials")
        assert checked == [hashed]  # one hash check in either case
    # The dummy is a real bcrypt hash at the cost passwords are stored with; nothing matches it.
    assert DUMMY_PASSWORD_HASH[:7] == stored[:7] == "$2a$10$"
    with psycopg.connect(auth.db_url) as conn:
        assert check(conn, PASSWORD, DUMMY_PASSWORD_HASH) is False
        assert check(conn, PASSWORD, stored) is True


# 4. Password guessing ----------------------------------------------------------------------
def test_password_guessing_is_limited_per_client(serve_auth: Callable[..., LocalAuth]) -> None:
    auth = serve_auth()  # token_refresh = 150 per 5 minutes, bursts of 30
    email = new_email()
    assert auth.client().sign_up({"email": email, "password": PASSWORD}).session is not None
    for n in range(30):
        guess = {"email": email, "password": f"guess-{n}"}
        assert refused(lambda g=guess: auth.client().sign_in_with_password(g)).code == (
            "invalid_credentials"
        )
    right = {"email": email, "password": PASSWORD}
    # Even the right password is refused now, and a refresh too: GoTrue counts every /token.
    assert_rate_limited(refused(lambda: auth.client().sign_in_with_password(right)))
    assert_rate_limited(refused(lambda: auth.client().refresh_session("x" * 22)))
    auth.clock.advance(2)  # 150 per 5 minutes: one more every 2 s
    assert auth.client().sign_in_with_password(right).session is not None
    assert_rate_limited(refused(lambda: auth.client().sign_in_with_password(right)))


# 5. Banned users ---------------------------------------------------------------------------
def test_a_banned_user_can_neither_sign_in_nor_refresh_nor_use_a_token(api: Api) -> None:
    clients: list[SyncGoTrueClient] = []

    def client() -> SyncGoTrueClient:
        made = SyncGoTrueClient(
            url=f"{api.server.base}/auth/v1", headers=dict(KEY), auto_refresh_token=False
        )
        clients.append(made)
        return made

    try:
        email = new_email()
        session = client().sign_up({"email": email, "password": PASSWORD}).session
        assert session is not None
        ban = "update auth.users set banned_until = now() + %s::interval where id = %s"
        api.sql(ban, ["1 hour", session.user.id])

        refresh = refused(lambda: client().refresh_session(session.refresh_token))
        assert (refresh.status, refresh.code) == (400, "user_banned")
        assert refresh.message == "Invalid Refresh Token: User Banned"
        for password in (PASSWORD, "wrong-password"):  # GoTrue tells before the password
            creds = {"email": email, "password": password}
            error = refused(lambda c=creds: client().sign_in_with_password(c))
            assert (error.status, error.code, error.message) == (
                400,
                "user_banned",
                "User is banned",
            )
        used = refused(lambda: client().get_user(session.access_token))
        assert (used.status, used.code) == (403, "user_banned")

        api.sql(ban, ["-1 second", session.user.id])  # a ban that has run out
        assert client().refresh_session(session.refresh_token).session is not None
    finally:
        for made in clients:
            made._http_client.close()


# 6. Refresh-token reuse --------------------------------------------------------------------
def test_nothing_in_a_session_revoked_for_reuse_refreshes_again(
    serve_auth: Callable[..., LocalAuth],
) -> None:
    auth = serve_auth()  # refresh_token_reuse_interval = 10
    first = auth.client().sign_in_anonymously().session
    assert first is not None
    second = auth.client().refresh_session(first.refresh_token).session
    assert second is not None
    third = auth.client().refresh_session(second.refresh_token).session
    assert third is not None
    auth.clock.advance(11)  # the first is past its reuse interval: reusing it is an abuse
    reused = refused(lambda: auth.client().refresh_session(first.refresh_token))
    assert (reused.status, reused.code) == (400, "refresh_token_already_used")
    # The newest token was revoked with its family just now, well within the reuse
    # interval, yet neither it nor its parent refreshes: the session is over.
    for token in (third.refresh_token, second.refresh_token):
        error = refused(lambda t=token: auth.client().refresh_session(t))
        assert (error.status, error.code) == (400, "refresh_token_already_used")
        assert error.message == "Invalid Refresh Token: Already Used"
    revoked = "select bool_and(revoked) from auth.refresh_tokens where user_id = %s"
    assert auth.sql(revoked, [first.user.id]) is True
