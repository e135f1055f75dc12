"""Realtime ``postgres_changes`` with row level security, as Supabase Realtime serves them.

It follows Extensions.PostgresCdcRls and the SQL it runs (``realtime.subscription``,
``realtime.apply_rls``, ``realtime.is_visible_through_filters``):

- **subscribe**: each binding ``{event, schema, table, filter}`` of a join matches the
  tables of the ``supabase_realtime`` publication (``*`` and ``like`` patterns, as
  Realtime's subscription query); a binding that matches none, or a filter on a column the
  table lacks or with a value its type refuses, fails the channel's postgres_changes with
  Realtime's ``Unable to subscribe to changes with given parameters…`` system error.
- **filters** (realtime-js's ``filter: "col=op.value"``, several joined by commas):
  ``eq, neq, lt, lte, gt, gte, in``, compared in the column's type; a NULL (or absent)
  column passes, as ``is_visible_through_filters`` says.
- **who sees a change**, per subscriber's role and claims, as ``apply_rls``: a role that
  cannot select the primary key gets the change with ``errors: ["Error 401: Unauthorized"]``
  and no row; columns the role cannot select are left out; with RLS on the table, an
  INSERT / UPDATE reaches a subscriber only if ``select exists(… where pk = …)`` run as its
  role with ``request.jwt.claims`` set (in a rolled-back transaction) finds the row; a
  DELETE is not checked against RLS (it cannot be: the row is gone) and carries only the
  primary key then (every old column with ``replica identity full`` and no RLS).
- **the message**: ``postgres_changes`` with ``{ids, data: {schema, table,
  commit_timestamp, type, columns, record, old_record, errors}}``; realtime-js and
  supabase-py turn it into ``eventType / new / old``.

Not mirrored: Realtime's ``max_record_bytes`` (a row over 1 MB is sent whole here, where
Realtime sends ``Error 413``), the ``not.`` prefix and ``like / ilike / is / match``
filters (refused as unparsable), column selection (``select``).
"""

from __future__ import annotations

import json
import logging
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from videogen_dev.realtime_replication import CHANGES_PUBLICATION, UNCHANGED, Change

log = logging.getLogger("videogen.realtime")

OPS = {"eq": "=", "neq": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">=", "in": "in"}
JSON_OIDS = (114, 3802)  # json, jsonb: their text is parsed, not sent as a string
SUBSCRIBED = "Subscribed to PostgreSQL"
UNABLE = (
    "Unable to subscribe to changes with given parameters. "
    "Please check Realtime is enabled for the given connect parameters: [{}]"
)
FAILED = (
    "Unable to subscribe to changes with given parameters. An exception happened so please "
    "check your connect parameters: [{}]. Exception: {}"
)
UNAUTHORIZED = "Error 401: Unauthorized"
NO_PRIMARY_KEY = "Error 400: Bad Request, no primary key"


class BadParams(ValueError):
    """A binding Realtime could not parse (its message is what the client is told)."""


@dataclass(frozen=True)
class Filter:
    column: str
    op: str
    value: str | tuple[str, ...]


@dataclass(frozen=True)
class Params:
    """One binding as Realtime parses it (parse_subscription_params)."""

    event: str  # * | INSERT | UPDATE | DELETE
    schema: str
    table: str
    filters: tuple[Filter, ...] = ()

    def describe(self) -> str:
        filters = ", ".join(
            f'{{"{f.column}", "{f.op}", "{_text(f.value)}", false}}' for f in self.filters
        )
        return (
            f"event: {self.event}, schema: {self.schema}, table: {self.table}, filters: [{filters}]"
        )


def _text(value: str | tuple[str, ...]) -> str:
    return value if isinstance(value, str) else "{" + ",".join(value) + "}"


def parse_params(binding: dict[str, Any]) -> Params:
    """A join's ``postgres_changes`` entry; BadParams with Realtime's message."""
    event = binding.get("event")
    event = event.upper() if isinstance(event, str) else "*"
    if event not in ("INSERT", "UPDATE", "DELETE"):
        event = "*"
    schema, table, raw = binding.get("schema"), binding.get("table"), binding.get("filter")
    if not isinstance(schema, str) and not isinstance(table, str):
        raise BadParams(
            "No subscription params provided. Please provide at least a `schema` or `table` "
            "to subscribe to"
        )
    schema = schema if isinstance(schema, str) else "public"
    table = table if isinstance(table, str) else "*"
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return Params(event, schema, table)
    if not isinstance(raw, str):
        raise BadParams(f"Error parsing `filter` params: {raw!r}")
    return Params(event, schema, table, tuple(_filter(part) for part in _split(raw.strip())))


