"""One request as a handler sees it: who is calling, the body and query parsed by pydantic,
the database and storage, and the write it may perform (:meth:`Context.perform`)."""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from videogen.config import Settings
from videogen.db.outcomes import WriteRequest
from videogen.db.write_requests import rate_limit_take
from videogen.errors import BadRequest, ValidationFailed
from videogen.models.common import parse
from videogen.models.webhooks import MAX_PREFER_WAIT_S, CancelAfterHeader, PreferWait
from videogen.principal import Principal
from videogen.services.scope import Scope

if TYPE_CHECKING:
    from flask import Request

    from videogen.db.connection import Database
    from videogen.integrations.storage import Storage

__all__ = ["MAX_JSON_DEPTH", "Context", "check_json_tree"]

M = TypeVar("M", bound=BaseModel)
W = TypeVar("W")  # a write's result: an Outcome, or an Outcome with what to do after it


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
    # What the handler adds to the request's log line (e.g. a worker call's action).
    log_fields: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def db(self) -> Database:
        """The process-wide database (created on first use)."""
        # cold start: db.connection loads only on this path
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

    def cancel_after(self) -> timedelta | None:
        """The Cancel-After header (seconds, or an ISO 8601 duration), or None; 422 when
        it is neither or outside 1 s to 7 days."""
        raw = self.request.headers.get("Cancel-After")
        if raw is None:
            return None
        value: str | float = raw.strip()
        with contextlib.suppress(ValueError):
            value = float(value)  # seconds; pydantic reads a string only as a duration
        header: CancelAfterHeader = parse(CancelAfterHeader, {"cancel_after": value})
        return header.cancel_after

    def prefer_wait(self) -> int | None:
        """``Prefer: wait=N`` (RFC 7240), at most MAX_PREFER_WAIT_S; None when not asked.
        A preference that cannot be read is ignored, as the RFC says."""
        for header in self.request.headers.getlist("Prefer"):
            for preference in header.split(","):
                name, _, value = preference.split(";", 1)[0].partition("=")
                if name.strip().lower() != "wait":
                    continue
                try:
                    wait: PreferWait = parse(PreferWait, {"wait": value.strip().strip('"')})
                except ValidationFailed:
                    return None
                return min(wait.wait, MAX_PREFER_WAIT_S)
        return None

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
        # cold start: integrations.storage loads only on this path
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

    @cached_property
    def scope(self) -> Scope:
        """This request as the services take it: who, the database, storage, the write."""
        return Scope(
            self.db,
            self.settings,
            self.storage,
            self.principal,
            self.write,
            client_address=self.limited_address,
        )


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
