"""A write as one database call: its rate limit, Idempotency-Key and stored answer travel
with the action (the ``*_request`` procedures of sql/schema/04_requests.sql).

The HTTP kit describes the request (:class:`WriteRequest`); a service sends it along with
its action in one call and gets an :class:`Outcome` back — the action's answer, or the
stored answer of an earlier request with the same key. Nothing is held between calls, so
a crash strands nothing: a retry with the same key replays a committed answer or simply
runs. Only a definite refusal (402, 404, 422…) is stored after the fact, by
:func:`record_refusal`, so that a retry hears the same (and the refusal still counts
against the rate limit).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from videogen.errors import AppError

if TYPE_CHECKING:
    from videogen.db.connection import Database

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


def record_refusal(db: Database, write: WriteRequest, err: AppError) -> None:
    """A refused write still counts against the rate limit, and a definite refusal becomes
    the answer for its key: one call, on the error path only."""
    if err.status == 429 or err.status >= 500 or err.headers.get(REPLAYED_HEADER):
        return  # over the limit (not counted), our failure, or an answer already stored
    store = write.key is not None and is_definite(err)
    if write.limit is None and not store:
        return
    body = {"success": False, "error": err.to_dict(), "status": err.status}
    from videogen.db import procedures

    procedures.request_refused(db, write, err.status, body, store=store)


def replace_answer(db: Database, write: WriteRequest, status: int, data: BaseModel) -> None:
    """Give the request's key a later, final answer (e.g. a video rendered at once)."""
    if write.key is not None:
        from videogen.db import procedures

        procedures.request_replace_answer(
            db, write, status, data.model_dump(mode="json", exclude_unset=True)
        )
