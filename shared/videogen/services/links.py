"""Links to a job's files, signed when the job is read — never stored.

A job's output keeps storage paths (``video_path`` or a picture's ``image_path``,
``thumbnail_path``, and a composed video's ``webm_path``, ``gif_path``, ``mp3_path``,
``poster_path``, ``vtt_path``, ``srt_path``); every answer that shows a job to its owner
(GET one, GET a page, a video rendered at once) gets ``video_url`` / ``image_url`` /
``thumbnail_url`` (``webm_url``, …) signed for
``SIGNED_URL_EXPIRES_SECONDS`` and ``links_expire_at``, so a link in a page the user just
loaded always works while the object exists. One signing call per bucket per answer
(Supabase Storage signs a batch). A realtime ``completed`` event carries no links: its
consumer reads the job.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from videogen.errors import AppError
from videogen.models.jobs import Batch, Job, JobPage

if TYPE_CHECKING:
    from pydantic import BaseModel

    from videogen.integrations.storage import Storage
    from videogen.models.jobs import Job

A = TypeVar("A", bound="BaseModel")  # an answer: a job, a page of them, a batch

log = logging.getLogger(__name__)

# (output field holding the path, its bucket, the field the link goes in): the video or
# picture, its thumbnail, and a composed video's other forms (rendering.outputs.EXTRA_KEYS).
FILES = (
    ("video_path", "videos", "video_url"),
    ("image_path", "images", "image_url"),
    ("thumbnail_path", "thumbnails", "thumbnail_url"),
    ("webm_path", "videos", "webm_url"),
    ("gif_path", "videos", "gif_url"),
    ("mp3_path", "videos", "mp3_url"),
    ("poster_path", "videos", "poster_url"),
    ("vtt_path", "videos", "vtt_url"),
    ("srt_path", "videos", "srt_url"),
)


def add_links(storage: Storage, jobs: Iterable[Job], expires_in: int) -> None:
    """Put freshly signed links to their files into the outputs of ``jobs`` (in place).

    Outputs whose files were removed (``output_expired_at``) get none. If storage cannot
    sign, the jobs are still answered, without links and with ``links_unavailable``.
    """
    wanted = [(job, job.output) for job in jobs if job.output and job.output_expired_at is None]
    paths: dict[str, set[str]] = {bucket: set() for _, bucket, _ in FILES}
    for _, output in wanted:
        for field, bucket, _ in FILES:
            if isinstance(path := output.get(field), str):
                paths[bucket].add(path)
    try:
        signed = {
            bucket: storage.signed_urls(bucket, sorted(names), expires_in)
            for bucket, names in paths.items()
            if names
        }
    except AppError as exc:
        log.warning("could not sign output links: %s", exc.code)
        for job, output in wanted:
            job.output = {**output, "links_unavailable": True}
        return
    until = (datetime.now(UTC) + timedelta(seconds=expires_in)).isoformat()
    for job, stored in wanted:
        output = dict(stored)
        for field, bucket, link in FILES:
            output.pop(link, None)  # never a link stored by an older release
            url = signed.get(bucket, {}).get(str(output.get(field)))
            if url:
                output[link] = url
        if any(link in output for _, _, link in FILES):
            output["links_expire_at"] = until
        job.output = output


def add_to(answer: A, storage: Storage, expires_in: int) -> A:
    """:func:`add_links` for an answer of one job, a page of them or a batch (its jobs);
    the answer (anything else is returned as it is). Called after the database session
    closed: signing is a Storage call, no connection waits on it."""
    if isinstance(answer, JobPage):
        add_links(storage, answer.items, expires_in)
    elif isinstance(answer, Batch):
        add_links(storage, answer.jobs, expires_in)
    elif isinstance(answer, Job):
        add_links(storage, [answer], expires_in)
    return answer
