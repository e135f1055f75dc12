"""Helpers for the functions over real HTTP: shared servers, users, signed requests.

Most tests share one server (``api``, one per session) and stay out of each other's way
by creating their own users, and, where workers claim jobs, their own model. Tests that
change server settings (rate limit, body limit) start their own server.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
from videogen_dev.users import ensure_user

from videogen.config import LOCAL_SECRET_KEY
from videogen.integrations import webhooks
from videogen.kit.auth import issue_access_token

STRIPE_SECRET = "whsec_test_videogen_stripe_secret"  # a test value, not a real secret


@dataclass
class User:
    """A local auth user and a fresh access token for it."""

    id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        """What a signed-in client sends."""
        return {"Authorization": f"Bearer {self.token}"}


class Api:
    """One running server, called over HTTP as users, the service, workers and Stripe."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.http = httpx.Client(timeout=30.0)

    def url(self, name: str) -> str:
        """A function's URL."""
        return str(self.server.url(name))

    def storage(self) -> Any:
        """The server's own storage backend, with the service's key (close it after use)."""
        from videogen.config import Settings
        from videogen.integrations.storage import get_storage

        names = {f.alias for f in Settings.model_fields.values() if f.alias}
        return get_storage(Settings(**{k: v for k, v in self.server.env.items() if k in names}))

    def put_object(self, bucket: str, path: str, data: bytes, content_type: str) -> None:
        """Store an object as the server's own storage does."""
        storage = self.storage()
        try:
            storage.upload(bucket, path, data, content_type)
        finally:
            storage.close()

    def has_object(self, bucket: str, path: str) -> bool:
        """Whether the server's storage holds the object."""
        storage = self.storage()
        try:
            return bool(storage.exists(bucket, path))
        finally:
            storage.close()

    @staticmethod
    def png(width: int = 640, height: int = 360) -> bytes:
        """A real PNG picture, made by ffmpeg."""
        done = subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", f"testsrc2=s={width}x{height}",
             "-frames:v", "1", "-c:v", "png", "-f", "image2pipe", "-"],
            check=True, capture_output=True,
        )  # fmt: skip
        return done.stdout

    # Callers ---------------------------------------------------------------------------

    def user(self, *, credits: int = 0, anonymous: bool = False) -> User:
        """A new user, with ``credits`` granted straight in the database when asked."""
        email = f"u-{uuid.uuid4().hex[:12]}@example.test"
        user_id, _ = ensure_user(self.server.db_url, email, anonymous=anonymous)
        if credits:
            self.sql(
                "select service.credits_grant(%s, %s, %s)",
                [user_id, credits, f"test-{uuid.uuid4().hex}"],
            )
        return User(user_id, email, issue_access_token(user_id, email=email))

    def request(
        self,
        method: str,
        name: str,
        *,
        user: User | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Call a function, as ``user`` when given."""
        sent = dict(user.headers if user else {})
        sent.update(headers or {})
        return self.http.request(method, self.url(name), headers=sent, **kwargs)

    def get(self, name: str, **kwargs: Any) -> httpx.Response:
        """GET a function."""
        return self.request("GET", name, **kwargs)

    def post(self, name: str, **kwargs: Any) -> httpx.Response:
        """POST to a function."""
        return self.request("POST", name, **kwargs)

    def delete(self, name: str, **kwargs: Any) -> httpx.Response:
        """DELETE on a function."""
        return self.request("DELETE", name, **kwargs)

    def service(self, name: str, payload: Any, **headers: str) -> httpx.Response:
        """POST with the secret key, as a backend would."""
        return self.post(name, json=payload, headers={"apikey": LOCAL_SECRET_KEY, **headers})

    def signed(
        self,
        name: str,
        payload: Any,
        *,
        msg_id: str | None = None,
        timestamp: float | None = None,
        secret: str | None = None,
        tamper: bool = False,
    ) -> httpx.Response:
        """POST signed per Standard Webhooks, as a worker would."""
        body = json.dumps(payload).encode()
        headers = webhooks.sign(body, msg_id=msg_id, timestamp=timestamp, secret=secret)
        if tamper:
            body = body.replace(b"}", b' , "x": 1}', 1)
        return self.post(
            name, content=body, headers={"content-type": "application/json", **headers}
        )

    def stripe(self, event: dict[str, Any], *, secret: str = STRIPE_SECRET) -> httpx.Response:
        """POST a Stripe event with a computed ``Stripe-Signature``."""
        body = json.dumps(event).encode()
        stamp = int(time.time())
        mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
        header = f"t={stamp},v1={mac.hexdigest()}"
        return self.post(
            "update-credits",
            content=body,
            headers={"content-type": "application/json", "Stripe-Signature": header},
        )

    # Database ----------------------------------------------------------------------------

    def sql(self, query: str, params: list[Any] | None = None) -> Any:
        """Run one statement as postgres (bypasses RLS); the first column of the first row."""
        with psycopg.connect(self.server.db_url, autocommit=True) as conn:
            cur = conn.execute(query, params or [])  # type: ignore[arg-type]
            row = cur.fetchone() if cur.description else None
        return None if row is None else row[0]

    def test_model(self, *, lease_seconds: int = 600, max_attempts: int = 2) -> str:
        """A model of its own (our reference provider), so a pull worker claims only ours."""
        model_id = f"test/m-{uuid.uuid4().hex[:10]}"
        self.sql(
            "insert into public.models (id, name, provider, provider_model_id, job_type, "
            "credits_base, credits_per_second, max_attempts, lease_seconds) "
            "values (%s, %s, 'reference', 'reference-t2v', 'text_to_video', 2, 1, %s, %s)",
            [model_id, model_id, max_attempts, lease_seconds],
        )
        return model_id

    def pull_worker(self, model_id: str) -> str:
        """Register a pull worker for one model (signed); its id."""
        resp = self.signed(
            "health-check-workers",
            {
                "action": "register",
                "name": f"w-{uuid.uuid4().hex[:10]}",
                "models": [model_id],
                "capacity": 4,
                "mode": "pull",
            },
        )
        assert resp.status_code == 201, resp.text
        return str(resp.json()["data"]["id"])

    def claimed_job(self, user: User, model_id: str | None = None) -> tuple[dict[str, Any], str]:
        """A job of ``user`` leased by a pull worker: (the job as its owner now sees it, the
        worker id). The claim hands the worker the job as a push would (``WorkerJob``)."""
        model_id = model_id or self.test_model()
        worker_id = self.pull_worker(model_id)
        created = self.post(
            "queue-job", user=user, json={"model": model_id, "params": {"prompt": "a cat"}}
        )
        assert created.status_code == 202, created.text
        claim = self.signed(
            "health-check-workers", {"action": "claim", "worker_id": worker_id, "limit": 1}
        )
        assert claim.status_code == 200, claim.text
        [leased] = claim.json()["data"]
        job_id = created.json()["data"]["id"]
        assert (leased["job_id"], leased["model"]) == (job_id, model_id)
        assert leased["callback_url"].endswith("/job-callback")
        job = self.ok(self.get("queue-job", user=user, params={"id": job_id}))
        assert (job["attempt"], job["worker_id"]) == (leased["attempt"], worker_id)
        return job, worker_id

    # Envelopes ---------------------------------------------------------------------------

    @staticmethod
    def ok(resp: httpx.Response, status: int = 200) -> Any:
        """Assert a success envelope with ``status``; its ``data``."""
        assert resp.status_code == status, resp.text
        body = resp.json()
        assert body["success"] is True and set(body) == {"success", "data"}, body
        assert resp.headers["x-request-id"]
        return body["data"]

    @staticmethod
    def fails(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
        """Assert an error envelope with ``status`` (and ``code``); its ``error``."""
        assert resp.status_code == status, resp.text
        body = resp.json()
        assert body["success"] is False and set(body) == {"success", "error"}, body
        assert resp.headers["x-request-id"]
        error: dict[str, Any] = body["error"]
        if code is not None:
            assert error["code"] == code, error
        return error

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()


# The shared servers, by fixture name: after each test that used one, its books are audited.
SERVERS = (
    "api", "strict_api", "fuzz_api", "retention_api", "metrics_api", "store_api", "proxied",
    "fetching_api",
    "webhook_api",
)  # fmt: skip
# Nothing runs the sweep on a test server, so a lease a test let run out is not the books'
# fault: reservations are judged stale only after a day. Every other check is exact.
AUDIT_GRACE_SECONDS = 86_400


def audit_money(client: Api) -> list[dict[str, Any]]:
    """The money audit's rows on that server's database."""
    rows: list[dict[str, Any]] = client.sql(
        "select service.money_audit_report(%s)", [AUDIT_GRACE_SECONDS]
    )
    return rows


@pytest.fixture(autouse=True)
def books_balance_after_the_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every test that used a shared server, the money audit of its database finds
    nothing (the test fails otherwise)."""
    servers = [request.getfixturevalue(n) for n in SERVERS if n in request.fixturenames]
    yield
    outcome = getattr(request.node, "rep_call", None)
    if not servers or (outcome is not None and outcome.failed):
        return  # nothing to audit, or the test's own failure says more
    for client in servers:
        rows = audit_money(client)
        if rows:
            pytest.fail(f"the money audit found {len(rows)} difference(s): {rows[:5]}")


def _serving(start_server: Any, **env: str) -> Iterator[Api]:
    with start_server(**env) as server:
        client = Api(server)
        try:
            yield client
        finally:
            client.close()


# The Auth API's limits per client address (config.toml's [auth.rate_limit], under GoTrue's
# names), raised for a server that every test signs in to from 127.0.0.1.
GENEROUS_AUTH_LIMITS = {
    "GOTRUE_RATE_LIMIT_ANONYMOUS_USERS": "100000",
    "GOTRUE_RATE_LIMIT_OTP": "100000",
    "GOTRUE_RATE_LIMIT_TOKEN_REFRESH": "100000",
}


@pytest.fixture(scope="session")
def api(start_server: Any) -> Iterator[Api]:
    """One server for the tests that need no special settings (generous rate limits)."""
    yield from _serving(
        start_server,
        RATE_LIMIT_PER_MINUTE="100000",
        FREE_CALLS_PER_MINUTE="100000",
        STRIPE_WEBHOOK_SECRET=STRIPE_SECRET,
        # The readiness probe's own checks (storage over HTTP) get all the time a busy
        # machine needs: what is tested is what they find, not how fast.
        HEALTH_TIMEOUT_SECONDS="30",
        **GENEROUS_AUTH_LIMITS,
    )


@pytest.fixture(scope="session")
def strict_api(start_server: Any) -> Iterator[Api]:
    """A server with tight limits: 3 writes per minute per user, 1 KiB bodies."""
    yield from _serving(start_server, RATE_LIMIT_PER_MINUTE="3", MAX_BODY_BYTES="1024")


@pytest.fixture(scope="session")
def fuzz_api(start_server: Any) -> Iterator[Api]:
    """A server for generated requests (short timeouts for whatever URLs they invent)."""
    yield from _serving(
        start_server,
        RATE_LIMIT_PER_MINUTE="100000",
        FREE_CALLS_PER_MINUTE="100000",
        STRIPE_WEBHOOK_SECRET=STRIPE_SECRET,
        DISPATCH_TIMEOUT_SECONDS="0.5",
        HEALTH_TIMEOUT_SECONDS="0.5",
    )


APPLE_PRODUCTS = {"com.example.videogen.credits100": 100, "com.example.videogen.credits500": 500}


@pytest.fixture(scope="session")
def apple_chain() -> Any:
    """The App Store stand-in's certificate chain (the verifier trusts its root)."""
    from appstore import Chain

    return Chain.new()


@pytest.fixture(scope="session")
def store_api(start_server: Any, apple_chain: Any, tmp_path_factory: Any) -> Iterator[Api]:
    """A server that takes Stripe events and App Store data signed by ``apple_chain``."""
    from appstore import BUNDLE_ID

    root = tmp_path_factory.mktemp("apple") / "root.der"
    root.write_bytes(apple_chain.root_der())
    yield from _serving(
        start_server,
        RATE_LIMIT_PER_MINUTE="100000",
        FREE_CALLS_PER_MINUTE="100000",
        STRIPE_WEBHOOK_SECRET=STRIPE_SECRET,
        APPLE_BUNDLE_ID=BUNDLE_ID,
        APPLE_ENVIRONMENT="Sandbox",
        APPLE_ROOT_CERTIFICATES=str(root),
        APPLE_ONLINE_CHECKS="false",
        APPLE_PRODUCT_CREDITS=json.dumps(APPLE_PRODUCTS),
    )


METRICS_TOKEN = "test-metrics-token"  # a test value, not a real secret


@pytest.fixture(scope="session")
def metrics_api(start_server: Any) -> Iterator[Api]:
    """A server with METRICS_TOKEN set (the scrape is on)."""
    yield from _serving(
        start_server,
        RATE_LIMIT_PER_MINUTE="100000",
        FREE_CALLS_PER_MINUTE="100000",
        METRICS_TOKEN=METRICS_TOKEN,
    )


@pytest.fixture(scope="session")
def fetching_api(start_server: Any) -> Iterator[Api]:
    """A server that may fetch media from private hosts (OUTBOUND_ALLOW_PRIVATE_HOSTS: a
    test's file server on 127.0.0.1), as the local stack does."""
    yield from _serving(
        start_server,
        RATE_LIMIT_PER_MINUTE="100000",
        FREE_CALLS_PER_MINUTE="100000",
        OUTBOUND_ALLOW_PRIVATE_HOSTS="true",
    )


@pytest.fixture(scope="session")
def retention_api(start_server: Any) -> Iterator[Api]:
    """A server that keeps outputs 1 day and uploads 2 days."""
    yield from _serving(
        start_server,
        RATE_LIMIT_PER_MINUTE="100000",
        FREE_CALLS_PER_MINUTE="100000",
        OUTPUT_RETENTION_DAYS="1",
        UPLOAD_RETENTION_DAYS="2",
    )


@pytest.fixture(scope="session")
def proxied(start_server: Any) -> Iterator[Api]:
    """A server behind one proxy (TRUSTED_PROXY_HOPS=1: the client's address is the last
    X-Forwarded-For entry), with small limits on the free endpoints (5 per user, 8 per
    address a minute)."""
    yield from _serving(
        start_server,
        TRUSTED_PROXY_HOPS="1",
        FREE_CALLS_PER_MINUTE="5",
        FREE_CALLS_PER_ADDRESS_PER_MINUTE="8",
        RATE_LIMIT_PER_MINUTE="100000",
    )
