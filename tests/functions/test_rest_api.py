"""The local PostgREST at /rest/v1 (videogen_dev.rest_api) through supabase-py's postgrest
client, unchanged, and raw HTTP where the wire itself is the point (status, headers, error
bodies): reads under RLS, rpc, filters, logic trees, order, ranges and counts, embedding,
writes, single objects, PostgREST's error shapes and codes, and what is refused.

One dev server for the module, on its own database (the test functions created here stay
there)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from functions.conftest import GENEROUS_AUTH_LIMITS, Api, User, _serving
from postgrest.exceptions import APIError

from supabase import Client, create_client
from videogen.config import LOCAL_PUBLISHABLE_KEY, LOCAL_SECRET_KEY
from videogen.kit.auth import issue_access_token

ROOT = Path(__file__).resolve().parents[2]
T2V = "reference/text-to-video"
# supabase-py 2.34 hands its postgrest client a timeout that postgrest-py deprecates.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning"
)


@pytest.fixture(scope="module")
def rest(start_server: Any) -> Iterator[Api]:
    yield from _serving(
        start_server,
        RATE_LIMIT_PER_MINUTE="100000",
        FREE_CALLS_PER_MINUTE="100000",
        **GENEROUS_AUTH_LIMITS,
    )


@pytest.fixture(scope="module")
def people(rest: Api) -> dict[str, Any]:
    """Two users with one queued job each."""
    out: dict[str, Any] = {}
    for name in ("alice", "bob"):
        user = rest.user(credits=100)
        job = rest.ok(rest.post("queue-job", user=user, json={"model": T2V}), 202)
        out[name] = user
        out[f"{name}_job"] = job["id"]
    return out


@pytest.fixture(scope="module")
def voices(rest: Api) -> list[str]:
    """Rows of our own in ``voices`` (written as the service role), for the filter tests."""
    rows = [
        {"id": "t:a1", "engine": "espeak", "language": "en", "name": "Alpha", "gender": "male"},
        {"id": "t:a2", "engine": "espeak", "language": "fr", "name": "Beta", "gender": None},
        {"id": "t:a3", "engine": "google", "language": "en", "name": "Gamma", "gender": "female"},
        {"id": "t:a4", "engine": "google", "language": "de", "name": "delta", "gender": None},
    ]
    done = service(rest).table("voices").insert(rows).execute()
    assert len(done.data) == 4
    return [r["id"] for r in rows]


_MADE: list[Client] = []


@pytest.fixture(autouse=True, scope="module")
def _close_clients() -> Iterator[None]:
    yield
    while _MADE:
        _MADE.pop().postgrest.session.close()


def client(rest: Api, user: User | None = None, key: str = LOCAL_PUBLISHABLE_KEY) -> Client:
    """supabase-py as a frontend makes it: the publishable key, a user's token when signed in."""
    made = create_client(rest.server.base, key)
    _MADE.append(made)
    if user is not None:
        made.postgrest.auth(user.token)
    return made


def service(rest: Api) -> Client:
    return client(rest, key=LOCAL_SECRET_KEY)


def raw(
    rest: Api, method: str, path: str, user: User | None = None, **kwargs: Any
) -> httpx.Response:
    headers = {"apikey": LOCAL_PUBLISHABLE_KEY, **kwargs.pop("headers", {})}
    if user is not None:
        headers["Authorization"] = f"Bearer {user.token}"
    return rest.http.request(
        method, f"{rest.server.base}/rest/v1/{path}", headers=headers, **kwargs
    )


def error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"code", "details", "hint", "message"}, body
    assert body["code"] == code, body
    return dict(body)


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in rows]


