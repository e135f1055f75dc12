"""Drafting a migration: the difference between replaying the migrations and sql/schema.

``videogen migration draft <name>`` (``make migration NAME=…``) builds two databases on the
platform stand-in, A with ``supabase/migrations`` and B with the ``sql/schema`` modules in
name order, diffs A → B, writes ``supabase/migrations/<UTC timestamp>_<name>.sql``, applies
that file to a fresh copy of A and compares ``pg_dump --schema-only`` with B (the check
``tests/db/test_migrations.py`` makes). Every scratch database is dropped at the end.

The diff tool is ``results`` (PyPI; djrobstep's successor to migra, its ``dbdiff``). It
runs on psycopg 3, already a dependency, and on PG 15 diffs schemas, tables, columns,
constraints, indexes, views, functions, triggers, RLS policies, comments and table grants.
``migra-maintained`` 1.1 does not import on Python 3.11 (schema-inspect-maintained calls
``importlib.resources.files()`` on a module: "'schemainspect.pg.obj' is not a package") and
pulls in psycopg2 and SQLAlchemy 1.4; ``pg-schema-diff`` 0.2 knows only tables, columns,
indexes, foreign keys and enums.

What ``results`` leaves out is added here from the ACLs (:func:`acl_diff`): EXECUTE on
functions and procedures, privileges on sequences, schemas and columns, and the order of an
ACL's entries, which pg_dump shows. Each pass is applied to a scratch copy of A and the
diff runs again until nothing is left (at most four passes): objects a draft creates get
Supabase's default privileges, and a table-wide revoke takes column grants with it.

Not expressed (the check lists what remains as pg_dump lines; write it by hand):

- data: moves, backfills, renames (a rename is a drop and a create);
- ``alter default privileges``; publication members (``alter publication … add table``);
  ownership (the comparison uses ``--no-owner``); event triggers;
- a new enum value: ``results`` drafts a type swap that fails while a column uses the type
  (the check reports the error); write ``alter type … add value`` instead;
- column order: a column added in the middle of a module's ``create table`` is appended.

Foreign keys of a changed table are dropped and added again (``not valid`` + ``validate``):
safe, but the header lists them with the other drops; delete them if the table is large.
"""

from __future__ import annotations

import difflib
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from videogen_dev import localdb, migrations

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,79}$")
MAX_PASSES = 4
_DROP = re.compile(r"\bdrop\b", re.IGNORECASE)
_DROP_CONSTRAINT = re.compile(r"(?P<table>alter table \S+) drop constraint (?P<name>\S+);$")
_QUOTED_PUBLIC = re.compile(r"^((?:grant|revoke) .* (?:to|from)) \"PUBLIC\";$")
_SKIPPED_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast", "supabase_migrations")

AclObject = tuple[str, str, str]  # kind, qualified name, quoted column ('' for the object)
AclEntry = tuple[str, str, bool]  # grantee, privilege, with grant option
AclState = tuple[str, list[AclEntry]]  # owner, entries in the ACL's order

HEADER = """\
-- Migration {name}: drafted by `make migration` from sql/schema; review before committing.
-- Write by hand only what a diff cannot express: data moves, backfills, renames (drafted
-- as drop + create), default privileges.
"""


@dataclass
class Draft:
    """What :func:`draft_migration` did. ``path`` is None when there was nothing to draft."""

    path: Path | None = None
    statements: list[str] = field(default_factory=list)
    unsafe: list[str] = field(default_factory=list)
    remaining: list[str] = field(default_factory=list)  # pg_dump diff after applying
    error: str | None = None  # applying the draft to a copy of A failed

    @property
    def verified(self) -> bool:
        """True when A plus the draft dumps the same as B."""
        return self.path is not None and self.error is None and not self.remaining


