"""The local platform's own credentials: what the local Auth, Storage and Realtime (and the
dev server around them) use to issue and check tokens, written here with PyJWT and never
borrowed from the runtime (``videogen.kit.auth``, ``videogen.integrations.storage``) they
stand in front of, so a bug in the runtime's checks cannot hide behind the same bug in
its stand-ins.

Key material is the local project's, as ``supabase start`` shares it between its services:

- the ES256 key pair of the local Auth (:class:`SigningKey`), kept in
  ``<VIDEOGEN_HOME>/auth/signing_key.pem`` (mode 0600); its kid is the key's RFC 7638
  thumbprint and its public half is what ``/auth/v1/.well-known/jwks.json`` lists;
- the legacy HS256 JWT secret (``SUPABASE_JWT_SECRET``), which signs the legacy anon /
  service_role keys, legacy access tokens and Storage's signed-URL tokens;
- keys given inline in ``SUPABASE_JWKS`` (as Storage's ``JWT_JWKS`` and Realtime's tenant
  JWKS take them), accepted next to the local Auth's;
- the publishable (``sb_publishable_…``) and secret (``sb_secret_…``) API keys.

How the services use them, as the real ones do:

- Auth (GoTrue) signs access tokens with its ES256 key and reads back its own tokens and
  legacy HS256 ones (:func:`decode_access_token` with ``only_key``);
- Storage and Realtime take a user's access token (its signature, ``exp``, audience, a user
  id in ``sub`` and the ``authenticated`` role) or an API key: :func:`identify`;
- Storage's signed URLs carry a JWT signed with the JWT secret whose ``url`` claim is the
  object (``{url, scope, iat, exp}``; uploads add ``owner`` and ``upsert``):
  :func:`sign_url_token` and :func:`decode_url_token`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from videogen.config import Settings, get_settings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey

LEEWAY_S = 10  # clock skew tolerated on exp / iat / nbf
ASYMMETRIC_ALGORITHMS = ("ES256", "RS256")
Kind = Literal["user", "secret", "public"]
# The roles of the legacy API keys (JWTs signed with the JWT secret).
_KEY_ROLES: dict[str, Kind] = {"anon": "public", "service_role": "secret"}


# The local Auth's ES256 key -----------------------------------------------------------------
class SigningKey:
    """The ES256 key pair that signs the local Auth's access tokens, created once at
    ``path`` (written atomically, mode 0600; a key another process wrote first is kept)."""

    def __init__(self, path: Path) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        if not path.exists():
            self._create(path)
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey) or loaded.curve.name != "secp256r1":
            raise RuntimeError(f"{path} is not a P-256 (ES256) private key")
        self.path = path
        self.private_key: EllipticCurvePrivateKey = loaded
        numbers = loaded.public_key().public_numbers()
        self.x = b64url(numbers.x.to_bytes(32, "big"))
        self.y = b64url(numbers.y.to_bytes(32, "big"))
        # RFC 7638 thumbprint: stable for the key, so the kid survives restarts with it.
        canonical = json.dumps(
            {"crv": "P-256", "kty": "EC", "x": self.x, "y": self.y}, separators=(",", ":")
        )
        self.kid = b64url(hashlib.sha256(canonical.encode()).digest())

    @staticmethod
    def _create(path: Path) -> None:
        """Write a new key atomically; a concurrent worker that wins the race is kept."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        path.parent.mkdir(parents=True, exist_ok=True)
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        staged = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
            with contextlib.suppress(FileExistsError):
                os.link(staged, path)  # never replaces a key another process wrote
        finally:
            staged.unlink(missing_ok=True)

    @property
    def public_key(self) -> Any:
        """The verification half."""
        return self.private_key.public_key()

    @property
    def jwk(self) -> dict[str, Any]:
        """The public key as GoTrue lists it in its JWKS."""
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": self.x,
            "y": self.y,
            "kid": self.kid,
            "alg": "ES256",
            "use": "sig",
            "key_ops": ["verify"],
        }

    def sign(self, claims: dict[str, Any]) -> str:
        """An ES256 JWT of ``claims`` with this key's kid."""
        import jwt

        return jwt.encode(
            claims, self.private_key, algorithm="ES256", headers={"kid": self.kid, "typ": "JWT"}
        )


