"""All five functions served together at ``/functions/v1/<name>`` (Supabase's local URL
layout), plus local stand-ins for Supabase's Storage API at ``/storage/v1``
(videogen_dev.storage_api), Auth API at ``/auth/v1`` (videogen_dev.auth_api), PostgREST at
``/rest/v1`` (videogen_dev.rest_api: ``supabase.from(…)`` / ``supabase.rpc(…)``) and Realtime
at ``/realtime/v1/websocket`` (videogen_dev.realtime_api); and the reference web app at
``/app/`` (videogen_dev.web_app).

Each function is loaded the way functions-framework loads it in the cloud —
``create_app(target, source)`` on its ``main.py`` — and mounted with werkzeug's
dispatcher, so what runs here is what deploys. Served by gunicorn (gthread) as
functions-framework does in production; ``WORKERS`` and ``THREADS`` tune it.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

FUNCTIONS = (
    "queue-job",
    "job-callback",
    "generate-video",
    "update-credits",
    "health-check-workers",
)


def target_of(name: str) -> str:
    """The functions-framework target of a function: its name in snake_case."""
    return name.replace("-", "_")


def functions_dir() -> Path:
    """Where the functions' folders are (``VIDEOGEN_FUNCTIONS_DIR`` or the project's)."""
    if env := os.environ.get("VIDEOGEN_FUNCTIONS_DIR"):
        return Path(env)
    from videogen_dev.migrations import project_root

    return project_root() / "functions"


def contracts(names: tuple[str, ...] = FUNCTIONS) -> dict[str, Any]:
    """Each function's declared routes and methods (its ``videogen.kit.routes.Contract``), read
    from its ``main.py`` without serving it: what tests walk to cover every route. (Typed
    ``Any``: the dev server imports nothing of the runtime; it loads the functions.)"""
    import importlib.util

    found: dict[str, Any] = {}
    for name in names:
        path = functions_dir() / name / "main.py"
        # Each under its own module name: every function's file is called main.py.
        spec = importlib.util.spec_from_file_location(f"videogen_fn_{target_of(name)}", path)
        assert spec is not None and spec.loader is not None, path
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        found[name] = getattr(module, target_of(name)).contract
    return found


def _not_found(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("404 Not Found", [("Content-Type", "application/json")])
    return [b'{"success": false, "error": {"code": "NOT_FOUND", "message": "No such function."}}']


def _at_root(app: Any) -> Any:
    """Give a mounted Flask app "/" when the URL is exactly its mount point (no redirect)."""

    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        if not environ.get("PATH_INFO"):
            environ["PATH_INFO"] = "/"
        return app(environ, start_response)

    return wrapped


def create_wsgi_app(names: tuple[str, ...] = FUNCTIONS) -> Any:
    """One WSGI app mounting every function under /functions/v1/."""
    import functions_framework
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    from videogen_dev.auth_api import create_app as auth_api
    from videogen_dev.landing import landing_or
    from videogen_dev.realtime_api import create_app as realtime_api
    from videogen_dev.rest_api import create_app as rest_api
    from videogen_dev.storage_api import create_app as storage_api
    from videogen_dev.web_app import web_app

    root = functions_dir()
    mounts: dict[str, Any] = {
        "/storage/v1": storage_api(),
        "/auth/v1": auth_api(),
        "/realtime/v1": realtime_api(),
        "/rest/v1": rest_api(),
    }
    mounts["/app"] = web_app()  # the reference web app (static files)
    for name in names:
        app = functions_framework.create_app(target_of(name), str(root / name / "main.py"))
        mounts[f"/functions/v1/{name}"] = _at_root(app)
    return DispatcherMiddleware(landing_or(_not_found, names), mounts)  # "/": the landing page


# gunicorn refuses a header field over this before the app sees it (answered by
# EnvelopeWorker); smaller oversized requests get the endpoint's own 431 / 414 envelope.
GUNICORN_FIELD_LIMIT = 65_536


# The request line a liveness probe starts with, and the threads that serve only those.
PROBE = b"GET /functions/v1/health-check-workers/live"
PROBE_THREADS = 2
SWITCH_INTERVAL_S = 0.001


def envelope_worker_class() -> type:
    """gunicorn's gthread worker, answering protocol errors in the JSON envelope, handing
    upgraded websockets to the Realtime event loop (so they hold no request thread),
    closing them when it is told to stop, and serving liveness probes on their own two
    threads (a probe never waits behind a burst of requests).

    gunicorn writes an HTML page for a request it cannot parse (a header over its limit, a
    broken request line); a client of this API must get the envelope for every answer.
    """
    import contextlib
    import json

    from gunicorn.http import errors
    from gunicorn.workers.gthread import ThreadWorker

    class EnvelopeWorker(ThreadWorker):
        def init_process(self) -> None:
            from concurrent.futures import ThreadPoolExecutor

            from videogen_dev.realtime_api import enable_handoff

            enable_handoff()
            self.closing: threading.Thread | None = None  # handle_exit's close_all
            self.probe_pool = ThreadPoolExecutor(PROBE_THREADS, thread_name_prefix="probe")
            # Threads waiting on the GIL (a probe, the event loop) get it within 1 ms of
            # asking rather than 5: a few more switches for the CPU-bound, much less
            # waiting for the rest.
            sys.setswitchinterval(SWITCH_INTERVAL_S)
            super().init_process()

        def enqueue_req(self, conn: Any) -> None:
            # A liveness probe whose request has arrived takes its own lane: a saturated
            # server still says it is alive at once (same app, same function).
            import socket

            try:
                head = conn.sock.recv(len(PROBE), socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except OSError:  # nothing yet (a new connection), or not a plain socket
                head = b""
            if head != PROBE:
                super().enqueue_req(conn)
                return
            fs = self.probe_pool.submit(self.handle, conn)
            fs.add_done_callback(
                lambda fut: self.method_queue.defer(self.finish_request, conn, fut)
            )

        def finish_request(self, conn: Any, fs: Any) -> None:
            # A socket upgraded to a websocket belongs to the Realtime event loop now: not
            # kept alive, not closed here (it holds no thread and no connection slot).
            from videogen_dev.realtime_api import released

            if released(conn.sock):
                self.nr_conns -= 1
                return
            super().finish_request(conn, fs)

        def handle_exit(self, sig: Any, frame: Any) -> None:
            # Open websockets would hold their threads (and the shutdown) for the whole
            # graceful timeout: close them, off the signal handler.
            from videogen_dev.realtime_api import close_all

            super().handle_exit(sig, frame)
            self.closing = threading.Thread(target=close_all, daemon=True)
            self.closing.start()

        def run(self) -> None:
            super().run()
            # Every close frame out before the process ends: on a busy machine the closing
            # thread could otherwise lose the race with the exit (the client sees 1006).
            if self.closing is not None:
                self.closing.join(self.cfg.graceful_timeout)

        def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
            if isinstance(exc, errors.LimitRequestHeaders):
                status, reason, code = 431, "Request Header Fields Too Large", "HEADERS_TOO_LARGE"
            elif isinstance(exc, errors.LimitRequestLine):
                status, reason, code = 414, "URI Too Long", "URI_TOO_LONG"
            elif isinstance(exc, errors.ParseException):
                status, reason, code = 400, "Bad Request", "BAD_REQUEST"
            else:
                super().handle_error(req, client, addr, exc)
                return
            body = json.dumps(
                {"success": False, "error": {"code": code, "message": f"{reason}."}}
            ).encode()
            head = (
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            with contextlib.suppress(OSError):  # the client may be gone
                client.sendall(head.encode() + body)

    return EnvelopeWorker


# Request threads: four per core, at least eight. A function's call to this server's own
# Storage API does not take one (``route_storage_in_process``), nor does a websocket, so more
# threads only wait on each other for the interpreter: on 2 cores, 64 readers flat out left
# /live's p99 at 58 ms with 16 threads and 35 ms with 8, reading as fast
# (bench/devserver_bench.py).
MIN_THREADS = 8


def default_threads() -> int:
    """The dev server's request threads when ``THREADS`` is not set."""
    return max(MIN_THREADS, (os.cpu_count() or 1) * 4)


