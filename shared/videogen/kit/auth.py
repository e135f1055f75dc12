"""Who is calling: the auth modes of Supabase's server SDK (``@supabase/server``) in Python.

A function declares the modes it accepts, in order, and calls :func:`authenticate` with the
request headers (any mapping; names are matched case-insensitively):

``user``
    ``Authorization: Bearer <access token>`` — a Supabase Auth JWT verified locally: ES256 /
    RS256 against the project's JWKS (``SUPABASE_JWKS`` inline, or fetched from
    ``{SUPABASE_URL}/auth/v1/.well-known/jwks.json`` and cached) or the legacy HS256 secret.
``api_key`` (``api_key:read``, ``api_key:jobs``)
    A personal API key (``vg_live_…``, :mod:`videogen.services.api_keys`) as
    ``Authorization: Bearer <key>`` — what integrators send to OpenAI or Stripe — or in an
    ``X-API-Key`` header. It stands for its owner (a ``user`` principal with the same claims,
    RLS and rate limits as their access token) within the scope the mode names: a key
    without it is a 403 ``API_KEY_SCOPE``; a key on a route that takes none is a 403
    ``SESSION_REQUIRED``. Revoked or expired: 401 ``API_KEY_REVOKED`` / ``API_KEY_EXPIRED``.
``public``
    ``apikey: <publishable key>`` (``sb_publishable_…``) or the legacy ``anon`` JWT.
``secret``
    ``apikey`` or ``Authorization: Bearer`` with a secret key (``sb_secret_…``, any named key
    in ``SUPABASE_SECRET_KEYS``; ``secret:<name>`` accepts only that one) or the legacy
    ``service_role`` JWT.
``cron``
    The scheduler's ``CRON_SECRET`` in ``x-cron-secret`` (or as a plain ``Bearer``).
``worker_signature``
    A Standard Webhooks signature (``webhook-signature`` …) with the workers' secret; the
    verified ``webhook-id`` is the principal's ``delivery_id``.
``stripe_signature``
    A ``Stripe-Signature``; the verified event is the principal's ``evidence``.
``app_store_signature``
    A JSON body ``{"signedPayload": <JWS>}`` — an App Store Server Notification V2 — whose
    JWS chains to the App Store roots (:mod:`videogen.integrations.apple`); the verified
    notification is the principal's ``evidence``.
``provider_signature``
    ``?provider=<name>`` and that provider's own webhook scheme (fal, Replicate, RunPod…);
    the principal's ``key_name`` is the provider.
``metrics``
    ``Authorization: Bearer <METRICS_TOKEN>`` (the Prometheus scraper); with no
    ``METRICS_TOKEN`` set the mode is off and answers 503 ``METRICS_NOT_CONFIGURED``.
``always``
    Nothing required.

A mode is tried only when its kind of credential is present; a credential that is present
but invalid stops the chain with 401 — it is never downgraded to a weaker mode. Signatures
are checked over the raw body before anything parses it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from videogen.config import Settings, get_settings
from videogen.errors import (
    AppError,
    Forbidden,
    ServiceUnavailable,
    Unauthorized,
    ValidationFailed,
)
from videogen.kit.signatures import signed_principal
from videogen.principal import Principal
from videogen.services import api_keys
from videogen.services.api_keys import looks_like_key

if TYPE_CHECKING:
    import httpx
    import jwt

__all__ = [
    "JwksCache",
    "KeySource",
    "StaticJwks",
    "authenticate",
    "check_cron_secret",
    "issue_access_token",
    "verify_access_token",
    "verify_token_field",
]

KeyMode = Literal["public", "secret"]
MODES = (
    "user",
    "api_key",
    "public",
    "secret",
    "cron",
    "worker_signature",
    "stripe_signature",
    "app_store_signature",
    "provider_signature",
    "metrics",
    "always",
)

API_KEY_SCOPES = ("read", "jobs")  # what `api_key:<scope>` may name
LEEWAY_S = 10  # clock skew tolerated on exp / iat / nbf
ASYMMETRIC_ALGORITHMS = frozenset({"ES256", "RS256"})
JWKS_PATH = "/auth/v1/.well-known/jwks.json"
_LEGACY_ROLES: dict[str, KeyMode] = {
    "anon": "public",
    "service_role": "secret",
}

_HINTS = {
    "user": "an `Authorization: Bearer <access token>` header from Supabase Auth",
    "api_key": "a personal API key as `Authorization: Bearer vg_live_…`",
    "public": "an `apikey` header with the project's publishable (or anon) key",
    "secret": "an `apikey` header with a secret (or service_role) key",
    "cron": "the CRON_SECRET in an `x-cron-secret` header",
    "worker_signature": "Standard Webhooks headers signed with the worker secret",
    "stripe_signature": "a `Stripe-Signature` header",
    "app_store_signature": "an App Store Server Notification (`signedPayload`)",
    "provider_signature": "`?provider=<name>` with that provider's webhook signature",
    "metrics": "`Authorization: Bearer <METRICS_TOKEN>`",
}


# JWKS -------------------------------------------------------------------------------------


class KeySource(Protocol):
    """Where the public keys that sign access tokens come from."""

    def get(self, kid: str) -> jwt.PyJWK | None:
        """The verification key with this id, or None when it is unknown."""
        ...


def parse_jwks(data: Any) -> dict[str, jwt.PyJWK]:
    """Usable signing keys by ``kid`` from a JWKS document, a list of JWKs or one JWK."""
    import jwt  # lazy: keeps the function modules' cold start light

    if isinstance(data, str):
        data = json.loads(data)
    if isinstance(data, dict):
        data = data.get("keys", [data]) if "keys" in data or "kty" in data else []
    keys: dict[str, jwt.PyJWK] = {}
    for raw in data if isinstance(data, list) else []:
        if not isinstance(raw, dict) or not raw.get("kid") or raw.get("use", "sig") != "sig":
            continue
        try:
            keys[str(raw["kid"])] = jwt.PyJWK(raw)
        except jwt.exceptions.PyJWKError:
            continue  # a key type or curve we cannot use; the others still work
    return keys


class StaticJwks:
    """Keys given inline (``SUPABASE_JWKS``); never refetched."""

    def __init__(self, jwks: Any) -> None:
        self._keys = parse_jwks(jwks)

    def get(self, kid: str) -> jwt.PyJWK | None:
        """The key with this id, or None."""
        return self._keys.get(kid)


class JwksCache:
    """The project's JWKS endpoint, cached for ``ttl_s`` and refetched once on an unknown kid.

    ``cooldown_s`` bounds how often unknown kids can trigger a fetch, so tokens with made-up
    kids cannot turn into a request flood against Supabase Auth.
    Not PyJWT's ``PyJWKClient``: it fetches with urllib (no injected ``httpx.Client`` for
    recorded tests), has no such cooldown, and fails a request when a refetch fails instead
    of serving the last good key set.
    """

    def __init__(
        self,
        url: str,
        *,
        client: httpx.Client | None = None,
        ttl_s: float = 600.0,
        cooldown_s: float = 30.0,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._client = client
        self._ttl_s = ttl_s
        self._cooldown_s = cooldown_s
        self._timeout_s = timeout_s
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] | None = None
        self._fetched_at = float("-inf")  # last successful fetch
        self._attempted_at = float("-inf")  # last attempt, successful or not
        self._lock = threading.Lock()

    def get(self, kid: str) -> jwt.PyJWK | None:
        """The key with this id, fetching the set when stale or when the kid is new."""
        with self._lock:
            now = self._clock()
            may_fetch = now - self._attempted_at >= self._cooldown_s
            if self._keys is None:
                if not may_fetch:
                    raise self._unavailable()
                self._refresh(now)
            elif may_fetch and (now - self._fetched_at >= self._ttl_s or kid not in self._keys):
                self._refresh(now)
            return (self._keys or {}).get(kid)

    def _refresh(self, now: float) -> None:
        import httpx  # only the first asymmetric token pays for the import

        self._attempted_at = now
        try:
            response = self._http().get(self.url, timeout=self._timeout_s)
            response.raise_for_status()
            keys = parse_jwks(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            if self._keys is None:
                raise self._unavailable() from exc
            return  # keep serving the last good set until the next attempt
        self._keys, self._fetched_at = keys, now

    def _unavailable(self) -> ServiceUnavailable:
        return ServiceUnavailable(
            "Could not fetch the project's signing keys.",
            code="JWKS_UNAVAILABLE",
            hint=f"Check that {self.url} is reachable or set SUPABASE_JWKS.",
        )

    def _http(self) -> httpx.Client:
        if self._client is None:
            import httpx  # cold start: httpx loads on first use

            self._client = httpx.Client()
        return self._client


_remote_caches: dict[str, JwksCache] = {}
_static_cache: dict[str, StaticJwks] = {}


def jwks_for(settings: Settings) -> KeySource:
    """The process-wide key source for these settings (inline JWKS or the project endpoint)."""
    if settings.jwks:
        source = _static_cache.get(settings.jwks)
        if source is None:
            source = _static_cache[settings.jwks] = StaticJwks(settings.jwks)
        return source
    url = settings.supabase_url.rstrip("/") + JWKS_PATH
    cache = _remote_caches.get(url)
    if cache is None:
        cache = _remote_caches[url] = JwksCache(url)
    return cache


# Credentials ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ApiKey:
    """One API key found in the request, classified by the mode it belongs to."""

    mode: KeyMode | None  # None: not recognisable as either
    valid: bool
    name: str | None = None
    claims: Mapping[str, Any] | None = None


def _safe_equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


def _bearer(headers: Mapping[str, str]) -> str | None:
    scheme, _, token = headers.get("authorization", "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT without checking it (only to pick a check, or to word an error).

    Reads the payload segment directly: PyJWT's full decode costs more than the real
    verification that follows, and nothing here is trusted. {} when it is not a JWT.
    """
    try:
        segment = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


