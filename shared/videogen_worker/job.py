"""How a worker runs (:class:`WorkerConfig`) and one attempt of one job on it
(:class:`JobRun`), from a push or a claim — both carry the same job payload."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Mode = Literal["push", "pull"]


@dataclass(frozen=True)
class WorkerConfig:
    """How one worker process runs."""

    name: str
    models: tuple[str, ...]
    host: str = "127.0.0.1"
    port: int = 0
    public_url: str | None = None
    mode: Mode = "push"
    capacity: int = 2
    functions_url: str | None = None
    heartbeat_s: float = 5.0
    poll_s: float = 1.0
    drain_timeout_s: float = 60.0
    fail_at: int | None = None
    hang_at: int | None = None
    crash_at: int | None = None
    render: bool = True
    speed: float = 0.0  # 0: as fast as ffmpeg can; 1: no faster than real time


@dataclass
class JobRun:
    """One attempt of one job on this worker."""

    job_id: str
    attempt: int
    user_id: str
    model: str
    job_type: str
    params: dict[str, Any]
    callback_url: str
    accepted_at: float = field(default_factory=time.monotonic)
    cancel: threading.Event = field(default_factory=threading.Event)
    silent: bool = False  # no more callbacks: canceled, reassigned or lost
    stop_reason: str | None = None
    reported: int = 0
    reported_at: float = 0.0
    cost: int | None = None
    rendered_s: float | None = None  # compose: the length actually rendered
    script: dict[str, Any] | None = None  # compose: what was narrated
    files: dict[str, Path] = field(default_factory=dict)  # compose: webm, gif, … by kind
    meter: Any = None  # the attempt's videogen.usage.Meter: what it consumed

    @classmethod
    def of(cls, payload: Mapping[str, Any], callback_url: str | None = None) -> JobRun:
        """A job the backend handed us — pushed, or in a claim's answer: a
        :class:`~videogen.models.workers.WorkerJob` (a malformed one raises pydantic's
        ValidationError). A puller reports where it claims (``callback_url``): that address
        already reaches the backend from here."""
        from videogen.models.workers import WorkerJob

        job = WorkerJob.model_validate(payload)
        return cls(
            job_id=str(job.job_id),
            attempt=job.attempt,
            user_id=str(job.user_id),
            model=job.model,
            job_type=job.job_type,
            params=dict(job.params),
            callback_url=callback_url or job.callback_url,
            cost=job.cost,
        )

    def stop(self, reason: str, *, silent: bool) -> None:
        """Stop the attempt; ``silent`` means it must not report anything more."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.silent = self.silent or silent
        self.cancel.set()


class JobStopped(Exception):
    """The attempt was stopped (canceled, reassigned or shutting down)."""


class InjectedFailure(Exception):
    """A failure asked for with ``--fail-at``."""


class InvalidJob(ValueError):
    """The job's params cannot be rendered."""