# Reads under RLS ----------------------------------------------------------------------------
def test_a_user_reads_models_and_only_their_own_jobs_and_profile(rest, people):
    alice, bob = people["alice"], people["bob"]
    db = client(rest, alice)
    models = db.table("models").select("id, name").execute().data
    assert T2V in ids(models)
    assert ids(db.table("profiles").select("id").execute().data) == [alice.id]
    assert ids(db.table("jobs").select("id").execute().data) == [people["alice_job"]]
    # Bob's rows are there, and RLS hides them: asking for them by id finds nothing.
    assert db.table("jobs").select("id").eq("id", people["bob_job"]).execute().data == []
    assert db.table("profiles").select("id").eq("id", bob.id).execute().data == []
    # The anon key reads the catalogue but has no grant on profiles: 42501, 401 for anon.
    anon = client(rest)
    assert T2V in ids(anon.table("models").select("id").execute().data)
    with pytest.raises(APIError) as caught:
        anon.table("profiles").select("id").execute()
    assert caught.value.code == "42501"
    error(raw(rest, "GET", "profiles"), 401, "42501")
    error(raw(rest, "GET", "credit_ledger?select=id", headers={"Authorization": "Bearer x"}),
          401, "PGRST301")  # fmt: skip


def test_requests_run_as_the_caller_with_postgrests_settings(rest, people):
    """A function created after the server started is found (the schema cache reloads), and
    it sees the role, auth.uid(), request.method / path / headers and a read-only GET."""
    alice = people["alice"]
    error(raw(rest, "POST", "rpc/t_whoami", alice, json={}), 404, "PGRST202")
    rest.sql(
        """create function public.t_whoami() returns json language sql stable as $$
             select json_build_object('role', current_user, 'uid', auth.uid(),
               'sub', current_setting('request.jwt.claim.sub', true),
               'claims_role', current_setting('request.jwt.claims', true)::json->>'role',
               'method', current_setting('request.method'),
               'path', current_setting('request.path'),
               'probe', current_setting('request.headers')::json->>'x-probe',
               'read_only', current_setting('transaction_read_only'),
               'timeout', current_setting('statement_timeout'))
           $$;
           grant execute on function public.t_whoami() to anon, authenticated"""
    )
    seen = client(rest, alice).rpc("t_whoami").execute().data
    assert seen["role"] == "authenticated" and seen["uid"] == alice.id == seen["sub"]
    assert seen["claims_role"] == "authenticated"
    # A stable function runs read only, by POST too (PostgREST's access mode).
    assert (seen["method"], seen["path"], seen["read_only"]) == ("POST", "/rpc/t_whoami", "on")
    got = raw(rest, "GET", "rpc/t_whoami", alice, headers={"X-Probe": "p1"}).json()
    assert (got["method"], got["probe"], got["read_only"]) == ("GET", "p1", "on")
    anon = raw(rest, "GET", "rpc/t_whoami").json()
    assert anon["role"] == "anon" and anon["uid"] is None
    # The impersonated role's own settings apply (sql/platform/00_roles.sql's timeouts).
    assert (anon["timeout"], seen["timeout"]) == ("3s", "8s")
    assert service(rest).rpc("t_whoami").execute().data["role"] == "service_role"


def test_the_schema_cache_follows_migrations_without_a_restart(rest):
    """A column, a table and a foreign key added while the server runs are served at once."""
    as_service = {"Authorization": f"Bearer {LOCAL_SECRET_KEY}"}
    error(raw(rest, "GET", "t_notes", headers=as_service), 404, "PGRST205")
    rest.sql(
        """alter table public.voices add column t_rating int;
           create table public.t_notes (id serial primary key,
             voice_id text references public.voices(id) on delete cascade, body text);
           grant all on public.t_notes to service_role;
           insert into public.t_notes (voice_id, body) values ('espeak:en-us', 'hello')"""
    )
    got = raw(rest, "GET", "voices?select=id,t_rating,t_notes(body)&id=eq.espeak:en-us",
              headers=as_service)  # fmt: skip
    assert got.json() == [{"id": "espeak:en-us", "t_rating": None, "t_notes": [{"body": "hello"}]}]
    rest.sql("drop table public.t_notes; alter table public.voices drop column t_rating")
    error(raw(rest, "GET", "voices?select=t_rating", headers=as_service), 400, "42703")
    error(raw(rest, "GET", "t_notes", headers=as_service), 404, "PGRST205")


