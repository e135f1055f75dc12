"""The creator's workspace over real HTTP: projects, batches, quotes, the catalogue, the
profile, and the estimates every job read carries."""

from __future__ import annotations

import uuid
from typing import Any

from videogen.config import LOCAL_PUBLISHABLE_KEY

T2V = "reference/text-to-video"
Api = Any  # tests/functions/conftest.py's Api


def item(duration: int = 2, model: str = T2V) -> dict[str, Any]:
    return {"model": model, "params": {"prompt": f"shot of {duration} s", "duration": duration}}


def test_projects_file_jobs_and_deleting_one_keeps_them(api: Api) -> None:
    user = api.user(credits=200)
    made = api.ok(
        api.post("queue-job/projects", user=user, json={"title": " Trailer ", "description": "v1"}),
        201,
    )
    assert (made["title"], made["description"], made["jobs"]) == ("Trailer", "v1", {})
    job = api.ok(
        api.post(
            "queue-job",
            user=user,
            json={"model": T2V, "params": {"prompt": "a"}, "project_id": made["id"]},
        ),
        202,
    )
    assert job["project_id"] == made["id"]
    video = api.ok(
        api.post(
            "generate-video",
            user=user,
            json={"model": T2V, "prompt": "b", "project_id": made["id"]},
        ),
        202,
    )
    api.ok(
        api.post("queue-job", user=user, json={"model": T2V, "params": {"prompt": "loose"}}), 202
    )
    page = api.ok(api.get("queue-job", user=user, params={"project_id": made["id"]}))
    assert {j["id"] for j in page["items"]} == {job["id"], video["id"]} and page["total"] == 2
    one = api.ok(api.get("queue-job/projects", user=user, params={"id": made["id"]}))
    assert sum(one["jobs"].values()) == 2
    patch = {"params": {"id": made["id"]}, "json": {"title": "Launch"}}
    renamed = api.ok(api.request("PATCH", "queue-job/projects", user=user, **patch))
    assert (renamed["title"], renamed["description"]) == ("Launch", "v1")
    listed = api.ok(api.get("queue-job/projects", user=user))
    assert [p["id"] for p in listed["items"]] == [made["id"]] and listed["has_next"] is False
    gone = api.ok(api.delete("queue-job/projects", user=user, params={"id": made["id"]}))
    assert gone["jobs_ungrouped"] == 2
    assert api.ok(api.get("queue-job", user=user))["total"] == 3  # the jobs stay
    api.fails(
        api.get("queue-job/projects", user=user, params={"id": made["id"]}),
        404,
        "PROJECT_NOT_FOUND",
    )


def test_projects_are_private_and_validated(api: Api) -> None:
    owner, stranger = api.user(), api.user(credits=50)
    project = api.ok(api.post("queue-job/projects", user=owner, json={"title": "Mine"}), 201)
    pid = project["id"]
    api.fails(
        api.get("queue-job/projects", user=stranger, params={"id": pid}), 404, "PROJECT_NOT_FOUND"
    )
    api.fails(
        api.delete("queue-job/projects", user=stranger, params={"id": pid}),
        404,
        "PROJECT_NOT_FOUND",
    )
    filed = {"model": T2V, "params": {"prompt": "x"}, "project_id": pid}
    api.fails(api.post("queue-job", user=stranger, json=filed), 404, "PROJECT_NOT_FOUND")
    api.fails(
        api.post("queue-job/projects", user=owner, json={"title": "  "}), 422, "VALIDATION_ERROR"
    )
    empty = api.request("PATCH", "queue-job/projects", user=owner, params={"id": pid}, json={})
    api.fails(empty, 422, "VALIDATION_ERROR")
    api.fails(api.get("queue-job/projects"), 401)
    # The publishable key reads the catalogue, not projects.
    anon = api.http.get(api.url("queue-job/projects"), headers={"apikey": LOCAL_PUBLISHABLE_KEY})
    api.fails(anon, 401)


def test_a_batch_is_paid_together_followed_as_one_and_canceled_as_one(api: Api) -> None:
    user = api.user(credits=100)
    project = api.ok(api.post("queue-job/projects", user=user, json={"title": "Batch"}), 201)
    body = {"items": [item(2), item(3)], "project_id": project["id"], "title": "two shots"}
    batch = api.ok(api.post("queue-job/batches", user=user, json=body), 202)
    assert (batch["jobs_total"], batch["title"], batch["project_id"]) == (
        2,
        "two shots",
        project["id"],
    )
    assert batch["cost"] == sum(j["cost"] for j in batch["jobs"])
    credits = api.ok(api.get("update-credits", user=user))
    assert (credits["balance"], credits["reserved"]) == (100 - batch["cost"], batch["cost"])
    read = api.ok(api.get("queue-job/batches", user=user, params={"id": batch["id"]}))
    assert read["counts"] == {"queued": 2} and read["percent"] == 0 and read["done"] is False
    assert api.ok(api.get("queue-job", user=user, params={"batch_id": batch["id"]}))["total"] == 2
    pages = api.ok(api.get("queue-job/batches", user=user, params={"project_id": project["id"]}))
    assert [b["id"] for b in pages["items"]] == [batch["id"]]
    canceled = api.ok(api.delete("queue-job/batches", user=user, params={"id": batch["id"]}))
    assert canceled["batch"]["counts"] == {"canceled": 2} and canceled["batch"]["done"] is True
    after = api.ok(api.get("update-credits", user=user))
    assert (after["balance"], after["reserved"]) == (100, 0)
    stranger = api.user()
    api.fails(
        api.delete("queue-job/batches", user=stranger, params={"id": batch["id"]}),
        404,
        "BATCH_NOT_FOUND",
    )


