"""What every model module shares: the bases of requests (:class:`Strict`) and of answers
(:class:`Open`, :class:`Fixed`, :class:`Root`), the types several domains take, pages, the error
envelope, and :func:`parse`.

Request models are the contract: ``openapi.yaml`` is generated from them and from the answers
(``videogen_dev.openapi``). Answers are the procedures' JSON (sql/schema: ``private.job_json``,
``job_events`` rows, ``credit_ledger`` rows…), and the db face (:mod:`videogen.db`) returns these
models: the same ``Job`` travels from the SQL API through the services to the answer. Answers
stay open (``extra="allow"``): a procedure may add a field without breaking a client, and
clients must ignore fields they do not know.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self, TypeVar
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from videogen.errors import ValidationFailed

# Requests ---------------------------------------------------------------------------------

# Postgres integer / bigint bounds: a larger number would be a server error, not a 422.
INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1
JobStatus = Literal["queued", "dispatched", "processing", "completed", "failed", "canceled"]
JobType = Literal[
    "text_to_video",
    "image_to_video",
    "compose",
    "narration",
    "script",
    "images",
    "text_to_image",
    "image_to_image",
]
ModelId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._/-]{1,79}$")]
# Text that must say something: surrounding whitespace stripped, then non-empty.
NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


StoragePath = Annotated[
    str, StringConstraints(pattern=r"^[0-9a-f-]{36}/[A-Za-z0-9._/-]{1,200}$", max_length=240)
]
# A file on the web a job may name instead of an upload: fetched once (https to a public
# host), checked like an upload and stored in the caller's uploads before money moves.
MediaUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$", max_length=2048)]
# An upload of the caller's (`<user id>/<file>`) or a MediaUrl.
MediaSource = StoragePath | MediaUrl


class Strict(BaseModel):
    """Unknown fields are an error, not silently dropped. Built on first use
    (``defer_build``): a function pays only for the requests it parses, at cold start."""

    model_config = ConfigDict(extra="forbid", defer_build=True)


class ListQuery(Strict):
    """GET ?id=… for one, or a page."""

    id: UUID | None = None
    page: int = Field(1, ge=1, le=10_000)
    limit: int = Field(20, ge=1, le=100)


# How a list is ordered: ``sort`` names a field (each list has its own), ``order`` the way.
SortOrder = Literal["asc", "desc"]


def order_field() -> Any:
    """The ``order`` field of a list query: asc or desc, desc by default."""
    return Field("desc", description="asc or desc (newest first by default).")


# A BCP 47-ish language tag, as profiles and voices store it: "en", "en-GB", "pt-BR".
LanguageTag = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")]


class JobIdQuery(Strict):
    """?id=<job id>."""

    id: UUID


def parse(model: type[BaseModel] | TypeAdapter[Any], data: Any) -> Any:
    """Validate data with a pydantic model; errors become 422 with one detail per field."""
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(data)
        return model.model_validate(data)
    except ValidationError as exc:
        details = [
            {
                "field": ".".join(str(p) for p in e["loc"]) or "body",
                "message": e["msg"],
                "type": e["type"],
            }
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise ValidationFailed("The request is not valid.", details=details) from exc


# Answers ----------------------------------------------------------------------------------


class Fixed(BaseModel):
    """A shape that does not gain fields. Built on first use, as :class:`Open`."""

    model_config = ConfigDict(defer_build=True)


class Open(BaseModel):
    """A shape that may gain fields: unknown ones are kept, not refused. Built on first
    use (``defer_build``): a function pays only for the answers it gives, at cold start."""

    model_config = ConfigDict(extra="allow", defer_build=True)


T = TypeVar("T")


class Root(RootModel[T]):
    """A bare value (a list, or one shape of several), built on first use as :class:`Fixed`.
    Parametrizing ``RootModel`` itself would build the schema of what it holds at import."""

    model_config = ConfigDict(defer_build=True)


class ErrorDetail(Open):
    """One problem: a field path for validation errors, else a message."""

    field: str | None = None
    message: str | None = None
    type: str | None = None


class Error(Open):
    """What went wrong, with a stable code and what to do about it."""

    code: str = Field(description="Stable, machine-readable.")
    message: str
    details: list[ErrorDetail | dict[str, Any]] | None = Field(
        None, description="Field problems, or data such as a 402's {required, balance}."
    )
    hint: str | None = Field(None, description="What to do about it.")


class ErrorEnvelope(Fixed):
    """Every error, whatever the status."""

    success: Literal[False]
    error: Error


class Page(Open):
    """Where a page of a list stands: its number, size, the total, how many pages there are
    and whether pages come before and after it."""

    page: int = Field(ge=1)
    limit: int = Field(ge=1)
    total: int = Field(ge=0)
    total_pages: int = Field(ge=0, description="ceil(total / limit); 0 for an empty list.")
    has_next: bool
    has_prev: bool

    @classmethod
    def of(cls, items: list[Any], total: int, page: int, limit: int) -> Self:
        """Page ``page`` (of ``limit``) of ``total`` items, holding ``items``."""
        return cls.model_validate(
            {
                "items": items,
                "page": page,
                "limit": limit,
                "total": total,
                "total_pages": -(-total // limit),
                "has_next": page * limit < total,
                "has_prev": page > 1,
            }
        )
