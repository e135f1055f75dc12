"""Subscriptions over real HTTP (update-credits): Stripe Billing events and App Store Server
Notifications V2 set the profile's tier, each paid period grants its credits once, and the
tier decides the limits (priority bound, daily cap, concurrency, retention)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from appstore import notification, transaction
from functions.conftest import audit_money

PREMIUM_PRICE = "price_premium_monthly"  # private.subscription_plans: premium, 1000 a period
PREMIUM_APPLE = "com.videogen.premium.monthly"
DAY = 86_400


def event(kind: str, obj: dict[str, Any], created: int) -> dict[str, Any]:
    return {
        "id": f"evt_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "type": kind,
        "created": created,
        "data": {"object": obj},
    }


def subscription(sub_id: str, user_id: str | None, status: str, period_end: int) -> dict[str, Any]:
    """A Subscription as API 2025-03-31 and later sends it (the period on its item)."""
    return {
        "id": sub_id,
        "object": "subscription",
        "status": status,
        "customer": "cus_test",
        "metadata": {"user_id": user_id} if user_id else {},
        "items": {
            "object": "list",
            "data": [
                {
                    "id": "si_test",
                    "object": "subscription_item",
                    "price": {"id": PREMIUM_PRICE, "object": "price"},
                    "current_period_end": period_end,
                }
            ],
        },
    }


def invoice(sub_id: str, period_end: int, *, new_shape: bool = True) -> dict[str, Any]:
    """A paid subscription Invoice, in the shapes after and before API 2025-03-31."""
    line: dict[str, Any] = {"id": "il_test", "period": {"start": period_end - 30 * DAY,
                                                         "end": period_end}}  # fmt: skip
    body: dict[str, Any] = {
        "id": f"in_{uuid.uuid4().hex[:14]}",
        "object": "invoice",
        "status": "paid",
        "amount_paid": 999,
        "currency": "usd",
        "lines": {"object": "list", "data": [line]},
    }
    if new_shape:
        line["pricing"] = {"type": "price_details", "price_details": {"price": PREMIUM_PRICE}}
        details = {"subscription": sub_id, "metadata": {}}
        body["parent"] = {"type": "subscription_details", "subscription_details": details}
    else:
        line["price"] = {"id": PREMIUM_PRICE}
        body["subscription"] = sub_id
        body["payment_intent"] = f"pi_{uuid.uuid4().hex[:14]}"
    return body


def profile(api: Any, user: Any) -> dict[str, Any]:
    data: dict[str, Any] = api.ok(api.get("update-credits/profile", user=user))
    return data


def test_a_stripe_subscription_raises_the_tier_and_each_invoice_grants_once(store_api):
    api = store_api
    user = api.user()
    now = int(time.time())
    sub_id = f"sub_{uuid.uuid4().hex[:14]}"
    assert profile(api, user)["tier"] == "free"

    created = api.ok(api.stripe(event("customer.subscription.created",
                                      subscription(sub_id, user.id, "active", now + 30 * DAY),
                                      now)))  # fmt: skip
    assert created["tier"] == "premium" and created["subscription"]["status"] == "active"
    me = profile(api, user)
    assert me["tier"] == "premium" and me["concurrent_job_limit"] == 20
    assert me["balance"] == 0  # the state alone grants nothing: the paid invoice does

    paid = invoice(sub_id, now + 30 * DAY)
    first = api.ok(api.stripe(event("invoice.paid", paid, now + 1)))
    assert first["applied"] is True and first["entry"]["amount"] == 1000
    assert first["purchase"]["transaction_id"] == f"invoice:{paid['id']}"
    again = api.ok(api.stripe(event("invoice.paid", paid, now + 2)))  # Stripe redelivers
    assert again["applied"] is False
    # The next period's invoice, in the older API's shape, grants its credits too.
    renewal = invoice(sub_id, now + 60 * DAY, new_shape=False)
    assert api.ok(api.stripe(event("invoice.paid", renewal, now + 3)))["applied"] is True
    assert profile(api, user)["balance"] == 2000

    # An older state arriving late changes nothing; the deletion ends the tier.
    late = event("customer.subscription.updated",
                 subscription(sub_id, user.id, "past_due", now + 30 * DAY), now - 100)  # fmt: skip
    assert api.ok(api.stripe(late))["subscription"]["status"] == "active"
    ended = api.ok(api.stripe(event("customer.subscription.deleted",
                                    subscription(sub_id, user.id, "canceled", now + 30 * DAY),
                                    now + 10)))  # fmt: skip
    assert ended["tier"] == "free"
    me = profile(api, user)
    assert me["tier"] == "free" and me["concurrent_job_limit"] == 5
    assert me["balance"] == 2000  # credits bought stay
    assert audit_money(api) == []


def test_stripe_subscription_events_that_grant_nothing_are_acknowledged(store_api):
    api = store_api
    user = api.user()
    now = int(time.time())
    sub_id = f"sub_{uuid.uuid4().hex[:14]}"
    other_price = subscription(sub_id, user.id, "active", now + DAY)
    other_price["items"]["data"][0]["price"]["id"] = "price_not_a_plan"
    done = api.ok(api.stripe(event("customer.subscription.created", other_price, now)))
    assert done["applied"] is False and "gives no tier" in done["reason"]
    incomplete = subscription(sub_id, user.id, "incomplete", now + DAY)
    assert (
        api.ok(api.stripe(event("customer.subscription.created", incomplete, now)))["applied"]
        is False
    )
    # An invoice for a subscription we never heard of, without metadata: no user to credit.
    stray = api.ok(api.stripe(event("invoice.paid", invoice("sub_unknown", now + DAY), now)))
    assert stray["applied"] is False and "no user" in stray["reason"]
    one_off = invoice(sub_id, now + DAY)
    del one_off["parent"]
    assert api.ok(api.stripe(event("invoice.paid", one_off, now)))["reason"] == (
        "the invoice is not for a subscription"
    )
    no_price = event("customer.subscription.updated", {"id": sub_id, "items": {}}, now)
    api.fails(api.stripe(no_price), 422)
    assert profile(api, user)["tier"] == "free" and profile(api, user)["balance"] == 0


def notify(api: Any, signed_payload: str) -> Any:
    return api.post("update-credits/apple-notifications", json={"signedPayload": signed_payload})


def test_app_store_subscriptions_set_the_tier_renewals_grant_and_refunds_claw_back(
    store_api, apple_chain
):
    api = store_api
    user = api.user()
    now_ms = int(time.time() * 1000)
    original = str(uuid.uuid4().int)[:15]

    def period(tid: str, start_ms: int, **fields: Any) -> dict[str, Any]:
        return transaction(PREMIUM_APPLE, transaction_id=tid, originalTransactionId=original,
                           type="Auto-Renewable Subscription", appAccountToken=user.id,
                           expiresDate=start_ms + 30 * DAY * 1000, **fields)  # fmt: skip

    def send(kind: str, payload: dict[str, Any], signed_ms: int, **fields: Any) -> Any:
        body = notification(kind, apple_chain.sign(payload), signedDate=signed_ms, **fields)
        return api.ok(notify(api, apple_chain.sign(body)))

    first = period(original, now_ms)
    done = send("SUBSCRIBED", first, now_ms, subtype="INITIAL_BUY")
    assert done["applied"] is True and done["tier"] == "premium"
    assert send("SUBSCRIBED", first, now_ms)["applied"] is False  # Apple retries
    renewal = period(str(uuid.uuid4().int)[:15], now_ms + 1000)
    assert send("DID_RENEW", renewal, now_ms + 1000)["entry"]["amount"] == 1000
    assert profile(api, user)["balance"] == 2000

    refunded = {**renewal, "revocationDate": now_ms + 2000, "revocationReason": 0}
    back = send("REFUND", refunded, now_ms + 2000)
    assert back["applied"] is True and back["reversal"]["credits"] == 1000
    assert back["tier"] == "free" and back["subscription"]["status"] == "refunded"
    assert send("REFUND", refunded, now_ms + 2000)["applied"] is False
    me = profile(api, user)
    assert me["tier"] == "free" and me["balance"] == 1000

    # Resubscribed, then expired.
    again = period(str(uuid.uuid4().int)[:15], now_ms + 3000)
    assert send("SUBSCRIBED", again, now_ms + 3000, subtype="RESUBSCRIBE")["tier"] == "premium"
    assert send("EXPIRED", again, now_ms + 4000, subtype="VOLUNTARY")["tier"] == "free"
    assert audit_money(api) == []


def test_the_tier_decides_the_queue_place_until_the_period_ends(store_api):
    api = store_api
    user = api.user(credits=500)
    now = int(time.time())
    sub_id = f"sub_{uuid.uuid4().hex[:14]}"
    job = {"model": "reference/text-to-video", "prompt": "a kite", "duration": 4,
           "resolution": "480p", "priority": 40}  # fmt: skip
    error = api.fails(api.post("generate-video", user=user, json=job), 403, "PRIORITY_NOT_ALLOWED")
    assert error["details"] == [{"priority": 40, "max_priority": 0, "tier": "free"}]

    api.ok(api.stripe(event("customer.subscription.created",
                            subscription(sub_id, user.id, "active", now + DAY), now)))  # fmt: skip
    made = api.ok(api.post("generate-video", user=user, json=job), 202)
    assert made["priority"] == 40
    api.ok(api.delete("queue-job", user=user, params={"id": made["id"]}))

    # The sweep takes the tier back once the paid period has ended without a renewal.
    api.sql(
        "update private.subscriptions set current_period_end = now() - interval '1 minute'"
        " where subscription_id = %s",
        [sub_id],
    )
    assert api.sql("select service.subscriptions_expire()") >= 1
    assert profile(api, user)["tier"] == "free"
    api.fails(api.post("generate-video", user=user, json=job), 403, "PRIORITY_NOT_ALLOWED")
