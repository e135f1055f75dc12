"""Composed videos as jobs over real HTTP: a short render answers 200 with the finished
video; a failure releases the job's credits; the narrated script comes back for editing."""

from __future__ import annotations

from pathlib import Path

import httpx
import psycopg
from videogen_dev.users import ensure_user

from videogen.kit.auth import issue_access_token
from videogen.media.render import probe


def _user(server) -> tuple[str, dict[str, str]]:
    user_id, _ = ensure_user(server.db_url, "composer@example.com")
    headers = {"Authorization": f"Bearer {issue_access_token(user_id)}"}
    resp = httpx.post(
        server.url("update-credits"), json={"action": "claim_initial_grant"}, headers=headers
    )
    assert resp.status_code == 200
    return user_id, headers


def _money(db_url: str, user_id: str) -> tuple[int, int, int, int]:
    with psycopg.connect(db_url) as conn:
        balance, reserved = conn.execute(
            "select balance, reserved from profiles where id = %s", [user_id]
        ).fetchone()
        amount, hold = conn.execute(
            "select sum(amount), sum(hold) from credit_ledger where user_id = %s", [user_id]
        ).fetchone()
    return balance, reserved, amount, hold


def test_short_composed_video_renders_synchronously(live_server, tmp_path):
    user_id, headers = _user(live_server)
    resp = httpx.post(
        live_server.url("generate-video"),
        headers={**headers, "Idempotency-Key": "compose-1"},
        json={
            "model": "reference/compose",
            "prompt": "Tides",
            "sections": 1,
            "resolution": "480p",
            "aspect_ratio": "16:9",
            "duration": 30,
        },
        timeout=120,
    )
    assert resp.status_code == 200, resp.text
    job = resp.json()["data"]
    assert job["status"] == "completed"
    out = job["output"]
    storage = Path(live_server.env["STORAGE_ROOT"])
    info = probe(storage / "videos" / out["video_path"])
    assert (info["width"], info["height"]) == (854, 480)
    assert info["has_audio"] and info["has_video"]
    assert abs(info["duration"] - out["duration_s"]) < 0.1
    assert (storage / "thumbnails" / out["thumbnail_path"]).stat().st_size > 1000
    assert out["script"]["sections"][0]["narration"]
    # Paid for the length rendered; the rest of the hold went back.
    assert 0 < job["credits_used"] <= job["cost"]
    balance, reserved, amount, hold = _money(live_server.db_url, user_id)
    assert (reserved, hold) == (0, 0)
    assert balance == amount == 100 - job["credits_used"]
    # The signed URL serves the file.
    video = httpx.get(out["video_url"])
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    # A retry with the same key replays the finished job.
    again = httpx.post(
        live_server.url("generate-video"),
        headers={**headers, "Idempotency-Key": "compose-1"},
        json={
            "model": "reference/compose",
            "prompt": "Tides",
            "sections": 1,
            "resolution": "480p",
            "aspect_ratio": "16:9",
            "duration": 30,
        },
    )
    assert again.status_code == 200
    assert again.json()["data"]["status"] == "completed"


def test_edited_script_renders_as_given(live_server):
    _, headers = _user(live_server)
    script = {
        "title": "Edited",
        "sections": [{"title": "One line", "narration": "This sentence was edited by the user."}],
    }
    resp = httpx.post(
        live_server.url("generate-video"),
        headers=headers,
        json={
            "model": "reference/compose",
            "prompt": "ignored",
            "script": script,
            "resolution": "480p",
            "duration": 20,
        },
        timeout=120,
    )
    assert resp.status_code == 200, resp.text
    job = resp.json()["data"]
    assert job["status"] == "completed"
    assert job["output"]["script"]["sections"][0]["narration"] == script["sections"][0]["narration"]


def test_failed_render_releases_the_credits(live_server):
    user_id, headers = _user(live_server)
    resp = httpx.post(
        live_server.url("generate-video"),
        headers=headers,
        json={
            "model": "reference/compose",
            "prompt": "Rivers",
            "sections": 1,
            "resolution": "480p",
            # Accepted by the request's checks, but its narration runs past the 5 s paid for:
            # the render fails after the credits were reserved.
            "duration": 5,
            "script": {
                "title": "Rivers",
                "sections": [
                    {
                        "title": "Rivers",
                        "narration": "Rivers carry water from the mountains to the sea, "
                        "shaping valleys, feeding farms and cities, and carving canyons "
                        "over millions of years as they wind across the land.",
                    }
                ],
            },
        },
        timeout=120,
    )
    assert resp.status_code == 200, resp.text
    job = resp.json()["data"]
    assert job["status"] == "failed"
    assert job["error_code"] == "INVALID_TIMELINE"
    balance, reserved, amount, hold = _money(live_server.db_url, user_id)
    assert (balance, reserved, amount, hold) == (100, 0, 100, 0)