def test_a_batch_short_of_credits_says_by_how_much_and_creates_nothing(api: Api) -> None:
    user = api.user(credits=10)
    error = api.fails(
        api.post("queue-job/batches", user=user, json={"items": [item(5), item(5), item(5)]}),
        402,
        "INSUFFICIENT_CREDITS",
    )
    [detail] = error["details"]
    assert detail["balance"] == 10 and detail["required"] > 10 and detail["items"] == 3
    assert api.ok(api.get("queue-job", user=user))["total"] == 0
    bad = {"items": [item(2), {"model": T2V, "params": {"prompt": "x", "duration": 400}}]}
    error = api.fails(api.post("queue-job/batches", user=user, json=bad), 422, "INVALID_PARAMS")
    assert error["details"][0]["field"] == "items.1"
    too_many = {"items": [item(1)] * 21}
    api.fails(api.post("queue-job/batches", user=user, json=too_many), 422, "VALIDATION_ERROR")
    assert api.ok(api.get("update-credits", user=user))["balance"] == 10


def test_a_quote_prices_and_estimates_without_a_job(api: Api) -> None:
    user = api.user(credits=30)
    compose = {"model": "reference/compose", "params": {"prompt": "Tides", "duration": 20}}
    quote = api.ok(api.post("queue-job/quote", user=user, json={"items": [item(4), compose]}))
    first, composed = quote["items"]
    assert first["params"]["resolution"] == "720p" and first["cost"] > 0
    assert first["estimated_seconds_left"] >= 1 and first["queue_ahead"] >= 0
    assert "sync" not in first and isinstance(composed["sync"], bool)
    assert composed["estimated_render_seconds"] > 0
    assert quote["total"] == first["cost"] + composed["cost"]
    assert quote["balance"] == 30 and quote["affordable"] == (quote["total"] <= 30)
    made = api.ok(
        api.post("queue-job", user=user, json={"model": T2V, "params": item(4)["params"]}), 202
    )
    assert made["cost"] == first["cost"]
    api.fails(api.post("queue-job/quote", user=user, json={"items": []}), 422, "VALIDATION_ERROR")


def test_every_job_read_carries_its_estimate(api: Api) -> None:
    user = api.user(credits=50)
    model = api.test_model()  # no worker serves it: it stays queued
    job = api.ok(api.post("queue-job", user=user, json={"model": model}), 202)
    read = api.ok(api.get("queue-job", user=user, params={"id": job["id"]}))
    assert read["queue_position"] == 1 and read["estimated_seconds_left"] >= 1
    assert read["estimated_completion_at"] is not None
    listed = api.ok(api.get("generate-video", user=user))["items"][0]
    assert listed["estimated_seconds_left"] >= 1
    api.ok(api.delete("queue-job", user=user, params={"id": job["id"]}))
    done = api.ok(api.get("queue-job", user=user, params={"id": job["id"]}))
    assert done["estimated_seconds_left"] is None


def test_the_catalogue_and_the_voices_are_public(api: Api) -> None:
    headers = {"apikey": LOCAL_PUBLISHABLE_KEY}
    models = api.ok(api.http.get(api.url("queue-job/models"), headers=headers))
    featured = [m for m in models if m["featured"]]
    assert featured and all(
        {"category", "thumbnail_url", "typical_run_seconds"} <= set(m) for m in models
    )
    voices = api.ok(
        api.http.get(api.url("queue-job/voices"), headers=headers, params={"language": "en"})
    )
    assert voices and all(v["language"].startswith("en") for v in voices)
    espeak = api.ok(
        api.http.get(api.url("queue-job/voices"), headers=headers, params={"engine": "espeak"})
    )
    assert {v["engine"] for v in espeak} == {"espeak"}
    bad = api.http.get(api.url("queue-job/voices"), headers=headers, params={"engine": "sapi"})
    api.fails(bad, 422, "VALIDATION_ERROR")


def test_unknown_routes_and_methods_get_the_envelope(api: Api) -> None:
    user = api.user()
    api.fails(api.get("queue-job/nothing-here", user=user), 404, "NOT_FOUND")
    refused = api.request("PATCH", "queue-job", user=user, json={})
    api.fails(refused, 405, "METHOD_NOT_ALLOWED")
    assert set(refused.headers["Allow"].split(", ")) == {"GET", "POST", "DELETE", "OPTIONS"}
    api.fails(api.post("update-credits/profile", user=user, json={}), 405, "METHOD_NOT_ALLOWED")
    api.fails(api.get("update-credits/elsewhere", user=user), 404, "NOT_FOUND")


def test_users_change_their_language_and_theme_and_nothing_else(api: Api) -> None:
    user = api.user(credits=7)
    mine = api.ok(api.get("update-credits/profile", user=user))
    assert (mine["language"], mine["theme"], mine["tier"], mine["balance"]) == (
        "en",
        "system",
        "free",
        7,
    )
    changed = api.ok(
        api.request(
            "PATCH",
            "update-credits/profile",
            user=user,
            json={"language": "pt-BR", "theme": "dark"},
        )
    )
    assert (changed["language"], changed["theme"], changed["balance"]) == ("pt-BR", "dark", 7)
    for body in ({"tier": "pro"}, {"balance": 10**6}, {"theme": "neon"}, {"language": "not a tag"}):
        api.fails(
            api.request("PATCH", "update-credits/profile", user=user, json=body),
            422,
            "VALIDATION_ERROR",
        )
    assert api.ok(api.get("update-credits/profile", user=user))["tier"] == "free"
    assert api.sql("select theme from public.profiles where id = %s", [user.id]) == "dark"
    api.fails(api.get("update-credits/profile"), 401)
    assert uuid.UUID(mine["id"]) == uuid.UUID(user.id)
