"""Apple's DeviceCheck: two bits per device, kept by Apple for our team.

The iOS app sends a DeviceCheck token (``DCDevice.generateToken()``, base64) with
``claim_initial_grant``; the server asks Apple whether this device already took a grant
(:meth:`DeviceCheckClient.query_two_bits`) and marks it when it does
(:meth:`DeviceCheckClient.update_two_bits`). The bits survive a reinstall and a new
account, which is the point: one initial grant per device, not per sign-up.

Apple's API (developer.apple.com, "Accessing and modifying per-device data"): a ``POST``
of JSON to ``https://api.devicecheck.apple.com/v1/query_two_bits`` or ``…/update_two_bits``
(``api.development.devicecheck.apple.com`` for development builds), authorized by an
ES256 JWT as for APNs — header ``kid`` (the key id), claims ``iss`` (the team id) and
``iat``. A query answers ``{"bit0", "bit1", "last_update_time": "YYYY-MM"}``, or HTTP 200
with the plain text ``Failed to find bit state`` when the bits were never set; an update
answers 200 with an empty body. 400 is a bad device token, 401 a JWT Apple could not
verify (wrong key, key id or team). Which bit means what is the caller's business.

``jwt`` and ``cryptography`` are imported when a client is made, not with this module,
to keep a function's cold start light.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from videogen.errors import AppError

if TYPE_CHECKING:
    import httpx

    from videogen.config import Settings

log = logging.getLogger("videogen.integrations.devicecheck")

PRODUCTION_URL = "https://api.devicecheck.apple.com/v1"
DEVELOPMENT_URL = "https://api.development.devicecheck.apple.com/v1"
# Apple takes a provider token up to an hour old and asks not to mint one more often than
# every 20 minutes (APNs' rule, which DeviceCheck's tokens follow): reuse it for 30.
TOKEN_LIFETIME_S = 30 * 60
# The body Apple answers a query with, HTTP 200, for a device whose bits were never set.
# Third-party clients also match "Bit State Not Found"; it means the same, so it reads so.
_NEVER_SET = {"failed to find bit state", "bit state not found"}
MAX_TOKEN_CHARS = 16_384  # real tokens are ~2-3 KB of base64; refuse absurd ones unsent


# Errors -----------------------------------------------------------------------------------


class DeviceCheckError(AppError):
    """Apple's DeviceCheck could not answer about this device."""

    status, code = 502, "DEVICECHECK_FAILED"
    retryable: bool = False

    def __init__(self, message: str | None = None, *, apple_status: int | None = None, **kw: Any):
        super().__init__(message, **kw)
        self.apple_status = apple_status


class InvalidDeviceToken(DeviceCheckError):
    """The device token is not one Apple accepts."""

    status, code = 422, "INVALID_DEVICE_TOKEN"
    hint = "Send a fresh token from DCDevice.current.generateToken(), base64-encoded."


class DeviceCheckMisconfigured(DeviceCheckError):
    """DeviceCheck is misconfigured on this deployment."""

    # Our fault, not the caller's, and no retry will fix it: an operator must.
    status, code = 503, "DEVICECHECK_MISCONFIGURED"


class DeviceCheckNotConfigured(DeviceCheckMisconfigured):
    """DeviceCheck is not configured on this deployment."""

    code = "DEVICECHECK_NOT_CONFIGURED"


