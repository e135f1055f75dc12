"""The media lifecycle: a finished job removed from its owner's history (its row and ledger
stay, its files go), and outputs and uploads removed by the sweep after their retention."""

from __future__ import annotations

from typing import Any

import psycopg

from videogen.config import LOCAL_CRON_SECRET

MP4 = b"\x00\x00\x00\x18ftypmp42"


def report(api, job, kind, **fields):
    body = {"type": kind, "job_id": job["id"], "attempt": job["attempt"], **fields}
    return api.ok(api.signed("job-callback", body))


def finished_with_files(api, user) -> tuple[dict[str, Any], str, str]:
    """A completed job whose video and thumbnail are in storage."""
    job, _ = api.claimed_job(user)
    video, thumb = f"{user.id}/{job['id']}.mp4", f"{user.id}/{job['id']}.jpg"
    api.put_object("videos", video, MP4, "video/mp4")
    api.put_object("thumbnails", thumb, api.png(), "image/png")
    output = {"video_path": video, "thumbnail_path": thumb}
    assert report(api, job, "completed", output=output, credits_used=5)["applied"]
    return job, video, thumb


def ledger(api, user):
    return [
        (e["kind"], e["amount"])
        for e in api.ok(api.get("update-credits", user=user))["ledger"]["items"]
    ]


def test_a_finished_job_leaves_the_history_and_its_files_go(api):
    user = api.user(credits=100)
    job, video, thumb = finished_with_files(api, user)
    seen = api.ok(api.get("queue-job", user=user, params={"id": job["id"]}))
    assert seen["output"]["video_url"] and seen["output"]["thumbnail_url"]
    money = ledger(api, user)

    removed = api.ok(
        api.delete("queue-job", user=user, params={"id": job["id"], "action": "remove"})
    )
    assert removed["id"] == job["id"] and removed["deleted_at"] and removed["output_expired_at"]
    assert not api.has_object("videos", video) and not api.has_object("thumbnails", thumb)
    api.fails(api.get("queue-job", user=user, params={"id": job["id"]}), 404, "JOB_NOT_FOUND")
    listed = api.ok(api.get("queue-job", user=user))
    assert job["id"] not in [j["id"] for j in listed["items"]] and listed["total"] == 0
    assert ledger(api, user) == money  # the money's history stays whole
    assert api.sql("select count(*) from public.jobs where id = %s", [job["id"]]) == 1
    again = api.delete("queue-job", user=user, params={"id": job["id"], "action": "remove"})
    api.fails(again, 404, "JOB_NOT_FOUND")


def test_only_the_owner_removes_and_only_a_finished_job(api):
    owner, other = api.user(credits=100), api.user()
    running, _ = api.claimed_job(owner)
    remove = {"id": running["id"], "action": "remove"}
    api.fails(api.delete("queue-job", user=owner, params=remove), 409, "INVALID_TRANSITION")
    api.fails(api.delete("queue-job", user=other, params=remove), 404, "JOB_NOT_FOUND")
    api.fails(api.delete("queue-job", user=owner, params={**remove, "action": "purge"}), 422)
    assert api.ok(api.get("queue-job", user=owner, params={"id": running["id"]}))["status"] == (
        "dispatched"
    )


def sweep(api) -> dict[str, Any]:
    return api.ok(api.get("health-check-workers", headers={"x-cron-secret": LOCAL_CRON_SECRET}))


def test_the_sweep_removes_outputs_and_uploads_past_their_retention(retention_api):
    api = retention_api
    user = api.user(credits=100)
    old, video, thumb = finished_with_files(api, user)
    fresh, fresh_video, _ = finished_with_files(api, user)
    # A day passes for one of them (the state machine refuses such edits: triggers off here).
    with psycopg.connect(api.server.db_url, autocommit=True) as conn, conn.transaction():
        conn.execute("set local session_replication_role = replica")
        conn.execute(
            "update public.jobs set finished_at = now() - interval '25 hours' where id = %s",
            [old["id"]],
        )
    uploads = {name: f"{user.id}/{name}.png" for name in ("stale", "recent", "needed")}
    for path in uploads.values():
        api.put_object("uploads", path, api.png(), "image/png")
    # As Storage records them (the local disk backend keeps no rows): stale and needed are old.
    api.sql(
        "insert into storage.buckets (id, name) values ('uploads', 'uploads')"
        " on conflict do nothing"
    )
    for name, age in (("stale", "3 days"), ("recent", "1 day"), ("needed", "3 days")):
        api.sql(
            "insert into storage.objects (bucket_id, name, created_at)"
            " values ('uploads', %s, now() - %s::interval)"
            " on conflict (bucket_id, name) do update set created_at = excluded.created_at",
            [uploads[name], age],
        )
    waiting = api.ok(
        api.post(
            "generate-video",
            user=user,
            json={
                "model": "reference/image-to-video",
                "prompt": "p",
                "image_path": uploads["needed"],
            },
        ),
        202,
    )
    assert waiting["status"] == "queued"

    summary = sweep(api)
    assert summary["retention"]["outputs_expired"] >= 1
    assert summary["retention"]["uploads_removed"] >= 1
    assert not api.has_object("videos", video) and not api.has_object("thumbnails", thumb)
    assert api.has_object("videos", fresh_video)
    assert not api.has_object("uploads", uploads["stale"])
    assert api.has_object("uploads", uploads["recent"]) and api.has_object(
        "uploads", uploads["needed"]
    )

    expired = api.ok(api.get("queue-job", user=user, params={"id": old["id"]}))
    assert expired["output_expired_at"] and "video_url" not in expired["output"]
    assert expired["output"]["video_path"] == video  # what it was stays on record
    kept = api.ok(api.get("queue-job", user=user, params={"id": fresh["id"]}))
    assert kept["output"]["video_url"] and kept["output_expired_at"] is None
    assert sweep(api)["retention"]["outputs_expired"] == 0  # nothing twice


def test_a_composed_videos_other_forms_are_signed_and_go_with_it(api):
    """A worker reports a webm and captions beside the mp4: reads sign a link to each, and
    removing the job removes them too."""
    user = api.user(credits=100)
    job, _ = api.claimed_job(user)
    base = f"{user.id}/{job['id']}"
    files = {"video_path": (f"{base}.mp4", MP4, "video/mp4"),
             "webm_path": (f"{base}.webm", b"\x1a\x45\xdf\xa3webm", "video/webm"),
             "vtt_path": (f"{base}.vtt", b"WEBVTT\n", "text/vtt")}  # fmt: skip
    for path, data, kind in files.values():
        api.put_object("videos", path, data, kind)
    output = {key: path for key, (path, _, _) in files.items()}
    assert report(api, job, "completed", output=output, credits_used=5)["applied"]
    seen = api.ok(api.get("queue-job", user=user, params={"id": job["id"]}))["output"]
    assert seen["webm_url"] and seen["vtt_url"] and seen["video_url"]
    api.ok(api.delete("queue-job", user=user, params={"id": job["id"], "action": "remove"}))
    assert not any(api.has_object("videos", path) for path, _, _ in files.values())
