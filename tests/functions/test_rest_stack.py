"""The local PostgREST (videogen_dev.rest_api) in the running stack: the runtime's own
PostgREST adapter (``DB_ADAPTER=postgrest``: videogen.db.connection's PostgrestDatabase,
supabase-py's postgrest) reads through the dev server's /rest/v1 as it would through a
hosted project's, and ``videogen db reset`` under a running server needs no restart.

Each test here stands on its own (either order): one server for the module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from functions.conftest import GENEROUS_AUTH_LIMITS, Api, _serving
from videogen_dev import migrations

from videogen.config import LOCAL_PUBLISHABLE_KEY, LOCAL_SECRET_KEY


@pytest.fixture(scope="module")
def adapter(start_server: Any) -> Iterator[Api]:
    yield from _serving(start_server, DB_ADAPTER="postgrest", **GENEROUS_AUTH_LIMITS)


def test_the_functions_read_through_the_local_rest_api(adapter):
    models = adapter.ok(adapter.get("queue-job/models", headers={"apikey": LOCAL_PUBLISHABLE_KEY}))
    available = adapter.sql(
        "select array_agg(id order by id) from public.models where is_available"
    )
    assert sorted(m["id"] for m in models) == available
    user = adapter.user(credits=50)
    credits = adapter.ok(adapter.get("update-credits", user=user))
    assert (credits["balance"], credits["reserved"]) == (50, 0)
    # What the service schema does is refused by the adapter itself, PostgREST exposing
    # only `public` (a user's write takes a rate-limit slot: service.rate_limit_take).
    refused = adapter.fails(
        adapter.post("queue-job", user=user, json={"model": "reference/text-to-video"}), 501
    )
    assert refused["code"] == "NOT_SUPPORTED_BY_ADAPTER"


def test_a_database_reset_under_the_running_server_needs_no_restart(adapter):
    """``videogen db reset`` (drop with force, platform, migrations, seed) while the server
    runs: the pool reconnects and the schema cache is read again on the next request."""
    base = f"{adapter.server.base}/rest/v1"
    service = {"apikey": LOCAL_SECRET_KEY, "Authorization": f"Bearer {LOCAL_SECRET_KEY}"}
    row = {"id": "t:reset", "engine": "espeak", "language": "en", "name": "Before"}
    assert adapter.http.post(f"{base}/voices", json=row, headers=service).status_code == 201
    assert adapter.http.get(f"{base}/voices?id=eq.t:reset", headers=service).json()
    migrations.reset(adapter.server.db_url)
    migrations.apply_all(adapter.server.db_url)
    after = adapter.http.get(f"{base}/voices?select=id&id=eq.t:reset", headers=service)
    assert after.status_code == 200 and after.json() == []
    models = adapter.http.get(f"{base}/models?select=id", headers=service).json()
    assert "reference/text-to-video" in [m["id"] for m in models]
    adapter.sql("create function public.t_after_reset() returns int language sql as $$ select 7 $$")
    called = adapter.http.post(f"{base}/rpc/t_after_reset", json={}, headers=service)
    assert (called.status_code, called.json()) == (200, 7)
