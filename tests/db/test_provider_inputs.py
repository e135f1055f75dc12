"""Submitting to an external provider: the adapter's input, the upload as a signed URL.

The provider's request is captured by an ``httpx.MockTransport``; the job's storage path
never leaves us, only a short-lived signed URL that storage itself verifies.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from helpers import create_job, job_row, profile

from videogen.config import Settings
from videogen.db.connection import PostgresDatabase
from videogen.integrations.storage import LocalStorage, get_storage
from videogen.services import routing

RUNWAY = "https://api.dev.runwayml.com/v1"
TASK = "17f20503-6c24-4c16-946b-35dbbce2af2f"


class Provider:
    """A provider stand-in that answers every submit and keeps what it was sent."""

    def __init__(self, answer: dict[str, str]) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json=self.answer)


@pytest.fixture
def database(db_url: str) -> Iterator[PostgresDatabase]:
    database = PostgresDatabase(db_url)
    yield database
    database.close()


def settings_for(db_url: str, tmp_path, supabase_url: str = "https://vg.supabase.co") -> Settings:
    return Settings(
        DATABASE_URL=db_url,
        STORAGE_ROOT=str(tmp_path / "storage"),
        SUPABASE_URL=supabase_url,
        RUNWAY_API_KEY="key_runway",
        FAL_KEY="key-id:key-secret",
    )


def test_an_upload_is_sent_as_a_signed_url_never_its_path(db, user, database, db_url, tmp_path):
    settings = settings_for(db_url, tmp_path)
    path = f"{user}/still.png"
    job = create_job(
        db,
        user,
        "runway/gen4-turbo",
        {"prompt": "pan", "image_path": path, "duration": 10, "aspect_ratio": "9:16"},
    )
    provider = Provider({"id": TASK})
    with httpx.Client(transport=httpx.MockTransport(provider)) as client:
        result = routing.submit_external(database, settings, str(job["id"]), client)

    assert result.status == "dispatched"
    (sent,) = provider.requests
    assert str(sent.url) == f"{RUNWAY}/image_to_video"
    body = json.loads(sent.content)
    signed = httpx.URL(body.pop("promptImage"))
    assert body == {"model": "gen4_turbo", "promptText": "pan", "ratio": "720:1280", "duration": 10}
    assert "image_path" not in body and path not in json.dumps(body)
    # The URL is storage's own signature over uploads/<path>, valid for the routing window.
    assert signed.scheme == "https" and signed.path.endswith(f"/uploads/{path}")
    storage = get_storage(settings)
    assert isinstance(storage, LocalStorage)
    assert storage.verify_signed(f"uploads/{path}", signed.params["token"])
    assert job_row(db, job["id"])["provider_job_id"] == TASK


def test_an_injected_storage_signs_and_text_jobs_sign_nothing(db, user, database, db_url, tmp_path):
    settings = settings_for(db_url, tmp_path)
    signed: list[tuple[str, str, int]] = []

    class Signer(LocalStorage):
        def signed_url(self, bucket: str, path: str, expires_in: int = 3600) -> str:
            signed.append((bucket, path, expires_in))
            return super().signed_url(bucket, path, expires_in)

    storage = Signer(tmp_path / "s", b"k" * 32, "https://files.example/sign")
    fal_job = create_job(db, user, "fal/kling-video-v2.1", {"prompt": "a fox", "duration": 10})
    provider = Provider({"request_id": "req-1"})
    with httpx.Client(transport=httpx.MockTransport(provider)) as client:
        routing.submit_external(database, settings, str(fal_job["id"]), client, storage=storage)
        runway_job = create_job(
            db, user, "runway/gen4-turbo", {"prompt": "pan", "image_path": f"{user}/a.png"}
        )
        routing.submit_external(database, settings, str(runway_job["id"]), client, storage=storage)

    assert json.loads(provider.requests[0].content) == {
        "prompt": "a fox",
        "aspect_ratio": "16:9",
        "duration": "10",
    }
    assert signed == [("uploads", f"{user}/a.png", routing.PROVIDER_INPUT_URL_EXPIRES_S)]
    sent = json.loads(provider.requests[1].content)
    assert sent["promptImage"].startswith(f"https://files.example/sign/uploads/{user}/a.png?")


def test_an_input_the_provider_cannot_take_fails_the_job_and_releases(
    db, user, database, db_url, tmp_path
):
    # Local storage signs plain-http URLs here; Runway only fetches https images.
    settings = settings_for(db_url, tmp_path, supabase_url="http://127.0.0.1:54321")
    before = profile(db, user)
    job = create_job(
        db, user, "runway/gen4-turbo", {"prompt": "pan", "image_path": f"{user}/a.png"}
    )
    provider = Provider({"id": TASK})
    with httpx.Client(transport=httpx.MockTransport(provider)) as client:
        result = routing.submit_external(database, settings, str(job["id"]), client)
    assert provider.requests == []
    assert (result.status, result.error_code) == ("failed", "PROVIDER_REJECTED")
    assert "https only" in (result.error_message or "")
    assert profile(db, user) == before
