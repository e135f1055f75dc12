"""What the local Auth API (videogen_dev.auth_api) does against abuse, as GoTrue does it:
per-client rate limits (token buckets), CAPTCHA checks with hCaptcha or Cloudflare
Turnstile, and the settings of both, read from ``supabase/config.toml`` as the Supabase CLI
hands them to GoTrue.

Rate limits (``[auth.rate_limit]``, GoTrue's ``internal/api/apilimiter``): each limiter keeps
a token bucket per client that starts full, refills at the configured rate and, once empty,
answers 429 ``over_request_rate_limit``:

- ``anonymous_users`` (GoTrue's RATE_LIMIT_ANONYMOUS_USERS): anonymous sign-ins, N an hour;
  the bucket holds N.
- ``sign_in_sign_ups`` (RATE_LIMIT_OTP, as the CLI passes it): sign-ups with an email, N per
  5 minutes, bursts of 30; ``PUT /user`` has a bucket of its own at the same rate.
- ``token_refresh`` (RATE_LIMIT_TOKEN_REFRESH): every ``POST /token``, password sign-ins and
  refreshes alike (GoTrue counts them in one limiter), N per 5 minutes, bursts of 30.

A client is its address, or the first value of the ``GOTRUE_RATE_LIMIT_HEADER`` header when
that is set (a request without it is not limited, as in GoTrue). ``token_verifications``,
``email_sent``, ``sms_sent`` and ``web3`` limit what this stand-in does not serve (``/verify``,
mail, SMS, Web3 sign-in), so they are not read.

CAPTCHA (``[auth.captcha]``, off unless ``enabled = true``): sign-ups, anonymous and
password sign-ins carry the widget's answer in ``gotrue_meta_security.captcha_token`` (where
supabase-js and supabase-py put ``options.captchaToken``), and it is checked with the
provider's ``siteverify`` before the rate limit and the request's own checks (GoTrue's order).
"""

from __future__ import annotations

import os
import re
import threading
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

# The Supabase CLI's defaults (its config.toml template), used for a key config.toml omits.
DEFAULT_ANONYMOUS_USERS = 30
DEFAULT_SIGN_IN_SIGN_UPS = 30
DEFAULT_TOKEN_REFRESH = 150
DEFAULT_REUSE_INTERVAL_S = 10
GOTRUE_BURST = 30  # GoTrue's bucket size for every per-5-minute limit

CAPTCHA_URLS = {
    "hcaptcha": "https://api.hcaptcha.com/siteverify",
    "turnstile": "https://challenges.cloudflare.com/turnstile/v0/siteverify",
}
CAPTCHA_TIMEOUT_S = 10.0  # GoTrue's GOTRUE_SECURITY_CAPTCHA_TIMEOUT default


class AuthConfigError(ValueError):
    """A setting GoTrue would refuse to start with."""


# Settings ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Limit:
    """A token bucket: ``rate`` tokens a second, at most ``burst`` of them."""

    rate: float
    burst: int


