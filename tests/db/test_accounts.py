"""Module 21 as a user meets it through RLS: their API keys' metadata and share links only,
never a key's hash; the procedures that resolve a key or a link are the service's."""

from __future__ import annotations

import hashlib
import uuid

from db.helpers import (
    Conn,
    as_service,
    as_user,
    dispatched_job,
    for_user,
    job_row,
    raises_sqlstate,
    select_as,
)

REQUEST = {"principal": "test", "scope": "t", "bucket": "t", "limit": None, "key": None,
           "hash": ""}  # fmt: skip


def make_key(db: Conn, user: uuid.UUID, scopes: list[str] | None = None) -> tuple[str, str]:
    """A key for ``user``: (its id, its hash)."""
    digest = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
    made = for_user(db, user, "service.api_key_create", REQUEST, "mine", digest, "vg_live_",
                    "abcd", scopes or ["read", "jobs"], None)  # fmt: skip
    return made["data"]["id"], digest


def test_users_see_only_their_own_keys_and_never_a_hash(
    db: Conn, user: uuid.UUID, other_user: uuid.UUID
) -> None:
    mine, digest = make_key(db, user)
    theirs, _ = make_key(db, other_user)
    listed = as_user(db, user, "api_keys_list")
    assert [k["id"] for k in listed] == [mine] and listed[0]["masked"] == "vg_live_…abcd"
    assert "key_hash" not in listed[0] and digest not in str(listed)
    rows = select_as(db, "authenticated", user, "select id::text, last4 from public.api_keys")
    assert rows == [(mine, "abcd")]
    with raises_sqlstate("42501"):
        select_as(db, "authenticated", user, "select key_hash from public.api_keys")
    with raises_sqlstate("42501"):
        as_user(db, user, "service.api_key_authenticate", digest)
    found = db.execute("select service.api_key_authenticate(%s)", (digest,)).fetchone()[0]
    assert found["state"] == "active" and found["user_id"] == str(user)
    with raises_sqlstate("VGY04"):  # someone else's key is not yours to revoke
        for_user(db, user, "service.api_key_revoke", REQUEST, theirs)


def test_scopes_are_read_and_jobs_only(db: Conn, user: uuid.UUID) -> None:
    with raises_sqlstate("23514"):
        make_key(db, user, ["admin"])
    key, _ = make_key(db, user, ["read"])
    assert as_user(db, user, "api_keys_list")[0]["scopes"] == ["read"]
    assert key


def test_an_auth_user_deleted_directly_still_loses_their_prompts(db: Conn, user: uuid.UUID) -> None:
    job, _ = dispatched_job(db, user)
    as_service(db, "service.job_complete", job["id"], 1, {"video_path": f"{user}/v.mp4"})
    ledger = db.execute(
        "select count(*) from public.credit_ledger where user_id = %s", (user,)
    ).fetchone()[0]
    db.execute("delete from auth.users where id = %s", (user,))
    row = job_row(db, job["id"])
    assert row["params"] == {} and row["deleted_at"] is not None
    assert row["output"] == {"video_path": f"{user}/v.mp4"}  # for the sweep to remove
    assert (
        db.execute(
            "select count(*) from public.credit_ledger where user_id = %s", (user,)
        ).fetchone()[0]
        == ledger
    )


def test_making_keys_is_rate_limited_and_capped(db: Conn, user: uuid.UUID) -> None:
    db.execute("update private.settings set value = '3' where name = 'api_key_creates_per_hour'")
    db.execute("update private.settings set value = '2' where name = 'api_keys_active_max'")
    first, _ = make_key(db, user)
    make_key(db, user)
    with raises_sqlstate("VGY09"):  # two active keys at most
        make_key(db, user)
    for_user(db, user, "service.api_key_revoke", REQUEST, first)
    make_key(db, user)  # a revoked key frees its place: the third made this hour
    for_user(db, user, "service.api_key_revoke", REQUEST, first)
    with raises_sqlstate("VGR29"):  # the fourth this hour
        make_key(db, user)
