"""The HTTP contract every function shares (docs/architecture.md), as one decorator.

``@endpoint(name, methods={"POST": ("user",), "GET": ("user",)})`` wraps a plain
``def fn(ctx) -> Reply`` into a functions-framework handler that does, in order:
request id → CORS preflight → method check → header and body size limits → auth (the
method's modes, signatures over the raw body included) → the handler, which only then
parses → envelope, security headers, one JSON log line. A write's rate limit and
Idempotency-Key travel with its action in one database call (:meth:`Context.perform`,
:mod:`videogen.db.writes`); ``rate_limited`` names the methods whose users are limited.
Any :class:`AppError` becomes ``{"success": false, "error": {...}}`` with its status;
anything else is logged with its traceback and answered as a bare 500 — never a trace.
``routes`` gives a sub-path its own methods and modes (``{"/live": {"GET": ("always",)}}``:
the handler sees it as ``ctx.route``); CORS, the preflight included, answers with the
methods of the route a request is for. Every answer is counted in :mod:`videogen.metrics`
(function, method, status, latency).
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from videogen import metrics
from videogen.config import Settings, get_settings
from videogen.db.outcomes import REPLAYED_HEADER, Outcome
from videogen.errors import (
    AppError,
    MethodNotAllowed,
    PayloadTooLarge,
)
from videogen.kit.auth import authenticate
from videogen.kit.context import Context
from videogen.kit.routes import Contract, Handler, Modes, Route
from videogen.models.common import parse

__all__ = ["Contract", "Reply", "Route", "endpoint", "parse", "serve"]

if TYPE_CHECKING:
    from flask import Request, Response


log = logging.getLogger("videogen.kit.endpoint")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
}
# Every header a browser may send us: what supabase-js's clients send (its own canonical
# list, @supabase/supabase-js/cors: authorization, x-client-info, apikey, content-type,
# x-retry-count, traceparent, tracestate, baggage; functions-js adds x-region; postgrest-js
# prefer and the profile headers; auth-js x-supabase-api-version), then this API's own.
# A header missing here fails the browser's preflight for every request that carries it.
CORS_ALLOW_HEADERS = ", ".join(
    (
        "authorization",
        "x-client-info",
        "apikey",
        "content-type",
        "x-retry-count",
        "traceparent",
        "tracestate",
        "baggage",
        "x-region",
        "prefer",
        "accept-profile",
        "content-profile",
        "x-supabase-api-version",
        "idempotency-key",
        "x-request-id",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "x-cron-secret",
        "x-api-key",
    )
)
CORS_MAX_AGE_SECONDS = 86_400  # Chromium caps it at 2 h, Firefox at 24 h: ask for the most


@dataclass
class Reply:
    """What a handler returns: a status and the ``data`` of the success envelope."""

    status: int
    data: Any
    headers: dict[str, str] = field(default_factory=dict)
    # A body that is not JSON (the metrics exposition): sent as is, with this type.
    raw: bytes | None = None
    content_type: str = "application/json"

    @classmethod
    def of(cls, outcome: Outcome[Any]) -> Reply:
        """A write's answer; a replay says so in its header."""
        headers = {REPLAYED_HEADER: "true"} if outcome.replayed else {}
        return cls(outcome.status, outcome.data, headers)


def _json_logging() -> None:
    """One JSON object per log line on stderr (Cloud Logging reads severity/message).

    A dozen lines of ``logging.Formatter``: python-json-logger would add a dependency to
    every deployed function for the same three fields.
    """
    root = logging.getLogger()
    if any(getattr(h, "_videogen", False) for h in root.handlers):
        return

    class JsonFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            out: dict[str, Any] = {
                "severity": record.levelname,
                "message": record.getMessage(),
                "logger": record.name,
                "time": round(record.created, 3),
            }
            out.update(getattr(record, "fields", {}))
            if record.exc_info:
                out["exception"] = self.formatException(record.exc_info)
            return json.dumps(out, default=str)

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._videogen = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(get_settings().log_level)


def envelope(data: Any) -> dict[str, Any]:
    """The success envelope (a pydantic answer as its JSON: the fields it was given, so an
    answer says what the procedure said, not what a model's defaults would add)."""
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json", exclude_unset=True)
    return {"success": True, "data": data}


def _check_request_size(request: Request, settings: Settings) -> None:
    """Oversized URLs and headers get the envelope (431 / 414), not a server's HTML page."""
    header_bytes = sum(len(k) + len(v) + 4 for k, v in request.headers.items())
    if header_bytes > settings.max_header_bytes:
        raise AppError(
            f"The request headers are over {settings.max_header_bytes} bytes.",
            status=431,
            code="HEADERS_TOO_LARGE",
        )
    if len(request.full_path) > settings.max_url_bytes:
        raise AppError(
            f"The URL is over {settings.max_url_bytes} bytes.", status=414, code="URI_TOO_LONG"
        )


def _cors_headers(settings: Settings, methods: Mapping[str, Any]) -> dict[str, str]:
    """CORS for an answer about one route: ``methods`` are that route's own, so a preflight
    for ``PATCH …/profile`` hears PATCH even though the function's root has none."""
    return {
        "Access-Control-Allow-Origin": settings.cors_allow_origin,
        "Access-Control-Allow-Methods": ", ".join([*methods, "OPTIONS"]),
        "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
        "Access-Control-Expose-Headers": "x-request-id, retry-after, idempotent-replayed",
        "Access-Control-Max-Age": str(CORS_MAX_AGE_SECONDS),
        "Vary": "Origin",
    }


def _respond(status: int, body: Any, headers: dict[str, str]) -> Response:
    from flask import Response  # cold start: flask loads on first use

    payload = b"" if body is None else json.dumps(body, default=str).encode()
    resp = Response(
        payload, status=status, mimetype="application/json" if body is not None else None
    )
    resp.headers.update(headers)
    return resp


