"""External video providers (fal, Replicate, Runway, RunPod) behind one interface."""

from videogen.integrations.providers.base import (
    TERMINAL_STATES,
    ProviderJob,
    ProviderState,
    ProviderStatus,
    Submission,
    VideoProvider,
    VideoRequest,
    WebhookEvent,
)
from videogen.integrations.providers.errors import (
    InvalidWebhook,
    ProviderAuthFailed,
    ProviderError,
    ProviderJobNotFound,
    ProviderNotConfigured,
    ProviderQuotaExceeded,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from videogen.integrations.providers.reconcile import read_webhook, receive_webhook, reconcile
from videogen.integrations.providers.registry import PROVIDERS, get_provider

__all__ = [
    "PROVIDERS",
    "TERMINAL_STATES",
    "InvalidWebhook",
    "ProviderAuthFailed",
    "ProviderError",
    "ProviderJob",
    "ProviderJobNotFound",
    "ProviderNotConfigured",
    "ProviderQuotaExceeded",
    "ProviderRateLimited",
    "ProviderRejected",
    "ProviderState",
    "ProviderStatus",
    "ProviderUnavailable",
    "Submission",
    "VideoProvider",
    "VideoRequest",
    "WebhookEvent",
    "get_provider",
    "read_webhook",
    "receive_webhook",
    "reconcile",
]
