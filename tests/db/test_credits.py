"""Credits procedures: initial grant, purchases, grants and adjustments — each once per id."""

from __future__ import annotations

import uuid

from db.helpers import (
    Conn,
    as_anon,
    as_service,
    as_user,
    assert_books_balance,
    create_user,
    for_user,
    profile,
    raises_sqlstate,
)


def ledger_rows(conn: Conn, user_id: uuid.UUID) -> list[tuple[str, int, int, int, str | None]]:
    """(kind, amount, balance_after, reserved_after, external_id) of a user, in order."""
    rows = conn.execute(
        """
        select kind::text, amount, balance_after, reserved_after, external_id
          from public.credit_ledger where user_id = %s order by id
        """,
        (user_id,),
    ).fetchall()
    return [tuple(r) for r in rows]  # type: ignore[misc]


# ------------------------------------------------------------------------------------------
# claim_initial_grant
# ------------------------------------------------------------------------------------------


def test_initial_grant_is_claimed_once(db: Conn) -> None:
    uid = create_user(db)
    result = for_user(db, uid, "service.initial_grant_claim")
    assert result["applied"] is True
    assert result["entry"]["amount"] == 100
    assert result["entry"]["kind"] == "initial_grant"
    assert profile(db, uid) == (100, 0)

    with raises_sqlstate("VGC09"):
        for_user(db, uid, "service.initial_grant_claim")
    assert profile(db, uid) == (100, 0)
    assert ledger_rows(db, uid) == [("initial_grant", 100, 100, 0, f"initial:{uid}")]
    claimed = db.execute(
        "select initial_grant_claimed_at is not null from public.profiles where id = %s", (uid,)
    ).fetchone()
    assert claimed == (True,)


def test_anonymous_users_get_the_anonymous_amount(db: Conn) -> None:
    uid = create_user(db, anonymous=True)
    result = for_user(db, uid, "service.initial_grant_claim")
    assert result["entry"]["amount"] == 20
    assert profile(db, uid) == (20, 0)


def test_initial_grant_amounts_come_from_settings_within_the_cap(db: Conn) -> None:
    db.execute("update private.settings set value = '250' where name = 'initial_grant_credits'")
    db.execute("update private.settings set value = '300' where name = 'free_credits_cap'")
    uid = create_user(db)
    for_user(db, uid, "service.initial_grant_claim")
    assert profile(db, uid) == (250, 0)
    # The cap bounds a free grant whatever the amount setting says.
    db.execute("update private.settings set value = '120' where name = 'free_credits_cap'")
    capped = create_user(db)
    assert for_user(db, capped, "service.initial_grant_claim")["entry"]["amount"] == 120


def test_one_free_grant_per_mailbox(db: Conn) -> None:
    first = create_user(db, email="Ada.Lovelace+videos@gmail.com")
    for_user(db, first, "service.initial_grant_claim")
    # The same mailbox under another spelling, after the first account was deleted.
    db.execute("delete from auth.users where id = %s", (first,))
    again = create_user(db, email="adalovelace@GoogleMail.com")
    with raises_sqlstate("VGC09"):
        for_user(db, again, "service.initial_grant_claim")
    assert profile(db, again) == (0, 0)
    # Another mailbox of the same domain is another person.
    other = create_user(db, email="ada.byron@gmail.com")
    assert for_user(db, other, "service.initial_grant_claim")["entry"]["amount"] == 100


def test_guests_from_one_address_get_a_few_grants_a_day(db: Conn) -> None:
    client = {"address": "203.0.113.7"}
    for _ in range(3):
        for_user(db, create_user(db, anonymous=True), "service.initial_grant_claim", client)
    fourth = create_user(db, anonymous=True)
    with raises_sqlstate("VGR29") as refused:
        for_user(db, fourth, "service.initial_grant_claim", client)
    wait = int(refused.value.diag.message_detail.removeprefix("retry_after="))
    assert 0 < wait <= 86400
    assert profile(db, fourth) == (0, 0)
    # Another address, a device Apple vouched for, or an email account: not limited.
    for_user(db, fourth, "service.initial_grant_claim", {"address": "198.51.100.1"})
    vouched = create_user(db, anonymous=True)
    for_user(db, vouched, "service.initial_grant_claim", client | {"device_checked": True})
    assert profile(db, vouched) == (20, 0)
    member = create_user(db)
    assert for_user(db, member, "service.initial_grant_claim", client)["entry"]["amount"] == 100


def test_initial_grant_needs_a_signed_in_user(db: Conn) -> None:
    with raises_sqlstate("42501"):  # not granted to anon at all
        as_anon(db, "service.initial_grant_claim")
    with raises_sqlstate("VG403"):  # authenticated role but no subject
        _claim_without_sub(db)


def _claim_without_sub(db: Conn) -> None:
    """claim_initial_grant on the service path with claims lacking `sub`."""
    with db.transaction():
        db.execute(
            "select set_config('request.jwt.claims', '{\"role\": \"authenticated\"}', true),"
            " set_config('role', 'service_role', true)"
        )
        db.execute("select service.initial_grant_claim()")


