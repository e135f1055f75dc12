"""Applying SQL to a database: the platform stand-in, the migrations, the seed.

Order, as ``supabase db reset`` does it:

1. ``sql/platform/*.sql`` — only on a plain Postgres: the Supabase pieces it lacks (roles,
   ``auth``, ``storage``, ``realtime``). Skipped on a real Supabase database, detected by
   the ``supabase_admin`` role or the ``auth.schema_migrations`` table (neither is created
   by the stand-in), and skipped when the stand-in is already there.
2. ``supabase/migrations/*.sql`` not applied yet, in file-name order, each recorded in
   ``supabase_migrations.schema_migrations`` like the Supabase CLI does, in the same
   transaction as the migration itself.
3. ``supabase/seed.sql`` — only in the run that applies the first migrations to a database.

Each file runs as one simple-protocol query, so it is one implicit transaction (a file may
still use its own ``begin; … commit;``); ``create index concurrently`` therefore cannot be
used in migrations applied here.

:func:`reset` drops and recreates the whole database rather than dropping schemas one by one:
roles' default privileges, publications, event triggers and extensions all go with it, so
nothing from an earlier state can leak into the next.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

PLATFORM_DIR = Path("sql/platform")
MIGRATIONS_DIR = Path("supabase/migrations")
SEED_FILE = Path("supabase/seed.sql")

_TRACKING_DDL = """
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
    version text primary key,
    statements text[],
    name text
);
"""


class SchemaError(RuntimeError):
    """A SQL file could not be applied, or a database operation was refused."""


# ------------------------------------------------------------------------------------------
# Files
# ------------------------------------------------------------------------------------------


def project_root() -> Path:
    """The project root: ``VIDEOGEN_ROOT``, else the nearest parent holding pyproject.toml."""
    if env := os.environ.get("VIDEOGEN_ROOT"):
        return Path(env).expanduser().resolve()
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for directory in (start, *start.parents):
            if (directory / "pyproject.toml").is_file() and (directory / "supabase").is_dir():
                return directory
    raise SchemaError(
        "cannot find the project root (a directory with pyproject.toml and supabase/); "
        "set VIDEOGEN_ROOT"
    )


def platform_files(root: Path | None = None) -> list[Path]:
    """The platform stand-in files, in the order they are applied."""
    return sorted(((root or project_root()) / PLATFORM_DIR).glob("*.sql"))


def migration_files(root: Path | None = None) -> list[Path]:
    """The migration files, in the order they are applied."""
    return sorted(((root or project_root()) / MIGRATIONS_DIR).glob("*.sql"))


def seed_file(root: Path | None = None) -> Path | None:
    """``supabase/seed.sql`` if it exists."""
    path = (root or project_root()) / SEED_FILE
    return path if path.is_file() else None


def fingerprint(root: Path | None = None) -> str:
    """A hash of every SQL file :func:`apply_all` would apply (names and contents)."""
    root = root or project_root()
    digest = hashlib.sha256()
    seed = seed_file(root)
    for path in [*platform_files(root), *migration_files(root), *([seed] if seed else [])]:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def migration_version(path: Path) -> str:
    """The version of a migration file: its name up to the first underscore."""
    return path.stem.split("_", 1)[0]


# ------------------------------------------------------------------------------------------
# Applying
# ------------------------------------------------------------------------------------------


def is_real_supabase(conn: psycopg.Connection[Any]) -> bool:
    """True on a database managed by Supabase (hosted or ``supabase start``)."""
    row = conn.execute(
        """
        select exists (select 1 from pg_roles where rolname = 'supabase_admin')
            or to_regclass('auth.schema_migrations') is not null
        """
    ).fetchone()
    return bool(row and row[0])


def has_platform(conn: psycopg.Connection[Any]) -> bool:
    """True if the platform pieces (real or stand-in) are present in this database."""
    row = conn.execute(
        "select to_regclass('auth.users') is not null"
        " and to_regclass('realtime.messages') is not null"
    ).fetchone()
    return bool(row and row[0])


def apply_file(conn: psycopg.Connection[Any], path: Path, *, epilogue: Any = None) -> None:
    """Run one SQL file as a single query (one implicit transaction), with an optional epilogue."""
    from psycopg import sql

    text = path.read_text()
    query: Any = sql.SQL(text)  # braces only matter to .format(), which is not called
    if epilogue is not None:
        # The newline ends a trailing `--` comment; the `;` ends the file's last statement.
        query = sql.Composed([query, sql.SQL("\n;\n"), epilogue])
    try:
        conn.execute(query)
    except Exception as exc:
        raise SchemaError(_describe_failure(path, text, exc)) from exc


def apply_platform(conn: psycopg.Connection[Any], root: Path | None = None) -> list[str]:
    """Apply the platform stand-in unless this is a real Supabase or it is already there."""
    if is_real_supabase(conn):
        log.info("real Supabase database: platform stand-in skipped")
        return []
    root = root or project_root()
    if has_platform(conn):
        return _apply_platform_additions(conn, root)
    applied = []
    for path in platform_files(root):
        apply_file(conn, path)
        applied.append(str(path.relative_to(root)))
    return applied


# Stand-in files added after the first release, each with a query that is true while a
# database lacks what the file makes: a database made before a file existed gets that file
# (only it — the others would grant again what the migrations revoked).
PLATFORM_ADDITIONS = {
    "15_auth_sessions.sql": "select to_regclass('auth.sessions') is null",
    "25_storage_unused_grants.sql": (
        "select has_table_privilege('anon', 'storage.objects', 'truncate')"
        " or has_table_privilege('authenticated', 'storage.objects', 'truncate')"
    ),
    "40_vault.sql": "select to_regclass('vault.secrets') is null",
}


def _apply_platform_additions(conn: psycopg.Connection[Any], root: Path) -> list[str]:
    from psycopg import sql

    applied = []
    for path in platform_files(root):
        missing = PLATFORM_ADDITIONS.get(path.name)
        if missing is None:
            continue
        row = conn.execute(sql.SQL(missing)).fetchone()  # a constant of this module
        if row and row[0]:
            apply_file(conn, path)
            applied.append(str(path.relative_to(root)))
    return applied


def pending_migrations(conn: psycopg.Connection[Any], root: Path | None = None) -> list[Path]:
    """Migration files not yet recorded in ``supabase_migrations.schema_migrations``."""
    done = set()
    if _tracking_exists(conn):
        rows = conn.execute("select version from supabase_migrations.schema_migrations")
        done = {row[0] for row in rows}
    return [p for p in migration_files(root) if migration_version(p) not in done]


def apply_migrations(conn: psycopg.Connection[Any], root: Path | None = None) -> list[str]:
    """Apply pending migrations in order, each recorded in the same transaction."""
    from psycopg import sql

    root = root or project_root()
    conn.execute(_TRACKING_DDL)
    applied = []
    for path in pending_migrations(conn, root):
        name = path.stem.split("_", 1)[1] if "_" in path.stem else ""
        record = sql.SQL(
            "insert into supabase_migrations.schema_migrations (version, name, statements) "
            "values ({}, {}, array[{}])"
        ).format(
            sql.Literal(migration_version(path)), sql.Literal(name), sql.Literal(path.read_text())
        )
        apply_file(conn, path, epilogue=record)
        applied.append(str(path.relative_to(root)))
    return applied


def apply_seed(conn: psycopg.Connection[Any], root: Path | None = None) -> list[str]:
    """Apply ``supabase/seed.sql`` if it exists."""
    root = root or project_root()
    seed = seed_file(root)
    if seed is None:
        return []
    apply_file(conn, seed)
    return [str(seed.relative_to(root))]


@contextmanager
def cluster_lock(dsn: str) -> Iterator[None]:
    """Hold the server-wide lock under which SQL files are applied, one database at a time.

    Roles and their settings belong to the whole server, so two databases brought up at once
    (pytest-xdist workers, two checkouts) race on ``CREATE ROLE``. Advisory locks are keyed
    per database, so the lock is taken in the maintenance database ``postgres``; closing the
    connection releases it.
    """
    import psycopg

    with psycopg.connect(database_dsn(dsn, "postgres"), autocommit=True) as lock:
        lock.execute("select pg_advisory_lock(hashtext('videogen.apply_sql'))")
        yield


def apply_all(dsn: str, *, seed: bool = True, root: Path | None = None) -> list[str]:
    """Bring a database up to date: platform (plain Postgres only), pending migrations, seed.

    The seed runs only when this call creates the migration history (a fresh database), so
    running it again on a live database applies new migrations and nothing else. Returns
    the files applied, relative to the project root.
    """
    import psycopg

    root = root or project_root()
    with cluster_lock(dsn), psycopg.connect(dsn, autocommit=True) as conn:
        fresh = not _tracking_exists(conn)
        applied = apply_platform(conn, root)
        applied += apply_migrations(conn, root)
        if seed and fresh:
            applied += apply_seed(conn, root)
    for name in applied:
        log.info("applied %s", name)
    return applied


# ------------------------------------------------------------------------------------------
# Databases
# ------------------------------------------------------------------------------------------


def database_dsn(dsn: str, name: str) -> str:
    """The same DSN pointing at database ``name``."""
    if "://" in dsn:
        parts = urlsplit(dsn)
        return urlunsplit(parts._replace(path="/" + name))
    from psycopg.conninfo import make_conninfo

    return make_conninfo(dsn, dbname=name)


def database_name(dsn: str) -> str:
    """The database a DSN points at."""
    from psycopg.conninfo import conninfo_to_dict

    return str(conninfo_to_dict(dsn).get("dbname") or conninfo_to_dict(dsn).get("user") or "")


# The slots the local Realtime stand-in reads (videogen_dev.realtime_replication); a reset
# ends their readers and drops them. Any other slot on the database stops a reset.
OWN_SLOTS = "videogen_realtime_%"
RELEASE_TIMEOUT_S = 15.0


def reset(dsn: str) -> list[str]:
    """Drop and recreate the DSN's database, empty (``DROP DATABASE … WITH (FORCE)``).

    Works for the ``postgres`` database too (it is recreated from ``template1``'s side).
    Postgres refuses to drop a database a logical replication slot uses, so the Realtime
    stand-in's slots are released first (:func:`release_replication`: new connections
    refused meanwhile, so a reader cannot come back before the drop); returns what that
    did, one line each. Refused on a real Supabase database: use ``supabase db reset``.
    """
    import psycopg
    from psycopg import sql

    name = database_name(dsn)
    if not name:
        raise SchemaError(f"no database name in {dsn!r}")
    maintenance = database_dsn(dsn, "template1" if name == "postgres" else "postgres")
    released: list[str] = []
    with psycopg.connect(maintenance, autocommit=True) as conn:
        if is_real_supabase(conn):
            raise SchemaError("refusing to reset a real Supabase database; use `supabase db reset`")
        exists = _database_exists(conn, name)
        if exists:
            conn.execute(
                sql.SQL("alter database {} with allow_connections false").format(
                    sql.Identifier(name)
                )
            )
        try:
            if exists:
                released = release_replication(conn, name)
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )
        except BaseException:
            if _database_exists(conn, name):
                conn.execute(
                    sql.SQL("alter database {} with allow_connections true").format(
                        sql.Identifier(name)
                    )
                )
            raise
        conn.execute(
            sql.SQL("create database {} template template0 encoding 'UTF8'").format(
                sql.Identifier(name)
            )
        )
    log.info("database %s recreated empty", name)
    return released


def pg_cron_stopped(dsn: str) -> bool:
    """True when pg_cron belongs to this database but its scheduler is not running (it ends
    for good when its database is dropped, until the server restarts)."""
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            row = conn.execute(
                "select private.pg_cron_possible() and not private.schedules_by_pg_cron()"
            ).fetchone()
    except psycopg.Error:
        return False
    return bool(row and row[0])


def release_replication(conn: psycopg.Connection[Any], name: str) -> list[str]:
    """End the readers of database ``name``'s Realtime slots (and its walsenders), drop the
    slots, and wait until none is left; what was done, one line each.

    A slot that is not ours (``OWN_SLOTS``) stops it with the command that would drop it.
    """
    import time

    others = conn.execute(
        "select slot_name from pg_replication_slots where database = %s and slot_name not like %s",
        [name, OWN_SLOTS],
    ).fetchall()
    if others:
        names = ", ".join(str(row[0]) for row in others)
        raise SchemaError(
            f"database {name} has replication slots that are not the local Realtime's: "
            f"{names}; drop them first (select pg_drop_replication_slot('<name>'))"
        )
    done: list[str] = []
    for pid, app in conn.execute(
        "select pid, application_name from pg_stat_activity "
        "where backend_type = 'walsender' and datname = %s",
        [name],
    ).fetchall():
        conn.execute("select pg_terminate_backend(%s)", [pid])
        done.append(f"ended replication connection {pid} ({app or 'walsender'})")
    deadline = time.monotonic() + RELEASE_TIMEOUT_S
    while True:
        slots = conn.execute(
            "select slot_name, active_pid, temporary from pg_replication_slots where database = %s",
            [name],
        ).fetchall()
        if not slots:
            return done
        for slot, pid, temporary in slots:
            if pid is not None:
                conn.execute("select pg_terminate_backend(%s)", [pid])
                line = f"ended the Realtime reader of slot {slot} (backend {pid})"
                if line not in done:
                    done.append(line)
            elif not temporary:
                conn.execute("select pg_drop_replication_slot(%s)", [slot])
                done.append(f"dropped replication slot {slot}")
        if time.monotonic() > deadline:
            raise SchemaError(
                f"replication slots of {name} did not go away in {RELEASE_TIMEOUT_S:.0f} s: "
                + ", ".join(str(row[0]) for row in slots)
            )
        time.sleep(0.1)  # a terminated reader's temporary slot goes when its backend exits


def create_template(
    dsn_admin: str, name: str, *, root: Path | None = None, platform_only: bool = False
) -> str:
    """Build database ``name`` with :func:`apply_all` and mark it a template; reuse it if present.

    ``platform_only`` applies the platform stand-in alone (no migrations, no seed). The
    database is built under a scratch name and renamed at the end, so a template that
    exists is always complete. Returns the template's DSN.
    """
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn_admin, autocommit=True) as conn:
        if _database_exists(conn, name):
            return database_dsn(dsn_admin, name)
        scratch = f"{name[:40]}_build_{os.getpid()}"
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(scratch))
        )
        conn.execute(
            sql.SQL("create database {} template template0 encoding 'UTF8'").format(
                sql.Identifier(scratch)
            )
        )
    try:
        if platform_only:
            with (
                cluster_lock(dsn_admin),
                psycopg.connect(database_dsn(dsn_admin, scratch), autocommit=True) as conn,
            ):
                apply_platform(conn, root)
        else:
            apply_all(database_dsn(dsn_admin, scratch), root=root)
        with psycopg.connect(dsn_admin, autocommit=True) as conn:
            if _database_exists(conn, name):  # another process won the race
                drop_database(dsn_admin, scratch)
            else:
                conn.execute(
                    sql.SQL("alter database {} rename to {}").format(
                        sql.Identifier(scratch), sql.Identifier(name)
                    )
                )
                conn.execute(
                    sql.SQL("alter database {} is_template true").format(sql.Identifier(name))
                )
    except BaseException:
        drop_database(dsn_admin, scratch)
        raise
    return database_dsn(dsn_admin, name)


def clone_database(dsn_admin: str, template: str, new_name: str) -> str:
    """``CREATE DATABASE new_name TEMPLATE template`` and return the new database's DSN."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn_admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("create database {} template {}").format(
                sql.Identifier(new_name), sql.Identifier(template)
            )
        )
    return database_dsn(dsn_admin, new_name)


