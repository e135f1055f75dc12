"""Credits as the functions use them: balance and ledger pages, grants, purchases, refunds
(Stripe and the App Store claw back what a purchase granted, sql/schema/16_purchases.sql),
and an anonymous session's credits merged into the account."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from videogen.db import reads, write_requests
from videogen.db.connection import Session
from videogen.db.outcomes import Outcome, WriteRequest
from videogen.errors import AppError, Forbidden, NotFound, ValidationFailed
from videogen.integrations.webhooks import stripe_id, stripe_object
from videogen.models.credits import (
    CreditResult,
    CreditsOverview,
    GrantCredits,
    LedgerPage,
    PurchaseCredits,
)
from videogen.services import subscriptions

if TYPE_CHECKING:
    from videogen.config import Settings
    from videogen.db.connection import Database
    from videogen.integrations.apple import AppleNotification
    from videogen.integrations.devicecheck import DeviceCheckClient
    from videogen.principal import Principal
    from videogen.services.scope import Scope

log = logging.getLogger(__name__)


def overview(
    session: Session, page: int, limit: int, sort: str = "created", order: str = "desc"
) -> CreditsOverview:
    """The caller's balance, reserved credits and one page of the ledger, sorted."""
    result = reads.get_credits(session, limit, (page - 1) * limit, sort, order)
    if result is None:
        raise NotFound("No profile for this user.")
    return CreditsOverview(
        balance=result["balance"],
        reserved=result["reserved"],
        debt=result.get("debt", 0),
        initial_grant_claimed=result["initial_grant_claimed"],
        ledger=LedgerPage.of(result["items"], result["total"], page, limit),
    )


def claim_initial_grant(
    scope: Scope,
    *,
    device_token: str | None = None,
    device_check: DeviceCheckClient | None = None,
) -> Outcome[CreditResult]:
    """The user's one-time free credits (409 ALREADY_CLAIMED the second time).

    The database decides by account, mailbox and client address
    (``public.claim_initial_grant``; None: a loopback client of the local stack, not
    limited by address). With a DeviceCheck token, Apple decides by device
    first: bit 0 set means this device took its free credits (409 DEVICE_ALREADY_CLAIMED);
    it is set once the grant is made. ``device_check`` is built from the settings when not
    given.
    """
    with scope.writing() as write:
        return _claim_initial_grant(scope, write, device_token, device_check)


def _claim_initial_grant(
    scope: Scope,
    write: WriteRequest,
    device_token: str | None,
    device_check: DeviceCheckClient | None,
) -> Outcome[CreditResult]:
    principal, settings = scope.principal, scope.settings
    checked = False
    if device_token is not None:
        if device_check is None:
            # cold start: integrations.devicecheck loads only on this path
            from videogen.integrations.devicecheck import devicecheck_client

            # cold start: services.routing loads only on this path
            from videogen.services.routing import shared_client

            device_check = devicecheck_client(settings, shared_client())
        if device_check.query_two_bits(device_token).bit0:
            raise AppError(
                "This device already took its free credits.",
                status=409,
                code="DEVICE_ALREADY_CLAIMED",
                hint="Free credits come once per device; buy credits to go on.",
            )
        checked = True
    elif principal.is_anonymous and settings.guest_grant_requires_device_check:
        raise Forbidden(
            "Guests get free credits from the app only: send its DeviceCheck token.",
            code="DEVICE_CHECK_REQUIRED",
            hint="Or sign up with an email address.",
        )
    client = {"address": scope.client_address, "device_checked": checked}
    outcome = write_requests.claim_initial_grant_request(scope.db, principal, write, client)
    if checked and not outcome.replayed and device_check is not None:
        try:
            device_check.update_two_bits(device_token or "", bit0=True)
        except AppError:  # the grant stands; the device stays unmarked (logged)
            log.warning("DeviceCheck: could not mark the device after its grant", exc_info=True)
    return outcome


def grant(scope: Scope, body: GrantCredits) -> Outcome[CreditResult]:
    """Service: grant or adjust, once per grant id."""
    with scope.writing() as write:
        return _grant(scope.db, write, body)


