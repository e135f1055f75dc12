"""The user's own profile: display name, language and theme (column grants let a user
change these and nothing else)."""

from __future__ import annotations

from videogen.db import profiles
from videogen.db.connection import Session
from videogen.errors import NotFound
from videogen.models.catalogue import Profile, ProfileChange


def read(session: Session) -> Profile:
    """The caller's own profile (404 without one)."""
    found = profiles.get_profile(session)
    if found is None:
        raise NotFound("No profile for this user.", code="PROFILE_NOT_FOUND")
    return found


def change(session: Session, body: ProfileChange) -> Profile:
    """Change the caller's display name, language or theme; nothing else is theirs to."""
    return profiles.update_profile(
        session, display_name=body.display_name, language=body.language, theme=body.theme
    )
