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
import hashlib
import ipaddress
import json
import logging
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from videogen import metrics
from videogen.config import Settings, get_settings
from videogen.db.writes import REPLAYED_HEADER, Outcome, WriteRequest, record_refusal
from videogen.errors import (
    AppError,
    BadRequest,
    MethodNotAllowed,
    PayloadTooLarge,
    ValidationFailed,
)
from videogen.kit.auth import authenticate
from videogen.models.requests import parse
from videogen.principal import Principal

__all__ = ["Context", "Contract", "Reply", "endpoint", "parse"]

if TYPE_CHECKING:
    from flask import Request, Response

    from videogen.db.connection import Database
    from videogen.integrations.storage import Storage

log = logging.getLogger("videogen.kit.endpoint")
M = TypeVar("M", bound=BaseModel)
W = TypeVar("W")  # a write's result: an Outcome, or an Outcome with what to do after it

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


@dataclass
class Context:
    """Everything a handler needs about one request."""

    request: Request
    principal: Principal
    request_id: str
    settings: Settings
    function: str
    rate_limited: tuple[str, ...] = ()
    route: str | None = None  # the sub-path of ``routes`` this request is for, if any

    @cached_property
    def db(self) -> Database:
        """The process-wide database (created on first use)."""
        from videogen.db.connection import get_database

        return get_database()

    @cached_property
    def headers(self) -> dict[str, str]:
        """The request headers as a plain dict with lower-case names."""
        return {k.lower(): v for k, v in self.request.headers.items()}

    @cached_property
    def raw_body(self) -> bytes:
        """The request body as bytes (size already checked)."""
        return self.request.get_data(cache=True)

    def json(self) -> Any:
        """The body parsed as JSON, or 400; too deep or holding NUL (Postgres cannot store
        it) is 422."""
        if not self.raw_body:
            raise BadRequest("A JSON body is required.")
        try:
            data = json.loads(self.raw_body)
        except RecursionError as exc:  # the C parser recurses; a hostile body can be deep
            raise _too_deep() from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest("The body is not valid JSON.") from exc
        check_json_tree(data)
        return data

    def body(self, model: type[M]) -> M:
        """The body validated by a pydantic model, or 400/422 with field details."""
        result: M = parse(model, self.json())
        return result

    def query(self, model: type[M]) -> M:
        """The query string validated by a pydantic model, or 422."""
        result: M = parse(model, dict(self.request.args.items()))
        return result

    @property
    def idempotency_key(self) -> str | None:
        """The client's Idempotency-Key header, if any."""
        key = self.request.headers.get("Idempotency-Key")
        if key is not None and (not key.strip() or len(key) > 255):
            raise ValidationFailed(
                "Idempotency-Key must be 1 to 255 characters, not blank.",
                details=[{"field": "Idempotency-Key", "message": "blank or too long"}],
                hint="Send a fresh random value, e.g. a UUID, for each new request.",
            )
        return key

    @cached_property
    def client_address(self) -> str:
        """The caller's IP address: the socket's peer, or, behind ``proxy_hops`` trusted
        proxies, the address the outermost of them saw (entries to its left are the
        client's own claims and are ignored)."""
        hops = self.settings.proxy_hops
        forwarded = [a.strip() for a in self.headers.get("x-forwarded-for", "").split(",")]
        forwarded = [a for a in forwarded if a]
        if hops and len(forwarded) >= hops:
            return forwarded[-hops][:64]
        return (self.request.remote_addr or "unknown")[:64]

    @property
    def limited_address(self) -> str | None:
        """The client's address for per-address limits; None for loopback, which is the local
        stack's own clients (the dev server is reached directly, without a proxy)."""
        try:
            if ipaddress.ip_address(self.client_address).is_loopback:
                return None
        except ValueError:
            pass
        return self.client_address

    def take_free_call(self) -> None:
        """Count a call that costs us CPU or a provider call and charges nothing (previews,
        analysis, enhance, quotes, the catalogue): FREE_CALLS_PER_MINUTE per user and
        FREE_CALLS_PER_ADDRESS_PER_MINUTE per client address; 429 RATE_LIMITED with
        Retry-After past either."""
        from videogen.db.procedures import rate_limit_take

        if self.principal.user_id:
            limit = self.settings.free_calls_per_minute
            rate_limit_take(self.db, self.principal_key, "free_calls", limit)
        if self.limited_address is not None:
            limit = self.settings.free_calls_per_address_per_minute
            rate_limit_take(self.db, f"address:{self.limited_address}", "free_calls", limit)

    @property
    def principal_key(self) -> str:
        """Who the caller is, for idempotency and rate limits."""
        p = self.principal
        return f"user:{p.user_id}" if p.user_id else f"{p.kind}:{p.key_name or p.role}"

    @property
    def storage(self) -> Storage:
        """The process's storage client (Supabase Storage, or the local disk)."""
        from videogen.integrations.storage import storage_for

        return storage_for(self.settings)

    @cached_property
    def write(self) -> WriteRequest:
        """This request as the database sees a write: who, where, rate limit, key, hash."""
        limited = self.principal.user_id is not None and self.request.method in self.rate_limited
        return WriteRequest(
            principal=self.principal_key,
            scope=f"{self.function}:{self.request.method}",
            bucket=self.function,
            limit=self.settings.rate_limit_per_minute if limited else None,
            key=self.idempotency_key,
            hash=hashlib.sha256(self.raw_body + b"|" + self.request.query_string).hexdigest(),
        )

    def perform(self, action: Callable[[WriteRequest], W]) -> W:
        """Run a write (one database call that carries ``self.write``); its outcome
        (:meth:`Reply.of` answers it).

        A definite refusal is kept as the key's answer, so a retry with it hears the same.
        """
        try:
            return action(self.write)
        except AppError as err:
            record_refusal(self.db, self.write, err)
            raise