@dataclass(frozen=True)
class CaptchaSettings:
    """``[auth.captcha]`` when enabled: the provider and its secret key."""

    provider: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class AuthSettings:
    """The Auth API's abuse settings: config.toml's, then GoTrue's variables over them."""

    anonymous_users: float = DEFAULT_ANONYMOUS_USERS
    sign_in_sign_ups: float = DEFAULT_SIGN_IN_SIGN_UPS
    token_refresh: float = DEFAULT_TOKEN_REFRESH
    refresh_token_reuse_interval: float = DEFAULT_REUSE_INTERVAL_S
    rate_limit_header: str = ""
    captcha: CaptchaSettings | None = None

    @classmethod
    def load(cls, path: Path | None = None, env: Mapping[str, str] | None = None) -> AuthSettings:
        """Read ``[auth]`` from config.toml (``supabase/config.toml`` of the project unless
        ``path`` is given; the CLI's defaults when absent), then apply the ``GOTRUE_*``
        variables the CLI would set from it, so a server can be started with other limits."""
        env = os.environ if env is None else env
        auth = _auth_table(path)
        limits = auth.get("rate_limit") or {}
        captcha = auth.get("captcha") or {}
        values: dict[str, Any] = {
            "anonymous_users": limits.get("anonymous_users", DEFAULT_ANONYMOUS_USERS),
            "sign_in_sign_ups": limits.get("sign_in_sign_ups", DEFAULT_SIGN_IN_SIGN_UPS),
            "token_refresh": limits.get("token_refresh", DEFAULT_TOKEN_REFRESH),
            "refresh_token_reuse_interval": auth.get(
                "refresh_token_reuse_interval", DEFAULT_REUSE_INTERVAL_S
            ),
        }
        overrides = {
            "anonymous_users": "GOTRUE_RATE_LIMIT_ANONYMOUS_USERS",
            "sign_in_sign_ups": "GOTRUE_RATE_LIMIT_OTP",  # the CLI passes it under this name
            "token_refresh": "GOTRUE_RATE_LIMIT_TOKEN_REFRESH",
            "refresh_token_reuse_interval": "GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL",
        }
        for name, variable in overrides.items():
            if env.get(variable, "").strip():
                values[name] = env[variable]
        numbers = {name: _number(name, value) for name, value in values.items()}

        enabled = _flag(env.get("GOTRUE_SECURITY_CAPTCHA_ENABLED"), captcha.get("enabled", False))
        provider = env.get("GOTRUE_SECURITY_CAPTCHA_PROVIDER") or captcha.get("provider", "")
        secret = env.get("GOTRUE_SECURITY_CAPTCHA_SECRET") or _secret(
            str(captcha.get("secret", "")), env
        )
        return cls(
            **numbers,
            rate_limit_header=env.get("GOTRUE_RATE_LIMIT_HEADER", "").strip(),
            captcha=_captcha(enabled, str(provider or "hcaptcha"), secret),
        )

    def limits(self) -> dict[str, Limit]:
        """GoTrue's limiters, by name, with their buckets."""
        per_5_min = {
            "signups": self.sign_in_sign_ups,
            "user": self.sign_in_sign_ups,  # its own bucket, at the same rate (RATE_LIMIT_OTP)
            "token": self.token_refresh,
        }
        limits = {name: Limit(rate / 300, GOTRUE_BURST) for name, rate in per_5_min.items()}
        # Anonymous sign-ins are the exception: the bucket holds an hour's worth.
        limits["anonymous"] = Limit(self.anonymous_users / 3600, int(self.anonymous_users))
        return limits


def config_path() -> Path | None:
    """The project's ``supabase/config.toml``, if there is a project around."""
    from videogen_dev.migrations import SchemaError, project_root

    try:
        path = project_root() / "supabase" / "config.toml"
    except SchemaError:
        return None
    return path if path.is_file() else None


def _auth_table(path: Path | None) -> dict[str, Any]:
    path = path or config_path()
    if path is None:
        return {}
    try:
        document = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise AuthConfigError(f"{path}: {exc}") from exc
    auth = document.get("auth") or {}
    return auth if isinstance(auth, dict) else {}


