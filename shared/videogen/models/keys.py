"""Provider keys: your own keys for a provider, stored encrypted and never answered."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from videogen.models.common import Fixed, Open, Strict

# Requests ---------------------------------------------------------------------------------

KeyProvider = Literal["openai", "fal", "replicate", "runway"]
# Each provider's own key form (what its dashboard hands out); the database checks again.
PROVIDER_KEY_FORMS: dict[str, tuple[str, str]] = {
    "openai": (r"sk-[A-Za-z0-9_-]{16,253}", "sk-…"),
    "fal": (r"[A-Za-z0-9_-]{4,128}:[A-Za-z0-9_-]{16,256}", "<key id>:<key secret>"),
    "replicate": (r"(r8_)?[A-Za-z0-9]{20,200}", "r8_…"),
    "runway": (r"key_[A-Za-z0-9]{16,256}", "key_…"),
}


class ProviderKeyRequest(Strict):
    """PUT /update-credits/keys: store (or rotate) your own key for a provider. It is kept
    encrypted (Supabase Vault) and used only for your jobs; no answer ever contains it."""

    provider: KeyProvider
    key: SecretStr = Field(
        description="The provider's API key (openai sk-…, fal <key id>:<key secret>, "
        "replicate r8_…, runway key_…); surrounding whitespace is ignored.",
        json_schema_extra={"writeOnly": True},
    )

    @field_validator("key")
    @classmethod
    def _provider_form(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:

        provider = info.data.get("provider")
        text = value.get_secret_value().strip()
        if provider is None:
            return SecretStr(text)
        pattern, form = PROVIDER_KEY_FORMS[provider]
        if len(text) > 512 or not re.fullmatch(pattern, text):
            # Never the value itself: only what was expected.
            raise ValueError(f"not a {provider} key: expected the form {form}")
        return SecretStr(text)


class ProviderKeyQuery(Strict):
    """DELETE /update-credits/keys?provider=: forget your key for a provider."""

    provider: KeyProvider


# Answers ----------------------------------------------------------------------------------


class ProviderKey(Open):
    """One of your provider keys as it may be shown: never the key, only its last four
    characters and when it was stored and last rotated."""

    provider: Literal["openai", "fal", "replicate", "runway"]
    last4: str
    created_at: datetime
    rotated_at: datetime | None = None


class ProviderKeyList(Fixed):
    """Which providers you have a key for."""

    keys: list[ProviderKey]


class ProviderKeyDeleted(Open):
    """A key forgotten: its encrypted value is gone too."""

    provider: str
    deleted: bool
