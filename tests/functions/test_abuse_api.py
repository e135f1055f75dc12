"""Nobody gets credits, compute or a queue place they did not pay for — tried as an abuser.

A server behind one trusted proxy (TRUSTED_PROXY_HOPS=1) sees each client's address in
X-Forwarded-For, as Cloud Run's front end sends it; a client's own X-Forwarded-For entries
(left of the proxy's) are ignored.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from rate_window import in_one_window
from videogen_dev.users import ensure_user

from videogen.errors import AppError
from videogen.principal import Principal

T2V = "reference/text-to-video"
CLAIM = {"action": "claim_initial_grant"}


def from_address(address: str, spoofed: str = "10.9.8.7") -> dict[str, str]:
    """What a client at ``address`` sends through the proxy: its own (ignored) claim first."""
    return {"X-Forwarded-For": f"{spoofed}, {address}"}


@dataclass
class Guest:
    """A user signed in anonymously through the Auth API, with its access token."""

    id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def _signed_in_guest(api: Any) -> Guest:
    """An anonymous sign-in as supabase-js makes it (POST /auth/v1/signup, no body)."""
    resp = api.http.post(
        f"{api.server.base}/auth/v1/signup", json={}, headers={"apikey": _publishable_key()}
    )
    assert resp.status_code == 200, resp.text
    session = resp.json()
    return Guest(session["user"]["id"], session["access_token"])


def balance(api: Any, user: Any) -> int:
    return int(api.ok(api.get("update-credits", user=user))["balance"])


# Free credits -----------------------------------------------------------------------------


def test_a_scripted_farming_attempt_ends_with_the_documented_free_credits(proxied: Any) -> None:
    """Guests from one address, their grants merged into one account, a second account of
    the same mailbox: the account ends with its own 100 and the guests keep theirs."""
    api, address = proxied, "203.0.113.7"
    guests = [_signed_in_guest(api) for _ in range(6)]  # through the local Auth API
    answers = [
        api.post("update-credits", user=g, json=CLAIM, headers=from_address(address))
        for g in guests
    ]
    assert [r.status_code for r in answers] == [200, 200, 200, 429, 429, 429]
    refused = api.fails(answers[3], 429, "RATE_LIMITED")
    assert "email" in refused["hint"]
    assert 0 < int(answers[3].headers["Retry-After"]) <= 86_400

    farmer_email = f"far.mer.{uuid.uuid4().hex[:8]}@gmail.com"
    farmer = api.user()
    api.sql("update auth.users set email = %s where id = %s", [farmer_email, farmer.id])
    assert api.ok(api.post("update-credits", user=farmer, json=CLAIM))["entry"]["amount"] == 100
    for guest in guests:
        body = {"action": "merge_anonymous", "anonymous_token": guest.token}
        merged = api.ok(api.post("update-credits", user=farmer, json=body))
        assert merged["merge"]["credits"] == 0
    assert balance(api, farmer) == 100
    assert [balance(api, g) for g in guests] == [20, 20, 20, 0, 0, 0]

    # The same mailbox again (dots and a +tag are the same Gmail inbox): no second grant.
    api.sql("delete from auth.users where id = %s", [farmer.id])
    again = api.user()
    alias = farmer_email.replace(".", "", 1).replace("@", "+again@")
    api.sql("update auth.users set email = %s where id = %s", [alias, again.id])
    api.fails(api.post("update-credits", user=again, json=CLAIM), 409, "ALREADY_CLAIMED")
    assert balance(api, again) == 0

    # Another address: a guest there still gets its grant; the spoofed entry decided nothing.
    newcomer = api.user(anonymous=True)
    api.ok(
        api.post("update-credits", user=newcomer, json=CLAIM, headers=from_address("198.51.100.4"))
    )


# Queue places and spend caps over HTTP ----------------------------------------------------


def test_priority_spend_caps_answer_with_their_numbers(proxied: Any) -> None:
    api = proxied
    user = api.user(credits=100)
    job = {"model": T2V, "prompt": "a kite", "duration": 10, "resolution": "480p"}  # 12 credits
    error = api.fails(api.post("generate-video", user=user, json={**job, "priority": 10}), 403)
    assert error["code"] == "PRIORITY_NOT_ALLOWED"
    assert error["details"] == [{"priority": 10, "max_priority": 0, "tier": "free"}]
    error = api.fails(
        api.post("generate-video", user=user, json={**job, "max_credits": 11}),
        402,
        "MAX_CREDITS_EXCEEDED",
    )
    assert error["details"] == [{"cost": 12, "max_credits": 11}]
    queued = {"model": T2V, "params": {k: v for k, v in job.items() if k != "model"}}
    api.ok(api.post("queue-job", user=user, json={**queued, "max_credits": 12}), 202)

    api.sql("update public.profiles set tier = 'capped' where id = %s", [user.id])
    api.sql("insert into private.tier_limits values ('capped', 0, 20)")
    resp = api.post("generate-video", user=user, json=job)
    error = api.fails(resp, 429, "DAILY_SPEND_LIMIT")
    assert error["details"][0]["spent_today"] == 12 and error["details"][0]["daily_limit"] == 20
    assert int(resp.headers["Retry-After"]) == error["details"][0]["retry_after"] > 0
    assert balance(api, user) == 88  # only the one job that fit


# Free endpoints that burn CPU -------------------------------------------------------------


def test_free_endpoints_are_limited_per_user_and_per_address(proxied: Any) -> None:
    api = proxied
    preview = {"voice": "en-us", "language": "en", "text": "Hello there."}
    quote = {"items": [{"model": T2V}]}

    def one_user() -> tuple[bool, list[Any]]:  # 5 a minute per user: the sixth is refused
        user, here = api.user(), from_address(f"192.0.2.{uuid.uuid4().int % 200 + 1}")
        answers = [api.post("queue-job/voices/preview", user=user, json=preview, headers=here)]
        answers += [
            api.post("queue-job/quote", user=user, json=quote, headers=here) for _ in range(5)
        ]
        statuses = [r.status_code for r in answers]
        return statuses == [200] * 5 + [429], answers

    answers = in_one_window(one_user)
    assert answers[0].headers["content-type"] == "audio/wav"
    api.fails(answers[-1], 429, "RATE_LIMITED")
    assert int(answers[-1].headers["Retry-After"]) >= 1

    script = {"title": "T", "sections": [{"title": "One", "narration": "Hello there."}]}

    def one_address() -> tuple[bool, list[int]]:  # 8 a minute per address, whoever calls
        crowd = from_address(f"198.51.100.{uuid.uuid4().int % 200 + 1}")
        statuses = []
        for _ in range(4):
            someone = api.user()
            for _ in range(2):
                analyzed = api.post(
                    "queue-job/script/analyze", user=someone, headers=crowd,
                    json={"script": script},
                )  # fmt: skip
                statuses.append(analyzed.status_code)
        anonymous = api.get(  # the catalogue for a caller with the publishable key alone
            "queue-job/models", headers={"apikey": _publishable_key(), **crowd}
        )
        statuses.append(anonymous.status_code)
        return statuses == [200] * 8 + [429], statuses

    in_one_window(one_address)


def _publishable_key() -> str:
    from videogen.config import LOCAL_PUBLISHABLE_KEY

    return LOCAL_PUBLISHABLE_KEY


# DeviceCheck: one free grant per device ---------------------------------------------------


class FakeApple:
    """Apple's DeviceCheck server as recorded: bits per device token, answers as Apple's."""

    def __init__(self) -> None:
        self.bits: dict[str, dict[str, bool]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        endpoint = request.url.path.rsplit("/", 1)[-1]
        self.calls.append((endpoint, body))
        token = body["device_token"]
        if endpoint == "query_two_bits":
            if token not in self.bits:
                return httpx.Response(200, text="Failed to find bit state")
            return httpx.Response(200, json={**self.bits[token], "last_update_time": "2026-12"})
        self.bits[token] = {"bit0": body.get("bit0", False), "bit1": body.get("bit1", False)}
        return httpx.Response(200)


def _device_check(apple: FakeApple) -> Any:
    from videogen.integrations.devicecheck import DeviceCheckClient

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    http = httpx.Client(transport=httpx.MockTransport(apple.handle))
    return DeviceCheckClient(http, team_id="TEAM123456", key_id="KEY1234567", private_key=pem)


def test_a_device_takes_one_free_grant_whatever_its_accounts(db_url: str) -> None:
    """Through the service with a real database: Apple's bit 0 says the device took it."""
    from videogen.config import Settings
    from videogen.db.connection import PostgresDatabase
    from videogen.db.outcomes import WriteRequest
    from videogen.integrations.storage import storage_for
    from videogen.services import credits
    from videogen.services.scope import Scope

    apple, db = FakeApple(), PostgresDatabase(db_url)
    device_check = _device_check(apple)
    token = "QUJDREVGR0hJSktMTU5PUA=="  # base64, as DCDevice's tokens are
    settings = Settings(GUEST_GRANT_REQUIRES_DEVICE_CHECK=True)

    def guest() -> Principal:
        uid, _ = ensure_user(db_url, f"g-{uuid.uuid4().hex[:8]}@example.test", anonymous=True)
        return Principal(
            kind="user", role="authenticated", user_id=str(uid), is_anonymous=True,
            claims={"sub": str(uid), "role": "authenticated", "is_anonymous": True},
        )  # fmt: skip

    def claim(who: Principal, device_token: str | None, address: str = "203.0.113.9") -> Any:
        write = WriteRequest(f"user:{who.user_id}", "update-credits:POST", "update-credits",
                             None, None, uuid.uuid4().hex)  # fmt: skip
        scope = Scope(db, settings, storage_for(settings), who, write, client_address=address)
        return credits.claim_initial_grant(
            scope, device_token=device_token, device_check=device_check
        )

    try:
        first = claim(guest(), token)
        assert first.data.entry is not None and first.data.entry.amount == 20
        assert [c[0] for c in apple.calls] == ["query_two_bits", "update_two_bits"]
        assert apple.bits[token]["bit0"] is True
        with pytest.raises(AppError) as again:
            claim(guest(), token)  # a new guest on the same device
        assert (again.value.status, again.value.code) == (409, "DEVICE_ALREADY_CLAIMED")
        with pytest.raises(AppError) as unchecked:
            claim(guest(), None)  # the deployment asks guests for a device token
        assert unchecked.value.code == "DEVICE_CHECK_REQUIRED"
        # A vouched-for device is not held to the per-address limit of guests.
        for i in range(4):
            assert claim(guest(), f"T0tIRVJERVZJQ0Ux{i}A==").data.applied is True
        rows = db.admin_call("service.money_audit_report", grace_seconds=86_400)
        assert rows == []
    finally:
        db.close()