def test_a_composed_video_with_styled_captions_comes_in_every_form_asked(live_server):
    """Captions styled, a WebM, an MP3 and a PNG poster beside the mp4: each stored in the
    owner's folder, signed in the answer and served with its type; the WebVTT cues are the
    narration's words."""
    _, headers = _user(live_server)
    resp = httpx.post(
        live_server.url("generate-video"),
        headers=headers,
        json={
            "model": "reference/compose",
            "prompt": "Forms",
            "script": {"title": "Forms", "sections": [
                {"title": "One", "narration": "Every word is timed and highlighted."}]},
            "resolution": "480p", "aspect_ratio": "9:16", "fps": 24, "duration": 20,
            "caption_style": {"font": "serif-bold", "size": 0.07, "color": "#ffffff",
                              "highlight": "#00ff88", "background": "box", "lines": 1},
            "formats": ["webm", "mp3"],
            "poster": {"at": 0.5, "format": "png"},
            "transition": {"kind": "circleopen", "duration": 0.4},
        },
        timeout=180,
    )  # fmt: skip
    assert resp.status_code == 200, resp.text
    job = resp.json()["data"]
    assert job["status"] == "completed", job
    out = job["output"]
    storage = Path(live_server.env["STORAGE_ROOT"])
    video = probe(storage / "videos" / out["video_path"])
    assert (video["width"], video["height"], video["fps"]) == (480, 854, 24)
    served = {
        "webm_url": "video/webm", "mp3_url": "audio/mpeg", "poster_url": "image/png",
        "vtt_url": "text/vtt", "srt_url": "application/x-subrip",
    }  # fmt: skip
    for link, content_type in served.items():
        path = out[link.replace("_url", "_path")]
        assert path.startswith(f"{job['user_id']}/{job['id']}.")
        got = httpx.get(out[link], timeout=60)
        assert got.status_code == 200, link
        assert got.headers["content-type"].split(";")[0] == content_type
    assert "gif_path" not in out
    webm = probe(storage / "videos" / out["webm_path"])
    assert (webm["video_codec"], webm["width"], webm["height"]) == ("vp9", 480, 854)
    vtt = httpx.get(out["vtt_url"], timeout=60).text
    assert vtt.startswith("WEBVTT") and "timed" in vtt and " --> " in vtt


def test_unknown_transitions_and_big_frames_are_refused_before_money_moves(live_server):
    user_id, headers = _user(live_server)
    base = {"model": "reference/compose", "prompt": "x", "resolution": "480p", "duration": 10}
    resp = httpx.post(
        live_server.url("generate-video"),
        headers=headers,
        json={**base, "transition": {"kind": "slidelfet", "duration": 0.5}},
        timeout=60,
    )
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert "slideleft" in str(error), error  # the close names are listed
    # More pixels than 1080p is for the premium tier; this user is on the free one.
    resp = httpx.post(
        live_server.url("generate-video"),
        headers=headers,
        json={**base, "size": {"width": 2560, "height": 1440}},
        timeout=60,
    )
    assert resp.status_code == 422, resp.text
    assert "more pixels than your tier allows" in resp.json()["error"]["message"]
    balance, reserved, _, _ = _money(live_server.db_url, user_id)
    assert (balance, reserved) == (100, 0)
    # On the premium tier the same frame is priced (by its pixels: 4x 720p's at 720p's factor).
    with psycopg.connect(live_server.db_url) as conn:
        conn.execute("update profiles set tier = 'premium' where id = %s", [user_id])
    item = {"model": "reference/compose", "params": {
        "prompt": "x", "resolution": "480p", "duration": 10,
        "size": {"width": 2560, "height": 1440}}}  # fmt: skip
    quote = httpx.post(live_server.url("queue-job/quote"), headers=headers, json={"items": [item]})
    assert quote.status_code == 200, quote.text
    small = {**item, "params": {**item["params"], "size": {"width": 1280, "height": 720}}}
    cheaper = httpx.post(
        live_server.url("queue-job/quote"), headers=headers, json={"items": [small]}, timeout=60
    )
    assert quote.json()["data"]["total"] > cheaper.json()["data"]["total"], quote.json()
