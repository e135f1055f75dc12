"""The one way the functions reach Postgres: call a procedure as somebody.

Two adapters behind one interface:

* :class:`PostgresDatabase` — psycopg 3 + psycopg-pool. Every call runs in a transaction
  that first does what PostgREST does for a request: ``set_config('request.jwt.claims',
  …, true)`` and ``set local role`` to ``authenticated`` / ``anon`` (a user) or
  ``service_role`` (the admin path), so RLS, grants and ``auth.uid()`` hold exactly as in
  production. No named prepared statements: safe behind Supavisor's transaction pooler.
* :class:`PostgrestDatabase` — the same procedures through PostgREST's ``/rpc`` with
  supabase-py's ``postgrest`` client, forwarding the user's token (for deployments that
  only have the API URL and keys). Each call is its own transaction there, so it refuses
  what would need more than one.

The admin path is a separate, greppable name: ``db.admin()``. User writes
(``service.job_create_request`` and the others) are service-only procedures in schema ``service``:
:meth:`Database.user_call` runs them as ``service_role`` carrying the user's claims, so
``auth.uid()`` is the user, but a client cannot call them over PostgREST and skip the
functions' rate limit, idempotency and routing. Every transaction of a user first runs
``private.require_known_user()`` (a signed token whose user Auth does not know is a 401).
Driver errors become :class:`~videogen.errors.AppError` in :func:`wrap_errors` and nowhere
else; a database that is down answers 503 with ``Retry-After`` within ``POOL_TIMEOUT_S``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from videogen.config import Settings, get_settings
from videogen.errors import SQLSTATES, AppError, ServiceUnavailable, Unauthorized, from_sqlstate
from videogen.principal import Principal

if TYPE_CHECKING:
    import httpx
    import psycopg
    from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)

SERVICE = Principal(kind="secret", role="service_role", claims={"role": "service_role"})
_ROLES = {"authenticated", "anon", "service_role"}
# A transaction that lost a deadlock or a serialization conflict did nothing: run it again.
CONFLICT_CODES = frozenset({"DEADLOCK", "SERIALIZATION_FAILURE"})
CONFLICT_ATTEMPTS = 5
POOL_TIMEOUT_S = 1.5  # wait for a pooled connection at most this long, then 503
CONNECT_TIMEOUT_S = 2  # libpq connect_timeout for new connections
RETRY_AFTER_S = "2"


def unavailable(message: str) -> ServiceUnavailable:
    """The 503 a client gets when the database cannot serve it now (with Retry-After)."""
    return ServiceUnavailable(message, headers={"Retry-After": RETRY_AFTER_S})


def _role_and_claims(principal: Principal) -> tuple[str, dict[str, Any]]:
    """The database role and JWT claims a caller runs with (never a privileged role)."""
    if principal.kind == "user":
        claims = dict(principal.claims) or {"sub": principal.user_id, "role": "authenticated"}
        return "authenticated", claims
    if principal.kind == "secret":
        return "service_role", {"role": "service_role", **principal.claims}
    return "anon", {"role": "anon"}


class Session(Protocol):
    """Calls made as one caller; on Postgres they share one transaction."""

    def rpc(self, name: str, /, **args: Any) -> Any:
        """Call ``public.<name>`` with named arguments and return its (JSON) result."""
        ...


class Database(Protocol):
    """What services need from a database."""

    def session(self, principal: Principal) -> Any:
        """A context manager yielding a :class:`Session` for this caller."""
        ...

    def admin(self) -> Any:
        """A context manager yielding a service-role :class:`Session` (bypasses RLS)."""
        ...

    def call(self, principal: Principal, name: str, /, **args: Any) -> Any:
        """One procedure call as its own transaction."""
        ...

    def user_call(self, principal: Principal, name: str, /, **args: Any) -> Any:
        """One service-only write for a user (``auth.uid()`` is the user), one transaction."""
        ...

    def admin_call(self, name: str, /, **args: Any) -> Any:
        """One service-role procedure call as its own transaction (bypasses RLS)."""
        ...

    def probe_call(self, name: str, timeout_ms: int, /, **args: Any) -> Any:
        """One service-role call the server cancels after ``timeout_ms`` (readiness)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@contextmanager
