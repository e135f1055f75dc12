"""A user's account as a whole: API keys, share links, export, erasure
(sql/schema/21_accounts.sql)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from videogen.db.outcomes import Outcome, outcome_of
from videogen.models.accounts import ApiKey, ShareLink

if TYPE_CHECKING:
    from datetime import datetime

    from videogen.db.calls import JSON
    from videogen.db.connection import Database, Session
    from videogen.db.outcomes import WriteRequest
    from videogen.principal import Principal


def api_key_create(
    db: Database,
    principal: Principal,
    request: WriteRequest,
    *,
    name: str,
    key_hash: str,
    prefix: str,
    last4: str,
    scopes: list[str],
    expires_at: datetime | None,
) -> Outcome[ApiKey]:
    """Keep a new key's hash for the user (201); 409 API_KEY_LIMIT past the cap."""
    result = db.user_call(
        principal,
        "service.api_key_create",
        request=request.as_json(),
        name=name,
        key_hash=key_hash,
        prefix=prefix,
        last4=last4,
        scopes=scopes,
        expires_at=expires_at,
    )
    return outcome_of(result, ApiKey)


def api_key_revoke(
    db: Database, principal: Principal, request: WriteRequest, key_id: str
) -> Outcome[ApiKey]:
    """Revoke one of the user's keys (404 API_KEY_NOT_FOUND when not theirs)."""
    result = db.user_call(principal, "service.api_key_revoke", request=request.as_json(), id=key_id)
    return outcome_of(result, ApiKey)


def api_keys_list(session: Session) -> list[ApiKey]:
    """The caller's keys as they may be shown (RLS: their own)."""
    return [ApiKey.model_validate(k) for k in session.rpc("api_keys_list")]


def api_key_authenticate(db: Database, key_hash: str) -> JSON | None:
    """The key with this SHA-256: {state, key_id, user_id, scopes, email}, or None."""
    result: JSON | None = db.admin_call("service.api_key_authenticate", key_hash=key_hash)
    return result


def share_link_create(
    db: Database,
    principal: Principal,
    request: WriteRequest,
    link_id: str,
    job_id: str,
    expires_at: datetime | None,
) -> Outcome[ShareLink]:
    """Share one of the user's completed videos under ``link_id`` (201)."""
    result = db.user_call(
        principal,
        "service.share_link_create",
        request=request.as_json(),
        id=link_id,
        job_id=job_id,
        expires_at=expires_at,
    )
    return outcome_of(result, ShareLink)


def share_link_revoke(
    db: Database, principal: Principal, request: WriteRequest, link_id: str
) -> Outcome[ShareLink]:
    """Revoke one of the user's share links (404 SHARE_LINK_NOT_FOUND when not theirs)."""
    result = db.user_call(
        principal, "service.share_link_revoke", request=request.as_json(), id=link_id
    )
    return outcome_of(result, ShareLink)


def share_links_list(session: Session) -> list[ShareLink]:
    """The caller's share links (RLS: their own)."""
    return [ShareLink.model_validate(s) for s in session.rpc("share_links_list")]


def share_link_resolve(db: Database, link_id: str) -> JSON | None:
    """What a share link shows: {state: active, paths…} or {state: gone}; None if unknown."""
    result: JSON | None = db.admin_call("service.share_link_resolve", id=link_id)
    return result


def account_export(db: Database, principal: Principal) -> dict[str, Any]:
    """Everything held about the user in the claims, with ``counts`` and ``files``."""
    result: dict[str, Any] = db.user_call(principal, "service.account_export")
    return result


def account_erase(db: Database, principal: Principal, request: WriteRequest) -> JSON:
    """Erase the user's personal data (409 ACCOUNT_BUSY while a job runs): {jobs_erased,
    events_erased}."""
    result: JSON = db.user_call(principal, "service.account_erase", request=request.as_json())
    data: JSON = result["data"]
    return data
