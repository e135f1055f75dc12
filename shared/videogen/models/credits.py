"""Credits: grants, purchases, store transactions and merges, and the ledger as answered."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from videogen.models.common import NonBlank, Open, Page, SortOrder, Strict, order_field

# Requests ---------------------------------------------------------------------------------


class ClaimInitialGrant(Strict):
    """The caller's one-time starting credits."""

    action: Literal["claim_initial_grant"]
    device_token: str | None = Field(
        None,
        min_length=1,
        max_length=8192,
        description="From the iOS app: DCDevice's token, checked with Apple's DeviceCheck "
        "so that one device takes one free grant.",
    )


class GrantCredits(Strict):
    """Service only: grant (positive) or adjust (either sign) a user's balance."""

    action: Literal["grant", "adjust"]
    user_id: UUID
    amount: int = Field(ge=-1_000_000, le=1_000_000)
    grant_id: NonBlank = Field(max_length=150, description="Idempotent by this id.")
    description: str = Field("", max_length=200)


class PurchaseCredits(Strict):
    """Service only: credit a store purchase verified elsewhere, once per transaction id."""

    action: Literal["purchase"]
    user_id: UUID
    transaction_id: NonBlank = Field(max_length=150)
    credits: int = Field(ge=1, le=10_000_000)
    description: str = Field("purchase", max_length=200)


class AppleTransaction(Strict):
    """A signed-in user's App Store purchase: StoreKit 2's signed transaction (JWS)."""

    action: Literal["apple_transaction"]
    signed_transaction: NonBlank = Field(
        max_length=16_384, description="`Transaction.jwsRepresentation` from StoreKit 2."
    )


class MergeAnonymous(Strict):
    """Move an anonymous (device) session's credits to the signed-in account, once."""

    action: Literal["merge_anonymous"]
    anonymous_token: NonBlank = Field(
        max_length=8_192, description="The access token of the anonymous session."
    )


class AppleNotification(Strict):
    """An App Store Server Notification V2, as Apple posts it."""

    signedPayload: NonBlank = Field(max_length=65_536)


class PageQuery(Strict):
    """?page=&limit=&sort=&order= for ledger pages."""

    page: int = Field(1, ge=1, le=10_000)
    limit: int = Field(20, ge=1, le=100)
    sort: Literal["created", "amount"] = Field("created", description="The field to sort by.")
    order: SortOrder = order_field()


# Answers ----------------------------------------------------------------------------------

LedgerKind = Literal[
    "initial_grant",
    "grant",
    "purchase",
    "adjust",
    "reserve",
    "capture",
    "release",
    "clawback",
    "debt_settle",
    "merge_out",
    "merge_in",
]


class LedgerEntry(Open):
    """One append-only row of the ledger."""

    id: int
    kind: LedgerKind
    amount: int = Field(description="Change of the balance.")
    hold: int = Field(description="Change of the reserved credits.")
    debt: int = Field(0, description="Change of the debt (clawback, debt_settle).")
    balance_after: int
    reserved_after: int
    job_id: UUID | None
    external_id: str | None
    description: str
    created_at: datetime


class LedgerPage(Page):
    """A page of the ledger, newest first."""

    items: list[LedgerEntry]


class CreditsOverview(Open):
    """The caller's balance, reserved credits and one page of the ledger."""

    balance: int = Field(ge=0)
    reserved: int = Field(ge=0)
    debt: int = Field(
        0, ge=0, description="Credits owed after a refund; no new jobs while positive."
    )
    initial_grant_claimed: bool
    ledger: LedgerPage


class Purchase(Open):
    """A credited store purchase, as refunds are matched against it."""

    id: int
    store: Literal["stripe", "app_store"]
    transaction_id: str
    payment_ref: str | None
    product_id: str | None
    credits: int
    amount_minor: int | None = Field(description="What was paid, in minor units.")
    currency: str | None
    clawed_back: int = Field(description="Credits taken back by refunds and disputes so far.")
    created_at: datetime


class Reversal(Open):
    """A refund or dispute of a purchase, applied once per the store's id for it."""

    id: int
    kind: Literal["refund", "dispute"]
    reversal_id: str
    amount_minor: int | None
    share_per_100000: int | None
    credits: int = Field(description="Credits clawed back for it.")
    from_balance: int
    to_debt: int
    created_at: datetime


class Merge(Open):
    """An anonymous user's credits moved to a permanent account."""

    anonymous_id: UUID
    account_id: UUID
    credits: int
    merged_at: datetime


class Subscription(Open):
    """A store subscription as we last heard of it (the tier follows the active ones)."""

    store: Literal["stripe", "app_store"]
    subscription_id: str = Field(
        description="Stripe's sub_…, or the App Store's original transaction id."
    )
    product_id: str
    status: Literal["active", "past_due", "canceled", "expired", "refunded"]
    current_period_end: datetime | None
    event_at: datetime
    created_at: datetime
    updated_at: datetime


class CreditResult(Open):
    """A repeated grant, transaction, Stripe session, refund or merge answers applied=false.

    Purchases, refunds and merges also answer the account's credits after them (`balance`,
    `reserved`, `debt`) and, where a debt was paid off first, `debt_settled`. A merge moves
    what the guest bought; `free_credits_kept` is what stayed with the guest.
    """

    applied: bool
    entry: LedgerEntry | None = None
    reason: str | None = None
    purchase: Purchase | None = None
    reversal: Reversal | None = None
    merge: Merge | None = None
    balance: int | None = None
    reserved: int | None = None
    debt: int | None = None
    debt_settled: int | None = None
    # A merge: the guest's free credits that stayed with the guest (free credits never move).
    free_credits_kept: int | None = None
    # A subscription event: the profile's tier after it and the subscription's state.
    tier: str | None = None
    subscription: Subscription | None = None
