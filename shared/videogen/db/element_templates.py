"""Element templates: saved timelines with merge fields (sql/schema/21_element_templates.sql).
Writes as one request each (rate limit, Idempotency-Key, stored answer); reads as the
caller, RLS applied."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from videogen.db.calls import JSON
from videogen.db.outcomes import Outcome, outcome_of
from videogen.models.element_templates import ElementTemplate, ElementTemplateDeleted

if TYPE_CHECKING:
    from videogen.db.connection import Database, Session
    from videogen.db.outcomes import WriteRequest
    from videogen.principal import Principal


def create_request(
    db: Database,
    principal: Principal,
    request: WriteRequest,
    *,
    name: str,
    description: str,
    elements: list[dict[str, Any]],
    settings: dict[str, Any],
    fields: list[str],
) -> Outcome[ElementTemplate]:
    """Save a template of the user's, as one request."""
    result = db.user_call(
        principal,
        "service.element_template_create_request",
        request=request.as_json(),
        name=name,
        description=description,
        elements=elements,
        settings=settings,
        fields=fields,
    )
    return outcome_of(result, ElementTemplate)


def update_request(
    db: Database,
    principal: Principal,
    request: WriteRequest,
    template_id: str,
    *,
    name: str | None,
    description: str | None,
    elements: list[dict[str, Any]] | None,
    settings: dict[str, Any] | None,
    fields: list[str] | None,
) -> Outcome[ElementTemplate]:
    """Change one of the user's templates (a None keeps the field), as one request."""
    result = db.user_call(
        principal,
        "service.element_template_update_request",
        request=request.as_json(),
        template_id=template_id,
        name=name,
        description=description,
        elements=elements,
        settings=settings,
        fields=fields,
    )
    return outcome_of(result, ElementTemplate)


def delete_request(
    db: Database, principal: Principal, request: WriteRequest, template_id: str
) -> Outcome[ElementTemplateDeleted]:
    """Delete one of the user's templates, as one request."""
    result = db.user_call(
        principal,
        "service.element_template_delete_request",
        request=request.as_json(),
        template_id=template_id,
    )
    return outcome_of(result, ElementTemplateDeleted)


def list_templates(session: Session, limit: int, offset: int) -> JSON:
    """{items, total}: the caller's templates, newest first."""
    result: JSON = session.rpc("list_element_templates", limit=limit, offset=offset)
    return result


def get_template(session: Session, template_id: str) -> ElementTemplate | None:
    """One of the caller's templates, or None."""
    result = session.rpc("get_element_template", template_id=template_id)
    return None if result is None else ElementTemplate.model_validate(result)
