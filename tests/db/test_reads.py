"""Reads: list_jobs, get_job, get_credits, list_models — pagination and whose rows."""

from __future__ import annotations

import uuid

from db.helpers import (
    T2V,
    Conn,
    as_anon,
    as_service,
    as_user,
    create_job,
    create_user,
    dispatched_job,
    for_user,
    raises_sqlstate,
)


def test_list_jobs_pages_newest_first_and_filters(db: Conn, other_user: uuid.UUID) -> None:
    uid = create_user(db, credits=1000, job_limit=10)
    ids = [create_job(db, uid)["id"] for _ in range(5)]
    create_job(db, other_user)
    for_user(db, uid, "service.job_cancel", ids[0])

    page1 = as_user(db, uid, "list_jobs", None, 2, 0)
    page3 = as_user(db, uid, "list_jobs", None, 2, 4)
    assert page1["total"] == 5
    assert [j["id"] for j in page1["items"]] == [ids[4], ids[3]]
    assert [j["id"] for j in page3["items"]] == [ids[0]]
    assert page1["items"][0]["queue_position"] == 4

    queued = as_user(db, uid, "list_jobs", "queued")
    assert (queued["total"], len(queued["items"])) == (4, 4)
    canceled = as_user(db, uid, "list_jobs", "canceled")
    assert [j["id"] for j in canceled["items"]] == [ids[0]]

    clamped = as_user(db, uid, "list_jobs", None, 0, -3)
    assert len(clamped["items"]) == 1  # limit at least 1, offset at least 0
    assert as_user(db, uid, "list_jobs", None, 1000)["items"][-1]["id"] == ids[0]
    assert as_user(db, uid, "list_jobs", None, 20, 50)["items"] == []


def test_get_job_shows_own_job_with_events_and_hides_others(
    db: Conn, user: uuid.UUID, other_user: uuid.UUID
) -> None:
    job, _ = dispatched_job(db, user)
    as_service(db, "service.job_progress", job["id"], 1, 40)
    mine = as_user(db, user, "get_job", job["id"])
    assert mine["status"] == "processing"
    assert [e["event"] for e in mine["events"]] == ["created", "dispatched", "processing"]
    assert "user_id" not in mine["events"][0]
    assert "provider_job_id" not in mine
    assert as_user(db, other_user, "get_job", job["id"]) is None
    assert as_user(db, user, "get_job", str(uuid.uuid4())) is None
    with raises_sqlstate("42501"):
        as_anon(db, "get_job", job["id"])
    assert as_service(db, "service.job_get_any", job["id"])["model"]["id"] == T2V


def test_get_credits_pages_the_ledger(db: Conn) -> None:
    uid = create_user(db)
    for_user(db, uid, "service.initial_grant_claim")
    for n in range(3):
        as_service(db, "service.credits_purchase", uid, f"tx-{n}", 10)
    job = create_job(db, uid)

    page = as_user(db, uid, "get_credits", 2, 0)
    assert (page["balance"], page["reserved"], page["total"]) == (119, 11, 5)
    assert page["initial_grant_claimed"] is True
    assert [i["kind"] for i in page["items"]] == ["reserve", "purchase"]
    assert page["items"][0]["job_id"] == job["id"]
    assert "user_id" not in page["items"][0]
    rest = as_user(db, uid, "get_credits", 2, 4)
    assert [i["kind"] for i in rest["items"]] == ["initial_grant"]
    assert as_user(db, create_user(db), "get_credits")["items"] == []


def test_list_models_shows_available_models_to_anyone(db: Conn, user: uuid.UUID) -> None:
    db.execute("update public.models set is_available = false where id = 'runway/gen4-turbo'")
    for models in (as_anon(db, "list_models"), as_user(db, user, "list_models")):
        ids = [m["id"] for m in models]
        assert T2V in ids and "runway/gen4-turbo" not in ids
        # Featured first, then by category and id.
        order = [(not m["featured"], m["category"], m["id"]) for m in models]
        assert order == sorted(order)
        assert all("provider_model_id" not in m for m in models)
