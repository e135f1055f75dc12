"""A job that names uploads is checked before money moves: the caller's own object in
`uploads`, present, and a picture (or audio) that decodes within the limits."""

from __future__ import annotations

import pytest

I2V = "reference/image-to-video"


def ledger_kinds(api, user):
    overview = api.ok(api.get("update-credits", user=user))
    return (
        overview["balance"],
        overview["reserved"],
        [e["kind"] for e in overview["ledger"]["items"]],
    )


@pytest.mark.parametrize(
    ("stored", "name", "code", "words"),
    [
        (None, "missing.png", "UPLOAD_NOT_FOUND", "no upload"),
        (b"just some text, not a picture", "fake.png", "INVALID_UPLOAD", "not a PNG, JPEG or WebP"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "broken.png", "INVALID_UPLOAD", "0x0"),
        ("tiny", "tiny.png", "INVALID_UPLOAD", "outside 64-8192 pixels"),
    ],
)
def test_an_unusable_upload_is_a_422_and_reserves_nothing(api, stored, name, code, words):
    user = api.user(credits=100)
    path = f"{user.id}/{name}"
    if stored == "tiny":
        stored = api.png(32, 32)
    if stored is not None:
        api.put_object("uploads", path, stored, "image/png")
    before = ledger_kinds(api, user)
    body = {"model": I2V, "prompt": "pan", "image_path": path}
    error = api.fails(api.post("generate-video", user=user, json=body), 422, code)
    assert error["details"][0]["field"] == "params.image_path" and words in error["message"]
    queued = {"model": I2V, "params": {"prompt": "pan", "image_path": path}}
    api.fails(api.post("queue-job", user=user, json=queued), 422, code)
    assert ledger_kinds(api, user) == before  # nothing reserved, no ledger row


