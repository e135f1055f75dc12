"""CORS over real HTTP: every declared route of every function answers its preflight with
its own methods (a browser on another origin may PATCH …/profile though the function's
root takes no PATCH), the headers supabase-js sends, and how long to cache the answer.
tests/e2e/test_cors_browser.py is the same seen from Chromium."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from videogen_dev.devserver import contracts

from videogen.kit.endpoint import CORS_MAX_AGE_SECONDS

Api = Any  # tests/functions/conftest.py's Api

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "https://app.example"
# What supabase-js's functions.invoke sends with a JSON body and an Idempotency-Key.
REQUESTED = "authorization, apikey, x-client-info, content-type, idempotency-key"
SUPABASE_CORS = ROOT / "node_modules" / "@supabase" / "supabase-js" / "dist" / "cors.cjs"


def _listed(value: str) -> set[str]:
    return {part.strip().lower() for part in value.split(",") if part.strip()}


def _preflight(api: Api, url: str, method: str) -> Any:
    return api.http.options(
        url,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": REQUESTED,
        },
    )


def test_every_routes_preflight_lists_exactly_its_methods(api: Api) -> None:
    walked = 0
    declared_contracts = contracts()
    # 25 sub-paths besides the five roots
    assert sum(len(c.routes) for c in declared_contracts.values()) == 5 + 25
    for name, contract in declared_contracts.items():
        for route, methods in contract.all_routes():
            declared = {*methods, "OPTIONS"}
            for suffix in (route or "", f"{route or ''}/"):  # a trailing slash is the same
                url = api.url(name) + suffix
                for method in methods:
                    resp = _preflight(api, url, method)
                    where = (name, suffix, method)
                    assert resp.status_code == 204, where
                    assert resp.content == b"", where
                    assert {
                        m.upper() for m in _listed(resp.headers["access-control-allow-methods"])
                    } == declared, where
                    assert resp.headers["access-control-allow-origin"] == "*", where
                    assert _listed(REQUESTED) <= _listed(
                        resp.headers["access-control-allow-headers"]
                    ), where
                    assert resp.headers["access-control-max-age"] == str(CORS_MAX_AGE_SECONDS)
                    assert resp.headers["x-request-id"], where
                    walked += 1
    # Five roots and 25 sub-routes, 54 route methods, each with and without a slash.
    assert walked == 2 * 54


def test_an_answer_carries_the_cors_of_its_own_route(api: Api) -> None:
    """The real request after the preflight: the browser reads its answer under the same
    route's CORS (a 401 here, still readable by the page)."""
    resp = api.request("PATCH", "update-credits/profile", json={}, headers={"Origin": ORIGIN})
    assert resp.status_code == 401
    assert _listed(resp.headers["access-control-allow-methods"]) == {"get", "patch", "options"}
    assert "x-request-id" in _listed(resp.headers["access-control-expose-headers"])
    refused = api.request("PATCH", "generate-video", json={}, headers={"Origin": ORIGIN})
    assert refused.status_code == 405
    assert _listed(refused.headers["access-control-allow-methods"]) == {"get", "post", "options"}


def test_allowed_headers_cover_every_header_supabase_js_sends(api: Api) -> None:
    """supabase-js publishes the headers its clients send (``@supabase/supabase-js/cors``,
    kept in sync with the SDK by its own tests): each must pass our preflight."""
    if not SUPABASE_CORS.exists():
        if os.environ.get("CI"):
            pytest.fail("supabase-js is not installed (`make setup` runs npm ci)")
        pytest.skip("supabase-js is not installed (`make setup` runs npm ci)")
    source = SUPABASE_CORS.read_text()
    block = re.search(r"SUPABASE_HEADERS = \[(.*?)\]", source, re.S)
    assert block is not None, "the layout of supabase-js/cors changed"
    sdk = set(re.findall(r'"([a-z0-9-]+)"', block.group(1)))
    assert {"authorization", "apikey", "x-client-info", "content-type"} <= sdk
    resp = _preflight(api, api.url("update-credits/keys"), "PUT")
    allowed = _listed(resp.headers["access-control-allow-headers"])
    ours = {"idempotency-key", "prefer", "x-region"}
    assert sdk | ours <= allowed, sorted(sdk | ours - allowed)
