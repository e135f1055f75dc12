"""An OpenAI-compatible chat endpoint as the engines use it (scripts, prompt enhancement).

Configured from the ``OPENAI_*`` settings or given a key (a user's own, videogen.services.keys);
the ``openai`` SDK is imported and its client made on first use, so importing an engine
costs a function's cold start nothing.
"""

from __future__ import annotations

from typing import Any, Self

from videogen.config import get_settings


class OpenAIChat:
    """The connection half of an engine: model, key, base URL, timeout, a lazy client."""

    def __init__(
        self,
        client: Any | None = None,
        *,
        model: str = "gpt-4o-mini",
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        self._client = client
        self.model = model
        self._api_key = api_key
        self._base_url = base_url
        self.timeout = timeout

    @classmethod
    def from_settings(cls) -> Self:
        """An engine configured from ``OPENAI_*`` settings."""
        s = get_settings()
        key = s.openai_api_key.get_secret_value() if s.openai_api_key else None
        return cls(model=s.openai_model, api_key=key, base_url=s.openai_base_url)

    def client(self) -> Any:
        """The OpenAI client, created on first use."""
        if self._client is None:
            import openai  # cold start: openai loads on first use

            self._client = openai.OpenAI(
                api_key=self._api_key, base_url=self._base_url, timeout=self.timeout
            )
        return self._client