def claims_8192(body_rows: int = 1) -> bytes:
    """A PNG whose header claims 8192x8192 but whose pixel data stops after a few rows:
    every chunk well-formed (lengths, CRCs, IEND), only the picture is missing."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", 8192, 8192, 8, 2, 0, 0, 0)  # 8-bit RGB
    rows = (b"\x00" + b"\x80" * 8192 * 3) * body_rows
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_a_picture_that_does_not_decode_is_a_422_naming_its_field(api):
    """The header is not the picture: a truncated PNG that claims 8192x8192 (within the
    limits, as ffprobe reads it) or a real one cut short is refused, as an image-to-video
    image and as a composition element, before anything is reserved."""
    user = api.user(credits=500)
    whole = api.png()
    api.put_object("uploads", f"{user.id}/claims.png", claims_8192(), "image/png")
    api.put_object("uploads", f"{user.id}/cut.png", whole[: len(whole) // 2], "image/png")
    before = ledger_kinds(api, user)
    for name in ("claims.png", "cut.png"):
        path = f"{user.id}/{name}"
        body = {"model": I2V, "prompt": "pan", "image_path": path}
        error = api.fails(api.post("generate-video", user=user, json=body), 422, "INVALID_UPLOAD")
        assert error["details"][0]["field"] == "params.image_path", error
        assert "does not decode" in error["message"], error
        queued = {"model": I2V, "params": {"prompt": "pan", "image_path": path}}
        api.fails(api.post("queue-job", user=user, json=queued), 422, "INVALID_UPLOAD")
    elements = [{"type": "image", "path": f"{user.id}/claims.png", "start": 0, "duration": 2}]
    timeline = {"model": COMPOSE, "prompt": "A timeline", "elements": elements}
    error = api.fails(api.post("generate-video", user=user, json=timeline), 422, "INVALID_UPLOAD")
    assert error["details"] == [
        {
            "field": "params.elements.0.path",
            "message": "claims.png: the png data does not decode (truncated or corrupt)",
            "code": "INVALID_UPLOAD",
        }
    ]
    assert ledger_kinds(api, user) == before


def test_another_users_upload_is_refused_even_when_it_exists(api):
    owner, thief = api.user(), api.user(credits=100)
    path = f"{owner.id}/still.png"
    api.put_object("uploads", path, api.png(), "image/png")
    body = {"model": I2V, "prompt": "pan", "image_path": path}
    api.fails(api.post("generate-video", user=thief, json=body), 422, "INVALID_PARAMS")


def test_a_compose_job_checks_every_image_and_its_music(api):
    user = api.user(credits=500)
    good = f"{user.id}/one.png"
    api.put_object("uploads", good, api.png(), "image/png")
    body = {
        "model": "reference/compose",
        "prompt": "Tides",
        "sections": 2,
        "images": [good, f"{user.id}/absent.png"],
    }
    error = api.fails(api.post("generate-video", user=user, json=body), 422, "UPLOAD_NOT_FOUND")
    assert error["details"][0]["field"] == "params.images.1"
    body = {**body, "images": [good, None], "music_path": good}
    error = api.fails(api.post("generate-video", user=user, json=body), 422, "INVALID_UPLOAD")
    assert error["details"][0]["field"] == "params.music_path"
    assert ledger_kinds(api, user)[:2] == (500, 0)


def test_a_good_upload_makes_a_job(api):
    user = api.user(credits=100)
    path = f"{user.id}/still.png"
    api.put_object("uploads", path, api.png(), "image/png")
    body = {"model": I2V, "prompt": "pan", "image_path": path}
    job = api.ok(api.post("generate-video", user=user, json=body), 202)
    assert job["params"]["image_path"] == path and job["cost"] > 0


# Compositions of elements ----------------------------------------------------------------

COMPOSE = "reference/compose"


def clip_mp4(seconds: float = 1.0) -> bytes:
    """A short real video, made by ffmpeg."""
    import subprocess
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "clip.mp4"
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i",
             f"testsrc2=s=320x240:r=25:d={seconds}", "-pix_fmt", "yuv420p", str(out)],
            check=True,
        )  # fmt: skip
        return out.read_bytes()


def test_a_bad_timeline_is_a_422_listing_every_problem_and_moves_no_credit(api):
    user = api.user(credits=500)
    me = user.id
    before = ledger_kinds(api, user)
    elements = [
        {"type": "image", "path": f"{me}/a.png", "start": 0, "duration": 4},
        {"type": "image", "path": f"{me}/b.png", "start": 2, "duration": 4},  # same layer
        {"type": "video", "path": f"{me}/c.gif", "start": -1, "duration": 2},
        {"type": "text", "text": "hi", "start": 0, "duration": 2, "color": "not a colour!"},
        {"type": "audio", "path": f"{me}/d.mp3", "start": 0, "duration": 2,
         "transitions": {"in": {"kind": "fadeblack", "duration": 1}}},
    ]  # fmt: skip
    body = {"model": COMPOSE, "prompt": "A timeline", "elements": elements, "captions": True}
    error = api.fails(api.post("generate-video", user=user, json=body), 422)
    fields = {d["field"] for d in error["details"]}
    assert fields == {
        "elements.1.start",
        "elements.2.start",
        "elements.3.color",
        "elements.4.transitions.in.kind",
        "captions",
    }, error
    queued = {"model": COMPOSE, "params": {k: v for k, v in body.items() if k != "model"}}
    error = api.fails(api.post("queue-job", user=user, json=queued), 422)
    assert {d["field"] for d in error["details"]} == {f"params.{f}" for f in fields}
    assert ledger_kinds(api, user) == before  # nothing reserved, no ledger row


def test_every_unusable_element_file_is_listed_and_moves_no_credit(api):
    user, other = api.user(credits=500), api.user()
    me = user.id
    api.put_object("uploads", f"{me}/still.png", api.png(), "image/png")
    api.put_object("uploads", f"{me}/clip.mp4", clip_mp4(), "video/mp4")
    api.put_object("uploads", f"{me}/fake.mp4", api.png(), "video/mp4")
    api.put_object("uploads", f"{other.id}/theirs.mp4", clip_mp4(), "video/mp4")
    # Over 100 MB: the Storage API refuses the upload (the bucket's file_size_limit); the
    # check's own size limit is tested in tests/unit/test_elements.py.
    api.put_object("uploads", f"{me}/cut.mp4", clip_mp4()[:2000], "video/mp4")
    before = ledger_kinds(api, user)
    elements = [
        {"type": "image", "path": f"{me}/still.png", "start": 0, "duration": 3},
        {"type": "video", "path": f"{me}/clip.mp4", "start": 0, "duration": 3, "layer": 1},
        {"type": "video", "path": f"{me}/fake.mp4", "start": 0, "duration": 1, "layer": 2},
        {"type": "video", "path": f"{other.id}/theirs.mp4", "start": 1, "duration": 1,
         "layer": 2},
        {"type": "video", "path": f"{me}/absent.webm", "start": 2, "duration": 1, "layer": 2},
        {"type": "video", "path": f"{me}/cut.mp4", "start": 0, "duration": 1, "layer": 3},
        {"type": "audio", "path": f"{me}/clip.mp4".replace(".mp4", ".m4a"), "start": 0,
         "duration": 1},
    ]  # fmt: skip
    body = {"model": COMPOSE, "prompt": "A timeline", "elements": elements}
    error = api.fails(api.post("generate-video", user=user, json=body), 422)
    found = {d["field"]: d["code"] for d in error["details"]}
    assert found == {
        "params.elements.2.path": "INVALID_UPLOAD",  # a picture, not a video
        "params.elements.3.path": "INVALID_PARAMS",  # someone else's
        "params.elements.4.path": "UPLOAD_NOT_FOUND",
        "params.elements.5.path": "INVALID_UPLOAD",  # cut short: ffprobe cannot read it
        "params.elements.6.path": "UPLOAD_NOT_FOUND",
    }, error
    assert error["code"] == "INVALID_UPLOAD" and "5 uploads are not usable" in error["message"]
    assert ledger_kinds(api, user) == before


def test_a_timeline_is_priced_by_its_length(api):
    user = api.user(credits=500)
    api.put_object("uploads", f"{user.id}/still.png", api.png(), "image/png")
    elements = [
        {"type": "image", "path": f"{user.id}/still.png", "start": 0, "duration": 6},
        {"type": "text", "text": "The end", "start": 6, "duration": 1.2},
    ]
    params = {"prompt": "A timeline", "elements": elements, "resolution": "480p"}
    job = api.ok(api.post("queue-job", user=user, json={"model": COMPOSE, "params": params}), 202)
    assert job["params"]["duration"] == 8  # 7.2 s, in whole seconds
    same = {"prompt": "Tides", "duration": 8, "resolution": "480p"}
    plain = api.ok(api.post("queue-job", user=user, json={"model": COMPOSE, "params": same}), 202)
    assert job["cost"] == plain["cost"] > 0
    short = {**params, "elements": [{**elements[0], "duration": 2}]}
    job = api.ok(api.post("queue-job", user=user, json={"model": COMPOSE, "params": short}), 202)
    assert job["params"]["duration"] == 5  # at least the model's minimum
    for queued in (job["id"], plain["id"]):
        api.ok(api.delete("queue-job", user=user, params={"id": queued}))


def test_a_short_timeline_renders_at_once(api):
    from pathlib import Path

    from videogen.media.render import probe

    user = api.user(credits=500)
    api.put_object("uploads", f"{user.id}/still.png", api.png(), "image/png")
    api.put_object("uploads", f"{user.id}/clip.mp4", clip_mp4(), "video/mp4")
    elements = [
        {"type": "image", "path": f"{user.id}/still.png", "start": 0, "duration": 2},
        {"type": "video", "path": f"{user.id}/clip.mp4", "start": 0.5, "duration": 1,
         "layer": 1, "width": 0.3, "position": {"x": 0.6, "y": 0.6}},
        {"type": "text", "text": "Hello", "start": 0, "duration": 2},
    ]  # fmt: skip
    body = {"model": COMPOSE, "prompt": "A timeline", "elements": elements, "resolution": "480p"}
    job = api.ok(api.post("generate-video", user=user, json=body, timeout=120), 200)
    assert job["status"] == "completed", job
    info = probe(Path(api.server.env["STORAGE_ROOT"]) / "videos" / job["output"]["video_path"])
    assert abs(info["duration"] - 2.0) < 0.05 and (info["width"], info["height"]) == (854, 480)
    # Paid for the 2 s rendered out of the 5 s (the model's minimum) reserved.
    assert job["credits_used"] == -(-job["cost"] * 2 // 5)
    balance, reserved, _ = ledger_kinds(api, user)
    assert (balance, reserved) == (500 - job["credits_used"], 0)


def test_large_pictures_count_in_the_render_estimate(api, tmp_path):
    """Ten 8192x8192 PNGs (small files: one colour) at 480p: a short video by its length,
    but the render must decode 670 megapixels, so it is not rendered inside the request;
    one of them still is."""
    import subprocess

    big = tmp_path / "big.png"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=navy:s=8192x8192",
         "-frames:v", "1", str(big)],
        check=True, timeout=120,
    )  # fmt: skip
    user = api.user(credits=500)
    paths = [f"{user.id}/big-{i}.png" for i in range(10)]
    for path in paths:
        api.put_object("uploads", path, big.read_bytes(), "image/png")
    body = {"model": COMPOSE, "prompt": "Big pictures", "sections": 1, "images": paths[:1],
            "resolution": "480p"}  # fmt: skip
    one = api.ok(api.post("generate-video", user=user, json=body, timeout=300), 200)
    assert one["status"] == "completed"  # 67 Mpx: about 2 s more, still within the bar
    elements = [
        {"type": "image", "path": p, "start": i * 0.5, "duration": 0.5} for i, p in enumerate(paths)
    ]
    body = {"model": COMPOSE, "prompt": "Big", "elements": elements, "resolution": "480p"}
    many = api.ok(api.post("generate-video", user=user, json=body, timeout=300), 202)
    assert many["status"] in ("queued", "dispatched")
