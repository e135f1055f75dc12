"""Pictures through providers on recorded answers: the job is submitted in the model's own
input (fal's queue, Replicate's predictions), polled to completion, its picture copied into
the owner's `images` folder with a thumbnail, and its credits captured once; and the
catalogue lists, filters and prices the new models."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import as_anon, as_service, as_user, create_job, job_row, ledger, profile

from videogen.config import Settings
from videogen.db.connection import PostgresDatabase
from videogen.integrations.providers.fal import FalProvider
from videogen.integrations.providers.reconcile import reconcile
from videogen.integrations.providers.replicate import ReplicateProvider
from videogen.media.picture import PictureSpec, draw
from videogen.media.render import probe
from videogen.services import routing
from videogen.services.jobs import apply_provider_event

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "providers"
QUEUE = "https://queue.fal.run"
FAL_REQUEST = "0f5d6a2e-93c1-4b7e-8e0a-3c2f4d9b1a77"
FAL_PICTURE = "https://v3.fal.media/files/zebra/8Yc2a9_flux_output.png"
REPLICATE = "https://api.replicate.com/v1"
PREDICTION = "q9x2m8k4ehrme0cm4a7sn1v3tg"
REPLICATE_PICTURE = "https://replicate.delivery/xezq/f7Ke2bQd/out-0.png"


class Recorded:
    """The provider's side: recorded answers by (method, URL), every request kept."""

    def __init__(self, answers: dict[tuple[str, str], httpx.Response]) -> None:
        self.answers = answers
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = (request.method, str(request.url.copy_with(query=None)))
        return self.answers.get(key) or httpx.Response(599, json={"unexpected": str(key)})

    def sent(self, method: str, url: str) -> list[httpx.Request]:
        return [
            r
            for r in self.requests
            if (r.method, str(r.url.copy_with(query=None))) == (method, url)
        ]


def recorded(name: str) -> httpx.Response:
    return httpx.Response(
        200, content=(FIXTURES / name).read_bytes(), headers={"content-type": "application/json"}
    )


@pytest.fixture
def database(db_url: str) -> Iterator[PostgresDatabase]:
    database = PostgresDatabase(db_url)
    yield database
    database.close()


def settings_for(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        DATABASE_URL=db_url,
        STORAGE_ROOT=str(tmp_path / "storage"),
        SUPABASE_URL="https://vg.supabase.co",
        FAL_KEY="key-id:key-secret",
        REPLICATE_API_TOKEN="r8_token",
    )