# rpc ----------------------------------------------------------------------------------------
def test_rpc_calls_the_public_functions(rest, people):
    alice = people["alice"]
    db = client(rest, alice)
    models = db.rpc("list_models").execute().data
    assert T2V in ids(models)
    assert (
        raw(rest, "GET", "rpc/list_models").json() == client(rest).rpc("list_models").execute().data
    )
    job = db.rpc("get_job", {"p_job_id": people["alice_job"]}).execute().data
    assert job["id"] == people["alice_job"]
    listed = raw(rest, "GET", "rpc/list_jobs?p_limit=1", alice).json()
    assert [j["id"] for j in listed["items"]] == [people["alice_job"]]
    # A write in a GET runs read-only: PostgREST's 405 (25006).
    error(raw(rest, "GET", "rpc/update_profile?p_theme=dark", alice), 405, "25006")
    updated = db.rpc("update_profile", {"p_theme": "dark"}).execute().data
    assert updated["theme"] == "dark"
    # Another user's job is not found by the function's own rules.
    assert db.rpc("get_job", {"p_job_id": people["bob_job"]}).execute().data is None


def test_set_returning_functions_take_filters_order_and_counts(rest):
    rest.sql(
        """create function public.t_series(n int, label text default 'x')
             returns table(k int, label text) language sql stable as
           $$ select g, label from generate_series(1, n) g $$;
           create function public.t_ints(n int) returns setof int language sql stable as
           $$ select generate_series(1, n) $$;
           create function public.t_fail(code text) returns int language plpgsql as $$
           begin
             if code = 'PT402' then raise sqlstate 'PT402' using message = 'pay first'; end if;
             raise exception 'plain failure' using hint = 'a hint';
           end $$"""
    )
    anon = client(rest)
    got = anon.rpc("t_series", {"n": 5, "label": "y"}).gt("k", 2).order("k", desc=True).execute()
    assert got.data == [{"k": 5, "label": "y"}, {"k": 4, "label": "y"}, {"k": 3, "label": "y"}]
    counted = anon.rpc("t_series", {"n": 4}, count="exact").select("k").range(0, 1).execute()
    assert counted.data == [{"k": 1}, {"k": 2}] and counted.count == 4
    resp = raw(rest, "GET", "rpc/t_series?n=3&k=lte.2&select=k")
    assert resp.json() == [{"k": 1}, {"k": 2}]
    assert raw(rest, "GET", "rpc/t_ints?n=3").json() == [1, 2, 3]
    one = raw(
        rest, "GET", "rpc/t_ints?n=1", headers={"Accept": "application/vnd.pgrst.object+json"}
    )
    assert one.json() == 1
    error(raw(rest, "POST", "rpc/t_fail", json={"code": "PT402"}), 402, "PT402")
    plain = error(raw(rest, "POST", "rpc/t_fail", json={"code": "x"}), 400, "P0001")
    assert (plain["message"], plain["hint"]) == ("plain failure", "a hint")
    missing = error(raw(rest, "POST", "rpc/t_series", json={"m": 1}), 404, "PGRST202")
    assert (
        missing["message"] == "Could not find the function public.t_series(m) in the schema cache"
    )


# Counts and ranges --------------------------------------------------------------------------
def test_count_exact_content_range_and_partial_content(rest, voices):
    total = int(rest.sql("select count(*) from public.models"))
    resp = raw(rest, "GET", "models?select=id&limit=2", headers={"Prefer": "count=exact"})
    assert resp.status_code == 206 and resp.headers["Content-Range"] == f"0-1/{total}"
    assert "count=exact" in resp.headers["Preference-Applied"]
    full = raw(rest, "GET", "models?select=id", headers={"Prefer": "count=exact"})
    assert full.status_code == 200 and full.headers["Content-Range"] == f"0-{total - 1}/{total}"
    ranged = raw(rest, "GET", "models?select=id&order=id", headers={"Range": "1-2"})
    assert ranged.headers["Content-Range"] == "1-2/*" and len(ranged.json()) == 2
    empty = raw(rest, "GET", "models?id=eq.none", headers={"Prefer": "count=exact"})
    assert empty.json() == [] and empty.headers["Content-Range"] == "*/0"
    error(raw(rest, "GET", f"models?offset={total + 5}", headers={"Prefer": "count=exact"}),
          416, "PGRST103")  # fmt: skip
    planned = raw(rest, "GET", "models?select=id", headers={"Prefer": "count=planned"})
    assert planned.headers["Content-Range"].split("/")[1].isdigit()
    got = client(rest).table("models").select("id", count="exact").order("id").range(1, 3).execute()
    assert got.count == total and len(got.data) == 3
    head = client(rest).table("models").select("*", count="exact", head=True).execute()
    assert head.count == total


