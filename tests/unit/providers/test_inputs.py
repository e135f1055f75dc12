"""Each adapter sends its provider's documented input, built from our job params.

The request each adapter puts on the wire is captured by the recorded-response router
and compared whole. Schemas, as found in the providers' documentation:

- Runway: https://docs.dev.runwayml.com/api/#tag/Start-generating/paths/~1v1~1image_to_video/post
  (``promptImage`` https URL, ``promptText``, ``ratio`` "1280:720" | "720:1280" |
  "960:960"…, ``duration`` 5 | 10 for gen4_turbo, ``seed``; ``text_to_video`` for gen4.5)
- fal Kling 2.1: https://fal.ai/models/fal-ai/kling-video/v2.1/standard/text-to-video/llms.txt
  and …/image-to-video/llms.txt (``prompt``, ``duration`` "5" | "10", ``aspect_ratio``,
  ``negative_prompt``; ``image_url`` for an image)
- Replicate: https://replicate.com/minimax/video-01/api (``prompt``,
  ``first_frame_image``), https://replicate.com/kwaivgi/kling-v1.6-standard/api
  (``start_image``, ``duration``, ``aspect_ratio``, ``negative_prompt``)
- RunPod: https://docs.runpod.io/serverless/endpoints/send-requests (``{"input": …}``)
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from videogen.errors import ValidationFailed
from videogen.integrations.providers import (
    ProviderJob,
    ProviderRejected,
    VideoProvider,
    VideoRequest,
)
from videogen.integrations.providers.fal import FalProvider
from videogen.integrations.providers.replicate import ReplicateProvider
from videogen.integrations.providers.runpod import RunPodProvider
from videogen.integrations.providers.runway import RunwayProvider

if TYPE_CHECKING:
    from provider_router import Router

IMAGE = "https://videogen.supabase.co/storage/v1/object/sign/uploads/u1/still.png?token=t"
HOOK = "https://api.example.com/functions/v1/job-callback"
OWNER = "00000000-0000-4000-8000-000000000001"
T2V = "text_to_video"
I2V = "image_to_video"


def request(job_type: str, image_url: str | None = None, **params: Any) -> VideoRequest:
    base = {"prompt": "a paper boat", "duration": 5, "aspect_ratio": "16:9", "resolution": "720p"}
    if job_type == I2V:
        base["image_path"] = f"{OWNER}/still.png"
    return VideoRequest.from_params(job_type, {**base, **params}, image_url)


def sent_body(
    provider: VideoProvider, router: Router, model: str, req: VideoRequest, hook: str | None
) -> Any:
    """Map ``req``, submit it and return the JSON body the provider received."""
    provider.submit(
        ProviderJob(model=model, input=provider.provider_input(model, req), webhook_url=hook)
    )
    return json.loads(router.last().content)


def test_params_are_read_typed_and_the_upload_path_is_dropped() -> None:
    req = request(I2V, IMAGE, seed="42")
    assert req == VideoRequest(
        job_type=I2V,
        prompt="a paper boat",
        duration=5,
        aspect_ratio="16:9",
        resolution="720p",
        seed=42,
        image_url=IMAGE,
    )
    assert "image_path" not in VideoRequest.__dataclass_fields__
    with pytest.raises(ValidationFailed):  # blank text is no prompt: the params refuse it
        request(I2V, IMAGE, negative_prompt="  ")


# Runway ------------------------------------------------------------------------------------

RUNWAY = "https://api.dev.runwayml.com/v1"


@pytest.fixture
def runway(http: httpx.Client, router: Router) -> RunwayProvider:
    for endpoint in ("image_to_video", "text_to_video"):
        router.add("POST", f"{RUNWAY}/{endpoint}", json_file="runway_task_created.json")
    return RunwayProvider("key_runway", http)


def test_runway_image_to_video(runway: RunwayProvider, router: Router) -> None:
    req = request(I2V, IMAGE, aspect_ratio="9:16", duration=8, seed=7, negative_prompt="blur")
    body = sent_body(runway, router, "gen4_turbo", req, HOOK)
    assert str(router.last().url) == f"{RUNWAY}/image_to_video"
    assert body == {
        "model": "gen4_turbo",
        "promptImage": IMAGE,
        "promptText": "a paper boat",
        "ratio": "720:1280",
        "duration": 10,
        "seed": 7,
    }


def test_runway_text_to_video(runway: RunwayProvider, router: Router) -> None:
    body = sent_body(runway, router, "gen4.5", request(T2V, duration=6), None)
    assert str(router.last().url) == f"{RUNWAY}/text_to_video"
    assert body == {
        "model": "gen4.5",
        "promptText": "a paper boat",
        "ratio": "1280:720",
        "duration": 6,
    }


@pytest.mark.parametrize(
    ("model", "req", "message"),
    [
        ("gen4_turbo", request(T2V), "does not do text_to_video"),
        ("gen4_turbo", request(I2V, IMAGE, duration=3), "makes 5 or 10 s videos, not 3 s"),
        ("gen4_turbo", request(I2V, IMAGE, duration=12), "not 12 s"),
        ("gen4.5", request(T2V, aspect_ratio="1:1"), "does not make 1:1 videos"),
        ("gen4_turbo", request(I2V, "http://127.0.0.1/u1/still.png"), "https only"),
        ("gen4_turbo", request(I2V), "needs an input image"),
        ("gen3_alpha", request(I2V, IMAGE), "no Runway input mapping"),
    ],
)
def test_runway_refuses_what_it_cannot_do(
    runway: RunwayProvider, model: str, req: VideoRequest, message: str
) -> None:
    with pytest.raises(ProviderRejected, match=message) as err:
        runway.provider_input(model, req)
    assert err.value.retryable is False


def test_duration_rounds_to_the_nearest_offered_ties_to_the_longer(runway: RunwayProvider) -> None:
    got = {
        d: runway.provider_input("gen4_turbo", request(I2V, IMAGE, duration=d))["duration"]
        for d in range(5, 11)
    }
    assert got == {5: 5, 6: 5, 7: 5, 8: 10, 9: 10, 10: 10}
    assert (
        runway.provider_input("gen4_turbo", request(I2V, IMAGE, aspect_ratio="1:1"))["ratio"]
        == "960:960"
    )


# fal ---------------------------------------------------------------------------------------

KLING_T2V = "fal-ai/kling-video/v2.1/standard/text-to-video"
KLING_I2V = "fal-ai/kling-video/v2.1/standard/image-to-video"


@pytest.fixture
def fal(http: httpx.Client, router: Router) -> FalProvider:
    for model in (KLING_T2V, KLING_I2V):
        router.add("POST", f"https://queue.fal.run/{model}", json_file="fal_submit.json")
    return FalProvider("key-id:key-secret", http)


def test_fal_kling_text_to_video(fal: FalProvider, router: Router) -> None:
    req = request(T2V, aspect_ratio="9:16", duration=10, seed=3, negative_prompt="blur")
    body = sent_body(fal, router, KLING_T2V, req, HOOK)
    assert router.last().url.params["fal_webhook"] == f"{HOOK}?fal_app=fal-ai%2Fkling-video"
    assert body == {
        "prompt": "a paper boat",
        "aspect_ratio": "9:16",
        "duration": "10",
        "negative_prompt": "blur",
    }


def test_fal_kling_image_to_video(fal: FalProvider, router: Router) -> None:
    body = sent_body(fal, router, KLING_I2V, request(I2V, IMAGE, aspect_ratio="1:1"), None)
    assert body == {"prompt": "a paper boat", "image_url": IMAGE, "duration": "5"}


@pytest.mark.parametrize(
    ("model", "req", "message"),
    [
        (KLING_T2V, request(T2V, duration=4), r"makes 5 or 10 s videos, not 4 s"),
        (KLING_T2V, replace(request(T2V), aspect_ratio="4:3"), "does not make 4:3"),
        (KLING_T2V, request(T2V, prompt=None), "needs a prompt"),
        (KLING_I2V, request(I2V), "needs an input image"),
        (KLING_T2V, request("compose"), "does not do compose"),
        ("fal-ai/some-other/model", request(T2V), "no fal input mapping"),
    ],
)
def test_fal_refuses_what_it_cannot_do(
    fal: FalProvider, model: str, req: VideoRequest, message: str
) -> None:
    with pytest.raises(ProviderRejected, match=message):
        fal.provider_input(model, req)


# Replicate ---------------------------------------------------------------------------------

REPLICATE = "https://api.replicate.com/v1"
KLING_VERSION = "daad218feb714b03e2a1ac445986aebb9d05243cd00da2af17be2e4049f48f69"


@pytest.fixture
def replicate(http: httpx.Client, router: Router) -> ReplicateProvider:
    for path in (
        "models/minimax/video-01/predictions",
        "models/kwaivgi/kling-v1.6-standard/predictions",
        "predictions",
    ):
        router.add(
            "POST",
            f"{REPLICATE}/{path}",
            json_file="replicate_prediction_starting.json",
            status=201,
        )
    return ReplicateProvider("r8_token", http)


def test_replicate_minimax_text_to_video(replicate: ReplicateProvider, router: Router) -> None:
    body = sent_body(replicate, router, "minimax/video-01", request(T2V, duration=6, seed=1), HOOK)
    assert str(router.last().url) == f"{REPLICATE}/models/minimax/video-01/predictions"
    assert body == {
        "input": {"prompt": "a paper boat"},
        "webhook": HOOK,
        "webhook_events_filter": ["start", "completed"],
    }


def test_replicate_minimax_image_to_video(replicate: ReplicateProvider, router: Router) -> None:
    body = sent_body(replicate, router, "minimax/video-01", request(I2V, IMAGE, duration=6), None)
    assert body == {"input": {"prompt": "a paper boat", "first_frame_image": IMAGE}}


def test_replicate_kling_takes_its_own_image_key(
    replicate: ReplicateProvider, router: Router
) -> None:
    req = request(I2V, IMAGE, duration=10, negative_prompt="blur")
    body = sent_body(replicate, router, "kwaivgi/kling-v1.6-standard", req, None)
    assert body == {
        "input": {
            "prompt": "a paper boat",
            "start_image": IMAGE,
            "duration": 10,
            "negative_prompt": "blur",
        }
    }
    pinned = sent_body(replicate, router, f"kwaivgi/kling-v2.1:{KLING_VERSION}", req, None)
    assert str(router.last().url) == f"{REPLICATE}/predictions"
    assert pinned == {"input": body["input"], "version": KLING_VERSION}
    t2v = sent_body(
        replicate, router, "kwaivgi/kling-v1.6-standard", request(T2V, aspect_ratio="1:1"), None
    )
    assert t2v == {"input": {"prompt": "a paper boat", "aspect_ratio": "1:1", "duration": 5}}


@pytest.mark.parametrize(
    ("model", "req", "message"),
    [
        ("minimax/video-01", request(T2V, duration=10), "makes 6 s videos, not 10 s"),
        ("minimax/video-01", request(T2V, duration=6, aspect_ratio="9:16"), "does not make 9:16"),
        ("minimax/video-01-live", request(T2V, duration=6), "does not do text_to_video"),
        ("kwaivgi/kling-v2.1", request(I2V, duration=5), "needs an input image"),
        (KLING_VERSION, request(T2V), "no Replicate input mapping"),
    ],
)
def test_replicate_refuses_what_it_cannot_do(
    replicate: ReplicateProvider, model: str, req: VideoRequest, message: str
) -> None:
    with pytest.raises(ProviderRejected, match=message):
        replicate.provider_input(model, req)


# RunPod ------------------------------------------------------------------------------------

RUNPOD = "https://api.runpod.ai/v2"
EP = "vgworker7x2k"


@pytest.fixture
def runpod(http: httpx.Client, router: Router) -> RunPodProvider:
    router.add("POST", f"{RUNPOD}/{EP}/run", json_file="runpod_run.json")
    return RunPodProvider("rp_key", b"token-secret", http)


def test_runpod_sends_our_params_with_the_signed_image(
    runpod: RunPodProvider, router: Router
) -> None:
    req = request(I2V, IMAGE, seed=3, fps=24, negative_prompt="blur")
    body = sent_body(runpod, router, EP, req, HOOK)
    assert body["input"] == {
        "job_type": I2V,
        "prompt": "a paper boat",
        "negative_prompt": "blur",
        "duration": 5,
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "seed": 3,
        "fps": 24,
        "image_url": IMAGE,
    }
    assert set(body) == {"input", "webhook"}
    t2v = sent_body(runpod, router, EP, request(T2V), None)
    assert t2v == {
        "input": {
            "job_type": T2V,
            "prompt": "a paper boat",
            "duration": 5,
            "aspect_ratio": "16:9",
            "resolution": "720p",
        }
    }
    with pytest.raises(ProviderRejected, match="needs an input image"):
        runpod.provider_input(EP, request(I2V))
