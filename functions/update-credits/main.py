"""update-credits — balances, the ledger, grants and purchases.

GET  ?page=&limit= (user) → 200 {balance, reserved, initial_grant_claimed, ledger: page}
GET  /profile (user) → 200 your profile: display name, language, theme, tier, credits, limits
PATCH /profile (user) {display_name?, language?, theme?} → 200 the profile (nothing else of
     it is yours to change: tier, balance and limits are the service's)
POST (user)   {"action": "claim_initial_grant"} → 200 once; 409 ALREADY_CLAIMED after
POST (secret) {"action": "grant"|"adjust", user_id, amount, grant_id}  idempotent by grant_id
POST (secret) {"action": "purchase", user_id, transaction_id, credits} idempotent by id
POST (Stripe) a Stripe webhook (Stripe-Signature verified): checkout.session.completed with
     metadata.user_id credits the buyer once per session id.
Each answer carries {applied, entry}: a repeated id is applied=false, never credited twice.
"""

from typing import Annotated

import functions_framework
from pydantic import Field, TypeAdapter

from videogen import catalogue, credits
from videogen.errors import Forbidden, NotFound
from videogen.http import Context, Reply, endpoint, parse
from videogen.schemas import (
    ClaimInitialGrant,
    GrantCredits,
    PageQuery,
    ProfileChange,
    PurchaseCredits,
)

Action = Annotated[
    ClaimInitialGrant | GrantCredits | PurchaseCredits, Field(discriminator="action")
]
_action = TypeAdapter(Action)


@functions_framework.http
@endpoint(
    "update-credits",
    methods={"GET": ("user",), "POST": ("user", "secret", "stripe_signature")},
    routes={"/profile": {"GET": ("user",), "PATCH": ("user",)}},
)
def update_credits(ctx: Context) -> Reply:
    """Read (GET) or change (POST) credits; read or change your profile (/profile)."""
    if ctx.route == "/profile":
        return profile(ctx)
    if ctx.request.path.rstrip("/").rsplit("/", 1)[-1] not in ("", "update-credits"):
        raise NotFound("No such route on update-credits.", hint="Routes: /, /profile.")
    if ctx.request.method == "GET":
        query = ctx.query(PageQuery)
        with ctx.db.session(ctx.principal) as session:
            return Reply(200, credits.overview(session, query.page, query.limit))
    if ctx.principal.kind == "stripe":
        event, per_cent = ctx.principal.evidence, ctx.settings.credits_per_usd_cent
        return Reply.of(
            ctx.perform(lambda write: credits.purchase_from_stripe(ctx.db, write, event, per_cent))
        )
    action = parse(_action, ctx.json())
    if isinstance(action, ClaimInitialGrant):
        if not ctx.principal.is_user:
            raise Forbidden("Only a signed-in user can claim the initial grant.")
        return Reply.of(
            ctx.perform(lambda write: credits.claim_initial_grant(ctx.db, ctx.principal, write))
        )
    if not ctx.principal.is_service:
        raise Forbidden(f"'{action.action}' needs the service role (a secret key).")
    if isinstance(action, GrantCredits):
        return Reply.of(ctx.perform(lambda write: credits.grant(ctx.db, write, action)))
    return Reply.of(ctx.perform(lambda write: credits.purchase(ctx.db, write, action)))


def profile(ctx: Context) -> Reply:
    """/profile: the caller's own profile, and the preferences they may change."""
    change = ctx.body(ProfileChange) if ctx.request.method == "PATCH" else None
    with ctx.db.session(ctx.principal) as session:
        if change is not None:
            return Reply(200, catalogue.change_profile(session, change))
        return Reply(200, catalogue.profile(session))
