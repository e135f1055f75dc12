"""Subscriptions and tiers in SQL (sql/schema/16_purchases.sql, 13_media_lifecycle.sql): the
profile's tier is the best among active subscriptions; a period's credits are granted once
and clawed back once; the tier sets the concurrency limit and how long outputs are kept."""

from __future__ import annotations

import uuid
from typing import Any

from db.helpers import Conn, as_service, assert_books_balance, dispatched_job

PREMIUM = "price_premium_monthly"


def record(db: Conn, user: uuid.UUID | None, sub_id: str, status: str, **kw: Any) -> Any:
    return as_service(
        db,
        "service.subscription_record",
        "stripe",
        sub_id,
        kw.pop("product", PREMIUM),
        status,
        kw.pop("event_at", "now()"),
        str(user) if user else None,
        kw.pop("period_end", None),
        kw.pop("period_id", None),
    )


def tier(db: Conn, user: uuid.UUID) -> tuple[str, int]:
    row = db.execute(
        "select tier, concurrent_job_limit from public.profiles where id = %s", (user,)
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_the_best_active_subscription_decides_the_tier(db: Conn, user: uuid.UUID) -> None:
    assert tier(db, user) == ("free", 5)
    out = record(db, user, "sub_a", "active", period_end="2999-01-01T00:00:00Z")
    assert out["tier"] == "premium" and tier(db, user) == ("premium", 20)
    record(db, user, "sub_b", "canceled", period_end="2999-01-01T00:00:00Z")
    assert tier(db, user)[0] == "premium"  # one active subscription is enough
    record(db, user, "sub_a", "past_due")  # the store retries the payment: still premium
    assert tier(db, user)[0] == "premium"
    record(db, user, "sub_a", "canceled")
    assert tier(db, user) == ("free", 5)
    # A period that ended is no tier, whatever its last status said; the sweep notices.
    record(db, user, "sub_c", "active", period_end="2999-01-01T00:00:00Z")
    db.execute(
        "update private.subscriptions set current_period_end = now() - interval '1 second'"
        " where subscription_id = 'sub_c'"
    )
    assert as_service(db, "service.subscriptions_expire") == 1
    assert tier(db, user)[0] == "free"


def test_a_period_grants_once_and_another_account_cannot_take_it(
    db: Conn, user: uuid.UUID, other_user: uuid.UUID
) -> None:
    first = record(db, user, "sub_p", "active", period_id="invoice:in_1")
    assert first["applied"] is True and first["entry"]["amount"] == 1000
    assert record(db, user, "sub_p", "active", period_id="invoice:in_1")["applied"] is False
    # An event without a user credits whoever the subscription was recorded for.
    assert record(db, None, "sub_p", "active", period_id="invoice:in_2")["applied"] is True
    stolen = db.execute(
        "select count(*) from public.credit_ledger where user_id = %s and kind = 'purchase'",
        (other_user,),
    ).fetchone()
    assert stolen is not None and stolen[0] == 0
    try:
        record(db, other_user, "sub_p", "active", period_id="invoice:in_3")
    except Exception as exc:  # VGC09: the subscription is another account's
        assert getattr(exc, "sqlstate", None) == "VGC09"
    else:
        raise AssertionError("another account took a subscription's period")
    unknown = record(db, user, "sub_x", "active", product="price_nothing")
    assert unknown == {"applied": False, "reason": "product price_nothing gives no tier here"}
    assert_books_balance(db, user)


def test_outputs_are_kept_as_long_as_the_tier_and_the_deployment_say(
    db: Conn, user: uuid.UUID, other_user: uuid.UUID
) -> None:
    def finished(owner: uuid.UUID, days_ago: int) -> str:
        job, _worker = dispatched_job(db, owner)
        as_service(db, "service.job_complete", job["id"], 1, {"video_path": f"{owner}/v.mp4"})
        # The whole job moved back in time, as if it ran days_ago (the transition guard is a
        # trigger: replica mode lets the superuser edit history).
        db.execute("set session_replication_role = replica")
        db.execute(
            "update public.jobs set created_at = created_at - make_interval(days => %(d)s),"
            " started_at = started_at - make_interval(days => %(d)s),"
            " finished_at = finished_at - make_interval(days => %(d)s) where id = %(id)s",
            {"d": days_ago, "id": job["id"]},
        )
        db.execute("reset session_replication_role")
        return str(job["id"])

    def due(deployment_days: int) -> set[str]:
        rows = as_service(db, "service.jobs_list_outputs_due", deployment_days, 10_000)
        return {row["id"] for row in rows}

    old_free, recent_free = finished(user, 40), finished(user, 10)
    record(db, other_user, "sub_r", "active", period_end="2999-01-01T00:00:00Z")
    old_premium = finished(other_user, 40)
    # Free keeps 30 days even where the deployment keeps everything (0); premium (no tier
    # retention) follows the deployment.
    assert old_free in due(0) and recent_free not in due(0) and old_premium not in due(0)
    # A shorter deployment retention wins over the tier's.
    assert {old_free, recent_free, old_premium} <= due(5)
