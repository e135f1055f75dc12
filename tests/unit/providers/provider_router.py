"""Recorded provider responses behind an httpx transport: the provider tests' stand-in."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "providers"

Handler = Callable[[httpx.Request], httpx.Response]


def fixture(name: str) -> Any:
    """A recorded provider response body."""
    return json.loads((FIXTURES / name).read_text())


class Router:
    """Routes ``(method, url without query)`` to queued responses and records requests."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Handler]] = {}
        self.requests: list[httpx.Request] = []

    def add(
        self,
        method: str,
        url: str,
        *,
        json_file: str | None = None,
        json_body: Any = None,
        status: int = 200,
        headers: dict[str, str] | None = None,
        handler: Handler | None = None,
    ) -> None:
        """Queue one response for ``method url`` (the last one repeats)."""
        if handler is None:
            body = fixture(json_file) if json_file else json_body
            content = b"" if body is None else json.dumps(body).encode()
            hdrs = {"content-type": "application/json", **(headers or {})}

            def response(request: httpx.Request) -> httpx.Response:
                return httpx.Response(status, content=content, headers=hdrs)

            handler = response
        self.routes.setdefault((method, url), []).append(handler)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = (request.method, str(request.url.copy_with(query=None)))
        queue = self.routes.get(key)
        if not queue:
            return httpx.Response(599, json={"error": f"unexpected request {key}"})
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return answer(request)

    def last(self) -> httpx.Request:
        """The last request sent."""
        return self.requests[-1]
