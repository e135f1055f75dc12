"""``get_provider``: the one place that turns a provider name and settings into an adapter.

Adapters are imported on first use, so a function that never talks to Runway never
pays for importing it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING

from videogen.integrations.providers.errors import ProviderNotConfigured
from videogen.integrations.providers.fal import FalProvider
from videogen.integrations.providers.replicate import ReplicateProvider
from videogen.integrations.providers.runpod import RunPodProvider
from videogen.integrations.providers.runway import RunwayProvider

if TYPE_CHECKING:
    import httpx

    from videogen.config import Settings
    from videogen.integrations.providers.base import VideoProvider

PROVIDERS: tuple[str, ...] = ("fal", "replicate", "runway", "runpod")


def get_provider(
    name: str,
    settings: Settings,
    http_client: httpx.Client | None = None,
    *,
    api_key: str | None = None,
) -> VideoProvider:
    """The adapter for ``name``, configured from ``settings``; unknown or unset is a 503.

    ``api_key`` is a user's own key (:mod:`videogen.services.keys`): it replaces the deployment's
    for this adapter, which then runs on the user's account.
    """
    build = _BUILDERS.get(name)
    if build is None:
        raise ProviderNotConfigured(
            f"There is no video provider called {name!r}.",
            provider=name,
            hint="Known providers: " + ", ".join(PROVIDERS) + ".",
        )
    if api_key is None:
        return build(settings, http_client)
    field = _KEY_FIELDS.get(name)
    if field is None:
        raise ProviderNotConfigured(f"{name} takes no user keys.", provider=name)
    from pydantic import SecretStr  # cold start: pydantic loads on first use

    own = settings.model_copy(update={field: SecretStr(api_key)})
    return build(own, http_client)


# The setting each adapter's key comes from (what a user's own key replaces).
_KEY_FIELDS = {"fal": "fal_key", "replicate": "replicate_api_token", "runway": "runway_api_key"}


def _secret(settings: Settings, field: str, env: str, provider: str) -> str:
    value = getattr(settings, field)
    if value is None or not value.get_secret_value():
        raise ProviderNotConfigured(
            f"{provider} is not configured: {env} is not set.",
            provider=provider,
            hint=f"Set {env}.",
        )
    return str(value.get_secret_value())


def _fal(settings: Settings, http_client: httpx.Client | None) -> VideoProvider:
    return FalProvider(_secret(settings, "fal_key", "FAL_KEY", "fal"), http_client)


def _replicate(settings: Settings, http_client: httpx.Client | None) -> VideoProvider:
    token = _secret(settings, "replicate_api_token", "REPLICATE_API_TOKEN", "replicate")
    secret = settings.replicate_webhook_secret
    return ReplicateProvider(
        token, http_client, webhook_secret=secret.get_secret_value() if secret else None
    )


def _runway(settings: Settings, http_client: httpx.Client | None) -> VideoProvider:
    return RunwayProvider(
        _secret(settings, "runway_api_key", "RUNWAY_API_KEY", "runway"), http_client
    )


def _runpod(settings: Settings, http_client: httpx.Client | None) -> VideoProvider:
    api_key = _secret(settings, "runpod_api_key", "RUNPOD_API_KEY", "runpod")
    return RunPodProvider(api_key, runpod_token_secret(settings), http_client)


def runpod_token_secret(settings: Settings) -> bytes:
    """The key RunPod webhook URL tokens are made with, derived from our webhook secret."""
    signing_secret = settings.webhook_secret_list()[0].encode()
    return hmac.new(signing_secret, b"videogen/runpod-webhook-token", hashlib.sha256).digest()


_BUILDERS: dict[str, Callable[[Settings, httpx.Client | None], VideoProvider]] = {
    "fal": _fal,
    "replicate": _replicate,
    "runway": _runway,
    "runpod": _runpod,
}
