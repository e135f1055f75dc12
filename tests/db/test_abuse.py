"""Nobody gets a queue place, compute or table rights they did not pay for (module 3, 6).

The tier bounds the priority a user may set; a caller's `max_credits` and the tier's
daily cap bound what one create may spend, in the same transaction as the reserve;
anon and authenticated hold no TRUNCATE, REFERENCES or TRIGGER on any of our tables,
new ones included.
"""

from __future__ import annotations

import json
import uuid

from helpers import (
    T2V,
    Conn,
    as_service,
    assert_books_balance,
    create_job,
    create_user,
    dispatched_job,
    for_user,
    profile,
    raises_sqlstate,
)

TEN_S = {"duration": 10, "resolution": "480p"}  # 2 + 10 = 12 credits
BATCH_ITEM = {
    "model": T2V,
    "params": {"duration": 5, "resolution": "480p"},
}  # 2 + 5 = 7 credits at 480p


def _set_tier(db: Conn, uid: uuid.UUID, tier: str) -> None:
    db.execute("update public.profiles set tier = %s where id = %s", (tier, uid))


def _spent(db: Conn, uid: uuid.UUID) -> list[int]:
    """What each day's jobs committed, newest day first."""
    rows = db.execute(
        "select committed from private.spend_days where user_id = %s order by day desc", (uid,)
    ).fetchall()
    return [r[0] for r in rows]


def _detail(error: object) -> dict[str, object]:
    detail: dict[str, object] = json.loads(error.diag.message_detail)  # type: ignore[attr-defined]
    return detail


# Queue places -----------------------------------------------------------------------------


def test_the_tier_bounds_the_priority_a_user_may_set(db: Conn) -> None:
    free = create_user(db, credits=100)
    with raises_sqlstate("VGQ03") as refused:
        for_user(db, free, "service.job_create", T2V, {}, 1)
    assert _detail(refused.value) == {"priority": 1, "max_priority": 0, "tier": "free"}
    assert profile(db, free) == (100, 0)  # nothing reserved
    assert for_user(db, free, "service.job_create", T2V, {}, 0)["priority"] == 0
    assert (
        for_user(db, free, "service.job_create", T2V, {}, -20)["priority"] == -20
    )  # yielding is free

    premium = create_user(db, credits=100)
    _set_tier(db, premium, "premium")
    assert for_user(db, premium, "service.job_create", T2V, {}, 50)["priority"] == 50
    with raises_sqlstate("VGQ03"):
        for_user(db, premium, "service.job_create", T2V, {}, 51)

    # A tier without a row of its own has the free tier's bound.
    _set_tier(db, premium, "legacy")
    with raises_sqlstate("VGQ03"):
        for_user(db, premium, "service.job_create", T2V, {}, 1)


def test_a_batch_item_is_bounded_like_a_job(db: Conn) -> None:
    uid = create_user(db, credits=100)
    items = [BATCH_ITEM, {**BATCH_ITEM, "priority": 100}]
    with raises_sqlstate("VGQ03"):
        for_user(db, uid, "service.batch_create", items)
    assert profile(db, uid) == (100, 0)


def test_admins_and_the_service_may_set_any_priority(db: Conn) -> None:
    admin = create_user(db, credits=100)
    with db.transaction():
        claims = {"sub": str(admin), "role": "authenticated", "app_metadata": {"role": "admin"}}
        db.execute(
            "select set_config('request.jwt.claims', %s, true),"
            " set_config('role', 'service_role', true)",
            (json.dumps(claims),),
        )
        row = db.execute("select service.job_create(%s, '{}', 100)", (T2V,)).fetchone()
    assert row is not None and row[0]["priority"] == 100


# Spend caps -------------------------------------------------------------------------------


def test_max_credits_refuses_a_job_that_costs_more(db: Conn) -> None:
    uid = create_user(db, credits=100)
    with raises_sqlstate("VGS02") as refused:
        for_user(db, uid, "service.job_create", T2V, TEN_S, 0, None, 11)  # costs 12
    assert _detail(refused.value) == {"cost": 12, "max_credits": 11}
    assert profile(db, uid) == (100, 0)
    job = for_user(db, uid, "service.job_create", T2V, TEN_S, 0, None, 12)
    assert job["cost"] == 12
    with raises_sqlstate("VGS02"):  # a batch's max_credits is for all its jobs
        for_user(db, uid, "service.batch_create", [BATCH_ITEM, BATCH_ITEM], None, None, 13)
    assert profile(db, uid) == (88, 12)


