"""Credits as the functions use them: balance and ledger pages, grants, purchases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from videogen import procedures
from videogen.db import Session
from videogen.errors import NotFound
from videogen.results import CreditResult, CreditsOverview, LedgerPage
from videogen.schemas import GrantCredits, PurchaseCredits
from videogen.writes import Outcome, WriteRequest

if TYPE_CHECKING:
    from videogen.auth import Principal
    from videogen.db import Database


def overview(session: Session, page: int, limit: int) -> CreditsOverview:
    """The caller's balance, reserved credits and one page of the ledger."""
    result = procedures.get_credits(session, limit, (page - 1) * limit)
    if result is None:
        raise NotFound("No profile for this user.")
    return CreditsOverview(
        balance=result["balance"],
        reserved=result["reserved"],
        initial_grant_claimed=result["initial_grant_claimed"],
        ledger=LedgerPage.of(result["items"], result["total"], page, limit),
    )


def claim_initial_grant(
    db: Database, principal: Principal, write: WriteRequest
) -> Outcome[CreditResult]:
    """The user's one-time starting credits (409 ALREADY_CLAIMED the second time)."""
    return procedures.claim_initial_grant_request(db, principal, write)


def grant(db: Database, write: WriteRequest, body: GrantCredits) -> Outcome[CreditResult]:
    """Service: grant or adjust, once per grant id."""
    return procedures.grant_credits_request(
        db,
        write,
        user_id=str(body.user_id),
        amount=body.amount,
        grant_id=body.grant_id,
        kind=body.action,
        description=body.description,
    )


def purchase(db: Database, write: WriteRequest, body: PurchaseCredits) -> Outcome[CreditResult]:
    """Service: credit a verified purchase, once per transaction id."""
    return procedures.purchase_credits_request(
        db,
        write,
        user_id=str(body.user_id),
        transaction_id=body.transaction_id,
        credits=body.credits,
        description=body.description,
    )


def purchase_from_stripe(
    db: Database, write: WriteRequest, event: dict[str, Any], credits_per_cent: int
) -> Outcome[CreditResult]:
    """Credit a paid Stripe Checkout session (metadata.user_id; metadata.credits or amount)."""
    if event.get("type") not in (
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
    ):
        return Outcome(
            200, CreditResult(applied=False, reason=f"ignored event {event.get('type')}")
        )
    session = event["data"]["object"]
    if session.get("payment_status") not in ("paid", "no_payment_required"):
        return Outcome(200, CreditResult(applied=False, reason="not paid yet"))
    meta = session.get("metadata") or {}
    user_id = meta.get("user_id") or session.get("client_reference_id")
    credits = int(meta.get("credits") or (session.get("amount_total") or 0) * credits_per_cent)
    body = PurchaseCredits(
        action="purchase",
        user_id=user_id,
        transaction_id=f"stripe:{session['id']}",
        credits=credits,
        description="Stripe checkout",
    )
    return purchase(db, write, body)
