"""Pictures end to end on the reference worker: text-to-image and image-to-image jobs go
queued → completed on a real worker process, leave a real PNG of the size asked for in the
`images` bucket (and a thumbnail), are paid once and broadcast every change."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
from e2e_stack import Stack, User, storage_file

from videogen.media.images import sniff_image_format
from videogen.media.picture import PictureSpec, draw
from videogen.media.render import probe

T2I = "reference/text-to-image"
I2I = "reference/image-to-image"


def queue(stack: Stack, user: User, model: str, **params: Any) -> dict[str, Any]:
    resp = stack.http.post(
        stack.server.url("queue-job"),
        json={"model": model, "params": params},
        headers=user.headers,
    )
    assert resp.status_code == 202, resp.text
    job: dict[str, Any] = resp.json()["data"]
    return job


def audit(stack: Stack) -> list[dict[str, Any]]:
    """The money audit's findings (none when every credit is accounted for)."""
    [row] = stack.sql("select service.money_audit_report(%s) as report", 86_400)
    report: list[dict[str, Any]] = row["report"]
    return report


def test_a_text_to_image_job_makes_a_png_of_the_size_asked(stack: Stack, tmp_path) -> None:
    worker = stack.start_worker("painter", models=f"{T2I},{I2I}")
    ada = stack.user()
    created = queue(
        stack, ada, T2I, prompt="a lighthouse in a storm", aspect_ratio="9:16",
        resolution="720p", seed=42,
    )  # fmt: skip
    assert created["job_type"] == "text_to_image" and created["cost"] == 1
    assert "duration" not in created["params"] or created["params"]["duration"] == 1

    row = stack.wait_status(created["id"], "completed", "failed")
    assert row["status"] == "completed", row
    assert row["worker_id"] == worker.worker_id
    job = stack.get_job(ada, created["id"])
    out = job["output"]
    assert out["image_path"] == f"{ada.id}/{created['id']}.png"
    assert out["thumbnail_path"] == f"{ada.id}/{created['id']}.jpg"
    assert (out["width"], out["height"]) == (720, 1280)

    stored = storage_file(stack, "images", out["image_path"])
    data = stored.read_bytes()
    assert sniff_image_format(data[:16]) == "png"
    info = probe(stored)
    assert (info["width"], info["height"]) == (720, 1280)
    # Deterministic: the same prompt and seed drawn here give the same bytes.
    again = draw(PictureSpec("a lighthouse in a storm", "9:16", "720p", 42), tmp_path / "a.png")
    assert hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(data).digest()
    thumb = storage_file(stack, "thumbnails", out["thumbnail_path"])
    assert probe(thumb)["width"] == 320
    # The owner's read signs a link to it; it serves the very bytes.
    download = httpx.get(out["image_url"], timeout=10)
    assert download.status_code == 200 and download.content == data
    assert "video_url" not in out

    events = [e["event"] for e in job["events"]]
    assert events[:3] == ["created", "dispatched", "processing"] and events[-1] == "completed"
    topics = stack.sql(
        "select topic, payload from realtime.messages where payload ->> 'job_id' = %s"
        " order by inserted_at",
        created["id"],
    )
    assert {t["topic"] for t in topics} == {f"user:{ada.id}:jobs"}
    assert [t["payload"]["event"] for t in topics] == events

    assert stack.ledger(created["id"]) == ["reserve", "capture"]
    assert stack.balance(ada) == {"balance": 100 - row["cost"], "reserved": 0}
    assert audit(stack) == []

    # Removed from the history: the picture and its thumbnail go, the ledger stays.
    resp = stack.http.delete(
        stack.server.url("queue-job"),
        params={"id": created["id"], "action": "remove"},
        headers=ada.headers,
    )
    assert resp.status_code == 200, resp.text
    assert not stored.exists() and not thumb.exists()
    assert stack.ledger(created["id"]) == ["reserve", "capture"]


def test_an_image_to_image_job_repaints_an_upload(stack: Stack, tmp_path) -> None:
    stack.start_worker("repainter", models=f"{T2I},{I2I}")
    ada = stack.user()
    # Uploaded as the app does: the user's own token, into their folder in `uploads`.
    still = draw(PictureSpec("a still", "16:9", "480p", 1), tmp_path / "still.png")
    uploaded = stack.http.post(
        f"{stack.server.base}/storage/v1/object/uploads/{ada.id}/still.png",
        content=still.read_bytes(),
        headers={**ada.headers, "content-type": "image/png"},
    )
    assert uploaded.status_code == 200, uploaded.text

    created = queue(
        stack, ada, I2I, prompt="the same, at night", image_path=f"{ada.id}/still.png",
        strength=0.3, aspect_ratio="1:1", resolution="480p",
    )  # fmt: skip
    assert created["job_type"] == "image_to_image"
    row = stack.wait_status(created["id"], "completed", "failed")
    assert row["status"] == "completed", row
    out = row["output"]
    picture = storage_file(stack, "images", out["image_path"])
    info = probe(picture)
    assert (info["width"], info["height"]) == (480, 480) == (out["width"], out["height"])
    # It is the upload repainted, not a picture of the prompt alone.
    alone = draw(PictureSpec("the same, at night", "1:1", "480p", 0), tmp_path / "alone.png")
    assert picture.read_bytes() != alone.read_bytes()
    assert stack.ledger(created["id"]) == ["reserve", "capture"]

    # An image-to-image job without its upload is refused before any credit moves.
    before = stack.balance(ada)
    resp = stack.http.post(
        stack.server.url("queue-job"),
        json={"model": I2I, "params": {"prompt": "x", "image_path": f"{ada.id}/missing.png"}},
        headers=ada.headers,
    )
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "UPLOAD_NOT_FOUND"
    assert stack.balance(ada) == before
    assert audit(stack) == []
