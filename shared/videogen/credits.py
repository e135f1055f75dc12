"""Credits as the functions use them: balance and ledger pages, grants, purchases."""

from __future__ import annotations

from typing import Any

from videogen.db import Session
from videogen.errors import NotFound
from videogen.http import paginated
from videogen.schemas import GrantCredits, PurchaseCredits


def overview(session: Session, page: int, limit: int) -> dict[str, Any]:
    """The caller's balance, reserved credits and one page of the ledger."""
    result = session.rpc("get_credits", limit=limit, offset=(page - 1) * limit)
    if result is None:
        raise NotFound("No profile for this user.")
    return {
        "balance": result["balance"],
        "reserved": result["reserved"],
        "initial_grant_claimed": result["initial_grant_claimed"],
        "ledger": paginated(result["items"], result["total"], page, limit),
    }


def claim_initial_grant(session: Session) -> dict[str, Any]:
    """The caller's one-time starting credits (409 ALREADY_CLAIMED the second time)."""
    result: dict[str, Any] = session.user_rpc("claim_initial_grant")
    return result


def grant(admin: Session, body: GrantCredits) -> dict[str, Any]:
    """Service: grant or adjust, once per grant id."""
    result: dict[str, Any] = admin.rpc(
        "grant_credits",
        user_id=str(body.user_id),
        amount=body.amount,
        grant_id=body.grant_id,
        kind=body.action,
        description=body.description,
    )
    return result


def purchase(admin: Session, body: PurchaseCredits) -> dict[str, Any]:
    """Service: credit a verified purchase, once per transaction id."""
    result: dict[str, Any] = admin.rpc(
        "purchase_credits",
        user_id=str(body.user_id),
        transaction_id=body.transaction_id,
        credits=body.credits,
        description=body.description,
    )
    return result


def purchase_from_stripe(
    admin: Session, event: dict[str, Any], credits_per_cent: int
) -> dict[str, Any]:
    """Credit a paid Stripe Checkout session (metadata.user_id; metadata.credits or amount)."""
    if event.get("type") not in (
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
    ):
        return {"applied": False, "reason": f"ignored event {event.get('type')}"}
    session = event["data"]["object"]
    if session.get("payment_status") not in ("paid", "no_payment_required"):
        return {"applied": False, "reason": "not paid yet"}
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
    return purchase(admin, body)
