"""What each provider's recorded payload says a run consumed, carried to the job's report."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from videogen.integrations.providers.base import WebhookEvent, reported_seconds
from videogen.integrations.providers.fal import FalProvider
from videogen.integrations.providers.reconcile import reconcile
from videogen.integrations.providers.replicate import ReplicateProvider
from videogen.integrations.providers.runpod import RunPodProvider
from videogen.models.jobs import ProviderJobRow
from videogen.services.jobs import _provider_report

if TYPE_CHECKING:
    from provider_router import Router

REPLICATE = "https://api.replicate.com/v1"
PID = "rrr4ffs5w5rge0cm3q3bm4zw1r"
FAL_BASE = "https://queue.fal.run/fal-ai/kling-video/requests/764cabcf-b745-4b3e-ae38-1200304cf45b"
RUNPOD = "https://api.runpod.ai/v2/vgworker7x2k/status/c80ffee4-f315-4e25-a146-0f3d98cf024b-u1"


def test_replicate_reports_predict_time(http: httpx.Client, router: Router) -> None:
    router.add(
        "GET", f"{REPLICATE}/predictions/{PID}", json_file="replicate_prediction_succeeded.json"
    )
    status = ReplicateProvider("r8_token", http).status(PID)
    assert (status.state, status.seconds, status.cost_usd) == ("completed", 267.198, None)


def test_replicate_webhook_carries_the_metrics(
    http: httpx.Client, load: Callable[[str], Any]
) -> None:
    body = json.dumps(load("replicate_prediction_succeeded.json")).encode()
    event = ReplicateProvider("r8_token", http).parse_webhook({"webhook-id": "msg_1"}, body)
    assert (event.state, event.seconds) == ("completed", 267.198)


def test_a_running_prediction_has_no_seconds_yet(http: httpx.Client, router: Router) -> None:
    router.add(
        "GET", f"{REPLICATE}/predictions/{PID}", json_file="replicate_prediction_processing.json"
    )
    assert ReplicateProvider("r8_token", http).status(PID).seconds is None


def test_runpod_reports_execution_time_not_the_queue_delay(
    http: httpx.Client, router: Router
) -> None:
    router.add("GET", RUNPOD, json_file="runpod_status_completed.json")
    provider = RunPodProvider("rp_key", "s", http)
    status = provider.status("vgworker7x2k/c80ffee4-f315-4e25-a146-0f3d98cf024b-u1")
    assert status.seconds == 48.311  # executionTime 48311 ms; delayTime 2188 ms is not billed
    event = reconcile(provider, "vgworker7x2k/c80ffee4-f315-4e25-a146-0f3d98cf024b-u1")
    assert (event.state, event.seconds) == ("completed", 48.311)


def test_fal_reports_inference_time_from_the_queue_status(
    http: httpx.Client, router: Router
) -> None:
    router.add("GET", f"{FAL_BASE}/status", json_file="fal_status_completed.json")
    router.add("GET", FAL_BASE, json_file="fal_result_video.json")
    status = FalProvider("fal_key", http).status(
        "fal-ai/kling-video/764cabcf-b745-4b3e-ae38-1200304cf45b"
    )
    assert (status.state, status.seconds) == ("completed", 142.7)


@pytest.mark.parametrize(
    ("value", "scale", "seconds"),
    [(12, 1.0, 12.0), (1500, 0.001, 1.5), (-1, 1.0, None), ("12", 1.0, None), (True, 1.0, None)],
)
def test_reported_seconds_takes_numbers_only(value: Any, scale: float, seconds: Any) -> None:
    assert reported_seconds(value, scale=scale) == seconds


def row() -> ProviderJobRow:
    return ProviderJobRow(
        id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        status="processing",
        attempt=2,
        progress=40,
        provider="replicate",
        provider_job_id=PID,
    )


def test_a_finished_run_reports_its_usage() -> None:
    event = WebhookEvent(PID, "completed", 100, seconds=267.198, cost_usd=0.37)
    report = _provider_report("replicate", event, row(), {"video_path": "x"})
    assert report is not None and report["type"] == "completed"
    assert report["usage"] == {
        "provider_calls": 1,
        "provider_seconds": 267.198,
        "provider_cost_usd": 0.37,
    }
    failed = _provider_report("replicate", WebhookEvent(PID, "failed", error="x"), row(), None)
    assert failed is not None and failed["usage"] == {"provider_calls": 1}
    progress = _provider_report("replicate", WebhookEvent(PID, "processing", 50), row(), None)
    assert progress is not None and "usage" not in progress
