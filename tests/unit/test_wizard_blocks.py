"""The wizard's building blocks without a server: stock photo clients against recorded
answers (httpx.MockTransport), the images step with them, script analysis and the offline
script improvements."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from videogen.errors import AppError
from videogen.integrations import stock
from videogen.integrations.storage import LocalStorage
from videogen.media.errors import ScriptError
from videogen.media.script import OfflineScriptEngine, Script, analyze
from videogen.models.jobs import Job
from videogen.rendering import steps

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stock"


def png(width: int = 640, height: int = 360) -> bytes:
    return subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", f"testsrc2=s={width}x{height}",
         "-frames:v", "1", "-c:v", "png", "-f", "image2pipe", "-"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip


class Recorded:
    """A stock API behind MockTransport: its recorded search answer, a photo, a log."""

    def __init__(self, search: str, photo: bytes, status: int = 200) -> None:
        self.search = json.loads((FIXTURES / search).read_text())
        self.photo, self.status = photo, status
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.host.startswith("api.") and "/search" in request.url.path:
            return httpx.Response(self.status, json=self.search)
        if request.url.path.endswith("/download"):
            return httpx.Response(200, json={"url": "https://images.unsplash.com/x"})
        return httpx.Response(200, content=self.photo, headers={"content-type": "image/png"})

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


def test_pexels_search_and_download() -> None:
    api = Recorded("pexels_search.json", png())
    photos = stock.PexelsPhotos("pexels-key", api.client())
    photo = photos.search("ocean tides", "landscape")
    assert photo is not None and photo.provider == "pexels" and photo.id == "1001682"
    assert photo.attribution == "Photo by Emiliano Arano on Pexels"
    assert "w=940" in photo.image_url  # large2x, not the 5184 px original
    search = api.requests[0]
    assert search.headers["Authorization"] == "pexels-key"
    assert dict(search.url.params) == {
        "query": "ocean tides",
        "per_page": "1",
        "orientation": "landscape",
    }
    assert photos.download(photo)[:8] == b"\x89PNG\r\n\x1a\n"


def test_unsplash_reports_the_download_as_its_guidelines_ask() -> None:
    api = Recorded("unsplash_search.json", png())
    photos = stock.UnsplashPhotos("access-key", api.client())
    photo = photos.search("coffee", "portrait")
    assert photo is not None and photo.photographer == "Jeff Sheldon"
    assert photo.image_url.endswith("w=1080&fit=max")
    assert api.requests[0].headers["Authorization"] == "Client-ID access-key"
    photos.download(photo)
    paths = [r.url.path for r in api.requests]
    assert paths[1] == "/photos/eOLpJytrbsQ/download" and paths[2].startswith("/photo-")


def test_no_result_is_none_and_an_error_is_a_502() -> None:
    empty = Recorded("pexels_search.json", b"")
    empty.search["photos"] = []
    assert stock.PexelsPhotos("k", empty.client()).search("nothing", "square") is None
    down = Recorded("unsplash_search.json", b"", status=503)
    with pytest.raises(AppError) as failed:
        stock.UnsplashPhotos("k", down.client()).search("x", "landscape")
    assert (failed.value.status, failed.value.code) == (502, "STOCK_PHOTO_FAILED")


def test_stock_queries_keep_the_meaningful_words() -> None:
    query = steps.stock_query("a clean diagram showing how the ocean tides work, step by step")
    assert query == "clean diagram how ocean tides work"


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


def test_the_images_step_uses_stock_photos_with_their_credit(tmp_path: Path, monkeypatch) -> None:
    from videogen.config import Settings

    api = Recorded("pexels_search.json", png(1280, 720))
    monkeypatch.setattr(
        stock, "stock_photos", lambda settings: stock.PexelsPhotos("k", api.client())
    )
    storage = LocalStorage(tmp_path, "secret", "http://127.0.0.1:1")
    script = OfflineScriptEngine().write("ocean tides", sections=2)
    job = _job({"script": script.model_dump(), "source": "stock", "aspect_ratio": "16:9",
                "resolution": "720p"})  # fmt: skip
    output, rendered_s = steps._images(job, Settings(), storage)
    # No length made: the database captures the whole cost (service.job_complete).
    assert rendered_s is None and len(output["images"]) == 2
    first = output["images"][0]
    assert first["source"] == "pexels" and first["attribution"].startswith("Photo by")
    assert first["path"].startswith(f"{job.user_id}/steps/{job.id}/image_00")
    assert storage.download("uploads", first["path"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert first["start_s"] == 0 and output["images"][1]["start_s"] > 0  # from reading time


def test_analysis_counts_words_and_time_per_section() -> None:
    script = Script.model_validate(
        {"title": "T", "sections": [{"title": "A", "narration": " ".join(["word"] * 80)},
                                    {"title": "B", "narration": " ".join(["word"] * 40)}]}
    )  # fmt: skip
    result = analyze(script)
    assert [s.words for s in result.sections] == [80, 40]
    assert result.sections[0].reading_seconds == 30.0 and result.sections[1].start_s == 30.0
    assert result.reading_seconds == 45.0
    assert analyze(script, speaking_rate=2.0).reading_seconds == 22.5


def test_offline_improvements_are_deterministic_and_honest() -> None:
    engine = OfflineScriptEngine()
    script = engine.write("how tides work", sections=3)
    shorter = engine.improve(script, "Make it shorter please")
    for before, after in zip(script.sections, shorter.sections, strict=True):
        assert before.narration.startswith(after.narration) and len(after.narration) < len(
            before.narration
        )
        assert after.narration[-1] in ".!?"  # a whole first sentence
    assert len(shorter.sections) == len(script.sections) and shorter.title == script.title
    longer = engine.improve(script, "expand with more detail")
    assert all(
        len(b.narration) > len(a.narration)
        for a, b in zip(script.sections, longer.sections, strict=True)
    )
    with pytest.raises(ScriptError) as refused:
        engine.improve(script, "translate to French")
    assert refused.value.code == "INSTRUCTION_NOT_UNDERSTOOD" and refused.value.status == 422