def draft_migration(
    name: str,
    *,
    root: Path | None = None,
    admin_dsn: str | None = None,
    out_dir: Path | None = None,
    now: datetime | None = None,
) -> Draft:
    """Diff platform + migrations against platform + sql/schema and write the migration."""
    if not NAME_PATTERN.match(name):
        raise migrations.SchemaError(f"migration name {name!r}: use lower_snake_case")
    root = root or migrations.project_root()
    out_dir = out_dir or root / migrations.MIGRATIONS_DIR
    path = out_dir / f"{next_version(root, now)}_{name}.sql"
    if admin_dsn is None:
        admin_dsn = localdb.ensure_running()
    template = _platform_template(admin_dsn, root)
    with _databases(admin_dsn, template, "a", "b") as (a, b):
        _apply_migrations(a, root)
        _apply_modules(b, root)
        target = localdb.dump_schema(b)
        if localdb.dump_schema(a) == target:
            return Draft()
        passes = _passes(admin_dsn, migrations.database_name(a), b)
        statements = [s for part in passes for s in part]
        unsafe = _unsafe(statements)
        out_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(_render(name, passes, unsafe))
        draft = Draft(path=path, statements=statements, unsafe=unsafe)
        with _databases(admin_dsn, migrations.database_name(a), "check") as (check,):
            try:
                _apply_draft_file(check, path)
            except migrations.SchemaError as exc:
                draft.error = str(exc)
                return draft
            draft.remaining = _dump_diff(localdb.dump_schema(check), target)
        return draft


def schema_diff(dsn_from: str, dsn_to: str) -> list[str]:
    """The statements that turn ``dsn_from``'s schema into ``dsn_to``'s, drops included."""
    return _schema_statements(_inspect(dsn_from), _inspect(dsn_to))


def _inspect(dsn: str) -> Any:
    """``results``' inspection of a database (loaded at once; the connection is closed)."""
    import psycopg
    from results.schemainspect import PostgreSQL

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("set search_path = ''")  # names in definitions come out qualified
        schema = PostgreSQL(conn.cursor())
    schema.exclude_schema("supabase_migrations")
    return schema


def _schema_statements(source: Any, target: Any) -> list[str]:
    from results.dbdiff import Migration

    migration = Migration(source, target)
    migration.set_safety(False)
    migration.add_all_changes_ordered(privileges=True)
    statements = [str(s).strip() for s in migration.statements]
    # results names the PUBLIC pseudo-role as a quoted role, which does not exist.
    statements = [_QUOTED_PUBLIC.sub(r"\1 public;", s) for s in statements]
    return [s if s.endswith(";") else s + ";" for s in statements if s]


def acl_diff(dsn_from: str, dsn_to: str) -> list[str]:
    """Grants and revokes that give ``dsn_from`` the ACLs of ``dsn_to``.

    Tables, views, sequences, functions, procedures, schemas and columns present in both are
    compared. Where privileges differ, revokes then grants; where only their order differs
    (pg_dump writes an ACL in its order), every grantee but the owner is revoked and granted
    again in ``dsn_to``'s order.
    """
    return _acl_statements(_acl(dsn_from), _acl(dsn_to))


def _acl_statements(have: dict[AclObject, AclState], want: dict[AclObject, AclState]) -> list[str]:
    # A column without grants has no ACL: compare the ones the target has against none.
    objects = (have.keys() & want.keys()) | {obj for obj in want if obj[2]}
    revokes: list[str] = []
    grants: list[str] = []
    for obj in sorted(objects):
        owner, new = want[obj]
        old = have.get(obj, (owner, []))[1]
        if old == new:
            continue
        if set(old) != set(new):
            revokes += _statements("revoke", obj, [e for e in old if e not in set(new)])
            grants += _statements("grant", obj, [e for e in new if e not in set(old)])
            continue
        grantees = dict.fromkeys(e[0] for e in old if e[0] != owner)
        revokes += _statements("revoke", obj, [(g, "all", False) for g in grantees])
        grants += _statements("grant", obj, [e for e in new if e[0] != owner])
    return revokes + grants


# ------------------------------------------------------------------------------------------
# Databases
# ------------------------------------------------------------------------------------------


def _platform_template(admin_dsn: str, root: Path) -> str:
    """The platform-only template (the one the tests use), built if missing."""
    import psycopg

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        if migrations.is_real_supabase(conn):
            raise migrations.SchemaError(
                "drafting needs a plain Postgres (it builds scratch databases); "
                "unset DATABASE_URL to use the embedded one"
            )
    # Scratch databases of a draft that was killed; a running draft takes seconds.
    migrations.drop_stale_databases(admin_dsn, "videogen\\_draft\\_%", older_than_s=3600)
    name = migrations.platform_template_name(root)
    migrations.create_template(admin_dsn, name, root=root, platform_only=True)
    return name


