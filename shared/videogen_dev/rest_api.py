"""A local PostgREST at ``/rest/v1``, for the real clients (supabase-js's postgrest-js,
supabase-py's postgrest): ``supabase.from(…)`` and ``supabase.rpc(…)`` against the local
stack, decided by the same grants, RLS policies and ``auth.uid()`` as on Supabase.

Each request runs as PostgREST runs it: one transaction (``READ ONLY`` for GET / HEAD and
stable / immutable functions) on a
connection that logged in as ``authenticator`` (sql/platform/00_roles.sql, the role
Supabase's PostgREST logs in as; the password is DATABASE_URL's, as in the local stack),
in which ``set_config`` sets ``role`` to the caller's (anon / authenticated /
service_role, from the JWT or API key, checked by videogen_dev.platform_keys as Storage and
Realtime check them), ``request.jwt.claims`` (and each ``request.jwt.claim.<name>``),
``request.method``, ``request.path``, ``request.headers``, ``request.cookies`` and
``search_path`` (the schema, then config.toml's ``[api] extra_search_path``) and the role's
own settings (``ALTER ROLE … SET``, e.g. anon's statement_timeout). A function may
set ``response.headers`` / ``response.status``, as in PostgREST.

Exposed schemas are config.toml's ``[api] schemas`` that exist (``Accept-Profile`` /
``Content-Profile`` pick one; others get PGRST106); ``max_rows`` caps every read. The
schema cache (relations, columns, primary / unique / foreign keys, functions) is read from
the catalog and read again whenever a cheap fingerprint of the exposed schemas' catalog
rows changes (checked at the start of each request), so migrations and ``make db-reset``
need no restart and no ``NOTIFY pgrst``.

Hand-written: PostgREST is a Haskell server and no Python package serves its protocol.
SQL is composed with psycopg's ``sql.Identifier`` / ``sql.Literal`` only; names of types
(casts) are resolved through the catalog first. What is served and what is refused (with a
PGRST127 error naming it) is listed in the README, "Local PostgREST (`/rest/v1`)".
"""

from __future__ import annotations

import difflib
import json
import logging
import re
import threading
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from videogen.config import get_settings
from videogen_dev import rest_query as q
from videogen_dev.auth_guard import config_path
from videogen_dev.platform_keys import Rejected, identify
from videogen_dev.servicepool import LazyPool

log = logging.getLogger("videogen.rest_api")

DEFAULT_SCHEMAS = ["public", "graphql_public"]  # Supabase's default [api] schemas
DEFAULT_MAX_ROWS = 1000
JSON = "application/json; charset=utf-8"
_CLAIM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
OBJECT = "application/vnd.pgrst.object+json"
Q = sql.SQL


# Errors -----------------------------------------------------------------------------------
class RestError(Exception):
    """An answer in PostgREST's error shape: ``{"code", "details", "hint", "message"}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: str | None = None,
        hint: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.hint, self.headers = details, hint, headers or {}

    def response(self) -> Response:
        body = {
            "code": self.code,
            "details": self.details,
            "hint": self.hint,
            "message": self.message,
        }
        return Response(
            json.dumps(body, separators=(",", ":")), self.status, self.headers, content_type=JSON
        )


def from_query_error(exc: q.QueryError) -> RestError:
    status = {"PGRST127": 501, "PGRST123": 400, "PGRST122": 400}.get(exc.code, 400)
    return RestError(status, exc.code, exc.message, exc.details)


# PostgREST's SQLSTATE → HTTP status (docs: Errors, "HTTP Status Codes").
_STATUS_EXACT = {
    "23503": 409,
    "23505": 409,
    "25006": 405,
    "53400": 500,
    "P0001": 400,
    "42883": 404,
    "42P01": 404,
    "42P17": 500,
}
_STATUS_PREFIX = {
    "08": 503, "09": 500, "0L": 403, "0P": 403, "25": 500, "28": 403, "2D": 500, "38": 500,
    "39": 500, "3B": 500, "40": 500, "53": 503, "54": 500, "55": 500, "57": 500, "58": 500,
    "F0": 500, "HV": 500, "P0": 500, "XX": 500,
}  # fmt: skip


def status_of(sqlstate: str, role: str) -> int:
    """The HTTP status PostgREST answers a Postgres error with."""
    if sqlstate == "42501":
        return 401 if role == "anon" else 403
    if sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])
    if sqlstate in _STATUS_EXACT:
        return _STATUS_EXACT[sqlstate]
    return _STATUS_PREFIX.get(sqlstate[:2], 400)


def database_error(exc: Any, role: str) -> RestError:
    """A Postgres error, forwarded as PostgREST forwards it (``RAISE SQLSTATE 'PGRST'``
    with a JSON message and detail sets the status, code and headers itself)."""
    diag = exc.diag
    state = exc.sqlstate or "XX000"
    message = diag.message_primary or str(exc)
    if state == "PGRST":
        try:
            body = json.loads(message)
            extra = json.loads(diag.message_detail or "{}")
            return RestError(
                int(extra.get("status", 400)),
                str(body.get("code", "")),
                str(body.get("message", "")),
                body.get("details"),
                body.get("hint"),
                {str(k): str(v) for k, v in (extra.get("headers") or {}).items()},
            )
        except (ValueError, TypeError, AttributeError):
            return RestError(
                500, "PGRST121", "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error"
            )
    status = status_of(state, role)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    return RestError(status, state, message, diag.message_detail, diag.message_hint, headers)


def unserved(feature: str) -> RestError:
    return from_query_error(q.unserved(feature))


# Settings ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ApiSettings:
    """config.toml's ``[api]``: what the Supabase CLI hands PostgREST."""

    schemas: tuple[str, ...]
    extra_search_path: tuple[str, ...]
    max_rows: int


def api_settings() -> ApiSettings:
    path = config_path()
    api: dict[str, Any] = {}
    if path is not None:
        api = tomllib.loads(path.read_text()).get("api") or {}
    return ApiSettings(
        tuple(api.get("schemas") or DEFAULT_SCHEMAS),
        tuple(api.get("extra_search_path") or ["public", "extensions"]),
        int(api.get("max_rows") or DEFAULT_MAX_ROWS),
    )


def authenticator_dsn(dsn: str | None = None) -> str:
    """DATABASE_URL with the ``authenticator`` login, as PostgREST connects."""
    params = conninfo_to_dict(dsn or get_settings().database_url)
    params["user"] = "authenticator"
    return make_conninfo("", **{k: v for k, v in params.items() if v is not None})


# Schema cache -----------------------------------------------------------------------------
@dataclass
class Relation:
    schema: str
    name: str
    kind: str  # r v m f p
    columns: dict[str, str] = field(default_factory=dict)  # name → type
    defaults: dict[str, str] = field(default_factory=dict)  # name → default expression
    pk: list[str] = field(default_factory=list)
    uniques: list[list[str]] = field(default_factory=list)


Pair = tuple[str, str]
# A many-to-many link: (junction table, [(its column, parent column)],
# [(its column, target column)]).
Via = tuple[str, list[Pair], list[Pair]] | None


@dataclass(frozen=True)
class ForeignKey:
    name: str
    schema: str
    table: str
    columns: tuple[str, ...]
    ftable: str
    fcolumns: tuple[str, ...]


@dataclass
class Function:
    schema: str
    name: str
    args: list[tuple[str, str]]  # (name, type) of the input arguments ("" when unnamed)
    required: int  # how many leading arguments have no default
    returns_set: bool
    return_type: str
    kind: str  # "scalar" | "composite" | "void"
    relation: str | None  # the relation whose row type it returns
    columns: list[str]  # the result's columns (composite)
    volatile: bool


