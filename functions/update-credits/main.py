"""update-credits — balances, the ledger, grants, purchases, refunds and account merges.

GET  ?page=&limit= (user) → 200 {balance, reserved, debt, initial_grant_claimed, ledger: page}
GET  /profile (user) → 200 your profile: display name, language, theme, tier, credits, limits
PATCH /profile (user) {display_name?, language?, theme?} → 200 the profile (nothing else of
     it is yours to change: tier, balance and limits are the service's)
POST (user)   {"action": "claim_initial_grant"} → 200 once; 409 ALREADY_CLAIMED after
POST (user)   {"action": "apple_transaction", signed_transaction} → 200 a StoreKit 2
     purchase, verified and credited once per transaction (APPLE_PRODUCT_CREDITS)
POST (user)   {anonymous_token, "action": "merge_anonymous"} → 200 the anonymous session's
     credits move to your account, once (409 MERGE_BLOCKED while it has unfinished jobs or
     debt, 422 NOT_ANONYMOUS)
POST (secret) {"action": "grant"|"adjust", user_id, amount, grant_id}  idempotent by grant_id
POST (secret) {"action": "purchase", user_id, transaction_id, credits} idempotent by id
POST (Stripe) a Stripe webhook (Stripe-Signature verified): checkout.session.completed with
     metadata.user_id credits the buyer once per session id; refund.created and
     charge.dispute.created claw the session's credits back once per refund/dispute id;
     customer.subscription.* set the tier, invoice.paid grants the period's credits once.
POST /apple-notifications (App Store Server Notifications V2, the signed payload verified):
     REFUND claws back the transaction's credits once; SUBSCRIBED / DID_RENEW / EXPIRED /
     DID_FAIL_TO_RENEW of an auto-renewable subscription set the tier (a period's credits
     once per transaction).
GET  /keys (user) → 200 {keys: [{provider, last4, created_at, rotated_at}]}: which providers
     you have your own key for — never the key.
PUT  /keys (user) {provider: openai|fal|replicate|runway, key} → 201 stored / 200 rotated
     (the old value is gone); 422 for a malformed key (the details never repeat it).
     Kept encrypted in Supabase Vault and used only for your own jobs.
DELETE /keys?provider= (user) → 200 {provider, deleted}; 404 PROVIDER_KEY_NOT_FOUND.
GET  /api-keys (user) → 200 {keys: [{id, name, masked: "vg_live_…abcd", scopes, state, …}]}
POST /api-keys (user) {name?, scopes?: [read, jobs], expires_in_seconds?} → 201 the key,
     shown this once (kept as its SHA-256); 409 API_KEY_LIMIT; rate limited per hour.
DELETE /api-keys?id= (user) → 200 revoked: every request with it is a 401 from now on.
GET  /account (user, a session) → 200 everything we hold about you, one JSON document
     (Content-Disposition: attachment), your files as signed links.
DELETE /account (user, signed in within ACCOUNT_REAUTH_SECONDS) → 200 your files, personal
     data and auth user deleted; the ledger stays, under an id that names nobody. 403
     REAUTHENTICATION_REQUIRED with an older sign-in; 409 ACCOUNT_BUSY while a job runs.
GET  /webhook-secret (user) → 200 {secret: whsec_…, created_at, rotated_at}: the key your
     webhook deliveries are signed with (Standard Webhooks); POST /webhook-secret (user)
     {"action": "rotate"} (or no body) → 200 a new one; the old one signs nothing after.
Each answer carries {applied, entry}: a repeated id is applied=false, never credited twice.
A personal API key may read (GET /, /profile) with the read scope; it may not move money,
change the profile, manage keys or touch the account (403 SESSION_REQUIRED).
"""

from typing import Annotated

import functions_framework
from pydantic import ConfigDict, Field, TypeAdapter

from videogen.db.outcomes import Outcome
from videogen.errors import Forbidden
from videogen.kit.auth import verify_token_field
from videogen.kit.context import Context
from videogen.kit.endpoint import Reply, Route, parse, serve
from videogen.kit.routes import READS, SESSION
from videogen.models.accounts import ApiKeyQuery, ApiKeyRequest
from videogen.models.catalogue import ProfileChange
from videogen.models.credits import (
    AppleNotification,
    AppleTransaction,
    ClaimInitialGrant,
    CreditResult,
    GrantCredits,
    MergeAnonymous,
    PageQuery,
    PurchaseCredits,
)
from videogen.models.keys import ProviderKeyQuery, ProviderKeyRequest
from videogen.models.webhooks import RotateSecret
from videogen.services import account, api_keys, credits, keys, profile, webhooks

Action = Annotated[
    ClaimInitialGrant | AppleTransaction | MergeAnonymous | GrantCredits | PurchaseCredits,
    Field(discriminator="action"),
]
# Built on first use, as the models are (cold start).
_action = TypeAdapter(Action, config=ConfigDict(defer_build=True))
USER_ACTIONS = (ClaimInitialGrant, AppleTransaction, MergeAnonymous)


