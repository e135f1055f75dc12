"""Files that have served their time: removed through Storage, then recorded in Postgres.

* A job its owner removed from their history loses its files at once (best effort, right
  after the removal commits) — and in any case at the next sweep.
* Outputs of jobs finished more than ``OUTPUT_RETENTION_DAYS`` ago (0: kept) and uploads
  older than ``UPLOAD_RETENTION_DAYS`` that no unfinished job names are removed by the
  sweep. A job whose files are gone keeps its row and ledger; it answers no links.

Storage first, database second: a file is marked gone only after Storage removed it, so a
failed removal is simply tried again by the next sweep.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from videogen.db import media_lifecycle
from videogen.errors import AppError
from videogen.models.ops import DueOutput, RetentionSweep

if TYPE_CHECKING:
    from collections.abc import Sequence

    from videogen.config import Settings
    from videogen.db.connection import Database
    from videogen.integrations.storage import Storage

log = logging.getLogger(__name__)
BATCH = 200


def remove_outputs(db: Database, storage: Storage, due: Sequence[DueOutput]) -> int:
    """Remove these outputs' files, then mark their jobs; how many were marked."""
    videos = [d.video_path for d in due if d.video_path] + [f for d in due for f in d.files]
    images = [d.image_path for d in due if d.image_path]
    thumbnails = [d.thumbnail_path for d in due if d.thumbnail_path]
    try:
        if videos:
            storage.remove("videos", videos)
        if images:
            storage.remove("images", images)
        if thumbnails:
            storage.remove("thumbnails", thumbnails)
    except AppError as exc:  # the next sweep tries again
        log.warning("could not remove %d outputs: %s", len(due), exc.code)
        return 0
    return media_lifecycle.jobs_mark_outputs_expired(db, [str(d.id) for d in due]) if due else 0


def sweep(db: Database, storage: Storage, settings: Settings) -> RetentionSweep:
    """One pass: removed jobs' and expired outputs' files, then old uploads."""
    with db.admin() as admin:
        due = media_lifecycle.jobs_outputs_due(admin, settings.output_retention_days, BATCH)
    expired = remove_outputs(db, storage, due)
    removed = 0
    if settings.upload_retention_days > 0:
        with db.admin() as admin:
            uploads = media_lifecycle.uploads_due(admin, settings.upload_retention_days, BATCH)
        try:
            if uploads:
                storage.remove("uploads", uploads)
                removed = len(uploads)
        except AppError as exc:
            log.warning("could not remove %d old uploads: %s", len(uploads), exc.code)
    return RetentionSweep(outputs_expired=expired, uploads_removed=removed)
