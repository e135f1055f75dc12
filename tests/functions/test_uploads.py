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