# Filters ------------------------------------------------------------------------------------
def test_every_filter_operator(rest, voices):
    db = service(rest)

    def where(build: Any) -> list[str]:
        query = db.table("voices").select("id").like("id", "t:*").order("id")
        return ids(build(query).execute().data)

    assert where(lambda t: t.eq("engine", "google")) == ["t:a3", "t:a4"]
    assert where(lambda t: t.neq("engine", "google")) == ["t:a1", "t:a2"]
    assert where(lambda t: t.gt("name", "Beta")) == ["t:a3", "t:a4"]
    assert where(lambda t: t.gte("name", "Beta")) == ["t:a2", "t:a3", "t:a4"]
    assert where(lambda t: t.lt("name", "Beta")) == ["t:a1"]
    assert where(lambda t: t.lte("name", "Beta")) == ["t:a1", "t:a2"]
    assert where(lambda t: t.like("name", "%lph%")) == ["t:a1"]
    assert where(lambda t: t.ilike("name", "D*")) == ["t:a4"]
    assert where(lambda t: t.is_("gender", "null")) == ["t:a2", "t:a4"]
    assert where(lambda t: t.not_.is_("gender", "null")) == ["t:a1", "t:a3"]
    assert where(lambda t: t.in_("language", ["fr", "de"])) == ["t:a2", "t:a4"]
    assert where(lambda t: t.not_.in_("language", ["fr", "de"])) == ["t:a1", "t:a3"]
    assert where(lambda t: t.not_.eq("engine", "espeak")) == ["t:a3", "t:a4"]
    # cs / cd on an array column (models.aspect_ratios), and a JSON arrow.
    models = client(rest).table("models").select("id, aspect_ratios")
    wide = ids(models.contains("aspect_ratios", ["16:9"]).execute().data)
    assert T2V in wide
    narrow = client(rest).table("models").select("id").contained_by("aspect_ratios", ["16:9"])
    assert T2V not in ids(narrow.execute().data)
    arrow = raw(rest, "GET", f"models?select=id,f:resolution_factors->>720p&id=eq.{T2V}").json()
    assert arrow == [{"id": T2V, "f": "1.5"}]
    by_arrow = raw(rest, "GET", "models?select=id&resolution_factors->>720p=eq.1.5").json()
    assert T2V in ids(by_arrow)


def test_or_and_not_logic_trees(rest, voices):
    db = service(rest)
    base = db.table("voices").select("id").like("id", "t:*").order("id")
    got = base.or_("language.eq.fr,and(engine.eq.google,gender.eq.female)").execute()
    assert ids(got.data) == ["t:a2", "t:a3"]
    resp = raw(
        rest, "GET", "voices?select=id&id=like.t:*&not.or=(language.eq.en,gender.is.null)",
        headers={"Authorization": f"Bearer {LOCAL_SECRET_KEY}"},
    )  # fmt: skip
    assert ids(resp.json()) == []
    nested = raw(
        rest, "GET",
        "voices?select=id&order=id&and=(id.like.t:*,or(name.ilike.a*,and(engine.eq.google,"
        "language.not.eq.de)))",
        headers={"Authorization": f"Bearer {LOCAL_SECRET_KEY}"},
    )  # fmt: skip
    assert ids(nested.json()) == ["t:a1", "t:a3"]