def credits_route(ctx: Context) -> Reply:
    """/ : read (GET) or change (POST) credits."""
    if ctx.request.method == "GET":
        query = ctx.query(PageQuery)
        with ctx.db.session(ctx.principal) as session:
            return Reply(
                200, credits.overview(session, query.page, query.limit, query.sort, query.order)
            )
    if ctx.principal.kind == "stripe":
        return Reply.of(credits.from_stripe(ctx.scope, ctx.principal.evidence))
    action = parse(_action, ctx.json())
    if isinstance(action, USER_ACTIONS):
        if not ctx.principal.is_user:
            raise Forbidden(f"Only a signed-in user can '{action.action}'.")
        return Reply.of(user_action(ctx, action))
    if not ctx.principal.is_service:
        raise Forbidden(f"'{action.action}' needs the service role (a secret key).")
    if isinstance(action, GrantCredits):
        return Reply.of(credits.grant(ctx.scope, action))
    return Reply.of(credits.purchase(ctx.scope, action))


def user_action(
    ctx: Context, action: ClaimInitialGrant | AppleTransaction | MergeAnonymous
) -> Outcome[CreditResult]:
    """The writes a signed-in user asks for."""
    if isinstance(action, AppleTransaction):
        return credits.purchase_from_apple(ctx.scope, action.signed_transaction)
    if isinstance(action, MergeAnonymous):
        with ctx.scope.writing():  # a token that is not one is this write's refusal
            anonymous = verify_token_field(
                action.anonymous_token,
                "anonymous_token",
                code="INVALID_ANONYMOUS_TOKEN",
                hint="Send the anonymous session's current access token (refresh it first).",
                settings=ctx.settings,
            )
        return credits.merge_anonymous(ctx.scope, anonymous)
    return credits.claim_initial_grant(ctx.scope, device_token=action.device_token)


def profile_route(ctx: Context) -> Reply:
    """/profile: the caller's own profile, and the preferences they may change."""
    change = ctx.body(ProfileChange) if ctx.request.method == "PATCH" else None
    with ctx.db.session(ctx.principal) as session:
        if change is not None:
            return Reply(200, profile.change(session, change))
        return Reply(200, profile.read(session))


def keys_route(ctx: Context) -> Reply:
    """/keys: your own provider keys — list (masked), store or rotate, forget."""
    method = ctx.request.method
    if method == "GET":
        with ctx.db.session(ctx.principal) as session:
            return Reply(200, keys.listing(session))
    if method == "PUT":
        body = ctx.body(ProviderKeyRequest)
        return Reply.of(keys.store(ctx.scope, body))
    provider = ctx.query(ProviderKeyQuery).provider
    return Reply.of(keys.remove(ctx.scope, provider))


def webhook_secret_route(ctx: Context) -> Reply:
    """/webhook-secret: the secret your webhook deliveries are signed with; POST rotates it."""
    if ctx.request.method == "GET":
        return Reply(200, webhooks.secret(ctx.db, ctx.principal))
    if ctx.raw_body:
        ctx.body(RotateSecret)
    return Reply.of(webhooks.rotate_secret(ctx.scope))


def api_keys_route(ctx: Context) -> Reply:
    """/api-keys: your personal API keys — list (masked), make (shown once), revoke."""
    method = ctx.request.method
    if method == "GET":
        with ctx.db.session(ctx.principal) as session:
            return Reply(200, api_keys.listing(session))
    if method == "POST":
        return Reply.of(api_keys.create(ctx.scope, ctx.body(ApiKeyRequest)))
    return Reply.of(api_keys.revoke(ctx.scope, str(ctx.query(ApiKeyQuery).id)))


def account_route(ctx: Context) -> Reply:
    """/account: export everything about you (GET), or delete your account (DELETE)."""
    if ctx.request.method == "GET":
        document = account.export(ctx.scope)
        name = f"videogen-export-{ctx.principal.user_id}.json"
        return Reply(200, document, {"Content-Disposition": f'attachment; filename="{name}"'})
    return Reply(200, account.delete(ctx.scope))


def apple_notifications_route(ctx: Context) -> Reply:
    """/apple-notifications: an App Store Server Notification, its signature verified."""
    ctx.body(AppleNotification)  # the shape, now that the signature is verified
    notification = ctx.principal.evidence
    return Reply.of(credits.from_apple_notification(ctx.scope, notification))


CREDIT_WRITERS = ("user", "secret", "stripe_signature")
APP_STORE = ("app_store_signature",)

# The route table: the kit, its 404/405 answers and openapi.yaml all read it.
update_credits = functions_framework.http(
    serve(
        "update-credits",
        [
            Route(None, {"GET": READS, "POST": CREDIT_WRITERS}, credits_route),
            Route("/profile", {"GET": READS, "PATCH": SESSION}, profile_route),
            Route("/apple-notifications", {"POST": APP_STORE}, apple_notifications_route),
            # Before /keys: a sub-path is matched by its end, and /api-keys ends in /keys.
            Route(
                "/api-keys", {"GET": SESSION, "POST": SESSION, "DELETE": SESSION}, api_keys_route
            ),
            Route("/keys", {"GET": SESSION, "PUT": SESSION, "DELETE": SESSION}, keys_route),
            Route("/account", {"GET": SESSION, "DELETE": SESSION}, account_route),
            Route("/webhook-secret", {"GET": SESSION, "POST": SESSION}, webhook_secret_route),
        ],
    )
)
