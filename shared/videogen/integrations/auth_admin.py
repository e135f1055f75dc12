"""Supabase Auth's admin API, for what only the service may do to a user: delete them.

``DELETE {SUPABASE_URL}/auth/v1/admin/users/{id}`` with the secret key and the body
``{"should_soft_delete": false}`` (GoTrue's ``adminUserDelete``, what supabase-js's
``auth.admin.deleteUser`` sends; hosted projects and the local stand-in,
videogen_dev.auth_api, answer it alike: 200 ``{}``, 404 ``user_not_found``). One request
with httpx rather than supabase-py's ``supabase_auth`` client: that package stays out of the
deployed functions (tests/deploy/test_build.py), and this is its whole use. The auth user's
rows go with it: identities, sessions, refresh tokens, and by our foreign keys the profile
and everything else that is only theirs.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from videogen.errors import ServiceUnavailable
from videogen.integrations.storage import service_key

if TYPE_CHECKING:
    import httpx

    from videogen.config import Settings

TIMEOUT_S = 10.0


def delete_user(settings: Settings, user_id: str, http_client: httpx.Client | None = None) -> bool:
    """Delete the auth user (hard delete); False when Auth no longer knows them (a retry)."""
    import httpx  # cold start: httpx loads only for a deletion

    key = service_key(settings)
    headers = {"apikey": key, "X-Supabase-Api-Version": "2024-01-01"}
    if not key.startswith("sb_"):  # a legacy service_role JWT goes as the bearer too
        headers["Authorization"] = f"Bearer {key}"
    url = f"{settings.supabase_url.rstrip('/')}/auth/v1/admin/users/{uuid.UUID(user_id)}"
    client = http_client or httpx.Client(timeout=TIMEOUT_S)
    try:
        response = client.request(
            "DELETE", url, headers=headers, json={"should_soft_delete": False}
        )
    except httpx.HTTPError as exc:
        raise _unavailable(type(exc).__name__) from exc
    finally:
        if http_client is None:
            client.close()
    if response.status_code == 404 and _error_code(response) == "user_not_found":
        return False
    if response.status_code != 200:
        raise _unavailable(f"HTTP {response.status_code}")
    return True


def _error_code(response: httpx.Response) -> str | None:
    """GoTrue's error code: ``code`` in the 2024-01-01 shape, ``error_code`` before it."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    code = body.get("code") if isinstance(body.get("code"), str) else body.get("error_code")
    return code if isinstance(code, str) else None


def _unavailable(why: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"Supabase Auth did not delete the user ({why}); your data is already erased, so "
        "retrying finishes the deletion.",
        code="AUTH_UNAVAILABLE",
        headers={"Retry-After": "5"},
    )