def _grant(db: Database, write: WriteRequest, body: GrantCredits) -> Outcome[CreditResult]:
    return write_requests.grant_credits_request(
        db,
        write,
        user_id=str(body.user_id),
        amount=body.amount,
        grant_id=body.grant_id,
        kind=body.action,
        description=body.description,
    )


def purchase(scope: Scope, body: PurchaseCredits) -> Outcome[CreditResult]:
    """Service: credit a verified purchase, once per transaction id."""
    with scope.writing() as write:
        return _purchase(scope.db, write, body)


def _purchase(db: Database, write: WriteRequest, body: PurchaseCredits) -> Outcome[CreditResult]:
    return write_requests.purchase_credits_request(
        db,
        write,
        user_id=str(body.user_id),
        transaction_id=body.transaction_id,
        credits=body.credits,
        description=body.description,
    )


def _ignored(reason: str) -> Outcome[CreditResult]:
    return Outcome(200, CreditResult(applied=False, reason=reason))


def from_stripe(scope: Scope, event: dict[str, Any]) -> Outcome[CreditResult]:
    """A verified Stripe event: a paid Checkout Session credits the buyer (at
    CREDITS_PER_USD_CENT); a refund or a dispute of its payment claws the credits back;
    anything else is acknowledged."""
    with scope.writing() as write:
        return _from_stripe(scope.db, write, event, scope.settings.credits_per_usd_cent)


def _from_stripe(
    db: Database, write: WriteRequest, event: dict[str, Any], credits_per_cent: int
) -> Outcome[CreditResult]:
    kind = event.get("type")
    if kind in subscriptions.STRIPE_SUBSCRIPTION_EVENTS or kind == "invoice.paid":
        return subscriptions.from_stripe(db, write, event)
    if kind in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        return purchase_from_stripe(db, write, event, credits_per_cent)
    if kind == "refund.created":
        return refund_from_stripe(db, write, stripe_object(event), "refund")
    if kind == "charge.dispute.created":
        return refund_from_stripe(db, write, stripe_object(event), "dispute")
    return _ignored(f"ignored event {kind}")


def refund_from_stripe(
    db: Database, write: WriteRequest, obj: dict[str, Any], kind: str
) -> Outcome[CreditResult]:
    """A Refund (refund.created) or a Dispute (charge.dispute.created): matched to the
    purchase by its PaymentIntent, clawed back once per re_… / dp_… id, in proportion to
    its amount of what the session paid."""
    reversal_id = stripe_id(obj.get("id"))
    payment_intent = stripe_id(obj.get("payment_intent"))
    amount = obj.get("amount")
    if reversal_id is None or not isinstance(amount, int) or amount < 0:
        raise ValidationFailed(f"The Stripe {kind} has no id or amount.")
    if kind == "refund" and obj.get("status") in ("failed", "canceled"):
        return _ignored(f"refund {obj.get('status')}")
    if payment_intent is None:
        return _ignored(f"the {kind} names no payment intent")
    return write_requests.reverse_purchase_request(
        db,
        write,
        store="stripe",
        reversal_id=reversal_id,
        kind=kind,
        payment_ref=payment_intent,
        amount_minor=amount,
        description=f"Stripe {kind} {reversal_id}",
    )


def purchase_from_stripe(
    db: Database, write: WriteRequest, event: dict[str, Any], credits_per_cent: int
) -> Outcome[CreditResult]:
    """Credit a paid Stripe Checkout session (metadata.user_id; metadata.credits or amount)
    and remember its PaymentIntent and amount, which its refunds name."""
    session = stripe_object(event)
    if session.get("payment_status") not in ("paid", "no_payment_required"):
        return _ignored("not paid yet")
    meta = session.get("metadata") or {}
    user_id = meta.get("user_id") or session.get("client_reference_id")
    credits = int(meta.get("credits") or (session.get("amount_total") or 0) * credits_per_cent)
    # Validated as a purchase body would be (user id, a positive amount of credits).
    body = PurchaseCredits(
        action="purchase",
        user_id=user_id,
        transaction_id=f"stripe:{session['id']}",
        credits=credits,
        description="Stripe checkout",
    )
    amount = session.get("amount_total")
    return write_requests.record_purchase_request(
        db,
        write,
        user_id=str(body.user_id),
        store="stripe",
        transaction_id=str(session["id"]),
        credits=body.credits,
        payment_ref=stripe_id(session.get("payment_intent")),
        amount_minor=amount if isinstance(amount, int) else None,
        currency=session.get("currency") if isinstance(session.get("currency"), str) else None,
        product_id=None,
        description=body.description,
    )


