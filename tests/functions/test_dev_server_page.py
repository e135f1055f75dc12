"""The dev server a frontend team keeps open all day: a page at ``/`` saying what runs
where (services, local keys, psql, docs), and a log with each request once."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import httpx
import pytest
from serverkit import LiveServer, wait_until

from videogen.config import LOCAL_ANON_KEY, LOCAL_SERVICE_ROLE_KEY


@pytest.fixture(scope="module")
def server(start_server: Callable[..., AbstractContextManager[LiveServer]]) -> Iterator[LiveServer]:
    with start_server(LOG_LEVEL="INFO") as live:
        yield live


def test_the_page_at_the_root_lists_services_keys_and_psql(server: LiveServer) -> None:
    page = httpx.get(f"{server.base}/", timeout=30)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    text = html.unescape(page.text)
    for path in ("/functions/v1", "/auth/v1", "/storage/v1", "/realtime/v1/websocket", "/rest/v1"):
        assert (
            f"{server.base.replace('http', 'ws') if 'realtime' in path else server.base}{path}"
            in text
        )
    assert LOCAL_ANON_KEY in text and LOCAL_SERVICE_ROLE_KEY in text
    assert re.search(r"psql 'postgresql://postgres:[^@]*@127\.0\.0\.1:\d+/\w+'", text), text
    assert "openapi.yaml" in text
    links = [html.unescape(link) for link in re.findall(r'href="([^"]+)"', page.text)]
    assert f"{server.base}/functions/v1/queue-job" in links
    for link in links:  # every local link reaches something the server serves
        if link.startswith(server.base):
            answer = httpx.get(link, timeout=30)
            assert answer.status_code not in (404, 500), (link, answer.text[:200])


def test_a_json_client_at_the_root_gets_the_same_as_json(server: LiveServer) -> None:
    answer = httpx.get(f"{server.base}/", headers={"Accept": "application/json"}, timeout=30)
    assert answer.headers["content-type"] == "application/json"
    data = answer.json()["data"]
    assert {s["name"] for s in data["services"]} >= {"Functions", "Auth", "Storage", "REST"}
    assert data["keys"]["anon_key"] == LOCAL_ANON_KEY
    assert data["psql"].startswith("psql ")
    missing = httpx.get(f"{server.base}/no-such-thing", timeout=30)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NOT_FOUND"


def test_each_request_is_logged_once(server: LiveServer) -> None:
    def logged() -> list[str]:
        return [line for line in server.logs().splitlines() if "GET update-credits 401" in line]

    before = len(logged())
    for _ in range(2):
        answer = httpx.get(f"{server.base}/functions/v1/update-credits", timeout=30)
        assert answer.status_code == 401
    wait_until(lambda: len(logged()) >= before + 2, 30, f"not logged: {server.logs()[-2000:]}")
    lines = logged()[before:]
    assert len(lines) == 2, lines  # not a plain copy of each JSON line
    assert all(json.loads(line)["status"] == 401 for line in lines), lines
    assert "INFO videogen.kit.endpoint:" not in server.logs()
