"""The inputs of the models the seeds name and of the picture models, compared whole with
their documented input schemas:

- fal Veo 3 / 3.1: https://fal.ai/models/fal-ai/veo3.1/llms.txt (``prompt``,
  ``aspect_ratio`` "16:9" | "9:16", ``duration`` "4s" | "6s" | "8s", ``resolution`` "720p" |
  "1080p", ``negative_prompt``, ``seed``, ``generate_audio``; ``…/image-to-video`` adds
  ``image_url``), fal-ai/veo3 the same
- fal Sora 2: https://fal.ai/models/fal-ai/sora-2/image-to-video/llms.txt (``prompt``,
  ``resolution`` "720p", ``aspect_ratio`` "16:9" | "9:16", ``duration`` 4 | 8 | 12 as a
  number; ``image_url``), ``fal-ai/sora-2/text-to-video`` the same without the image
- fal FLUX.1: https://fal.ai/models/fal-ai/flux/dev/api (``prompt``, ``image_size``
  ``{width, height}``, ``num_images``, ``output_format`` "jpeg" | "png", ``seed``),
  ``fal-ai/flux/schnell`` the same; https://fal.ai/models/fal-ai/flux/dev/image-to-image/api
  (``image_url``, ``strength`` 0.01-1 …); https://fal.ai/models/fal-ai/fast-sdxl/api
  (``negative_prompt``, ``image_size``, ``format`` "jpeg" | "png" …)
- Replicate FLUX schnell: https://replicate.com/black-forest-labs/flux-schnell/api
  (``prompt``, ``aspect_ratio``, ``num_outputs`` 1-4, ``output_format`` webp | jpg | png,
  ``megapixels`` "1" | "0.25", ``seed``)
- Runway: https://docs.dev.runwayml.com/api/ (``text_to_video``: ``model`` gen4.5 | veo3.1,
  ``promptText``, ``ratio`` "1280:720" | "720:1280", ``duration``; ``image_to_video``:
  gen4_turbo, ``promptImage``, ratio, ``duration`` 5 | 10)
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from videogen.integrations.providers import ProviderJob, ProviderRejected, VideoRequest
from videogen.integrations.providers.fal import FalProvider, result_urls
from videogen.integrations.providers.replicate import ReplicateProvider
from videogen.integrations.providers.runway import RunwayProvider

if TYPE_CHECKING:
    from provider_router import Router

IMAGE = "https://videogen.supabase.co/storage/v1/object/sign/uploads/u1/still.png?token=t"
OWNER = "00000000-0000-4000-8000-000000000001"
QUEUE = "https://queue.fal.run"
RUNWAY = "https://api.dev.runwayml.com/v1"


def video(job_type: str, image_url: str | None = None, **params: Any) -> VideoRequest:
    base: dict[str, Any] = {"prompt": "a paper boat", "duration": 8, "aspect_ratio": "16:9",
                            "resolution": "720p"}  # fmt: skip
    if job_type == "image_to_video":
        base["image_path"] = f"{OWNER}/still.png"
    return VideoRequest.from_params(job_type, {**base, **params}, image_url)


def picture(job_type: str, image_url: str | None = None, **params: Any) -> VideoRequest:
    base: dict[str, Any] = {"prompt": "a lighthouse", "aspect_ratio": "16:9",
                            "resolution": "720p"}  # fmt: skip
    if job_type == "image_to_image":
        base["image_path"] = f"{OWNER}/still.png"
    return VideoRequest.from_params(job_type, {**base, **params}, image_url)


def submitted(provider: Any, router: Router, model: str, req: VideoRequest) -> Any:
    provider.submit(ProviderJob(model=model, input=provider.provider_input(model, req)))
    return json.loads(router.last().content)


@pytest.fixture
def fal(http: httpx.Client, router: Router) -> FalProvider:
    for path in (
        "fal-ai/veo3", "fal-ai/veo3.1", "fal-ai/veo3.1/image-to-video",
        "fal-ai/sora-2/text-to-video", "fal-ai/sora-2/image-to-video", "fal-ai/flux/dev",
        "fal-ai/flux/schnell", "fal-ai/flux/dev/image-to-image", "fal-ai/fast-sdxl",
    ):  # fmt: skip
        router.add("POST", f"{QUEUE}/{path}", json_file="fal_submit_flux.json")
    return FalProvider("key-id:key-secret", http)


@pytest.mark.parametrize("model", ["fal-ai/veo3", "fal-ai/veo3.1"])
def test_veo_text_to_video(fal: FalProvider, router: Router, model: str) -> None:
    req = video("text_to_video", duration=6, aspect_ratio="9:16", resolution="1080p", seed=9,
                negative_prompt="blur")  # fmt: skip
    assert submitted(fal, router, model, req) == {
        "prompt": "a paper boat",
        "aspect_ratio": "9:16",
        "resolution": "1080p",
        "duration": "6s",
        "generate_audio": True,
        "seed": 9,
        "negative_prompt": "blur",
    }
    assert str(router.last().url) == f"{QUEUE}/{model}"


def test_veo_image_to_video(fal: FalProvider, router: Router) -> None:
    req = video("image_to_video", IMAGE, duration=5)  # 5 s: the nearest longer length
    assert submitted(fal, router, "fal-ai/veo3.1/image-to-video", req) == {
        "prompt": "a paper boat",
        "image_url": IMAGE,
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "duration": "6s",
        "generate_audio": True,
    }


def test_sora_2_text_and_image_to_video(fal: FalProvider, router: Router) -> None:
    body = submitted(fal, router, "fal-ai/sora-2/text-to-video", video("text_to_video", seed=4))
    assert body == {"prompt": "a paper boat", "aspect_ratio": "16:9", "resolution": "720p",
                    "duration": 8}  # fmt: skip
    req = video("image_to_video", IMAGE, duration=12, aspect_ratio="9:16")
    assert submitted(fal, router, "fal-ai/sora-2/image-to-video", req) == {
        "prompt": "a paper boat",
        "image_url": IMAGE,
        "aspect_ratio": "9:16",
        "resolution": "720p",
        "duration": 12,
    }


@pytest.mark.parametrize(
    ("model", "req", "message"),
    [
        ("fal-ai/veo3.1", video("text_to_video", aspect_ratio="1:1"), "does not make 1:1"),
        ("fal-ai/veo3.1", video("text_to_video", duration=10), "not 10 s"),
        ("fal-ai/veo3.1", video("text_to_video", resolution="480p"), "not 480p"),
        ("fal-ai/veo3.1", video("image_to_video", IMAGE), "does not do image_to_video"),
        ("fal-ai/veo3.1/image-to-video", video("image_to_video"), "needs an input image"),
        ("fal-ai/sora-2/text-to-video", video("text_to_video", duration=20), "not 20 s"),
        ("fal-ai/sora-2/image-to-video", video("text_to_video"), "does not do text_to_video"),
        ("fal-ai/flux/dev", video("text_to_video"), "does not do text_to_video"),
        ("fal-ai/flux/dev", picture("image_to_image", IMAGE), "does not do image_to_image"),
        ("fal-ai/flux/dev/image-to-image", picture("image_to_image"), "needs an input image"),
    ],
)
def test_fal_refuses_what_a_model_cannot_do(
    fal: FalProvider, model: str, req: VideoRequest, message: str
) -> None:
    with pytest.raises(ProviderRejected, match=message) as err:
        fal.provider_input(model, req)
    assert err.value.retryable is False


@pytest.mark.parametrize("model", ["fal-ai/flux/dev", "fal-ai/flux/schnell"])
def test_flux_text_to_image_asks_for_the_frame_size(
    fal: FalProvider, router: Router, model: str
) -> None:
    req = picture("text_to_image", seed=3, negative_prompt="blur")  # FLUX has no negative
    assert submitted(fal, router, model, req) == {
        "prompt": "a lighthouse",
        "num_images": 1,
        "image_size": {"width": 1280, "height": 720},
        "output_format": "png",
        "seed": 3,
    }
    square = submitted(fal, router, model, picture("text_to_image", aspect_ratio="1:1",
                                                    resolution="1080p"))  # fmt: skip
    assert square["image_size"] == {"width": 1080, "height": 1080}


def test_flux_image_to_image_and_sdxl(fal: FalProvider, router: Router) -> None:
    req = picture("image_to_image", IMAGE, strength=0.4)
    assert submitted(fal, router, "fal-ai/flux/dev/image-to-image", req) == {
        "prompt": "a lighthouse",
        "num_images": 1,
        "image_url": IMAGE,
        "strength": 0.4,
        "output_format": "png",
    }
    untouched = submitted(fal, router, "fal-ai/flux/dev/image-to-image",
                          picture("image_to_image", IMAGE, strength=0))  # fmt: skip
    assert untouched["strength"] == 0.01  # fal's least
    req = picture("text_to_image", aspect_ratio="9:16", resolution="480p", negative_prompt="blur")
    assert submitted(fal, router, "fal-ai/fast-sdxl", req) == {
        "prompt": "a lighthouse",
        "num_images": 1,
        "image_size": {"width": 480, "height": 854},
        "format": "png",
        "negative_prompt": "blur",
    }


def test_fal_results_name_the_video_or_the_pictures(load: Any) -> None:
    assert result_urls(load("fal_result_images.json")) == (
        "https://v3.fal.media/files/zebra/8Yc2a9_flux_output.png",
    )
    assert result_urls(load("fal_result_video.json")) == (
        "https://v3.fal.media/files/penguin/Qk0m3x_output.mp4",
    )
    sora = {"video": {"url": "https://v3.fal.media/v.mp4"},
            "thumbnail": {"url": "https://v3.fal.media/t.jpg"}}  # fmt: skip
    assert result_urls(sora) == ("https://v3.fal.media/v.mp4",)


def test_replicate_flux_schnell(http: httpx.Client, router: Router) -> None:
    url = "https://api.replicate.com/v1/models/black-forest-labs/flux-schnell/predictions"
    router.add("POST", url, json_file="replicate_prediction_flux_starting.json")
    replicate = ReplicateProvider("r8_token", http)
    req = picture("text_to_image", aspect_ratio="9:16", seed=12)
    body = submitted(replicate, router, "black-forest-labs/flux-schnell", req)
    assert body["input"] == {
        "prompt": "a lighthouse",
        "aspect_ratio": "9:16",
        "num_outputs": 1,
        "output_format": "png",
        "megapixels": "1",
        "seed": 12,
    }
    with pytest.raises(ProviderRejected, match="does not do image_to_image"):
        replicate.provider_input("black-forest-labs/flux-schnell", picture("image_to_image", IMAGE))


@pytest.fixture
def runway(http: httpx.Client, router: Router) -> RunwayProvider:
    for endpoint in ("image_to_video", "text_to_video"):
        router.add("POST", f"{RUNWAY}/{endpoint}", json_file="runway_task_created.json")
    return RunwayProvider("key_runway", http)


def test_runway_text_to_video_gen45_and_veo31(runway: RunwayProvider, router: Router) -> None:
    body = submitted(runway, router, "gen4.5", video("text_to_video", duration=10, seed=5))
    assert str(router.last().url) == f"{RUNWAY}/text_to_video"
    assert body == {"model": "gen4.5", "promptText": "a paper boat", "ratio": "1280:720",
                    "duration": 10, "seed": 5}  # fmt: skip
    body = submitted(runway, router, "veo3.1", video("text_to_video", aspect_ratio="9:16"))
    assert body == {"model": "veo3.1", "promptText": "a paper boat", "ratio": "720:1280",
                    "duration": 8}  # fmt: skip
    with pytest.raises(ProviderRejected, match="makes 4, 6 or 8 s videos, not 2 s"):
        runway.provider_input("veo3.1", video("text_to_video", duration=2))


def test_runway_gen4_turbo_image_to_video(runway: RunwayProvider, router: Router) -> None:
    req = video("image_to_video", IMAGE, duration=5, aspect_ratio="16:9")
    body = submitted(runway, router, "gen4_turbo", req)
    assert str(router.last().url) == f"{RUNWAY}/image_to_video"
    assert body == {"model": "gen4_turbo", "promptImage": IMAGE, "promptText": "a paper boat",
                    "ratio": "1280:720", "duration": 5}  # fmt: skip


def test_a_fal_webhook_for_a_picture_names_its_images(http: httpx.Client, load: Any) -> None:
    fal = FalProvider("key-id:key-secret", http)
    body = {"request_id": "req-9", "status": "OK", "payload": load("fal_result_images.json")}
    event = fal.parse_webhook({}, json.dumps(body).encode(), {"fal_app": "fal-ai/flux"})
    assert (event.provider_job_id, event.state) == ("fal-ai/flux/req-9", "completed")
    assert event.output_urls == ("https://v3.fal.media/files/zebra/8Yc2a9_flux_output.png",)