def _respond_raw(status: int, body: bytes, content_type: str, headers: dict[str, str]) -> Response:
    from flask import Response  # cold start: flask loads on first use

    resp = Response(body, status=status, content_type=content_type)
    resp.headers.update(headers)
    return resp


def endpoint(
    name: str,
    methods: Modes,
    *,
    rate_limited: tuple[str, ...] = ("POST", "DELETE", "PATCH", "PUT"),
) -> Callable[[Handler], Callable[[Request], Response]]:
    """Serve one handler at a function's root (a route table of one route: :func:`serve`)."""

    def decorate(handler: Handler) -> Callable[[Request], Response]:
        view = serve(name, [Route(None, methods, handler)], rate_limited=rate_limited)
        functools.update_wrapper(view, handler)
        return view

    return decorate


_drainer_started = False


def _start_drainer(settings: Settings) -> None:
    """The process's webhook drainer (services.webhooks.Drainer), on its first request: not
    at load, where a forking server would lose the thread."""
    global _drainer_started
    _drainer_started = True
    from videogen.db.connection import get_database  # cold start: first request only

    # cold start: the drainer's modules load on the first request, not at load
    from videogen.services.webhooks import ensure_drainer

    try:
        ensure_drainer(get_database(), settings)
    except Exception as exc:  # deliveries still go out with the sweep
        log.warning("webhook drainer not started: %s", type(exc).__name__)


def serve(
    name: str,
    routes: Iterable[Route],
    *,
    rate_limited: tuple[str, ...] = ("POST", "DELETE", "PATCH", "PUT"),
) -> Callable[[Request], Response]:
    """The functions-framework handler of a route table, with the shared HTTP contract (see
    module doc); ``rate_limited`` names the methods whose users are rate limited.

    The settings are read here, when the function is loaded: a misconfigured deployment
    (local secrets or local storage in production) fails to start instead of answering.
    The handler carries its table as ``.contract``.
    """
    get_settings()
    contract = Contract(name, tuple(routes))

    def view(request: Request) -> Response:
        _json_logging()
        settings = get_settings()
        if settings.webhook_drainer and not _drainer_started:
            _start_drainer(settings)
        started = time.perf_counter()
        incoming = request.headers.get("x-request-id", "")
        request_id = (
            incoming if 8 <= len(incoming) <= 64 and incoming.isascii() else str(uuid.uuid4())
        )
        # The route first: its methods are what CORS allows, preflight included.
        try:
            route: Route | None = contract.route_for(request.path)
        except AppError:
            route = None  # answered below, with the root's CORS
        allowed = (route or contract.root).methods
        headers = {
            **SECURITY_HEADERS,
            **_cors_headers(settings, allowed),
            "x-request-id": request_id,
        }
        fields: dict[str, Any] = {
            "request_id": request_id,
            "function": name,
            "method": request.method,
        }
        status = 500
        handler_fields: dict[str, Any] = {}
        try:
            if request.method == "OPTIONS":
                status = 204
                return _respond(204, None, headers)
            if route is None:
                route = contract.route_for(request.path)  # raises the 404
            if request.method not in allowed:
                headers["Allow"] = ", ".join([*allowed, "OPTIONS"])
                raise MethodNotAllowed(
                    f"{request.method} is not allowed; use {', '.join(allowed)}."
                )
            _check_request_size(request, settings)
            length = request.content_length
            if length is not None and length > settings.max_body_bytes:
                raise PayloadTooLarge(f"The body is over {settings.max_body_bytes} bytes.")
            if length is None and request.method in ("POST", "PUT", "PATCH"):
                body = request.get_data(cache=True)
                if len(body) > settings.max_body_bytes:
                    raise PayloadTooLarge(f"The body is over {settings.max_body_bytes} bytes.")
            modes = allowed[request.method]
            signed = any(m.endswith("_signature") for m in modes)
            principal = authenticate(
                {k.lower(): v for k, v in request.headers.items()},
                modes,
                settings,
                body=request.get_data(cache=True) if signed else b"",
                query=dict(request.args.items()) if signed else None,
            )
            ctx = Context(
                request, principal, request_id, settings, name, rate_limited, route.path,
                handler_fields,
            )  # fmt: skip
            # Who, never the credential: a personal key is logged by its id.
            fields["caller"] = "api_key" if principal.by_api_key else principal.kind
            if principal.user_id:
                fields["user_id"] = principal.user_id
            if principal.api_key_id:
                fields["api_key_id"] = principal.api_key_id
            reply = route.handler(ctx)
            status = reply.status
            headers.update(reply.headers)
            if reply.raw is not None:
                return _respond_raw(reply.status, reply.raw, reply.content_type, headers)
            return _respond(reply.status, envelope(reply.data), headers)
        except AppError as err:
            status = err.status
            headers.update(err.headers)
            fields["error_code"] = err.code
            return _respond(err.status, {"success": False, "error": err.to_dict()}, headers)
        except Exception:
            log.exception("unhandled error", extra={"fields": fields})
            status = 500
            internal = AppError("Something went wrong on our side; it has been logged.")
            return _respond(500, {"success": False, "error": internal.to_dict()}, headers)
        finally:
            elapsed = time.perf_counter() - started
            fields.update(handler_fields)
            fields["status"] = status
            fields["duration_ms"] = round(elapsed * 1000, 2)
            log.info("%s %s %s", request.method, name, status, extra={"fields": fields})
            metrics.observe(name, request.method, status, elapsed)

    view.__name__ = view.__qualname__ = name.replace("-", "_")  # functions-framework's target
    view.contract = contract  # type: ignore[attr-defined]
    return view
