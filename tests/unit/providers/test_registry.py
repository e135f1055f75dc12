"""get_provider: names and settings to configured adapters; clear errors otherwise."""

from __future__ import annotations

import httpx
import pytest

from videogen.config import Settings
from videogen.providers import PROVIDERS, ProviderNotConfigured, get_provider
from videogen.providers.fal import FalProvider
from videogen.providers.replicate import ReplicateProvider
from videogen.providers.runpod import RunPodProvider
from videogen.providers.runway import RunwayProvider


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
