"""Signed callbacks: Standard Webhooks for our workers, Stripe's scheme for payments.

Standard Webhooks (https://www.standardwebhooks.com): HMAC-SHA256 over
``{webhook-id}.{webhook-timestamp}.{body}`` with a ``whsec_`` secret, sent as
``webhook-signature: v1,<base64>``; the ``standardwebhooks`` package does the cryptography.
Every secret in ``WEBHOOK_SECRETS`` is accepted (rotation), the first one signs. The caller
de-duplicates on the returned ``webhook-id`` in the database.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from videogen.config import Settings, get_settings
from videogen.errors import BadRequest, ServiceUnavailable, Unauthorized, ValidationFailed

__all__ = ["new_message_id", "sign", "stripe_verify", "verify"]

_HINT = "Sign the body as Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature)."


def new_message_id() -> str:
    """A fresh, unique ``webhook-id``."""
    return "msg_" + secrets.token_urlsafe(18)


def sign(
    body: bytes,
    *,
    msg_id: str | None = None,
    timestamp: int | float | datetime | None = None,
    secret: str | None = None,
    settings: Settings | None = None,
) -> dict[str, str]:
    """The three Standard Webhooks headers for this body (signed with the first secret)."""
    if secret is None:
        secret = (settings or get_settings()).webhook_secret_list()[0]
    msg_id = msg_id or new_message_id()
    if timestamp is None:
        timestamp = time.time()
    if not isinstance(timestamp, datetime):
        when = datetime.fromtimestamp(timestamp, UTC)
    elif timestamp.tzinfo is None:
        when = timestamp.replace(tzinfo=UTC)  # naive means UTC, as in the package
    else:
        when = timestamp.astimezone(UTC)
    signature = Webhook(secret).sign(msg_id=msg_id, timestamp=when, data=body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
    }


def _stale(message: str) -> Unauthorized:
    return Unauthorized(
        message,
        code="STALE_WEBHOOK",
        hint="Send the callback when it is made, with the current time in webhook-timestamp.",
    )


def _invalid(message: str) -> Unauthorized:
    return Unauthorized(message, code="INVALID_SIGNATURE", hint=_HINT)


def verify(headers: Mapping[str, str], body: bytes, settings: Settings | None = None) -> str:
    """Check a Standard Webhooks signature against every configured secret; the webhook-id."""
    settings = settings or get_settings()
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    msg_id = lowered.get("webhook-id", "")
    stamp = lowered.get("webhook-timestamp", "")
    if not (msg_id and stamp and lowered.get("webhook-signature")):
        raise _invalid("Missing webhook-id, webhook-timestamp or webhook-signature.")
    try:
        sent_at = int(stamp)
    except ValueError as exc:
        raise _invalid("webhook-timestamp is not a Unix time in seconds.") from exc
    # Our tolerance first (the package's own is a fixed five minutes, which also applies).
    skew = time.time() - sent_at
    if skew > settings.webhook_tolerance_s:
        raise _stale("The webhook timestamp is too old.")
    if skew < -settings.webhook_tolerance_s:
        raise _stale("The webhook timestamp is in the future.")
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        raise _invalid("The webhook body is not UTF-8.") from exc
    for webhook in [Webhook(secret) for secret in settings.webhook_secret_list()]:
        try:
            webhook.verify(text, lowered, json_parse=False)
        except WebhookVerificationError as exc:
            if "timestamp" in str(exc):
                raise _stale(f"The webhook timestamp is out of range: {exc}.") from exc
            continue  # maybe signed with another (rotated) secret
        except ValueError as exc:  # a webhook-signature entry without "v1,<base64>"
            raise _invalid("webhook-signature is malformed.") from exc
        return msg_id
    raise _invalid("No webhook signature matches.")


def stripe_verify(
    headers: Mapping[str, str], body: bytes, settings: Settings | None = None
) -> dict[str, Any]:
    """Verify a Stripe webhook (``Stripe-Signature``) and return the event as a dict."""
    settings = settings or get_settings()
    if settings.stripe_webhook_secret is None:
        raise ServiceUnavailable(
            "Stripe webhooks are not configured.",
            code="STRIPE_NOT_CONFIGURED",
            hint="Set STRIPE_WEBHOOK_SECRET to the endpoint's signing secret.",
        )
    import stripe  # heavy; only the purchase webhook needs it

    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    signature = lowered.get("stripe-signature")
    try:
        event = stripe.Webhook.construct_event(
            body,
            signature,
            settings.stripe_webhook_secret.get_secret_value(),
            tolerance=settings.webhook_tolerance_s,
        )
    except stripe.SignatureVerificationError as exc:
        if "tolerance" in str(exc):
            raise _stale("The Stripe event timestamp is too old.") from exc
        raise Unauthorized(
            "The Stripe signature does not match.",
            code="INVALID_SIGNATURE",
            hint="Check STRIPE_WEBHOOK_SECRET against the endpoint's signing secret.",
        ) from exc
    except ValueError as exc:  # signed, but not a Stripe event (bad JSON or shape)
        raise BadRequest("The Stripe payload is not an event.") from exc
    result: dict[str, Any] = event.to_dict()
    return result


def stripe_id(value: Any) -> str | None:
    """An id Stripe may send as a string or as an expanded object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def stripe_object(event: dict[str, Any]) -> dict[str, Any]:
    """A verified Stripe event's ``data.object`` (422 when it carries none)."""
    obj = (event.get("data") or {}).get("object")
    if not isinstance(obj, dict):
        raise ValidationFailed("The Stripe event carries no object.")
    return obj