def signing_key_path(settings: Settings | None = None) -> Path:
    """Where the local Auth keeps its key: ``<VIDEOGEN_HOME>/auth/signing_key.pem``."""
    return (settings or get_settings()).state_dir / "auth" / "signing_key.pem"


_loaded: dict[Path, SigningKey] = {}
_loaded_lock = threading.Lock()


def local_signing_key(path: Path | None = None, *, create: bool = True) -> SigningKey | None:
    """The local Auth's key at ``path`` (the state dir's by default), loaded once per
    process; created when absent unless ``create`` is False (then None: no token can have
    been signed with a key that does not exist yet)."""
    path = (path or signing_key_path()).absolute()
    with _loaded_lock:
        key = _loaded.get(path)
        if key is None:
            if not create and not path.exists():
                return None
            key = _loaded[path] = SigningKey(path)
        return key


def _local_key(kid: str, settings: Settings) -> SigningKey | None:
    """The local Auth's key with this kid: one this process has loaded (an Auth API with a
    key of its own), else the state dir's when it exists."""
    with _loaded_lock:
        for key in _loaded.values():
            if key.kid == kid:
                return key
    return local_signing_key(signing_key_path(settings), create=False)


def b64url(raw: bytes) -> str:
    """Unpadded base64url, as JOSE writes it."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# Access tokens ------------------------------------------------------------------------------
class UnknownKey(Exception):
    """A JWT whose algorithm or key id none of the platform's keys matches."""


def _inline_jwks(settings: Settings) -> dict[str, Any]:
    """``SUPABASE_JWKS``'s signing keys by kid (a JWKS, a list of JWKs or one JWK)."""
    import jwt

    if not settings.jwks:
        return {}
    data: Any = json.loads(settings.jwks)
    if isinstance(data, dict):
        data = data.get("keys", [data]) if "keys" in data or "kty" in data else []
    keys: dict[str, Any] = {}
    for raw in data if isinstance(data, list) else []:
        if not isinstance(raw, dict) or not raw.get("kid") or raw.get("use", "sig") != "sig":
            continue
        with contextlib.suppress(jwt.exceptions.PyJWKError):
            keys[str(raw["kid"])] = jwt.PyJWK(raw)
    return keys


def _verification_key(
    header: dict[str, Any], settings: Settings, only_key: SigningKey | None
) -> Any:
    """The key that must have signed a JWT with this header, or :class:`UnknownKey`.

    HS256: the JWT secret. ES256 / RS256: the local Auth's key when the kid is its own
    (only ``only_key`` when given: the Auth API reads back nothing else), else a key of
    ``SUPABASE_JWKS`` with that kid and algorithm.
    """
    alg = header.get("alg")
    if alg == "HS256":
        return settings.jwt_secret.get_secret_value()
    if alg not in ASYMMETRIC_ALGORITHMS:
        raise UnknownKey(f"unsupported signing method {alg!r}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise UnknownKey("the token has no key id (kid)")
    local = only_key if only_key is not None else _local_key(kid, settings)
    if local is not None and alg == "ES256" and kid == local.kid:
        return local.public_key
    if only_key is None:
        inline = _inline_jwks(settings).get(kid)
        if inline is not None and inline.algorithm_name == alg:
            return inline.key
    raise UnknownKey("the token is signed by an unknown key")


def decode_access_token(
    token: str,
    settings: Settings | None = None,
    *,
    only_key: SigningKey | None = None,
    require: Iterable[str] = ("exp", "sub"),
) -> dict[str, Any]:
    """The verified claims of an access token (signature, ``exp``, ``nbf``, ``iat`` with
    :data:`LEEWAY_S` of skew, the project's audience), or PyJWT's
    ``jwt.InvalidTokenError`` / :class:`UnknownKey`."""
    import jwt

    settings = settings or get_settings()
    header = jwt.get_unverified_header(token)
    key = _verification_key(header, settings, only_key)
    claims: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=[str(header["alg"])],
        audience=settings.jwt_audience,
        leeway=LEEWAY_S,
        options={"require": list(require)},
    )
    return claims


