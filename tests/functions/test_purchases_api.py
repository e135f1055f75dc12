"""update-credits over real HTTP: Stripe refunds and disputes, the debt, App Store purchases
and notifications (signed by a chain of our own), anonymous sessions merged into accounts."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from appstore import Chain, notification, transaction

CREDITS100 = "com.example.videogen.credits100"
T2V = {"model": "reference/text-to-video", "prompt": "a paper boat", "duration": 4}


def credits_of(api: Any, user: Any) -> dict[str, Any]:
    data: dict[str, Any] = api.ok(api.get("update-credits", user=user))
    return data


def stripe_event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"evt_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "data": {"object": obj},
    }


def checkout(user_id: str, cents: int) -> tuple[dict[str, Any], str]:
    pi = f"pi_{uuid.uuid4().hex[:14]}"
    session = {
        "id": f"cs_test_{uuid.uuid4().hex[:12]}",
        "object": "checkout.session",
        "payment_status": "paid",
        "amount_total": cents,
        "currency": "usd",
        "payment_intent": pi,
        "metadata": {"user_id": user_id},
    }
    return stripe_event("checkout.session.completed", session), pi


def stripe_refund(pi: str, cents: int, refund_id: str | None = None) -> dict[str, Any]:
    refund = {
        "id": refund_id or f"re_{uuid.uuid4().hex[:14]}",
        "object": "refund",
        "amount": cents,
        "charge": f"ch_{pi[3:]}",
        "payment_intent": pi,
        "status": "succeeded",
        "currency": "usd",
    }
    return stripe_event("refund.created", refund)


def test_a_stripe_refund_claws_back_once_and_spent_credits_become_debt(store_api):
    api = store_api
    user = api.user()
    paid, pi = checkout(user.id, 1000)
    assert api.ok(api.stripe(paid))["purchase"]["payment_ref"] == pi
    job = api.post("generate-video", user=user, json=T2V)
    assert job.status_code == 202, job.text
    cost = job.json()["data"]["cost"]

    partial = stripe_refund(pi, 250)
    first = api.ok(api.stripe(partial))
    assert first["applied"] is True and first["reversal"]["credits"] == 250
    # Stripe redelivers the same refund: nothing more is taken.
    assert api.ok(api.stripe({**partial, "id": "evt_again"}))["applied"] is False
    rest = api.ok(api.stripe(stripe_refund(pi, 750)))
    assert rest["reversal"]["credits"] == 750
    assert rest["reversal"]["to_debt"] == cost  # the held part was already committed
    overview = credits_of(api, user)
    assert (overview["balance"], overview["reserved"], overview["debt"]) == (0, cost, cost)
    assert overview["ledger"]["items"][0]["kind"] == "clawback"

    refused = api.post("generate-video", user=user, json=T2V)
    api.fails(refused, 402, "CREDITS_IN_DEBT")
    assert refused.json()["error"]["details"] == [{"debt": cost}]

    # The next purchase settles the debt first.
    again, _ = checkout(user.id, 500)
    bought = api.ok(api.stripe(again))
    assert (bought["balance"], bought["debt"], bought["debt_settled"]) == (500 - cost, 0, cost)
    assert api.get("update-credits/profile", user=user).json()["data"]["debt"] == 0


def test_a_stripe_dispute_claws_back_and_unknown_payments_are_acknowledged(store_api):
    api = store_api
    user = api.user()
    paid, pi = checkout(user.id, 300)
    api.ok(api.stripe(paid))
    dispute = {
        "id": f"dp_{uuid.uuid4().hex[:14]}",
        "object": "dispute",
        "amount": 300,
        "charge": "ch_x",
        "payment_intent": pi,
        "status": "needs_response",
    }
    done = api.ok(api.stripe(stripe_event("charge.dispute.created", dispute)))
    assert (done["reversal"]["kind"], done["reversal"]["credits"]) == ("dispute", 300)
    unknown = api.ok(api.stripe(stripe_refund("pi_not_ours", 100)))
    assert unknown == {"applied": False, "reason": "no purchase matches"}
    # charge.refunded comes with every refund too; refund.created is the one acted on.
    charge = {"id": "ch_x", "object": "charge", "payment_intent": pi, "amount_refunded": 300}
    assert api.ok(api.stripe(stripe_event("charge.refunded", charge)))["applied"] is False
    assert credits_of(api, user)["balance"] == 0


# The App Store -------------------------------------------------------------------------------


def apple(api: Any, user: Any, signed: str) -> Any:
    body = {"action": "apple_transaction", "signed_transaction": signed}
    return api.post("update-credits", user=user, json=body)


def test_an_app_store_purchase_is_verified_and_credited_once(store_api, apple_chain):
    api = store_api
    user = api.user()
    payload = transaction(CREDITS100, appAccountToken=user.id)
    signed = apple_chain.sign(payload)
    first = api.ok(apple(api, user, signed))
    assert first["applied"] is True and first["entry"]["amount"] == 100
    assert first["purchase"]["transaction_id"] == payload["transactionId"]
    assert api.ok(apple(api, user, signed))["applied"] is False
    other = api.user()
    api.fails(apple(api, other, apple_chain.sign(transaction(CREDITS100,
              transaction_id=payload["transactionId"]))), 409)  # fmt: skip
    api.fails(apple(api, other, signed), 403, "FORBIDDEN")  # appAccountToken is the first user's
    assert credits_of(api, user)["balance"] == 100
    assert credits_of(api, other)["balance"] == 0


def test_app_store_data_that_is_not_apples_is_refused(store_api, apple_chain):
    api = store_api
    user = api.user()
    stranger = Chain.new("Not Apple")
    api.fails(apple(api, user, stranger.sign(transaction(CREDITS100))), 401, "INVALID_SIGNATURE")
    signed = apple_chain.sign(transaction(CREDITS100))
    head, body, sig = signed.split(".")
    forged = json.loads(_b64d(body))
    forged["productId"] = "com.example.videogen.credits500"
    tampered = ".".join([head, _b64e(json.dumps(forged).encode()), sig])
    api.fails(apple(api, user, tampered), 401, "INVALID_SIGNATURE")
    other_app = apple_chain.sign(transaction(CREDITS100, bundleId="com.example.other"))
    api.fails(apple(api, user, other_app), 401, "INVALID_SIGNATURE")
    production = apple_chain.sign(transaction(CREDITS100, environment="Production"))
    api.fails(apple(api, user, production), 401, "INVALID_SIGNATURE")
    api.fails(apple(api, user, "not.a.jws"), 401, "INVALID_SIGNATURE")
    unknown = apple_chain.sign(transaction("com.example.videogen.nothing"))
    api.fails(apple(api, user, unknown), 422, "UNKNOWN_PRODUCT")
    revoked = apple_chain.sign(transaction(CREDITS100, revocationDate=int(time.time() * 1000)))
    api.fails(apple(api, user, revoked), 409, "PURCHASE_REVOKED")
    api.fails(api.post("update-credits", user=user, json={"action": "apple_transaction"}), 422)
    assert credits_of(api, user)["balance"] == 0


def _b64d(part: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _b64e(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def notify(api: Any, signed_payload: str) -> Any:
    return api.post("update-credits/apple-notifications", json={"signedPayload": signed_payload})


def test_an_app_store_refund_notification_claws_back_once(store_api, apple_chain):
    api = store_api
    user = api.user()
    payload = transaction(CREDITS100)
    api.ok(apple(api, user, apple_chain.sign(payload)))
    api.ok(api.post("update-credits", user=user, json={"action": "claim_initial_grant"}))

    revoked = {**payload, "revocationDate": int(time.time() * 1000), "revocationReason": 0,
               "revocationType": "REFUND_PRORATED", "revocationPercentage": 40_000}  # fmt: skip
    body = notification("REFUND", apple_chain.sign(revoked))
    signed = apple_chain.sign(body)
    done = api.ok(notify(api, signed))
    assert done["applied"] is True and done["reversal"]["credits"] == 40
    assert api.ok(notify(api, signed))["applied"] is False  # Apple retries the same one
    assert credits_of(api, user)["balance"] == 100 + 100 - 40

    other = api.ok(notify(api, apple_chain.sign(notification("CONSUMPTION_REQUEST", None))))
    assert other == {"applied": False, "reason": "ignored notification CONSUMPTION_REQUEST"}
    stranger = Chain.new("Not Apple")
    api.fails(notify(api, stranger.sign(body)), 401, "INVALID_SIGNATURE")
    api.fails(api.post("update-credits/apple-notifications", json={"nothing": 1}), 401)
    api.fails(api.post("update-credits/apple-notifications", content=b"{"), 401)
    resp = api.get("update-credits/apple-notifications", user=user)
    api.fails(resp, 405, "METHOD_NOT_ALLOWED")
    assert credits_of(api, user)["balance"] == 160


# Anonymous sessions signing in to an existing account -----------------------------------------


def merge(api: Any, user: Any, token: str) -> Any:
    body = {"action": "merge_anonymous", "anonymous_token": token}
    return api.post("update-credits", user=user, json=body)


def test_an_anonymous_sessions_bought_credits_follow_it_into_the_account(store_api):
    """What a guest bought moves; the free grant stays with the guest (not transferable)."""
    api = store_api
    device = api.user(anonymous=True)
    api.ok(api.post("update-credits", user=device, json={"action": "claim_initial_grant"}))
    bought = {"action": "purchase", "user_id": device.id, "transaction_id": "t-g", "credits": 30}
    api.ok(api.service("update-credits", bought))
    account = api.user(credits=50)
    moved = api.ok(merge(api, account, device.token))
    assert moved["applied"] is True and moved["merge"]["credits"] == 30
    assert moved["free_credits_kept"] == 20
    assert moved["entry"]["kind"] == "merge_in" and moved["balance"] == 80
    again = api.ok(merge(api, account, device.token))
    assert again["applied"] is False and again["merge"]["credits"] == 30
    assert credits_of(api, account)["balance"] == 80
    device_after = credits_of(api, device)
    assert device_after["balance"] == 20
    assert device_after["ledger"]["items"][0]["kind"] == "merge_out"


def test_merges_that_cannot_be_made_are_refused(store_api):
    api = store_api
    account = api.user()
    permanent = api.user(credits=5)
    api.fails(merge(api, account, permanent.token), 422, "NOT_ANONYMOUS")
    api.fails(merge(api, account, "not-a-token"), 422, "INVALID_ANONYMOUS_TOKEN")
    api.fails(merge(api, account, account.token), 422, "NOT_ANONYMOUS")
    busy = api.user(anonymous=True, credits=50)
    assert api.post("generate-video", user=busy, json=T2V).status_code == 202
    api.fails(merge(api, account, busy.token), 409, "MERGE_BLOCKED")
    device = api.user(anonymous=True, credits=5)
    api.fails(merge(api, device, busy.token), 403)  # an anonymous caller is no account
    body = {"action": "merge_anonymous", "anonymous_token": busy.token}
    api.fails(api.service("update-credits", body), 403, "FORBIDDEN")
    assert credits_of(api, account)["balance"] == 0
    assert credits_of(api, permanent)["balance"] == 5