def _split(text: str) -> list[str]:
    """Top-level commas separate filters (an ``in.(a,b)`` list keeps its own)."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth <= 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def _filter(part: str) -> Filter:
    column, eq, rest = part.partition("=")
    op, dot, value = rest.partition(".")
    if not eq or not dot or not column or op not in OPS:
        raise BadParams(f"Error parsing `filter` params: {part.split('=')!r}")
    if op == "in":
        inner = value.strip()
        if not (inner.startswith("(") and inner.endswith(")")):
            raise BadParams(f"Error parsing `filter` params: {part.split('=')!r}")
        items = tuple(v.strip().strip('"') for v in inner[1:-1].split(",") if v.strip())
        return Filter(column, op, items)
    return Filter(column, op, value)


def binding_id(binding: dict[str, Any]) -> int:
    """The id Realtime gives a binding (a hash of its params), sent back in the reply."""
    return zlib.crc32(json.dumps(binding, sort_keys=True).encode()) % 2**27


@dataclass(eq=False)
class Subscription:
    """One binding of one channel, and the published tables it matched."""

    id: int
    channel: Any  # realtime_api.Channel: .caller, .topic, .socket
    params: Params
    entities: frozenset[tuple[str, str]] = field(default_factory=frozenset)


def _qualified(schema: str, table: str) -> Any:
    from psycopg import sql

    return sql.Identifier(schema, table)


def _filter_sql(entity: Any, flt: Filter, record: Any) -> tuple[Any, list[Any]]:
    """``coalesce(<record>.col <op> <value as the column's type>, true)`` and its params."""
    from psycopg import sql

    column = sql.Identifier(flt.column)
    typed = sql.SQL("(jsonb_populate_record(null::{}, jsonb_build_object({}::text, {}::text))).{}")
    if flt.op == "in":
        values = sql.SQL("array(select {} from unnest({}::text[]) as v)").format(
            typed.format(entity, sql.Literal(flt.column), sql.SQL("v"), column),
            sql.Placeholder(),
        )
        expr = sql.SQL("coalesce(({}).{} = any({}), true)").format(record, column, values)
        return expr, [list(flt.value)]
    cast = typed.format(entity, sql.Literal(flt.column), sql.Placeholder(), column)
    expr = sql.SQL("coalesce(({}).{} {} {}, true)").format(
        record, column, sql.SQL(OPS[flt.op]), cast
    )
    return expr, [flt.value]


class ChangeHub:
    """The postgres_changes subscriptions of this process, and the dispatch of each change."""

    def __init__(self, pool: Any, become: Callable[[Any, Any, str], None]) -> None:
        self.pool, self._become = pool, become
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []

    # Subscribing --------------------------------------------------------------------------
    def subscribe(
        self, channel: Any, bindings: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], str, str]:
        """Register a join's bindings: (the reply's bindings with ids, status, message)."""
        import psycopg

        reply = [{**b, "id": binding_id(b)} for b in bindings]
        try:
            parsed = [parse_params(b) for b in bindings]
        except BadParams as exc:
            return reply, "error", str(exc)
        subs: list[Subscription] = []
        try:
            with self.pool.get().connection() as conn, conn.transaction(force_rollback=True):
                for answer, params in zip(reply, parsed, strict=True):
                    try:
                        entities = self._resolve(conn, params)
                    except psycopg.Error as exc:
                        if getattr(exc, "sqlstate", None) is None:
                            raise
                        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                        return reply, "error", FAILED.format(params.describe(), message)
                    if not entities:
                        return reply, "error", UNABLE.format(params.describe())
                    subs.append(Subscription(answer["id"], channel, params, entities))
        except psycopg.Error:
            return reply, "error", "Realtime was unable to connect to the project database"
        with self._lock:
            self._subs.extend(subs)
        return reply, "ok", SUBSCRIBED

    @staticmethod
    def _resolve(conn: Any, params: Params) -> frozenset[tuple[str, str]]:
        """The published tables a binding names; its filters checked against each."""
        import psycopg
        from psycopg import sql

        rows = conn.execute(
            "select schemaname, tablename from pg_publication_tables where pubname = %s"
            " and schemaname like (case %s when '*' then '%%' else %s end) escape ''"
            " and tablename like (case %s when '*' then '%%' else %s end) escape ''",
            [CHANGES_PUBLICATION, params.schema, params.schema, params.table, params.table],
        ).fetchall()
        entities = frozenset((str(s), str(t)) for s, t in rows)
        for schema, table in entities:
            entity = _qualified(schema, table)
            for flt in params.filters:
                known = conn.execute(
                    "select 1 from pg_attribute"
                    " where attrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass"
                    " and attname = %s and attnum > 0 and not attisdropped",
                    [schema, table, flt.column],
                ).fetchone()
                if known is None:  # as Realtime's subscription_check_filters trigger says
                    raise psycopg.errors.UndefinedColumn(f"invalid column for filter {flt.column}")
                # The value in the column's type now, as that trigger checks it.
                record = sql.SQL("jsonb_populate_record(null::{}, '{{}}'::jsonb)").format(entity)
                expr, args = _filter_sql(entity, flt, record)
                conn.execute(sql.SQL("select {}").format(expr), args)
        return entities

    def unsubscribe(self, channel: Any) -> None:
        """Drop every binding of a channel (left, closed, or its socket gone)."""
        with self._lock:
            self._subs = [s for s in self._subs if s.channel is not channel]

    # Dispatching --------------------------------------------------------------------------
    def dispatch(self, change: Change) -> None:
        """A committed change, to every subscription allowed to see it (the feed's thread)."""
        import psycopg

        key = (change.relation.namespace, change.relation.name)
        with self._lock:
            subs = [
                s
                for s in self._subs
                if key in s.entities and s.params.event in ("*", change.action)
            ]
        if not subs:
            return
        try:
            with self.pool.get().connection() as conn, conn.transaction(force_rollback=True):
                deliveries = self._decide(conn, change, subs)
        except psycopg.Error as exc:
            log.warning("realtime postgres_changes: %s skipped (%s)", change.action, exc)
            return
        for channel, ids, data in deliveries:
            channel.socket.send_change(channel, {"ids": ids, "data": data})

    def _decide(
        self, conn: Any, change: Change, subs: list[Subscription]
    ) -> list[tuple[Any, list[int], dict[str, Any]]]:
        from psycopg import sql

        rel = change.relation
        entity = _qualified(rel.namespace, rel.name)
        info = conn.execute(
            "select c.relrowsecurity,"
            " array(select a.attname::text from pg_index i join pg_attribute a"
            "   on a.attrelid = i.indrelid and a.attnum = any(i.indkey)"
            "   where i.indrelid = c.oid and i.indisprimary order by a.attnum)"
            " from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = %s and c.relname = %s",
            [rel.namespace, rel.name],
        ).fetchone()
        if info is None:
            return []
        rls, pkey = bool(info[0]), [str(c) for c in info[1]]
        new_text = dict(change.new) if change.new is not None else None
        old_text = dict(change.old) if change.old is not None else None
        if new_text is not None:  # an unchanged TOASTed value comes from the old row
            for name, value in list(new_text.items()):
                if value is UNCHANGED:
                    if old_text is not None and old_text.get(name) is not UNCHANGED:
                        new_text[name] = old_text.get(name)
                    else:
                        del new_text[name]
        new = self._typed(conn, entity, rel, new_text)
        old = self._typed(conn, entity, rel, old_text)
        if change.action == "UPDATE" and old is None and new is not None:
            old = {k: new[k] for k in pkey if k in new}  # the key, as wal2json's identity
        row: dict[str, Any] = (new if change.action != "DELETE" else old) or {}

        # Filters, against the row in its column types (NULL or absent passes).
        filtered = [s for s in subs if s.params.filters]
        passes: dict[int, bool] = {}
        if filtered:
            exprs, args = [], [json.dumps(row)]
            for sub in filtered:
                parts = []
                for flt in sub.params.filters:
                    expr, more = _filter_sql(entity, flt, sql.SQL("r"))
                    parts.append(expr)
                    args.extend(more)
                exprs.append(sql.SQL(" and ").join(parts))
            query = sql.SQL("select {} from jsonb_populate_record(null::{}, %s::jsonb) as r")
            # The record's placeholder is the last in the text: its value goes last too.
            args = [*args[1:], args[0]]
            values = conn.execute(query.format(sql.SQL(", ").join(exprs), entity), args).fetchone()
            passes = {id(sub): bool(v) for sub, v in zip(filtered, values, strict=True)}

        committed = change.committed_at.astimezone(UTC)
        stamp = committed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{committed.microsecond // 1000:03d}Z"
        out: list[tuple[Any, list[int], dict[str, Any]]] = []
        by_role: dict[str, list[Subscription]] = {}
        for sub in subs:
            by_role.setdefault(sub.channel.caller.role, []).append(sub)
        for role, members in by_role.items():
            columns = conn.execute(
                "select a.attname::text, t.typname::text,"
                " has_column_privilege(%s, a.attrelid, a.attname, 'SELECT')"
                " from pg_attribute a join pg_type t on t.oid = a.atttypid"
                " where a.attrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass"
                " and a.attnum > 0 and not a.attisdropped"
                " order by a.attnum",
                [role, rel.namespace, rel.name],
            ).fetchall()
            selectable = {name for name, _type, ok in columns if ok}
            error = None
            if change.action != "DELETE" and not pkey:
                error = NO_PRIMARY_KEY
            elif change.action != "DELETE" and not all(k in selectable for k in pkey):
                error = UNAUTHORIZED
            if error is not None:  # as the poller's records: empty row, no time, the error
                out.extend(self._group(members, _data(rel, change.action, None, [], {}, {}, error)))
                continue
            record = {k: v for k, v in (new or {}).items() if k in selectable}
            if change.action == "DELETE":
                kept = {k: v for k, v in (old or {}).items() if k in selectable}
                old_record = {k: v for k, v in kept.items() if not rls or k in pkey} or None
            else:
                old_record = {k: v for k, v in (old or {}).items() if k in selectable}
            listed = [{"name": n, "type": t} for n, t, ok in columns if ok]
            data = _data(rel, change.action, stamp, listed, record, old_record, None)
            visible = [s for s in members if passes.get(id(s), True)]
            if rls and change.action != "DELETE" and visible:
                visible = self._rls_visible(conn, entity, pkey, row, visible)
            out.extend(self._group(visible, data))
        return out

    def _rls_visible(
        self,
        conn: Any,
        entity: Any,
        pkey: list[str],
        row: dict[str, Any],
        subs: list[Subscription],
    ) -> list[Subscription]:
        """The subscriptions whose role and claims can select the row by its primary key."""
        from psycopg import sql

        where = sql.SQL(" and ").join(
            sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder()) for k in pkey
        )
        query = sql.SQL("select exists(select 1 from {} where {})").format(entity, where)
        args = [None if row.get(k) is None else _as_text(row[k]) for k in pkey]
        seen: dict[str, bool] = {}
        visible = []
        for sub in subs:
            caller = sub.channel.caller
            key = json.dumps([caller.role, caller.claims], sort_keys=True)
            if key not in seen:
                self._become(conn, caller, sub.channel.sub_topic)
                try:
                    with conn.transaction():  # a savepoint: a failing policy denies
                        seen[key] = bool(conn.execute(query, args).fetchone()[0])
                except Exception as exc:
                    log.warning("realtime postgres_changes: policy check failed: %s", exc)
                    seen[key] = False
                conn.execute("reset role")
            if seen[key]:
                visible.append(sub)
        return visible

    @staticmethod
    def _group(
        subs: list[Subscription], data: dict[str, Any]
    ) -> list[tuple[Any, list[int], dict[str, Any]]]:
        """One message per channel, listing the ids of its bindings that match."""
        per_channel: dict[int, tuple[Any, list[int]]] = {}
        for sub in subs:
            entry = per_channel.setdefault(id(sub.channel), (sub.channel, []))
            if sub.id not in entry[1]:
                entry[1].append(sub.id)
        return [(channel, ids, data) for channel, ids in per_channel.values()]

    @staticmethod
    def _typed(
        conn: Any, entity: Any, rel: Any, text: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """A row's text values as JSON in their column types (what apply_rls's cast does)."""
        from psycopg import sql

        if text is None:
            return None
        oids = dict(zip(rel.columns, rel.type_oids, strict=False))
        source: dict[str, Any] = {}
        for name, value in text.items():
            if value is UNCHANGED:
                continue
            if value is not None and oids.get(name) in JSON_OIDS:
                try:
                    source[name] = json.loads(value)
                    continue
                except ValueError:
                    pass
            source[name] = value
        query = sql.SQL("select to_jsonb(r) from jsonb_populate_record(null::{}, %s::jsonb) r")
        typed = conn.execute(query.format(entity), [json.dumps(source)]).fetchone()[0]
        return {k: typed.get(k) for k in source}


def _data(
    rel: Any,
    action: str,
    stamp: str | None,
    columns: list[dict[str, str]],
    record: dict[str, Any],
    old_record: dict[str, Any] | None,
    error: str | None,
) -> dict[str, Any]:
    """A change as Realtime's poller sends it (NewRecord / UpdatedRecord / DeletedRecord)."""
    data: dict[str, Any] = {
        "schema": rel.namespace,
        "table": rel.name,
        "type": action,
        "commit_timestamp": stamp,
        "columns": columns,
        "errors": [error] if error else None,
    }
    if action in ("INSERT", "UPDATE"):
        data["record"] = record
    if action in ("UPDATE", "DELETE"):
        data["old_record"] = old_record
    return data


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
