"""Stock clips: the Pexels and Pixabay video searches against recorded answers
(httpx.MockTransport), the rendition each picks for a frame, and the images step making
clips (stock, or offline a moving title card) mixed with stills, with their credits."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from videogen.config import Settings
from videogen.errors import AppError
from videogen.integrations import stock
from videogen.integrations.storage import LocalStorage
from videogen.media.render import probe
from videogen.media.script import OfflineScriptEngine
from videogen.models.jobs import Job
from videogen.rendering import steps

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stock"


def mp4(width: int = 320, height: int = 180) -> bytes:
    return subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", f"testsrc2=s={width}x{height}:d=1",
         "-pix_fmt", "yuv420p", "-movflags", "frag_keyframe+empty_moov", "-f", "mp4", "-"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip


class Recorded:
    """A video search API behind MockTransport: its recorded answer, a clip, a log."""

    def __init__(self, search: str, clip: bytes, status: int = 200) -> None:
        self.search = json.loads((FIXTURES / search).read_text())
        self.clip, self.status = clip, status
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.host in ("api.pexels.com", "pixabay.com"):
            return httpx.Response(self.status, json=self.search)
        return httpx.Response(200, content=self.clip, headers={"content-type": "video/mp4"})

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


def test_pexels_videos_search_picks_the_smallest_rendition_that_covers_the_frame() -> None:
    api = Recorded("pexels_videos_search.json", mp4())
    videos = stock.PexelsVideos("pexels-key", api.client())
    clip = videos.search("ocean tides", "landscape", (1280, 720))
    assert clip is not None and (clip.provider, clip.id) == ("pexels", "1093662")
    assert (clip.width, clip.height) == (1280, 720) and clip.video_url.endswith(
        "1280_720_30fps.mp4"
    )
    assert clip.attribution == "Video by Peter Fowler on Pexels"
    assert clip.credit["author_url"] == "https://www.pexels.com/@peter-fowler-417939"
    search = api.requests[0]
    assert (search.url.path, search.headers["Authorization"]) == ("/videos/search", "pexels-key")
    assert dict(search.url.params) == {"query": "ocean tides", "per_page": "5",
                                       "orientation": "landscape"}  # fmt: skip
    # 480p takes the 960x540 file, 1080p the full HD one.
    assert videos.search("x", "landscape", (854, 480)).width == 960  # type: ignore[union-attr]
    assert videos.search("x", "landscape", (1920, 1080)).width == 1920  # type: ignore[union-attr]
    assert videos.download(clip) == api.clip


def test_pixabay_videos_prefers_the_frames_orientation() -> None:
    api = Recorded("pixabay_videos_search.json", mp4())
    videos = stock.PixabayVideos("pixabay-key", api.client())
    wide = videos.search("ocean waves", "landscape", (1280, 720))
    assert wide is not None and wide.id == "6160"  # the portrait first hit is passed over
    assert (wide.width, wide.height) == (1280, 720) and wide.video_url.endswith("_medium.mp4")
    assert wide.attribution == "Video by Vimeo-Free-Videos on Pixabay"
    assert wide.page_url == "https://pixabay.com/videos/id-6160/" and wide.duration == 21
    params = dict(api.requests[0].url.params)
    assert params["key"] == "pixabay-key" and params["q"] == "ocean waves"
    assert api.requests[0].url.path == "/api/videos/"
    tall = videos.search("flowers", "portrait", (720, 1280))
    assert tall is not None and tall.id == "125" and (tall.width, tall.height) == (720, 1280)


def test_no_clip_is_none_an_error_is_a_502_and_a_missing_key_a_503() -> None:
    empty = Recorded("pixabay_videos_search.json", b"")
    empty.search["hits"] = []
    assert stock.PixabayVideos("k", empty.client()).search("x", "square", (720, 720)) is None
    down = Recorded("pexels_videos_search.json", b"", status=429)
    with pytest.raises(AppError) as failed:
        stock.PexelsVideos("k", down.client()).search("x", "landscape", (1280, 720))
    assert (failed.value.status, failed.value.code) == (502, "STOCK_PHOTO_FAILED")
    with pytest.raises(AppError) as unset:
        stock.stock_videos(Settings(STOCK_VIDEOS="pixabay"))
    assert (unset.value.status, unset.value.code) == (503, "PROVIDER_NOT_CONFIGURED")
    assert stock.stock_videos(Settings()) is None


def test_pick_rendition_takes_the_largest_when_none_covers() -> None:
    files = [(640, 360, "a"), (960, 540, "b")]
    assert stock.pick_rendition(files, (1920, 1080)) == (960, 540, "b")
    assert stock.pick_rendition([], (1280, 720)) is None


def _job(params: dict[str, Any]) -> Job:
    now = "2026-12-02T00:00:00Z"
    return Job.model_validate(
        {
            "id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()), "model_id": "reference/images",
            "job_type": "images", "status": "processing", "params": params, "priority": 0,
            "cost": 2, "credits_used": None, "progress": 0, "progress_message": None,
            "attempt": 1, "failures": 0, "max_attempts": 1, "worker_id": None,
            "provider": "reference", "lease_expires_at": None, "run_after": now,
            "output": None, "error_code": None, "error_message": None, "created_at": now,
            "updated_at": now, "dispatched_at": now, "started_at": now, "finished_at": None,
        }
    )  # fmt: skip


def test_the_images_step_mixes_stills_and_offline_clips(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path, "secret", "http://127.0.0.1:1")
    script = OfflineScriptEngine().write("ocean tides", sections=3)
    job = _job({"script": script.model_dump(), "source": "mixed", "resolution": "480p"})
    output, _ = steps._images(job, Settings(), storage)
    kinds = [(e["kind"], e["source"]) for e in output["images"]]
    assert kinds == [("still", "card"), ("clip", "motion"), ("still", "card")]
    clip = output["images"][1]["path"]
    assert clip.endswith(".mp4") and output["credits"] == []
    local = tmp_path / "clip.mp4"
    local.write_bytes(storage.download("uploads", clip))
    info = probe(local)
    assert (info["width"], info["height"]) == (854, 480) and info["duration"] > 1


def test_the_images_step_uses_stock_clips_with_their_credit(tmp_path: Path, monkeypatch) -> None:
    api = Recorded("pexels_videos_search.json", mp4(640, 360))
    monkeypatch.setattr(stock, "stock_videos", lambda s: stock.PexelsVideos("k", api.client()))
    storage = LocalStorage(tmp_path, "secret", "http://127.0.0.1:1")
    script = OfflineScriptEngine().write("ocean tides", sections=2)
    job = _job({"script": script.model_dump(), "source": "clip", "aspect_ratio": "16:9",
                "resolution": "720p"})  # fmt: skip
    output, _ = steps._images(job, Settings(), storage)
    assert [e["source"] for e in output["images"]] == ["pexels", "pexels"]
    assert output["credits"][0] == {
        "index": 0,
        "source": "pexels",
        "attribution": "Video by Peter Fowler on Pexels",
        "author_url": "https://www.pexels.com/@peter-fowler-417939",
        "page_url": "https://www.pexels.com/video/water-crashing-over-the-rocks-1093662/",
    }
    assert storage.download("uploads", output["image_paths"][1]) == api.clip
