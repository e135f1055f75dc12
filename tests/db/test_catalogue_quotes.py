"""The catalogue, quotes, estimates and the user's own profile, in SQL as users meet them."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

from db.helpers import (
    Conn,
    as_anon,
    as_user,
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


def test_anyone_reads_models_with_their_catalogue_fields_and_the_voices(db: Conn) -> None:
    models = {m["id"]: m for m in as_anon(db, "list_models")}
    t2v = models[T2V]
    assert {"category", "featured", "thumbnail_url", "typical_run_seconds"} <= set(t2v)
    assert {"credits_base", "credits_per_second", "max_duration_s", "resolutions"} <= set(t2v)
    voices = as_anon(db, "list_voices")
    assert {v["engine"] for v in voices} == {"espeak", "google"}
    english = as_anon(db, "list_voices", None, "en")
    assert english and all(v["language"].split("-")[0] == "en" for v in english)
    assert all(v["engine"] == "espeak" for v in as_anon(db, "list_voices", "espeak"))


def test_a_quote_prices_without_creating_anything(db: Conn, user: uuid.UUID) -> None:
    ahead = create_job(db, user)  # one already waiting for the same model
    request = [
        {"model": T2V, "params": {"prompt": "a", "duration": 4, "resolution": "480p"}},
        {"model": T2V, "params": {"prompt": "b", "duration": 8}},
    ]
    jobs_before = db.execute("select count(*) from public.jobs").fetchone()
    quote = as_user(db, user, "quote_jobs", json.dumps(request))
    assert db.execute("select count(*) from public.jobs").fetchone() == jobs_before
    first, second = quote["items"]
    assert first["params"]["resolution"] == "480p" and second["params"]["resolution"] == "720p"
    made = for_user(db, user, "service.job_create", T2V, json.dumps(request[0]["params"]))
    assert first["cost"] == made["cost"]  # what a create then charges
    assert quote["total"] == first["cost"] + second["cost"]
    assert first["queue_ahead"] == 1 and ahead["status"] == "queued"
    assert first["estimated_seconds_left"] > 0
    assert (quote["balance"], quote["affordable"]) == (profile(db, user)[0] + made["cost"], True)
    anonymous = as_anon(db, "quote_jobs", json.dumps(request))
    assert anonymous["balance"] is None and anonymous["affordable"] is None
    with raises_sqlstate("VGP22") as caught:
        as_user(db, user, "quote_jobs", json.dumps([{"model": T2V, "params": {"duration": 99}}]))
    assert json.loads(caught.value.diag.message_detail or "{}")["field"] == "items.0.params"
    with raises_sqlstate("VGM04"):
        as_user(db, user, "quote_jobs", json.dumps([{"model": "nope/none"}]))


def test_every_read_estimates_when_an_unfinished_job_is_done(db: Conn) -> None:
    user = create_user(db, credits=1000)
    worker = register_worker(db, models=[T2V], capacity=2)
    first, second, third = (create_job(db, user) for _ in range(3))
    page = {j["id"]: j for j in as_user(db, user, "list_jobs")["items"]}
    typical = db.execute(
        "select typical_run_seconds from public.models where id = %s", [T2V]
    ).fetchone()
    run = typical[0] if typical else 0
    # Two slots: the first two run side by side, the third waits one run, then runs.
    assert page[first["id"]]["estimated_seconds_left"] == run
    assert page[third["id"]]["estimated_seconds_left"] == 2 * run
    [leased, _] = claim(db, worker, 2)
    db.execute("select service.job_start(%s, %s)", [leased["id"], leased["attempt"]])
    db.execute(
        "update public.jobs set started_at = now() - interval '30 seconds' where id = %s",
        [leased["id"]],
    )
    db.execute("select service.job_progress(%s, %s, 60)", [leased["id"], leased["attempt"]])
    running = as_user(db, user, "get_job", leased["id"])
    # 60 % in 30 s: 20 s to go, from its own pace.
    assert 19 <= running["estimated_seconds_left"] <= 21
    until = datetime.fromisoformat(running["estimated_completion_at"])
    assert abs(until - datetime.now(until.tzinfo) - timedelta(seconds=20)) < timedelta(seconds=3)
    db.execute(
        "select service.job_complete(%s, %s, '{}'::jsonb, 1)", [leased["id"], leased["attempt"]]
    )
    finished = as_user(db, user, "get_job", leased["id"])
    assert finished["estimated_seconds_left"] is None and second["status"] == "queued"


def test_users_change_only_their_language_theme_and_name(
    db: Conn, user: uuid.UUID, other_user: uuid.UUID
) -> None:
    mine = as_user(db, user, "get_profile")
    assert (mine["language"], mine["theme"], mine["tier"]) == ("en", "system", "free")
    changed = as_user(db, user, "update_profile", "Ada", "fr", "dark")
    assert (changed["display_name"], changed["language"], changed["theme"]) == ("Ada", "fr", "dark")
    assert changed["balance"] == mine["balance"]
    with raises_sqlstate("23514"):
        as_user(db, user, "update_profile", None, None, "neon")
    # The column grants: balance, tier and limits are not the user's to write, even over
    # PostgREST with RLS allowing the row.
    for column, value in (("balance", 10**9), ("tier", "'pro'"), ("concurrent_job_limit", 99)):
        with raises_sqlstate("42501", case=column):
            select_as(
                db, "authenticated", user,
                f"update public.profiles set {column} = {value} where id = '{user}' returning id",
            )  # fmt: skip
    # Someone else's row is not theirs to change (RLS: zero rows).
    rows = select_as(
        db, "authenticated", user,
        "update public.profiles set theme = 'light' where id = %s returning id", [other_user],
    )  # fmt: skip
    assert rows == [] and as_user(db, other_user, "get_profile")["theme"] == "system"