def purchase_from_apple(scope: Scope, signed: str) -> Outcome[CreditResult]:
    """A signed-in user's StoreKit 2 transaction: verified, then credited once per
    transaction (a non-consumable: once per original transaction) with the credits its
    product is worth (APPLE_PRODUCT_CREDITS)."""
    with scope.writing() as write:
        return _purchase_from_apple(scope.db, scope.principal, write, signed, scope.settings)


def _purchase_from_apple(
    db: Database, principal: Principal, write: WriteRequest, signed: str, settings: Settings
) -> Outcome[CreditResult]:
    # cold start: integrations.apple loads only on this path
    from videogen.integrations import apple

    transaction = apple.verify_transaction(signed, settings)
    token = transaction.app_account_token
    if token is not None and token.lower() != (principal.user_id or "").lower():
        raise Forbidden(
            "This purchase was made for another account (appAccountToken).",
            hint="Set appAccountToken to the user's id when purchasing.",
        )
    if transaction.revocation_date is not None:
        raise AppError(
            "This transaction was refunded or revoked.", status=409, code="PURCHASE_REVOKED"
        )
    credits = settings.apple_products().get(transaction.product_id)
    if credits is None:
        raise ValidationFailed(
            f"Product {transaction.product_id!r} grants no credits here.",
            code="UNKNOWN_PRODUCT",
            details=[{"field": "signed_transaction", "message": "unknown productId"}],
        )
    return write_requests.record_purchase_request(
        db,
        write,
        user_id=str(principal.user_id),
        store="app_store",
        transaction_id=transaction.credit_key,
        credits=credits,
        payment_ref=transaction.original_transaction_id,
        amount_minor=transaction.price,
        currency=transaction.currency,
        product_id=transaction.product_id,
        description=f"App Store {transaction.product_id}",
    )


def from_apple_notification(scope: Scope, notification: AppleNotification) -> Outcome[CreditResult]:
    """A verified App Store Server Notification: REFUND claws back the refunded
    transaction's credits once (in proportion to revocationPercentage when Apple gives
    one); every other type is acknowledged."""
    with scope.writing() as write:
        return _from_apple_notification(scope.db, write, notification)


def _from_apple_notification(
    db: Database, write: WriteRequest, notification: AppleNotification
) -> Outcome[CreditResult]:
    transaction = notification.transaction
    kind = notification.notification_type
    is_subscription = transaction is not None and transaction.type == subscriptions.AUTO_RENEWABLE
    if kind in subscriptions.APPLE_SUBSCRIPTION_TYPES or (kind == "REFUND" and is_subscription):
        return subscriptions.from_apple(db, write, notification)
    if notification.notification_type != "REFUND":
        return _ignored(f"ignored notification {notification.notification_type}")
    if transaction is None:
        raise ValidationFailed("The REFUND notification carries no transaction.")
    # One refund per transaction and revocation (Apple resends a notification with the same
    # notificationUUID; two notifications of one refund carry the same revocation).
    reversal_id = f"{transaction.transaction_id}:{transaction.revocation_date or 0}"
    return write_requests.reverse_purchase_request(
        db,
        write,
        store="app_store",
        reversal_id=reversal_id,
        kind="refund",
        transaction_id=transaction.credit_key,
        share_per_100000=transaction.revocation_percentage,
        description=f"App Store refund of {transaction.transaction_id}",
    )


def merge_anonymous(scope: Scope, anonymous: Principal) -> Outcome[CreditResult]:
    """Move the anonymous session's credits to the caller's account, once (``anonymous`` is
    that session's user, its token verified by the HTTP kit); the database refuses what is
    not anonymous or still busy."""
    with scope.writing() as write:
        if anonymous.user_id is None:
            raise ValidationFailed("The anonymous token names no user.")
        return write_requests.merge_anonymous_request(
            scope.db, scope.principal, write, anonymous.user_id
        )
