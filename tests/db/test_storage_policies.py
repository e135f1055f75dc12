"""The storage buckets and policies, exercised the way Supabase Storage applies them.

Storage runs each request's statement on ``storage.objects`` inside a transaction as the
caller's role with its claims (``set_config('role', …)`` and ``request.jwt.claims``);
``acting_as`` does exactly that. Users write and read only under ``<their uid>/`` in
``uploads``, read only their own outputs, and never write ``videos`` or ``thumbnails``.
"""

from __future__ import annotations

import uuid

import pytest
from db.helpers import Conn, acting_as, create_user, raises_sqlstate, select_as

RLS_VIOLATION = "42501"


def insert_object(conn: Conn, bucket: str, name: str) -> None:
    """What Storage runs for an upload (``createObject``)."""
    conn.execute(
        "insert into storage.objects (bucket_id, name, owner, owner_id, metadata) "
        "values (%s, %s, %s, %s, '{}')",
        (bucket, name, None, None),
    )


def put_as_service(conn: Conn, bucket: str, name: str) -> None:
    """An object written by the service role (bypasses RLS), as outputs are."""
    with acting_as(conn, "service_role"):
        insert_object(conn, bucket, name)


def names_visible(conn: Conn, role: str, user_id: uuid.UUID | None, bucket: str) -> list[str]:
    rows = select_as(
        conn,
        role,
        user_id,
        "select name from storage.objects where bucket_id = %s order by name",
        (bucket,),
    )
    return [r[0] for r in rows]


def test_buckets_have_supabase_settings(db: Conn) -> None:
    rows = db.execute(
        "select id, public, file_size_limit, allowed_mime_types from storage.buckets order by id"
    ).fetchall()
    buckets = {r[0]: r[1:] for r in rows}
    assert set(buckets) == {"uploads", "videos", "images", "thumbnails"}
    assert all(public is False for public, _, _ in buckets.values())
    assert buckets["uploads"][1] == 100 * 1024 * 1024
    assert {"image/png", "image/jpeg", "image/webp", "audio/mpeg", "audio/wav"} <= set(
        buckets["uploads"][2]
    )
    # The video and what comes with it: WebM, GIF, MP3, the poster, the caption sidecars.
    assert set(buckets["videos"][2]) == {"video/mp4", "video/webm", "image/gif", "audio/mpeg",
                                         "image/png", "image/jpeg", "text/vtt",
                                         "application/x-subrip"}  # fmt: skip
    assert set(buckets["thumbnails"][2]) == {"image/jpeg", "image/png", "image/webp"}
    assert set(buckets["images"][2]) == {"image/jpeg", "image/png", "image/webp"}
    assert buckets["thumbnails"][1] < buckets["images"][1] < buckets["uploads"][1]
    assert buckets["uploads"][1] < buckets["videos"][1]


def test_the_migration_is_idempotent(db: Conn) -> None:
    from videogen_dev import migrations

    db.execute("update storage.buckets set public = true, file_size_limit = 1")
    root = migrations.project_root() / "supabase/migrations"
    migrations.apply_file(db, root / "20261202000000_storage.sql")
    migrations.apply_file(db, root / "20261204222800_image_jobs.sql")  # the images bucket
    row = db.execute("select bool_or(public), min(file_size_limit) from storage.buckets").fetchone()
    assert row == (False, 5 * 1024 * 1024)


def test_a_user_writes_reads_updates_and_deletes_in_their_own_folder(
    db: Conn, user: uuid.UUID
) -> None:
    name = f"{user}/pics/cat.png"
    with acting_as(db, "authenticated", user):
        insert_object(db, "uploads", name)
    assert names_visible(db, "authenticated", user, "uploads") == [name]
    with acting_as(db, "authenticated", user):
        updated = db.execute(
            "update storage.objects set metadata = '{\"size\": 3}' "
            "where bucket_id = 'uploads' and name = %s returning name",
            (name,),
        ).fetchall()
    assert updated == [(name,)]
    with acting_as(db, "authenticated", user):
        deleted = db.execute(
            "delete from storage.objects where bucket_id = 'uploads' and name = %s returning name",
            (name,),
        ).fetchall()
    assert deleted == [(name,)]
    assert db.execute("select count(*) from storage.objects").fetchone() == (0,)


