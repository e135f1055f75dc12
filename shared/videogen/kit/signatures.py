"""The signature modes of the HTTP kit: a caller proven by a signature over the raw body.

``worker_signature`` (Standard Webhooks), ``stripe_signature``, ``app_store_signature`` (an App
Store Server Notification V2) and ``provider_signature`` (``?provider=<name>`` and that
provider's own scheme). Each verifier is imported when its mode is tried, so a function loads
only the SDKs its own modes need (cold start).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from videogen.config import Settings
from videogen.errors import Unauthorized
from videogen.principal import Principal

__all__ = ["signed_principal"]


def signed_principal(
    mode: str,
    headers: dict[str, str],
    body: bytes,
    query: Mapping[str, str],
    settings: Settings,
) -> Principal | None:
    """A caller proven by a signature over the raw body, or None when none is present."""
    if mode == "worker_signature":
        if "webhook-signature" not in headers:
            return None
        # cold start: integrations.webhooks loads only on this path
        from videogen.integrations import webhooks

        delivery = webhooks.verify(headers, body, settings)
        return Principal(kind="worker", role="service_role", delivery_id=delivery)
    if mode == "stripe_signature":
        if "stripe-signature" not in headers:
            return None
        # cold start: integrations.webhooks loads only on this path
        from videogen.integrations import webhooks

        event = webhooks.stripe_verify(headers, body, settings)
        return Principal(kind="stripe", role="service_role", evidence=event)
    if mode == "app_store_signature":
        signed = signed_payload(body)
        if signed is None:
            return None
        # cold start: integrations.apple loads only on this path
        from videogen.integrations import apple

        notification = apple.verify_notification(signed, settings)
        return Principal(kind="app_store", role="service_role", evidence=notification)
    name = query.get("provider")
    if not name:
        return None
    # cold start: integrations.providers loads only on this path
    from videogen.integrations.providers import PROVIDERS, get_provider

    if name not in PROVIDERS:
        raise Unauthorized(
            f"There is no video provider called {name!r}.",
            code="INVALID_SIGNATURE",
            hint="Known providers: " + ", ".join(PROVIDERS) + ".",
        )
    adapter = get_provider(name, settings)
    adapter.verify_webhook(headers, body, query)
    return Principal(kind="provider", role="service_role", key_name=name, evidence=adapter)


def signed_payload(body: bytes) -> str | None:
    """The ``signedPayload`` of an App Store notification body, or None when absent."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError, UnicodeDecodeError):
        return None
    value = parsed.get("signedPayload") if isinstance(parsed, dict) else None
    return value if isinstance(value, str) and value.strip() else None
