"""Users' own provider keys, kept in Vault (sql/schema/18_provider_keys.sql)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from videogen.db.calls import service_call
from videogen.db.outcomes import Outcome, outcome_of
from videogen.errors import from_sqlstate
from videogen.models.keys import ProviderKey, ProviderKeyDeleted

if TYPE_CHECKING:
    from videogen.db.calls import Runs
    from videogen.db.connection import Database, Session
    from videogen.db.outcomes import WriteRequest
    from videogen.principal import Principal


def provider_key_save(
    db: Database, principal: Principal, request: WriteRequest, provider: str, key: str
) -> Outcome[ProviderKey]:
    """Store or rotate the user's key (201 stored, 200 rotated). The procedure answers its
    own failures instead of raising them (its statement carries the key); raised here."""
    result = db.user_call(
        principal,
        "service.provider_key_save",
        request=request.as_json(),
        provider=provider,
        key=key,
    )
    if "error" in result:
        error = result["error"]
        raise from_sqlstate(
            error.get("sqlstate"),
            error.get("message") or "",
            error.get("detail"),
            error.get("hint"),
        )
    return outcome_of(result, ProviderKey)


def provider_key_delete(
    db: Database, principal: Principal, request: WriteRequest, provider: str
) -> Outcome[ProviderKeyDeleted]:
    """Forget the user's key for a provider (VGK04 when there is none)."""
    result = db.user_call(
        principal, "service.provider_key_delete", request=request.as_json(), provider=provider
    )
    return outcome_of(result, ProviderKeyDeleted)


def provider_keys_list(session: Session) -> list[ProviderKey]:
    """The caller's keys as they may be shown (RLS: their own)."""
    return [ProviderKey.model_validate(k) for k in session.rpc("provider_keys_list")]


def provider_key_for_job(on: Runs, job_id: str, provider: str) -> str | None:
    """The job owner's own key for a provider, decrypted, or None."""
    result = service_call(on, "service.provider_key_get_for_job", job_id=job_id, provider=provider)
    return None if result is None else str(result)


def provider_key_mine(db: Database, principal: Principal, provider: str) -> str | None:
    """The signed-in user's own key for a provider, decrypted, or None."""
    result = db.user_call(principal, "service.provider_key_get_mine", provider=provider)
    return None if result is None else str(result)
