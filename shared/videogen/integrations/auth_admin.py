"""Supabase Auth's admin API, for what only the service may do to a user: delete them.

``DELETE {SUPABASE_URL}/auth/v1/admin/users/{id}`` with the secret key (GoTrue's
``adminUserDelete``; hosted projects and the local stand-in, videogen_dev.auth_api, answer
it alike), through supabase-py's own ``supabase_auth`` admin client with an injected
``httpx.Client``. The auth user's rows go with it: identities, sessions, refresh tokens,
and by our foreign keys the profile and everything else that is only theirs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from videogen.errors import ServiceUnavailable
from videogen.integrations.storage import service_key

if TYPE_CHECKING:
    import httpx

    from videogen.config import Settings


def delete_user(settings: Settings, user_id: str, http_client: httpx.Client | None = None) -> bool:
    """Delete the auth user (hard delete); False when Auth no longer knows them (a retry)."""
    import httpx  # cold start: httpx and supabase_auth load only for a deletion
    from supabase_auth import SyncGoTrueAdminAPI  # cold start: as above
    from supabase_auth.errors import AuthApiError, AuthError  # cold start: as above

    key = service_key(settings)
    headers = {"apikey": key}
    if not key.startswith("sb_"):  # a legacy service_role JWT goes as the bearer too
        headers["Authorization"] = f"Bearer {key}"
    client = http_client or httpx.Client(timeout=10.0)
    admin = SyncGoTrueAdminAPI(
        url=settings.supabase_url.rstrip("/") + "/auth/v1", headers=headers, http_client=client
    )
    try:
        admin.delete_user(user_id, should_soft_delete=False)
    except AuthApiError as exc:
        if exc.status == 404:
            return False
        raise _unavailable(str(exc.status)) from exc
    except AuthError as exc:
        raise _unavailable(type(exc).__name__) from exc
    finally:
        if http_client is None:
            client.close()
    return True


def _unavailable(why: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"Supabase Auth did not delete the user ({why}); nothing else changed after the "
        "erasure, so retrying finishes it.",
        code="AUTH_UNAVAILABLE",
        headers={"Retry-After": "5"},
    )