@contextmanager
def _databases(admin_dsn: str, template: str, *roles: str) -> Iterator[list[str]]:
    """Fresh copies of ``template``, one per role, dropped afterwards."""
    tag = uuid.uuid4().hex[:10]
    names = [f"videogen_draft_{tag}_{role}" for role in roles]
    try:
        yield [migrations.clone_database(admin_dsn, template, name) for name in names]
    finally:
        for name in names:
            migrations.drop_database(admin_dsn, name)


def _apply_migrations(dsn: str, root: Path) -> None:
    import psycopg

    with migrations.cluster_lock(dsn), psycopg.connect(dsn, autocommit=True) as conn:
        migrations.apply_migrations(conn, root)


def _apply_modules(dsn: str, root: Path) -> None:
    import psycopg

    modules = sorted((root / "sql" / "schema").glob("*.sql"))
    if not modules:
        raise migrations.SchemaError(f"no schema modules in {root / 'sql' / 'schema'}")
    with migrations.cluster_lock(dsn), psycopg.connect(dsn, autocommit=True) as conn:
        for path in modules:
            migrations.apply_file(conn, path)


def _apply_draft_file(dsn: str, path: Path) -> None:
    import psycopg

    with migrations.cluster_lock(dsn), psycopg.connect(dsn, autocommit=True) as conn:
        migrations.apply_file(conn, path)


def _execute(dsn: str, statements: list[str]) -> None:
    """Run statements as one query (one transaction), as a migration file runs."""
    import psycopg
    from psycopg import sql

    query: Any = sql.SQL("\n\n".join(statements))  # braces matter only to .format()
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            conn.execute(query)
        except psycopg.Error as exc:
            raise migrations.SchemaError(f"a draft pass does not apply: {exc}") from exc


def _passes(admin_dsn: str, database_a: str, dsn_b: str) -> list[list[str]]:
    """Diff passes on a scratch copy of A, each applied before the next diff.

    A pass that does not apply ends the loop; it is kept, so the file shows it and the check
    reports the error.
    """
    passes: list[list[str]] = []
    target, target_acl = _inspect(dsn_b), _acl(dsn_b)
    with _databases(admin_dsn, database_a, "work") as (work,):
        for _ in range(MAX_PASSES):
            part = _schema_statements(_inspect(work), target)
            extra: list[str] = []
            try:
                if part:
                    _execute(work, part)
                extra = _acl_statements(_acl(work), target_acl)
                if extra:
                    _execute(work, extra)
            except migrations.SchemaError:
                passes.append(part + extra)  # what failed stays in the file, for the check
                break
            if not part and not extra:
                break
            passes.append(part + extra)
    return passes


# ------------------------------------------------------------------------------------------
# ACLs the diff tool does not read
# ------------------------------------------------------------------------------------------

_ACL_QUERY = """
with objects as (
    select case p.prokind when 'p' then 'procedure' when 'f' then 'function'
                else 'routine' end as kind,
           format('%%I.%%I(%%s)', n.nspname, p.proname,
                  pg_get_function_identity_arguments(p.oid)) as object,
           '' as columns, p.proowner as owner,
           coalesce(p.proacl, acldefault('f', p.proowner)) as acl
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname <> all (%(skip)s)
      and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass
                      and d.objid = p.oid and d.deptype = 'e')
    union all
    select case c.relkind when 'S' then 'sequence' else 'table' end,
           format('%%I.%%I', n.nspname, c.relname), '', c.relowner,
           coalesce(c.relacl, acldefault(case c.relkind when 'S' then 's' else 'r' end::"char",
                                         c.relowner))
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relkind in ('r', 'p', 'v', 'm', 'f', 'S') and n.nspname <> all (%(skip)s)
    union all
    select 'schema', format('%%I', n.nspname), '', n.nspowner,
           coalesce(n.nspacl, acldefault('n', n.nspowner))
    from pg_namespace n
    where n.nspname <> all (%(skip)s) and n.nspname not like 'pg\\_%%'
    union all
    select 'table', format('%%I.%%I', n.nspname, c.relname), format('%%I', a.attname),
           c.relowner, a.attacl
    from pg_attribute a
    join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
    where a.attacl is not null and a.attnum > 0 and not a.attisdropped
      and n.nspname <> all (%(skip)s)
)
select o.kind, o.object, o.columns, quote_ident(pg_get_userbyid(o.owner)),
       case when x.grantee = 0 then 'public' else quote_ident(pg_get_userbyid(x.grantee)) end,
       x.privilege_type, x.is_grantable
from objects o
cross join lateral unnest(o.acl) with ordinality as item(entry, position)
cross join lateral aclexplode(array[item.entry]) x
order by o.kind, o.object, o.columns, item.position, x.privilege_type
"""


