"""The runtime's PostgREST adapter (``DB_ADAPTER=postgrest``: videogen.db.connection's
PostgrestDatabase, supabase-py's postgrest) against the dev server's own local PostgREST at
/rest/v1 (videogen_dev.rest_api): the functions' reads go through it, as they would through
a hosted project's PostgREST."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from functions.conftest import GENEROUS_AUTH_LIMITS, Api, _serving

from videogen.config import LOCAL_PUBLISHABLE_KEY


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
