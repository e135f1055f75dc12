"""Personal API keys: a user's own servers call the user endpoints as that user (issue 23).

A key is ``vg_live_`` and 43 URL-safe characters (32 random bytes from :mod:`secrets`, 256
bits). It is answered once, when it is made, and kept only as its SHA-256 hex digest: for
a high-entropy random key a fast hash is right — there is nothing to guess, so a slow
password hash (bcrypt, argon2) would only slow every request — and the lookup is one
index probe. The key never reaches a procedure, a log line or an error message.

A key resolves to the same identity as its owner's access token: a ``user`` principal
whose claims (``sub``, ``role: authenticated``, ``email``) the database sets as it does
for a token, so RLS, ``auth.uid()`` and the rate limits (by user) hold unchanged. It also
carries a short-lived HS256 token with those claims, for the PostgREST adapter. Two
differences: a key never acts as an admin (no ``app_metadata.role``), and it does only what
its scopes allow (``read``: GETs; ``jobs``: create, cancel and remove jobs and batches),
checked by the HTTP kit against each route's modes.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from videogen.db import accounts
from videogen.db.outcomes import Outcome
from videogen.errors import Forbidden, Unauthorized
from videogen.models.accounts import ApiKeyCreated, ApiKeyList
from videogen.principal import Principal

if TYPE_CHECKING:
    from videogen.config import Settings
    from videogen.db.connection import Database, Session
    from videogen.models.accounts import ApiKey, ApiKeyRequest
    from videogen.services.scope import Scope

PREFIX = "vg_live_"
KEY_FORM = re.compile(r"^vg_live_[A-Za-z0-9_-]{43}$")
TOKEN_TTL_S = 300  # the PostgREST token minted for a key's request


def new_key() -> str:
    """A fresh key: the prefix and 256 random bits, URL-safe."""
    return PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The SHA-256 hex digest a key is kept as."""
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_key(value: str) -> bool:
    """Whether a credential is meant as one of our personal API keys (by its prefix)."""
    return value.startswith("vg_")


def require_session(principal: Principal, what: str) -> None:
    """403 SESSION_REQUIRED when a personal API key asks for what only a session may do."""
    if principal.by_api_key:
        raise Forbidden(
            f"An API key cannot {what}.",
            code="SESSION_REQUIRED",
            hint="Sign in and send the session's access token instead.",
        )


def create(scope: Scope, body: ApiKeyRequest) -> Outcome[ApiKeyCreated]:
    """Make a key for the signed-in user (201, the key shown this once)."""
    require_session(scope.principal, "make API keys")
    key = new_key()
    expires_at = (
        None
        if body.expires_in_seconds is None
        else datetime.now(UTC) + timedelta(seconds=body.expires_in_seconds)
    )
    # No Idempotency-Key: a replay could not show the key again, and a retry makes a new one.
    with scope.writing() as write:
        outcome = accounts.api_key_create(
            scope.db,
            scope.principal,
            write,
            name=body.name,
            key_hash=hash_key(key),
            prefix=PREFIX,
            last4=key[-4:],
            scopes=list(body.scopes),
            expires_at=expires_at,
        )
    created = ApiKeyCreated.model_validate({**outcome.data.model_dump(), "key": key})
    return Outcome(outcome.status, created, outcome.replayed)


def revoke(scope: Scope, key_id: str) -> Outcome[ApiKey]:
    """Revoke one of the user's keys: every request with it is a 401 from now on."""
    require_session(scope.principal, "revoke API keys")
    with scope.writing() as write:
        return accounts.api_key_revoke(scope.db, scope.principal, write, key_id)


def listing(session: Session) -> ApiKeyList:
    """The caller's keys, masked."""
    return ApiKeyList(keys=accounts.api_keys_list(session))


def authenticate(db: Database, key: str, settings: Settings) -> Principal:
    """The user a personal API key stands for, or 401 (unknown, revoked, expired)."""
    if not KEY_FORM.match(key):
        raise _invalid("The API key is malformed.")
    found = accounts.api_key_authenticate(db, hash_key(key))
    if found is None:
        raise _invalid("The API key is not valid.")
    if found["state"] == "revoked":
        raise Unauthorized(
            "The API key was revoked.",
            code="API_KEY_REVOKED",
            hint="Make a new key (POST /update-credits/api-keys).",
        )
    if found["state"] == "expired":
        raise Unauthorized(
            "The API key has expired.",
            code="API_KEY_EXPIRED",
            hint="Make a new key (POST /update-credits/api-keys).",
        )
    user_id = str(uuid.UUID(str(found["user_id"])))
    now = int(time.time())
    anonymous = bool(found.get("is_anonymous"))
    claims: dict[str, object] = {
        "iss": settings.supabase_url.rstrip("/") + "/auth/v1",
        "aud": settings.jwt_audience,
        "sub": user_id,
        "role": "authenticated",
        "email": found.get("email") or "",
        "is_anonymous": anonymous,
        "app_metadata": {},
        "user_metadata": {},
        "api_key_id": str(found["key_id"]),
        "iat": now,
        "exp": now + TOKEN_TTL_S,
    }
    return Principal(
        kind="user",
        role="authenticated",
        user_id=user_id,
        is_anonymous=anonymous,
        claims=dict(claims),
        token=_mint(claims, settings),
        key_name=f"api_key:{found['key_id']}",
        scopes=frozenset(found["scopes"]),
        api_key_id=str(found["key_id"]),
    )


def _mint(claims: dict[str, object], settings: Settings) -> str:
    """The claims as an HS256 token (what PostgREST takes) — a key's request only."""
    import jwt  # cold start: PyJWT loads only for a key's request

    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")


def _invalid(message: str) -> Unauthorized:
    return Unauthorized(
        message,
        code="INVALID_API_KEY",
        hint="Send a key from POST /update-credits/api-keys as `Authorization: Bearer <key>`.",
    )
