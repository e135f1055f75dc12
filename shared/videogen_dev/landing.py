"""The dev server's page at ``/``: what runs where, the local keys, psql, the docs.

A browser gets an HTML page; a client asking ``Accept: application/json`` gets the same
in the API's envelope. The keys are shown only for a local environment (``VIDEOGEN_ENV``
not production), as ``supabase status`` shows them. Everything else under an unknown path
goes to the fallback (the JSON 404). Hand-written HTML with ``html.escape``: one page of a
dozen lines does not need a template engine.
"""

from __future__ import annotations

import html
import json
import shlex
from collections.abc import Callable, Iterable
from typing import Any

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _base(environ: dict[str, Any]) -> str:
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
    return f"{environ.get('wsgi.url_scheme', 'http')}://{host}"


def overview(base: str, functions: tuple[str, ...]) -> dict[str, Any]:
    """What the page shows, as data (also the JSON answer)."""
    from videogen.config import get_settings
    from videogen_dev import localdb
    from videogen_dev.migrations import project_root

    settings = get_settings()
    ws = base.replace("http", "ws", 1)
    services = [
        {
            "name": "Functions",
            "url": f"{base}/functions/v1",
            "note": f"{len(functions)} functions, at /functions/v1/<name>",
            "links": [f"{base}/functions/v1/{name}" for name in functions],
        },
        {
            "name": "Auth",
            "url": f"{base}/auth/v1",
            "note": "GoTrue-compatible stand-in",
            "links": [f"{base}/auth/v1/settings", f"{base}/auth/v1/health"],
        },
        {"name": "Storage", "url": f"{base}/storage/v1", "note": "buckets videos, uploads, …"},
        {
            "name": "Realtime",
            "url": f"{ws}/realtime/v1/websocket",
            "note": "Phoenix channels; subscribe with config.private = true",
        },
        {"name": "REST", "url": f"{base}/rest/v1", "note": "PostgREST (public schema)"},
        {"name": "Web app", "url": f"{base}/app/", "note": "the reference frontend"},
    ]
    external = localdb.external_database_url()
    dsn = localdb.redact(external) if external else localdb.local_dsn()
    root = project_root()
    answer: dict[str, Any] = {
        "api_url": base,
        "services": services,
        "psql": f"psql {shlex.quote(dsn)}",
        "database_url": dsn,
        "docs": {
            "openapi": str(root / "openapi.yaml"),
            "readme": str(root / "README.md"),
            "architecture": str(root / "docs" / "architecture.md"),
            "supabase_js": "https://supabase.com/docs/reference/javascript/introduction",
        },
    }
    if settings.is_local:
        answer["keys"] = {
            "anon_key": settings.anon_key.get_secret_value(),
            "service_role_key": settings.service_role_key.get_secret_value(),
            "publishable_key": settings.publishable_key.get_secret_value(),
            "secret_key": settings.secret_key.get_secret_value(),
        }
    return answer


def _page(data: dict[str, Any]) -> str:
    esc = html.escape

    def cell(service: dict[str, Any]) -> str:
        if "links" in service:  # endpoints that answer a browser
            return (
                esc(service["note"])
                + ": "
                + ", ".join(
                    f'<a href="{esc(link)}">{esc(link.rsplit("/", 1)[1])}</a>'
                    for link in service["links"]
                )
            )
        if service["url"].endswith("/app/"):  # the one page here meant for a browser
            return f'<a href="{esc(service["url"])}">open</a> · {esc(service["note"])}'
        return esc(service["note"])  # APIs: for clients with a key, not pages to open

    rows = "".join(
        f"<tr><th>{esc(s['name'])}</th><td><code>{esc(s['url'])}</code></td><td>{cell(s)}</td></tr>"
        for s in data["services"]
    )
    keys = (
        "".join(
            f"<tr><th>{esc(name)}</th><td><code>{esc(value)}</code></td></tr>"
            for name, value in data.get("keys", {}).items()
        )
        or "<tr><td>not shown: this is not a local environment</td></tr>"
    )
    docs = data["docs"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>videogen local stack</title>
<style>
body {{ font: 15px/1.5 system-ui, sans-serif; margin: 0 auto; padding: 1rem; max-width: 60rem; }}
table {{ border-collapse: collapse; width: 100%; table-layout: fixed; }}
th, td {{ text-align: left; vertical-align: top; padding: .3rem .5rem;
  border-bottom: 1px solid #ddd; overflow-wrap: anywhere; }}
th {{ width: 9rem; }}
code, pre {{ overflow-wrap: anywhere; white-space: pre-wrap; background: #f4f4f4; }}
</style></head>
<body>
<h1>videogen local stack</h1>
<p>API URL (SUPABASE_URL): <code>{esc(data["api_url"])}</code></p>
<h2>Services</h2>
<table id="services">{rows}</table>
<h2>Keys</h2>
<table id="keys">{keys}</table>
<h2>Database</h2>
<pre id="psql">{esc(data["psql"])}</pre>
<h2>Docs</h2>
<ul>
<li>OpenAPI: <code>{esc(docs["openapi"])}</code></li>
<li>README: <code>{esc(docs["readme"])}</code></li>
<li>Architecture: <code>{esc(docs["architecture"])}</code></li>
<li><a href="{esc(docs["supabase_js"])}">supabase-js reference</a></li>
<li>Logs: <code>videogen logs</code> (one line per event; <code>videogen logs functions</code>)</li>
</ul>
</body></html>
"""


def landing_or(fallback: WsgiApp, functions: Iterable[str]) -> WsgiApp:
    """A WSGI app answering exactly ``/`` with the page (listing ``functions``), anything
    else with ``fallback``."""
    functions = tuple(functions)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") not in ("", "/") or environ.get("REQUEST_METHOD") not in (
            "GET",
            "HEAD",
        ):
            return fallback(environ, start_response)
        data = overview(_base(environ), functions)
        accept = environ.get("HTTP_ACCEPT", "")
        if "application/json" in accept and "text/html" not in accept:
            body = json.dumps({"success": True, "data": data}, indent=2).encode()
            kind = "application/json"
        else:
            body = _page(data).encode()
            kind = "text/html; charset=utf-8"
        start_response(
            "200 OK",
            [
                ("Content-Type", kind),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-cache"),
            ],
        )
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    return app
