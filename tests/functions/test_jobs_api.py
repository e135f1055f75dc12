"""generate-video and queue-job over real HTTP: create, read, list, cancel, and their errors."""

from __future__ import annotations

import uuid

import pytest

T2V = "reference/text-to-video"


def credits_of(api, user):
    """(balance, reserved) as the user sees them."""
    data = api.ok(api.get("update-credits", user=user))
    return data["balance"], data["reserved"]


# generate-video ---------------------------------------------------------------------------


def test_generate_video_reserves_credits_and_queues(api):
    user = api.user(credits=100)
    job = api.ok(
        api.post(
            "generate-video",
            user=user,
            json={"model": T2V, "prompt": "a lighthouse at dusk", "resolution": "480p"},
        ),
        202,
    )
    assert job["status"] == "queued"  # no worker online: it waits to be claimed
    assert job["model_id"] == T2V
    assert job["params"] == {
        "prompt": "a lighthouse at dusk",
        "resolution": "480p",
        "duration": 5,
        "aspect_ratio": "16:9",
    }
    assert job["cost"] == 7  # (2 + 1 * 5 s) * 1 at 480p
    assert job["queue_position"] >= 1
    assert credits_of(api, user) == (93, 7)


def test_generate_video_one_job_has_events_and_is_private(api):
    owner, other = api.user(credits=50), api.user()
    job = api.ok(api.post("generate-video", user=owner, json={"model": T2V, "prompt": "x"}), 202)

    mine = api.ok(api.get("generate-video", user=owner, params={"id": job["id"]}))
    assert mine["id"] == job["id"]
    assert mine["events"][0]["status"] == "queued"

    api.fails(api.get("generate-video", user=other, params={"id": job["id"]}), 404, "JOB_NOT_FOUND")
    api.fails(
        api.get("generate-video", user=owner, params={"id": str(uuid.uuid4())}),
        404,
        "JOB_NOT_FOUND",
    )
    error = api.fails(
        api.get("generate-video", user=owner, params={"id": "nope"}), 422, "VALIDATION_ERROR"
    )
    assert error["details"][0]["field"] == "id"


def test_generate_video_list_pages_and_filters_by_status(api):
    user = api.user(credits=200)
    ids = [
        api.ok(api.post("generate-video", user=user, json={"model": T2V, "prompt": f"p{i}"}), 202)[
            "id"
        ]
        for i in range(3)
    ]
    api.ok(api.delete("queue-job", user=user, params={"id": ids[0]}))

    first = api.ok(api.get("generate-video", user=user, params={"limit": 2}))
    assert (first["page"], first["limit"], first["total"], first["has_next"]) == (1, 2, 3, True)
    assert [j["id"] for j in first["items"]] == [ids[2], ids[1]]  # newest first
    second = api.ok(api.get("generate-video", user=user, params={"limit": 2, "page": 2}))
    assert [j["id"] for j in second["items"]] == [ids[0]]
    assert second["has_next"] is False

    queued = api.ok(api.get("generate-video", user=user, params={"status": "queued"}))
    assert queued["total"] == 2 and {j["status"] for j in queued["items"]} == {"queued"}
    canceled = api.ok(api.get("generate-video", user=user, params={"status": "canceled"}))
    assert [j["id"] for j in canceled["items"]] == [ids[0]]

    # Somebody else sees none of them.
    assert api.ok(api.get("generate-video", user=api.user()))["total"] == 0


@pytest.mark.parametrize(
    "params",
    [{"status": "lost"}, {"limit": "0"}, {"limit": "101"}, {"page": "x"}, {"sort": "asc"}],
)
def test_generate_video_list_rejects_bad_query(api, params):
    api.fails(api.get("generate-video", user=api.user(), params=params), 422, "VALIDATION_ERROR")


def test_generate_video_without_credits_is_402(api):
    user = api.user()
    error = api.fails(
        api.post("generate-video", user=user, json={"model": T2V, "prompt": "x"}),
        402,
        "INSUFFICIENT_CREDITS",
    )
    assert error["hint"]
    assert credits_of(api, user) == (0, 0)
    assert api.ok(api.get("generate-video", user=user))["total"] == 0  # nothing left behind


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"model": "nope/unknown", "prompt": "x"}, 404, "MODEL_NOT_FOUND", None),
        ({"model": T2V, "prompt": "x", "duration": 90}, 422, "INVALID_PARAMS", None),
        ({"model": "reference/image-to-video", "prompt": "x"}, 422, "INVALID_PARAMS", None),
        ({"model": T2V}, 422, "VALIDATION_ERROR", "prompt"),
        ({"model": T2V, "prompt": ""}, 422, "VALIDATION_ERROR", "prompt"),
        ({"model": "Bad Model!", "prompt": "x"}, 422, "VALIDATION_ERROR", "model"),
        ({"model": T2V, "prompt": "x", "fps": 1000}, 422, "VALIDATION_ERROR", "fps"),
        ({"model": T2V, "prompt": "x", "colour": "red"}, 422, "VALIDATION_ERROR", "colour"),
        ({"model": T2V, "prompt": "x", "aspect_ratio": "4:3"}, 422, "VALIDATION_ERROR", None),
    ],
)
def test_generate_video_refuses_bad_requests(api, body, status, code, field):
    user = api.user(credits=100)
    error = api.fails(api.post("generate-video", user=user, json=body), status, code)
    if field:
        assert field in [d["field"] for d in error["details"]]
    assert credits_of(api, user) == (100, 0)


