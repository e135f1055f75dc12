"""Your data (seed 004's privacy requirements): everything we hold about you as one JSON
download, and the deletion of your account.

The export is answered directly, as one JSON document (``Content-Disposition:
attachment``), not written to Storage behind a signed link: a stored copy would be one more
place holding the person's data, with its own retention and its own deletion to get right,
and an account's rows are small (the files themselves are links, signed for
``SIGNED_URL_EXPIRES_SECONDS``).

Deletion cannot be done with a stolen access token alone: the token must come from a sign-in
made within ``ACCOUNT_REAUTH_SECONDS`` (the newest ``amr`` timestamp — the time the user
last proved who they are, which a refresh does not renew; Supabase Auth and the local stand-in
both put it in every access token). A client asks the user for their password again
(``signInWithPassword``) and deletes with the new session's token. Then, in this order, so
that a failure leaves nothing half done that a retry cannot finish: the files in the user's
storage folders are removed, the database erases the personal data
(``service.account_erase``: refused while a job still runs), and Supabase Auth deletes the
user through its admin API. Jobs and ledger rows stay for the books, under the user's id,
which then names nobody; the money audit stays balanced.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from videogen.db import accounts
from videogen.db.write_requests import rate_limit_take
from videogen.errors import Forbidden
from videogen.integrations import auth_admin
from videogen.models.accounts import AccountDeleted, AccountExport
from videogen.services.api_keys import require_session

if TYPE_CHECKING:
    from videogen.principal import Principal
    from videogen.services.scope import Scope

EXPORTS_PER_MINUTE = 3
REMOVE_BATCH = 500  # objects per Storage remove call (Supabase Storage takes up to 1000)
# The ways of proving who one is that count as a sign-in (GoTrue's amr methods).
SIGN_IN_METHODS = frozenset(
    {"password", "otp", "magiclink", "oauth", "sso/saml", "totp", "recovery", "web3", "phone"}
)


def export(scope: Scope) -> AccountExport:
    """Every row we hold about the caller, with links to their files (signed)."""
    principal = scope.principal
    require_session(principal, "export an account")
    rate_limit_take(scope.db, f"user:{principal.user_id}", "export", EXPORTS_PER_MINUTE)
    document = accounts.account_export(scope.db, principal)
    lifetime = scope.settings.signed_url_expires_s
    by_bucket: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for file in document["files"]:
        by_bucket[file["bucket"]].append(file)
    for bucket, files in by_bucket.items():
        signed = scope.storage.signed_urls(bucket, [f["path"] for f in files], lifetime)
        for file in files:
            file["url"] = signed.get(file["path"])
    now = datetime.now(UTC)
    document["exported_at"] = now
    document["links_expire_at"] = now + timedelta(seconds=lifetime)
    return AccountExport.model_validate(document)


def signed_in_at(principal: Principal) -> int | None:
    """When the caller last signed in (the newest sign-in ``amr`` timestamp), if known."""
    stamps = [
        int(entry["timestamp"])
        for entry in principal.claims.get("amr") or []
        if isinstance(entry, dict)
        and entry.get("method") in SIGN_IN_METHODS
        and isinstance(entry.get("timestamp"), int | float)
    ]
    return max(stamps) if stamps else None


def require_fresh_sign_in(principal: Principal, max_age_s: int) -> None:
    """403 REAUTHENTICATION_REQUIRED unless the token comes from a sign-in made within
    ``max_age_s`` seconds."""
    when = signed_in_at(principal)
    if when is None or time.time() - when > max_age_s:
        raise Forbidden(
            f"Deleting your account needs a sign-in from the last {max_age_s // 60} minutes.",
            code="REAUTHENTICATION_REQUIRED",
            hint="Sign in again with your password and retry with the new access token.",
        )


def delete(scope: Scope) -> AccountDeleted:
    """Delete the caller's account: files, personal data, the auth user."""
    principal = scope.principal
    require_session(principal, "delete an account")
    if principal.is_anonymous:
        raise Forbidden("A guest session has no account to delete; sign out instead.")
    require_fresh_sign_in(principal, scope.settings.account_reauth_s)
    user_id = str(principal.user_id)
    held = accounts.account_export(scope.db, principal)
    by_bucket: dict[str, set[str]] = defaultdict(set)
    for file in held["files"]:  # every object in the user's folders (storage.objects)
        by_bucket[file["bucket"]].add(file["path"])
    for job in held["jobs"]:  # and the outputs the jobs name (a backend without rows)
        output = job.get("output") or {}
        for field, bucket in (("video_path", "videos"), ("thumbnail_path", "thumbnails")):
            if isinstance(output.get(field), str) and not job.get("output_expired_at"):
                by_bucket[bucket].add(output[field])
    for bucket, paths in by_bucket.items():
        ordered = sorted(paths)
        for start in range(0, len(ordered), REMOVE_BATCH):  # a failure is a 503, nothing
            scope.storage.remove(bucket, ordered[start : start + REMOVE_BATCH])  # erased yet
    with scope.writing() as write:
        erased = accounts.account_erase(scope.db, principal, write)
    auth_admin.delete_user(scope.settings, user_id)
    return AccountDeleted(
        deleted=True,
        user_id=user_id,
        files_removed=sum(len(paths) for paths in by_bucket.values()),
        jobs_erased=erased["jobs_erased"],
        events_erased=erased["events_erased"],
    )
