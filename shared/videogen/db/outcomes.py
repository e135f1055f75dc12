"""What a write request is and what it answers: plain values, no database call.

:class:`WriteRequest` is what the HTTP kit tells the database about one write (rate limit,
Idempotency-Key, body hash); :class:`Outcome` is what comes back — the action's answer, or
the stored answer of an earlier request with the same key (:func:`outcome_of`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from videogen.errors import AppError

T = TypeVar("T", bound=BaseModel)

REPLAYED_HEADER = "Idempotent-Replayed"


@dataclass(frozen=True)
class WriteRequest:
    """What the database needs to know about one write request."""

    principal: str  # "user:<uid>" or "<kind>:<key name>": whose keys and rate limit
    scope: str  # "<function>:<METHOD>": keys are per scope
    bucket: str  # the rate-limit bucket (the function)
    limit: int | None  # writes per minute; None: not rate limited (service callers)
    key: str | None  # the Idempotency-Key, if the client sent one
    hash: str  # sha256 of the body and query: the same key with another request is a 422

    def as_json(self) -> dict[str, Any]:
        """The ``p_request`` argument of the ``*_request`` procedures."""
        return asdict(self)


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """A write's answer: its status and data, and whether it replays an earlier one."""

    status: int
    data: T
    replayed: bool = False


def outcome_of(result: dict[str, Any], model: type[T]) -> Outcome[T]:
    """Read a ``*_request`` procedure's result as ``model``; a replayed refusal is raised
    again. A replay's stored answer has the same shape as a fresh one."""
    if not result.get("replayed"):
        return Outcome(int(result["status"]), model.model_validate(result["data"]))
    body = result.get("body") or {}
    if body.get("success") is False:
        error = body["error"]
        raise AppError(
            error.get("message"),
            details=error.get("details"),
            hint=error.get("hint"),
            code=error.get("code"),
            status=int(body.get("status", result.get("status") or 400)),
            headers={REPLAYED_HEADER: "true"},
        )
    return Outcome(int(result["status"]), model.model_validate(body.get("data")), replayed=True)


def is_definite(err: AppError) -> bool:
    """A refusal that will not change by retrying the same request (not 409, 429, 5xx)."""
    return err.status < 500 and err.status not in (401, 409, 429)
