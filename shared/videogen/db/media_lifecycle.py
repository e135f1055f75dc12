"""Files past their retention (sql/schema/13_media_lifecycle.sql)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from videogen.db.calls import service_call
from videogen.models.ops import DueOutput

if TYPE_CHECKING:
    from collections.abc import Sequence

    from videogen.db.calls import Runs


def jobs_outputs_due(on: Runs, retention_days: int, limit: int) -> list[DueOutput]:
    """Outputs whose files should go: removed jobs, and outputs past their retention."""
    result = service_call(
        on, "service.jobs_list_outputs_due", retention_days=retention_days, limit=limit
    )
    return [DueOutput.model_validate(d) for d in result]


def jobs_mark_outputs_expired(on: Runs, job_ids: Sequence[str]) -> int:
    """Record that these jobs' files were removed; how many were marked."""
    return int(service_call(on, "service.jobs_mark_outputs_expired", job_ids=list(job_ids)))


def uploads_due(on: Runs, retention_days: int, limit: int) -> list[str]:
    """Upload paths past their retention that no unfinished job names."""
    return list(
        service_call(on, "service.uploads_list_due", retention_days=retention_days, limit=limit)
    )
