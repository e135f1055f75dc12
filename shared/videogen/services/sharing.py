"""Share links (seed 004's public URLs): the owner hands out a link to a finished video.

A link's id is its capability: 24 random bytes from :mod:`secrets`, URL-safe (192 bits),
drawn here and kept in ``public.share_links`` (the owner lists their links and may copy one
again). Anyone holding it gets the video through ``GET /queue-job/shared?id=`` without
credentials: a 302 to a freshly signed URL of the file (or, with ``format=json``, the
video's metadata and signed URLs). The answer may be cached by a CDN — ``public,
max-age`` — for at most :data:`MAX_CACHE_SECONDS`, half the signed URL's life and the time
left on the link, so a cached redirect never outlives its signed URL or the link, and a
revoked link stops within minutes everywhere; an unknown id is a 404, a revoked or expired
one (or a video removed or expired) a 410, both ``no-store``.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote

from videogen.db import accounts
from videogen.errors import AppError, NotFound
from videogen.models.accounts import SharedVideo, ShareLinkList

if TYPE_CHECKING:
    from videogen.config import Settings
    from videogen.db.connection import Database, Session
    from videogen.db.outcomes import Outcome
    from videogen.integrations.storage import Storage
    from videogen.models.accounts import ShareLink, ShareLinkRequest
    from videogen.services.scope import Scope

MAX_CACHE_SECONDS = 300  # how long a revoked link may still be served from a CDN's cache


def new_id() -> str:
    """A fresh, unguessable link id (192 bits, URL-safe)."""
    return secrets.token_urlsafe(24)


def public_url(settings: Settings, link_id: str) -> str:
    """Where anyone opens a share link."""
    return f"{settings.functions_url.rstrip('/')}/queue-job/shared?id={quote(link_id)}"


def _with_url(link: ShareLink, settings: Settings) -> ShareLink:
    link.url = public_url(settings, link.id)
    return link


def create(scope: Scope, body: ShareLinkRequest) -> Outcome[ShareLink]:
    """Share one of the caller's completed videos (201 with the public URL)."""
    expires_at = (
        None
        if body.expires_in_seconds is None
        else datetime.now(UTC) + timedelta(seconds=body.expires_in_seconds)
    )
    with scope.writing() as write:
        outcome = accounts.share_link_create(
            scope.db, scope.principal, write, new_id(), str(body.job_id), expires_at
        )
    _with_url(outcome.data, scope.settings)
    return outcome


def revoke(scope: Scope, link_id: str) -> Outcome[ShareLink]:
    """Revoke one of the caller's links: from now on it answers 410."""
    with scope.writing() as write:
        outcome = accounts.share_link_revoke(scope.db, scope.principal, write, link_id)
    _with_url(outcome.data, scope.settings)
    return outcome


def listing(session: Session, settings: Settings) -> ShareLinkList:
    """The caller's links, newest first, each with its public URL."""
    return ShareLinkList(
        links=[_with_url(link, settings) for link in accounts.share_links_list(session)]
    )


def open_link(
    db: Database, storage: Storage, settings: Settings, link_id: str
) -> tuple[SharedVideo, int]:
    """The shared video with freshly signed URLs, and how long the answer may be cached
    (seconds; 0: not at all). 404 for an unknown id, 410 once it no longer shares."""
    found = accounts.share_link_resolve(db, link_id)
    if found is None:
        raise NotFound("No such share link.", code="SHARE_LINK_NOT_FOUND")
    if found["state"] != "active":
        raise AppError(
            "This share link no longer shares a video.",
            status=410,
            code="SHARE_LINK_GONE",
            hint="Ask its owner for a new link.",
        )
    lifetime = settings.signed_url_expires_s
    now = datetime.now(UTC)
    video_url = storage.signed_url("videos", found["video_path"], lifetime)
    thumbnail = found.get("thumbnail_path")
    thumbnail_url = storage.signed_url("thumbnails", thumbnail, lifetime) if thumbnail else None
    expires_at = found.get("expires_at")
    cache = min(MAX_CACHE_SECONDS, lifetime // 2)
    if expires_at is not None:
        left = (datetime.fromisoformat(expires_at) - now).total_seconds()
        cache = min(cache, int(left))
    video = SharedVideo(
        job_id=found["job_id"],
        video_url=video_url,
        thumbnail_url=thumbnail_url,
        duration_s=found.get("duration_s"),
        links_expire_at=now + timedelta(seconds=lifetime),
        expires_at=expires_at,
    )
    return video, max(cache, 0)
