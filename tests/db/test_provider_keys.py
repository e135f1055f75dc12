"""Users' own provider keys in SQL (module 16) and the Vault stand-in (sql/platform/40_vault):
ciphertext at rest, decrypted only for service_role, a user's procedures see only their own,
and a job goes to its provider on its owner's key — nobody else's.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from helpers import (
    FAL,
    Conn,
    as_service,
    as_user,
    create_job,
    for_user,
    job_row,
    profile,
    raises_sqlstate,
    select_as,
)

from videogen.config import Settings
from videogen.db.connection import PostgresDatabase
from videogen.services import routing

FAL_QUEUE = "https://queue.fal.run"
DEPLOYMENT_FAL_KEY = "deploy-id:deploymentsecret0000000000"
A_FAL_KEY = "3f1c9a52-user-a:9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d"
REQUEST = {"principal": "user:test", "scope": "update-credits:PUT", "bucket": "t", "hash": ""}


def save(db: Conn, user: uuid.UUID, provider: str, key: str) -> dict[str, Any]:
    result: dict[str, Any] = for_user(db, user, "service.provider_key_save", REQUEST, provider, key)
    return result


def test_the_secret_column_holds_no_plaintext_and_rotation_replaces_it(
    db: Conn, user: uuid.UUID
) -> None:
    stored = save(db, user, "fal", A_FAL_KEY)
    assert stored.get("status") == 201, stored
    assert stored["data"]["last4"] == "5c4d" and stored["data"]["rotated_at"] is None
    (secret_id,) = db.execute(
        "select secret_id from public.provider_keys where user_id = %s", (user,)
    ).fetchone()
    first = db.execute("select secret from vault.secrets where id = %s", (secret_id,)).fetchone()
    assert first is not None and A_FAL_KEY not in first[0] and "9b8a7c6d" not in first[0]
    # Nowhere in the row, in any encoding we could have slipped into.
    row = db.execute("select to_jsonb(s)::text from vault.secrets s").fetchone()
    assert row is not None and A_FAL_KEY not in row[0]

    rotated = save(db, user, "fal", "3f1c9a52-user-a:ffffeeeeddddccccbbbbaaaa99998888")
    assert rotated["status"] == 200 and rotated["data"]["last4"] == "8888"
    assert rotated["data"]["rotated_at"] is not None
    after = db.execute(
        "select secret, (select decrypted_secret from vault.decrypted_secrets d"
        " where d.id = s.id) from vault.secrets s where id = %s",
        (secret_id,),
    ).fetchone()
    assert after is not None and after[0] != first[0]
    assert after[1] == "3f1c9a52-user-a:ffffeeeeddddccccbbbbaaaa99998888"  # the old is gone
    assert db.execute("select count(*) from vault.secrets").fetchone() == (1,)


def test_a_ciphertext_moved_to_another_secret_does_not_decrypt(db: Conn, user: uuid.UUID) -> None:
    save(db, user, "fal", A_FAL_KEY)
    other = db.execute("select vault.create_secret('another-secret-value')").fetchone()
    assert other is not None
    db.execute(
        "update vault.secrets set secret = (select secret from vault.secrets"
        " where name like 'videogen/%%') where id = %s",
        (other[0],),
    )
    with raises_sqlstate("22000"):
        db.execute("select decrypted_secret from vault.decrypted_secrets where id = %s", other)


def test_only_service_role_reads_decrypted_secrets(db: Conn, user: uuid.UUID) -> None:
    save(db, user, "fal", A_FAL_KEY)
    for role, uid in (("anon", None), ("authenticated", user)):
        for query in (
            "select decrypted_secret from vault.decrypted_secrets",
            "select secret from vault.secrets",
            "select key from vault._local_root_key",
            "select secret_id from public.provider_keys",
        ):
            with raises_sqlstate("42501", case=f"{role}: {query}"):
                select_as(db, role, uid, query)
        with raises_sqlstate("42501"):
            select_as(db, role, uid, "select vault.create_secret('x')")
    with raises_sqlstate("42501"):
        select_as(db, "service_role", None, "select key from vault._local_root_key")
    rows = select_as(
        db, "service_role", None, "select decrypted_secret from vault.decrypted_secrets"
    )
    assert rows == [(A_FAL_KEY,)]


def test_a_users_procedures_see_only_their_own(
    db: Conn, user: uuid.UUID, other_user: uuid.UUID
) -> None:
    save(db, user, "fal", A_FAL_KEY)
    save(db, other_user, "runway", "key_" + "b" * 40)
    mine = as_user(db, user, "provider_keys_list")
    assert [(k["provider"], k["last4"]) for k in mine] == [("fal", "5c4d")]
    assert A_FAL_KEY not in json.dumps(mine)
    assert [k["provider"] for k in as_user(db, other_user, "provider_keys_list")] == ["runway"]
    # The table by RLS: own rows, shown columns only.
    assert select_as(
        db, "authenticated", other_user, "select provider from public.provider_keys"
    ) == [("runway",)]
    assert for_user(db, user, "service.provider_key_get_mine", "fal") == A_FAL_KEY
    assert for_user(db, other_user, "service.provider_key_get_mine", "fal") is None
    # Deleting is per user: the other user's delete of a fal key finds none.
    with raises_sqlstate("VGK04"):
        for_user(db, other_user, "service.provider_key_delete", REQUEST, "fal")
    assert for_user(db, user, "service.provider_key_delete", REQUEST, "fal")["data"] == {
        "provider": "fal",
        "deleted": True,
    }
    assert db.execute("select count(*) from vault.secrets").fetchone() == (1,)  # runway's


def test_a_job_finds_only_its_owners_key(db: Conn, user: uuid.UUID, other_user: uuid.UUID) -> None:
    save(db, user, "fal", A_FAL_KEY)
    mine = create_job(db, user, FAL, {"prompt": "a fox"})
    theirs = create_job(db, other_user, FAL, {"prompt": "a cat"})
    assert as_service(db, "service.provider_key_get_for_job", mine["id"], "fal") == A_FAL_KEY
    assert as_service(db, "service.provider_key_get_for_job", mine["id"], "runway") is None
    assert as_service(db, "service.provider_key_get_for_job", theirs["id"], "fal") is None


def test_a_malformed_key_is_answered_not_raised_and_a_removed_user_takes_their_secrets(
    db: Conn, user: uuid.UUID
) -> None:
    refused = save(db, user, "fal", "short key")
    assert refused["error"]["sqlstate"] == "VGK22"
    assert "short key" not in json.dumps(refused)
    assert save(db, user, "github", "x" * 20)["error"]["sqlstate"] == "VGK22"
    assert db.execute("select count(*) from public.provider_keys").fetchone() == (0,)
    save(db, user, "openai", "sk-" + "a" * 40)
    db.execute("delete from auth.users where id = %s", (user,))
    assert db.execute("select count(*) from vault.secrets").fetchone() == (0,)


# ------------------------------------------------------------------------------------------
# Routing: a job goes to fal on its owner's key
# ------------------------------------------------------------------------------------------


class Fal:
    """fal's queue: answers a submit per key, records the Authorization header of each."""

    def __init__(self, refuse: str | None = None) -> None:
        self.refuse = refuse
        self.auth: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.auth.append(request.headers.get("authorization", ""))
        if self.refuse and request.headers.get("authorization") == f"Key {self.refuse}":
            return httpx.Response(401, json={"detail": f"Invalid key {self.refuse}"})
        n = len(self.auth)
        base = f"{FAL_QUEUE}/fal-ai/kling-video/requests/req-{n}"
        return httpx.Response(
            200,
            json={
                "request_id": f"req-{n}",
                "status": "IN_QUEUE",
                "response_url": base,
                "status_url": f"{base}/status",
                "cancel_url": f"{base}/cancel",
            },
        )


