"""Projects and batches in SQL, as users meet them: ownership by RLS, a batch reserved all
or nothing, its progress, its cancel, and what deleting a project keeps."""

from __future__ import annotations

import json
import uuid
from typing import Any

from db.helpers import (
    Conn,
    as_user,
    assert_books_balance,
    claim,
    create_job,
    create_user,
    for_user,
    profile,
    raises_sqlstate,
    register_worker,
    select_as,
)

T2V = "reference/text-to-video"


def items(*durations: int, model: str = T2V) -> list[dict[str, Any]]:
    return [{"model": model, "params": {"prompt": f"shot {d}", "duration": d}} for d in durations]


def test_projects_are_their_owners_alone(db: Conn, user: uuid.UUID, other_user: uuid.UUID) -> None:
    mine = for_user(db, user, "service.project_create", "Trailer", "cuts for the launch")
    assert (mine["title"], mine["description"], mine["jobs"]) == (
        "Trailer",
        "cuts for the launch",
        {},
    )
    theirs = for_user(db, other_user, "service.project_create", "Other")
    # RLS: a user sees their own projects only, in the list and one by one.
    listed = as_user(db, user, "list_projects")
    assert [p["id"] for p in listed["items"]] == [mine["id"]] and listed["total"] == 1
    assert as_user(db, user, "get_project", theirs["id"]) is None
    assert [
        r[0] for r in select_as(db, "authenticated", user, "select title from public.projects")
    ] == ["Trailer"]
    # Nobody changes or files work into someone else's project.
    with raises_sqlstate("VGR04"):
        for_user(db, user, "service.project_update", theirs["id"], "mine now")
    with raises_sqlstate("VGR04"):
        for_user(db, user, "service.project_delete", theirs["id"])
    with raises_sqlstate("VGR04"):
        for_user(db, user, "service.job_create", T2V, "{}", 0, theirs["id"])
    renamed = for_user(db, user, "service.project_update", mine["id"], "Launch trailer")
    assert (renamed["title"], renamed["description"]) == ("Launch trailer", "cuts for the launch")
    with raises_sqlstate("23514"):  # a blank title
        for_user(db, user, "service.project_create", "   ")


def test_jobs_filter_by_project_and_deleting_it_keeps_jobs_and_ledger(
    db: Conn, user: uuid.UUID
) -> None:
    project = for_user(db, user, "service.project_create", "Series")
    inside = for_user(
        db, user, "service.job_create", T2V, json.dumps({"prompt": "a"}), 0, project["id"]
    )
    outside = create_job(db, user)
    page = as_user(db, user, "list_jobs", None, 20, 0, project["id"])
    assert [j["id"] for j in page["items"]] == [inside["id"]] and page["total"] == 1
    assert as_user(db, user, "get_project", project["id"])["jobs"] == {"queued": 1}
    ledger_before = db.execute("select count(*) from public.credit_ledger").fetchone()
    gone = for_user(db, user, "service.project_delete", project["id"])
    assert (gone["project"]["id"], gone["jobs_ungrouped"]) == (project["id"], 1)
    assert db.execute("select count(*) from public.credit_ledger").fetchone() == ledger_before
    everything = as_user(db, user, "list_jobs")
    assert {j["id"] for j in everything["items"]} == {inside["id"], outside["id"]}
    assert all(j["project_id"] is None for j in everything["items"])
    assert_books_balance(db, user)


def test_a_batch_reserves_every_cost_together(db: Conn, user: uuid.UUID) -> None:
    project = for_user(db, user, "service.project_create", "Batch")
    batch = for_user(
        db, user, "service.batch_create", json.dumps(items(2, 3, 4)), project["id"], "three"
    )
    costs = [j["cost"] for j in batch["jobs"]]
    assert batch["jobs_total"] == 3 and batch["cost"] == sum(costs)
    assert (batch["counts"], batch["percent"], batch["done"]) == ({"queued": 3}, 0, False)
    assert {j["batch_id"] for j in batch["jobs"]} == {batch["id"]}
    assert {j["project_id"] for j in batch["jobs"]} == {project["id"]}
    assert profile(db, user) == (1000 - sum(costs), sum(costs))
    assert as_user(db, user, "list_jobs", None, 20, 0, None, batch["id"])["total"] == 3
    assert as_user(db, user, "list_batches", project["id"])["items"][0]["id"] == batch["id"]
    assert_books_balance(db, user)


