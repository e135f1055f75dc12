"""Acting on the schema the way its callers do: users, PostgREST-style calls, the books.

A call ``as_user(conn, uid, "get_job", job_id)`` runs exactly what
PostgREST runs for an RPC request carrying that user's JWT::

    begin;
    select set_config('request.jwt.claims', '{"sub": …, "role": "authenticated"}', true),
           set_config('role', 'authenticated', true);
    select public.get_job(…);
    commit;

``as_anon`` and ``as_service`` do the same with the ``anon`` and ``service_role`` claims;
``for_user`` runs a service-only write the way the functions do for a user: role
``service_role`` with the user's claims, after ``private.require_known_user()``.
The connection is the superuser's autocommit connection (``admin_conn``); the role switch
lasts for the one transaction only.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

Conn = psycopg.Connection[tuple[Any, ...]]

T2V = "reference/text-to-video"  # base 2 + 1/s, 1-30 s, 480p/720p/1080p, 3 attempts, 60 s lease
I2V = "reference/image-to-video"  # requires an image
RUNPOD = "runpod/wan-2.1-t2v"  # base 10 + 4/s, 2-10 s, 480p/720p
FAL = "fal/kling-video-v2.1"  # external provider, 2 attempts

ACTIVE = ("queued", "dispatched", "processing")
FINISHED = ("completed", "failed", "canceled")
STATUSES = (*ACTIVE, *FINISHED)


# ------------------------------------------------------------------------------------------
# Calls as somebody
# ------------------------------------------------------------------------------------------


def claims_for(role: str, user_id: uuid.UUID | str | None = None) -> dict[str, Any]:
    """The JWT claims PostgREST would put in ``request.jwt.claims`` for this caller."""
    claims: dict[str, Any] = {"role": role}
    if user_id is not None:
        claims["sub"] = str(user_id)
    return claims


@contextmanager
def acting_as(conn: Conn, role: str, user_id: uuid.UUID | str | None = None) -> Iterator[Conn]:
    """One transaction in which the connection is ``role`` with that caller's claims."""
    with conn.transaction():
        conn.execute(
            "select set_config('request.jwt.claims', %s, true), set_config('role', %s, true)",
            (json.dumps(claims_for(role, user_id)), role),
        )
        yield conn


def _adapt(value: Any) -> Any:
    """Dicts (and lists of dicts) travel as jsonb, as PostgREST sends JSON bodies."""
    if isinstance(value, dict) or (
        isinstance(value, list) and value and isinstance(value[0], dict)
    ):
        return Jsonb(value)
    return value


