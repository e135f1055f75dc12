"""Replicate adapter: predictions against recorded responses, Standard Webhooks signatures."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from videogen.integrations.providers import (
    InvalidWebhook,
    ProviderJob,
    ProviderJobNotFound,
    ProviderNotConfigured,
    ProviderQuotaExceeded,
    ProviderRejected,
    ProviderUnavailable,
)
from videogen.integrations.providers.replicate import ReplicateProvider

if TYPE_CHECKING:
    from provider_router import Router

API = "https://api.replicate.com/v1"
PID = "rrr4ffs5w5rge0cm3q3bm4zw1r"
SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
VERSION = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"


@pytest.fixture
def replicate(http: httpx.Client) -> ReplicateProvider:
    return ReplicateProvider("r8_token", http, webhook_secret=SECRET)


def test_submit_official_model_with_webhook_filter(
    replicate: ReplicateProvider, router: Router
) -> None:
    router.add(
        "POST",
        f"{API}/models/minimax/video-01/predictions",
        json_file="replicate_prediction_starting.json",
        status=201,
    )
    sub = replicate.submit(
        ProviderJob(
            model="minimax/video-01",
            input={"prompt": "a lighthouse at dawn, waves crashing"},
            webhook_url="https://api.example.com/functions/v1/job-callback?provider=replicate",
        )
    )
    assert (sub.provider_job_id, sub.status) == (PID, "queued")
    sent = router.last()
    assert sent.headers["authorization"] == "Bearer r8_token"
    assert "prefer" not in sent.headers
    assert json.loads(sent.content) == {
        "input": {"prompt": "a lighthouse at dawn, waves crashing"},
        "webhook": "https://api.example.com/functions/v1/job-callback?provider=replicate",
        "webhook_events_filter": ["start", "completed"],
    }


@pytest.mark.parametrize("model", [f"owner/model:{VERSION}", VERSION])
def test_submit_pinned_version(replicate: ReplicateProvider, router: Router, model: str) -> None:
    router.add("POST", f"{API}/predictions", json_file="replicate_prediction_starting.json")
    replicate.submit(ProviderJob(model=model, input={"prompt": "x"}))
    assert json.loads(router.last().content) == {"input": {"prompt": "x"}, "version": VERSION}


def test_submit_refuses_a_malformed_model(replicate: ReplicateProvider) -> None:
    with pytest.raises(ProviderRejected):
        replicate.submit(ProviderJob(model="not-a-model", input={}))


@pytest.mark.parametrize(
    ("file", "state", "progress", "urls", "error"),
    [
        ("replicate_prediction_starting.json", "queued", 0, (), None),
        ("replicate_prediction_processing.json", "processing", 45, (), None),
        (
            "replicate_prediction_succeeded.json",
            "completed",
            100,
            ("https://replicate.delivery/xezq/a1b2c3/tmpz0o7w3ld.mp4",),
            None,
        ),
        (
            "replicate_prediction_failed.json",
            "failed",
            None,
            (),
            "CUDA out of memory. Tried to allocate 2.00 GiB",
        ),
        ("replicate_prediction_canceled.json", "canceled", None, (), None),
    ],
)
def test_status(
    replicate: ReplicateProvider,
    router: Router,
    file: str,
    state: str,
    progress: int | None,
    urls: tuple[str, ...],
    error: str | None,
) -> None:
    router.add("GET", f"{API}/predictions/{PID}", json_file=file)
    status = replicate.status(PID)
    assert (status.state, status.progress, status.output_urls, status.error) == (
        state,
        progress,
        urls,
        error,
    )


def test_cancel_posts_to_the_cancel_url(replicate: ReplicateProvider, router: Router) -> None:
    router.add(
        "POST", f"{API}/predictions/{PID}/cancel", json_file="replicate_prediction_canceled.json"
    )
    replicate.cancel(PID)
    assert router.last().method == "POST"


@pytest.mark.parametrize(
    ("status", "file", "error", "retryable"),
    [
        (402, "replicate_error_402.json", ProviderQuotaExceeded, False),
        (422, "replicate_error_422.json", ProviderRejected, False),
        (404, None, ProviderJobNotFound, False),
        (502, None, ProviderUnavailable, True),
    ],
)
def test_errors_are_mapped(
    replicate: ReplicateProvider,
    router: Router,
    status: int,
    file: str | None,
    error: type[Exception],
    retryable: bool,
) -> None:
    router.add(
        "GET", f"{API}/predictions/{PID}", json_file=file, json_body={"detail": "x"}, status=status
    )
    with pytest.raises(error) as err:
        replicate.status(PID)
    assert err.value.retryable is retryable  # type: ignore[attr-defined]


def test_quota_message_is_the_providers_detail(
    replicate: ReplicateProvider, router: Router
) -> None:
    router.add("GET", f"{API}/predictions/{PID}", json_file="replicate_error_402.json", status=402)
    with pytest.raises(ProviderQuotaExceeded) as err:
        replicate.status(PID)
    assert "insufficient credit" in err.value.message
    assert err.value.to_dict()["details"] == [{"provider": "replicate", "provider_status": 402}]


# Webhooks ---------------------------------------------------------------------------------
def sign(body: bytes, *, msg_id: str = "msg_2kXbKQ1", at: datetime | None = None) -> dict[str, str]:
    at = at or datetime.now(tz=UTC)
    signature = Webhook(SECRET).sign(msg_id, at, body.decode())
    return {
        "Webhook-Id": msg_id,
        "Webhook-Timestamp": str(int(at.timestamp())),
        "Webhook-Signature": signature,
    }


def test_signed_webhook_verifies_and_parses(
    replicate: ReplicateProvider, load: Callable[[str], Any]
) -> None:
    body = json.dumps(load("replicate_prediction_succeeded.json")).encode()
    headers = sign(body)
    replicate.verify_webhook(headers, body)
    event = replicate.parse_webhook(headers, body)
    assert event.provider_job_id == PID
    assert event.state == "completed"
    assert event.output_urls == ("https://replicate.delivery/xezq/a1b2c3/tmpz0o7w3ld.mp4",)
    assert event.event_id == "msg_2kXbKQ1"


@pytest.mark.parametrize("tamper", ["body", "secret", "stale", "garbage", "missing"])
def test_forged_or_stale_webhooks_are_refused(
    replicate: ReplicateProvider, load: Callable[[str], Any], tamper: str
) -> None:
    body = json.dumps(load("replicate_prediction_succeeded.json")).encode()
    headers = sign(body)
    if tamper == "body":
        body = body.replace(b"succeeded", b"failed")
    elif tamper == "secret":
        wrong = Webhook("whsec_" + "A" * 32).sign(
            "msg_2kXbKQ1", datetime.now(tz=UTC), body.decode()
        )
        headers["Webhook-Signature"] = wrong
    elif tamper == "stale":
        headers = sign(body, at=datetime.now(tz=UTC) - timedelta(minutes=6))
    elif tamper == "garbage":
        headers["Webhook-Signature"] = "v1"
    elif tamper == "missing":
        headers = {}
    with pytest.raises(InvalidWebhook) as err:
        replicate.verify_webhook(headers, body)
    assert err.value.status == 401


def test_webhook_without_a_secret_is_a_configuration_error(http: httpx.Client) -> None:
    with pytest.raises(ProviderNotConfigured):
        ReplicateProvider("r8_token", http).verify_webhook({}, b"{}")
