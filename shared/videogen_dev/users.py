"""Local auth users for the embedded stack: rows in ``auth.users`` (the profile trigger
then gives each one a profile), found or created by email or id."""

from __future__ import annotations


def ensure_user(dsn: str, user: str, *, anonymous: bool = False) -> tuple[str, str | None]:
    """Find or create a local auth user by email or uuid; returns (id, email)."""
    import uuid

    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            user_id: str | None = str(uuid.UUID(user))
            email = None
        except ValueError:
            user_id, email = None, user
        row = conn.execute(
            "select id::text, email from auth.users where id::text = %s or email = %s",
            [user_id, email],
        ).fetchone()
        if row:
            return row[0], row[1]
        row = conn.execute(
            "insert into auth.users (id, email, is_anonymous, aud, role) values "
            "(coalesce(%s::uuid, gen_random_uuid()), %s, %s, 'authenticated', 'authenticated') "
            "returning id::text, email",
            [user_id, email, anonymous],
        ).fetchone()
        assert row is not None
        return row[0], row[1]