def _unverified_role(token: str) -> str | None:
    """The role claim of a JWT without checking it (only to pick the right check)."""
    role = unverified_claims(token).get("role")
    return role if isinstance(role, str) else None


def _legacy_key(value: str, settings: Settings) -> _ApiKey:
    """Classify a legacy anon / service_role JWT: the configured value or one signed like it."""
    import jwt  # lazy: keeps the function modules' cold start light

    if _safe_equal(value, settings.anon_key.get_secret_value()):
        return _ApiKey("public", True, "anon", {"role": "anon"})
    if _safe_equal(value, settings.service_role_key.get_secret_value()):
        return _ApiKey("secret", True, "service_role", {"role": "service_role"})
    role = _unverified_role(value)
    mode = _LEGACY_ROLES.get(role or "")
    if mode is None:
        return _ApiKey(None, False)
    try:
        claims = jwt.decode(
            value,
            settings.jwt_secret.get_secret_value(),
            algorithms=["HS256"],
            leeway=LEEWAY_S,
            options={"verify_aud": False},
        )
    except jwt.InvalidTokenError:
        return _ApiKey(mode, False)
    return _ApiKey(mode, claims.get("role") == role, role, claims)


def _classify_key(value: str, settings: Settings) -> _ApiKey:
    """Which mode an API key belongs to and whether it is one of ours."""
    if value.startswith("sb_publishable_"):
        ok = _safe_equal(value, settings.publishable_key.get_secret_value())
        return _ApiKey("public", ok, "default" if ok else None, {"role": "anon"})
    if value.startswith("sb_secret_"):
        # Compare against every key, without stopping early, so timing says nothing.
        matched = [
            name for name, key in settings.named_secret_keys().items() if _safe_equal(value, key)
        ]
        name = matched[0] if matched else None
        return _ApiKey("secret", bool(matched), name, {"role": "service_role"})
    if _looks_like_jwt(value):
        return _legacy_key(value, settings)
    return _ApiKey(None, False)


