"""update-credits over real HTTP: the initial grant, the ledger, service grants, Stripe."""

from __future__ import annotations

import time
import uuid

from videogen.config import LOCAL_PUBLISHABLE_KEY, LOCAL_SECRET_KEY

CLAIM = {"action": "claim_initial_grant"}


def balance_of(api, user):
    return api.ok(api.get("update-credits", user=user))["balance"]


def test_initial_grant_is_claimed_once(api):
    user = api.user()
    fresh = api.ok(api.get("update-credits", user=user))
    assert fresh["balance"] == 0 and fresh["initial_grant_claimed"] is False
    claimed = api.ok(api.post("update-credits", user=user, json=CLAIM))
    assert claimed["applied"] is True
    assert (claimed["entry"]["kind"], claimed["entry"]["amount"]) == ("initial_grant", 100)
    api.fails(api.post("update-credits", user=user, json=CLAIM), 409, "ALREADY_CLAIMED")
    after = api.ok(api.get("update-credits", user=user))
    assert (after["balance"], after["initial_grant_claimed"]) == (100, True)


def test_anonymous_users_get_the_smaller_grant(api):
    user = api.user(anonymous=True)
    assert api.ok(api.post("update-credits", user=user, json=CLAIM))["entry"]["amount"] == 20


def test_ledger_pages(api):
    user = api.user()
    api.ok(api.post("update-credits", user=user, json=CLAIM))
    for i in range(4):
        grant = {"action": "grant", "user_id": user.id, "amount": 10 + i, "grant_id": f"g{i}"}
        api.ok(api.service("update-credits", grant))
    first = api.ok(api.get("update-credits", user=user, params={"limit": 2}))
    assert first["balance"] == 100 + 10 + 11 + 12 + 13
    ledger = first["ledger"]
    assert (ledger["total"], ledger["page"], ledger["limit"], ledger["has_next"]) == (5, 1, 2, True)
    assert [e["amount"] for e in ledger["items"]] == [13, 12]  # newest first
    last = api.ok(api.get("update-credits", user=user, params={"limit": 2, "page": 3}))["ledger"]
    assert [e["kind"] for e in last["items"]] == ["initial_grant"]
    assert last["has_next"] is False
    assert "user_id" not in last["items"][0]
    api.fails(api.get("update-credits", user=user, params={"limit": 500}), 422, "VALIDATION_ERROR")


def test_grant_adjust_purchase_with_the_secret_key_are_idempotent_by_id(api):
    user = api.user()
    grant = {"action": "grant", "user_id": user.id, "amount": 50, "grant_id": "promo-1"}
    first = api.ok(api.service("update-credits", grant))
    assert first["applied"] is True and first["entry"]["balance_after"] == 50
    again = api.ok(api.service("update-credits", grant))
    assert again["applied"] is False and again["entry"]["id"] == first["entry"]["id"]

    adjust = {"action": "adjust", "user_id": user.id, "amount": -20, "grant_id": "fix-1"}
    assert api.ok(api.service("update-credits", adjust))["entry"]["balance_after"] == 30

    purchase = {"action": "purchase", "user_id": user.id, "transaction_id": "t-1", "credits": 70}
    assert api.ok(api.service("update-credits", purchase))["applied"] is True
    assert api.ok(api.service("update-credits", purchase))["applied"] is False
    assert balance_of(api, user) == 100


def test_credit_changes_are_refused_when_invalid(api):
    user = api.user()
    below_zero = {"action": "adjust", "user_id": user.id, "amount": -5, "grant_id": "neg"}
    resp = api.service("update-credits", below_zero)
    assert resp.status_code in (402, 422), resp.text
    negative = {"action": "grant", "user_id": user.id, "amount": -5, "grant_id": "neg2"}
    api.fails(api.service("update-credits", negative), 422, "INVALID_AMOUNT")
    nobody = {"action": "grant", "user_id": str(uuid.uuid4()), "amount": 5, "grant_id": "x"}
    api.fails(api.service("update-credits", nobody), 404)
    api.fails(api.service("update-credits", {"action": "steal"}), 422, "VALIDATION_ERROR")
    assert balance_of(api, user) == 0


def test_users_and_publishable_keys_cannot_grant(api):
    user = api.user()
    grant = {"action": "grant", "user_id": user.id, "amount": 1000, "grant_id": "mine"}
    api.fails(api.post("update-credits", user=user, json=grant), 403, "FORBIDDEN")
    api.fails(
        api.post("update-credits", headers={"apikey": LOCAL_PUBLISHABLE_KEY}, json=grant), 401
    )
    api.fails(api.post("update-credits", json=grant), 401)
    # The service cannot claim a user's initial grant for them.
    api.fails(api.service("update-credits", CLAIM), 403, "FORBIDDEN")
    assert balance_of(api, user) == 0


def test_reading_credits_needs_a_user(api):
    api.fails(api.get("update-credits"), 401, "UNAUTHORIZED")
    api.fails(api.get("update-credits", headers={"apikey": LOCAL_SECRET_KEY}), 401)


def checkout(user_id, session_id, **fields):
    obj = {
        "id": session_id,
        "object": "checkout.session",
        "payment_status": "paid",
        "amount_total": 500,
        "metadata": {"user_id": user_id},
        **fields,
    }
    return {
        "id": f"evt_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "type": "checkout.session.completed",
        "created": int(time.time()),
        "data": {"object": obj},
    }


def test_stripe_checkout_credits_the_buyer_once(api):
    user = api.user()
    event = checkout(user.id, f"cs_test_{uuid.uuid4().hex[:12]}")
    paid = api.ok(api.stripe(event))
    assert paid["applied"] is True and paid["entry"]["amount"] == 500
    # Stripe retries: another delivery of the same session changes nothing.
    assert api.ok(api.stripe({**event, "id": "evt_retry"}))["applied"] is False
    assert balance_of(api, user) == 500


def test_stripe_events_that_are_not_payments_are_acknowledged(api):
    user = api.user()
    unpaid = checkout(user.id, "cs_test_unpaid", payment_status="unpaid")
    assert api.ok(api.stripe(unpaid)) == {"applied": False, "reason": "not paid yet"}
    other = {**checkout(user.id, "cs_test_other"), "type": "customer.created"}
    assert api.ok(api.stripe(other))["applied"] is False
    assert balance_of(api, user) == 0


def test_stripe_signature_must_match(api):
    user = api.user()
    event = checkout(user.id, "cs_test_forged")
    api.fails(api.stripe(event, secret="whsec_not_the_endpoint_secret"), 401, "INVALID_SIGNATURE")
    resp = api.post(
        "update-credits",
        json=event,
        headers={"Stripe-Signature": f"t={int(time.time()) - 3600},v1=00"},
    )
    assert resp.status_code == 401
    assert balance_of(api, user) == 0
