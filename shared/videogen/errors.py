"""One root exception and one table from database SQLSTATE to HTTP status and envelope code.

Procedures raise custom SQLSTATEs (class ``VG``); :func:`from_sqlstate` is the only place
that turns a driver error into an :class:`AppError`. Each subclass's docstring is its
default message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


class AppError(Exception):
    """Something went wrong."""

    status: int = 500
    code: str = "INTERNAL"
    hint: str | None = None

    def __init__(
        self,
        message: str | None = None,
        *,
        details: list[dict[str, Any]] | None = None,
        hint: str | None = None,
        status: int | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or (self.__doc__ or "").strip()
        super().__init__(self.message)
        self.details = details or []
        if hint is not None:
            self.hint = hint
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        """The ``error`` member of the envelope."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            out["details"] = self.details
        if self.hint:
            out["hint"] = self.hint
        return out


class BadRequest(AppError):
    """The request could not be read."""

    status, code = 400, "BAD_REQUEST"


class ValidationFailed(AppError):
    """The request body or query is not valid."""

    status, code = 422, "VALIDATION_ERROR"


class Unauthorized(AppError):
    """Missing or invalid credentials."""

    status, code = 401, "UNAUTHORIZED"


class Forbidden(AppError):
    """You are not allowed to do this."""

    status, code = 403, "FORBIDDEN"


class NotFound(AppError):
    """Not found."""

    status, code = 404, "NOT_FOUND"


class MethodNotAllowed(AppError):
    """Method not allowed on this function."""

    status, code = 405, "METHOD_NOT_ALLOWED"


class PayloadTooLarge(AppError):
    """The request body is too large."""

    status, code = 413, "PAYLOAD_TOO_LARGE"


class RateLimited(AppError):
    """Too many requests; retry later."""

    status, code = 429, "RATE_LIMITED"


class ServiceUnavailable(AppError):
    """A dependency is unavailable; retry later."""

    status, code = 503, "SERVICE_UNAVAILABLE"


@dataclass(frozen=True)
class DbError:
    """How one custom SQLSTATE reaches the client."""

    status: int
    code: str
    hint: str | None = None


