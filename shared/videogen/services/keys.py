"""Users' own provider keys (seed 001, "API keys encrypted at rest").

A user stores one key per provider (openai, fal, replicate, runway); it is kept in
Supabase Vault (sql/schema/18_provider_keys.sql) and read back, decrypted, only for that
user: when one of their jobs goes to fal, Replicate or Runway (:mod:`videogen.services.routing`)
and when their request or job needs OpenAI (script steps, prompt enhancement). Everyone
else's jobs keep the deployment's keys. No answer, log line or error message carries a
key: answers show its last four characters, and :func:`redact` takes a key out of any
provider message before it is stored or logged.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from videogen.db import provider_keys
from videogen.db.outcomes import Outcome, WriteRequest
from videogen.db.writes import record_refusal
from videogen.errors import AppError
from videogen.models.keys import ProviderKeyList

if TYPE_CHECKING:
    from videogen.db.connection import Database, Session
    from videogen.models.keys import (
        ProviderKey,
        ProviderKeyDeleted,
        ProviderKeyList,
        ProviderKeyRequest,
    )
    from videogen.principal import Principal
    from videogen.services.scope import Scope

USER_KEY_PROVIDERS = ("openai", "fal", "replicate", "runway")


def _unkeyed(write: WriteRequest) -> WriteRequest:
    """A key store takes no Idempotency-Key: storing the same key again is the same state,
    and an idempotency row would keep a hash of a body that holds the key."""
    return replace(write, key=None, hash="")


def store(scope: Scope, body: ProviderKeyRequest) -> Outcome[ProviderKey]:
    """Store or rotate the user's key for a provider (201 stored, 200 rotated)."""
    unkeyed = _unkeyed(scope.write)
    try:
        return provider_keys.provider_key_save(
            scope.db, scope.principal, unkeyed, body.provider, body.key.get_secret_value()
        )
    except AppError as err:
        record_refusal(scope.db, unkeyed, err)
        raise


def remove(scope: Scope, provider: str) -> Outcome[ProviderKeyDeleted]:
    """Forget the user's key for a provider (404 when there is none)."""
    with scope.writing() as write:
        return provider_keys.provider_key_delete(scope.db, scope.principal, write, provider)


def listing(session: Session) -> ProviderKeyList:
    """Which providers the caller has a key for (masked)."""
    return ProviderKeyList(keys=provider_keys.provider_keys_list(session))


def for_job(db: Database, job_id: str, provider: str) -> str | None:
    """The job owner's own key for ``provider``, or None (then the deployment's is used)."""
    if provider not in USER_KEY_PROVIDERS:
        return None
    with db.admin() as admin:
        return provider_keys.provider_key_for_job(admin, job_id, provider)


def mine(db: Database, principal: Principal, provider: str) -> str | None:
    """The signed-in user's own key for ``provider``, or None."""
    if principal.kind != "user" or provider not in USER_KEY_PROVIDERS:
        return None
    return provider_keys.provider_key_mine(db, principal, provider)


def redact(text: str, key: str | None) -> str:
    """``text`` without ``key`` in it (a provider may quote what it was sent)."""
    if not key:
        return text
    return text.replace(key, "[redacted]")
