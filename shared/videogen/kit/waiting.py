"""``Prefer: wait=N`` on a create (RFC 7240): answer 200 with the finished job (or batch)
when it finishes within N seconds, else the usual 202; ``Preference-Applied: wait=N``.

The wait reads the job as its owner, backing off (:func:`videogen.services.webhooks.wait_for_job`):
no lock is held and the server thread is bounded by N (at most 60 s).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from videogen.kit.endpoint import Reply
from videogen.services import links, webhooks

if TYPE_CHECKING:
    from videogen.db.outcomes import Outcome
    from videogen.kit.context import Context
    from videogen.models.jobs import Batch, Job

APPLIED = "Preference-Applied"


def created_job(ctx: Context, outcome: Outcome[Job]) -> Reply:
    """A create's reply, after waiting for the job when the client prefers to."""
    wait = ctx.prefer_wait()
    if wait is None:
        return Reply.of(outcome)
    reply = Reply.of(outcome)
    reply.headers[APPLIED] = f"wait={wait}"
    if outcome.status != 202 or wait == 0:
        return reply
    job_id = str(outcome.data.id)
    finished = webhooks.wait_for_job(ctx.db, ctx.principal, job_id, wait)
    if finished is None:
        return reply
    expires = ctx.settings.signed_url_expires_s
    return Reply(200, links.add_to(finished, ctx.storage, expires), reply.headers)


def created_batch(ctx: Context, outcome: Outcome[Batch]) -> Reply:
    """A batch create's reply, after waiting for all its jobs when the client prefers to."""
    wait = ctx.prefer_wait()
    if wait is None:
        return Reply.of(outcome)
    reply = Reply.of(outcome)
    reply.headers[APPLIED] = f"wait={wait}"
    if outcome.status != 202 or wait == 0:
        return reply
    finished: Any = webhooks.wait_for_batch(ctx.db, ctx.principal, str(outcome.data.id), wait)
    if finished is None:
        return reply
    expires = ctx.settings.signed_url_expires_s
    return Reply(200, links.add_to(finished, ctx.storage, expires), reply.headers)