def test_order_with_nulls_first_and_last(rest, voices):
    db = service(rest)
    rows = db.table("voices").select("id, gender").like("id", "t:*")
    first = rows.order("gender", nullsfirst=True).order("id").execute().data
    assert ids(first) == ["t:a2", "t:a4", "t:a3", "t:a1"]
    last = raw(
        rest, "GET", "voices?select=id&id=like.t:*&order=gender.desc.nullslast,id.desc",
        headers={"Authorization": f"Bearer {LOCAL_SECRET_KEY}"},
    )  # fmt: skip
    assert ids(last.json()) == ["t:a1", "t:a3", "t:a4", "t:a2"]
    renamed = raw(rest, "GET", f"models?select=model:id,price:credits_base::text&id=eq.{T2V}")
    [row] = renamed.json()
    assert row["model"] == T2V and isinstance(row["price"], str)


# Embedding ----------------------------------------------------------------------------------
def test_embedding_along_foreign_keys(rest, people):
    alice = people["alice"]
    db = client(rest, alice)
    [job] = db.table("jobs").select("id, models(id, name)").execute().data
    assert job["models"]["id"] == T2V  # to-one: an object
    model = db.table("models").select("id, jobs(id, status)").eq("id", T2V).single().execute()
    # to-many: an array, and RLS applies inside the embed (only Alice's job).
    assert [j["id"] for j in model.data["jobs"]] == [people["alice_job"]]
    inner = db.table("models").select("id, jobs!inner(id)").execute().data
    assert ids(inner) == [T2V]
    filtered = raw(rest, "GET", "models?select=id,jobs!inner(id)&jobs.status=eq.failed", alice)
    assert filtered.json() == []
    anti = raw(rest, "GET", "models?select=id,jobs(id)&jobs=is.null", alice).json()
    assert T2V not in ids(anti) and anti
    by_column = raw(rest, "GET", "jobs?select=id,model:model_id(id)", alice).json()
    assert by_column[0]["model"] == {"id": T2V}
    error(raw(rest, "GET", "models?select=id,profiles(id)", alice), 400, "PGRST200")
    error(raw(rest, "GET", "models?select=id&jobs.status=eq.failed", alice), 400, "PGRST108")


def test_an_ambiguous_embed_needs_a_hint(rest):
    as_service = {"Authorization": f"Bearer {LOCAL_SECRET_KEY}"}
    rest.sql(
        """create table public.t_people (id int primary key, name text);
           create table public.t_loans (id int primary key,
             lender int references public.t_people(id),
             borrower int references public.t_people(id));
           grant all on public.t_people, public.t_loans to service_role;
           insert into public.t_people values (1, 'ann'), (2, 'bob');
           insert into public.t_loans values (10, 1, 2)"""
    )
    ambiguous = error(raw(rest, "GET", "t_loans?select=id,t_people(*)", headers=as_service),
                      300, "PGRST201")  # fmt: skip
    assert "t_people!t_loans_lender_fkey" in ambiguous["hint"]
    hinted = raw(
        rest, "GET",
        "t_loans?select=id,from:t_people!lender(name),to:t_people!borrower(name)",
        headers=as_service,
    )  # fmt: skip
    assert hinted.json() == [{"id": 10, "from": {"name": "ann"}, "to": {"name": "bob"}}]
    lent = raw(rest, "GET", "t_people?select=name,t_loans!lender(id)&order=id", headers=as_service)
    assert lent.json() == [{"name": "ann", "t_loans": [{"id": 10}]}, {"name": "bob", "t_loans": []}]


def test_many_to_many_through_a_junction_table(rest):
    as_service = {"Authorization": f"Bearer {LOCAL_SECRET_KEY}"}
    rest.sql(
        """create table public.t_posts (id int primary key, title text);
           create table public.t_tags (id int primary key, label text);
           create table public.t_post_tags (
             post_id int references public.t_posts(id), tag_id int references public.t_tags(id),
             primary key (post_id, tag_id));
           grant all on public.t_posts, public.t_tags, public.t_post_tags to service_role;
           insert into public.t_posts values (1, 'one'), (2, 'two');
           insert into public.t_tags values (10, 'red'), (11, 'blue');
           insert into public.t_post_tags values (1, 10), (1, 11)"""
    )
    got = raw(
        rest, "GET", "t_posts?select=title,t_tags(label)&order=id&t_tags.order=label",
        headers=as_service,
    )  # fmt: skip
    assert got.json() == [
        {"title": "one", "t_tags": [{"label": "blue"}, {"label": "red"}]},
        {"title": "two", "t_tags": []},
    ]
    back = raw(rest, "GET", "t_tags?select=label,t_posts!t_post_tags(title)&id=eq.10",
               headers=as_service)  # fmt: skip
    assert back.json() == [{"label": "red", "t_posts": [{"title": "one"}]}]
    inner = raw(rest, "GET", "t_posts?select=title,t_tags!inner(label)", headers=as_service)
    assert [p["title"] for p in inner.json()] == ["one"]


