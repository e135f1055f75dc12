"""get_provider: names and settings to configured adapters; clear errors otherwise."""

from __future__ import annotations

import httpx
import pytest
from provider_router import Router

from videogen.config import Settings
from videogen.integrations.providers import (
    PROVIDERS,
    ProviderJob,
    ProviderNotConfigured,
    get_provider,
)
from videogen.integrations.providers.fal import FalProvider
from videogen.integrations.providers.replicate import ReplicateProvider
from videogen.integrations.providers.runpod import RunPodProvider
from videogen.integrations.providers.runway import RunwayProvider


@pytest.fixture
def settings() -> Settings:
    return Settings(
        fal_key="fal-key",
        replicate_api_token="r8_token",
        replicate_webhook_secret="whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        runway_api_key="key_runway",
        runpod_api_key="rp_key",
    )


def test_every_provider_is_built_with_the_injected_client(
    settings: Settings, http: httpx.Client
) -> None:
    expected = {
        "fal": FalProvider,
        "replicate": ReplicateProvider,
        "runway": RunwayProvider,
        "runpod": RunPodProvider,
    }
    assert set(PROVIDERS) == set(expected)
    for name, cls in expected.items():
        provider = get_provider(name, settings, http)
        assert isinstance(provider, cls)
        assert provider.name == name
        assert provider.http is http  # type: ignore[attr-defined]


def test_runpod_tokens_are_stable_across_instances(settings: Settings) -> None:
    one = get_provider("runpod", settings)
    two = get_provider("runpod", settings)
    assert isinstance(one, RunPodProvider) and isinstance(two, RunPodProvider)
    assert one.webhook_token("ep1") == two.webhook_token("ep1")
    assert one.webhook_token("ep1") != one.webhook_token("ep2")
    one.close()
    two.close()


def test_unknown_or_unconfigured_provider_is_a_clear_503() -> None:
    with pytest.raises(ProviderNotConfigured) as unknown:
        get_provider("sora", Settings())
    assert unknown.value.status == 503
    with pytest.raises(ProviderNotConfigured) as missing:
        get_provider("fal", Settings(fal_key=None))
    assert "FAL_KEY" in missing.value.message


def test_a_users_own_key_replaces_the_deployments_for_that_adapter_only(
    router: Router, http: httpx.Client
) -> None:
    """``api_key`` (a user's own key, videogen.services.keys) is what the adapter sends; the
    deployment's settings are left as they were, and a provider without one still works."""
    router.add("POST", "https://queue.fal.run/fal-ai/kling-video", json_body={"request_id": "r"})
    settings = Settings(FAL_KEY="deploy:deploymentsecret")
    own = get_provider("fal", settings, http, api_key="user-a:usersecret0123456789")
    own.submit(ProviderJob(model="fal-ai/kling-video", input={"prompt": "p"}))
    get_provider("fal", settings, http).submit(
        ProviderJob(model="fal-ai/kling-video", input={"prompt": "p"})
    )
    assert [r.headers["authorization"] for r in router.requests] == [
        "Key user-a:usersecret0123456789",
        "Key deploy:deploymentsecret",
    ]
    assert settings.fal_key is not None
    assert settings.fal_key.get_secret_value() == "deploy:deploymentsecret"
    unset = Settings(FAL_KEY=None)
    assert get_provider("fal", unset, http, api_key="user-a:usersecret0123456789")
    with pytest.raises(ProviderNotConfigured):
        get_provider("fal", unset, http)
    with pytest.raises(ProviderNotConfigured):
        get_provider("runpod", unset, http, api_key="anything-at-all-here")