def audit(db: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = as_service(db, "service.money_audit_report", 86_400)
    return rows


def test_fal_flux_text_to_image_runs_on_recorded_answers(db, user, database, db_url, tmp_path):
    settings = settings_for(db_url, tmp_path)
    png = draw(PictureSpec("provider's", "16:9", "720p", 3), tmp_path / "fal.png").read_bytes()
    fal = Recorded(
        {
            ("POST", f"{QUEUE}/fal-ai/flux/dev"): recorded("fal_submit_flux.json"),
            ("GET", f"{QUEUE}/fal-ai/flux/requests/{FAL_REQUEST}/status"): recorded(
                "fal_status_completed_flux.json"
            ),
            ("GET", f"{QUEUE}/fal-ai/flux/requests/{FAL_REQUEST}"): recorded(
                "fal_result_images.json"
            ),
            ("GET", FAL_PICTURE): httpx.Response(
                200, content=png, headers={"content-type": "image/png"}
            ),
        }
    )
    before = profile(db, user)
    job = create_job(
        db,
        user,
        "fal/flux-dev",
        {"prompt": "a lighthouse in a storm", "aspect_ratio": "16:9", "seed": 3},
    )
    assert (job["job_type"], job["cost"]) == ("text_to_image", 6)  # 4 credits x 1.5 at 720p

    with httpx.Client(transport=httpx.MockTransport(fal)) as client:
        submitted = routing.submit_external(database, settings, str(job["id"]), client)
        assert submitted.status == "dispatched"
        (sent,) = fal.sent("POST", f"{QUEUE}/fal-ai/flux/dev")
        assert json.loads(sent.content) == {
            "prompt": "a lighthouse in a storm",
            "num_images": 1,
            "image_size": {"width": 1280, "height": 720},
            "output_format": "png",
            "seed": 3,
        }
        assert sent.headers["authorization"] == "Key key-id:key-secret"
        hook = httpx.URL(sent.url.params["fal_webhook"])
        assert hook.params["fal_app"] == "fal-ai/flux"
        provider_job = job_row(db, job["id"])["provider_job_id"]
        assert provider_job == f"fal-ai/flux/{FAL_REQUEST}"

        # The sweep's reconcile: status says COMPLETED, the result names the picture.
        event = reconcile(FalProvider("key-id:key-secret", client), provider_job)
        assert (event.state, event.output_urls) == ("completed", (FAL_PICTURE,))
        change = apply_provider_event(database, settings, "fal", event, None, client=client)
    assert change.applied is True

    row = job_row(db, job["id"])
    assert row["status"] == "completed"
    out = row["output"]
    assert out["image_path"] == f"{user}/{job['id']}.png" and out["persisted"] is True
    stored = tmp_path / "storage" / "images" / out["image_path"]
    assert stored.read_bytes() == png
    assert (out["width"], out["height"]) == (1280, 720)
    assert probe(tmp_path / "storage" / "thumbnails" / out["thumbnail_path"])["width"] == 320
    assert [kind for kind, _, _ in ledger(db, job["id"])] == ["reserve", "capture"]
    assert profile(db, user) == (before[0] - 6, 0)
    assert audit(db) == []


def test_replicate_flux_schnell_runs_on_recorded_answers(db, user, database, db_url, tmp_path):
    settings = settings_for(db_url, tmp_path)
    png = draw(PictureSpec("replicate's", "9:16", "1080p", 0), tmp_path / "r.png").read_bytes()
    models = f"{REPLICATE}/models/black-forest-labs/flux-schnell/predictions"
    replicate = Recorded(
        {
            ("POST", models): recorded("replicate_prediction_flux_starting.json"),
            ("GET", f"{REPLICATE}/predictions/{PREDICTION}"): recorded(
                "replicate_prediction_flux_succeeded.json"
            ),
            ("GET", REPLICATE_PICTURE): httpx.Response(200, content=png),
        }
    )
    job = create_job(
        db,
        user,
        "replicate/flux-schnell",
        {"prompt": "a lighthouse in a storm", "aspect_ratio": "9:16"},
    )
    with httpx.Client(transport=httpx.MockTransport(replicate)) as client:
        assert routing.submit_external(database, settings, str(job["id"]), client).status == (
            "dispatched"
        )
        (sent,) = replicate.sent("POST", models)
        body = json.loads(sent.content)
        assert body["input"] == {
            "prompt": "a lighthouse in a storm",
            "aspect_ratio": "9:16",
            "num_outputs": 1,
            "output_format": "png",
            "megapixels": "1",
        }
        event = reconcile(ReplicateProvider("r8_token", client), PREDICTION)
        assert event.output_urls == (REPLICATE_PICTURE,)
        assert apply_provider_event(
            database, settings, "replicate", event, None, client=client
        ).applied
    out = job_row(db, job["id"])["output"]
    assert (tmp_path / "storage" / "images" / out["image_path"]).read_bytes() == png
    assert (out["width"], out["height"]) == (1080, 1920)
    assert [kind for kind, _, _ in ledger(db, job["id"])] == ["reserve", "capture"]
    assert audit(db) == []


def test_fal_flux_image_to_image_sends_the_upload_signed(db, user, database, db_url, tmp_path):
    settings = settings_for(db_url, tmp_path)
    fal = Recorded(
        {("POST", f"{QUEUE}/fal-ai/flux/dev/image-to-image"): recorded("fal_submit_flux.json")}
    )
    job = create_job(
        db,
        user,
        "fal/flux-dev-image-to-image",
        {"prompt": "at night", "image_path": f"{user}/still.png", "strength": 0.5},
    )
    with httpx.Client(transport=httpx.MockTransport(fal)) as client:
        routing.submit_external(database, settings, str(job["id"]), client)
    (sent,) = fal.requests
    body = json.loads(sent.content)
    signed = httpx.URL(body.pop("image_url"))
    assert body == {"prompt": "at night", "num_images": 1, "strength": 0.5, "output_format": "png"}
    assert signed.scheme == "https" and signed.path.endswith(f"/uploads/{user}/still.png")


def test_the_catalogue_lists_filters_and_prices_the_new_models(db, user) -> None:
    models = as_anon(db, "list_models")
    ids = [m["id"] for m in models]
    featured = [m["featured"] for m in models]
    assert featured == sorted(featured, reverse=True)  # featured first
    new = {
        "fal/veo3": ("text_to_video", [4, 8, 8], ["16:9", "9:16"], ["720p", "1080p"]),
        "fal/veo3.1": ("text_to_video", [4, 8, 8], ["16:9", "9:16"], ["720p", "1080p"]),
        "fal/veo3.1-image-to-video": (
            "image_to_video",
            [4, 8, 8],
            ["16:9", "9:16"],
            ["720p", "1080p"],
        ),
        "fal/sora-2": ("text_to_video", [4, 12, 4], ["16:9", "9:16"], ["720p"]),
        "fal/sora-2-image-to-video": ("image_to_video", [4, 12, 4], ["16:9", "9:16"], ["720p"]),
        "runway/gen4.5": ("text_to_video", [2, 10, 5], ["16:9", "9:16"], ["720p"]),
        "runway/gen4-turbo": ("image_to_video", [5, 10, 5], ["16:9", "9:16", "1:1"], ["720p"]),
        "fal/flux-dev": (
            "text_to_image",
            [1, 1, 1],
            ["1:1", "16:9", "9:16"],
            ["480p", "720p", "1080p"],
        ),
        "fal/flux-schnell": (
            "text_to_image",
            [1, 1, 1],
            ["1:1", "16:9", "9:16"],
            ["480p", "720p", "1080p"],
        ),
        "fal/flux-dev-image-to-image": (
            "image_to_image",
            [1, 1, 1],
            ["1:1", "16:9", "9:16"],
            ["480p", "720p", "1080p"],
        ),
        "fal/fast-sdxl": (
            "text_to_image",
            [1, 1, 1],
            ["1:1", "16:9", "9:16"],
            ["480p", "720p", "1080p"],
        ),
        "replicate/flux-schnell": ("text_to_image", [1, 1, 1], ["1:1", "16:9", "9:16"], ["1080p"]),
        "reference/text-to-image": (
            "text_to_image",
            [1, 1, 1],
            ["1:1", "16:9", "9:16"],
            ["480p", "720p", "1080p"],
        ),
        "reference/image-to-image": (
            "image_to_image",
            [1, 1, 1],
            ["1:1", "16:9", "9:16"],
            ["480p", "720p", "1080p"],
        ),
    }
    by_id = {m["id"]: m for m in models}
    for model_id, (job_type, durations, ratios, resolutions) in new.items():
        m = by_id[model_id]
        assert m["job_type"] == job_type, model_id
        assert [m["min_duration_s"], m["max_duration_s"], m["default_duration_s"]] == durations
        assert (m["aspect_ratios"], m["resolutions"]) == (ratios, resolutions), model_id
        assert "provider_model_id" not in m
    assert set(new) <= set(ids)
    assert by_id["fal/veo3.1"]["featured"] and by_id["fal/sora-2"]["featured"]

    pictures = as_anon(db, "list_models", "text-to-image")
    assert {m["category"] for m in pictures} == {"text-to-image"}
    assert {m["id"] for m in pictures} >= {"fal/flux-dev", "reference/text-to-image"}
    assert pictures[0]["featured"] is True
    assert as_anon(db, "list_models", "no-such-category") == []

    items = [
        {"model": "fal/veo3.1", "params": {"prompt": "a", "duration": 6, "resolution": "1080p"}},
        {"model": "fal/sora-2", "params": {"prompt": "b", "duration": 12, "aspect_ratio": "9:16"}},
        {"model": "runway/gen4.5", "params": {"prompt": "c", "duration": 10}},
        {"model": "fal/flux-dev", "params": {"prompt": "d", "resolution": "1080p"}},
        {"model": "reference/text-to-image", "params": {"prompt": "e"}},
    ]
    quote = as_user(db, user, "quote_jobs", json.dumps(items))
    costs = [i["cost"] for i in quote["items"]]
    # (base + per second x seconds) x the resolution's factor
    assert costs == [
        (10 + 40 * 6) * 2.5,  # Veo 3.1, 1080p
        (0 + 10 * 12) * 1.5,  # Sora 2, 720p
        (10 + 6 * 10) * 1.5,  # Gen-4.5, 720p
        4 * 2,  # FLUX dev at 1080p: a picture has no length
        1,  # the reference picture at 720p
    ]
    assert quote["total"] == sum(costs)
    # Their prompts can be enhanced: each picture type has an active template.
    active = db.execute(
        "select job_type::text from public.prompt_templates where active"
        " and job_type in ('text_to_image', 'image_to_image') order by 1"
    ).fetchall()
    assert [r[0] for r in active] == ["image_to_image", "text_to_image"]
    assert [i["job_type"] for i in quote["items"]][3:] == ["text_to_image", "text_to_image"]