def test_upsert_into_the_own_folder_is_allowed(db: Conn, user: uuid.UUID) -> None:
    """Storage's upsert is ``insert … on conflict do update``: insert, select and update."""
    name = f"{user}/cat.png"
    for size in (1, 2):
        with acting_as(db, "authenticated", user):
            db.execute(
                "insert into storage.objects (bucket_id, name, metadata) values ('uploads', %s, "
                "jsonb_build_object('size', %s::int)) on conflict (name, bucket_id) "
                "do update set metadata = excluded.metadata",
                (name, size),
            )
    assert db.execute("select metadata ->> 'size' from storage.objects").fetchone() == ("2",)


@pytest.mark.parametrize(
    "name",
    ["{other}/cat.png", "{other}/deep/cat.png", "cat.png", "x{user}/cat.png", "public/cat.png"],
)
def test_a_user_cannot_insert_outside_their_folder(
    db: Conn, user: uuid.UUID, other_user: uuid.UUID, name: str
) -> None:
    path = name.format(user=user, other=other_user)
    with raises_sqlstate(RLS_VIOLATION, case=path), acting_as(db, "authenticated", user):
        insert_object(db, "uploads", path)


def test_another_users_objects_are_invisible_and_untouchable(
    db: Conn, user: uuid.UUID, other_user: uuid.UUID
) -> None:
    name = f"{other_user}/cat.png"
    with acting_as(db, "authenticated", other_user):
        insert_object(db, "uploads", name)
    assert names_visible(db, "authenticated", user, "uploads") == []
    with acting_as(db, "authenticated", user):
        updated = db.execute(
            "update storage.objects set name = %s where name = %s returning 1",
            (f"{user}/stolen.png", name),
        ).fetchall()
        deleted = db.execute(
            "delete from storage.objects where name = %s returning 1", (name,)
        ).fetchall()
    assert (updated, deleted) == ([], [])
    assert names_visible(db, "authenticated", other_user, "uploads") == [name]


def test_a_user_cannot_move_an_own_upload_into_another_folder(
    db: Conn, user: uuid.UUID, other_user: uuid.UUID
) -> None:
    name = f"{user}/cat.png"
    with acting_as(db, "authenticated", user):
        insert_object(db, "uploads", name)
    with raises_sqlstate(RLS_VIOLATION), acting_as(db, "authenticated", user):
        db.execute(
            "update storage.objects set name = %s where name = %s", (f"{other_user}/x.png", name)
        )


@pytest.mark.parametrize("bucket", ["videos", "thumbnails"])
def test_outputs_are_not_writable_by_users(db: Conn, user: uuid.UUID, bucket: str) -> None:
    with raises_sqlstate(RLS_VIOLATION, case=bucket), acting_as(db, "authenticated", user):
        insert_object(db, bucket, f"{user}/job.mp4")
    name = f"{user}/jobs/j1.out"
    put_as_service(db, bucket, name)
    with acting_as(db, "authenticated", user):
        updated = db.execute(
            "update storage.objects set metadata = '{}' where name = %s returning 1", (name,)
        ).fetchall()
        deleted = db.execute(
            "delete from storage.objects where name = %s returning 1", (name,)
        ).fetchall()
    assert (updated, deleted) == ([], [])


@pytest.mark.parametrize("bucket", ["videos", "thumbnails"])
def test_outputs_are_readable_by_their_owner_only(
    db: Conn, user: uuid.UUID, other_user: uuid.UUID, bucket: str
) -> None:
    mine, theirs = f"{user}/jobs/a.out", f"{other_user}/jobs/b.out"
    put_as_service(db, bucket, mine)
    put_as_service(db, bucket, theirs)
    assert names_visible(db, "authenticated", user, bucket) == [mine]
    assert names_visible(db, "authenticated", other_user, bucket) == [theirs]
    assert sorted(names_visible(db, "service_role", None, bucket)) == sorted([mine, theirs])


def test_anon_sees_and_writes_nothing(db: Conn, user: uuid.UUID) -> None:
    for bucket in ("uploads", "videos", "thumbnails"):
        put_as_service(db, bucket, f"{user}/x.png")
        assert names_visible(db, "anon", None, bucket) == []
        with raises_sqlstate(RLS_VIOLATION, case=bucket), acting_as(db, "anon"):
            insert_object(db, bucket, f"{user}/y.png")
    assert select_as(db, "anon", None, "select count(*) from storage.buckets") == [(0,)]


def test_a_user_without_claims_sees_nothing(db: Conn) -> None:
    """An authenticated role with no ``sub`` (a broken token) matches no folder."""
    owner = create_user(db)
    put_as_service(db, "uploads", f"{owner}/x.png")
    assert names_visible(db, "authenticated", None, "uploads") == []
