"""The reference web app at ``/app/``: a small page that uses the API as a frontend does.

Static files only (``videogen_dev/webapp/``: index.html, app.js, style.css — plain HTML
and JavaScript modules, no build step), plus:

- ``/app/vendor/supabase.js``: supabase-js's browser build, from the project's
  ``node_modules`` (``make setup`` installs it; 503 with the hint when it is missing);
- ``/app/config.json``: what the page needs to create its client — the publishable key
  (never a secret key). The page's own origin is its SUPABASE_URL.

Every answer has ``Cache-Control: no-cache``; anything else is a 404 in the API's
envelope.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

STATIC_DIR = Path(__file__).with_name("webapp")
SUPABASE_JS = Path("node_modules", "@supabase", "supabase-js", "dist", "umd", "supabase.js")

# The page's files and their content types (nothing else under /app/ is served).
FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}

# Same origin only: the API, Storage, Auth, Realtime (ws) and signed media all live here.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; connect-src 'self' ws: wss:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)

StartResponse = Callable[..., Any]


def supabase_js_path() -> Path:
    """Where supabase-js's browser build is in the project (it may be missing)."""
    from videogen_dev.migrations import project_root

    return project_root() / SUPABASE_JS


def _headers(content_type: str, length: int) -> list[tuple[str, str]]:
    return [
        ("Content-Type", content_type),
        ("Content-Length", str(length)),
        ("Cache-Control", "no-cache"),
        ("X-Content-Type-Options", "nosniff"),
        ("Content-Security-Policy", CSP),
        ("Referrer-Policy", "no-referrer"),
    ]


class NotServed(Exception):
    """An answer other than a file: the status line and the error envelope's fields."""

    def __init__(self, status: str, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.hint = status, code, message, hint

    def envelope(self) -> bytes:
        """``{"success": false, "error": {code, message, hint?}}``."""
        error = {"code": self.code, "message": self.message}
        if self.hint:
            error["hint"] = self.hint
        return json.dumps({"success": False, "error": error}).encode()


def web_app() -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """The WSGI app to mount at ``/app``."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        if path == "" and method in ("GET", "HEAD"):
            # Relative URLs in the page (app.js, vendor/…) need the trailing slash.
            location = environ.get("SCRIPT_NAME", "") + "/"
            start_response(
                "308 Permanent Redirect", [("Location", location), *_headers("text/plain", 0)]
            )
            return [b""]
        try:
            if method not in ("GET", "HEAD"):
                raise NotServed(
                    "405 Method Not Allowed", "METHOD_NOT_ALLOWED", "The web app only answers GET."
                )
            body, content_type = load(path)
        except NotServed as answer:
            body = answer.envelope()
            headers = _headers("application/json", len(body))
            if answer.code == "METHOD_NOT_ALLOWED":
                headers.append(("Allow", "GET, HEAD"))
            start_response(answer.status, headers)
            return [body]
        start_response("200 OK", _headers(content_type, len(body)))
        return [b""] if method == "HEAD" else [body]

    return app


def load(path: str) -> tuple[bytes, str]:
    """The bytes and content type of one URL path under /app; NotServed otherwise."""
    from videogen.config import get_settings

    name = path.lstrip("/") or "index.html"
    if name in FILES:
        return (STATIC_DIR / name).read_bytes(), FILES[name]
    if name == "config.json":
        config = {"publishable_key": get_settings().publishable_key.get_secret_value()}
        return json.dumps(config).encode(), "application/json"
    if name == "vendor/supabase.js":
        js = supabase_js_path()
        if not js.is_file():
            raise NotServed(
                "503 Service Unavailable",
                "SERVICE_UNAVAILABLE",
                "supabase-js is not installed in this project (node_modules).",
                hint="run make setup",
            )
        return js.read_bytes(), "text/javascript; charset=utf-8"
    raise NotServed("404 Not Found", "NOT_FOUND", "No such file.")