def test_a_batch_short_of_credits_creates_nothing(db: Conn) -> None:
    poor = create_user(db, credits=20)
    before = db.execute("select count(*) from public.jobs").fetchone()
    with raises_sqlstate("VG402") as caught:
        for_user(db, poor, "service.batch_create", json.dumps(items(5, 5, 5)))
    detail = json.loads(caught.value.diag.message_detail or "{}")
    assert detail["balance"] == 20 and detail["required"] > 20 and detail["items"] == 3
    assert db.execute("select count(*) from public.jobs").fetchone() == before
    assert db.execute("select count(*) from public.batches").fetchone() == (0,)
    assert profile(db, poor) == (20, 0)


def test_a_bad_item_names_itself_and_creates_nothing(db: Conn, user: uuid.UUID) -> None:
    bad = [*items(2), {"model": T2V, "params": {"prompt": "x", "duration": 999}}]
    with raises_sqlstate("VGP22") as caught:
        for_user(db, user, "service.batch_create", json.dumps(bad))
    assert json.loads(caught.value.diag.message_detail or "{}")["field"] == "items.1"
    with raises_sqlstate("VGP22"):
        for_user(db, user, "service.batch_create", json.dumps(items(*range(1, 22))))  # 21 items
    assert db.execute("select count(*) from public.jobs").fetchone() == (0,)
    assert profile(db, user) == (1000, 0)


def test_a_batch_counts_against_the_concurrent_job_limit(db: Conn, user: uuid.UUID) -> None:
    db.execute("update public.profiles set concurrent_job_limit = 2 where id = %s", [user])
    with raises_sqlstate("VGJ29") as caught:
        for_user(db, user, "service.batch_create", json.dumps(items(1, 1, 1)))
    assert json.loads(caught.value.diag.message_detail or "{}") == {"unfinished": 3, "limit": 2}
    assert profile(db, user) == (1000, 0)


def test_batch_progress_and_its_broadcasts_follow_the_jobs(db: Conn, user: uuid.UUID) -> None:
    batch = for_user(db, user, "service.batch_create", json.dumps(items(2, 2)))
    worker = register_worker(db, models=[T2V], mode="pull")
    [first] = claim(db, worker, 1)
    db.execute("select service.job_start(%s, %s)", [first["id"], first["attempt"]])
    db.execute("select service.job_progress(%s, %s, 50)", [first["id"], first["attempt"]])
    now = as_user(db, user, "get_batch", batch["id"])
    assert now["counts"] == {"processing": 1, "queued": 1} and now["percent"] == 25
    db.execute(
        "select service.job_complete(%s, %s, '{}'::jsonb, 1)", [first["id"], first["attempt"]]
    )
    done = as_user(db, user, "get_batch", batch["id"])
    assert (done["counts"], done["finished"], done["percent"]) == (
        {"completed": 1, "queued": 1},
        1,
        50,
    )
    sent = db.execute(
        "select payload from realtime.messages where topic = %s and event = 'batch_progress'"
        " order by inserted_at",
        [f"user:{user}:jobs"],
    ).fetchall()
    # One per change of a job of the batch: two created, dispatched, processing, 50 %, completed.
    assert [p["percent"] for (p,) in sent][-3:] == [0, 25, 50]
    assert sent[-1][0] == {k: v for k, v in done.items() if k != "jobs"}


def test_cancel_batch_releases_every_unfinished_job(db: Conn, user: uuid.UUID) -> None:
    batch = for_user(db, user, "service.batch_create", json.dumps(items(2, 2, 2)))
    worker = register_worker(db, models=[T2V], mode="pull")
    [leased] = claim(db, worker, 1)
    db.execute("select service.job_start(%s, %s)", [leased["id"], leased["attempt"]])
    db.execute(
        "select service.job_complete(%s, %s, '{}'::jsonb, 2)", [leased["id"], leased["attempt"]]
    )
    canceled = for_user(db, user, "service.batch_cancel", batch["id"])
    assert canceled["batch"]["counts"] == {"completed": 1, "canceled": 2}
    assert canceled["batch"]["canceled_at"] is not None and canceled["batch"]["done"] is True
    assert profile(db, user) == (1000 - 2, 0)  # only what the finished job used
    other = create_user(db, credits=10)
    with raises_sqlstate("VGB04"):
        for_user(db, other, "service.batch_cancel", batch["id"])
    assert_books_balance(db, user)
