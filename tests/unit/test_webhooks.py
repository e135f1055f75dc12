"""Signed callbacks: Standard Webhooks (ours) and Stripe's scheme, valid and every forgery."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from videogen.config import Settings
from videogen.errors import BadRequest, ServiceUnavailable, Unauthorized
from videogen.integrations.webhooks import sign, stripe_verify, verify

NEW_SECRET = "whsec_" + base64.b64encode(b"n" * 32).decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()
STRANGER_SECRET = "whsec_" + base64.b64encode(b"x" * 32).decode()
STRIPE_SECRET = "whsec_stripe_test_secret"
BODY = b'{"job_id":"7d3c","attempt":1,"status":"completed"}'


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "webhook_secrets": f"{NEW_SECRET},{OLD_SECRET}",
        "stripe_webhook_secret": STRIPE_SECRET,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def settings() -> Settings:
    return make_settings()


def expect_401(code: str, headers: dict[str, str], body: bytes, settings: Settings) -> None:
    with pytest.raises(Unauthorized) as info:
        verify(headers, body, settings)
    assert info.value.status == 401
    assert info.value.code == code


# Standard Webhooks ---------------------------------------------------------------------------


def test_valid_signature_returns_the_webhook_id(settings: Settings) -> None:
    headers = sign(BODY, msg_id="msg_1", settings=settings)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert verify(headers, BODY, settings) == "msg_1"
    # Header names as a framework may present them.
    assert verify({k.title(): v for k, v in headers.items()}, BODY, settings) == "msg_1"


def test_signature_follows_the_spec(settings: Settings) -> None:
    stamp = int(time.time())
    headers = sign(BODY, msg_id="msg_spec", timestamp=stamp, secret=NEW_SECRET)
    key = base64.b64decode(NEW_SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, b"msg_spec.%d." % stamp + BODY, hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(mac).decode()
    assert headers["webhook-timestamp"] == str(stamp)


def test_sign_defaults(settings: Settings) -> None:
    headers = sign(BODY, settings=settings)
    assert headers["webhook-id"].startswith("msg_")
    assert headers["webhook-id"] != sign(BODY, settings=settings)["webhook-id"]
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 5
    when = datetime.now(UTC)
    assert sign(BODY, timestamp=when, settings=settings)["webhook-timestamp"] == str(
        int(when.timestamp())
    )


def test_rotated_secret_is_accepted(settings: Settings) -> None:
    headers = sign(BODY, msg_id="msg_old", secret=OLD_SECRET)
    assert verify(headers, BODY, settings) == "msg_old"


def test_one_matching_signature_among_several(settings: Settings) -> None:
    headers = sign(BODY, msg_id="msg_2", secret=NEW_SECRET)
    forged = sign(BODY, msg_id="msg_2", secret=STRANGER_SECRET)["webhook-signature"]
    headers["webhook-signature"] = f"{forged} {headers['webhook-signature']}"
    assert verify(headers, BODY, settings) == "msg_2"


def test_forged_signature(settings: Settings) -> None:
    expect_401("INVALID_SIGNATURE", sign(BODY, secret=STRANGER_SECRET), BODY, settings)


def test_tampered_body(settings: Settings) -> None:
    headers = sign(BODY, settings=settings)
    expect_401("INVALID_SIGNATURE", headers, BODY.replace(b"completed", b"failed"), settings)


def test_tampered_id_or_timestamp(settings: Settings) -> None:
    headers = sign(BODY, settings=settings)
    expect_401("INVALID_SIGNATURE", headers | {"webhook-id": "msg_other"}, BODY, settings)
    moved = str(int(headers["webhook-timestamp"]) - 1)
    expect_401("INVALID_SIGNATURE", headers | {"webhook-timestamp": moved}, BODY, settings)


def test_stale_timestamp(settings: Settings) -> None:
    headers = sign(BODY, timestamp=time.time() - 301, settings=settings)
    expect_401("STALE_WEBHOOK", headers, BODY, settings)


def test_future_timestamp(settings: Settings) -> None:
    headers = sign(BODY, timestamp=time.time() + 301, settings=settings)
    expect_401("STALE_WEBHOOK", headers, BODY, settings)


def test_tolerance_comes_from_settings() -> None:
    strict = make_settings(webhook_tolerance_s=30)
    headers = sign(BODY, timestamp=time.time() - 60, settings=strict)
    expect_401("STALE_WEBHOOK", headers, BODY, strict)
    assert verify(headers, BODY, make_settings()) == headers["webhook-id"]


@pytest.mark.parametrize(
    "broken",
    [
        {"webhook-signature": ""},
        {"webhook-id": ""},
        {"webhook-timestamp": "yesterday"},
        {"webhook-signature": "garbage"},
        {"webhook-signature": "v1,not base64!"},
        {"webhook-signature": "v2,AAAA"},
    ],
)
def test_malformed_headers(settings: Settings, broken: dict[str, str]) -> None:
    expect_401("INVALID_SIGNATURE", sign(BODY, settings=settings) | broken, BODY, settings)


def test_missing_headers(settings: Settings) -> None:
    expect_401("INVALID_SIGNATURE", {}, BODY, settings)


def test_binary_body_is_refused_not_crashed(settings: Settings) -> None:
    headers = sign(BODY, settings=settings)
    expect_401("INVALID_SIGNATURE", headers, b"\xff\xfe", settings)


# Stripe -------------------------------------------------------------------------------------


def stripe_event() -> bytes:
    event = {
        "id": "evt_1",
        "object": "event",
        "type": "checkout.session.completed",
        "data": {"object": {"id": "cs_1", "object": "checkout.session", "amount_total": 500}},
    }
    return json.dumps(event).encode()


def stripe_header(payload: bytes, secret: str = STRIPE_SECRET, at: int | None = None) -> str:
    """Stripe-Signature as Stripe documents it: t=<ts>,v1=hex(hmac_sha256(secret, "ts.body"))."""
    stamp = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={mac}"


def test_stripe_valid(settings: Settings) -> None:
    body = stripe_event()
    event = stripe_verify({"Stripe-Signature": stripe_header(body)}, body, settings)
    assert event["id"] == "evt_1"
    assert event["type"] == "checkout.session.completed"
    assert event["data"]["object"]["amount_total"] == 500


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (lambda body: stripe_header(body, secret="whsec_wrong"), "INVALID_SIGNATURE"),
        (lambda body: stripe_header(body + b" "), "INVALID_SIGNATURE"),
        (lambda body: "", "INVALID_SIGNATURE"),
        (lambda body: "t=abc,v1=00", "INVALID_SIGNATURE"),
        (lambda body: stripe_header(body, at=int(time.time()) - 3600), "STALE_WEBHOOK"),
    ],
)
def test_stripe_invalid(settings: Settings, header: Any, code: str) -> None:
    body = stripe_event()
    with pytest.raises(Unauthorized) as info:
        stripe_verify({"stripe-signature": header(body)}, body, settings)
    assert info.value.code == code


def test_stripe_signed_garbage_is_a_bad_request(settings: Settings) -> None:
    body = b"not json"
    with pytest.raises(BadRequest):
        stripe_verify({"stripe-signature": stripe_header(body)}, body, settings)


def test_stripe_not_configured() -> None:
    body = stripe_event()
    with pytest.raises(ServiceUnavailable) as info:
        stripe_verify(
            {"stripe-signature": stripe_header(body)},
            body,
            make_settings(stripe_webhook_secret=None),
        )
    assert info.value.code == "STRIPE_NOT_CONFIGURED"