# SQLSTATE → (HTTP status, envelope code). The SQL side raises these in sql/schema/*.sql.
SQLSTATES: dict[str, DbError] = {
    "VG400": DbError(400, "INVALID_INPUT"),
    "VG402": DbError(402, "INSUFFICIENT_CREDITS", "Buy credits or claim the initial grant."),
    "VG403": DbError(403, "FORBIDDEN"),
    "VG404": DbError(404, "NOT_FOUND"),
    "VGM04": DbError(
        404,
        "MODEL_NOT_FOUND",
        "The catalogue: GET /functions/v1/queue-job/models (or rpc('list_models')).",
    ),
    "VGM03": DbError(503, "MODEL_UNAVAILABLE", "The model is temporarily disabled."),
    "VGP22": DbError(422, "INVALID_PARAMS"),
    "VGO22": DbError(422, "INVALID_OUTPUT", "Outputs name storage paths in the owner's folder."),
    "VGU22": DbError(422, "INVALID_USAGE", "docs/worker-protocol.md lists the usage fields."),
    "VGU01": DbError(401, "USER_NOT_FOUND", "Sign in again: this account does not exist."),
    "VGJ04": DbError(404, "JOB_NOT_FOUND"),
    "VGR04": DbError(404, "PROJECT_NOT_FOUND", "Your projects: GET /queue-job/projects."),
    "VGB04": DbError(404, "BATCH_NOT_FOUND", "Your batches: GET /queue-job/batches."),
    "VGJ09": DbError(409, "INVALID_TRANSITION"),
    "VGJ29": DbError(429, "CONCURRENCY_LIMIT", "Wait for a running job to finish."),
    "VGA09": DbError(409, "STALE_ATTEMPT"),
    "VGW04": DbError(404, "WORKER_NOT_FOUND", "Register the worker first."),
    "VGC09": DbError(409, "ALREADY_CLAIMED"),
    "VGC22": DbError(422, "INVALID_AMOUNT"),
    "VGD02": DbError(402, "CREDITS_IN_DEBT", "Buy credits: the debt is settled first."),
    "VGN22": DbError(422, "NOT_ANONYMOUS"),
    "VGN09": DbError(409, "MERGE_BLOCKED"),
    "VGI22": DbError(422, "IDEMPOTENCY_KEY_REUSED", "Use a new Idempotency-Key for a new body."),
    "VGR29": DbError(429, "RATE_LIMITED"),
    "VGQ03": DbError(403, "PRIORITY_NOT_ALLOWED", "Leave priority at 0, or upgrade your tier."),
    "VGS02": DbError(402, "MAX_CREDITS_EXCEEDED", "Raise max_credits, or ask for less."),
    "VGS29": DbError(429, "DAILY_SPEND_LIMIT", "The daily cap resets at 00:00 UTC."),
    "VGT04": DbError(
        404, "TEMPLATE_NOT_FOUND", "Templates: GET /queue-job/admin/templates (admins)."
    ),
    "VGE04": DbError(
        404, "ELEMENT_TEMPLATE_NOT_FOUND", "Your templates: GET /queue-job/element-templates."
    ),
    "VGK04": DbError(404, "PROVIDER_KEY_NOT_FOUND", "Your keys: GET /update-credits/keys."),
    "VGK22": DbError(422, "INVALID_PROVIDER_KEY"),
    "VGY04": DbError(404, "API_KEY_NOT_FOUND", "Your keys: GET /update-credits/api-keys."),
    "VGY09": DbError(409, "API_KEY_LIMIT", "Revoke a key you no longer use."),
    "VGH04": DbError(404, "SHARE_LINK_NOT_FOUND", "Your links: GET /queue-job/share-links."),
    "VGH09": DbError(409, "JOB_NOT_SHAREABLE", "Share a completed video whose files are kept."),
    "VGX09": DbError(409, "ACCOUNT_BUSY", "Cancel or wait for your unfinished jobs first."),
    # Standard SQLSTATEs a well-formed request can still hit.
    "23514": DbError(422, "CONSTRAINT_VIOLATION"),
    "22P02": DbError(422, "INVALID_INPUT"),
    "22P05": DbError(422, "INVALID_INPUT"),  # untranslatable character (e.g. \u0000 in jsonb)
    "22003": DbError(422, "INVALID_INPUT"),  # numeric value out of range
    "42501": DbError(403, "FORBIDDEN"),
    "40001": DbError(503, "SERIALIZATION_FAILURE", "Retry the request."),
    "40P01": DbError(503, "DEADLOCK", "Retry the request."),
    "57014": DbError(503, "QUERY_CANCELED", "Retry the request."),
}


def _details_of(detail: str | None) -> list[dict[str, Any]] | None:
    """A procedure's DETAIL: a JSON object is data for the client, other text a message."""
    if not detail:
        return None
    if detail.startswith("{"):
        try:
            parsed = json.loads(detail)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return [parsed]
    return [{"message": detail}]


def from_sqlstate(
    sqlstate: str | None, message: str, detail: str | None = None, hint: str | None = None
) -> AppError:
    """Translate a database error into the error the client sees (the SQL hint wins)."""
    known = SQLSTATES.get(sqlstate or "")
    if known is None:
        return AppError("Internal database error.")
    err = AppError(
        message,
        details=_details_of(detail),
        hint=hint or known.hint,
        status=known.status,
        code=known.code,
    )
    # Procedures put the wait in the DETAIL: "retry_after=<seconds>", or a JSON object's
    # "retry_after" beside the numbers the client shows.
    if known.status == 429 and detail and detail.startswith("retry_after="):
        err.headers["Retry-After"] = detail.split("=", 1)[1]
        err.details = []
    elif known.status == 429 and err.details and "retry_after" in err.details[0]:
        err.headers["Retry-After"] = str(err.details[0]["retry_after"])
    return err
