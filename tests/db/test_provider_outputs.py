"""A provider's finished video is copied into our storage (its URLs expire) with a
thumbnail, then the job completes; a failed copy still completes with the provider's URL."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
from helpers import as_service, create_job, job_row, profile

from videogen.config import Settings
from videogen.db import PostgresDatabase
from videogen.jobs import apply_provider_event
from videogen.providers import WebhookEvent

MODEL = "fal/kling-video-v2.1"


def _fal_job(db, user) -> str:
    job = create_job(db, user, MODEL, {"prompt": "a fox", "duration": 5, "resolution": "720p"})
    opened = as_service(db, "job_dispatch_external", job["id"])
    as_service(db, "job_set_provider_id", job["id"], opened["attempt"], "fal-ai/kling/req-123")
    return str(job["id"])


def _mp4(tmp_path: Path) -> bytes:
    out = tmp_path / "provider.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x180:rate=24",
            "-t",
            "1",
            "-pix_fmt",
            "yuv420p",
            str(out),
        ],
        check=True,
    )
    return out.read_bytes()


def test_completed_output_is_copied_into_storage(db, user, db_url, tmp_path):
    job_id = _fal_job(db, user)
    video = _mp4(tmp_path)
    client = httpx.Client(
        transport=httpx.MockTransport(
            lambda r: httpx.Response(200, content=video, headers={"content-type": "video/mp4"})
        )
    )
    settings = Settings(DATABASE_URL=db_url, STORAGE_ROOT=str(tmp_path / "storage"))
    database = PostgresDatabase(db_url)
    try:
        event = WebhookEvent(
            provider_job_id="fal-ai/kling/req-123",
            state="completed",
            output_urls=("https://v3.fal.media/files/out.mp4",),
            event_id="d1",
        )
        result = apply_provider_event(database, settings, "fal", event, "d1", client=client)
        assert result["applied"] is True
        again = apply_provider_event(database, settings, "fal", event, "d1", client=client)
        assert again == {"applied": False, "reason": "duplicate_delivery"}
    finally:
        database.close()
    row = job_row(db, job_id)
    assert row["status"] == "completed"
    out = row["output"]
    assert out["persisted"] is True and out["provider"] == "fal"
    assert (tmp_path / "storage" / "videos" / out["video_path"]).read_bytes() == video
    assert (tmp_path / "storage" / "thumbnails" / out["thumbnail_path"]).stat().st_size > 0
    assert (out["width"], out["height"]) == (320, 180)
    assert profile(db, user)[1] == 0  # nothing left reserved: captured once


def test_failed_copy_keeps_the_provider_url(db, user, db_url, tmp_path):
    job_id = _fal_job(db, user)
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(403)))
    settings = Settings(DATABASE_URL=db_url, STORAGE_ROOT=str(tmp_path / "storage"))
    database = PostgresDatabase(db_url)
    try:
        event = WebhookEvent(
            provider_job_id="fal-ai/kling/req-123",
            state="completed",
            output_urls=("https://v3.fal.media/files/out.mp4",),
        )
        assert apply_provider_event(database, settings, "fal", event, None, client=client)[
            "applied"
        ]
    finally:
        database.close()
    out = job_row(db, job_id)["output"]
    assert out == {
        "video_url": "https://v3.fal.media/files/out.mp4",
        "urls": ["https://v3.fal.media/files/out.mp4"],
        "provider": "fal",
        "persisted": False,
    }
