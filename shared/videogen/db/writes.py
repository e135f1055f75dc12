"""A write as one database call: its rate limit, Idempotency-Key and stored answer travel
with the action (the ``*_request`` procedures of sql/schema/07_requests.sql).

The HTTP kit describes the request (:class:`WriteRequest`); a service sends it along with
its action in one call and gets an :class:`Outcome` back — the action's answer, or the
stored answer of an earlier request with the same key. Nothing is held between calls, so
a crash strands nothing: a retry with the same key replays a committed answer or simply
runs. Only a definite refusal (402, 404, 422…) is stored after the fact, by
:func:`record_refusal`, so that a retry hears the same (and the refusal still counts
against the rate limit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from videogen.db import write_requests
from videogen.db.outcomes import REPLAYED_HEADER, WriteRequest, is_definite
from videogen.errors import AppError

if TYPE_CHECKING:
    from videogen.db.connection import Database


def record_refusal(db: Database, write: WriteRequest, err: AppError) -> None:
    """A refused write still counts against the rate limit, and a definite refusal becomes
    the answer for its key: one call, on the error path only."""
    if err.status == 429 or err.status >= 500 or err.headers.get(REPLAYED_HEADER):
        return  # over the limit (not counted), our failure, or an answer already stored
    store = write.key is not None and is_definite(err)
    if write.limit is None and not store:
        return
    body = {"success": False, "error": err.to_dict(), "status": err.status}
    write_requests.request_refused(db, write, err.status, body, store=store)


def replace_answer(db: Database, write: WriteRequest, status: int, data: BaseModel) -> None:
    """Give the request's key a later, final answer (e.g. a video rendered at once)."""
    if write.key is not None:
        write_requests.request_replace_answer(
            db, write, status, data.model_dump(mode="json", exclude_unset=True)
        )