@pytest.fixture
def database(db_url: str) -> Iterator[PostgresDatabase]:
    database = PostgresDatabase(db_url)
    yield database
    database.close()


def settings_for(db_url: str, tmp_path: Any) -> Settings:
    return Settings(
        DATABASE_URL=db_url,
        STORAGE_ROOT=str(tmp_path / "storage"),
        SUPABASE_URL="https://vg.supabase.co",
        FAL_KEY=DEPLOYMENT_FAL_KEY,
    )


def test_a_users_job_goes_to_fal_on_their_key_and_another_users_on_the_deployments(
    db: Conn, user: uuid.UUID, other_user: uuid.UUID, database: PostgresDatabase, db_url, tmp_path
) -> None:
    save(db, user, "fal", A_FAL_KEY)
    settings = settings_for(db_url, tmp_path)
    a_job = create_job(db, user, FAL, {"prompt": "a fox"})
    b_job = create_job(db, other_user, FAL, {"prompt": "a cat"})
    fal = Fal()
    with httpx.Client(transport=httpx.MockTransport(fal)) as client:
        a = routing.submit_external(database, settings, str(a_job["id"]), client)
        b = routing.submit_external(database, settings, str(b_job["id"]), client)
    assert fal.auth == [f"Key {A_FAL_KEY}", f"Key {DEPLOYMENT_FAL_KEY}"]
    assert a.status == b.status == "dispatched"


def test_a_wrong_user_key_fails_only_that_users_job_and_releases_its_credits(
    db: Conn,
    user: uuid.UUID,
    other_user: uuid.UUID,
    database: PostgresDatabase,
    db_url,
    tmp_path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    save(db, user, "fal", A_FAL_KEY)
    settings = settings_for(db_url, tmp_path)
    before = profile(db, user)
    a_job = create_job(db, user, FAL, {"prompt": "a fox"})
    b_job = create_job(db, other_user, FAL, {"prompt": "a cat"})
    fal = Fal(refuse=A_FAL_KEY)
    with httpx.Client(transport=httpx.MockTransport(fal)) as client:
        a = routing.submit_external(database, settings, str(a_job["id"]), client)
        b = routing.submit_external(database, settings, str(b_job["id"]), client)
    assert a.status == "failed" and a.error_code == "PROVIDER_KEY_REJECTED"
    assert b.status == "dispatched"
    row = job_row(db, a_job["id"])
    assert A_FAL_KEY not in (row["error_message"] or "")
    assert A_FAL_KEY not in caplog.text
    assert profile(db, user) == before  # reserved, then released: nothing charged