def test_generate_video_image_must_be_in_own_folder(api):
    user, other = api.user(credits=100), api.user()
    body = {
        "model": "reference/image-to-video",
        "prompt": "pan",
        "image_path": f"{other.id}/still.png",
    }
    api.fails(api.post("generate-video", user=user, json=body), 422, "INVALID_PARAMS")
    body["image_path"] = f"{user.id}/still.png"
    api.put_object("uploads", body["image_path"], api.png(), "image/png")
    assert api.ok(api.post("generate-video", user=user, json=body), 202)["status"] == "queued"


def test_external_provider_without_configuration_fails_the_job_and_releases(api):
    user = api.user(credits=500)
    job = api.ok(
        api.post(
            "generate-video", user=user, json={"model": "fal/kling-video-v2.1", "prompt": "x"}
        ),
        202,
    )
    assert job["status"] == "failed"
    assert job["error_code"] == "PROVIDER_NOT_CONFIGURED"
    assert credits_of(api, user) == (500, 0)


# queue-job --------------------------------------------------------------------------------


def test_queue_job_create_read_cancel(api):
    user = api.user(credits=100)
    job = api.ok(
        api.post("queue-job", user=user, json={"model": T2V, "params": {"prompt": "a"}}), 202
    )
    assert job["status"] == "queued" and job["cost"] == 11  # 720p by default: * 1.5
    assert credits_of(api, user) == (89, 11)
    assert api.ok(api.get("queue-job", user=user, params={"id": job["id"]}))["id"] == job["id"]
    assert api.ok(api.get("queue-job", user=user))["total"] == 1

    canceled = api.ok(api.delete("queue-job", user=user, params={"id": job["id"]}))
    assert canceled["job"]["status"] == "canceled"
    assert canceled["worker_notified"] is False
    assert credits_of(api, user) == (100, 0)

    again = api.fails(
        api.delete("queue-job", user=user, params={"id": job["id"]}), 409, "INVALID_TRANSITION"
    )
    assert "canceled" in again["message"]
    assert credits_of(api, user) == (100, 0)  # released once


def test_queue_job_cancel_of_someone_elses_job_is_404(api):
    owner, other = api.user(credits=50), api.user()
    job = api.ok(api.post("queue-job", user=owner, json={"model": T2V}), 202)
    api.fails(api.delete("queue-job", user=other, params={"id": job["id"]}), 404, "JOB_NOT_FOUND")
    api.fails(
        api.delete("queue-job", user=owner, params={"id": str(uuid.uuid4())}), 404, "JOB_NOT_FOUND"
    )
    api.fails(api.delete("queue-job", user=owner), 422, "VALIDATION_ERROR")
    assert api.ok(api.get("queue-job", user=owner, params={"id": job["id"]}))["status"] == "queued"


def test_queue_job_validates_params_against_the_model(api):
    user = api.user(credits=100)
    api.fails(  # the model's own limit (1-30 s), checked by the database
        api.post("queue-job", user=user, json={"model": T2V, "params": {"duration": 31}}),
        422,
        "INVALID_PARAMS",
    )
    error = api.fails(  # the type, checked before anything runs
        api.post("queue-job", user=user, json={"model": T2V, "params": {"duration": "long"}}),
        422,
        "VALIDATION_ERROR",
    )
    assert [d["field"] for d in error["details"]] == ["params.duration"]
    api.fails(
        api.post("queue-job", user=user, json={"model": T2V, "params": []}),
        422,
        "VALIDATION_ERROR",
    )
    api.fails(
        api.post("queue-job", user=user, json={"model": T2V, "priority": 101}),
        422,
        "VALIDATION_ERROR",
    )


def test_queue_job_concurrency_limit_is_429(api):
    user = api.user(credits=1000)
    for _ in range(5):
        api.ok(api.post("queue-job", user=user, json={"model": T2V}), 202)
    resp = api.post("queue-job", user=user, json={"model": T2V})
    error = api.fails(resp, 429, "CONCURRENCY_LIMIT")
    assert error["hint"]
    assert credits_of(api, user)[1] == 5 * 11  # the refused job reserved nothing


def test_queue_job_params_are_declared_per_job_type_and_bounded(api):
    """Unknown keys are never stored nor forwarded to workers or providers; a key of
    another job type is refused by the model's type; sizes are bounded."""
    user = api.user(credits=100)
    for extra in ({"callback_url": "https://evil.example/"}, {"webhook": "https://x.example"}):
        error = api.fails(
            api.post(
                "queue-job", user=user, json={"model": T2V, "params": {"prompt": "a", **extra}}
            ),
            422,
            "VALIDATION_ERROR",
        )
        assert [d["field"] for d in error["details"]] == [f"params.{next(iter(extra))}"]
    script = {"title": "t", "sections": [{"title": "s", "narration": "n"}]}
    error = api.fails(
        api.post("queue-job", user=user, json={"model": T2V, "params": {"script": script}}),
        422,
        "INVALID_PARAMS",
    )
    assert "script" in error["message"] and "prompt" in error["hint"]
    huge = {"title": "t", "sections": [{"title": "s", "narration": "n" * 500_000}]}
    error = api.fails(
        api.post(
            "queue-job", user=user, json={"model": "reference/compose", "params": {"script": huge}}
        ),
        422,
        "VALIDATION_ERROR",
    )
    assert credits_of(api, user) == (100, 0)