FINGERPRINT = """
with ns as (select oid from pg_namespace where nspname = any(%(schemas)s))
select concat_ws(':', current_database(),
  (select string_agg(oid::text, ',' order by oid) from ns),
  (select count(*) || '/' || coalesce(max(xmin::text::bigint), 0)
     from pg_class where relnamespace in (select oid from ns)),
  (select count(*) || '/' || coalesce(max(a.xmin::text::bigint), 0)
     from pg_attribute a join pg_class c on c.oid = a.attrelid
     where c.relnamespace in (select oid from ns)),
  (select count(*) || '/' || coalesce(max(d.xmin::text::bigint), 0)
     from pg_attrdef d join pg_class c on c.oid = d.adrelid
     where c.relnamespace in (select oid from ns)),
  (select count(*) || '/' || coalesce(max(xmin::text::bigint), 0)
     from pg_proc where pronamespace in (select oid from ns)),
  (select count(*) || '/' || coalesce(max(xmin::text::bigint), 0)
     from pg_constraint where connamespace in (select oid from ns)),
  (select count(*) || '/' || coalesce(max(xmin::text::bigint), 0) from pg_db_role_setting))
"""
RELATIONS = """
select n.nspname, c.relname, c.relkind from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where n.nspname = any(%(schemas)s) and c.relkind in ('r', 'v', 'm', 'f', 'p')
"""
COLUMNS = """
select n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
       pg_get_expr(d.adbin, d.adrelid)
from pg_attribute a join pg_class c on c.oid = a.attrelid
join pg_namespace n on n.oid = c.relnamespace
left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
where n.nspname = any(%(schemas)s) and c.relkind in ('r', 'v', 'm', 'f', 'p')
  and a.attnum > 0 and not a.attisdropped
order by n.nspname, c.relname, a.attnum
"""
CONSTRAINTS = """
select con.contype, con.conname, n.nspname, c.relname,
  array(select a.attname from unnest(con.conkey) with ordinality k(num, i)
        join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.num order by k.i),
  fn.nspname, fc.relname,
  array(select a.attname from unnest(con.confkey) with ordinality k(num, i)
        join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.num order by k.i)
from pg_constraint con
join pg_class c on c.oid = con.conrelid join pg_namespace n on n.oid = c.relnamespace
left join pg_class fc on fc.oid = con.confrelid
left join pg_namespace fn on fn.oid = fc.relnamespace
where con.contype in ('p', 'u', 'f') and n.nspname = any(%(schemas)s)
order by con.conname
"""
# The impersonated roles' own settings (``ALTER ROLE … SET``: statement_timeout for anon and
# authenticated), this database's over the cluster-wide ones, as PostgREST applies them.
ROLE_SETTINGS = """
select r.rolname, s.setconfig from pg_db_role_setting s join pg_roles r on r.oid = s.setrole
where s.setdatabase in (0, (select oid from pg_database where datname = current_database()))
  and r.rolname = any(%(roles)s)
order by r.rolname, s.setdatabase
"""
IMPERSONATED = ["anon", "authenticated", "service_role"]
FUNCTIONS = """
select n.nspname, p.proname, p.proretset, p.provolatile,
  coalesce(p.proargnames, '{}'::text[]), coalesce(p.proargmodes::text[], '{}'::text[]),
  array(select format_type(t, null) from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]))
        with ordinality u(t, i) order by u.i),
  p.pronargs, p.pronargdefaults, format_type(p.prorettype, null), t.typtype,
  rn.nspname, rc.relname, t.typname
from pg_proc p join pg_namespace n on n.oid = p.pronamespace
join pg_type t on t.oid = p.prorettype
left join pg_class rc on rc.oid = t.typrelid
left join pg_namespace rn on rn.oid = rc.relnamespace
where n.nspname = any(%(schemas)s) and p.prokind = 'f'
"""


@dataclass
class SchemaCache:
    fingerprint: str = ""
    schemas: list[str] = field(default_factory=list)
    relations: dict[tuple[str, str], Relation] = field(default_factory=dict)
    fks: list[ForeignKey] = field(default_factory=list)
    functions: dict[tuple[str, str], list[Function]] = field(default_factory=dict)
    role_settings: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, conn: Any, wanted: Iterable[str], fingerprint: str) -> SchemaCache:
        conn.execute("select set_config('search_path', '', true)")  # qualified type names
        schemas = [
            r[0]
            for r in conn.execute(
                "select nspname from pg_namespace where nspname = any(%s)", (list(wanted),)
            )
        ]
        args = {"schemas": schemas}
        cache = cls(fingerprint, [s for s in wanted if s in schemas])
        for schema, name, kind in conn.execute(RELATIONS, args):
            cache.relations[(schema, name)] = Relation(schema, name, kind)
        for schema, name, col, typ, default in conn.execute(COLUMNS, args):
            rel = cache.relations[(schema, name)]
            rel.columns[col] = typ
            if default is not None:
                rel.defaults[col] = default
        for kind, conname, schema, table, cols, fschema, ftable, fcols in conn.execute(
            CONSTRAINTS, args
        ):
            owner = cache.relations.get((schema, table))
            if owner is None:
                continue
            rel = owner
            if kind == "p":
                rel.pk = list(cols)
            elif kind == "u":
                rel.uniques.append(list(cols))
            elif fschema == schema:  # embedding follows keys within one schema
                cache.fks.append(
                    ForeignKey(conname, schema, table, tuple(cols), ftable, tuple(fcols))
                )
        for role, config in conn.execute(ROLE_SETTINGS, {"roles": IMPERSONATED}):
            for item in config or []:
                name, _, value = item.partition("=")
                if _SETTING_NAME.fullmatch(name):
                    cache.role_settings.setdefault(role, {})[name] = value
        for row in conn.execute(FUNCTIONS, args):
            fn = _function(row, cache)
            cache.functions.setdefault((fn.schema, fn.name), []).append(fn)
        return cache


def _function(row: tuple[Any, ...], cache: SchemaCache) -> Function:
    (schema, name, retset, volatility, names, modes, types, nargs, ndefaults, rettype,
     _typtype, rschema, rname, typname) = row  # fmt: skip
    modes = list(modes) or ["i"] * len(types)
    names = list(names) + [""] * (len(types) - len(names))
    args = [(names[i], types[i]) for i, m in enumerate(modes) if m in ("i", "b", "v")]
    outs = [names[i] for i, m in enumerate(modes) if m in ("o", "b", "t")]
    relation = None
    columns: list[str] = []
    if rname is not None:
        kind, relation = "composite", rname
        rel = cache.relations.get((rschema, rname))
        columns = list(rel.columns) if rel else []
    elif outs and typname == "record":
        kind, columns = "composite", outs
    elif typname == "void":
        kind = "void"
    else:
        kind = "scalar"
    return Function(
        schema, name, args, nargs - ndefaults, retset, rettype, kind, relation, columns,
        volatility == "v",
    )  # fmt: skip


# Requests ---------------------------------------------------------------------------------
@dataclass
class Node:
    """What the query string says about one level of the select tree: its filters, logic
    trees, order and range (``jobs.status=eq.x`` is a filter on the ``jobs`` embed)."""

    filters: list[q.Filter] = field(default_factory=list)
    logic: list[q.Logic] = field(default_factory=list)
    order: list[q.OrderTerm] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None
    embeds: set[str] = field(default_factory=set)  # the keys of this level's embeds


@dataclass
class Caller:
    role: str
    claims: dict[str, Any]


