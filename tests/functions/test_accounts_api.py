"""A user's account as a whole, over real HTTP on a real database (issue 23): personal API
keys, sorted lists with their page numbers, the export of everything held about a user,
the deletion of an account (a fresh sign-in required, the books kept balanced), and share
links to a finished video."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
from supabase_auth import SyncGoTrueClient

from videogen.config import LOCAL_JWT_SECRET, LOCAL_PUBLISHABLE_KEY
from videogen.kit.auth import issue_access_token

Api = Any  # tests/functions/conftest.py's Api (conftest modules are not imported)

MP4 = b"\x00\x00\x00\x18ftypmp42"
PASSWORD = "correct horse battery staple"


def make_key(api: Api, user: Any, **body: Any) -> dict[str, Any]:
    created: dict[str, Any] = api.ok(api.post("update-credits/api-keys", user=user, json=body), 201)
    return created


def with_key(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_job(api: Api, headers: dict[str, str], model: str, duration: int = 2) -> httpx.Response:
    return api.post(
        "queue-job",
        headers=headers,
        json={"model": model, "params": {"prompt": "a paper boat", "duration": duration}},
    )


def report(api: Api, job: dict[str, Any], kind: str, **fields: Any) -> Any:
    body = {"type": kind, "job_id": job["id"], "attempt": job["attempt"], **fields}
    return api.ok(api.signed("job-callback", body))


def finished_video(api: Api, user: Any) -> tuple[dict[str, Any], str, str]:
    """A completed job of ``user`` whose video and thumbnail are in storage."""
    job, _ = api.claimed_job(user)
    video, thumb = f"{user.id}/{job['id']}.mp4", f"{user.id}/{job['id']}.jpg"
    api.put_object("videos", video, MP4, "video/mp4")
    api.put_object("thumbnails", thumb, api.png(), "image/png")
    output = {"video_path": video, "thumbnail_path": thumb}
    assert report(api, job, "completed", output=output, credits_used=3)["applied"]
    return job, video, thumb


# Personal API keys --------------------------------------------------------------------------


def test_a_personal_key_creates_a_job_as_its_owner_and_is_shown_once(api: Api) -> None:
    user = api.user(credits=100)
    model = api.test_model()
    created = make_key(api, user, name="render farm")
    key = created["key"]
    assert key.startswith("vg_live_") and len(key) == 51
    assert created["masked"] == f"vg_live_…{key[-4:]}" and created["scopes"] == ["jobs", "read"]
    assert created["state"] == "active" and created["expires_at"] is None

    job = api.ok(new_job(api, with_key(key), model), 202)
    mine = api.ok(api.get("queue-job", user=user, params={"id": job["id"]}))
    assert mine["id"] == job["id"]  # the owner's own session sees it: the same identity
    # X-API-Key works too, and a key reads like its owner.
    listed = api.ok(api.get("queue-job", headers={"X-API-Key": key}))
    assert [j["id"] for j in listed["items"]] == [job["id"]]

    keys = api.get("update-credits/api-keys", user=user)
    shown = api.ok(keys)["keys"]
    assert [k["id"] for k in shown] == [created["id"]]
    assert "key" not in shown[0] and shown[0]["masked"] == created["masked"]
    assert key not in keys.text and key[8:-4] not in keys.text
    assert shown[0]["last_used_at"] is not None
    stored = api.sql("select key_hash from public.api_keys where id = %s", [created["id"]])
    assert stored != key and len(stored) == 64
    assert key not in api.server.logs()


def test_a_read_only_key_reads_but_cannot_create_a_job(api: Api) -> None:
    user = api.user(credits=100)
    model = api.test_model()
    key = make_key(api, user, scopes=["read"])["key"]
    api.ok(api.get("queue-job", headers=with_key(key)))
    api.ok(api.get("update-credits", headers=with_key(key)))
    error = api.fails(new_job(api, with_key(key), model), 403, "API_KEY_SCOPE")
    assert "jobs" in error["message"]
    assert api.sql("select count(*) from public.jobs where user_id = %s", [user.id]) == 0
    # Money, keys and the account are a session's, whatever the key's scopes.
    api.fails(api.post("update-credits/api-keys", headers=with_key(key), json={}), 403,
              "SESSION_REQUIRED")  # fmt: skip
    api.fails(api.get("update-credits/account", headers=with_key(key)), 403, "SESSION_REQUIRED")


def test_a_revoked_key_and_an_expired_key_are_401(api: Api) -> None:
    user = api.user(credits=100)
    revoked = make_key(api, user)
    api.ok(api.get("queue-job", headers=with_key(revoked["key"])))
    gone = api.ok(api.delete("update-credits/api-keys", user=user, params={"id": revoked["id"]}))
    assert gone["state"] == "revoked" and gone["revoked_at"]
    api.fails(api.get("queue-job", headers=with_key(revoked["key"])), 401, "API_KEY_REVOKED")

    expiring = make_key(api, user, expires_in_seconds=3600)
    api.ok(api.get("queue-job", headers=with_key(expiring["key"])))
    api.sql(
        "update public.api_keys set created_at = now() - interval '2 hours', "
        "expires_at = now() - interval '1 second' where id = %s",
        [expiring["id"]],
    )
    api.fails(api.get("queue-job", headers=with_key(expiring["key"])), 401, "API_KEY_EXPIRED")
    states = {
        k["id"]: k["state"] for k in api.ok(api.get("update-credits/api-keys", user=user))["keys"]
    }
    assert states == {revoked["id"]: "revoked", expiring["id"]: "expired"}

    made_up = "vg_live_" + "A" * 43
    api.fails(api.get("queue-job", headers=with_key(made_up)), 401, "INVALID_API_KEY")
    other = api.user()  # someone else's key id is not yours to revoke
    api.fails(
        api.delete("update-credits/api-keys", user=other, params={"id": expiring["id"]}),
        404,
        "API_KEY_NOT_FOUND",
    )


def test_active_keys_are_capped_per_user(api: Api) -> None:
    user = api.user()
    cap = int(
        api.sql(
            "select (value #>> '{}')::int from private.settings where name = 'api_keys_active_max'"
        )
    )
    for _ in range(cap):
        make_key(api, user)
    api.fails(api.post("update-credits/api-keys", user=user, json={}), 409, "API_KEY_LIMIT")
    api.fails(
        api.post("update-credits/api-keys", user=user, json={"scopes": ["admin"]}),
        422,
        "VALIDATION_ERROR",
    )


# Lists --------------------------------------------------------------------------------------


def test_jobs_sort_by_each_field_both_ways_with_page_numbers(api: Api) -> None:
    user = api.user(credits=500)
    model = api.test_model()
    made = [api.ok(new_job(api, user.headers, model, duration=d), 202) for d in (3, 1, 5, 2, 4)]
    api.ok(api.delete("queue-job", user=user, params={"id": made[1]["id"]}))
    api.ok(api.delete("queue-job", user=user, params={"id": made[3]["id"]}))
    rows = {
        j["id"]: j for j in api.ok(api.get("queue-job", user=user, params={"limit": 100}))["items"]
    }
    status_rank = ["queued", "dispatched", "processing", "completed", "failed", "canceled"]
    keys = {
        "created": lambda j: j["created_at"],
        "updated": lambda j: j["updated_at"],
        "status": lambda j: status_rank.index(j["status"]),
        "cost": lambda j: j["cost"],
    }
    for sort, key in keys.items():
        for order in ("asc", "desc"):
            seen: list[str] = []
            for page in (1, 2, 3):
                got = api.ok(
                    api.get(
                        "queue-job",
                        user=user,
                        params={"sort": sort, "order": order, "limit": 2, "page": page},
                    )
                )
                assert (got["total"], got["total_pages"]) == (5, 3)
                assert got["has_prev"] is (page > 1) and got["has_next"] is (page < 3)
                seen += [j["id"] for j in got["items"]]
            values = [key(rows[i]) for i in seen]
            assert values == sorted(values, reverse=order == "desc"), (sort, order)
            assert sorted(seen) == sorted(rows)
    error = api.fails(api.get("queue-job", user=user, params={"sort": "prompt"}), 422)
    assert "'created', 'updated', 'status' or 'cost'" in error["details"][0]["message"]
    api.fails(api.get("queue-job", user=user, params={"order": "up"}), 422, "VALIDATION_ERROR")
    legacy = api.ok(api.get("generate-video", user=user, params={"page": 1, "limit": 20}))
    assert [j["id"] for j in legacy["items"]] == [m["id"] for m in reversed(made)]
    empty = api.ok(api.get("queue-job", user=api.user(), params={"limit": 5}))
    assert (empty["total_pages"], empty["has_prev"], empty["has_next"]) == (0, False, False)


def test_projects_batches_the_ledger_and_the_admin_list_sort_too(api: Api) -> None:
    user = api.user(credits=500)
    model = api.test_model()
    for title in ("b", "c", "a"):
        api.ok(api.post("queue-job/projects", user=user, json={"title": title}), 201)
    titles = api.ok(
        api.get("queue-job/projects", user=user, params={"sort": "title", "order": "asc"})
    )
    assert [p["title"] for p in titles["items"]] == ["a", "b", "c"] and titles["total_pages"] == 1
    api.fails(api.get("queue-job/projects", user=user, params={"sort": "cost"}), 422)
    item = {"model": model, "params": {"prompt": "x", "duration": 1}}
    big = {"model": model, "params": {"prompt": "x", "duration": 5}}
    for items in ([item], [big, big], [item, big]):
        api.ok(api.post("queue-job/batches", user=user, json={"items": items}), 202)
    batches = api.ok(
        api.get("queue-job/batches", user=user, params={"sort": "cost", "order": "desc"})
    )
    costs = [b["cost"] for b in batches["items"]]
    assert costs == sorted(costs, reverse=True) and len(costs) == 3

    ledger = api.ok(
        api.get("update-credits", user=user, params={"sort": "amount", "order": "asc", "limit": 3})
    )["ledger"]
    amounts = [e["amount"] for e in ledger["items"]]
    assert amounts == sorted(amounts) and amounts[0] < 0 and ledger["has_next"]
    assert ledger["total_pages"] == -(-ledger["total"] // 3) and not ledger["has_prev"]
    api.fails(api.get("update-credits", user=user, params={"sort": "cost"}), 422)

    admin = api.user()
    token = issue_access_token(admin.id, email=admin.email, app_metadata={"role": "admin"})
    everyone = api.ok(
        api.get(
            "queue-job/admin/jobs",
            headers={"Authorization": f"Bearer {token}"},
            params={"user_id": user.id, "sort": "cost", "order": "asc", "limit": 100},
        )
    )
    admin_costs = [j["cost"] for j in everyone["items"]]
    assert admin_costs == sorted(admin_costs) and len(admin_costs) == 5


# Export and deletion --------------------------------------------------------------------------

COUNTED = {
    "jobs": "select count(*) from public.jobs where user_id = %s",
    "job_events": "select count(*) from public.job_events where user_id = %s",
    "credit_ledger": "select count(*) from public.credit_ledger where user_id = %s",
    "projects": "select count(*) from public.projects where user_id = %s",
    "batches": "select count(*) from public.batches where user_id = %s",
    "api_keys": "select count(*) from public.api_keys where user_id = %s",
    "share_links": "select count(*) from public.share_links where user_id = %s",
    "job_usage": "select count(*) from private.job_usage u join public.jobs j on j.id = u.job_id "
    "where j.user_id = %s",
    "free_grants": "select count(*) from private.free_grants where user_id = %s",
    "spend_days": "select count(*) from private.spend_days where user_id = %s",
    "files": "select count(*) from storage.objects where (storage.foldername(name))[1] = %s::text",
}


def test_the_export_holds_every_row_of_the_user_and_none_of_anothers(api: Api) -> None:
    user, other = api.user(credits=100), api.user(credits=100)
    job, video, _ = finished_video(api, user)
    api.ok(api.post("queue-job/projects", user=user, json={"title": "mine"}), 201)
    make_key(api, user, scopes=["read"])
    api.ok(api.post("queue-job/share-links", user=user, json={"job_id": job["id"]}), 201)
    api.put_object("uploads", f"{user.id}/still.png", api.png(), "image/png")
    theirs = api.ok(new_job(api, other.headers, api.test_model()), 202)

    resp = api.get("update-credits/account", user=user)
    data = api.ok(resp)
    assert resp.headers["content-disposition"].startswith("attachment;")
    assert resp.headers["cache-control"] == "no-store"
    for table, query in COUNTED.items():
        expected = api.sql(query, [user.id])
        assert data["counts"][table] == expected == len(data[table]), table
    assert data["counts"]["jobs"] >= 1 and data["counts"]["credit_ledger"] >= 3
    assert data["user"]["email"] == user.email and data["profile"]["id"] == user.id
    assert {f["path"] for f in data["files"]} >= {video, f"{user.id}/still.png"}
    assert all(f["url"] for f in data["files"])
    assert httpx.get(next(f["url"] for f in data["files"] if f["path"] == video)).content == MP4
    assert "key_hash" not in resp.text and other.id not in resp.text
    assert theirs["id"] not in resp.text


def sign_up(api: Api) -> tuple[SyncGoTrueClient, str, str]:
    """A user made through the Auth API with a password: (client, id, access token)."""
    client = SyncGoTrueClient(
        url=f"{api.server.base}/auth/v1",
        headers={"apikey": LOCAL_PUBLISHABLE_KEY},
        auto_refresh_token=False,
        persist_session=True,
    )
    email = f"d-{uuid.uuid4().hex[:12]}@example.test"
    session = client.sign_up({"email": email, "password": PASSWORD}).session
    assert session is not None
    return client, session.user.id, session.access_token


def stale(token: str, minutes: int) -> str:
    """The same claims, as if the sign-in had happened ``minutes`` ago (signed HS256 with the
    local secret, which the functions accept like the Auth API's own tokens)."""
    claims = jwt.decode(token, options={"verify_signature": False})
    signed_in = int(time.time()) - minutes * 60
    claims["amr"] = [{"method": "password", "timestamp": signed_in}]
    return jwt.encode(claims, LOCAL_JWT_SECRET, algorithm="HS256")


def test_deleting_an_account_needs_a_fresh_sign_in_and_keeps_the_books(api: Api) -> None:
    client, user_id, token = sign_up(api)
    try:
        headers = {"Authorization": f"Bearer {token}"}
        api.sql("select service.credits_grant(%s, %s, %s)", [user_id, 100, f"t-{uuid.uuid4().hex}"])
        user = type("U", (), {"id": user_id, "headers": headers})()
        job, video, thumb = finished_video(api, user)
        upload = f"{user_id}/still.png"
        api.put_object("uploads", upload, api.png(), "image/png")
        api.ok(api.post("queue-job/projects", headers=headers, json={"title": "mine"}), 201)
        make_key(api, user)
        ledger_rows = api.sql(
            "select count(*) from public.credit_ledger where user_id = %s", [user_id]
        )

        old = {"Authorization": f"Bearer {stale(token, 30)}"}
        api.fails(api.delete("update-credits/account", headers=old), 403,
                  "REAUTHENTICATION_REQUIRED")  # fmt: skip
        assert api.has_object("videos", video)

        fresh = client.sign_in_with_password(
            {"email": client.get_user().user.email, "password": PASSWORD}
        ).session
        assert fresh is not None
        gone = api.ok(
            api.delete(
                "update-credits/account",
                headers={"Authorization": f"Bearer {fresh.access_token}"},
            )
        )
    finally:
        client._http_client.close()
    assert gone["deleted"] is True and gone["files_removed"] == 3 and gone["jobs_erased"] == 1
    for bucket, path in (("videos", video), ("thumbnails", thumb), ("uploads", upload)):
        assert not api.has_object(bucket, path)
    assert api.sql("select count(*) from auth.users where id = %s", [user_id]) == 0
    assert api.sql("select count(*) from public.profiles where id = %s", [user_id]) == 0
    for table in ("projects", "api_keys", "job_events"):
        assert api.sql(f"select count(*) from public.{table} where user_id = %s", [user_id]) == 0
    # The books keep the rows, without the person: no prompt, no files, no auth user.
    assert (
        api.sql("select count(*) from public.credit_ledger where user_id = %s", [user_id])
        == ledger_rows
    )
    kept = api.sql("select to_jsonb(j) from public.jobs j where id = %s", [job["id"]])
    assert kept["params"] == {} and kept["output"] is None and kept["deleted_at"]
    api.fails(
        api.get("queue-job", headers={"Authorization": f"Bearer {fresh.access_token}"}),
        401,
    )
    # The autouse fixture runs the money audit after the test: it must find nothing.


def test_deletion_waits_for_running_jobs(api: Api) -> None:
    client, user_id, token = sign_up(api)
    client._http_client.close()
    api.sql("select service.credits_grant(%s, %s, %s)", [user_id, 50, f"t-{uuid.uuid4().hex}"])
    headers = {"Authorization": f"Bearer {token}"}
    job = api.ok(new_job(api, headers, api.test_model()), 202)
    api.fails(api.delete("update-credits/account", headers=headers), 409, "ACCOUNT_BUSY")
    assert api.sql("select count(*) from auth.users where id = %s", [user_id]) == 1
    api.ok(api.delete("queue-job", headers=headers, params={"id": job["id"]}))


# Share links ----------------------------------------------------------------------------------


def test_a_share_link_serves_the_video_anonymously_until_revoked(api: Api) -> None:
    user = api.user(credits=100)
    job, _, _ = finished_video(api, user)
    link = api.ok(api.post("queue-job/share-links", user=user, json={"job_id": job["id"]}), 201)
    assert (
        len(link["id"]) >= 22
        and link["state"] == "active"
        and "/queue-job/shared?id=" in link["url"]
    )

    anonymous = httpx.get(link["url"], follow_redirects=False)
    assert anonymous.status_code == 302
    cache = anonymous.headers["cache-control"]
    assert cache.startswith("public, max-age=") and 0 < int(cache.split("=")[1]) <= 300
    assert httpx.get(anonymous.headers["location"]).content == MP4
    meta = api.ok(httpx.get(link["url"] + "&format=json"))
    assert meta["job_id"] == job["id"] and meta["video_url"] and meta["thumbnail_url"]

    listed = api.ok(api.get("queue-job/share-links", user=user))["links"]
    assert [(s["id"], s["state"]) for s in listed] == [(link["id"], "active")]
    api.fails(
        api.delete("queue-job/share-links", user=api.user(), params={"id": link["id"]}),
        404,
        "SHARE_LINK_NOT_FOUND",
    )
    api.ok(api.delete("queue-job/share-links", user=user, params={"id": link["id"]}))
    after = httpx.get(link["url"], follow_redirects=False)
    api.fails(after, 410, "SHARE_LINK_GONE")
    assert after.headers["cache-control"] == "no-store"
    unknown = httpx.get(link["url"].split("?")[0] + "?id=" + "x" * 32)
    api.fails(unknown, 404, "SHARE_LINK_NOT_FOUND")
    assert unknown.headers["cache-control"] == "no-store"


def test_a_share_link_expires_and_only_finished_videos_are_shared(api: Api) -> None:
    user = api.user(credits=100)
    job, _, _ = finished_video(api, user)
    link = api.ok(
        api.post(
            "queue-job/share-links",
            user=user,
            json={"job_id": job["id"], "expires_in_seconds": 120},
        ),
        201,
    )
    first = httpx.get(link["url"], follow_redirects=False)
    assert first.status_code == 302 and int(first.headers["cache-control"].split("=")[1]) <= 120
    api.sql(
        "update public.share_links set created_at = now() - interval '1 hour', "
        "expires_at = now() - interval '1 second' where id = %s",
        [link["id"]],
    )
    api.fails(httpx.get(link["url"], follow_redirects=False), 410, "SHARE_LINK_GONE")
    running = api.ok(new_job(api, user.headers, api.test_model()), 202)
    api.fails(
        api.post("queue-job/share-links", user=user, json={"job_id": running["id"]}),
        409,
        "JOB_NOT_SHAREABLE",
    )
    api.ok(api.delete("queue-job", user=user, params={"id": running["id"]}))
    api.fails(
        api.post("queue-job/share-links", user=api.user(), json={"job_id": job["id"]}),
        404,
        "JOB_NOT_FOUND",
    )