# Writes -------------------------------------------------------------------------------------
def test_writes_as_the_service_role(rest):
    db = service(rest)
    one = (
        db.table("voices")
        .insert({"id": "t:w1", "engine": "espeak", "language": "en", "name": "One"})
        .execute()
    )
    assert one.data[0]["description"] == "" and one.data[0]["is_available"] is True
    many = db.table("voices").insert(
        [
            {"id": "t:w2", "engine": "espeak", "language": "en", "name": "Two"},
            {"id": "t:w3", "engine": "espeak", "language": "en", "name": "Three",
             "is_available": False},
        ],
        default_to_null=False,  # Prefer: missing=default
    ).execute()  # fmt: skip
    assert [r["is_available"] for r in many.data] == [True, False]
    # upsert: merge-duplicates updates, ignore-duplicates leaves the row alone.
    merged = (
        db.table("voices")
        .upsert(
            {"id": "t:w1", "engine": "espeak", "language": "en", "name": "Uno"}, on_conflict="id"
        )
        .execute()
    )
    assert merged.data[0]["name"] == "Uno"
    db.table("voices").upsert(
        {"id": "t:w1", "engine": "espeak", "language": "en", "name": "Ignored"},
        ignore_duplicates=True,
    ).execute()
    assert rest.sql("select name from public.voices where id = 't:w1'") == "Uno"
    with pytest.raises(APIError) as dup:
        db.table("voices").insert(
            {"id": "t:w1", "engine": "espeak", "language": "en", "name": "x"}
        ).execute()
    assert dup.value.code == "23505"
    updated = db.table("voices").update({"name": "Dos"}).eq("id", "t:w2").execute()
    assert updated.data == [{**many.data[0], "name": "Dos"}]
    minimal = raw(
        rest, "PATCH", "voices?id=like.t:w*", json={"gender": "male"},
        headers={"Authorization": f"Bearer {LOCAL_SECRET_KEY}", "Prefer": "count=exact"},
    )  # fmt: skip
    assert minimal.status_code == 204 and minimal.content == b""
    assert minimal.headers["Content-Range"] == "0-2/3"
    deleted = db.table("voices").delete().like("id", "t:w*").execute()
    assert sorted(ids(deleted.data)) == ["t:w1", "t:w2", "t:w3"]
    assert rest.sql("select count(*) from public.voices where id like 't:w%%'") == 0
    as_service = {"Authorization": f"Bearer {LOCAL_SECRET_KEY}"}
    error(raw(rest, "POST", "voices", json={"nope": 1}, headers=as_service), 400, "PGRST204")
    nobody = {"id": "00000000-0000-0000-0000-000000000001"}  # no such auth.users row
    error(raw(rest, "POST", "profiles", json=nobody, headers=as_service), 409, "23503")
    headers_only = raw(
        rest, "POST", "voices", json={"id": "t:h1", "engine": "espeak", "language": "en",
                                      "name": "H"},
        headers={**as_service, "Prefer": "return=headers-only"},
    )  # fmt: skip
    assert headers_only.status_code == 201 and headers_only.content == b""
    assert headers_only.headers["Location"] == "/voices?id=eq.t%3Ah1"
    gone = raw(rest, "DELETE", "voices?id=eq.t:h1", headers=as_service)
    assert gone.status_code == 204 and gone.headers["Content-Range"] == "0-0/*"