def test_the_daily_cap_counts_what_was_committed_today(db: Conn) -> None:
    """Today's jobs at their cost, less what they gave back when they ended; one row a day."""
    db.execute("update private.tier_limits set daily_spend_credits = 30 where tier = 'free'")
    uid = create_user(db, credits=500)
    first = create_job(db, uid, params=TEN_S)  # 12
    create_job(db, uid, params=TEN_S)  # 24
    with raises_sqlstate("VGS29") as refused:
        create_job(db, uid, params=TEN_S)  # would be 36
    detail = _detail(refused.value)
    assert {k: detail[k] for k in ("spent_today", "cost", "daily_limit", "tier")} == {
        "spent_today": 24,
        "cost": 12,
        "daily_limit": 30,
        "tier": "free",
    }
    assert 0 < int(detail["retry_after"]) <= 86400  # type: ignore[call-overload]
    assert profile(db, uid) == (476, 24)
    # A canceled job gives its place back; yesterday's jobs do not count.
    for_user(db, uid, "service.job_cancel", first["id"])
    assert _spent(db, uid) == [12]
    create_job(db, uid, params=TEN_S)
    db.execute(  # the day's count as it stands at midnight: tomorrow starts at zero
        "update private.spend_days set day = day - 1 where user_id = %s", (uid,)
    )
    create_job(db, uid, params=TEN_S)
    assert _spent(db, uid) == [12, 24]  # today, yesterday
    assert_books_balance(db, uid)
    # No cap for a tier whose row says none.
    db.execute("update private.tier_limits set daily_spend_credits = null where tier = 'free'")
    create_job(db, uid, params={"duration": 30, "resolution": "480p"})


def test_a_completed_job_counts_what_it_used(db: Conn) -> None:
    uid = create_user(db, credits=100)
    job, _ = dispatched_job(db, uid, params=TEN_S)  # 12 reserved
    as_service(db, "service.job_start", job["id"], 1)
    as_service(db, "service.job_complete", job["id"], 1, {"video_path": f"{uid}/x.mp4"}, 5)
    assert _spent(db, uid) == [5]  # the 7 it did not use were given back
    assert_books_balance(db, uid)


def test_the_daily_cap_holds_for_a_batch(db: Conn) -> None:
    db.execute("update private.tier_limits set daily_spend_credits = 20 where tier = 'free'")
    uid = create_user(db, credits=100)
    with raises_sqlstate("VGS29"):
        for_user(db, uid, "service.batch_create", [BATCH_ITEM] * 3)  # 21
    assert profile(db, uid) == (100, 0)
    for_user(db, uid, "service.batch_create", [BATCH_ITEM] * 2)


# Table rights -----------------------------------------------------------------------------


UNNEEDED = ("TRUNCATE", "REFERENCES", "TRIGGER")


def test_clients_hold_no_truncate_references_or_trigger_on_our_tables(db: Conn) -> None:
    rows = db.execute(
        """
        select c.oid::regclass::text, r.rolname, p.privilege_type
          from pg_class c
          join pg_namespace n on n.oid = c.relnamespace
          cross join (select rolname from pg_roles where rolname in ('anon', 'authenticated')) r
          cross join unnest(%s::text[]) p(privilege_type)
         where n.nspname in ('public', 'private') and c.relkind in ('r', 'p', 'v', 'm')
           and has_table_privilege(r.rolname, c.oid, p.privilege_type)
        """,
        (list(UNNEEDED),),
    ).fetchall()
    assert rows == []
    # A table a later migration creates starts without them too (default privileges).
    db.execute("create table public.a_later_table (id int primary key)")
    later = db.execute(
        "select has_table_privilege('authenticated', 'public.a_later_table', 'TRUNCATE'),"
        " has_table_privilege('anon', 'public.a_later_table', 'TRIGGER'),"
        " has_table_privilege('service_role', 'public.a_later_table', 'TRUNCATE')"
    ).fetchone()
    assert later == (False, False, True)


def test_free_grants_and_tier_limits_are_service_only(db: Conn) -> None:
    rows = db.execute(
        "select has_table_privilege(r, t, 'SELECT') from unnest(array['anon', 'authenticated']) r,"
        " unnest(array['private.free_grants', 'private.tier_limits']) t"
    ).fetchall()
    assert rows == [(False,)] * 4
    uid = create_user(db)
    as_service(db, "service.credits_grant", uid, 5, "g-1")
    assert profile(db, uid) == (5, 0)