class DeviceCheckUnavailable(DeviceCheckError):
    """Apple's DeviceCheck is not answering right now; retry later."""

    status, code = 503, "DEVICECHECK_UNAVAILABLE"
    retryable = True

    def __init__(self, message: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": "5"})
        super().__init__(message, **kw)


# Results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceBits:
    """A device's two bits as Apple keeps them. ``last_update_time`` is Apple's
    ``YYYY-MM`` (the month only, by design), ``None`` when the bits were never set."""

    bit0: bool
    bit1: bool
    last_update_time: str | None = None


# The client -------------------------------------------------------------------------------


class DeviceCheckClient:
    """Query and update a device's two bits at Apple, over an injected ``httpx.Client``.

    ``private_key`` is the PEM of the ``.p8`` file Apple gave with ``key_id`` (a key with
    the DeviceCheck capability); ``development`` talks to Apple's development server, the
    one tokens from development-signed builds belong to. ``clock`` (seconds since the
    epoch) is there for tests. Safe to share between threads.
    """

    def __init__(
        self,
        http: httpx.Client,
        *,
        team_id: str,
        key_id: str,
        private_key: str | SecretStr,
        development: bool = False,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not team_id.strip() or not key_id.strip():
            raise DeviceCheckNotConfigured(
                "DeviceCheck needs a team id and a key id.",
                hint="Set APPLE_TEAM_ID and APPLE_DEVICECHECK_KEY_ID.",
            )
        self.http = http
        self.team_id = team_id.strip()
        self.key_id = key_id.strip()
        self.base_url = DEVELOPMENT_URL if development else PRODUCTION_URL
        self.timeout_s = timeout_s
        self._clock = clock
        self._key = _load_private_key(private_key)
        self._lock = threading.Lock()
        self._token: tuple[str, float] | None = None  # (jwt, minted at)

    # Apple's two calls ------------------------------------------------------------------

    def query_two_bits(self, device_token: str) -> DeviceBits:
        """The device's bits; both ``False`` (and no ``last_update_time``) when never set."""
        response = self._post("query_two_bits", device_token, {})
        text = response.text.strip()
        if text.lower() in _NEVER_SET:
            return DeviceBits(bit0=False, bit1=False, last_update_time=None)
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("bit0"), bool)
            or not isinstance(data.get("bit1"), bool)
        ):
            # Neither bits nor "never set": nothing to decide a grant on, so no answer yet.
            log.warning("DeviceCheck answered a query with an unreadable body")
            raise DeviceCheckUnavailable(
                "DeviceCheck gave an answer that could not be read.", apple_status=200
            )
        updated = data.get("last_update_time")
        return DeviceBits(
            bit0=data["bit0"],
            bit1=data["bit1"],
            last_update_time=updated if isinstance(updated, str) else None,
        )

    def update_two_bits(
        self, device_token: str, *, bit0: bool | None = None, bit1: bool | None = None
    ) -> None:
        """Set the given bits of the device (a bit left ``None`` keeps its value)."""
        if bit0 is None and bit1 is None:
            raise ValueError("update_two_bits needs bit0, bit1 or both")
        bits: dict[str, bool] = {}
        if bit0 is not None:
            bits["bit0"] = bool(bit0)
        if bit1 is not None:
            bits["bit1"] = bool(bit1)
        self._post("update_two_bits", device_token, bits)

    # Plumbing ---------------------------------------------------------------------------

    def authorization_token(self) -> str:
        """The ES256 JWT Apple authorizes us by, minted again once it is half an hour old."""
        import jwt  # cold start: jwt loads on first use

        now = self._clock()
        with self._lock:
            if self._token is not None and now - self._token[1] < TOKEN_LIFETIME_S:
                return self._token[0]
            issued = int(now)
            token = jwt.encode(
                {"iss": self.team_id, "iat": issued},
                self._key,
                algorithm="ES256",
                headers={"kid": self.key_id},
            )
            self._token = (token, now)
            return token

    def _post(self, endpoint: str, device_token: str, bits: dict[str, bool]) -> httpx.Response:
        import httpx  # cold start: httpx loads on first use

        body = {
            "device_token": _checked_token(device_token),
            # Apple asks for a unique id and the time of each request (milliseconds).
            "transaction_id": str(uuid.uuid4()),
            "timestamp": int(self._clock() * 1000),
            **bits,
        }
        try:
            response = self.http.post(
                f"{self.base_url}/{endpoint}",
                json=body,
                headers={"Authorization": f"Bearer {self.authorization_token()}"},
                timeout=self.timeout_s,
            )
        except httpx.TimeoutException as exc:
            raise DeviceCheckUnavailable("DeviceCheck did not answer in time.") from exc
        except httpx.TransportError as exc:
            raise DeviceCheckUnavailable(
                f"DeviceCheck could not be reached ({exc.__class__.__name__})."
            ) from exc
        _raise_for_status(endpoint, response)
        return response