def _acl(dsn: str) -> dict[AclObject, AclState]:
    """Each object's owner and ACL entries, in the order the ACL holds them."""
    import psycopg

    acls: dict[AclObject, AclState] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("set search_path = ''")  # argument types come out qualified
        rows = conn.execute(_ACL_QUERY, {"skip": list(_SKIPPED_SCHEMAS)}).fetchall()
    for kind, obj, columns, owner, grantee, privilege, grantable in rows:
        acls.setdefault((kind, obj, columns), (owner, []))[1].append(
            (grantee, privilege.lower(), bool(grantable))
        )
    return acls


def _statements(verb: str, obj: AclObject, entries: list[AclEntry]) -> list[str]:
    """One grant or revoke per grantee (and grant option), in the entries' order."""
    kind, name, columns = obj
    privileges: dict[tuple[str, bool], list[str]] = {}
    for grantee, privilege, grantable in entries:
        privileges.setdefault((grantee, grantable and verb == "grant"), []).append(privilege)
    statements = []
    for (grantee, grantable), names in privileges.items():
        what = ", ".join(f"{p} ({columns})" if columns else p for p in dict.fromkeys(names))
        target = f"{what} on table {name}" if columns else f"{what} on {kind} {name}"
        option = " with grant option" if grantable else ""
        direction = "to" if verb == "grant" else "from"
        statements.append(f"{verb} {target} {direction} {grantee}{option};")
    return statements


# ------------------------------------------------------------------------------------------
# The file
# ------------------------------------------------------------------------------------------


def next_version(root: Path, now: datetime | None) -> str:
    """Now as a UTC ``YYYYMMDDHHMMSS`` version, or one second after the newest migration
    when that one is dated later (hand-numbered versions run ahead of the clock)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    existing = [migrations.migration_version(p) for p in migrations.migration_files(root)]
    if existing:
        try:
            newest = datetime.strptime(max(existing), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        except ValueError as exc:
            raise migrations.SchemaError(
                f"the newest migration's version {max(existing)!r} is not YYYYMMDDHHMMSS"
            ) from exc
        moment = max(moment, newest + timedelta(seconds=1))
    return moment.strftime("%Y%m%d%H%M%S")


def _render(name: str, passes: list[list[str]], unsafe: list[str]) -> str:
    lines = [HEADER.format(name=name).rstrip("\n")]
    if unsafe:
        lines.append("-- Unsafe statements (drops; check that no data is lost):")
        lines += [f"--   {statement}" for statement in unsafe]
    else:
        lines.append("-- Unsafe statements (drops): none.")
    body = []
    for number, part in enumerate(passes, start=1):
        if number > 1:
            body.append(f"-- Pass {number}: what pass {number - 1} left different.")
        body += part
    return "\n".join(lines) + "\n\n" + "\n\n".join(body) + "\n"


def _unsafe(statements: list[str]) -> list[str]:
    """The first line of each statement that drops something; a constraint the draft adds
    again (foreign keys of a changed table) is marked so."""
    unsafe = []
    for statement in statements:
        if not _DROP.search(statement):
            continue
        line = statement.strip().splitlines()[0]
        dropped = _DROP_CONSTRAINT.match(line)
        if dropped and any(
            s.startswith(f"{dropped['table']} add constraint {dropped['name']} ")
            for s in statements
        ):
            line += "  (added again below)"
        unsafe.append(line)
    return unsafe


def _dump_diff(actual: str, expected: str) -> list[str]:
    """Unified diff lines from A plus the draft to B; empty when equal."""
    if actual == expected:
        return []
    diff = difflib.unified_diff(
        actual.splitlines(), expected.splitlines(), "A+draft", "sql/schema", lineterm="", n=1
    )
    return list(diff)


__all__ = ["Draft", "acl_diff", "draft_migration", "next_version", "schema_diff"]
