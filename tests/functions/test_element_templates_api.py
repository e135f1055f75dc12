"""Element templates over real HTTP: a timeline saved with `{{name}}` merge fields (owner
only), rendered by id with values — one job, or a batch (all reserved or none) — and
values that miss a field or bring an unknown one refused with both lists before any money
moves."""

from __future__ import annotations

from typing import Any

Api = Any  # tests/functions/conftest.py's Api
COMPOSE = "reference/compose"


def balance(api: Api, user: Any) -> tuple[int, int]:
    credits = api.ok(api.get("update-credits", user=user))
    return credits["balance"], credits["reserved"]


def template_body(user_id: str) -> dict[str, Any]:
    return {
        "name": "Promo card",
        "description": "A picture with a headline",
        "resolution": "480p",
        "elements": [
            {"type": "image", "path": "{{picture}}", "start": 0, "duration": 2},
            {"type": "text", "text": "{{headline}} — {{ tagline }}", "start": 0.2,
             "duration": 1.6, "color": "{{brand_colour}}", "font_size": "{{size}}"},
        ],
    }  # fmt: skip


def test_templates_crud_is_owner_only(api: Api) -> None:
    owner, other = api.user(), api.user()
    saved = api.ok(
        api.post("queue-job/element-templates", user=owner, json=template_body(owner.id)), 201
    )
    assert saved["fields"] == ["brand_colour", "headline", "picture", "size", "tagline"]
    assert saved["settings"] == {"resolution": "480p"} and saved["user_id"] == owner.id
    tid = saved["id"]
    page = api.ok(api.get("queue-job/element-templates", user=owner))
    assert page["total"] == 1 and page["items"][0]["id"] == tid
    assert api.ok(api.get("queue-job/element-templates", user=other))["total"] == 0
    api.fails(
        api.get("queue-job/element-templates", user=other, params={"id": tid}),
        404,
        "ELEMENT_TEMPLATE_NOT_FOUND",
    )
    renamed = api.ok(
        api.request(
            "PATCH",
            "queue-job/element-templates",
            user=owner,
            params={"id": tid},
            json={"name": "Promo", "aspect_ratio": "9:16"},
        )
    )
    assert renamed["name"] == "Promo" and renamed["fields"] == saved["fields"]
    assert renamed["settings"] == {"resolution": "480p", "aspect_ratio": "9:16"}
    api.fails(
        api.request(
            "PATCH", "queue-job/element-templates", user=other, params={"id": tid},
            json={"name": "Mine now"},
        ),
        404,
        "ELEMENT_TEMPLATE_NOT_FOUND",
    )  # fmt: skip
    # A template whose shape is wrong is refused when saved (the same models as a render).
    bad = template_body(owner.id)
    bad["elements"][0]["start"] = -3
    api.fails(api.post("queue-job/element-templates", user=owner, json=bad), 422)
    api.fails(
        api.delete("queue-job/element-templates", user=other, params={"id": tid}),
        404,
        "ELEMENT_TEMPLATE_NOT_FOUND",
    )
    gone = api.ok(api.delete("queue-job/element-templates", user=owner, params={"id": tid}))
    assert gone["deleted"] is True and gone["template"]["id"] == tid
    assert api.ok(api.get("queue-job/element-templates", user=owner))["total"] == 0


def test_render_one_and_a_batch_and_refuse_wrong_fields_before_money(api: Api) -> None:
    user = api.user(credits=200)
    picture = f"{user.id}/promo.png"
    api.put_object("uploads", picture, api.png(640, 360), "image/png")
    tid = api.ok(
        api.post("queue-job/element-templates", user=user, json=template_body(user.id)), 201
    )["id"]
    values = {"picture": picture, "headline": "Hello", "tagline": "world",
              "brand_colour": "#ff0066", "size": 0.08}  # fmt: skip
    before = balance(api, user)

    # Missing and extra fields: both listed, per set, before any money moves.
    wrong = {k: v for k, v in values.items() if k != "headline"} | {"subtitle": "x"}
    error = api.fails(
        api.post(
            "queue-job/element-templates/render",
            user=user,
            json={"template_id": tid, "model": COMPOSE, "values": wrong},
        ),
        422,
        "TEMPLATE_FIELDS_MISMATCH",
    )
    assert error["details"][0]["missing"] == ["headline"]
    assert error["details"][0]["extra"] == ["subtitle"]
    error = api.fails(
        api.post(
            "queue-job/element-templates/render",
            user=user,
            json={"template_id": tid, "model": COMPOSE, "values_list": [values, {"size": 3}]},
        ),
        422,
        "TEMPLATE_FIELDS_MISMATCH",
    )
    assert [d["index"] for d in error["details"]] == [1]
    assert error["details"][0]["missing"] == ["brand_colour", "headline", "picture", "tagline"]
    # A value that makes the timeline invalid: the direct request's models say so.
    error = api.fails(
        api.post(
            "queue-job/element-templates/render",
            user=user,
            json={"template_id": tid, "model": COMPOSE,
                  "values": values | {"brand_colour": "not a colour"}},
        ),
        422,
    )  # fmt: skip
    assert "color" in str(error["details"]), error
    assert balance(api, user) == before

    # One job: rendered like a direct elements request (short: at once).
    job = api.ok(
        api.post(
            "queue-job/element-templates/render",
            user=user,
            json={"template_id": tid, "model": COMPOSE, "values": values},
        ),
        200,
    )
    assert job["status"] == "completed", job
    text = job["params"]["elements"][1]
    assert (text["text"], text["color"], text["font_size"]) == ("Hello — world", "#ff0066", 0.08)
    assert job["params"]["elements"][0]["path"] == picture
    assert job["output"]["video_url"] and job["output"]["duration_s"] > 1.5
    after_one = balance(api, user)
    assert after_one == (before[0] - job["credits_used"], 0)

    # A batch: every set one job, all reserved together.
    sets = [values | {"headline": f"Take {i}"} for i in range(3)]
    batch = api.ok(
        api.post(
            "queue-job/element-templates/render",
            user=user,
            json={"template_id": tid, "model": COMPOSE, "values_list": sets},
        ),
        202,
    )
    assert batch["title"] == "Promo card" and len(batch["jobs"]) == 3
    headlines = sorted(j["params"]["elements"][1]["text"] for j in batch["jobs"])
    assert headlines == ["Take 0 — world", "Take 1 — world", "Take 2 — world"]
    reserved = sum(j["cost"] for j in batch["jobs"])
    assert balance(api, user) == (after_one[0] - reserved, reserved)
    # Too many for the balance: none reserved (the batch rule), the 402 says the total.
    poor = api.user(credits=1)
    api.put_object("uploads", f"{poor.id}/promo.png", api.png(640, 360), "image/png")
    poor_tid = api.ok(
        api.post("queue-job/element-templates", user=poor, json=template_body(poor.id)), 201
    )["id"]
    poor_sets = [s | {"picture": f"{poor.id}/promo.png"} for s in sets]
    api.fails(
        api.post(
            "queue-job/element-templates/render",
            user=poor,
            json={"template_id": poor_tid, "model": COMPOSE, "values_list": poor_sets},
        ),
        402,
    )
    assert balance(api, poor) == (1, 0)
    # Cancel the batch: every reservation released.
    api.ok(api.delete("queue-job/batches", user=user, params={"id": batch["id"]}))
    assert balance(api, user) == (after_one[0], 0)