def wrap_errors() -> Iterator[None]:
    """Translate driver errors into AppErrors: the one place SQLSTATEs are read."""
    import psycopg  # cold start: psycopg loads on first use

    try:
        yield
    except psycopg.errors.Error as exc:
        diag = exc.diag
        sqlstate = getattr(exc, "sqlstate", None) or diag.sqlstate
        # Lost connections and shutdowns (08…, 57P0…) are "unavailable"; a deadlock or a
        # serialization failure is an OperationalError too, but one that a rerun fixes.
        lost = sqlstate is None or sqlstate.startswith(("08", "57P0"))
        if lost or (isinstance(exc, psycopg.OperationalError) and sqlstate not in SQLSTATES):
            log.warning("database unavailable: %s", type(exc).__name__)
            raise unavailable("The database is unavailable; retry shortly.") from exc
        err = from_sqlstate(
            sqlstate, diag.message_primary or str(exc), diag.message_detail, diag.message_hint
        )
        if err.status >= 500 and err.code == "INTERNAL":
            log.error("database error %s: %s", sqlstate, diag.message_primary)
        raise err from exc


_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_BECOME = "select set_config('request.jwt.claims', %s, true), set_config('role', %s, true)"


def _call_sql(name: str, args: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """``select public.name(p_a => %s, …)`` and its values (``service.name`` when the name
    says its schema); names are our code's, checked.

    A template for client-side binding (psycopg's ``ClientCursor``): 5x cheaper per call
    than composing ``psycopg.sql`` objects, and still one simple-protocol message.
    """
    schema, _, bare = name.rpartition(".")
    for identifier in (schema or "public", bare, *args):
        if not _IDENTIFIER.match(identifier):
            raise ValueError(f"bad procedure or parameter name {identifier!r}")
    named = ", ".join(f"p_{k} => %s" for k in args)
    return f"select {schema or 'public'}.{bare}({named})", [_adapt(v) for v in args.values()]


def _become_sql(role: str, claims_json: str, *, user: bool) -> tuple[str, list[Any]]:
    """What PostgREST runs first in every request: the claims, then the role (local); for a
    user, then the check that Auth knows them."""
    assert role in _ROLES
    values: list[Any] = [claims_json, role]
    if not user:
        return _BECOME, values
    return f"{_BECOME}; select private.require_known_user()", values


def _adapt(value: Any) -> Any:
    """Dicts and lists of dicts go to Postgres as jsonb."""
    from psycopg.types.json import Jsonb  # cold start: psycopg loads on first use

    if isinstance(value, dict) or (
        isinstance(value, list) and value and isinstance(value[0], dict)
    ):
        return Jsonb(value)
    return value


class _PgSession:
    """A transaction on one pooled connection, with PostgREST's role and claims set.

    Each call goes to the server as one simple-protocol message — ``begin`` (first call
    only), the ``set_config`` of role and claims (when they change) and the procedure call —
    so a call costs one round trip; values are quoted client side by psycopg (no server-side
    prepared statements at all, as the transaction pooler requires).
    """

    def __init__(self, lease: _Lease, principal: Principal) -> None:
        self._lease = lease
        self._principal = principal
        self._current: str | None = None
        self.in_transaction = False

    def run(
        self,
        principal: Principal,
        name: str,
        args: Mapping[str, Any],
        *,
        commit: bool = False,
        as_service: bool = False,
        timeout_ms: int | None = None,
    ) -> Any:
        """Send one call (with whatever must precede it) in one message; its result.

        ``as_service`` runs it as ``service_role`` with the principal's own claims;
        ``timeout_ms`` is its ``statement_timeout`` (this transaction only).
        """
        role, claims = _role_and_claims(principal)
        if as_service:
            role = "service_role"
        claims_json = json.dumps(claims, sort_keys=True, default=str)
        key = role + claims_json
        parts: list[str] = [] if self.in_transaction else ["begin"]
        values: list[Any] = []
        if key != self._current:
            become, become_values = _become_sql(role, claims_json, user="sub" in claims)
            parts.append(become)
            values += become_values
        if timeout_ms is not None:
            parts.append(f"set local statement_timeout = {int(timeout_ms)}")
        call, call_values = _call_sql(name, args)
        parts.append(call)
        values += call_values
        if commit:
            parts.append("commit")
        first = not self.in_transaction
        self.in_transaction = True
        with wrap_errors():
            cur = self._execute("; ".join(parts), values, first=first)
            row = None
            while True:  # the procedure's result is the last result set that has rows
                if cur.description is not None:
                    row = cur.fetchone()
                if not cur.nextset():
                    break
        self._current = key
        if commit:
            self.in_transaction = False
            self._current = None
        return None if row is None else row[0]

    def _execute(self, template: str, values: list[Any], *, first: bool) -> Any:
        """Send a message; a transaction's first one goes again, once, on a fresh connection
        when the server had closed the pooled one (restart, ``db reset``, failover)."""
        import psycopg  # cold start: psycopg loads on first use

        try:
            return psycopg.ClientCursor(self._lease.conn).execute(template, values)
        except psycopg.OperationalError:
            if not (first and self._lease.conn.broken):
                raise
            log.info("pooled connection was closed by the server; retrying on a fresh one")
            self._lease.renew()
            return psycopg.ClientCursor(self._lease.conn).execute(template, values)

    @property
    def conn(self) -> psycopg.Connection[Any]:
        """The connection this session currently runs on."""
        return self._lease.conn

    def rpc(self, name: str, /, **args: Any) -> Any:
        """Call a procedure as this session's caller."""
        return self.run(self._principal, name, args)


class _Lease:
    """A connection checked out of the pool, replaceable once the server has closed it."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self.conn = self._checkout()

    def _checkout(self) -> psycopg.Connection[Any]:
        from psycopg_pool import PoolTimeout  # cold start: psycopg_pool loads on first use

        try:
            return self._pool.getconn(timeout=POOL_TIMEOUT_S)
        except PoolTimeout as exc:
            raise unavailable("The database is unavailable or busy; retry shortly.") from exc

    def renew(self) -> None:
        """Give back the dead connection, drop its dead idle siblings, take a fresh one."""
        self._pool.putconn(self.conn)  # the pool discards a broken connection
        self._pool.check()
        self.conn = self._checkout()

    def release(self) -> None:
        """Return the connection (a broken one is discarded and replaced by the pool)."""
        broken = self.conn.broken
        self._pool.putconn(self.conn)
        if broken:
            self._pool.check()  # the server went away: its idle siblings are dead too


class PostgresDatabase:
    """psycopg 3 pool; a session is one transaction."""

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10) -> None:
        from psycopg_pool import ConnectionPool  # cold start: psycopg_pool loads on first use

        self.dsn = dsn
        # Autocommit: transactions are opened and closed by the statements we send (see
        # _PgSession), which saves psycopg's separate BEGIN round trip.
        self.pool: ConnectionPool = ConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            kwargs={
                "prepare_threshold": None,
                "autocommit": True,
                "connect_timeout": CONNECT_TIMEOUT_S,
            },
            open=False,
            # No check on checkout (it costs a round trip per transaction): a connection
            # the server closed is replaced on its first use (_PgSession._execute).
            name="videogen",
        )
        self._opened = False

    def _open(self) -> None:
        if not self._opened:
            self.pool.open(wait=False)
            self._opened = True

    @contextmanager
    def _lease(self) -> Iterator[_Lease]:
        import psycopg  # cold start: psycopg loads on first use

        self._open()
        lease = _Lease(self.pool)
        try:
            yield lease
        except psycopg.OperationalError as exc:
            raise unavailable("The database is unavailable; retry shortly.") from exc
        finally:
            lease.release()

    @contextmanager
    def session(self, principal: Principal) -> Iterator[_PgSession]:
        """One transaction as ``principal``; commits on success, rolls back on error."""
        with self._lease() as lease:
            session = _PgSession(lease, principal)
            try:
                yield session
            except BaseException:
                if session.in_transaction and not session.conn.closed:
                    session.conn.execute("rollback")
                raise
            if session.in_transaction:
                with wrap_errors():
                    session.conn.execute("commit")

    def call(
        self,
        principal: Principal,
        name: str,
        /,
        *,
        _as_service: bool = False,
        _timeout_ms: int | None = None,
        **args: Any,
    ) -> Any:
        """One procedure call as one transaction in one round trip; a transaction that lost
        a deadlock or serialization conflict is run again (jittered backoff), not a 503."""
        try:
            return self._call_once(principal, name, args, _as_service, _timeout_ms)
        except AppError as err:
            if err.code not in CONFLICT_CODES:
                raise
            log.info("%s lost a %s; running it again", name, err.code.lower())
        import tenacity  # only conflicts pay for the import

        for attempt in tenacity.Retrying(
            retry=tenacity.retry_if_exception(
                lambda exc: isinstance(exc, AppError) and exc.code in CONFLICT_CODES
            ),
            stop=tenacity.stop_after_attempt(CONFLICT_ATTEMPTS - 1),
            wait=tenacity.wait_random_exponential(multiplier=0.005, max=0.25),
            reraise=True,
        ):
            with attempt:
                return self._call_once(principal, name, args, _as_service, _timeout_ms)
        raise AssertionError("unreachable: tenacity reraises the last conflict")

    def _call_once(
        self,
        principal: Principal,
        name: str,
        args: Mapping[str, Any],
        as_service: bool,
        timeout_ms: int | None = None,
    ) -> Any:
        with self._lease() as lease:
            session = _PgSession(lease, principal)
            try:
                return session.run(
                    principal, name, args, commit=True, as_service=as_service, timeout_ms=timeout_ms
                )
            except BaseException:
                if not session.conn.closed:
                    session.conn.execute("rollback")
                raise

    def user_call(self, principal: Principal, name: str, /, **args: Any) -> Any:
        """One service-only write for a user, as one transaction in one round trip."""
        if principal.kind != "user":
            raise Unauthorized("Sign in first.", hint="Send a Supabase Auth access token.")
        return self.call(principal, name, _as_service=True, **args)

    def admin_call(self, name: str, /, **args: Any) -> Any:
        """One service-role call (bypasses RLS) as one transaction."""
        return self.call(SERVICE, name, **args)

    def probe_call(self, name: str, timeout_ms: int, /, **args: Any) -> Any:
        """One service-role call with its own ``statement_timeout``, in the same message."""
        return self.call(SERVICE, name, _timeout_ms=timeout_ms, **args)

    def admin(self) -> Any:
        """A service-role session: bypasses RLS, so use it only where a user cannot."""
        return self.session(SERVICE)

    def close(self) -> None:
        """Close the pool."""
        if self._opened:
            self.pool.close()
            self._opened = False


class _RestSession:
    """PostgREST calls as one caller. Each request is its own transaction, so a session
    makes one call: a second one would not commit with the first, and is refused."""

    def __init__(self, db: PostgrestDatabase, principal: Principal) -> None:
        self._db = db
        self._principal = principal
        self._calls: list[str] = []

    def _call(self, principal: Principal, name: str, args: Mapping[str, Any]) -> Any:
        from postgrest.exceptions import APIError  # cold start: postgrest loads on first use

        if self._calls:
            raise AppError(
                f"{name} after {self._calls[0]} would not be one transaction with "
                "DB_ADAPTER=postgrest.",
                status=501,
                code="NOT_SUPPORTED_BY_ADAPTER",
                hint="This action needs one transaction over several procedures; set "
                "DB_ADAPTER=postgres (the Supavisor transaction pooler).",
            )
        if "." in name:
            raise self.refuse_service_call(name)
        self._calls.append(name)
        client = self._db.client_for(principal)
        try:
            response = client.rpc(name, {f"p_{k}": v for k, v in args.items()}).execute()
        except APIError as exc:
            detail = exc.details if isinstance(exc.details, str) else None
            raise from_sqlstate(exc.code, exc.message or "database error", detail) from exc
        except Exception as exc:
            if type(exc).__module__.startswith("httpx"):
                raise unavailable("The database API is unavailable.") from exc
            raise
        return response.data

    def rpc(self, name: str, /, **args: Any) -> Any:
        """Call a procedure through /rest/v1/rpc as this caller."""
        return self._call(self._principal, name, args)

    @staticmethod
    def refuse_service_call(name: str) -> AppError:
        """PostgREST does not expose the ``service`` schema (only ``public``)."""
        return AppError(
            f"{name} is not available with DB_ADAPTER=postgrest.",
            status=501,
            code="NOT_SUPPORTED_BY_ADAPTER",
            hint="Service procedures live in the `service` schema, which PostgREST does not "
            "expose; set DB_ADAPTER=postgres (the Supavisor transaction pooler).",
        )

    @staticmethod
    def refuse_user_write(name: str) -> AppError:
        """PostgREST cannot run a service-only procedure with a user's claims."""
        return AppError(
            f"{name} is not available with DB_ADAPTER=postgrest.",
            status=501,
            code="NOT_SUPPORTED_BY_ADAPTER",
            hint="User writes run as service_role with the user's claims, which PostgREST "
            "cannot do; set DB_ADAPTER=postgres (the Supavisor transaction pooler).",
        )


class PostgrestDatabase:
    """The same procedures through PostgREST (supabase-py's postgrest client)."""

    def __init__(self, settings: Settings, http_client: httpx.Client | None = None) -> None:
        self.settings = settings
        self.http_client = http_client

    def client_for(self, principal: Principal) -> Any:
        """A postgrest client that sends this caller's token (or the secret key)."""
        from postgrest import SyncPostgrestClient  # cold start: postgrest loads on first use

        s = self.settings
        if principal.kind == "secret":
            key = s.secret_key.get_secret_value()
            token = s.service_role_key.get_secret_value()
        else:
            key = s.publishable_key.get_secret_value()
            token = principal.token or s.anon_key.get_secret_value()
        headers = {"apikey": key, "Authorization": f"Bearer {token}"}
        kwargs: dict[str, Any] = {"headers": headers}
        if self.http_client is not None:
            kwargs["http_client"] = self.http_client
        return SyncPostgrestClient(f"{s.supabase_url}/rest/v1", **kwargs)

    @contextmanager
    def session(self, principal: Principal) -> Iterator[_RestSession]:
        """Calls as ``principal`` (not one transaction: PostgREST has one per request)."""
        yield _RestSession(self, principal)

    def admin(self) -> Any:
        """Calls with the secret key."""
        return self.session(SERVICE)

    def call(self, principal: Principal, name: str, /, **args: Any) -> Any:
        """One /rpc call as ``principal`` (one transaction)."""
        return _RestSession(self, principal).rpc(name, **args)

    def admin_call(self, name: str, /, **args: Any) -> Any:
        """One /rpc call with the secret key."""
        return _RestSession(self, SERVICE).rpc(name, **args)

    def probe_call(self, name: str, timeout_ms: int, /, **args: Any) -> Any:
        """One /rpc call with the secret key (PostgREST's role has its own statement_timeout;
        the HTTP client's timeout bounds the wait)."""
        return self.admin_call(name, **args)

    def user_call(self, principal: Principal, name: str, /, **args: Any) -> Any:
        """Refused, as :meth:`_RestSession.refuse_user_write` explains."""
        raise _RestSession.refuse_user_write(name)

    def close(self) -> None:
        """Nothing to release."""


@lru_cache(maxsize=1)
def get_database() -> Database:
    """The process-wide database chosen by ``DB_ADAPTER``."""
    settings = get_settings()
    if settings.db_adapter == "postgrest":
        return PostgrestDatabase(settings)
    return PostgresDatabase(
        settings.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max
    )