def authenticate(request: Request) -> Caller:
    """The caller: a user's access token → ``authenticated``; the secret / service_role key
    → ``service_role``; the publishable / anon key → ``anon``. Wrong credentials get
    PostgREST's JWT errors (PGRST301 invalid, PGRST303 expired); none at all PGRST302."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" and token.strip() else None
    try:
        identity = identify(bearer=bearer, apikey=request.headers.get("apikey", "").strip())
    except Rejected as exc:
        if exc.reason == "missing":
            raise RestError(
                401,
                "PGRST302",
                "No API key found in request",
                hint="Send the project's publishable (anon) key in the apikey header.",
                headers={"WWW-Authenticate": "Bearer"},
            ) from exc
        code = "PGRST303" if exc.reason == "expired" else "PGRST301"
        message = "JWT expired" if exc.reason == "expired" else exc.message
        raise RestError(
            401,
            code,
            message,
            headers={
                "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{message}"'
            },
        ) from exc
    claims = dict(identity.claims)
    claims.setdefault("role", identity.role)
    return Caller(identity.role, claims)


class Builder:
    """Turns one parsed request into SQL compositions against the schema cache."""

    def __init__(self, cache: SchemaCache, schema: str, conn: Any) -> None:
        self.cache, self.schema, self.conn = cache, schema, conn
        self.counter = 0
        self.types: dict[str, sql.Composable] = {}

    # Names --------------------------------------------------------------------------------
    def relation(self, name: str) -> Relation:
        rel = self.cache.relations.get((self.schema, name))
        if rel is None:
            near = _nearest(name, [n for (s, n) in self.cache.relations if s == self.schema])
            raise RestError(
                404,
                "PGRST205",
                f"Could not find the table '{self.schema}.{name}' in the schema cache",
                hint=f"Perhaps you meant the table '{self.schema}.{near}'" if near else None,
            )
        return rel

    def table(self, name: str) -> sql.Composable:
        return sql.Identifier(self.schema, name)

    def alias(self, base: str) -> str:
        self.counter += 1
        return f"{base}_{self.counter}"

    def cast_type(self, name: str) -> sql.Composable:
        """A type named by the client, resolved through the catalog (never spliced)."""
        if name not in self.types:
            row = self.conn.execute(
                "select n.nspname, t.typname from pg_type t join pg_namespace n"
                " on n.oid = t.typnamespace where t.oid = to_regtype(%s)",
                (name,),
            ).fetchone()
            if row is None:
                raise RestError(
                    400, "42704", f'type "{name}" does not exist'
                )  # Postgres's own answer
            self.types[name] = sql.Identifier(row[0], row[1])
        return self.types[name]

    # Expressions --------------------------------------------------------------------------
    @staticmethod
    def column(alias: str, fld: q.Field) -> sql.Composable:
        expr: sql.Composable = sql.Identifier(alias, fld.name)
        for arrow, key in fld.path:
            expr = Q("({} {} {})").format(expr, Q(arrow), sql.Literal(key))
        return expr

    def condition(self, alias: str, flt: q.Filter) -> sql.Composable:
        lhs = self.column(alias, flt.field)
        op, value = flt.op, flt.value
        if op == "in":
            assert isinstance(value, list)
            if not value:
                cond: sql.Composable = Q("false")
            else:
                cond = Q("{} IN ({})").format(lhs, Q(", ").join(sql.Literal(v) for v in value))
        elif op == "is":
            word = {"null": "NULL", "not_null": "NOT NULL", "true": "TRUE", "false": "FALSE",
                    "unknown": "UNKNOWN"}[str(value).lower()]  # fmt: skip
            cond = Q("{} IS " + word).format(lhs)
        else:
            assert isinstance(value, str)
            if op in ("like", "ilike"):
                value = value.replace("*", "%")
            cond = Q("{} " + q.OPERATORS[op] + " {}").format(lhs, sql.Literal(value))
        return Q("NOT ({})").format(cond) if flt.negate else cond

    def logic(self, alias: str, tree: q.Logic, embeds: dict[str, Any]) -> sql.Composable:
        parts = [
            self.logic(alias, c, embeds)
            if isinstance(c, q.Logic)
            else self.filter(alias, c, embeds)
            for c in tree.children
        ]
        joined = Q(" AND " if tree.op == "and" else " OR ").join(parts)
        return Q("NOT ({})" if tree.negate else "({})").format(joined)

    def filter(self, alias: str, flt: q.Filter, embeds: dict[str, Any]) -> sql.Composable:
        """A filter; on an embed's own name (``jobs=is.null``) an (anti-)join."""
        if not flt.field.path and flt.field.name in embeds and flt.op == "is":
            exists = embeds[flt.field.name]
            value = str(flt.value).lower()
            if value not in ("null", "not_null"):
                raise RestError(
                    400,
                    "PGRST120",
                    "An embedded resource can only be filtered using the is.null or "
                    "not.is.null operators.",
                )
            absent = (value == "null") != flt.negate
            return Q("NOT {}" if absent else "{}").format(exists)
        return self.condition(alias, flt)

    def order(self, alias: str, terms: list[q.OrderTerm]) -> sql.Composable:
        if not terms:
            return Q("")
        items = []
        for t in terms:
            text = " DESC" if t.desc else " ASC"
            if t.nulls:
                text += f" NULLS {t.nulls.upper()}"
            items.append(Q("{}" + text).format(self.column(alias, t.field)))
        return Q(" ORDER BY {}").format(Q(", ").join(items))

    @staticmethod
    def page(limit: int | None, offset: int | None) -> sql.Composable:
        out: sql.Composable = Q("")
        if limit is not None:
            out = Q("{} LIMIT {}").format(out, sql.Literal(limit))
        if offset:
            out = Q("{} OFFSET {}").format(out, sql.Literal(offset))
        return out

    # Embedding ----------------------------------------------------------------------------
    def relationship(self, parent: str, embed: q.Embed) -> tuple[str, bool, list[Pair], Via]:
        """(target relation, to-many, [(parent column, target column)], junction) for an
        embed; the junction (many-to-many) is None for a direct foreign key."""
        found: list[tuple[str, bool, list[Pair], ForeignKey, Via]] = []
        target = embed.name
        is_relation = (self.schema, target) in self.cache.relations
        for fk in self.cache.fks:
            if fk.schema != self.schema:
                continue
            pairs_out = list(zip(fk.columns, fk.fcolumns, strict=True))
            if fk.table == parent and (
                (is_relation and fk.ftable == target)
                or (not is_relation and (fk.name == target or fk.columns == (target,)))
            ):
                found.append((fk.ftable, False, pairs_out, fk, None))
            if is_relation and fk.ftable == parent and fk.table == target:
                child = self.cache.relations.get((self.schema, fk.table))
                one = child is not None and (
                    list(fk.columns) == child.pk
                    or any(set(u) == set(fk.columns) for u in child.uniques)
                )
                found.append((fk.table, not one, [(f, c) for c, f in pairs_out], fk, None))
        if is_relation:
            found.extend(self.junctions(parent, target))
        if embed.hint:
            h = embed.hint
            found = [
                f for f in found
                if h == f[3].name or h in f[3].columns or h in f[3].fcolumns
                or (f[4] is not None and h == f[4][0])
            ]  # fmt: skip
        if not found:
            raise RestError(
                400,
                "PGRST200",
                f"Could not find a relationship between '{parent}' and '{target}' in the "
                "schema cache",
                f"Searched for a foreign key relationship between '{parent}' and "
                f"'{target}'{' using the hint ' + repr(embed.hint) if embed.hint else ''} "
                f"in the schema '{self.schema}', but no matches were found.",
                "Embedding follows foreign keys between tables of the exposed schema, and "
                "junction tables (embedding through views is not served locally).",
            )
        if len(found) > 1:
            raise RestError(
                300,
                "PGRST201",
                f"Could not embed because more than one relationship was found for "
                f"'{parent}' and '{target}'",
                json.dumps(
                    [
                        {
                            "cardinality": "one-to-many" if many else "many-to-one",
                            "embedding": f"{parent} with {tgt}",
                            "relationship": fk.name,
                        }
                        for tgt, many, _, fk, _via in found
                    ]
                ),
                f"Try changing '{target}' to one of the following: "
                + ", ".join(f"'{target}!{f[4][0] if f[4] else f[3].name}'" for f in found)
                + ". Find the desired relationship in the 'details' key.",
            )
        tgt, many, pairs, _, via = found[0]
        return tgt, many, pairs, via

    def junctions(
        self, parent: str, target: str
    ) -> list[tuple[str, bool, list[Pair], ForeignKey, Via]]:
        """Many-to-many through a junction table: two of its foreign keys, to ``parent`` and
        to ``target``, whose columns are in its primary key (PostgREST's rule)."""
        out: list[tuple[str, bool, list[Pair], ForeignKey, Via]] = []
        for junction in self.cache.relations.values():
            if junction.schema != self.schema or not junction.pk:
                continue
            keys = [
                fk for fk in self.cache.fks
                if fk.schema == self.schema and fk.table == junction.name
                and set(fk.columns) <= set(junction.pk)
            ]  # fmt: skip
            for to_parent in keys:
                for to_target in keys:
                    if (
                        to_parent is to_target
                        or to_parent.ftable != parent
                        or to_target.ftable != target
                    ):
                        continue
                    via = (
                        junction.name,
                        list(zip(to_parent.columns, to_parent.fcolumns, strict=True)),
                        list(zip(to_target.columns, to_target.fcolumns, strict=True)),
                    )
                    out.append((target, True, [], to_target, via))
        return out

    def select(
        self,
        rel_name: str | None,
        alias: str,
        items: list[q.Item],
        nodes: dict[tuple[str, ...], Node],
        path: tuple[str, ...],
    ) -> tuple[sql.Composable, list[sql.Composable]]:
        """The select list of one level, and the conditions its ``!inner`` embeds and
        embed filters (``jobs=is.null``) add to its WHERE."""
        out: list[sql.Composable] = []
        exists: dict[str, sql.Composable] = {}
        where: list[sql.Composable] = []
        for item in items:
            if isinstance(item, q.Star):
                out.append(Q("{}.*").format(sql.Identifier(alias)))
            elif isinstance(item, q.Column):
                expr = self.column(alias, item.field)
                if item.cast:
                    expr = Q("CAST({} AS {})").format(expr, self.cast_type(item.cast))
                name = item.alias or item.field.default_alias
                out.append(Q("{} AS {}").format(expr, sql.Identifier(name)))
            else:
                if rel_name is None:
                    raise RestError(
                        400,
                        "PGRST200",
                        f"Could not find a relationship for '{item.name}': this function's "
                        "result is not a table's row type",
                    )
                target, many, pairs, via = self.relationship(rel_name, item)
                child = self.alias(target)
                sub_path = (*path, item.key)
                node = nodes.get(sub_path, Node())
                join = [
                    Q("{} = {}").format(sql.Identifier(child, c), sql.Identifier(alias, p))
                    for p, c in pairs
                ]
                if via is not None:  # many-to-many: a junction row links them
                    junction, to_parent, to_child = via
                    link = self.alias(junction)
                    on = [
                        Q("{} = {}").format(sql.Identifier(link, j), sql.Identifier(alias, p))
                        for j, p in to_parent
                    ] + [
                        Q("{} = {}").format(sql.Identifier(link, j), sql.Identifier(child, c))
                        for j, c in to_child
                    ]
                    join.append(
                        Q("EXISTS (SELECT 1 FROM {} AS {} WHERE {})").format(
                            self.table(junction), sql.Identifier(link), Q(" AND ").join(on)
                        )
                    )
                cols, inner_where = self.select(target, child, item.select, nodes, sub_path)
                conds = join + inner_where + self.where(child, node, {})
                cond = Q(" AND ").join(conds)
                body = Q("SELECT {} FROM {} AS {} WHERE {}{}{}").format(
                    cols,
                    self.table(target),
                    sql.Identifier(child),
                    cond,
                    self.order(child, node.order),
                    self.page(node.limit, node.offset),
                )
                if many:
                    expr = Q("COALESCE((SELECT json_agg(_e) FROM ({}) AS _e), '[]'::json)").format(
                        body
                    )
                else:
                    expr = Q("(SELECT row_to_json(_e) FROM ({}) AS _e)").format(body)
                out.append(Q("{} AS {}").format(expr, sql.Identifier(item.key)))
                has = Q("EXISTS (SELECT 1 FROM {} AS {} WHERE {})").format(
                    self.table(target), sql.Identifier(child), cond
                )
                exists[item.key] = has
                if item.inner:
                    where.append(has)
        # Filters on this level's embeds (anti-joins) need the EXISTS built above.
        node = nodes.get(path, Node())
        for flt in node.filters:
            if not flt.field.path and flt.field.name in exists:
                where.append(self.filter(alias, flt, exists))
        self.embed_exists[path] = exists
        if not out:
            out.append(Q("{}.*").format(sql.Identifier(alias)))
        return Q(", ").join(out), where

    embed_exists: dict[tuple[str, ...], dict[str, sql.Composable]]

    def where(
        self, alias: str, node: Node, exists: dict[str, sql.Composable]
    ) -> list[sql.Composable]:
        """A level's own filters and logic trees (filters on embeds are added by select)."""
        conds: list[sql.Composable] = []
        for flt in node.filters:
            if not flt.field.path and flt.field.name in node.embeds:
                continue
            conds.append(self.condition(alias, flt))
        for tree in node.logic:
            conds.append(self.logic(alias, tree, exists))
        return conds


