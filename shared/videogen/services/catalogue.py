"""What a frontend shows before anything is bought: the voices and quotes
(sql/schema/15_catalogue_quotes.sql); the models themselves are
:func:`videogen.services.jobs.models`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from videogen.db import reads
from videogen.db.connection import Session
from videogen.models.catalogue import Quote, QuoteRequest, VoiceList, VoiceQuery

if TYPE_CHECKING:
    from videogen.config import Settings


def voices(session: Session, query: VoiceQuery) -> VoiceList:
    """The narration voices, optionally of one engine and language."""
    return VoiceList(reads.list_voices(session, query.engine, query.language))


def quote(session: Session, settings: Settings, body: QuoteRequest) -> Quote:
    """Cost, queue and estimate of each request, without creating a job; a composed video
    also says whether generate-video would render it at once (200) and how long that takes."""
    # cold start: rendering.composition loads only on this path
    from videogen.rendering import composition

    result = reads.quote_jobs(session, [item.as_item() for item in body.items])
    for item in result.items:
        if item.job_type == "compose":
            estimate = composition.estimated_render_seconds(item.params)
            item.estimated_render_seconds = round(estimate, 1)
            item.sync = estimate <= settings.sync_render_max_seconds
    return result