def _number(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if number < 0:
        raise AuthConfigError(f"auth {name} must be a number of at least 0, not {value!r}")
    return number


def _flag(variable: str | None, configured: Any) -> bool:
    if variable is None or not variable.strip():
        return configured is True
    return variable.strip().lower() in ("1", "true", "yes", "on")


def _secret(value: str, env: Mapping[str, str]) -> str:
    """A config.toml secret, where ``env(NAME)`` reads the variable, as the CLI does."""
    match = re.fullmatch(r"\s*env\((\w+)\)\s*", value)
    return env.get(match.group(1), "") if match else value


def _captcha(enabled: bool, provider: str, secret: str) -> CaptchaSettings | None:
    if not enabled:
        return None
    if provider not in CAPTCHA_URLS:  # GoTrue's own start-up checks
        raise AuthConfigError(f"unsupported captcha provider: {provider}")
    if not secret.strip():
        raise AuthConfigError("captcha provider secret is empty")
    return CaptchaSettings(provider, secret.strip())


# Rate limits ------------------------------------------------------------------------------
class RateLimiter:
    """GoTrue's limiters: a token bucket per limiter and client, as tollbooth keeps them
    (golang.org/x/time/rate: full at first, ``rate`` tokens a second, ``burst`` at most).

    Buckets live in this process's memory, as GoTrue's do: a restart refills them, as
    restarting GoTrue does (and with ``WORKERS`` > 1 each worker counts on its own).
    """

    PRUNE_ABOVE = 10_000  # buckets kept before the full ones (same as absent) are dropped

    def __init__(self, limits: Mapping[str, Limit], clock: Callable[[], float] = time.time) -> None:
        self.limits = dict(limits)
        self.clock = clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, limiter: str, key: str | None) -> bool:
        """Take a token from ``key``'s bucket of ``limiter``; False when there is none."""
        if key is None:
            return True
        limit = self.limits[limiter]
        with self._lock:
            now = self.clock()
            tokens = self._tokens(limit, (limiter, key), now)
            allowed = tokens >= 1
            self._buckets[(limiter, key)] = (tokens - 1 if allowed else tokens, now)
            if len(self._buckets) > self.PRUNE_ABOVE:
                self._prune(now)
        return allowed

    def _tokens(self, limit: Limit, bucket: tuple[str, str], now: float) -> float:
        tokens, since = self._buckets.get(bucket, (float(limit.burst), now))
        # max(0, …): a clock that steps back never drains a bucket.
        return min(float(limit.burst), tokens + max(0.0, now - since) * limit.rate)

    def _prune(self, now: float) -> None:
        for bucket in list(self._buckets):
            limit = self.limits[bucket[0]]
            if self._tokens(limit, bucket, now) >= limit.burst:
                del self._buckets[bucket]


# CAPTCHA ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CaptchaResult:
    """The provider's verdict on one token."""

    success: bool
    error_codes: tuple[str, ...] = ()


class CaptchaUnavailable(Exception):
    """The provider could not be asked, or answered something that is not a verdict."""


class CaptchaVerifier:
    """Checks a widget's token with hCaptcha's or Turnstile's ``siteverify``, as GoTrue's
    ``security.HTTPCaptchaVerifier`` does (a form POST of secret, response and remoteip).

    ``transport`` replaces the network (an ``httpx.MockTransport`` in tests).
    """

    def __init__(
        self, settings: CaptchaSettings, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.url = CAPTCHA_URLS[settings.provider]
        self._secret = settings.secret
        self._client = httpx.Client(transport=transport, timeout=CAPTCHA_TIMEOUT_S)

    def verify(self, token: str, remote_ip: str | None) -> CaptchaResult:
        """The provider's verdict on ``token``, solved by the client at ``remote_ip``."""
        form = {"secret": self._secret, "response": token}
        if remote_ip:
            form["remoteip"] = remote_ip
        try:
            answer = self._client.post(self.url, data=form).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise CaptchaUnavailable(str(exc)) from exc
        if not isinstance(answer, dict) or not isinstance(answer.get("success"), bool):
            raise CaptchaUnavailable("the answer has no success field")
        codes = answer.get("error-codes")
        codes = codes if isinstance(codes, list) else []
        return CaptchaResult(answer["success"], tuple(str(code) for code in codes))

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


__all__ = [
    "AuthConfigError",
    "AuthSettings",
    "CaptchaResult",
    "CaptchaSettings",
    "CaptchaUnavailable",
    "CaptchaVerifier",
    "Limit",
    "RateLimiter",
    "config_path",
]
