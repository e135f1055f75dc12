"""The shape of the schema: each object created once, `public` only what clients reach.

* sql/schema creates every table, function, view, policy, trigger, type and index exactly
  once, in its final form (no ``create or replace``, no redefinition in a later module);
* schema `public` of a built database holds exactly the procedures clients call over
  PostgREST (anon, authenticated) and the tables and views they read — the lists below;
  what only the service role runs lives in `service`, helpers in `private`;
* anon and authenticated have no usage on `service` and execute nothing in it, and
  PostgREST does not expose it.
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from pathlib import Path

from db.helpers import Conn

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted((ROOT / "sql" / "schema").glob("*.sql"))

# What clients call: the frontends' names, unchanged.
PUBLIC_FUNCTIONS = {
    "admin_list_jobs",
    "admin_list_workers",
    "api_keys_list",
    "get_batch",
    "get_credits",
    "get_element_template",
    "get_job",
    "get_profile",
    "get_project",
    "list_batches",
    "list_element_templates",
    "list_jobs",
    "list_models",
    "list_projects",
    "list_voices",
    "list_webhook_deliveries",
    "prompt_templates_list",
    "provider_keys_list",
    "quote_jobs",
    "share_links_list",
    "update_profile",
}
# What clients read (through RLS), directly or through those procedures.
PUBLIC_RELATIONS = {
    "api_keys",
    "batches",
    "credit_ledger",
    "element_templates",
    "job_events",
    "jobs",
    "models",
    "profiles",
    "projects",
    "prompt_templates",
    "provider_keys",
    "share_links",
    "voices",
    "webhook_deliveries",
    "webhook_delivery_attempts",
    "workers",
}

_CREATE = re.compile(
    r"""\bcreate\s+(?P<replace>or\s+replace\s+)?(?:unique\s+)?
        (?P<kind>table|function|view|policy|trigger|type|index|schema)\s+
        (?:if\s+not\s+exists\s+)?
        (?P<name>"[^"]+"|[\w.]+)
        (?:\s+(?:before|after|instead\s+of)?[\w\s]*?\s+on\s+(?P<on>[\w."]+))?""",
    re.IGNORECASE | re.VERBOSE,
)


def _code(text: str) -> str:
    """SQL without comments, string literals and dollar-quoted bodies (a body's own
    statements are not objects of the schema)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text.startswith("--", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif text[i] == "'":
            end = i + 1
            while end < n and not (text[end] == "'" and not text.startswith("''", end)):
                end += 2 if text.startswith("''", end) else 1
            out.append("''")
            i = end + 1
        elif (tag := re.match(r"\$\w*\$", text[i:])) is not None:
            end = text.find(tag.group(), i + len(tag.group()))
            out.append("$$")
            i = n if end < 0 else end + len(tag.group())
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _created() -> list[tuple[str, str, str]]:
    """(kind, name, module) of every create in sql/schema; policies, triggers and indexes
    are named with their table."""
    found = []
    for path in MODULES:
        for m in _CREATE.finditer(_code(path.read_text())):
            assert not m.group("replace"), f"create or replace in {path.name}: {m.group()}"
            kind, name = m.group("kind").lower(), m.group("name").strip('"').lower()
            if kind in ("policy", "trigger") and m.group("on"):
                name = f"{name} on {m.group('on').lower()}"
            found.append((kind, name, path.name))
    return found


def test_each_object_is_created_once_and_never_replaced() -> None:
    for path in MODULES:
        assert not re.search(r"\bcreate\s+or\s+replace\b", _code(path.read_text()), re.I), path
    created = _created()
    kinds = Counter(kind for kind, _, _ in created)
    assert kinds["table"] >= 20 and kinds["function"] >= 140 and kinds["policy"] >= 15, kinds
    counts = Counter((kind, name) for kind, name, _ in created)
    twice = {
        f"{kind} {name}": [m for k, n, m in created if (k, n) == (kind, name)]
        for (kind, name), times in counts.items()
        if times > 1
    }
    assert twice == {}


def test_the_parse_sees_every_function_and_table_the_database_has(shared_db: Conn) -> None:
    created = _created()
    rows = shared_db.execute(
        """
        select n.nspname || '.' || p.proname from pg_proc p
          join pg_namespace n on n.oid = p.pronamespace
         where n.nspname in ('public', 'private', 'service')
           and not exists (select 1 from pg_depend d
                            where d.classid = 'pg_proc'::regclass and d.objid = p.oid
                              and d.deptype = 'e')
        """
    ).fetchall()
    assert sorted(name for kind, name, _ in created if kind == "function") == sorted(
        name for (name,) in rows
    )
    rows = shared_db.execute(
        """
        select n.nspname || '.' || c.relname from pg_class c
          join pg_namespace n on n.oid = c.relnamespace
         where n.nspname in ('public', 'private', 'service') and c.relkind in ('r', 'v')
        """
    ).fetchall()
    assert sorted(name for kind, name, _ in created if kind in ("table", "view")) == sorted(
        name for (name,) in rows
    )


def test_no_module_alters_a_table_of_another() -> None:
    """Columns and constraints are in the table's create; a later module may only switch
    on row level security (the security module does it for module 1's tables)."""
    home = {name: module for kind, name, module in _created() if kind == "table"}
    for path in MODULES:
        for m in re.finditer(
            r"\balter\s+table\s+(?:only\s+)?([\w.]+)\s+([^;]*);", _code(path.read_text()), re.I
        ):
            table, change = m.group(1).lower(), " ".join(m.group(2).split()).lower()
            if home.get(table) != path.name:
                assert change == "enable row level security", f"{path.name}: {m.group()}"


def test_public_holds_only_what_clients_call_and_read(shared_db: Conn) -> None:
    functions = shared_db.execute(
        """
        select p.proname,
               has_function_privilege('anon', p.oid, 'execute')
                 or has_function_privilege('authenticated', p.oid, 'execute')
          from pg_proc p
         where p.pronamespace = 'public'::regnamespace
           and not exists (select 1 from pg_depend d
                            where d.classid = 'pg_proc'::regclass and d.objid = p.oid
                              and d.deptype = 'e')
        """
    ).fetchall()
    assert {name for name, _ in functions} == PUBLIC_FUNCTIONS
    assert [name for name, callable_ in functions if not callable_] == []
    relations = shared_db.execute(
        """
        select c.relname from pg_class c
         where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'v', 'm', 'p', 'f')
           and not exists (select 1 from pg_depend d
                            where d.classid = 'pg_class'::regclass and d.objid = c.oid
                              and d.deptype = 'e')
        """
    ).fetchall()
    assert {name for (name,) in relations} == PUBLIC_RELATIONS


def test_clients_reach_nothing_in_service(shared_db: Conn) -> None:
    for role in ("anon", "authenticated"):
        usage = shared_db.execute(
            "select has_schema_privilege(%s, 'service', 'usage')", (role,)
        ).fetchone()
        assert usage == (False,), role
        callable_ = shared_db.execute(
            """
            select p.oid::regprocedure::text from pg_proc p
             where p.pronamespace = 'service'::regnamespace
               and has_function_privilege(%s, p.oid, 'execute')
            """,
            (role,),
        ).fetchall()
        assert callable_ == [], role
        readable = shared_db.execute(
            """
            select c.relname from pg_class c
             where c.relnamespace = 'service'::regnamespace
               and has_table_privilege(%s, c.oid, 'select')
            """,
            (role,),
        ).fetchall()
        assert readable == [], role
    service = shared_db.execute(
        """
        select count(*), count(*) filter (where has_function_privilege('service_role', p.oid,
                                                                         'execute'))
          from pg_proc p where p.pronamespace = 'service'::regnamespace
        """
    ).fetchone()
    assert service is not None and service[0] == service[1] >= 70
    assert shared_db.execute(
        "select has_schema_privilege('service_role', 'service', 'usage')"
    ).fetchone() == (True,)
    config = tomllib.loads((ROOT / "supabase" / "config.toml").read_text())
    assert "service" not in config["api"]["schemas"]