def use_own_storage(host: str, port: int) -> None:
    """Make the functions keep objects through this server's Storage API.

    Unless ``STORAGE_BACKEND`` is set, the functions (and everything started with this
    environment) use ``supabase`` storage at ``SUPABASE_URL`` — this server, unless that is
    set too — so every object they write has its ``storage.objects`` row, as on Supabase.
    """
    from videogen.config import get_settings

    settings = get_settings()
    if "storage_backend" in settings.model_fields_set:
        return
    os.environ["STORAGE_BACKEND"] = "supabase"
    if "supabase_url" not in settings.model_fields_set:
        local = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
        os.environ["SUPABASE_URL"] = f"http://{local}:{port}"
    get_settings.cache_clear()


def route_storage_in_process(app: Any, host: str, port: int) -> bool:
    """When the functions' Storage API is this server's (``SUPABASE_URL`` is its own URL),
    make their storage calls reach it in-process (``httpx.WSGITransport`` to this app):
    the same storage3 requests, without waiting for a second thread of this server's pool
    (with every thread serving a function that signs links, none would be left to answer
    them). True if it did."""
    from urllib.parse import urlsplit

    import httpx

    from videogen.config import IN_PROCESS_TRANSPORTS, get_settings

    settings = get_settings()
    if settings.storage_backend != "supabase":
        return False
    url = urlsplit(settings.supabase_url)
    local = ("127.0.0.1", "localhost", "::1")
    any_local = host in ("0.0.0.0", "", "::", *local)
    own_host = url.hostname in local if any_local else url.hostname == host
    if url.scheme != "http" or not own_host or (url.port or 80) != port:
        return False
    IN_PROCESS_TRANSPORTS[settings.supabase_url.rstrip("/")] = httpx.WSGITransport(app=app)
    return True


def _log_once() -> None:
    """Silence the CLI's plain root handler (``logging.basicConfig``) once the functions'
    JSON handler is there (it comes with the first request): with both, every record was
    written twice, plain and JSON, after the functions set the root level to LOG_LEVEL.
    httpx's line per request is left out (WARNING and above only)."""
    import logging

    root = logging.getLogger()
    # One line per storage call the functions make to this same server: its own request
    # line says it already.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    def before_the_json_handler(record: logging.LogRecord) -> bool:
        return not any(getattr(h, "_videogen", False) for h in root.handlers)

    for handler in root.handlers:
        handler.addFilter(before_the_json_handler)


def serve(
    host: str = "127.0.0.1",
    port: int = 54321,
    *,
    workers: int | None = None,
    threads: int | None = None,
) -> None:
    """Run the dev server in the foreground (gunicorn, gthread workers)."""
    from functions_framework._http.gunicorn import GunicornApplication

    if workers is not None:
        os.environ["WORKERS"] = str(workers)
    if threads is not None:
        os.environ["THREADS"] = str(threads)
    os.environ.setdefault("THREADS", str(default_threads()))
    use_own_storage(host, port)
    _log_once()
    app = create_wsgi_app()
    route_storage_in_process(app, host, port)
    GunicornApplication(
        app,
        host,
        port,
        False,
        worker_class=envelope_worker_class(),
        limit_request_field_size=GUNICORN_FIELD_LIMIT,
    ).run()
