"""A provider's finished video is copied into our storage (its URLs expire) with a
thumbnail, then the job completes; a failed copy, or a URL we may not fetch, leaves the job
running and never stores the provider's link as the user's result."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
from helpers import as_service, create_job, job_row, profile

from videogen.config import Settings
from videogen.db.connection import PostgresDatabase
from videogen.errors import AppError
from videogen.integrations.providers import WebhookEvent
from videogen.services.jobs import apply_provider_event

MODEL = "fal/kling-video-v2.1"


def _fal_job(db, user) -> str:
    job = create_job(db, user, MODEL, {"prompt": "a fox", "duration": 5, "resolution": "720p"})
    opened = as_service(db, "service.job_dispatch_external", job["id"])
    as_service(
        db, "service.job_set_provider_id", job["id"], opened["attempt"], "fal-ai/kling/req-123"
    )
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
        assert result.applied is True
        again = apply_provider_event(database, settings, "fal", event, "d1", client=client)
        assert (again.applied, again.reason, again.job) == (False, "duplicate_delivery", None)
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


def test_failed_copy_leaves_the_job_running_and_asks_for_redelivery(db, user, db_url, tmp_path):
    """The provider's URL is only a source to copy from: when the copy fails the job is not
    completed with someone else's link; the provider (or the sweep's reconcile) tries again."""
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
        with pytest.raises(AppError) as info:
            apply_provider_event(database, settings, "fal", event, "d2", client=client)
    finally:
        database.close()
    assert (info.value.status, info.value.code) == (503, "OUTPUT_COPY_FAILED")
    row = job_row(db, job_id)
    assert (row["status"], row["output"]) == ("dispatched", None)
    assert profile(db, user)[1] > 0  # still reserved, not captured


@pytest.mark.parametrize(
    "url",
    [
        "http://v3.fal.media/files/out.mp4",
        "file:///etc/passwd",
        "https://169.254.169.254/latest/meta-data/",
        "https://127.0.0.1:54322/",
        "https://localhost/x.mp4",
        "https://[::1]/x.mp4",
        "https://10.0.0.7/x.mp4",
    ],
)
def test_provider_output_urls_we_may_not_fetch_are_refused(db, user, db_url, tmp_path, url):
    job_id = _fal_job(db, user)
    fetched = []
    client = httpx.Client(
        transport=httpx.MockTransport(lambda r: fetched.append(r) or httpx.Response(200))
    )
    settings = Settings(DATABASE_URL=db_url, STORAGE_ROOT=str(tmp_path / "storage"))
    database = PostgresDatabase(db_url)
    try:
        event = WebhookEvent(
            provider_job_id="fal-ai/kling/req-123", state="completed", output_urls=(url,)
        )
        with pytest.raises(AppError) as info:
            apply_provider_event(database, settings, "fal", event, "d3", client=client)
    finally:
        database.close()
    assert (info.value.status, info.value.code) == (422, "INVALID_OUTPUT")
    assert fetched == []
    assert job_row(db, job_id)["status"] == "dispatched"


def test_a_sweep_whose_copy_fails_leaves_the_job_for_the_next_one(
    db, user, db_url, tmp_path, monkeypatch
):
    """The sweep's reconcile meets the same rule: no copy, no completion — and no crash."""
    from videogen.services import workers

    job_id = _fal_job(db, user)
    done = WebhookEvent(
        provider_job_id="fal-ai/kling/req-123",
        state="completed",
        output_urls=("https://v3.fal.media/files/out.mp4",),
    )
    monkeypatch.setattr(
        "videogen.integrations.providers.reconcile", lambda provider, provider_job_id: done
    )
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(403)))
    settings = Settings(
        DATABASE_URL=db_url, STORAGE_ROOT=str(tmp_path / "storage"), FAL_KEY="test-fal-key"
    )
    database = PostgresDatabase(db_url)
    try:
        assert workers.reconcile_external(database, settings, client) == 0
    finally:
        database.close()
    assert job_row(db, job_id)["status"] == "dispatched"