def _nearest(name: str, names: list[str]) -> str | None:
    found = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return found[0] if found else None


def _embed_keys(
    items: list[q.Item], path: tuple[str, ...], out: dict[tuple[str, ...], set[str]]
) -> None:
    keys = out.setdefault(path, set())
    for item in items:
        if isinstance(item, q.Embed):
            keys.add(item.key)
            _embed_keys(item.select, (*path, item.key), out)


# The app ----------------------------------------------------------------------------------
class RestApi:
    """The WSGI app mounted at ``/rest/v1``."""

    def __init__(self, dsn: str | None = None) -> None:
        self._dsn = dsn
        self._pool: LazyPool | None = None
        self._lock = threading.Lock()
        self._cache = SchemaCache()
        self.settings = api_settings()

    def pool(self) -> Any:
        with self._lock:
            if self._pool is None:
                self._pool = LazyPool("videogen-rest", authenticator_dsn(self._dsn))
        return self._pool.get()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        try:
            response = self.handle(request)
        except RestError as exc:
            response = exc.response()
        except q.QueryError as exc:
            response = from_query_error(exc).response()
        except Exception:
            log.exception("rest request failed")
            response = RestError(
                500, "PGRST000", "Internal error in the local PostgREST"
            ).response()
        if request.method == "HEAD":
            response.set_data(b"")
        elif not response.get_data() and "Content-Type" in response.headers:
            del response.headers["Content-Type"]  # no body (204, minimal writes), no type
        response.headers["Access-Control-Allow-Origin"] = _cors_origin()
        response.headers["Access-Control-Expose-Headers"] = (
            "Content-Range, Content-Location, Location, Preference-Applied"
        )
        return response(environ, start_response)

    # Dispatch -----------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        path = request.path.strip("/")
        method = request.method
        if method == "OPTIONS":  # a browser's preflight (Kong answers it on Supabase)
            return Response(
                status=204,
                headers={
                    "Access-Control-Allow-Methods": "GET, HEAD, POST, PATCH, DELETE",
                    "Access-Control-Allow-Headers": request.headers.get(
                        "Access-Control-Request-Headers",
                        "authorization, apikey, content-type, prefer, range, accept-profile, "
                        "content-profile, x-client-info",
                    ),
                    "Access-Control-Max-Age": "3600",
                },
            )
        if not path:
            raise unserved("the OpenAPI description at the root (`GET /rest/v1/`)")
        caller = authenticate(request)
        parts = path.split("/")
        if parts[0] == "rpc" and len(parts) == 2:
            if method not in ("GET", "HEAD", "POST"):
                raise RestError(
                    405, "PGRST101", "Only GET, HEAD and POST are allowed for functions"
                )
            target, is_rpc = parts[1], True
        elif len(parts) == 1:
            target, is_rpc = parts[0], False
            if method == "PUT":
                raise unserved(
                    "PUT (single-row upsert by primary key); use POST with "
                    "`Prefer: resolution=merge-duplicates`"
                )
            if method not in ("GET", "HEAD", "POST", "PATCH", "DELETE"):
                raise RestError(405, "PGRST117", f"Unsupported HTTP method: {method}")
        else:
            raise RestError(404, "PGRST125", f"Invalid path specified in request URL: /{path}")
        write = method not in ("GET", "HEAD")
        schema = self.schema_of(request, write)
        prefs = q.parse_prefer(request.headers.getlist("Prefer"))
        accept = self.accept(request)
        try:
            with self.pool().connection() as conn:
                try:
                    with conn.transaction():
                        if not write:
                            conn.execute("set transaction read only")
                        cache = self.cache(conn)
                        if schema not in cache.schemas:
                            raise self.bad_schema(schema)
                        self.become(conn, cache, caller, request, schema)
                        b = Builder(cache, schema, conn)
                        b.embed_exists = {}
                        if is_rpc:
                            response = self.rpc(b, request, target, prefs, accept)
                        elif method in ("GET", "HEAD"):
                            response = self.read(b, request, target, prefs, accept)
                        elif method == "POST":
                            response = self.insert(b, request, target, prefs, accept)
                        else:
                            response = self.mutate(b, request, target, prefs, accept)
                        self.response_gucs(conn, response)
                except psycopg.Error as exc:
                    if getattr(exc, "sqlstate", None) is None:
                        raise
                    raise database_error(exc, caller.role) from exc
        except psycopg.OperationalError as exc:
            raise RestError(503, "PGRST000", "Could not connect to the database", str(exc)) from exc
        except psycopg.DataError as exc:  # refused by the driver (a NUL in text)
            raise RestError(400, "22P05", str(exc)) from exc
        if prefs.applied:
            response.headers["Preference-Applied"] = ", ".join(prefs.applied)
        return response

    def schema_of(self, request: Request, write: bool) -> str:
        header = "Content-Profile" if write else "Accept-Profile"
        chosen = request.headers.get(header)
        exposed = list(self.settings.schemas)
        if chosen is None:
            return exposed[0]
        if chosen not in exposed:
            raise self.bad_schema(chosen)
        return chosen

    def bad_schema(self, schema: str) -> RestError:
        exposed = [s for s in self.settings.schemas if s in self._cache.schemas] or list(
            self.settings.schemas
        )
        return RestError(
            406,
            "PGRST106",
            f"Invalid schema: {schema}",
            hint=f"Only the following schemas are exposed: {', '.join(exposed)}",
        )

    @staticmethod
    def accept(request: Request) -> str:
        """``json`` or ``object`` (``application/vnd.pgrst.object+json``)."""
        header = request.headers.get("Accept", "").strip()
        if not header:
            return "json"
        for part in header.split(","):
            media = part.split(";")[0].strip().lower()
            if media in ("*/*", "application/json", "application/*"):
                return "json"
            if media in (OBJECT, "application/vnd.pgrst.object"):
                return "object"
            if media == "application/vnd.pgrst.array+json":
                return "json"
        served = {
            "text/csv": "CSV output (`Accept: text/csv`)",
            "application/geo+json": "GeoJSON output",
            "application/vnd.pgrst.plan": "EXPLAIN plans (`Accept: application/vnd.pgrst.plan`)",
            "application/vnd.pgrst.plan+json": "EXPLAIN plans (`.explain()`)",
            "application/vnd.pgrst.plan+text": "EXPLAIN plans (`.explain()`)",
            "application/octet-stream": "binary output (`application/octet-stream`)",
            "text/plain": "text output (`text/plain`)",
            "text/xml": "XML output (`text/xml`)",
        }
        first = header.split(",")[0].split(";")[0].strip().lower()
        if first in served:
            raise unserved(served[first])
        raise RestError(406, "PGRST107", f"None of these media types are available: {header}")

    def cache(self, conn: Any) -> SchemaCache:
        """The schema cache, read again when the catalog's fingerprint has changed."""
        wanted = list(self.settings.schemas)
        row = conn.execute(FINGERPRINT, {"schemas": wanted}).fetchone()
        fingerprint = str(row[0])
        if self._cache.fingerprint != fingerprint:
            self._cache = SchemaCache.load(conn, wanted, fingerprint)
            log.info("rest schema cache loaded (%s)", fingerprint)
        return self._cache

    def become(
        self, conn: Any, cache: SchemaCache, caller: Caller, request: Request, schema: str
    ) -> None:
        """PostgREST's per-request settings, all transaction-local."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        settings: list[tuple[str, str]] = [
            ("role", caller.role),
            ("request.jwt.claims", json.dumps(caller.claims)),
            ("request.method", request.method),
            ("request.path", request.path),
            ("request.headers", json.dumps(headers)),
            ("request.cookies", json.dumps(dict(request.cookies))),
        ]
        for key, value in caller.claims.items():
            if not _CLAIM_NAME.fullmatch(key):
                continue  # not a setting name Postgres takes; request.jwt.claims has it
            text = value if isinstance(value, str) else json.dumps(value)
            settings.append((f"request.jwt.claim.{key}", text))
        settings.extend(cache.role_settings.get(caller.role, {}).items())
        search = [schema, *[s for s in self.settings.extra_search_path if s != schema]]
        path = sql.SQL(", ").join(sql.Identifier(s) for s in search).as_string(conn)
        settings.append(("search_path", path))
        statement = Q("select {}").format(
            Q(", ").join(Q("set_config(%s, %s, true)") for _ in settings)
        )
        conn.execute(statement, [x for pair in settings for x in pair])

    @staticmethod
    def response_gucs(conn: Any, response: Response) -> None:
        """``response.headers`` / ``response.status`` set by a function, as PostgREST reads."""
        headers, status = conn.execute(
            "select current_setting('response.headers', true),"
            " current_setting('response.status', true)"
        ).fetchone()
        if headers:
            try:
                for item in json.loads(headers):
                    for k, v in item.items():
                        response.headers[str(k)] = str(v)
            except (ValueError, AttributeError, TypeError) as exc:
                raise RestError(
                    500,
                    "PGRST111",
                    "response.headers guc must be a JSON array "
                    "composed of objects with a single key and a string value",
                ) from exc
        if status:
            if not status.isdigit():
                raise RestError(500, "PGRST112", "response.status guc must be a valid status code")
            response.status_code = int(status)

    # Parsing the query string -------------------------------------------------------------
    @staticmethod
    def nodes(
        args: Any,
        select: list[q.Item],
        skip: set[str] = frozenset(),  # type: ignore[assignment]
    ) -> dict[tuple[str, ...], Node]:
        """Filters, logic trees, order and ranges, by the embed path they apply to."""
        embeds: dict[tuple[str, ...], set[str]] = {}
        _embed_keys(select, (), embeds)
        nodes: dict[tuple[str, ...], Node] = {}
        for key, value in args.items(multi=True):
            if key in skip or key in ("select", "columns", "on_conflict"):
                continue
            parts = q.split_top(key, ".")
            negate = False
            if len(parts) >= 2 and parts[-2] == "not" and parts[-1] in ("and", "or"):
                negate, parts = True, [*parts[:-2], parts[-1]]
            last, path = parts[-1], tuple(parts[:-1])
            if path and path not in embeds:
                shown = ".".join(path)
                raise RestError(
                    400,
                    "PGRST108",
                    f"'{shown}' is not an embedded resource in this request",
                    hint=f"Verify that '{shown}' is included in the 'select' query parameter.",
                )
            node = nodes.setdefault(path, Node())
            if last == "order":
                node.order = q.parse_order(value)
            elif last == "limit":
                node.limit = q.parse_int("limit", value)
            elif last == "offset":
                node.offset = q.parse_int("offset", value)
            elif last in ("and", "or"):
                node.logic.append(q.parse_logic(last, value, negate))
            else:
                node.filters.append(q.parse_filter(last, value))
        for path, keys in embeds.items():
            nodes.setdefault(path, Node()).embeds = keys
        return nodes

    def top_range(self, request: Request, node: Node) -> tuple[int, int | None]:
        """(offset, limit) from ``limit`` / ``offset`` and the ``Range`` header, capped by
        config.toml's ``max_rows``."""
        offset = node.offset or 0
        limit = node.limit
        header = request.headers.get("Range")
        if header and request.headers.get("Range-Unit", "items") == "items":
            m = re.fullmatch(r"\s*(\d+)-(\d*)\s*", header)
            if m:
                lo = int(m.group(1))
                hi = int(m.group(2)) if m.group(2) else None
                if hi is not None and hi < lo:
                    raise RestError(
                        416, "PGRST103", "Requested range not satisfiable",
                        f"The lower boundary ({lo}) must be less than or equal to the upper "
                        f"boundary ({hi}).",
                    )  # fmt: skip
                r_lo, r_hi = lo, hi
                q_lo = offset
                q_hi = offset + limit - 1 if limit is not None else None
                offset = max(r_lo, q_lo)
                his = [h for h in (r_hi, q_hi) if h is not None]
                limit = max(0, min(his) - offset + 1) if his else None
        if limit is None or limit > self.settings.max_rows:
            limit = self.settings.max_rows if limit is None else min(limit, self.settings.max_rows)
        return offset, limit

    # Reading ------------------------------------------------------------------------------
    def read(
        self, b: Builder, request: Request, name: str, prefs: q.Preferences, accept: str
    ) -> Response:
        rel = b.relation(name)
        select = q.parse_select(request.args.get("select", "*"))
        nodes = self.nodes(request.args, select)
        top = nodes.get((), Node())
        offset, limit = self.top_range(request, top)
        source = Q("{} AS {}").format(b.table(rel.name), sql.Identifier(rel.name))
        return self.run_select(
            b, request, rel.name, rel.name, source, select, nodes, prefs, accept, offset, limit
        )

    def run_select(
        self,
        b: Builder,
        request: Request,
        rel_name: str | None,
        alias: str,
        source: sql.Composable,
        select: list[q.Item],
        nodes: dict[tuple[str, ...], Node],
        prefs: q.Preferences,
        accept: str,
        offset: int,
        limit: int | None,
        *,
        status: int = 200,
        ranged: bool = True,
        with_: sql.Composable | None = None,
    ) -> Response:
        top = nodes.get((), Node())
        cols, inner = b.select(rel_name, alias, select, nodes, ())
        conds = inner + b.where(alias, top, b.embed_exists.get((), {}))
        where = Q(" WHERE {}").format(Q(" AND ").join(conds)) if conds else Q("")
        body_query = Q("SELECT {} FROM {}{}{}{}").format(
            cols, source, where, b.order(alias, top.order), b.page(limit, offset)
        )
        total: int | None = None
        if prefs.count and with_ is None:
            total = self.count(b, prefs.count, Q("SELECT 1 FROM {}{}").format(source, where))
            prefs.applied.append(f"count={prefs.count}")
        body, rows, first = b.conn.execute(
            Q(
                "{}SELECT coalesce(json_agg(_r), '[]'::json)::text, count(*),"
                " (json_agg(_r) -> 0)::text FROM ({}) AS _r"
            ).format(with_ or Q(""), body_query)
        ).fetchone()
        headers: dict[str, str] = {}
        if ranged:
            status, headers["Content-Range"] = range_status(offset, rows, total, status)
        if accept == "object":
            return single(first, rows, headers, status)
        return Response(body, status, headers, content_type=JSON)

    def count(self, b: Builder, kind: str, query: sql.Composable) -> int:
        if kind == "exact":
            row = b.conn.execute(Q("SELECT count(*) FROM ({}) AS _c").format(query)).fetchone()
            return int(row[0])
        plan = b.conn.execute(Q("EXPLAIN (FORMAT JSON) {}").format(query)).fetchone()[0]
        planned = int(plan[0]["Plan"]["Plan Rows"])
        if kind == "estimated" and planned <= self.settings.max_rows:
            return self.count(b, "exact", query)
        return planned

    # Writing ------------------------------------------------------------------------------
    @staticmethod
    def body(request: Request) -> Any:
        ctype = (request.mimetype or "application/json").lower()
        if ctype not in ("application/json", "application/vnd.pgrst.object+json"):
            if ctype in ("text/csv", "application/x-www-form-urlencoded", "text/plain",
                         "application/octet-stream"):  # fmt: skip
                raise unserved(f"request bodies of type {ctype}")
            raise RestError(415, "PGRST107", f"The request's Content-Type is not accepted: {ctype}")
        raw = request.get_data()
        try:
            return json.loads(raw) if raw.strip() else None
        except ValueError as exc:
            raise RestError(400, "PGRST102", "Empty or invalid json", str(exc)) from exc

    @staticmethod
    def check_columns(rel: Relation, names: Iterable[str]) -> None:
        for name in names:
            if name not in rel.columns:
                raise RestError(
                    400,
                    "PGRST204",
                    f"Could not find the '{name}' column of '{rel.name}' in the schema cache",
                )

    def returning(
        self,
        b: Builder,
        request: Request,
        rel: Relation,
        statement: sql.Composable,
        prefs: q.Preferences,
        accept: str,
        status: int,
    ) -> Response:
        """Run a mutation: its representation (select, embeds) or just its row count."""
        ret = prefs.ret or "minimal"
        if prefs.ret:
            prefs.applied.append(f"return={prefs.ret}")
        if ret == "representation" or accept == "object":
            select = q.parse_select(request.args.get("select", "*"))
            nodes = self.nodes(request.args, select)
            nodes = {p: n for p, n in nodes.items() if p}  # top-level filters chose the rows
            nodes[()] = Node()
            with_ = Q("WITH pgrst_source AS ({} RETURNING {}.*) ").format(
                statement, sql.Identifier(rel.name)
            )
            source = Q("pgrst_source AS {}").format(sql.Identifier(rel.name))
            if ret != "representation":
                # Accept object without representation: only the cardinality is checked.
                n = b.conn.execute(
                    Q(
                        "WITH pgrst_source AS ({} RETURNING 1) SELECT count(*) FROM pgrst_source"
                    ).format(statement)
                ).fetchone()[0]
                if n != 1:
                    raise single_error(n)
                return Response(
                    status=204 if status == 200 else status,
                    headers={"Content-Range": f"*/{n}" if prefs.count else "*/*"},
                )
            response = self.run_select(
                b, request, rel.name, rel.name, source, select, nodes, prefs, accept, 0, None,
                status=status, ranged=False, with_=with_,
            )  # fmt: skip
            if prefs.count:
                prefs.applied.append(f"count={prefs.count}")
            n = len(json.loads(response.get_data() or b"[]")) if accept != "object" else 1
            response.headers["Content-Range"] = self.mutation_range(n, prefs)
            return response
        headers = {}
        if ret == "headers-only" and status == 201 and rel.pk:
            # The inserted row's address, by primary key, as PostgREST's Location.
            keys = Q(", ").join(sql.Identifier(rel.name, c) for c in rel.pk)
            rows = b.conn.execute(
                Q(
                    "WITH pgrst_source AS ({} RETURNING {}) "
                    "SELECT coalesce(json_agg(pgrst_source), '[]'::json) FROM pgrst_source"
                ).format(statement, keys)
            ).fetchone()[0]
            n = len(rows)
            if n == 1:
                query = "&".join(f"{quote(c)}=eq.{quote(_text(rows[0][c]))}" for c in rel.pk)
                headers["Location"] = f"/{quote(rel.name)}?{query}"
        else:
            n = b.conn.execute(statement).rowcount
        headers["Content-Range"] = self.mutation_range(n, prefs)
        if prefs.count:
            prefs.applied.append(f"count={prefs.count}")
        return Response(status=204 if status == 200 else status, headers=headers)

    @staticmethod
    def mutation_range(n: int, prefs: q.Preferences) -> str:
        if n == 0:
            return f"*/{n if prefs.count else '*'}"
        return f"0-{n - 1}/{n if prefs.count else '*'}"

    def insert(
        self, b: Builder, request: Request, name: str, prefs: q.Preferences, accept: str
    ) -> Response:
        rel = b.relation(name)
        payload = self.body(request)
        rows = payload if isinstance(payload, list) else [payload if payload is not None else {}]
        if not all(isinstance(r, dict) for r in rows):
            raise RestError(
                400,
                "PGRST102",
                "All object keys must match",
                "The body must be a JSON object or an array of objects.",
            )
        if "columns" in request.args:
            columns = q.parse_columns(request.args["columns"])
        else:
            columns = list(rows[0]) if rows else []
            keys = set(columns)
            if any(set(r) != keys for r in rows):
                raise RestError(400, "PGRST102", "All object keys must match")
        self.check_columns(rel, columns)
        table = b.table(rel.name)
        defaults = prefs.missing == "default"
        if prefs.missing:
            prefs.applied.append(f"missing={prefs.missing}")
        if not rows:
            statement = Q("INSERT INTO {} AS {} SELECT * FROM {} WHERE false").format(
                table, sql.Identifier(rel.name), table
            )
        elif not columns:
            statement = Q("INSERT INTO {} AS {} DEFAULT VALUES").format(
                table, sql.Identifier(rel.name)
            )
            if len(rows) > 1:
                raise unserved("inserting several rows of defaults only")
        else:
            picks = []
            for col in columns:
                ref = Q("_src.{}").format(sql.Identifier(col))
                if defaults and col in rel.defaults:
                    # the default is the catalog's expression text, not client input
                    ref = Q("CASE WHEN _src_json ? {} THEN {} ELSE {} END").format(
                        sql.Literal(col), ref, Q(rel.defaults[col])
                    )
                picks.append(ref)
            source = Q(
                "SELECT {} FROM (SELECT value AS _src_json, (json_populate_record(null::{}, "
                "value::json)).* FROM jsonb_array_elements({}::jsonb)) AS _src"
            ).format(Q(", ").join(picks), table, sql.Literal(json.dumps(rows)))
            statement = Q("INSERT INTO {} AS {} ({}) {}").format(
                table, sql.Identifier(rel.name),
                Q(", ").join(sql.Identifier(c) for c in columns), source,
            )  # fmt: skip
        if prefs.resolution:
            prefs.applied.append(f"resolution={prefs.resolution}")
            target = (
                q.parse_columns(request.args["on_conflict"])
                if "on_conflict" in request.args
                else rel.pk
            )
            self.check_columns(rel, target)
            if not target:
                raise RestError(
                    400, "PGRST100", "on_conflict is required: the table has no primary key"
                )
            conflict = Q(" ON CONFLICT ({})").format(
                Q(", ").join(sql.Identifier(c) for c in target)
            )
            if prefs.resolution == "ignore-duplicates":
                statement = Q("{}{} DO NOTHING").format(statement, conflict)
            else:
                sets = [
                    Q("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c))
                    for c in columns
                ]
                action = (
                    Q(" DO UPDATE SET {}").format(Q(", ").join(sets)) if sets else Q(" DO NOTHING")
                )
                statement = Q("{}{}{}").format(statement, conflict, action)
        elif "on_conflict" in request.args:
            pass  # PostgREST ignores on_conflict without a resolution preference
        return self.returning(b, request, rel, statement, prefs, accept, 201)

    def mutate(
        self, b: Builder, request: Request, name: str, prefs: q.Preferences, accept: str
    ) -> Response:
        rel = b.relation(name)
        select = q.parse_select(request.args.get("select", "*"))
        nodes = self.nodes(request.args, select)
        top = nodes.get((), Node())
        if top.limit is not None or top.offset is not None or top.order:
            raise unserved("limit / offset / order on PATCH and DELETE")
        alias = sql.Identifier(rel.name)
        conds = b.where(rel.name, top, {})
        where = Q(" WHERE {}").format(Q(" AND ").join(conds)) if conds else Q("")
        table = b.table(rel.name)
        if request.method == "DELETE":
            statement = Q("DELETE FROM {} AS {}{}").format(table, alias, where)
        else:
            payload = self.body(request)
            if isinstance(payload, list):
                raise unserved("bulk PATCH with a JSON array body")
            if not isinstance(payload, dict):
                raise RestError(400, "PGRST102", "Empty or invalid json")
            columns = list(payload)
            self.check_columns(rel, columns)
            if not columns:
                # PostgREST: an empty object updates nothing and answers as if it did.
                conds2 = [*conds, Q("false")]
                statement = Q("UPDATE {} AS {} SET {} = {} WHERE {}").format(
                    table, alias, sql.Identifier(next(iter(rel.columns))),
                    sql.Identifier(rel.name, next(iter(rel.columns))), Q(" AND ").join(conds2),
                )  # fmt: skip
            else:
                sets = [
                    Q("{} = _src.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in columns
                ]
                statement = Q(
                    "UPDATE {} AS {} SET {} FROM (SELECT * FROM"
                    " json_populate_record(null::{}, {}::json)) AS _src{}"
                ).format(
                    table, alias, Q(", ").join(sets), table, sql.Literal(json.dumps(payload)), where
                )
        return self.returning(b, request, rel, statement, prefs, accept, 200)

    # Functions ----------------------------------------------------------------------------
    def rpc(
        self, b: Builder, request: Request, name: str, prefs: q.Preferences, accept: str
    ) -> Response:
        overloads = b.cache.functions.get((b.schema, name), [])
        if request.method == "POST":
            payload = self.body(request)
            given: dict[str, Any] = payload if isinstance(payload, dict) else {}
            raw_body = payload
            filter_args = request.args
        else:
            # Arguments: the function's parameter names, and any other key whose value is no
            # filter (so an unknown argument is PGRST202, as in PostgREST).
            names = {a for fn in overloads for a, _ in fn.args}
            given = {
                k: v
                for k, v in request.args.items()
                if k in names
                or (k not in q.RESERVED and "." not in k and not _FILTER_VALUE.match(v))
            }
            raw_body = None
            filter_args = _without(request.args, set(given))
        fn, single_json = self.choose(b, name, overloads, given, raw_body, request.method)
        # PostgREST's access mode: GET / HEAD and stable or immutable functions run read
        # only (a write inside fails with 25006, 405); a volatile one by POST reads and writes.
        if not fn.volatile:
            b.conn.execute("set transaction read only")
        call = sql.Identifier(fn.schema, fn.name)
        args_from: sql.Composable = Q("")
        if single_json:
            invoke = Q("{}({})").format(call, sql.Literal(json.dumps(raw_body)))
        elif fn.args and given:
            used = [(a, t) for a, t in fn.args if a in given]
            invoke = Q("{}({})").format(
                call,
                Q(", ").join(
                    Q("{} := _args.{}").format(sql.Identifier(a), sql.Identifier(a))
                    for a, _ in used
                ),
            )
            # argument types come from the catalog (format_type), not from the client
            args_from = Q("json_to_record({}::json) AS _args({}), ").format(
                sql.Literal(json.dumps(given)),
                Q(", ").join(Q("{} {}").format(sql.Identifier(a), Q(t)) for a, t in used),
            )
        else:
            invoke = Q("{}()").format(call)
        if fn.kind == "composite" or fn.returns_set:
            select = q.parse_select(filter_args.get("select", "*"))
            nodes = self.nodes(filter_args, select)
            top = nodes.get((), Node())
            if fn.kind == "composite":
                source = Q("{}LATERAL {} AS {}").format(args_from, invoke, sql.Identifier(fn.name))
            else:
                source = Q("{}LATERAL {} AS {}({})").format(
                    args_from, invoke, sql.Identifier(fn.name), sql.Identifier(fn.name)
                )
            if not fn.returns_set:
                # One composite value: an object (PostgREST's answer for a non-set row type).
                response = self.run_select(
                    b, request, fn.relation, fn.name, source, select, nodes, prefs, "object",
                    0, None, ranged=False,
                )  # fmt: skip
                if accept != "object":
                    response.content_type = JSON
                return response
            offset, limit = self.top_range(request, top)
            if fn.kind == "scalar":
                if any(not isinstance(i, q.Star) for i in select):
                    raise RestError(400, "PGRST100", "a set of scalars has no columns to select")
                select = [q.Column(q.Field(fn.name))]
                body = self.run_select(
                    b, request, None, fn.name, source, select, nodes, prefs, accept, offset, limit
                )
                # [{"fn": v}, …] → [v, …] (one object: v), as PostgREST answers scalars
                rows = json.loads(body.get_data())
                values = rows[fn.name] if accept == "object" else [r[fn.name] for r in rows]
                body.set_data(json.dumps(values))
                return body
            return self.run_select(
                b, request, fn.relation, fn.name, source, select, nodes, prefs, accept,
                offset, limit,
            )  # fmt: skip
        if any(k for k in filter_args if k not in ("select",)):
            raise RestError(
                400,
                "PGRST100",
                "Filters and order apply to set-returning functions only; "
                f"{fn.name} returns {fn.return_type}",
            )
        if fn.kind == "void":
            b.conn.execute(Q("SELECT {} FROM {}(SELECT 1) AS _one").format(invoke, args_from))
            return Response(status=204)
        row = b.conn.execute(
            Q("SELECT to_json({})::text FROM {}(SELECT 1) AS _one").format(invoke, args_from)
        ).fetchone()
        return Response(row[0] if row[0] is not None else "null", 200, content_type=JSON)

    @staticmethod
    def choose(
        b: Builder,
        name: str,
        overloads: list[Function],
        given: dict[str, Any],
        raw_body: Any,
        method: str,
    ) -> tuple[Function, bool]:
        """The overload the named arguments call (or the one taking a single unnamed
        json / jsonb argument, given the whole body)."""
        keys = set(given)
        fits = []
        for fn in overloads:
            names = [a for a, _ in fn.args]
            required = set(names[: fn.required])
            if keys <= set(names) and required <= keys and "" not in names[: fn.required]:
                fits.append((fn, False))
        if not fits and method == "POST":
            for fn in overloads:
                if len(fn.args) == 1 and fn.args[0][0] == "" and fn.args[0][1] in ("json", "jsonb"):
                    fits.append((fn, True))
        if len(fits) == 1:
            return fits[0]
        shown = ", ".join(sorted(keys))
        if not fits:
            near = _nearest(name, [n for (s, n) in b.cache.functions if s == b.schema])
            with_args = f"with parameters {shown}" if keys else "without parameters"
            raise RestError(
                404,
                "PGRST202",
                f"Could not find the function {b.schema}.{name}({shown}) in the schema cache",
                f"Searched for the function {b.schema}.{name} {with_args} or with a single "
                "unnamed json/jsonb parameter, but no matches were found in the schema cache.",
                f"Perhaps you meant to call the function {b.schema}.{near}" if near else None,
            )
        raise RestError(
            300,
            "PGRST203",
            "Could not choose the best candidate function between: "
            + ", ".join(
                f"{b.schema}.{fn.name}({', '.join(a + ' => ' + t for a, t in fn.args)})"
                for fn, _ in fits
            ),
            hint="Try renaming the parameters or the function itself in the database so "
            "function overloading can be resolved",
        )


def _text(value: Any) -> str:
    """A JSON value as PostgREST writes it in a URL (strings bare, others as JSON)."""
    return value if isinstance(value, str) else json.dumps(value)


_FILTER_VALUE = re.compile(r"^(not\.)?[a-z]+(\([^)]*\))?\.")


def _cors_origin() -> str:
    return get_settings().cors_allow_origin


def _without(args: Any, names: set[str]) -> Any:
    return MultiDict([(k, v) for k, v in args.items(multi=True) if k not in names])


def range_status(offset: int, rows: int, total: int | None, status: int) -> tuple[int, str]:
    """PostgREST's status and ``Content-Range`` for a read of ``rows`` rows at ``offset``."""
    upper = offset + rows - 1
    shown_total = "*" if total is None else str(total)
    content_range = f"*/{shown_total}" if rows == 0 else f"{offset}-{upper}/{shown_total}"
    if total is not None:
        if offset > total:
            raise RestError(
                416,
                "PGRST103",
                "Requested range not satisfiable",
                f"An offset of {offset} was requested, but there are only {total} rows.",
                headers={"Content-Range": f"*/{total}"},
            )
        if 1 + upper - offset < total and status == 200:
            status = 206
    return status, content_range


def single_error(rows: int) -> RestError:
    return RestError(
        406,
        "PGRST116",
        "Cannot coerce the result to a single JSON object",
        f"The result contains {rows} rows",
    )


def single(first: str | None, rows: int, headers: dict[str, str], status: int) -> Response:
    """``Accept: application/vnd.pgrst.object+json``: exactly one row, as an object."""
    if rows != 1 or first is None:
        raise single_error(rows)
    return Response(
        first, 200 if status == 206 else status, headers, content_type=OBJECT + "; charset=utf-8"
    )


def create_app(dsn: str | None = None) -> RestApi:
    """The local PostgREST, for the dev server's ``/rest/v1`` mount."""
    return RestApi(dsn)