def drop_database(dsn_admin: str, name: str) -> None:
    """Drop a database if it exists, closing its connections (templates too)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn_admin, autocommit=True) as conn:
        if _database_exists(conn, name):
            conn.execute(
                sql.SQL("alter database {} is_template false").format(sql.Identifier(name))
            )
            conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))


def list_databases(dsn_admin: str, like: str) -> list[str]:
    """Names of databases matching a LIKE pattern."""
    import psycopg

    with psycopg.connect(dsn_admin, autocommit=True) as conn:
        rows = conn.execute("select datname from pg_database where datname like %s", (like,))
        return [row[0] for row in rows]


def drop_stale_databases(
    dsn_admin: str, like: str, *, older_than_s: float, keep: Collection[str] = ()
) -> list[str]:
    """Drop databases matching ``like`` created more than ``older_than_s`` seconds ago.

    Age comes from the database directory's PG_VERSION file, which needs superuser (or
    pg_read_server_files); without it nothing is dropped. Databases in use are skipped.
    """
    import psycopg
    from psycopg import sql

    dropped = []
    with psycopg.connect(dsn_admin, autocommit=True) as conn:
        try:
            rows = conn.execute(
                """
                select datname from pg_database
                where datname like %s and not (datname = any(%s))
                  and (pg_stat_file('base/' || oid || '/PG_VERSION')).modification
                      < now() - make_interval(secs => %s)
                """,
                (like, list(keep), older_than_s),
            ).fetchall()
        except psycopg.Error:
            return []
        for (name,) in rows:
            try:
                conn.execute(
                    sql.SQL("alter database {} is_template false").format(sql.Identifier(name))
                )
                conn.execute(sql.SQL("drop database {}").format(sql.Identifier(name)))
                dropped.append(name)
            except psycopg.Error:  # in use by another session: leave it
                continue
    return dropped


def platform_template_name(root: Path | None = None) -> str:
    """The name of the template holding the platform stand-in alone (hash of its files)."""
    digest = hashlib.sha256()
    for path in platform_files(root):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return f"videogen_platform_{digest.hexdigest()[:16]}"


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------


def _tracking_exists(conn: psycopg.Connection[Any]) -> bool:
    """True once ``supabase_migrations.schema_migrations`` exists."""
    row = conn.execute(
        "select to_regclass('supabase_migrations.schema_migrations') is not null"
    ).fetchone()
    return bool(row and row[0])


def _database_exists(conn: psycopg.Connection[Any], name: str) -> bool:
    """True if a database of that name exists."""
    return (
        conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone() is not None
    )


def _describe_failure(path: Path, text: str, exc: Exception) -> str:
    """``file:line: message`` for a failed SQL file, from the server's error position."""
    diag = getattr(exc, "diag", None)
    message = (getattr(diag, "message_primary", None) or str(exc)).strip()
    where = str(path)
    position = getattr(diag, "statement_position", None)
    if position and str(position).isdigit():
        line = text[: int(position) - 1].count("\n") + 1
        where = f"{path}:{line}"
    detail = getattr(diag, "message_detail", None)
    context = getattr(diag, "context", None)
    extra = "".join(
        f"\n  {label}: {value.strip()}"
        for label, value in (("detail", detail), ("context", context))
        if value
    )
    sqlstate = getattr(exc, "sqlstate", None)
    code = f" [{sqlstate}]" if sqlstate else ""
    return f"{where}: {message}{code}{extra}"


__all__ = [
    "SchemaError",
    "apply_all",
    "apply_file",
    "apply_migrations",
    "apply_platform",
    "apply_seed",
    "clone_database",
    "create_template",
    "database_dsn",
    "database_name",
    "drop_database",
    "drop_stale_databases",
    "fingerprint",
    "has_platform",
    "is_real_supabase",
    "list_databases",
    "migration_files",
    "pending_migrations",
    "platform_files",
    "platform_template_name",
    "project_root",
    "reset",
    "seed_file",
]
