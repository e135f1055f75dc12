"""Subscriptions from the stores: the profile's tier follows them and each paid period
grants its credits once (sql/schema/16_purchases.sql, ``service.subscription_record``).

- **Stripe** (Billing): ``customer.subscription.created|updated|deleted|paused|resumed``
  carry the subscription's state (the user is its ``metadata.user_id``, which Checkout copies
  from ``subscription_data.metadata``); ``invoice.paid`` grants the period's credits once per
  invoice id — the user from the invoice's subscription metadata, or whoever the subscription
  was recorded for. Both the API versions before and after 2025-03-31 (``invoice.parent``,
  ``pricing.price_details``, ``items.data[].current_period_end``) are read.
- **App Store** (Server Notifications V2, auto-renewable subscriptions): ``SUBSCRIBED`` and
  ``DID_RENEW`` grant the period's credits once per transaction id and make it active until
  ``expiresDate``; ``EXPIRED`` and ``GRACE_PERIOD_EXPIRED`` end it; ``DID_FAIL_TO_RENEW`` is
  past due; ``REFUND`` ends it and claws that period's credits back. The user is the
  transaction's ``appAccountToken``, or whoever the subscription was recorded for.

What a product is worth (tier, credits per period) is ``private.subscription_plans``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from videogen.db import write_requests
from videogen.db.outcomes import Outcome
from videogen.errors import ValidationFailed
from videogen.integrations.webhooks import stripe_id, stripe_object
from videogen.models.credits import CreditResult

if TYPE_CHECKING:
    from videogen.db.connection import Database
    from videogen.db.outcomes import WriteRequest
    from videogen.integrations.apple import AppleNotification

STRIPE_SUBSCRIPTION_EVENTS = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
    }
)
# Stripe's subscription statuses → ours (trialing counts as active; incomplete is not yet).
_STRIPE_STATUS = {
    "active": "active",
    "trialing": "active",
    "past_due": "past_due",
    "unpaid": "past_due",
    "canceled": "canceled",
    "incomplete_expired": "expired",
    "paused": "canceled",
}
APPLE_SUBSCRIPTION_TYPES = frozenset(
    {"SUBSCRIBED", "DID_RENEW", "EXPIRED", "GRACE_PERIOD_EXPIRED", "DID_FAIL_TO_RENEW"}
)
AUTO_RENEWABLE = "Auto-Renewable Subscription"


def _ignored(reason: str) -> Outcome[CreditResult]:
    return Outcome(200, CreditResult(applied=False, reason=reason))


def _at(seconds: Any) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if isinstance(seconds, int | float) else None


def _at_ms(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def _event_at(event: dict[str, Any]) -> datetime:
    return _at(event.get("created")) or datetime.now(UTC)


def _first(items: Any) -> dict[str, Any]:
    data = items.get("data") if isinstance(items, dict) else None
    return data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}


def _user_of(metadata: Any) -> str | None:
    value = metadata.get("user_id") if isinstance(metadata, dict) else None
    return value if isinstance(value, str) and value else None


def from_stripe(db: Database, write: WriteRequest, event: dict[str, Any]) -> Outcome[CreditResult]:
    """A verified Stripe Billing event (a subscription's state, or a paid invoice)."""
    if event.get("type") == "invoice.paid":
        return _stripe_invoice(db, write, event)
    sub = stripe_object(event)
    sub_id, item = stripe_id(sub.get("id")), _first(sub.get("items"))
    product = stripe_id(item.get("price")) or stripe_id(item.get("plan"))
    if sub_id is None or product is None:
        raise ValidationFailed("The Stripe subscription has no id or price.")
    status = _STRIPE_STATUS.get(str(sub.get("status")))
    if event.get("type") == "customer.subscription.deleted":
        status = "canceled"
    if status is None:
        return _ignored(f"subscription {sub.get('status')}: no tier yet")
    period_end = _at(item.get("current_period_end")) or _at(sub.get("current_period_end"))
    return write_requests.record_subscription_request(
        db,
        write,
        store="stripe",
        subscription_id=sub_id,
        product_id=product,
        status=status,
        event_at=_event_at(event),
        user_id=_user_of(sub.get("metadata")),
        current_period_end=period_end,
    )


def _stripe_invoice(
    db: Database, write: WriteRequest, event: dict[str, Any]
) -> Outcome[CreditResult]:
    invoice = stripe_object(event)
    # API ≥ 2025-03-31: invoice.parent.subscription_details; before: invoice.subscription.
    details = (invoice.get("parent") or {}).get("subscription_details") or invoice.get(
        "subscription_details"
    )
    details = details if isinstance(details, dict) else {}
    sub_id = stripe_id(details.get("subscription")) or stripe_id(invoice.get("subscription"))
    invoice_id = stripe_id(invoice.get("id"))
    if invoice_id is None:
        raise ValidationFailed("The Stripe invoice has no id.")
    if sub_id is None:
        return _ignored("the invoice is not for a subscription")
    line = _first(invoice.get("lines"))
    price = ((line.get("pricing") or {}).get("price_details") or {}).get("price")
    product = stripe_id(price) or stripe_id(line.get("price")) or stripe_id(line.get("plan"))
    if product is None:
        raise ValidationFailed("The Stripe invoice names no price.")
    amount = invoice.get("amount_paid")
    currency = invoice.get("currency")
    return write_requests.record_subscription_request(
        db,
        write,
        store="stripe",
        subscription_id=sub_id,
        product_id=product,
        status="active",
        event_at=_event_at(event),
        user_id=_user_of(details.get("metadata")),
        current_period_end=_at((line.get("period") or {}).get("end")),
        period_id=f"invoice:{invoice_id}",
        payment_ref=stripe_id(invoice.get("payment_intent")),
        amount_minor=amount if isinstance(amount, int) else None,
        currency=currency if isinstance(currency, str) else None,
    )


def from_apple(
    db: Database, write: WriteRequest, notification: AppleNotification
) -> Outcome[CreditResult]:
    """A verified App Store Server Notification about an auto-renewable subscription."""
    kind, transaction = notification.notification_type, notification.transaction
    if transaction is None:
        raise ValidationFailed(f"The {kind} notification carries no transaction.")
    period_id = status = reversal_id = None
    if kind in ("SUBSCRIBED", "DID_RENEW"):
        status, period_id = "active", transaction.transaction_id
    elif kind == "DID_FAIL_TO_RENEW":
        status = "past_due"
    elif kind in ("EXPIRED", "GRACE_PERIOD_EXPIRED"):
        status = "expired"
    elif kind == "REFUND":
        status, period_id = "refunded", transaction.transaction_id
        reversal_id = f"{transaction.transaction_id}:{transaction.revocation_date or 0}"
    else:
        return _ignored(f"ignored notification {kind}")
    return write_requests.record_subscription_request(
        db,
        write,
        store="app_store",
        subscription_id=transaction.original_transaction_id,
        product_id=transaction.product_id,
        status=status,
        event_at=_at_ms(notification.signed_date) or datetime.now(UTC),
        user_id=transaction.app_account_token,
        current_period_end=_at_ms(transaction.expires_date),
        period_id=period_id,
        payment_ref=transaction.original_transaction_id,
        amount_minor=transaction.price,
        currency=transaction.currency,
        reversal_id=reversal_id,
        share_per_100000=transaction.revocation_percentage if reversal_id else None,
    )
