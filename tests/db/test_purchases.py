"""Purchases that can be taken back (refunds, disputes), the debt, anonymous users merged.

sql/schema/16_purchases.sql: a clawback takes from the balance what it can and leaves the
rest as debt; every credit settles the debt first; no new job while in debt; merges move an
anonymous user's balance to an account once. The money audit runs after every test here.
"""

from __future__ import annotations

import uuid
from typing import Any

from db.helpers import (
    T2V,
    Conn,
    as_service,
    assert_books_balance,
    create_job,
    create_user,
    dispatched_job,
    for_user,
    raises_sqlstate,
)
from db.test_concurrency import CLIENTS, run_concurrently, service_call, sqlstates, user_call


def state(db: Conn, uid: uuid.UUID) -> tuple[int, int, int]:
    """(balance, reserved, debt)."""
    row = db.execute(
        "select balance, reserved, debt from public.profiles where id = %s", (uid,)
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def kinds(db: Conn, uid: uuid.UUID) -> list[tuple[str, int, int]]:
    """(kind, amount, debt) of the user's ledger rows, in order."""
    rows = db.execute(
        "select kind::text, amount, debt from public.credit_ledger where user_id = %s order by id",
        (uid,),
    ).fetchall()
    return [(str(k), int(a), int(d)) for k, a, d in rows]


def buy(db: Conn, uid: uuid.UUID, session: str, credits: int, cents: int, pi: str) -> Any:
    """A Stripe Checkout purchase as the webhook records it."""
    return as_service(
        db,
        "service.purchase_record",
        uid,
        "stripe",
        session,
        credits,
        pi,
        cents,
        "usd",
        None,
        "Stripe",
    )


def refund(db: Conn, refund_id: str, pi: str, cents: int | None, kind: str = "refund") -> Any:
    return as_service(
        db, "service.purchase_reverse", "stripe", refund_id, kind, None, pi, cents, None, "refund"
    )


def test_a_purchase_is_recorded_and_credited_once(db: Conn) -> None:
    uid = create_user(db)
    first = buy(db, uid, "cs_1", 500, 500, "pi_1")
    assert first["applied"] is True and first["purchase"]["payment_ref"] == "pi_1"
    assert (first["balance"], first["debt"], first["debt_settled"]) == (500, 0, 0)
    again = buy(db, uid, "cs_1", 500, 500, "pi_1")
    assert again["applied"] is False and again["entry"]["id"] == first["entry"]["id"]
    other = create_user(db)
    with raises_sqlstate("VGC09"):
        buy(db, other, "cs_1", 500, 500, "pi_1")
    assert state(db, uid) == (500, 0, 0)


def test_a_full_refund_takes_the_credits_back_once(db: Conn) -> None:
    uid = create_user(db, credits=30)
    buy(db, uid, "cs_r", 500, 500, "pi_r")
    done = refund(db, "re_1", "pi_r", 500)
    assert done["applied"] is True
    assert done["reversal"]["credits"] == 500 and done["reversal"]["to_debt"] == 0
    assert (done["balance"], done["debt"]) == (30, 0)
    # Stripe redelivers; a dispute after the full refund has nothing left to take.
    assert refund(db, "re_1", "pi_r", 500)["applied"] is False
    disputed = refund(db, "dp_1", "pi_r", 500, kind="dispute")
    assert disputed["applied"] is True and disputed["reversal"]["credits"] == 0
    assert state(db, uid) == (30, 0, 0)
    assert kinds(db, uid)[-1] == ("clawback", -500, 0)


def test_a_refund_of_spent_credits_becomes_debt_that_blocks_jobs_and_is_settled_first(
    db: Conn,
) -> None:
    uid = create_user(db)
    buy(db, uid, "cs_d", 100, 1000, "pi_d")
    job = create_job(db, uid)
    cost = int(job["cost"])
    for_user(db, uid, "service.job_cancel", job["id"])  # released again
    # Spend 60 of the 100 on an adjust (as if used), then the whole purchase is refunded.
    as_service(db, "service.credits_grant", uid, -60, "spent", "adjust")
    done = refund(db, "re_d", "pi_d", 1000)
    assert done["reversal"]["from_balance"] == 40 and done["reversal"]["to_debt"] == 60
    assert state(db, uid) == (0, 0, 60)

    with raises_sqlstate("VGD02") as info:
        create_job(db, uid)
    assert '"debt": 60' in (info.value.diag.message_detail or "")

    # The next purchase settles the debt first, in the same transaction.
    paid = buy(db, uid, "cs_d2", 100, 1000, "pi_d2")
    assert (paid["balance"], paid["debt"], paid["debt_settled"]) == (40, 0, 60)
    assert kinds(db, uid)[-3:] == [("clawback", -40, 60), ("purchase", 100, 0),
                                   ("debt_settle", -60, -60)]  # fmt: skip
    assert cost > 0 and create_job(db, uid)["cost"] == cost
    assert_books_balance(db, uid)


def test_a_grant_settles_part_of_the_debt(db: Conn) -> None:
    uid = create_user(db)
    buy(db, uid, "cs_g", 100, 100, "pi_g")
    as_service(db, "service.credits_grant", uid, -100, "spent", "adjust")
    refund(db, "re_g", "pi_g", 100)
    assert state(db, uid) == (0, 0, 100)
    as_service(db, "service.credits_grant", uid, 30, "promo")
    assert state(db, uid) == (0, 0, 70)


def test_released_holds_settle_the_debt(db: Conn) -> None:
    uid = create_user(db, job_limit=10)
    buy(db, uid, "cs_h", 50, 50, "pi_h")
    job, _ = dispatched_job(db, uid)
    cost = int(job["cost"])
    refund(db, "re_h", "pi_h", 50)
    assert state(db, uid) == (0, cost, cost)  # the held part could not be taken: owed
    db.execute("update public.jobs set failures = max_attempts - 1 where id = %s",
               (job["id"],))  # fmt: skip
    failed = as_service(db, "service.job_fail", job["id"], job["attempt"], "OOM", "out of memory")
    assert failed["job"]["status"] == "failed"
    assert state(db, uid) == (0, 0, 0)  # the release went to the debt, not the balance
    assert kinds(db, uid)[-2:] == [("release", cost, 0), ("debt_settle", -cost, -cost)]
    assert_books_balance(db, uid)


def test_partial_refunds_claw_back_proportionally_and_add_up_to_the_whole(db: Conn) -> None:
    uid = create_user(db)
    buy(db, uid, "cs_p", 1000, 999, "pi_p")
    got = [refund(db, f"re_p{i}", "pi_p", 333)["reversal"]["credits"] for i in range(3)]
    assert got == [333, 333, 334]  # floor(1000 x 333/999), then the cumulative rest
    assert state(db, uid) == (0, 0, 0)
    # Refunding more than was paid takes nothing more.
    assert refund(db, "re_p3", "pi_p", 500)["reversal"]["credits"] == 0


def test_app_store_refunds_by_share_and_unknown_purchases(db: Conn) -> None:
    uid = create_user(db)
    as_service(db, "service.purchase_record", uid, "app_store", "2000001", 200, "2000001",
               4990, "EUR", "credits.200", "App Store")  # fmt: skip
    half = as_service(db, "service.purchase_reverse", "app_store", "2000001:1", "refund", "2000001",
                      None, None, 50_000)  # fmt: skip
    assert half["reversal"]["credits"] == 100
    rest = as_service(db, "service.purchase_reverse", "app_store", "2000001:2", "refund", "2000001")
    assert rest["reversal"]["credits"] == 100 and state(db, uid) == (0, 0, 0)
    nothing = as_service(db, "service.purchase_reverse", "app_store", "x:1", "refund", "no-such-tx")
    assert nothing == {"applied": False, "reason": "no purchase matches"}
    with raises_sqlstate("VG400"):
        as_service(db, "service.purchase_reverse", "app_store", "x:2", "refund", "a", "b")


# Anonymous users signing in to an existing account ------------------------------------------


def test_an_anonymous_users_bought_credits_move_to_the_account_once(db: Conn) -> None:
    anonymous = create_user(db, anonymous=True, credits=25)  # given, not bought: they stay
    account = create_user(db, credits=100)
    buy(db, anonymous, "cs_anon", 40, 400, "pi_anon")
    merged = for_user(db, account, "service.anonymous_merge", anonymous)
    assert merged["applied"] is True and merged["merge"]["credits"] == 40
    assert merged["free_credits_kept"] == 25
    assert (merged["balance"], merged["debt"]) == (140, 0)
    assert state(db, anonymous) == (25, 0, 0)
    again = for_user(db, account, "service.anonymous_merge", anonymous)
    assert again["applied"] is False and again["merge"] == merged["merge"]
    assert state(db, account) == (140, 0, 0)
    assert kinds(db, anonymous)[-1] == ("merge_out", -40, 0)
    assert kinds(db, account)[-1] == ("merge_in", 40, 0)
    # Its purchases followed: a refund now claws back from the account.
    assert refund(db, "re_anon", "pi_anon", 400)["reversal"]["credits"] == 40
    assert state(db, account) == (100, 0, 0)


def test_free_credits_are_spent_first_and_never_merged(db: Conn) -> None:
    """A guest with 20 free and 30 bought credits spends 35: the 15 left are bought."""
    anonymous = create_user(db, anonymous=True)
    for_user(db, anonymous, "service.initial_grant_claim")
    buy(db, anonymous, "cs_mix", 30, 300, "pi_mix")
    as_service(db, "service.credits_grant", anonymous, -35, "spent-35", "adjust")
    account = create_user(db)
    merged = for_user(db, account, "service.anonymous_merge", anonymous)
    assert merged["merge"]["credits"] == 15 and merged["free_credits_kept"] == 0
    assert state(db, account) == (15, 0, 0)
    # Only free credits: nothing moves, and the merge is still recorded (once).
    guest = create_user(db, anonymous=True)
    for_user(db, guest, "service.initial_grant_claim")
    other = create_user(db)
    merged = for_user(db, other, "service.anonymous_merge", guest)
    assert merged["applied"] is True and merged["merge"]["credits"] == 0
    assert state(db, other) == (0, 0, 0) and state(db, guest) == (20, 0, 0)
    assert_books_balance(db, guest)
    assert_books_balance(db, other)
    # Another account cannot take it again.
    with raises_sqlstate("VGC09"):
        for_user(db, create_user(db), "service.anonymous_merge", anonymous)


def test_merges_are_refused_when_they_would_lose_or_hide_money(db: Conn) -> None:
    account = create_user(db)
    permanent = create_user(db, credits=5)
    with raises_sqlstate("VGN22"):
        for_user(db, account, "service.anonymous_merge", permanent)
    with raises_sqlstate("VGN22"):
        for_user(db, account, "service.anonymous_merge", account)
    with raises_sqlstate("VG404"):
        for_user(db, account, "service.anonymous_merge", uuid.uuid4())

    busy = create_user(db, anonymous=True, credits=50)
    create_job(db, busy)
    with raises_sqlstate("VGN09"):
        for_user(db, account, "service.anonymous_merge", busy)

    owing = create_user(db, anonymous=True)
    buy(db, owing, "cs_owe", 10, 10, "pi_owe")
    as_service(db, "service.credits_grant", owing, -10, "spent", "adjust")
    refund(db, "re_owe", "pi_owe", 10)
    with raises_sqlstate("VGN09"):
        for_user(db, account, "service.anonymous_merge", owing)

    # An anonymous caller cannot be the account.
    other_anonymous = create_user(db, anonymous=True, credits=1)
    with raises_sqlstate("VG403"):
        for_user(db, other_anonymous, "service.anonymous_merge", busy)
    assert state(db, account) == (0, 0, 0)


# Concurrency -------------------------------------------------------------------------------


def test_refunds_racing_jobs_and_purchases_lose_and_create_nothing(db_url: str, db: Conn) -> None:
    """Many clients at once on one account: duplicate and partial refunds of two purchases,
    job creations, new purchases and grants. Whatever the interleaving, each refund id claws
    back once, the total clawed back is exact, and balance + reserved - debt is what came in
    minus what was taken back."""
    uid = create_user(db, job_limit=100)
    buy(db, uid, "cs_a", 600, 600, "pi_a")
    buy(db, uid, "cs_b", 300, 300, "pi_b")
    calls = (
        [service_call("service.purchase_reverse", "stripe", "re_a_full", "refund", None, "pi_a",
                      600)] * 16
        + [service_call("service.purchase_reverse", "stripe", f"re_b_{i}", "refund", None,
                        "pi_b", 100)
           for i in range(4)]  # four partial refunds of 100: only three fit
        + [user_call(uid, "service.job_create", T2V, {})] * 24
        + [service_call("service.purchase_record", uid, "stripe", f"cs_n{i}", 50, f"pi_n{i}", 50,
                        "usd")
           for i in range(12)]
        + [service_call("service.credits_grant", uid, 7, f"g{i}") for i in range(8)]
    )  # fmt: skip
    assert len(calls) == CLIENTS
    results = run_concurrently(db_url, calls)
    assert set(sqlstates(results)) <= {"VG402", "VGD02"}, sqlstates(results)

    applied_full = [r for r in results[:16] if isinstance(r, dict) and r["applied"]]
    assert len(applied_full) == 1 and applied_full[0]["reversal"]["credits"] == 600
    partial = [r["reversal"]["credits"] for r in results[16:20]]
    assert sorted(partial) == [0, 100, 100, 100]

    clawed = db.execute(
        "select coalesce(sum(credits), 0) from private.purchase_reversals where user_id = %s",
        (uid,),
    ).fetchone()
    assert clawed == (900,)
    came_in = 600 + 300 + 12 * 50 + 8 * 7
    balance, reserved, debt = state(db, uid)
    assert balance + reserved - debt == came_in - 900
    assert debt == 0 or balance == 0
    assert_books_balance(db, uid)
    audit = db.execute("select service.money_audit_report(86400)").fetchone()
    assert audit == ([],)


def test_concurrent_merges_of_one_anonymous_user_move_its_credits_once(
    db_url: str, db: Conn
) -> None:
    anonymous = create_user(db, anonymous=True)
    buy(db, anonymous, "cs_race", 80, 800, "pi_race")
    accounts = [create_user(db) for _ in range(4)]
    calls = [user_call(accounts[i % 4], "service.anonymous_merge", anonymous) for i in range(32)]
    results = run_concurrently(db_url, calls)
    winners = {str(r["merge"]["account_id"]) for r in results if isinstance(r, dict)}
    assert len(winners) == 1
    assert set(sqlstates(results)) <= {"VGC09"}
    assert sum(r["applied"] for r in results if isinstance(r, dict)) == 1
    balances = sorted(state(db, a)[0] for a in accounts)
    assert balances == [0, 0, 0, 80]
    assert state(db, anonymous) == (0, 0, 0)
