"""App Store data verified with Apple's `app-store-server-library`.

StoreKit 2 signed transactions and App Store Server Notifications V2 are JWS signed by a
key whose certificate chains to Apple's root: :class:`SignedDataVerifier` checks the chain
against the roots in ``APPLE_ROOT_CERTIFICATES`` (Apple's "Apple Root CA - G3" in
production; the tests pass a root of their own), the bundle id, the app's Apple id and the
environment. Nothing here credits anyone: :mod:`videogen.services.credits` does, in one call.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videogen.errors import ServiceUnavailable, Unauthorized

if TYPE_CHECKING:
    from appstoreserverlibrary.signed_data_verifier import SignedDataVerifier

    from videogen.config import Settings

_lock = threading.Lock()
_verifiers: dict[tuple[Any, ...], SignedDataVerifier] = {}


@dataclass(frozen=True)
class AppleTransaction:
    """What we use of a verified transaction."""

    transaction_id: str
    original_transaction_id: str
    product_id: str
    type: str  # "Consumable", "Non-Consumable", "Auto-Renewable Subscription", …
    app_account_token: str | None
    price: int | None  # milli-units of the currency
    currency: str | None
    revocation_date: int | None
    revocation_percentage: int | None  # milli-units: 100000 is all of it
    revocation_type: str | None
    expires_date: int | None = None  # ms since the epoch: an auto-renewable period's end

    @property
    def credit_key(self) -> str:
        """The id a purchase is credited once by: a consumable pack (and each subscription
        period) is its own transaction; a non-consumable is one purchase however often it
        is restored or re-bought, so its original transaction id."""
        if self.type == "Non-Consumable":
            return self.original_transaction_id
        return self.transaction_id


@dataclass(frozen=True)
class AppleNotification:
    """What we use of a verified App Store Server Notification V2."""

    notification_type: str
    subtype: str | None
    notification_uuid: str
    transaction: AppleTransaction | None
    signed_date: int | None = None  # ms since the epoch: when Apple signed it


def _not_configured() -> ServiceUnavailable:
    return ServiceUnavailable(
        "App Store purchases are not configured.",
        code="APP_STORE_NOT_CONFIGURED",
        hint="Set APPLE_BUNDLE_ID, APPLE_ROOT_CERTIFICATES (and APPLE_APP_APPLE_ID for "
        "Production).",
    )


def _read_root(path: str) -> bytes:
    data = Path(path).read_bytes()
    if data.lstrip().startswith(b"-----BEGIN"):
        from cryptography import x509  # cold start: cryptography loads on first use

        # cold start: cryptography loads on first use
        from cryptography.hazmat.primitives.serialization import Encoding

        return x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER)
    return data


def verifier(settings: Settings) -> SignedDataVerifier:
    """The process's verifier for these settings (roots read once)."""
    # cold start: appstoreserverlibrary loads on first use
    from appstoreserverlibrary.models.Environment import Environment

    # cold start: appstoreserverlibrary loads on first use
    from appstoreserverlibrary.signed_data_verifier import SignedDataVerifier

    roots = [p.strip() for p in (settings.apple_root_certificates or "").split(",") if p.strip()]
    if not settings.apple_bundle_id or not roots:
        raise _not_configured()
    environment = Environment(settings.apple_environment)
    if environment == Environment.PRODUCTION and settings.apple_app_apple_id is None:
        raise _not_configured()
    key = (
        tuple(roots),
        settings.apple_bundle_id,
        settings.apple_app_apple_id,
        settings.apple_environment,
        settings.apple_online_checks,
    )
    with _lock:
        found = _verifiers.get(key)
        if found is None:
            try:
                certificates = [_read_root(p) for p in roots]
            except OSError as exc:
                raise _not_configured() from exc
            found = SignedDataVerifier(
                certificates,
                settings.apple_online_checks,
                environment,
                settings.apple_bundle_id,
                settings.apple_app_apple_id,
            )
            _verifiers[key] = found
        return found


def _refused(what: str, exc: Exception) -> Unauthorized:
    status = getattr(getattr(exc, "status", None), "name", "VERIFICATION_FAILURE")
    return Unauthorized(
        f"The {what} is not signed by the App Store for this app ({status}).",
        code="INVALID_SIGNATURE",
        hint="Send the JWS exactly as StoreKit / the App Store produced it.",
    )


def _raw(value: Any) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def _transaction(decoded: Any) -> AppleTransaction:
    if not decoded.transactionId or not decoded.productId:
        raise Unauthorized("The signed transaction names no transaction.", code="INVALID_SIGNATURE")
    return AppleTransaction(
        transaction_id=str(decoded.transactionId),
        original_transaction_id=str(decoded.originalTransactionId or decoded.transactionId),
        product_id=str(decoded.productId),
        type=_raw(decoded.rawType) or "",
        app_account_token=decoded.appAccountToken,
        price=decoded.price,
        currency=decoded.currency,
        revocation_date=decoded.revocationDate,
        revocation_percentage=decoded.revocationPercentage,
        revocation_type=_raw(decoded.rawRevocationType),
        expires_date=decoded.expiresDate,
    )


def verify_transaction(signed: str, settings: Settings) -> AppleTransaction:
    """A StoreKit 2 signed transaction, verified (401 INVALID_SIGNATURE otherwise)."""
    # cold start: appstoreserverlibrary loads on first use
    from appstoreserverlibrary.signed_data_verifier import VerificationException

    checker = verifier(settings)
    try:
        decoded = checker.verify_and_decode_signed_transaction(signed)
    except VerificationException as exc:
        raise _refused("transaction", exc) from exc
    return _transaction(decoded)


def verify_notification(signed_payload: str, settings: Settings) -> AppleNotification:
    """An App Store Server Notification V2 and the transaction it carries, verified."""
    # cold start: appstoreserverlibrary loads on first use
    from appstoreserverlibrary.signed_data_verifier import VerificationException

    checker = verifier(settings)
    try:
        decoded = checker.verify_and_decode_notification(signed_payload)
        signed_transaction = decoded.data.signedTransactionInfo if decoded.data else None
        transaction = (
            checker.verify_and_decode_signed_transaction(signed_transaction)
            if signed_transaction
            else None
        )
    except VerificationException as exc:
        raise _refused("notification", exc) from exc
    if not decoded.notificationUUID or not decoded.rawNotificationType:
        raise Unauthorized("The notification has no id or type.", code="INVALID_SIGNATURE")
    return AppleNotification(
        notification_type=str(decoded.rawNotificationType),
        subtype=_raw(decoded.rawSubtype),
        notification_uuid=str(decoded.notificationUUID),
        transaction=_transaction(transaction) if transaction is not None else None,
        signed_date=decoded.signedDate,
    )
