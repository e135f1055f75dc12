"""fal queue adapter: submit/status/cancel against recorded responses, signed webhooks."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from videogen.integrations.providers import (
    InvalidWebhook,
    ProviderAuthFailed,
    ProviderJob,
    ProviderRateLimited,
    ProviderUnavailable,
)
from videogen.integrations.providers.fal import JWKS_URL, FalProvider, app_id_of

if TYPE_CHECKING:
    from provider_router import Router

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "providers"


def fixture(name: str) -> object:
    return json.loads((FIXTURES / name).read_text())


NOW = 1_747_218_000
RID = "764cabcf-b745-4b3e-ae38-1200304cf45b"
APP = "fal-ai/kling-video"
MODEL = "fal-ai/kling-video/v2.1/master/text-to-video"
BASE = f"https://queue.fal.run/{APP}/requests/{RID}"
JOB_ID = f"{APP}/{RID}"
USER = "github|videogen-bot"


@pytest.fixture
def fal(http: httpx.Client) -> FalProvider:
    return FalProvider("key-id:key-secret", http, clock=lambda: NOW)


def test_app_id_drops_the_model_sub_path() -> None:
    assert app_id_of(MODEL) == APP
    assert app_id_of("fal-ai/flux/dev") == "fal-ai/flux"
    assert app_id_of("workflows/acme/storyboard/v2") == "workflows/acme/storyboard"


def test_submit_queues_with_key_auth_and_a_tagged_webhook(fal: FalProvider, router: Router) -> None:
    router.add("POST", f"https://queue.fal.run/{MODEL}", json_file="fal_submit.json")
    job = ProviderJob(
        model=MODEL,
        input={"prompt": "a lighthouse at dawn", "duration": "5"},
        webhook_url="https://api.example.com/functions/v1/job-callback?provider=fal",
    )
    sub = fal.submit(job)
    assert sub.provider_job_id == JOB_ID
    assert sub.status == "queued"
    sent = router.last()
    assert sent.headers["authorization"] == "Key key-id:key-secret"
    assert json.loads(sent.content) == {"prompt": "a lighthouse at dawn", "duration": "5"}
    webhook = httpx.URL(sent.url.params["fal_webhook"])
    assert webhook.params["provider"] == "fal"
    assert webhook.params["fal_app"] == APP


@pytest.mark.parametrize(
    ("file", "state", "progress", "position"),
    [
        ("fal_status_in_queue.json", "queued", 0, 3),
        ("fal_status_in_progress.json", "processing", None, None),
    ],
)
def test_status_while_running(
    fal: FalProvider, router: Router, file: str, state: str, progress: int | None, position: int
) -> None:
    router.add("GET", f"{BASE}/status", json_file=file)
    status = fal.status(JOB_ID)
    assert (status.state, status.progress, status.queue_position) == (state, progress, position)
    assert not status.is_terminal


def test_completed_status_reads_the_result(fal: FalProvider, router: Router) -> None:
    router.add("GET", f"{BASE}/status", json_file="fal_status_completed.json")
    router.add("GET", BASE, json_file="fal_result_video.json")
    status = fal.status(JOB_ID)
    assert status.state == "completed"
    assert status.progress == 100
    assert status.output_urls == ("https://v3.fal.media/files/penguin/Qk0m3x_output.mp4",)


def test_completed_with_a_model_error_is_failed(fal: FalProvider, router: Router) -> None:
    router.add("GET", f"{BASE}/status", json_file="fal_status_completed.json")
    router.add("GET", BASE, json_file="fal_result_error.json", status=422)
    status = fal.status(JOB_ID)
    assert status.state == "failed"
    assert status.error == "field required"
    assert status.error_code == "422"


def test_result_gateway_error_is_retryable_not_a_failure(fal: FalProvider, router: Router) -> None:
    router.add("GET", f"{BASE}/status", json_file="fal_status_completed.json")
    router.add("GET", BASE, json_body={"detail": "upstream"}, status=503)
    with pytest.raises(ProviderUnavailable) as err:
        fal.status(JOB_ID)
    assert err.value.retryable


def test_cancel_and_already_completed_is_a_no_op(fal: FalProvider, router: Router) -> None:
    router.add("PUT", f"{BASE}/cancel", json_file="fal_cancel_requested.json", status=202)
    fal.cancel(JOB_ID)
    router.routes.clear()
    router.add("PUT", f"{BASE}/cancel", json_file="fal_cancel_already_completed.json", status=400)
    fal.cancel(JOB_ID)
    assert router.last().method == "PUT"


def test_bad_key_and_rate_limit_map_to_clear_errors(fal: FalProvider, router: Router) -> None:
    router.add("GET", f"{BASE}/status", json_file="fal_error_401.json", status=401)
    with pytest.raises(ProviderAuthFailed) as auth:
        fal.status(JOB_ID)
    assert not auth.value.retryable
    assert "No user found" in auth.value.message
    assert "key-secret" not in auth.value.message
    router.routes.clear()
    router.add(
        "GET",
        f"{BASE}/status",
        json_body={"detail": "slow down"},
        status=429,
        headers={"retry-after": "7"},
    )
    with pytest.raises(ProviderRateLimited) as limited:
        fal.status(JOB_ID)
    assert limited.value.retryable
    assert limited.value.headers == {"Retry-After": "7"}


def test_timeout_is_retryable() -> None:
    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with (
        httpx.Client(transport=httpx.MockTransport(boom)) as client,
        pytest.raises(ProviderUnavailable) as err,
    ):
        FalProvider("k", client).status(JOB_ID)
    assert err.value.retryable
    assert err.value.status == 503


# Webhooks ---------------------------------------------------------------------------------
@pytest.fixture
def signing_key(router: Router) -> Ed25519PrivateKey:
    """A local Ed25519 key pair, its public half served as fal's JWKS."""
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    other = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    router.add(
        "GET",
        JWKS_URL,
        json_body={
            "keys": [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "kid": "old",
                    "x": base64.urlsafe_b64encode(other).rstrip(b"=").decode(),
                },
                {"kty": "OKP", "crv": "Ed25519", "kid": "current", "x": x},
            ]
        },
    )
    return key


