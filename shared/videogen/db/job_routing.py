"""Getting a job to whoever runs it: assignment, external dispatch, provider ids
(sql/schema/05_job_routing.sql)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from videogen.db.calls import service_call
from videogen.models.catalogue import ProviderModel
from videogen.models.jobs import ExternalJob, Job, JobChange, JobWithModel, ProviderJobRow
from videogen.models.workers import Assignment

if TYPE_CHECKING:
    from videogen.db.calls import Runs


def job_assign(on: Runs, job_id: str) -> Assignment | None:
    """A healthy push worker with room takes the job, or None."""
    result = service_call(on, "service.job_assign", job_id=job_id)
    return None if result is None else Assignment.model_validate(result)


def jobs_assign_pending(on: Runs, limit: int) -> list[Assignment]:
    """Assignments of waiting jobs to push workers with room."""
    return [
        Assignment.model_validate(a)
        for a in service_call(on, "service.jobs_assign_pending", limit=limit)
    ]


def job_dispatch_external(on: Runs, job_id: str) -> Job | None:
    """Open an attempt at the job's external provider, or None when it is no longer queued."""
    result = service_call(on, "service.job_dispatch_external", job_id=job_id)
    return None if result is None else Job.model_validate(result)


def job_set_provider_id(on: Runs, job_id: str, attempt: int, provider_job_id: str) -> JobChange:
    """Remember the provider's id for the attempt (its webhooks find the job by it)."""
    result = service_call(
        on,
        "service.job_set_provider_id",
        job_id=job_id,
        attempt=attempt,
        provider_job_id=provider_job_id,
    )
    return JobChange.model_validate(result)


def job_by_provider_id(on: Runs, provider: str, provider_job_id: str) -> ProviderJobRow | None:
    """The job a provider's id belongs to, or None."""
    result = service_call(
        on, "service.job_get_by_provider_id", provider=provider, provider_job_id=provider_job_id
    )
    return None if result is None else ProviderJobRow.model_validate(result)


def job_get_any(on: Runs, job_id: str) -> JobWithModel:
    """A job whatever its owner, with its model."""
    return JobWithModel.model_validate(service_call(on, "service.job_get_any", job_id=job_id))


def jobs_active_external(on: Runs) -> list[ExternalJob]:
    """Jobs running at external providers (for reconcile polls)."""
    return [
        ExternalJob.model_validate(j) for j in service_call(on, "service.jobs_list_active_external")
    ]


def models_by_provider(on: Runs, provider: str) -> list[ProviderModel]:
    """The provider's models with their provider-side ids."""
    result = service_call(on, "service.models_list_by_provider", provider=provider)
    return [ProviderModel.model_validate(m) for m in result]