def unverified_claims(token: str) -> dict[str, Any]:
    """A JWT's payload, unchecked (to pick a check or word an error); {} when not a JWT."""
    try:
        segment = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


# API keys and callers -------------------------------------------------------------------------
@dataclass(frozen=True)
class Identity:
    """Who a request's credentials stand for: the database role and the JWT claims."""

    kind: Kind
    role: str
    claims: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiKey:
    """An API key found in a request: the kind it claims to be (None: no kind at all) and,
    when it is one of the project's, who it stands for."""

    kind: Kind | None
    identity: Identity | None


class Rejected(Exception):
    """Credentials that are present but wrong, or absent where one is needed.

    ``reason``: ``missing``, ``malformed`` (not a JWT), ``expired`` (``expired_at`` says
    when), ``invalid_token`` (an access token that fails its checks) or ``invalid_api_key``.
    """

    def __init__(self, reason: str, message: str, *, expired_at: float | None = None) -> None:
        super().__init__(message)
        self.reason, self.message, self.expired_at = reason, message, expired_at


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2


def is_api_key(value: str) -> bool:
    """True for a value that is an API key rather than a user's token (``sb_…``, or a JWT
    with the anon / service_role role, which clients copy into ``Authorization``)."""
    if value.startswith("sb_"):
        return True
    return _looks_like_jwt(value) and unverified_claims(value).get("role") in _KEY_ROLES


def api_key(value: str, settings: Settings | None = None) -> ApiKey:
    """What an API key is: the publishable key (anon), a secret key (service_role, any
    named one of ``SUPABASE_SECRET_KEYS``), the legacy anon / service_role JWT, or a JWT
    signed with the JWT secret that carries one of those roles."""
    import jwt

    settings = settings or get_settings()
    if value.startswith("sb_publishable_"):
        ok = _same(value, settings.publishable_key.get_secret_value())
        return ApiKey("public", Identity("public", "anon", {"role": "anon"}) if ok else None)
    if value.startswith("sb_secret_"):
        # Every key compared, none skipped, so the time taken says nothing.
        matched = [_same(value, key) for key in settings.named_secret_keys().values()]
        identity = Identity("secret", "service_role", {"role": "service_role"})
        return ApiKey("secret", identity if any(matched) else None)
    if not _looks_like_jwt(value):
        return ApiKey(None, None)
    if _same(value, settings.anon_key.get_secret_value()):
        return ApiKey("public", Identity("public", "anon", {"role": "anon"}))
    if _same(value, settings.service_role_key.get_secret_value()):
        return ApiKey("secret", Identity("secret", "service_role", {"role": "service_role"}))
    role = unverified_claims(value).get("role")
    kind = _KEY_ROLES.get(role) if isinstance(role, str) else None
    if kind is None:
        return ApiKey(None, None)
    try:
        claims = jwt.decode(
            value,
            settings.jwt_secret.get_secret_value(),
            algorithms=["HS256"],
            leeway=LEEWAY_S,
            options={"verify_aud": False},
        )
    except jwt.InvalidTokenError:
        return ApiKey(kind, None)
    if claims.get("role") != role:
        return ApiKey(kind, None)
    return ApiKey(kind, Identity(kind, str(role), claims))


def user_claims(token: str, settings: Settings | None = None) -> dict[str, Any]:
    """A signed-in user's verified access token claims (a user id in ``sub``, the
    ``authenticated`` role), or :class:`Rejected`."""
    import jwt

    if not _looks_like_jwt(token):
        raise Rejected("malformed", "jwt malformed")
    try:
        claims = decode_access_token(token, settings)
    except jwt.ExpiredSignatureError as exc:
        exp = unverified_claims(token).get("exp")
        raise Rejected(
            "expired",
            "jwt expired",
            expired_at=float(exp) if isinstance(exp, int | float) else time.time(),
        ) from exc
    except jwt.InvalidSignatureError as exc:  # a DecodeError too: caught first
        raise Rejected("invalid_token", "invalid signature") from exc
    except jwt.DecodeError as exc:
        raise Rejected("malformed", "jwt malformed") from exc
    except (jwt.InvalidTokenError, UnknownKey) as exc:
        raise Rejected("invalid_token", str(exc) or "invalid token") from exc
    try:
        uuid.UUID(str(claims["sub"]))
    except ValueError as exc:
        raise Rejected("invalid_token", "the token's subject is not a user id") from exc
    if claims.get("role") != "authenticated":
        raise Rejected("invalid_token", "the token is not for an authenticated user")
    return claims


