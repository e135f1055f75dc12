"""A user's account as a whole: personal API keys, share links, the export and the deletion."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field, StringConstraints, field_validator

from videogen.models.common import Fixed, Open, Strict

# Requests ---------------------------------------------------------------------------------

ApiKeyScope = Literal["read", "jobs"]
ALL_SCOPES: tuple[ApiKeyScope, ...] = ("read", "jobs")
# A share link's id: 32 URL-safe characters (24 random bytes, 192 bits).
ShareId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{22,64}$")]
MAX_EXPIRY_SECONDS = 366 * 86_400


class ApiKeyRequest(Strict):
    """POST /update-credits/api-keys: a new personal API key for your own servers. The key
    is in this answer only; afterwards it is shown masked (``vg_live_…abcd``)."""

    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=80)] = Field(
        "", description="What the key is for, e.g. the server that uses it."
    )
    scopes: list[ApiKeyScope] = Field(
        default_factory=lambda: list(ALL_SCOPES),
        min_length=1,
        max_length=2,
        description="read: every GET of your data; jobs: create, cancel and remove jobs "
        "(and batches). Both by default.",
    )
    expires_in_seconds: int | None = Field(
        None,
        ge=60,
        le=MAX_EXPIRY_SECONDS,
        description="The key stops working after this long; none: until revoked.",
    )

    @field_validator("scopes")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return sorted(set(value))


class ApiKeyQuery(Strict):
    """DELETE /update-credits/api-keys?id=: revoke one of your keys."""

    id: UUID


class ShareLinkRequest(Strict):
    """POST /queue-job/share-links: a public link to one of your completed videos."""

    job_id: UUID
    expires_in_seconds: int | None = Field(
        None,
        ge=60,
        le=MAX_EXPIRY_SECONDS,
        description="The link stops working after this long; none: until revoked.",
    )


class ShareLinkQuery(Strict):
    """?id=<share link id>."""

    id: ShareId


class SharedQuery(Strict):
    """GET /queue-job/shared?id=<share link id>[&format=json]: the shared video."""

    id: ShareId
    format: Literal["redirect", "json"] = Field(
        "redirect",
        description="redirect (the default): 302 to a fresh signed URL of the video; json: "
        "the video's metadata and signed URLs.",
    )


# Answers ----------------------------------------------------------------------------------


class ApiKey(Open):
    """One of your API keys as it may be shown: never the key nor its hash."""

    id: UUID
    name: str
    masked: str = Field(description="The prefix and the last four characters: vg_live_…abcd.")
    scopes: list[ApiKeyScope]
    state: Literal["active", "revoked", "expired"]
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class ApiKeyCreated(ApiKey):
    """A new key, with the key itself — shown this once, never again."""

    key: str = Field(description="Send it as `Authorization: Bearer <key>` (or `X-API-Key`).")


class ApiKeyList(Fixed):
    """Your API keys, newest first (revoked and expired ones too)."""

    keys: list[ApiKey]


class ShareLink(Open):
    """A share link as its owner sees it."""

    id: str
    job_id: UUID
    state: Literal["active", "revoked", "expired"]
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    url: str | None = Field(None, description="The public URL to hand out.")


class ShareLinkList(Fixed):
    """Your share links, newest first."""

    links: list[ShareLink]


class SharedVideo(Open):
    """A shared video, as anyone holding its link sees it."""

    job_id: UUID
    video_url: str
    thumbnail_url: str | None = None
    duration_s: float | None = None
    links_expire_at: datetime
    expires_at: datetime | None = Field(None, description="When the share link itself ends.")


class AccountExport(Open):
    """Everything we hold about you: one array per table, ``counts`` of their rows, and
    ``files`` with links signed for ``links_expire_at``."""

    user: dict[str, Any] | None = None
    profile: dict[str, Any] | None = None
    counts: dict[str, int]
    files: list[dict[str, Any]]
    exported_at: datetime | None = None
    links_expire_at: datetime | None = None


class AccountDeleted(Open):
    """An account deleted: its files and personal data are gone; its ledger stays, under an
    id that no longer names anyone."""

    deleted: bool
    user_id: UUID
    files_removed: int = Field(ge=0)
    jobs_erased: int = Field(ge=0)
    events_erased: int = Field(ge=0)
