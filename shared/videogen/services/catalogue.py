"""What a frontend shows before anything is bought: the voices and quotes
(sql/schema/15_catalogue_quotes.sql); the models themselves are
:func:`videogen.services.jobs.models`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from videogen.db import reads
from videogen.db.connection import Session
from videogen.errors import ValidationFailed
from videogen.models.catalogue import Quote, QuoteRequest, Voice, VoiceList, VoiceQuery

if TYPE_CHECKING:
    from videogen.config import Settings


def voices(session: Session, settings: Settings, query: VoiceQuery) -> VoiceList:
    """The narration voices, optionally of one engine and language: the catalogue's, and
    where the offline engine speaks (``TTS_ENGINE=espeak``) every language of the installed
    espeak-ng — with ``variants`` (a language is needed then) each in every variant."""
    if query.variants and query.language is None:
        raise ValidationFailed(
            "Voice variants are listed for a language: add language=…",
            details=[{"field": "variants", "message": "needs language"}],
        )
    listed = reads.list_voices(session, query.engine, query.language)
    if settings.tts_engine == "espeak" and query.engine in (None, "espeak"):
        # cold start: media.narration loads only on this path
        from videogen.media.narration import espeak_voices

        seen = {v.id for v in listed}
        for v in espeak_voices(query.language, variants=query.variants):
            if f"espeak:{v.code}" in seen:
                continue
            described = (
                f"Offline (espeak-ng), {'variant ' + v.variant if v.variant else 'default'}."
            )
            listed.append(
                Voice(
                    id=f"espeak:{v.code}", engine="espeak", language=v.language, name=v.name,
                    gender=v.gender, description=described, variant=v.variant,
                )
            )  # fmt: skip
    return VoiceList(listed)


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