MAX_JSON_DEPTH = 32


def _too_deep() -> ValidationFailed:
    return ValidationFailed(
        f"The body is nested more than {MAX_JSON_DEPTH} levels deep.",
        code="BODY_TOO_DEEP",
        details=[{"field": "body", "message": f"at most {MAX_JSON_DEPTH} levels of nesting"}],
    )


def check_json_tree(data: Any) -> None:
    """Refuse a parsed body nested deeper than MAX_JSON_DEPTH or holding NUL in any text.

    Walks iteratively (depth-first, in document order), so no body can exhaust the stack.
    """
    stack: list[tuple[Any, str, int]] = [(data, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise _nul_error(path or "body")
            continue
        if isinstance(value, dict):
            items: list[tuple[Any, Any]] = list(value.items())
        elif isinstance(value, list):
            items = list(enumerate(value))
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise _too_deep()
        children = []
        for key, item in items:
            here = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and "\x00" in key:
                raise _nul_error(here)
            children.append((item, here, depth + 1))
        stack.extend(reversed(children))


def _nul_error(where: str) -> ValidationFailed:
    return ValidationFailed(
        "Text in the body cannot contain the NUL character (\\u0000).",
        details=[{"field": where, "message": "contains \\u0000"}],
    )


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
    from flask import Response

    payload = b"" if body is None else json.dumps(body, default=str).encode()
    resp = Response(
        payload, status=status, mimetype="application/json" if body is not None else None
    )
    resp.headers.update(headers)
    return resp


Modes = Mapping[str, tuple[str, ...]]  # method → the auth modes it accepts, in order


@dataclass(frozen=True)
class Contract:
    """What an endpoint declares: its root's methods and each sub-path's own.

    Kept on the wrapped handler (``handler.contract``) so tooling and tests can walk every
    route of a function without calling it.
    """

    name: str
    methods: Modes
    routes: Mapping[str, Modes] = field(default_factory=dict)

    def methods_for(self, route: str | None) -> Modes:
        """The methods of a sub-path (``None``: the function's root)."""
        return self.methods if route is None else self.routes[route]

    def route_of(self, path: str) -> str | None:
        """The declared sub-path a request path is for, if any."""
        return _route_of(path, self.routes) if self.routes else None

    def all_routes(self) -> list[tuple[str | None, Modes]]:
        """Every route with its methods, the root (``None``) first."""
        return [(None, self.methods), *self.routes.items()]


def _route_of(path: str, routes: Mapping[str, Any]) -> str | None:
    """The declared sub-path a request path ends with (``/live`` of ``…/live/``), if any."""
    trimmed = path.rstrip("/")
    for route in routes:
        if trimmed.endswith(route):
            return route
    return None


def _respond_raw(status: int, body: bytes, content_type: str, headers: dict[str, str]) -> Response:
    from flask import Response

    resp = Response(body, status=status, content_type=content_type)
    resp.headers.update(headers)
    return resp


def endpoint(
    name: str,
    methods: Mapping[str, tuple[str, ...]],
    *,
    rate_limited: tuple[str, ...] = ("POST", "DELETE", "PATCH", "PUT"),
    routes: Mapping[str, Modes] | None = None,
) -> Callable[[Callable[[Context], Reply]], Callable[[Request], Response]]:
    """Wrap ``handler(ctx) -> Reply`` with the shared HTTP contract (see module doc).

    The settings are read here, when the function is loaded: a misconfigured deployment
    (local secrets or local storage in production) fails to start instead of answering.
    The wrapped handler carries its :class:`Contract` as ``.contract``.
    """
    get_settings()
    contract = Contract(name, dict(methods), dict(routes or {}))

    def decorate(handler: Callable[[Context], Reply]) -> Callable[[Request], Response]:
        @functools.wraps(handler)
        def view(request: Request) -> Response:
            _json_logging()
            settings = get_settings()
            started = time.perf_counter()
            incoming = request.headers.get("x-request-id", "")
            request_id = (
                incoming if 8 <= len(incoming) <= 64 and incoming.isascii() else str(uuid.uuid4())
            )
            # The route first: its methods are what CORS allows, preflight included.
            route = contract.route_of(request.path)
            allowed = contract.methods_for(route)
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
            try:
                if request.method == "OPTIONS":
                    status = 204
                    return _respond(204, None, headers)
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
                ctx = Context(request, principal, request_id, settings, name, rate_limited, route)
                fields["caller"] = principal.kind
                if principal.user_id:
                    fields["user_id"] = principal.user_id
                reply = handler(ctx)
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
                fields["status"] = status
                fields["duration_ms"] = round(elapsed * 1000, 2)
                log.info("%s %s %s", request.method, name, status, extra={"fields": fields})
                metrics.observe(name, request.method, status, elapsed)

        view.contract = contract  # type: ignore[attr-defined]
        return view

    return decorate