def test_a_users_writes_are_decided_by_grants_and_rls(rest, people):
    alice, bob = people["alice"], people["bob"]
    db = client(rest, alice)
    mine = db.table("profiles").update({"display_name": "Alice"}).eq("id", alice.id).execute()
    assert mine.data[0]["display_name"] == "Alice"
    # Bob's profile: RLS finds no row to change.
    assert db.table("profiles").update({"display_name": "x"}).eq("id", bob.id).execute().data == []
    assert rest.sql("select display_name from public.profiles where id = %s", [bob.id]) != "x"
    # Columns without a grant, and tables without one: 42501, 403 for a user.
    error(raw(rest, "PATCH", f"profiles?id=eq.{alice.id}", alice, json={"balance": 10**6}),
          403, "42501")  # fmt: skip
    with pytest.raises(APIError) as refused:
        db.table("voices").insert(
            {"id": "t:u1", "engine": "espeak", "language": "en", "name": "u"}
        ).execute()
    assert refused.value.code == "42501"
    error(raw(rest, "DELETE", f"jobs?id=eq.{people['alice_job']}", alice), 403, "42501")
    error(raw(rest, "DELETE", "voices?id=eq.t:a1"), 401, "42501")


def test_single_object_responses(rest):
    db = client(rest)
    one = db.table("models").select("id").eq("id", T2V).single().execute()
    assert one.data == {"id": T2V}
    assert db.table("models").select("id").eq("id", "none").maybe_single().execute() is None
    resp = raw(
        rest, "GET", "models?select=id", headers={"Accept": "application/vnd.pgrst.object+json"}
    )
    body = error(resp, 406, "PGRST116")
    assert body["message"] == "Cannot coerce the result to a single JSON object"
    total = rest.sql("select count(*) from public.models")
    assert body["details"] == f"The result contains {total} rows"
    none = raw(rest, "GET", "models?id=eq.none",
               headers={"Accept": "application/vnd.pgrst.object+json"})  # fmt: skip
    assert error(none, 406, "PGRST116")["details"] == "The result contains 0 rows"


# Errors and what is refused -----------------------------------------------------------------
def test_errors_have_postgrests_shape_and_codes(rest, people):
    missing = error(raw(rest, "GET", "modelz"), 404, "PGRST205")
    assert missing["message"] == "Could not find the table 'public.modelz' in the schema cache"
    assert "public.models" in missing["hint"]
    column = error(raw(rest, "GET", "models?select=id,nope"), 400, "42703")
    assert column["message"] == "column models.nope does not exist"
    error(raw(rest, "GET", "models?nope=eq.1"), 400, "42703")
    bad = error(raw(rest, "GET", "models?id=eqq.1"), 400, "PGRST100")
    assert bad["message"] == "failed to parse filter (eqq.1)"
    error(raw(rest, "GET", "models?or=(id.eq.1"), 400, "PGRST100")
    error(raw(rest, "GET", "models?order=id.sideways"), 400, "PGRST100")
    error(raw(rest, "POST", "rpc/no_such_function", json={}), 404, "PGRST202")
    error(raw(rest, "GET", "models?id=eq.1", headers={"Authorization": "Bearer a.b.c"}),
          401, "PGRST301")  # fmt: skip
    forged = people["alice"].token[:-4] + (
        "AAAA" if not people["alice"].token.endswith("AAAA") else "BBBB"
    )
    resp = raw(rest, "GET", "jobs", headers={"Authorization": f"Bearer {forged}"})
    error(resp, 401, "PGRST301")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    nobody = rest.http.get(f"{rest.server.base}/rest/v1/models")
    error(nobody, 401, "PGRST302")
    error(raw(rest, "GET", "models", headers={"Accept-Profile": "private"}), 406, "PGRST106")
    error(raw(rest, "POST", "voices", content=b"{nope", headers={
        "Authorization": f"Bearer {LOCAL_SECRET_KEY}", "Content-Type": "application/json"}),
        400, "PGRST102")  # fmt: skip
    error(raw(rest, "GET", "models?id=eq.x&limit=ten"), 400, "PGRST100")
    error(raw(rest, "GET", "jobs?id=eq.not-a-uuid", people["alice"]), 400, "22P02")
    error(raw(rest, "GET", "models?id=eq.a%00b"), 400, "22P05")
    preflight = rest.http.options(
        f"{rest.server.base}/rest/v1/models",
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "PATCH",
                 "Access-Control-Request-Headers": "authorization, apikey, prefer"},
    )  # fmt: skip
    assert preflight.status_code == 204
    assert "PATCH" in preflight.headers["Access-Control-Allow-Methods"]
    assert preflight.headers["Access-Control-Allow-Headers"] == "authorization, apikey, prefer"
    expired = issue_access_token(people["alice"].id, expires_in=-3600)
    late = raw(rest, "GET", "jobs", headers={"Authorization": f"Bearer {expired}"})
    assert error(late, 401, "PGRST303")["message"] == "JWT expired"


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "code", "named"),
    [
        ("GET", "models", {"Accept": "text/csv"}, 501, "PGRST127", "CSV"),
        ("GET", "models?select=id&name=fts.video", {}, 501, "PGRST127", "full-text search"),
        ("GET", "models", {"Prefer": "tx=rollback"}, 501, "PGRST127", "tx=rollback"),
        ("GET", "models?select=...jobs(id)", {}, 501, "PGRST127", "spread"),
        ("GET", "models?order=jobs(id)", {}, 501, "PGRST127", "embedded"),
        ("GET", "models?id=eq(any).{a,b}", {}, 501, "PGRST127", "(any)"),
        ("PUT", "models?id=eq.x", {}, 501, "PGRST127", "PUT"),
        ("GET", "", {}, 501, "PGRST127", "OpenAPI"),
        (
            "GET",
            "models",
            {"Accept": "application/vnd.pgrst.plan+json"},
            501,
            "PGRST127",
            "EXPLAIN",
        ),
        ("GET", "models?select=count()", {}, 400, "PGRST123", "aggregate"),
        ("GET", "models?select=id.count()", {}, 400, "PGRST123", "aggregate"),
    ],
)
def test_unserved_features_are_refused_by_name(rest, method, path, headers, status, code, named):
    body = error(raw(rest, method, path, headers=headers), status, code)
    assert named.lower() in body["message"].lower()