def _bearer_is_api_key(token: str) -> bool:
    """True when the bearer token is an API key that supabase-js copied into Authorization."""
    if token.startswith("sb_"):
        return True
    return _looks_like_jwt(token) and _unverified_role(token) in _LEGACY_ROLES


# Modes ------------------------------------------------------------------------------------


VERIFIED_TTL_S = 60.0  # a verified token is trusted this long (at most until its exp)
_VERIFIED_MAX = 10_000
_verified: dict[tuple[str | None, ...], tuple[float, Principal]] = {}


def _user_principal(token: str, settings: Settings, keys: KeySource | None) -> Principal:
    """A Supabase Auth access token's user, verified at most once a minute per token.

    A client sends the same token with every request until it refreshes; re-checking its
    signature each time is most of what auth costs. A cached verdict lives until the
    token's ``exp`` or ``VERIFIED_TTL_S``, whichever comes first, so an expired token is
    refused at once and a rotated-out signing key stops being trusted within a minute.
    """
    if keys is not None:  # an injected key source (tests): verify every time
        return _verify_user_token(token, settings, keys)
    # Everything the verdict depends on, so other settings never reuse it.
    cache_key = (
        token,
        settings.jwt_secret.get_secret_value(),
        settings.jwks,
        settings.jwt_audience,
        settings.supabase_url,
    )
    now = time.time()
    cached = _verified.get(cache_key)
    if cached is not None and cached[0] > now:
        return cached[1]
    principal = _verify_user_token(token, settings, keys)
    if len(_verified) >= _VERIFIED_MAX:
        _verified.clear()
    expires = min(float(principal.claims["exp"]), now + VERIFIED_TTL_S)
    _verified[cache_key] = (expires, principal)
    return principal


