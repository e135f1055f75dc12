"""A user's own profile, read and changed as that user (sql/schema/15_catalogue_quotes.sql),
and the tiers the sweep takes back when subscriptions end (16_purchases.sql)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from videogen.db.calls import service_call
from videogen.models.catalogue import Profile

if TYPE_CHECKING:
    from videogen.db.calls import Runs
    from videogen.db.connection import Session


def get_profile(session: Session) -> Profile | None:
    """The caller's own profile, or None without one."""
    result = session.rpc("get_profile")
    return None if result is None else Profile.model_validate(result)


def update_profile(
    session: Session, *, display_name: str | None, language: str | None, theme: str | None
) -> Profile:
    """Change the caller's preferences, as the caller (RLS and column grants decide)."""
    result = session.rpc(
        "update_profile", display_name=display_name, language=language, theme=theme
    )
    return Profile.model_validate(result)


def subscriptions_expire(on: Runs) -> int:
    """Service (sweep): profiles whose subscriptions ended without a renewal go back to
    their remaining (or the free) tier; how many did."""
    return int(service_call(on, "service.subscriptions_expire"))
