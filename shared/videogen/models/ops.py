"""Health and operations: the scheduler's sweep and what it did, liveness, readiness and the
money audit."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from videogen.models.common import Fixed, Open, Strict
from videogen.models.webhooks import DeadlineSweep, DrainSummary

# Requests ---------------------------------------------------------------------------------


class Sweep(Strict):
    """The scheduler's health sweep (service role or cron secret)."""

    action: Literal["sweep"] = "sweep"


# Answers ----------------------------------------------------------------------------------


class MoneyAuditSummary(Fixed):
    """What the sweep's money audit found (details: `videogen audit`, or the server log)."""

    differences: int = Field(ge=0, description="Rows of public.audit_money(); 0 = healthy.")


class SweepSummary(Open):
    """What one health sweep did."""

    workers: dict[str, Any]
    leases: LeaseSweep
    deadlines: DeadlineSweep = Field(description="Jobs canceled at their deadline (cancel_after).")
    webhooks: DrainSummary = Field(description="Webhook deliveries the sweep sent.")
    reconciled: int
    runpod_endpoints: list[dict[str, Any]] = Field(
        description="GET /health of each RunPod endpoint (RUNPOD_API_KEY set)."
    )
    dispatched: int
    retention: RetentionSweep
    tiers_expired: int = Field(
        0, description="Profiles back to a lower tier: their subscriptions' periods ended."
    )
    cleanup: Cleanup
    money_audit: MoneyAuditSummary


class DueOutput(Fixed):
    """A job whose files are due for removal."""

    id: UUID
    video_path: str | None
    image_path: str | None = None
    thumbnail_path: str | None
    files: list[str] = []  # the other files of its output in the videos bucket


class RetentionSweep(Fixed):
    """Files the sweep removed: outputs (their jobs marked) and old uploads."""

    outputs_expired: int
    uploads_removed: int


class LeaseSweep(Fixed):
    """Expired leases: jobs back in the queue, and jobs failed out of attempts."""

    requeued: int
    failed: int


class Cleanup(Fixed):
    """Expired idempotency keys and old webhook receipts dropped."""

    idempotency_keys: int
    webhook_receipts: int
    webhook_deliveries: int = Field(0, description="Ended deliveries past retention.")


class Liveness(Fixed):
    """The process answers (nothing else is checked)."""

    status: Literal["ok"] = "ok"


class ReadinessChecks(Fixed):
    """One boolean per dependency."""

    database: bool = Field(description="One cheap query answered within its timeout.")
    storage: bool = Field(description="The configured storage backend is reachable/writable.")
    workers: bool = Field(
        description="A healthy worker, or a configured provider with models, can serve jobs."
    )


class ReadinessAnswer(Fixed):
    """Ready: every check passed (a 503 NOT_READY carries the same checks in `details`)."""

    status: Literal["ready"] = "ready"
    checks: ReadinessChecks


class Readiness(Fixed):
    """What can serve jobs, as the database sees it (public.ops_readiness)."""

    healthy_workers: int = Field(ge=0)
    providers: list[str]


class MoneyDifference(Fixed):
    """One row of the money audit: where the books disagree with themselves."""

    check_name: str
    user_id: UUID | None
    job_id: UUID | None
    expected: int | None
    actual: int | None
    detail: str


class RenderSpeedFigure(Fixed):
    """The fleet's recent render speed for one kind of render (service.render_speeds_read)."""

    width: int = Field(ge=1)
    height: int = Field(ge=1)
    fps: int = Field(ge=1)
    sections: int = Field(ge=1, description="Sections rendered at once.")
    factor: float = Field(gt=0, description="ffmpeg wall seconds per second of video made.")
    renders: int = Field(ge=1, description="How many renders the figure is over.")