def _verify_user_token(token: str, settings: Settings, keys: KeySource | None) -> Principal:
    """Verify a Supabase Auth access token or raise 401."""
    import jwt  # lazy: keeps the function modules' cold start light

    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise _invalid_token("The access token is malformed.") from exc
    alg = header.get("alg")
    key: Any
    if alg == "HS256":
        key = settings.jwt_secret.get_secret_value()
    elif alg in ASYMMETRIC_ALGORITHMS:
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _invalid_token("The access token has no key id (kid).")
        key = (keys or jwks_for(settings)).get(kid)
        if key is None:
            raise _invalid_token("The access token is signed by an unknown key.")
        if key.algorithm_name != alg:
            raise _invalid_token("The access token's algorithm does not match its key.")
    else:
        raise _invalid_token(f"Unsupported token algorithm {alg!r}.")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=settings.jwt_audience,
            leeway=LEEWAY_S,
            options={"require": ["exp", "sub"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized(
            "The access token has expired.",
            code="TOKEN_EXPIRED",
            hint="Refresh the session and retry with the new access token.",
        ) from exc
    except jwt.InvalidAudienceError as exc:
        raise _invalid_token(
            f"The access token is not meant for audience {settings.jwt_audience!r}."
        ) from exc
    except jwt.InvalidTokenError as exc:
        raise _invalid_token(f"The access token is not valid: {exc}.") from exc
    try:
        user_id = str(uuid.UUID(str(claims["sub"])))
    except ValueError as exc:
        raise _invalid_token("The access token's subject is not a user id.") from exc
    if claims.get("role") != "authenticated":
        raise _invalid_token("The access token is not for an authenticated user.")
    return Principal(
        kind="user",
        role="authenticated",
        user_id=user_id,
        is_anonymous=claims.get("is_anonymous") is True,
        claims=claims,
        token=token,
    )


def _invalid_token(message: str) -> Unauthorized:
    return Unauthorized(
        message,
        code="INVALID_TOKEN",
        hint="Send the access token of a current Supabase Auth session.",
    )


def _key_principal(mode: KeyMode, found: list[_ApiKey], key_name: str | None) -> Principal | None:
    """Match the request's API keys against one mode; raise when one of its kind is invalid."""
    relevant = [k for k in found if k.mode == mode or k.mode is None]
    if not relevant:
        return None
    for key in relevant:
        if not key.valid or (key_name is not None and key.name != key_name):
            raise Unauthorized(
                "The API key is not valid for this project.",
                code="INVALID_API_KEY",
                hint=f"Send {_HINTS[mode]}.",
            )
    chosen = relevant[0]
    role = "anon" if mode == "public" else "service_role"
    claims = dict(chosen.claims or {"role": role})
    return Principal(kind=mode, role=role, claims=claims, key_name=chosen.name)


def _parse_modes(allow: str | Iterable[str]) -> list[tuple[str, str | None]]:
    modes = [allow] if isinstance(allow, str) else list(allow)
    if not modes:
        raise ValueError("allow needs at least one auth mode")
    parsed: list[tuple[str, str | None]] = []
    for mode in modes:
        base, _, name = mode.partition(":")
        if base not in MODES or (name and base not in ("secret", "api_key")):
            raise ValueError(f"unknown auth mode {mode!r}; expected one of {MODES}")
        if base == "api_key" and name not in (None, "", *API_KEY_SCOPES):
            raise ValueError(f"unknown API key scope {name!r}; one of {API_KEY_SCOPES}")
        parsed.append((base, name or None))
    return parsed


def verify_access_token(token: str, settings: Settings | None = None) -> Principal:
    """A Supabase Auth access token's user (401 when it is not one), e.g. a second session's
    token a request carries in its body."""
    settings = settings or get_settings()
    if _bearer_is_api_key(token) or not _looks_like_jwt(token):
        raise _invalid_token("That is not an access token.")
    return _user_principal(token, settings, None)


def verify_token_field(
    token: str, field: str, *, code: str, hint: str, settings: Settings | None = None
) -> Principal:
    """The user of an access token a body carries in ``field`` (not the caller's own
    credentials, so a bad one is a 422 ``code`` of that field, not a 401)."""
    try:
        return verify_access_token(token, settings)
    except AppError as err:
        raise ValidationFailed(
            f"{field} is not a valid access token: {err.message}",
            code=code,
            details=[{"field": field, "message": err.message}],
            hint=hint,
        ) from err


def _cron_principal(
    headers: dict[str, str], bearer: str | None, settings: Settings
) -> Principal | None:
    """The scheduler, when a cron secret is offered (x-cron-secret, or a plain Bearer)."""
    if "x-cron-secret" not in headers and (bearer is None or _looks_like_jwt(bearer)):
        return None
    check_cron_secret(headers, settings)
    return Principal(kind="cron", role="service_role", claims={"role": "service_role"})


def authenticate(
    headers: Mapping[str, str],
    allow: str | Iterable[str] = ("user",),
    settings: Settings | None = None,
    *,
    jwks: KeySource | None = None,
    body: bytes = b"",
    query: Mapping[str, str] | None = None,
) -> Principal:
    """The caller behind these headers under the first allowed mode that applies, or 401.

    ``body`` and ``query`` are needed only by the signature modes.
    """
    settings = settings or get_settings()
    modes = _parse_modes(allow)
    lowered = _lower_headers(headers)
    bearer = _bearer(lowered)
    apikey = lowered.get("apikey", "").strip() or None

    found: list[_ApiKey] = []
    if apikey is not None:
        found.append(_classify_key(apikey, settings))
    user_token: str | None = None
    personal = lowered.get("x-api-key", "").strip() or None
    if bearer is not None and looks_like_key(bearer):
        personal, bearer = bearer, None
    if bearer is not None:
        if _bearer_is_api_key(bearer):
            # supabase-js sends its key in both headers; read it once.
            if apikey is None or not _safe_equal(bearer, apikey):
                found.append(_classify_key(bearer, settings))
        else:
            user_token = bearer

    for mode, key_name in modes:
        if mode == "always":
            return Principal(kind="none", role="anon", claims={"role": "anon"})
        if mode == "user":
            if user_token is not None:
                return _user_principal(user_token, settings, jwks)
            continue
        if mode == "api_key":
            if personal is not None:
                return _personal_key_principal(personal, key_name, settings)
            continue
        if mode == "metrics":
            metrics = _metrics_principal(bearer, settings)
            if metrics is not None:
                return metrics
            continue
        if mode == "cron":
            cron = _cron_principal(lowered, user_token, settings)
            if cron is not None:
                return cron
            continue
        if mode.endswith("_signature"):
            signed = signed_principal(mode, lowered, body, query or {}, settings)
            if signed is not None:
                return signed
            continue
        principal = _key_principal(cast(KeyMode, mode), found, key_name)
        if principal is not None:
            return principal

    if personal is not None:  # a key where no key is taken: say so, once it is known good
        _personal_key_principal(personal, None, settings)
        raise Forbidden(
            "This route does not take an API key.",
            code="SESSION_REQUIRED",
            hint="Sign in and send the session's access token instead.",
        )
    expected = " or ".join(_HINTS[m] for m, _ in modes if m in _HINTS)
    if user_token is None and not found:
        message = "Missing credentials."
    else:
        message = "These credentials are not accepted by this function."
    # Where only signed requests are accepted, what is missing is a signature.
    signed_only = all(m.endswith("_signature") for m, _ in modes)
    raise Unauthorized(
        "Missing signature." if signed_only and message.startswith("Missing") else message,
        code="INVALID_SIGNATURE" if signed_only else None,
        hint=f"Send {expected}.",
    )


def _personal_key_principal(key: str, scope: str | None, settings: Settings) -> Principal:
    """The owner of a personal API key (401 when it is not a usable key), if it has
    ``scope`` (403 API_KEY_SCOPE otherwise)."""
    # cold start: the database is reached only when a request carries a personal key
    from videogen.db.connection import get_database

    principal = api_keys.authenticate(get_database(), key, settings)
    if scope is not None and scope not in (principal.scopes or ()):
        raise Forbidden(
            f"This API key does not have the {scope!r} scope this request needs.",
            code="API_KEY_SCOPE",
            details=[{"field": "scopes", "message": f"has {sorted(principal.scopes or ())}"}],
            hint=f"Make a key with the {scope!r} scope (POST /update-credits/api-keys).",
        )
    return principal


# Tokens and cron --------------------------------------------------------------------------


def _metrics_principal(bearer: str | None, settings: Settings) -> Principal | None:
    """The scraper, when its Bearer is METRICS_TOKEN; off (503) while no token is set."""
    if settings.metrics_token is None or not settings.metrics_token.get_secret_value():
        raise ServiceUnavailable(
            "Metrics are not enabled on this deployment.",
            code="METRICS_NOT_CONFIGURED",
            hint="Set METRICS_TOKEN and scrape with `Authorization: Bearer <METRICS_TOKEN>`.",
        )
    if bearer is None:
        return None
    if not _safe_equal(bearer, settings.metrics_token.get_secret_value()):
        raise Unauthorized("Invalid metrics token.", code="INVALID_API_KEY")
    return Principal(kind="metrics", role="anon", claims={"role": "anon"})


def issue_access_token(
    user_id: str | uuid.UUID,
    *,
    email: str | None = None,
    is_anonymous: bool = False,
    expires_in: int = 3600,
    app_metadata: Mapping[str, Any] | None = None,
    user_metadata: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
) -> str:
    """A local HS256 access token with the claims Supabase Auth puts in its own."""
    import jwt  # lazy: keeps the function modules' cold start light

    settings = settings or get_settings()
    now = int(time.time())
    method = "anonymous" if is_anonymous else "password"
    default_app_metadata: dict[str, Any] = (
        {} if is_anonymous else {"provider": "email", "providers": ["email"]}
    )
    claims: dict[str, Any] = {
        "iss": settings.supabase_url.rstrip("/") + "/auth/v1",
        "aud": settings.jwt_audience,
        "sub": str(uuid.UUID(str(user_id))),
        "role": "authenticated",
        "email": email or "",
        "phone": "",
        "is_anonymous": is_anonymous,
        "session_id": str(uuid.uuid4()),
        "aal": "aal1",
        "amr": [{"method": method, "timestamp": now}],
        "app_metadata": dict(app_metadata) if app_metadata is not None else default_app_metadata,
        "user_metadata": dict(user_metadata or {}),
        "iat": now,
        "exp": now + expires_in,
    }
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")


def check_cron_secret(headers: Mapping[str, str], settings: Settings | None = None) -> None:
    """Raise 401 unless the request carries CRON_SECRET (``x-cron-secret`` or Bearer)."""
    settings = settings or get_settings()
    lowered = _lower_headers(headers)
    expected = settings.cron_secret.get_secret_value()
    given = [v for v in (lowered.get("x-cron-secret", "").strip(), _bearer(lowered)) if v]
    # Check every candidate so the time taken does not depend on which one matched.
    if not expected or not any([_safe_equal(v, expected) for v in given]):
        raise Unauthorized(
            "Missing or wrong cron secret." if given else "Missing cron secret.",
            hint="Send the CRON_SECRET in an `x-cron-secret` or `Authorization: Bearer` header.",
        )
