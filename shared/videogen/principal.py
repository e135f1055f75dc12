"""Who is calling, once the HTTP kit has checked it: a value every layer may hold."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Kind", "Principal"]

Kind = Literal[
    "user",
    "public",
    "secret",
    "cron",
    "metrics",
    "worker",
    "stripe",
    "app_store",
    "provider",
    "none",
]


@dataclass(frozen=True)
class Principal:
    """The authenticated caller and the mode that let it in."""

    kind: Kind
    role: str
    user_id: str | None = None
    is_anonymous: bool = False
    claims: dict[str, Any] = field(default_factory=dict)
    token: str | None = field(default=None, repr=False)
    key_name: str | None = None
    delivery_id: str | None = None  # a signed webhook's id (replay protection)
    evidence: Any = field(default=None, repr=False)  # what a signature vouched for
    # A personal API key's scopes ("read", "jobs") and id; None for a session's token.
    scopes: frozenset[str] | None = None
    api_key_id: str | None = None

    @property
    def is_user(self) -> bool:
        """True when a signed-in (possibly anonymous) user is calling."""
        return self.kind == "user"

    @property
    def is_service(self) -> bool:
        """True when the caller holds a secret key and bypasses RLS."""
        return self.kind == "secret"

    @property
    def by_api_key(self) -> bool:
        """True when a user calls with a personal API key rather than a session's token."""
        return self.api_key_id is not None

    @property
    def email(self) -> str | None:
        """The user's email claim, if any."""
        value = self.claims.get("email")
        return value or None