def signed(key: Ed25519PrivateKey, body: bytes, *, timestamp: int = NOW) -> dict[str, str]:
    message = f"{RID}\n{USER}\n{timestamp}\n{hashlib.sha256(body).hexdigest()}".encode()
    return {
        "X-Fal-Webhook-Request-Id": RID,
        "X-Fal-Webhook-User-Id": USER,
        "X-Fal-Webhook-Timestamp": str(timestamp),
        "X-Fal-Webhook-Signature": key.sign(message).hex(),
    }


def body_of(name: str) -> bytes:
    return json.dumps(fixture(name)).encode()


def test_signed_webhook_verifies_and_parses(
    fal: FalProvider, router: Router, signing_key: Ed25519PrivateKey
) -> None:
    body = body_of("fal_webhook_ok.json")
    headers = signed(signing_key, body)
    fal.verify_webhook(headers, body)
    fal.verify_webhook(headers, body)  # second time from the cached JWKS
    assert [r.url for r in router.requests].count(httpx.URL(JWKS_URL)) == 1
    assert "authorization" not in router.requests[0].headers
    event = fal.parse_webhook(headers, body, {"fal_app": APP, "provider": "fal"})
    assert event.provider_job_id == JOB_ID
    assert event.state == "completed"
    assert event.output_urls == ("https://v3.fal.media/files/penguin/Qk0m3x_output.mp4",)


def test_error_webhook_parses_as_failed(fal: FalProvider) -> None:
    body = body_of("fal_webhook_error.json")
    event = fal.parse_webhook({}, body, {"fal_app": APP})
    assert event.state == "failed"
    assert event.error == "Invalid status code: 422"


@pytest.mark.parametrize("tamper", ["body", "signature", "request_id", "stale", "future", "hex"])
def test_forged_or_stale_webhooks_are_refused(
    fal: FalProvider, signing_key: Ed25519PrivateKey, tamper: str
) -> None:
    body = body_of("fal_webhook_ok.json")
    headers = signed(signing_key, body)
    if tamper == "body":
        body = body.replace(b"Qk0m3x", b"evil00")
    elif tamper == "signature":
        forger = Ed25519PrivateKey.generate()
        headers = signed(forger, body)
    elif tamper == "request_id":
        headers["X-Fal-Webhook-Request-Id"] = "00000000-0000-0000-0000-000000000000"
    elif tamper == "stale":
        headers = signed(signing_key, body, timestamp=NOW - 301)
    elif tamper == "future":
        headers = signed(signing_key, body, timestamp=NOW + 301)
    elif tamper == "hex":
        headers["X-Fal-Webhook-Signature"] = "not-hex"
    with pytest.raises(InvalidWebhook) as err:
        fal.verify_webhook(headers, body)
    assert err.value.status == 401


def test_missing_headers_and_other_account_are_refused(
    http: httpx.Client, signing_key: Ed25519PrivateKey
) -> None:
    body = body_of("fal_webhook_ok.json")
    fal = FalProvider("k", http, clock=lambda: NOW, expected_user_id="someone-else")
    with pytest.raises(InvalidWebhook):
        fal.verify_webhook({}, body)
    with pytest.raises(InvalidWebhook):
        fal.verify_webhook(signed(signing_key, body), body)


def test_rotated_key_is_picked_up_by_one_refetch(http: httpx.Client, router: Router) -> None:
    clock = [float(NOW)]
    fal = FalProvider("k", http, clock=lambda: clock[0])
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()

    def jwks(key: Ed25519PrivateKey) -> dict[str, object]:
        raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x}]}

    router.add("GET", JWKS_URL, json_body=jwks(old))
    router.add("GET", JWKS_URL, json_body=jwks(new))
    body = body_of("fal_webhook_ok.json")
    fal.verify_webhook(signed(old, body), body)
    clock[0] += 120
    fal.verify_webhook(signed(new, body, timestamp=int(clock[0])), body)
    assert sum(1 for r in router.requests if str(r.url) == JWKS_URL) == 2


def test_webhook_without_app_query_is_refused(fal: FalProvider) -> None:
    with pytest.raises(InvalidWebhook):
        fal.parse_webhook({}, body_of("fal_webhook_ok.json"))
