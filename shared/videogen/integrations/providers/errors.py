"""Errors an external video provider can cause, each with a stable code and a retry verdict.

Every adapter turns HTTP statuses, timeouts and bad webhooks into one of these, so the
job service decides "retry later" or "fail the job" from ``retryable`` alone and the
client sees one clear envelope code, never a provider's raw body.
"""

from __future__ import annotations

from typing import Any

from videogen.errors import AppError, Unauthorized


class ProviderError(AppError):
    """The video provider could not handle the request."""

    status, code = 502, "PROVIDER_ERROR"
    retryable: bool = False

    def __init__(
        self,
        message: str | None = None,
        *,
        provider: str,
        retryable: bool | None = None,
        provider_status: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.provider = provider
        self.provider_status = provider_status
        if retryable is not None:
            self.retryable = retryable
        if not self.details:
            detail: dict[str, Any] = {"provider": provider}
            if provider_status is not None:
                detail["provider_status"] = provider_status
            self.details = [detail]


class ProviderNotConfigured(ProviderError):
    """The video provider is not configured on this deployment."""

    status, code = 503, "PROVIDER_NOT_CONFIGURED"


class ProviderAuthFailed(ProviderError):
    """The video provider refused our credentials."""

    status, code = 503, "PROVIDER_AUTH_FAILED"


class ProviderQuotaExceeded(ProviderError):
    """Our account at the video provider is out of credit or quota."""

    status, code = 503, "PROVIDER_QUOTA_EXCEEDED"


class ProviderRateLimited(ProviderError):
    """The video provider is rate limiting us; retry later."""

    status, code = 503, "PROVIDER_RATE_LIMITED"
    retryable = True


class ProviderUnavailable(ProviderError):
    """The video provider is unavailable or timed out; retry later."""

    status, code = 503, "PROVIDER_UNAVAILABLE"
    retryable = True


class ProviderRejected(ProviderError):
    """The video provider rejected the job's input."""

    status, code = 422, "PROVIDER_REJECTED"


class ProviderJobNotFound(ProviderError):
    """The video provider does not know this job."""

    status, code = 404, "PROVIDER_JOB_NOT_FOUND"


class InvalidWebhook(Unauthorized):
    """The provider webhook is not authentic."""

    code = "INVALID_WEBHOOK_SIGNATURE"
