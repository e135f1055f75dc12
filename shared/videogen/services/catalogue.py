"""What a frontend shows before anything is bought: voices, quotes and the user's profile
(sql/schema/13_catalogue_quotes.sql); the models themselves are
:func:`videogen.services.jobs.models`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from videogen.db import procedures
from videogen.db.connection import Session
from videogen.errors import NotFound
from videogen.models.requests import ProfileChange, QuoteRequest, VoiceQuery
from videogen.models.results import Profile, Quote, VoiceList

if TYPE_CHECKING:
    from videogen.config import Settings


def voices(session: Session, query: VoiceQuery) -> VoiceList:
    """The narration voices, optionally of one engine and language."""
    return VoiceList(procedures.list_voices(session, query.engine, query.language))


def quote(session: Session, settings: Settings, body: QuoteRequest) -> Quote:
    """Cost, queue and estimate of each request, without creating a job; a composed video
    also says whether generate-video would render it at once (200) and how long that takes."""
    from videogen.rendering import composition

    result = procedures.quote_jobs(session, [item.as_item() for item in body.items])
    for item in result.items:
        if item.job_type == "compose":
            estimate = composition.estimated_render_seconds(item.params)
            item.estimated_render_seconds = round(estimate, 1)
            item.sync = estimate <= settings.sync_render_max_seconds
    return result


def profile(session: Session) -> Profile:
    """The caller's own profile (404 without one)."""
    found = procedures.get_profile(session)
    if found is None:
        raise NotFound("No profile for this user.", code="PROFILE_NOT_FOUND")
    return found


def change_profile(session: Session, body: ProfileChange) -> Profile:
    """Change the caller's display name, language or theme; nothing else is theirs to."""
    return procedures.update_profile(
        session, display_name=body.display_name, language=body.language, theme=body.theme
    )
