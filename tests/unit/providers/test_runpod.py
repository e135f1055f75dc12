"""RunPod adapter: serverless endpoint jobs, health, token-checked unsigned webhooks."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from videogen.integrations.providers import (
    InvalidWebhook,
    ProviderAuthFailed,
    ProviderJob,
    ProviderRejected,
    receive_webhook,
)
from videogen.integrations.providers.runpod import RunPodProvider

if TYPE_CHECKING:
    from provider_router import Router

API = "https://api.runpod.ai/v2"
EP = "vgworker7x2k"
JID = "c80ffee4-f315-4e25-a146-0f3d98cf024b-u1"
JOB_ID = f"{EP}/{JID}"
VIDEO = "https://videogen.supabase.co/storage/v1/object/sign/videos/u1/j1.mp4?token=abc"
THUMB = "https://videogen.supabase.co/storage/v1/object/sign/thumbnails/u1/j1.jpg?token=def"


@pytest.fixture
def runpod(http: httpx.Client) -> RunPodProvider:
    return RunPodProvider("rp_key", b"token-secret", http)


def submitted_webhook(runpod: RunPodProvider, router: Router) -> httpx.URL:
    router.add("POST", f"{API}/{EP}/run", json_file="runpod_run.json")
    sub = runpod.submit(
        ProviderJob(
            model=EP,
            input={"prompt": "a lighthouse", "job_id": "j1"},
            webhook_url="https://api.example.com/functions/v1/job-callback?provider=runpod",
            options={"policy": {"executionTimeout": 900000}},
        )
    )
    assert (sub.provider_job_id, sub.status) == (JOB_ID, "queued")
    return httpx.URL(json.loads(router.last().content)["webhook"])


def test_submit_sends_input_policy_and_a_tokened_webhook(
    runpod: RunPodProvider, router: Router
) -> None:
    webhook = submitted_webhook(runpod, router)
    sent = json.loads(router.last().content)
    assert router.last().headers["authorization"] == "Bearer rp_key"
    assert sent["input"] == {"prompt": "a lighthouse", "job_id": "j1"}
    assert sent["policy"] == {"executionTimeout": 900000}
    assert webhook.params["provider"] == "runpod"
    assert webhook.params["runpod_endpoint"] == EP
    assert webhook.params["token"] == runpod.webhook_token(EP)


@pytest.mark.parametrize(
    ("file", "state", "urls", "error"),
    [
        ("runpod_status_in_progress.json", "processing", (), None),
        ("runpod_status_completed.json", "completed", (VIDEO, THUMB), None),
        (
            "runpod_status_failed.json",
            "failed",
            (),
            "ffmpeg exited with status 1: Invalid data found when processing input",
        ),
        ("runpod_status_timed_out.json", "failed", (), "timed out"),
    ],
)
def test_status(
    runpod: RunPodProvider,
    router: Router,
    file: str,
    state: str,
    urls: tuple[str, ...],
    error: str | None,
) -> None:
    router.add("GET", f"{API}/{EP}/status/{JID}", json_file=file)
    status = runpod.status(JOB_ID)
    assert (status.state, status.output_urls, status.error) == (state, urls, error)


def test_cancel(runpod: RunPodProvider, router: Router) -> None:
    router.add("POST", f"{API}/{EP}/cancel/{JID}", json_file="runpod_cancel.json")
    runpod.cancel(JOB_ID)
    assert router.last().url.path == f"/v2/{EP}/cancel/{JID}"


def test_health_feeds_the_health_sweep(runpod: RunPodProvider, router: Router) -> None:
    router.add("GET", f"{API}/{EP}/health", json_file="runpod_health.json")
    health = runpod.health(EP)
    assert (health.workers_idle, health.workers_running, health.jobs_in_queue) == (1, 1, 4)
    assert health.has_capacity
    assert health.is_healthy


def test_bad_key_and_bad_job_id(runpod: RunPodProvider, router: Router) -> None:
    router.add("GET", f"{API}/{EP}/health", json_file="runpod_error_401.json", status=401)
    with pytest.raises(ProviderAuthFailed):
        runpod.health(EP)
    with pytest.raises(ProviderRejected):
        runpod.status("no-endpoint-part")


def test_webhook_token_is_checked_and_the_body_confirmed_by_polling(
    runpod: RunPodProvider, router: Router, load: Callable[[str], Any]
) -> None:
    webhook = submitted_webhook(runpod, router)
    query = dict(webhook.params)
    body = json.dumps(load("runpod_webhook_completed.json")).encode()
    runpod.verify_webhook({}, body, query)
    hint = runpod.parse_webhook({}, body, query)
    assert (hint.provider_job_id, hint.state, hint.verified) == (JOB_ID, "completed", False)

    # The body says completed; the poll is the truth (here: still running).
    router.add("GET", f"{API}/{EP}/status/{JID}", json_file="runpod_status_in_progress.json")
    event = receive_webhook(runpod, {}, body, query)
    assert (event.state, event.verified) == ("processing", True)
    assert event.event_id == f"runpod:{JID}:COMPLETED"


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"runpod_endpoint": EP},
        {"runpod_endpoint": EP, "token": "0" * 64},
        {"runpod_endpoint": "otherendpoint", "token": "x"},
    ],
)
def test_forged_webhooks_are_refused(runpod: RunPodProvider, query: dict[str, str]) -> None:
    with pytest.raises(InvalidWebhook) as err:
        runpod.verify_webhook({}, b"{}", query)
    assert err.value.status == 401


def test_token_from_another_secret_is_refused(http: httpx.Client, runpod: RunPodProvider) -> None:
    other = RunPodProvider("rp_key", b"another-secret", http)
    with pytest.raises(InvalidWebhook):
        runpod.verify_webhook({}, b"{}", {"runpod_endpoint": EP, "token": other.webhook_token(EP)})