def call_sql(
    fn: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[sql.Composed, list[Any]]:
    """``select public.fn(%s, …, p_name => %s, …)`` and its parameters (``fn`` may name its
    schema: ``service.job_create``)."""
    parts: list[sql.Composable] = [sql.Placeholder() for _ in args]
    parts += [sql.SQL("{} => {}").format(sql.Identifier(k), sql.Placeholder()) for k in kwargs]
    schema, _, name = fn.rpartition(".")
    query = sql.SQL("select {}({})").format(
        sql.Identifier(schema or "public", name), sql.SQL(", ").join(parts)
    )
    return query, [_adapt(v) for v in (*args, *kwargs.values())]


def call_as(
    conn: Conn, role: str, user_id: uuid.UUID | str | None, fn: str, *args: Any, **kwargs: Any
) -> Any:
    """Call ``public.fn`` in its own transaction as ``role``; returns the single result."""
    query, params = call_sql(fn, args, kwargs)
    with acting_as(conn, role, user_id):
        row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def as_user(conn: Conn, user_id: uuid.UUID | str, fn: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``public.fn`` as a signed-in user (role ``authenticated``)."""
    return call_as(conn, "authenticated", user_id, fn, *args, **kwargs)


def for_user(conn: Conn, user_id: uuid.UUID | str, fn: str, *args: Any, **kwargs: Any) -> Any:
    """Call a service-only write for a user, as the functions do (see the module doc)."""
    query, params = call_sql(fn, args, kwargs)
    with conn.transaction():
        conn.execute(
            "select set_config('request.jwt.claims', %s, true),"
            " set_config('role', 'service_role', true)",
            (json.dumps(claims_for("authenticated", user_id)),),
        )
        conn.execute("select private.require_known_user()")
        row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def as_anon(conn: Conn, fn: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``public.fn`` with the publishable key only (role ``anon``)."""
    return call_as(conn, "anon", None, fn, *args, **kwargs)


def as_service(conn: Conn, fn: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``public.fn`` with the secret key (role ``service_role``)."""
    return call_as(conn, "service_role", None, fn, *args, **kwargs)


def select_as(
    conn: Conn, role: str, user_id: uuid.UUID | str | None, query: str, params: Any = None
) -> list[tuple[Any, ...]]:
    """Run one query as that caller (RLS applies) and return its rows."""
    with acting_as(conn, role, user_id):
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


@contextmanager
def raises_sqlstate(
    code: str, *, case: Any = None
) -> Iterator[pytest.ExceptionInfo[psycopg.Error]]:
    """Expect a database error with exactly this SQLSTATE (``case`` names it in a failure)."""
    with pytest.raises(psycopg.Error) as info:
        try:
            yield info
        except psycopg.Error:
            raise
        else:
            pytest.fail(f"no error {code} for {case!r}" if case is not None else f"no error {code}")
    got = info.value.sqlstate
    assert got == code, f"expected {code}, got {got}: {info.value} ({case!r})"


# ------------------------------------------------------------------------------------------
# Users and money
# ------------------------------------------------------------------------------------------


def create_user(
    conn: Conn,
    *,
    credits: int = 0,
    anonymous: bool = False,
    job_limit: int | None = None,
    email: str | None = None,
) -> uuid.UUID:
    """Sign a user up (auth.users → profile trigger); ``credits`` come as a ledger grant."""
    user_id = uuid.uuid4()
    if email is None and not anonymous:
        email = f"{user_id.hex[:12]}@example.com"
    conn.execute(
        """
        insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data,
                                raw_user_meta_data, is_anonymous, created_at, updated_at)
        values (%s, 'authenticated', 'authenticated', %s, now(), '{}', '{}', %s, now(), now())
        """,
        (user_id, email, anonymous),
    )
    if credits:
        as_service(conn, "service.credits_grant", user_id, credits, f"test-{uuid.uuid4().hex}")
    if job_limit is not None:
        conn.execute(
            "update public.profiles set concurrent_job_limit = %s where id = %s",
            (job_limit, user_id),
        )
    return user_id


def profile(conn: Conn, user_id: uuid.UUID) -> tuple[int, int]:
    """(balance, reserved) of a user."""
    row = conn.execute(
        "select balance, reserved from public.profiles where id = %s", (user_id,)
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def ledger(conn: Conn, job_id: uuid.UUID | str) -> list[tuple[str, int, int]]:
    """(kind, amount, hold) of a job's ledger rows, in order."""
    rows = conn.execute(
        "select kind::text, amount, hold from public.credit_ledger where job_id = %s order by id",
        (job_id,),
    ).fetchall()
    return [(str(k), int(a), int(h)) for k, a, h in rows]


def assert_books_balance(conn: Conn, user_id: uuid.UUID) -> None:
    """sum(amount) = balance, sum(hold) = reserved, and the last row carries both."""
    row = conn.execute(
        """
        select p.balance, p.reserved,
               (select coalesce(sum(amount), 0) from public.credit_ledger where user_id = p.id),
               (select coalesce(sum(hold), 0) from public.credit_ledger where user_id = p.id),
               (select array[balance_after, reserved_after] from public.credit_ledger
                 where user_id = p.id order by id desc limit 1)
          from public.profiles p where p.id = %s
        """,
        (user_id,),
    ).fetchone()
    assert row is not None
    balance, reserved, sum_amount, sum_hold, last = row
    assert (balance, reserved) == (sum_amount, sum_hold), row
    assert last is None or list(last) == [balance, reserved], row


# ------------------------------------------------------------------------------------------
# Jobs and workers
# ------------------------------------------------------------------------------------------


def create_job(
    conn: Conn, user_id: uuid.UUID, model: str = T2V, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A queued job of that user (create_job as the user); returns the job json."""
    job: dict[str, Any] = for_user(conn, user_id, "service.job_create", model, params or {})
    return job


def register_worker(
    conn: Conn,
    name: str | None = None,
    models: list[str] | None = None,
    *,
    capacity: int = 1,
    mode: str = "pull",
) -> str:
    """Register a worker (as the service); returns its id."""
    name = name or f"w-{uuid.uuid4().hex[:8]}"
    worker = as_service(
        conn,
        "service.worker_register",
        name,
        f"http://{name}.local/jobs",
        f"http://{name}.local/health",
        models or [T2V],
        capacity,
        mode,
    )
    return str(worker["id"])


def claim(conn: Conn, worker_id: str, limit: int = 1) -> list[dict[str, Any]]:
    """job_claim as the service; the jobs the worker got."""
    jobs: list[dict[str, Any]] = as_service(conn, "service.worker_claim", worker_id, limit)
    return jobs


def dispatched_job(
    conn: Conn, user_id: uuid.UUID, model: str = T2V, params: dict[str, Any] | None = None
) -> tuple[dict[str, Any], str]:
    """A job of that user claimed by a fresh pull worker: (job json, worker id)."""
    job = create_job(conn, user_id, model, params)
    worker_id = register_worker(conn, models=[model], capacity=1)
    claimed = claim(conn, worker_id)
    assert [j["id"] for j in claimed] == [job["id"]], claimed
    return claimed[0], worker_id


def job_row(conn: Conn, job_id: uuid.UUID | str) -> dict[str, Any]:
    """The job's row as the superuser sees it."""
    row = conn.execute("select to_jsonb(j) from public.jobs j where id = %s", (job_id,)).fetchone()
    assert row is not None
    result: dict[str, Any] = row[0]
    return result


def expire_lease(conn: Conn, job_id: uuid.UUID | str) -> None:
    """Make the job's lease run out (a worker that stopped reporting)."""
    conn.execute(
        "update public.jobs set lease_expires_at = now() - interval '1 second' where id = %s",
        (job_id,),
    )


def make_due(conn: Conn, job_id: uuid.UUID | str) -> None:
    """Skip a queued job's backoff."""
    conn.execute("update public.jobs set run_after = now() where id = %s", (job_id,))