# ------------------------------------------------------------------------------------------
# purchase_credits
# ------------------------------------------------------------------------------------------


def test_purchase_is_applied_once_per_transaction_id(db: Conn) -> None:
    uid = create_user(db)
    first = as_service(db, "service.credits_purchase", uid, "pi_123", 500)
    again = as_service(db, "service.credits_purchase", uid, "pi_123", 500)
    assert first["applied"] is True
    assert again["applied"] is False
    assert again["entry"]["id"] == first["entry"]["id"]
    assert first["entry"]["external_id"] == "purchase:pi_123"
    assert profile(db, uid) == (500, 0)

    as_service(db, "service.credits_purchase", uid, "pi_124", 50)
    assert profile(db, uid) == (550, 0)
    assert [r[2] for r in ledger_rows(db, uid)] == [500, 550]
    assert_books_balance(db, uid)


def test_purchase_rejects_bad_amounts_ids_and_users(db: Conn) -> None:
    uid = create_user(db)
    with raises_sqlstate("VGC22"):
        as_service(db, "service.credits_purchase", uid, "pi_neg", -5)
    with raises_sqlstate("VGC22"):
        as_service(db, "service.credits_purchase", uid, "pi_zero", 0)
    with raises_sqlstate("VG400"):
        as_service(db, "service.credits_purchase", uid, None, 5)
    with raises_sqlstate("VG404"):
        as_service(db, "service.credits_purchase", uuid.uuid4(), "pi_nobody", 5)
    assert profile(db, uid) == (0, 0)


def test_a_transaction_id_belongs_to_one_account(db: Conn) -> None:
    first, second = create_user(db), create_user(db)
    as_service(db, "service.credits_purchase", first, "pi_shared", 10)
    with raises_sqlstate("VGC09"):
        as_service(db, "service.credits_purchase", second, "pi_shared", 10)
    assert profile(db, second) == (0, 0)


def test_users_cannot_buy_or_grant_themselves_credits(db: Conn) -> None:
    uid = create_user(db)
    for fn, args in (
        ("service.credits_purchase", (uid, "pi_self", 1000)),
        ("service.credits_grant", (uid, 1000, "g_self")),
    ):
        with raises_sqlstate("42501"):
            as_user(db, uid, fn, *args)
    assert profile(db, uid) == (0, 0)


# ------------------------------------------------------------------------------------------
# grant_credits (grant and adjust)
# ------------------------------------------------------------------------------------------


def test_grant_is_idempotent_by_grant_id(db: Conn) -> None:
    uid = create_user(db)
    assert as_service(db, "service.credits_grant", uid, 30, "promo-1")["applied"] is True
    assert as_service(db, "service.credits_grant", uid, 30, "promo-1")["applied"] is False
    # Same id under another kind is another external id ("adjust:promo-1").
    assert as_service(db, "service.credits_grant", uid, 5, "promo-1", "adjust")["applied"] is True
    assert profile(db, uid) == (35, 0)
    assert [r[4] for r in ledger_rows(db, uid)] == ["grant:promo-1", "adjust:promo-1"]


def test_adjust_may_take_credits_but_never_below_zero(db: Conn) -> None:
    uid = create_user(db, credits=100)
    taken = as_service(db, "service.credits_grant", uid, -40, "fix-1", "adjust")
    assert taken["applied"] is True
    assert taken["entry"]["amount"] == -40
    assert profile(db, uid) == (60, 0)

    with raises_sqlstate("VG402"):
        as_service(db, "service.credits_grant", uid, -61, "fix-2", "adjust")
    assert profile(db, uid) == (60, 0)
    # The refused id was not recorded: it can be used again with a valid amount.
    assert as_service(db, "service.credits_grant", uid, -60, "fix-2", "adjust")["applied"] is True
    assert profile(db, uid) == (0, 0)
    assert_books_balance(db, uid)


def test_adjust_cannot_touch_credits_held_by_jobs(db: Conn) -> None:
    uid = create_user(db, credits=20)
    for_user(db, uid, "service.job_create", "reference/text-to-video", {})  # holds 11
    assert profile(db, uid) == (9, 11)
    with raises_sqlstate("VG402"):
        as_service(db, "service.credits_grant", uid, -10, "fix-held", "adjust")
    assert profile(db, uid) == (9, 11)


def test_grant_rejects_kinds_that_are_not_additions_and_bad_amounts(db: Conn) -> None:
    uid = create_user(db)
    for kind in ("reserve", "capture", "release"):
        with raises_sqlstate("VG400"):
            as_service(db, "service.credits_grant", uid, 10, f"k-{kind}", kind)
    with raises_sqlstate("VGC22"):
        as_service(db, "service.credits_grant", uid, -10, "neg-grant", "grant")
    with raises_sqlstate("VGC22"):
        as_service(db, "service.credits_grant", uid, 0, "zero-adjust", "adjust")
    with raises_sqlstate("VG400"):
        as_service(
            db, "service.credits_grant", uid, 10, "x" * 200
        )  # "grant:" + 200 > 200 characters
    assert profile(db, uid) == (0, 0)
