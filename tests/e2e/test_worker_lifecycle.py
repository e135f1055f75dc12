"""The happy paths: push and pull workers take a job from queued to completed."""

from __future__ import annotations

import json
import subprocess
import time

import httpx
import pytest
from e2e_stack import Stack, storage_file

from videogen.integrations import webhooks
from videogen.media.render import probe

FORGED_SECRET = "whsec_Zm9yZ2VkLXNlY3JldC1mb3ItdGVzdHMtb25seS0wMQ=="


def _events(job: dict) -> list[str]:
    return [e["event"] for e in job["events"]]


def test_push_job_runs_queued_to_completed(stack: Stack) -> None:
    worker = stack.start_worker("w1")
    ada, bob = stack.user("ada@example.com"), stack.user("bob@example.com")

    created = stack.generate(ada, prompt="A red fox jumps over a sleeping dog", duration=2)
    row = stack.wait_status(created["id"], "completed", "failed")

    assert row["status"] == "completed", row
    assert row["worker_id"] == worker.worker_id and row["attempt"] == 1
    job = stack.get_job(ada, created["id"])
    events = _events(job)
    assert events[:3] == ["created", "dispatched", "processing"]
    assert events[-1] == "completed"
    assert set(events[3:-1]) <= {"progress"}
    progress = [e["progress"] for e in job["events"]]
    assert progress == sorted(progress) and progress[-1] == 100

    out = job["output"]
    assert out["video_path"] == f"{ada.id}/{created['id']}.mp4"
    assert out["thumbnail_path"] == f"{ada.id}/{created['id']}.jpg"
    assert (out["width"], out["height"]) == (854, 480)
    assert out["duration_s"] == pytest.approx(2.0, abs=0.1)
    info = probe(storage_file(stack, "videos", out["video_path"]))
    assert (info["width"], info["height"], info["has_audio"]) == (854, 480, True)
    assert storage_file(stack, "thumbnails", out["thumbnail_path"]).stat().st_size > 0
    download = httpx.get(out["video_url"], timeout=10)
    assert download.status_code == 200 and download.content[4:8] == b"ftyp"

    # Every change was broadcast, on the owner's private topic only.
    topics = stack.sql(
        "select topic, private, payload from realtime.messages "
        "where payload ->> 'job_id' = %s order by inserted_at",
        created["id"],
    )
    assert {t["topic"] for t in topics} == {f"user:{ada.id}:jobs"}
    assert all(t["private"] for t in topics)
    assert [t["payload"]["event"] for t in topics] == events
    assert not stack.sql("select 1 from realtime.messages where topic = %s", f"user:{bob.id}:jobs")

    # Charged the price: one reserve, one capture.
    assert stack.ledger(created["id"]) == ["reserve", "capture"]
    assert stack.balance(ada) == {"balance": 100 - row["cost"], "reserved": 0}

    # The worker metered its render and reported it with the completion.
    [used] = stack.sql(
        "select render_seconds, render_output_seconds, reports from private.job_usage"
        " where job_id = %s",
        created["id"],
    )
    assert used["render_seconds"] > 0 and used["reports"] == 1
    assert float(used["render_output_seconds"]) == pytest.approx(2.0, abs=0.1)


def test_pull_worker_claims_and_completes(stack: Stack) -> None:
    ada = stack.user()
    created = stack.generate(ada, aspect_ratio="9:16", resolution="720p", duration=1)
    assert created["status"] == "queued"  # no push worker: it waits to be claimed

    worker = stack.start_worker("puller", "--mode", "pull")
    row = stack.wait_status(created["id"], "completed", "failed")

    assert row["status"] == "completed" and row["worker_id"] == worker.worker_id
    assert (row["output"]["width"], row["output"]["height"]) == (720, 1280)
    assert stack.ledger(created["id"]) == ["reserve", "capture"]


def test_job_waits_for_a_worker_then_runs(stack: Stack) -> None:
    ada = stack.user()
    created = stack.generate(ada, aspect_ratio="1:1", duration=1)
    assert created["status"] == "queued" and created["queue_position"] == 1
    time.sleep(1.0)
    stack.sweep()  # nobody to push to: still waiting
    assert stack.job_row(created["id"])["status"] == "queued"

    stack.start_worker("late")  # registering pushes what waits
    row = stack.wait_status(created["id"], "completed", "failed")
    assert row["status"] == "completed"
    assert (row["output"]["width"], row["output"]["height"]) == (480, 480)


def test_worker_http_surface(stack: Stack) -> None:
    worker = stack.start_worker("surface", "--capacity", "3")
    health = worker.health()
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok" and body["in_flight"] == 0 and body["capacity"] == 3
    assert body["version"]

    # Unsigned, forged and stale pushes are refused before anything runs.
    payload = json.dumps({"job_id": "x"}).encode()
    assert httpx.post(f"{worker.url}/jobs", content=payload).status_code == 401
    forged = webhooks.sign(payload, secret=FORGED_SECRET)
    assert httpx.post(f"{worker.url}/jobs", content=payload, headers=forged).status_code == 401
    stale = webhooks.sign(payload, timestamp=time.time() - 3600)
    resp = httpx.post(f"{worker.url}/jobs", content=payload, headers=stale)
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "STALE_WEBHOOK"
    # Signed but replayed: the second delivery of the same webhook-id is refused.
    signed = webhooks.sign(payload)
    assert httpx.post(f"{worker.url}/jobs", content=payload, headers=signed).status_code == 422
    assert httpx.post(f"{worker.url}/jobs", content=payload, headers=signed).status_code == 409

    registered = stack.sql("select * from public.workers where name = 'surface'")[0]
    assert registered["url"] == worker.url and registered["health_url"] == f"{worker.url}/health"
    summary = stack.sweep()
    assert summary["workers"]["healthy"] == 1
    assert summary["workers"]["results"][0]["detail"]["capacity"] == 3


def test_image_to_video_animates_the_upload(stack: Stack) -> None:
    ada = stack.user()
    still = stack.tmp / "still.png"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=s=640x360",
         "-frames:v", "1", str(still)],
        check=True,
    )  # fmt: skip
    # Uploaded as the app does: the user's own token, into their folder in `uploads`.
    with httpx.Client() as http:
        uploaded = http.post(
            f"{stack.server.base}/storage/v1/object/uploads/{ada.id}/still.png",
            content=still.read_bytes(),
            headers={**ada.headers, "content-type": "image/png"},
        )
    assert uploaded.status_code == 200, uploaded.text
    assert storage_file(stack, "uploads", f"{ada.id}/still.png").is_file()
    stack.start_worker("i2v", models="reference/text-to-video,reference/image-to-video")

    created = stack.generate(
        ada,
        model="reference/image-to-video",
        image_path=f"{ada.id}/still.png",
        aspect_ratio="9:16",
        duration=1,
    )
    row = stack.wait_status(created["id"], "completed", "failed")

    assert row["status"] == "completed", row
    info = probe(storage_file(stack, "videos", row["output"]["video_path"]))
    assert (info["width"], info["height"]) == (480, 854)