def identify(
    *,
    bearer: str | None = None,
    apikey: str | None = None,
    allow: Iterable[Kind] = ("user", "secret", "public"),
    settings: Settings | None = None,
) -> Identity:
    """Who a request is, from its ``Authorization: Bearer`` value and its ``apikey``.

    A bearer that is not an API key is a user's access token: with ``user`` allowed it
    decides alone (verified, or :class:`Rejected`). Otherwise the API keys decide, the
    first allowed kind first (``secret`` before ``public`` for a request with both); a key
    that is not the project's is refused, never read as a weaker kind.
    """
    settings = settings or get_settings()
    keys: list[ApiKey] = []
    if apikey:
        keys.append(api_key(apikey, settings))
    user_token: str | None = None
    if bearer:
        if is_api_key(bearer):
            if not apikey or not _same(bearer, apikey):  # clients send a key in both
                keys.append(api_key(bearer, settings))
        else:
            user_token = bearer
    allowed = list(allow)
    for kind in allowed:
        if kind == "user":
            if user_token is not None:
                claims = user_claims(user_token, settings)
                return Identity("user", "authenticated", claims)
            continue
        relevant = [key for key in keys if key.kind in (kind, None)]
        for key in relevant:
            if key.identity is None:
                raise Rejected("invalid_api_key", "Invalid API key")
        if relevant and relevant[0].identity is not None:
            return relevant[0].identity
    if user_token is None and not keys:
        raise Rejected("missing", "No API key found in request")
    raise Rejected("invalid_api_key", "These credentials are not accepted here")


# Storage's signed URLs ------------------------------------------------------------------------
def sign_url_token(
    object_path: str,
    expires_in: int,
    *,
    scope: Literal["download", "upload"] = "download",
    owner: str | None = None,
    upsert: bool | None = None,
    now: float | None = None,
    settings: Settings | None = None,
) -> str:
    """A signed-URL token as Storage signs one (HS256 with the JWT secret): download
    ``{url, scope, iat, exp}``, upload ``{owner, url, upsert, scope, iat, exp}`` (no
    ``owner`` for an anonymous caller: JSON.stringify drops an undefined one)."""
    import jwt

    settings = settings or get_settings()
    issued = int(time.time() if now is None else now)
    payload: dict[str, Any] = {}
    if scope == "upload":
        if owner is not None:
            payload["owner"] = owner
        payload.update(url=object_path, upsert=bool(upsert))
    else:
        payload["url"] = object_path
    payload.update(scope=scope, iat=issued, exp=issued + int(expires_in))
    return jwt.encode(payload, settings.jwt_secret.get_secret_value(), algorithm="HS256")


def decode_url_token(token: str, settings: Settings | None = None) -> dict[str, Any]:
    """A signed-URL token's payload, its signature checked (HS256, the JWT secret) but not
    its expiry, which Storage checks after the object (``jwt.InvalidTokenError`` else)."""
    import jwt

    settings = settings or get_settings()
    payload: dict[str, Any] = jwt.decode(
        token,
        settings.jwt_secret.get_secret_value(),
        algorithms=["HS256"],
        options={"verify_exp": False},
    )
    return payload


__all__ = [
    "ApiKey",
    "Identity",
    "Rejected",
    "SigningKey",
    "UnknownKey",
    "api_key",
    "decode_access_token",
    "decode_url_token",
    "identify",
    "is_api_key",
    "local_signing_key",
    "sign_url_token",
    "signing_key_path",
    "unverified_claims",
    "user_claims",
]