# supabase-js ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    installed = (ROOT / "node_modules" / "@supabase" / "supabase-js").is_dir()
    if found is None or not installed:
        if os.environ.get("CI"):
            pytest.fail("node or @supabase/supabase-js is missing: `make setup` installs them")
        pytest.skip("node or @supabase/supabase-js is not installed (`make setup`)")
    return found


def test_supabase_js_uses_the_local_rest_api(rest, people, node):
    alice, bob = people["alice"], people["bob"]
    done = subprocess.run(
        [node, str(ROOT / "tests/functions/js/rest_session.mjs"), rest.server.base,
         LOCAL_PUBLISHABLE_KEY, alice.token, alice.id, bob.id],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    total = rest.sql("select count(*) from public.models")
    models = seen["models"]
    assert models["error"] is None and len(models["ids"]) == total
    assert models["ids"] == sorted(models["ids"]) and models["jobs"] == [people["alice_job"]]
    assert (seen["head"]["status"], seen["head"]["count"]) == (200, total)
    ranged = seen["ranged"]
    assert (ranged["status"], ranged["count"], ranged["ids"]) == (206, total, models["ids"][1:3])
    assert seen["jobs"]["data"] == [
        {"id": people["alice_job"], "status": "queued", "model": {"id": T2V}}
    ]
    filtered = seen["filtered"]["ids"]
    assert T2V in filtered and filtered == sorted(filtered, reverse=True)
    assert seen["other"]["data"] == []
    assert seen["renamed"]["data"] == {"id": alice.id, "name": "From JS"}
    assert T2V in seen["rpc"]["ids"]
    assert seen["rpcGet"]["ids"] == [people["alice_job"]]
    refused = seen["refused"]
    assert refused["status"] == 403 and refused["error"]["code"] == "42501"
    single = seen["single"]
    assert single["status"] == 406 and single["error"]["code"] == "PGRST116"
    assert seen["maybe"] == {"status": 200, "error": None, "count": None, "data": None}
    assert seen["missing"]["status"] == 404 and seen["missing"]["error"]["code"] == "PGRST205"
    assert seen["csv"]["status"] == 501 and seen["csv"]["error"]["code"] == "PGRST127"
