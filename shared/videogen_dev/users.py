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


def set_admin(dsn: str, email: str, *, admin: bool = True) -> str:
    """Make the auth user with this email an admin (``raw_app_meta_data.role = "admin"``,
    which Supabase Auth copies into the ``app_metadata`` of every token it issues after),
    or no longer one; returns the user's id. Tokens issued before keep their claims until
    they expire: sign in again (or refresh)."""
    import psycopg

    change = (
        "coalesce(raw_app_meta_data, '{}') || '{\"role\": \"admin\"}'"
        if admin
        else "coalesce(raw_app_meta_data, '{}') - 'role'"
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            f"update auth.users set raw_app_meta_data = {change}, updated_at = now()"  # noqa: S608
            " where lower(email) = lower(%s) and deleted_at is null returning id::text",
            [email],
        ).fetchone()
    if row is None:
        raise LookupError(f"no user with the email {email!r}")
    return str(row[0])
