"""Plumbing the HTTP adapters share: one request path that maps failures to our errors.

Adapters take an injected ``httpx.Client`` (tests pass one over ``httpx.MockTransport``);
when none is given they create and own one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from videogen.integrations.providers.base import VideoProvider
from videogen.integrations.providers.errors import (
    InvalidWebhook,
    ProviderAuthFailed,
    ProviderError,
    ProviderJobNotFound,
    ProviderQuotaExceeded,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
_MAX_ERROR_CHARS = 300


class HttpVideoProvider(VideoProvider):
    """A :class:`VideoProvider` that talks JSON over HTTP."""

    def __init__(self, http_client: httpx.Client | None = None) -> None:
        self._owns_client = http_client is None
        self.http = http_client or httpx.Client(timeout=DEFAULT_TIMEOUT)

    def close(self) -> None:
        """Close the HTTP client if this provider created it."""
        if self._owns_client:
            self.http.close()

    def _auth_headers(self) -> dict[str, str]:
        return {}

    def _request(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        auth: bool = True,
    ) -> httpx.Response:
        """Send one request; raise a :class:`ProviderError` for anything but a 2xx."""
        response = self._send(method, url, json_body=json_body, params=params, auth=auth)
        if response.is_success:
            return response
        raise error_for_response(self.name, response)

    def _send(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        auth: bool = True,
    ) -> httpx.Response:
        """Send one request and return whatever came back; transport failures raise."""
        headers = {"Accept": "application/json", **(self._auth_headers() if auth else {})}
        try:
            response = self.http.request(
                method, url, json=json_body, params=params, headers=headers
            )
        except httpx.TimeoutException as exc:
            raise ProviderUnavailable(
                f"{self.name} did not answer in time.", provider=self.name
            ) from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable(
                f"{self.name} could not be reached.", provider=self.name
            ) from exc
        return response

    def _json(self, response: httpx.Response) -> Any:
        """The response body as JSON; a non-JSON 2xx is the provider's fault, retry later."""
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderUnavailable(
                f"{self.name} answered with something that is not JSON.",
                provider=self.name,
                provider_status=response.status_code,
            ) from exc


def error_for_response(provider: str, response: httpx.Response) -> ProviderError:
    """Map a provider's non-2xx answer to the error our callers act on."""
    status = response.status_code
    reason = provider_message(response)
    suffix = f": {reason}" if reason else "."
    kwargs: dict[str, Any] = {"provider": provider, "provider_status": status}
    if status in (401, 403):
        return ProviderAuthFailed(
            f"{provider} refused our credentials{suffix}",
            hint=f"Check the {provider} API key in the deployment's settings.",
            **kwargs,
        )
    if status == 402:
        return ProviderQuotaExceeded(
            f"{provider} says our account is out of credit{suffix}",
            hint=f"Top up the {provider} account.",
            **kwargs,
        )
    if status == 404:
        return ProviderJobNotFound(f"{provider} does not know this job{suffix}", **kwargs)
    if status == 429:
        headers = {}
        if retry_after := response.headers.get("retry-after"):
            headers["Retry-After"] = retry_after
        return ProviderRateLimited(
            f"{provider} is rate limiting us{suffix}", headers=headers, **kwargs
        )
    if status in (400, 409, 413, 422):
        return ProviderRejected(f"{provider} rejected the request{suffix}", **kwargs)
    if status >= 500 or status == 408:
        return ProviderUnavailable(f"{provider} is unavailable ({status}){suffix}", **kwargs)
    return ProviderError(f"{provider} answered {status}{suffix}", **kwargs)


def provider_message(response: httpx.Response) -> str:
    """A short, human reason from a provider's error body (``detail``, ``error``, …)."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:_MAX_ERROR_CHARS]
    return _message_from(body)[:_MAX_ERROR_CHARS]


def _message_from(body: Any) -> str:
    if isinstance(body, str):
        return body
    if isinstance(body, list):
        return "; ".join(m for m in (_message_from(item) for item in body) if m)
    if isinstance(body, dict):
        for key in ("detail", "error", "message", "msg", "title", "failure"):
            if body.get(key):
                return _message_from(body[key])
    return ""


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names folded to lower case, as HTTP treats them."""
    return {k.lower(): v for k, v in headers.items()}


def parse_json_body(provider: str, body: bytes) -> dict[str, Any]:
    """A webhook body as a JSON object, or a 401-class error (we never trust junk)."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise InvalidWebhook(f"The {provider} webhook body is not JSON.") from exc
    if not isinstance(data, dict):
        raise InvalidWebhook(f"The {provider} webhook body is not a JSON object.")
    return data


def with_query(url: str, params: Mapping[str, str]) -> str:
    """``url`` with ``params`` added to (or replacing those in) its query string."""
    return str(httpx.URL(url).copy_merge_params(dict(params)))


def collect_urls(value: Any) -> tuple[str, ...]:
    """Every http(s) URL in a provider's output, depth first, without duplicates."""
    found: list[str] = []

    def walk(item: Any) -> None:
        if isinstance(item, str):
            if item.startswith(("https://", "http://")) and item not in found:
                found.append(item)
        elif isinstance(item, Mapping):
            for child in item.values():
                walk(child)
        elif isinstance(item, Iterable) and not isinstance(item, bytes | bytearray):
            for child in item:
                walk(child)

    walk(value)
    return tuple(found)


def percent(value: float | int | None, *, scale: float = 1.0) -> int | None:
    """A progress number as an integer 0-100 (``scale`` 1.0 means the input is 0-1)."""
    if value is None:
        return None
    try:
        pct = float(value) * (100.0 / scale)
    except (TypeError, ValueError):
        return None
    return max(0, min(100, round(pct)))