def _checked_token(device_token: str) -> str:
    """The token as sent, or 422 before calling Apple when it cannot be one."""
    token = device_token.strip() if isinstance(device_token, str) else ""
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise InvalidDeviceToken("The device token is missing or too long.")
    try:
        base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidDeviceToken("The device token is not base64.") from exc
    return token


def _raise_for_status(endpoint: str, response: httpx.Response) -> None:
    """Apple's status as one of our errors; Apple's own words go to the log only (they may
    name our team or key), never to the caller."""
    status = response.status_code
    if status == 200:
        return
    said = response.text[:200]
    log.warning(
        "DeviceCheck %s answered %s",
        endpoint,
        status,
        extra={"fields": {"apple_status": status, "apple_said": said}},
    )
    if status == 400:
        raise InvalidDeviceToken(apple_status=status)
    if status in (401, 403):
        raise DeviceCheckMisconfigured(
            "Apple refused our DeviceCheck credentials.",
            apple_status=status,
            hint="Check APPLE_TEAM_ID, APPLE_DEVICECHECK_KEY_ID and the key's DeviceCheck "
            "capability, and APPLE_DEVICECHECK_ENVIRONMENT against the app's build.",
        )
    if status == 429 or status >= 500:
        raise DeviceCheckUnavailable(apple_status=status)
    # Anything else (404, 405, 413…) means we asked wrongly: a bug, not worth a retry.
    raise DeviceCheckError(f"DeviceCheck answered HTTP {status}.", apple_status=status)


def _load_private_key(private_key: str | SecretStr) -> Any:
    """The EC P-256 key of a ``.p8`` PEM (``\\n`` escapes accepted, as some secret stores
    keep one line), or a misconfiguration error that does not repeat it."""
    # cold start: cryptography loads on first use
    from cryptography.hazmat.primitives.asymmetric import ec

    # cold start: cryptography loads on first use
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    pem = private_key.get_secret_value() if isinstance(private_key, SecretStr) else private_key
    pem = pem.strip().replace("\\n", "\n")
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise DeviceCheckMisconfigured(
            "APPLE_DEVICECHECK_PRIVATE_KEY is not a readable private key.",
            hint="Paste the whole AuthKey_<key id>.p8 file, BEGIN and END lines included.",
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise DeviceCheckMisconfigured(
            "APPLE_DEVICECHECK_PRIVATE_KEY is not an EC P-256 key (ES256), as Apple's .p8 is."
        )
    return key


def devicecheck_client(settings: Settings, http: httpx.Client) -> DeviceCheckClient:
    """The deployment's client (``APPLE_TEAM_ID``, ``APPLE_DEVICECHECK_*``), or 503
    ``DEVICECHECK_NOT_CONFIGURED`` naming what is missing."""
    team_id = (settings.apple_team_id or "").strip()
    key_id = (settings.apple_devicecheck_key_id or "").strip()
    secret = settings.apple_devicecheck_private_key
    pem = secret.get_secret_value().strip() if secret is not None else ""
    missing = [
        name
        for name, value in (
            ("APPLE_TEAM_ID", team_id),
            ("APPLE_DEVICECHECK_KEY_ID", key_id),
            ("APPLE_DEVICECHECK_PRIVATE_KEY", pem),
        )
        if not value
    ]
    if missing:
        raise DeviceCheckNotConfigured(hint="Set " + ", ".join(missing) + ".")
    return DeviceCheckClient(
        http,
        team_id=team_id,
        key_id=key_id,
        private_key=SecretStr(pem),
        development=settings.apple_devicecheck_environment == "development",
    )
