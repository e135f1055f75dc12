"""Element templates: save a timeline with `{{name}}` merge fields, render it with values
(sql/schema/21_element_templates.sql, docs/elements.md).

A field is ``{{name}}`` (letters, digits, underscores) anywhere in a string of the
elements: a text, an upload's path, a colour. A string that is one field and nothing else
takes the value as given, so a number can fill ``"font_size": "{{size}}"``; inside a longer
string a value is written as text. Rendering checks, before any money moves, that each set
of values has every field and no other (422 ``TEMPLATE_FIELDS_MISMATCH`` listing what is
missing and what is extra, per set), then validates the filled-in timeline with the same
models as a direct ``elements`` request (``JobParams``) and the uploads it names, and makes
one job (:func:`videogen.services.jobs.submit`) or one batch
(:func:`videogen.services.projects.create_batch`: all reserved or none).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from videogen.db import element_templates as db_templates
from videogen.errors import NotFound, ValidationFailed
from videogen.models.common import ListQuery, parse
from videogen.models.element_templates import (
    ElementTemplate,
    ElementTemplateChange,
    ElementTemplateDeleted,
    ElementTemplatePage,
    ElementTemplateRequest,
    TemplateRenderRequest,
    TemplateSettings,
)
from videogen.models.jobs import Batch, BatchItem, BatchRequest, Job, JobParams

if TYPE_CHECKING:
    from videogen.db.connection import Session
    from videogen.db.outcomes import Outcome
    from videogen.services.scope import Scope

FIELD = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}")
_WHOLE = re.compile(r"^\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}$")
# What stands in for a field when a template is checked on save, by the key holding it.
_NUMERIC: dict[str, float] = {"start": 0, "duration": 1, "x": 0, "y": 0, "width": 0.5,
                               "height": 0.5, "font_size": 0.05, "volume": 0.5,
                               "trim_start": 0, "layer": 0}  # fmt: skip


def fields_of(value: Any) -> set[str]:
    """The field names in a JSON value's strings (keys are not searched)."""
    if isinstance(value, str):
        return set(FIELD.findall(value))
    if isinstance(value, list):
        return set().union(*(fields_of(v) for v in value)) if value else set()
    if isinstance(value, dict):
        return set().union(*(fields_of(v) for v in value.values())) if value else set()
    return set()


def fill(value: Any, values: dict[str, Any], key: str | None = None) -> Any:
    """``value`` with every field replaced by its value (every field must have one)."""
    if isinstance(value, str):
        whole = _WHOLE.match(value)
        if whole:
            return values[whole.group(1)]
        return FIELD.sub(lambda m: str(values[m.group(1)]), value)
    if isinstance(value, list):
        return [fill(v, values, key) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, values, k) for k, v in value.items()}
    return value


def _samples(elements: list[dict[str, Any]], user_id: str) -> list[dict[str, Any]]:
    """The elements with each field replaced by a value of the kind its key takes, so the
    shape of a template can be checked when it is saved."""

    def sample(value: Any, key: str | None, kind: str | None) -> Any:
        if isinstance(value, str) and FIELD.search(value):
            if key == "path":
                ext = {"video": "mp4", "audio": "wav"}.get(kind or "", "png")
                return f"{user_id}/template-field.{ext}"
            if key in ("color", "background"):
                return "#000000"
            if key in _NUMERIC and _WHOLE.match(value):
                return _NUMERIC[key]
            return FIELD.sub("Sample", value)
        if isinstance(value, list):
            return [sample(v, key, kind) for v in value]
        if isinstance(value, dict):
            kind = value.get("type", kind) if isinstance(value.get("type"), str) else kind
            return {k: sample(v, k, kind) for k, v in value.items()}
        return value

    return [sample(e, None, None) for e in elements]


def _params(elements: list[Any], settings: dict[str, Any]) -> JobParams:
    """A compose job's params for these elements, validated as a direct request's."""
    params: JobParams = parse(JobParams, {"elements": elements, **settings})
    return params


def _settings(body: TemplateSettings) -> dict[str, Any]:
    return body.model_dump(include=set(TemplateSettings.model_fields), exclude_none=True)


def create(scope: Scope, body: ElementTemplateRequest) -> Outcome[ElementTemplate]:
    """Save a template: its shape checked (fields filled with samples), its fields listed."""
    settings = _settings(body)
    _params(_samples(body.elements, str(scope.principal.user_id)), settings)
    with scope.writing() as write:
        return db_templates.create_request(
            scope.db,
            scope.principal,
            write,
            name=body.name,
            description=body.description,
            elements=body.elements,
            settings=settings,
            fields=sorted(fields_of(body.elements)),
        )


def change(scope: Scope, template_id: str, body: ElementTemplateChange) -> Outcome[ElementTemplate]:
    """Change one of the user's templates (404 when it is not theirs)."""
    current = _get(scope, template_id)
    settings = {**current.settings, **_settings(body)}
    elements = body.elements if body.elements is not None else current.elements
    _params(_samples(elements, str(scope.principal.user_id)), settings)
    with scope.writing() as write:
        return db_templates.update_request(
            scope.db,
            scope.principal,
            write,
            template_id,
            name=body.name,
            description=body.description,
            elements=body.elements,
            settings=settings,
            fields=None if body.elements is None else sorted(fields_of(body.elements)),
        )


def delete(scope: Scope, template_id: str) -> Outcome[ElementTemplateDeleted]:
    """Delete one of the user's templates."""
    with scope.writing() as write:
        return db_templates.delete_request(scope.db, scope.principal, write, template_id)


def read(session: Session, query: ListQuery) -> ElementTemplate | ElementTemplatePage:
    """``?id=`` → one template (404 when not the caller's); otherwise a page, newest first."""
    if query.id is not None:
        found = db_templates.get_template(session, str(query.id))
        if found is None:
            raise NotFound("Element template not found.", code="ELEMENT_TEMPLATE_NOT_FOUND")
        return found
    result = db_templates.list_templates(session, query.limit, (query.page - 1) * query.limit)
    return ElementTemplatePage.of(result["items"], result["total"], query.page, query.limit)


def _get(scope: Scope, template_id: str) -> ElementTemplate:
    with scope.db.session(scope.principal) as session:
        found = db_templates.get_template(session, template_id)
    if found is None:
        raise NotFound("Element template not found.", code="ELEMENT_TEMPLATE_NOT_FOUND")
    return found


def check_values(template: ElementTemplate, value_sets: list[dict[str, Any]]) -> None:
    """Refuse (422) value sets that miss a field or bring one the template does not have,
    listing both for each set."""
    fields = set(template.fields)
    problems = []
    for i, values in enumerate(value_sets):
        missing, extra = sorted(fields - set(values)), sorted(set(values) - fields)
        if missing or extra:
            problems.append({"field": "values" if len(value_sets) == 1 else f"values_list.{i}",
                             "index": i, "missing": missing, "extra": extra,
                             "message": _mismatch(missing, extra)})  # fmt: skip
    if problems:
        first = problems[0]
        raise ValidationFailed(
            f"The values do not fit the template's fields: {first['message']}"
            + (f" (and {len(problems) - 1} more sets)" if len(problems) > 1 else ""),
            code="TEMPLATE_FIELDS_MISMATCH",
            hint=f"The template's fields: {', '.join(template.fields) or '(none)'}.",
            details=problems,
        )


def _mismatch(missing: list[str], extra: list[str]) -> str:
    said = []
    if missing:
        said.append("missing " + ", ".join(missing))
    if extra:
        said.append("not in the template " + ", ".join(extra))
    return "; ".join(said)


def render(scope: Scope, body: TemplateRenderRequest) -> Outcome[Job] | Outcome[Batch]:
    """Fill the template in and make its job, or a batch of them; every check (fields, the
    timeline, the uploads) before money moves."""
    # cold start: services.jobs and services.projects load only on this path
    from videogen.services import jobs, projects

    template = _get(scope, str(body.template_id))
    value_sets = [body.values] if body.values is not None else list(body.values_list or [])
    check_values(template, value_sets)
    params = []
    for i, values in enumerate(value_sets):
        try:
            params.append(_params(fill(template.elements, values), template.settings))
        except ValidationFailed as exc:
            if body.values_list is not None:
                for d in exc.details:
                    d["field"] = f"values_list.{i}: {d.get('field', '')}"
            raise
    project = None if body.project_id is None else str(body.project_id)
    if body.values is not None:
        return jobs.submit(
            scope, body.model, params[0], body.priority, project,
            max_credits=body.max_credits, render_short=True,
        )  # fmt: skip
    batch = BatchRequest(
        items=[BatchItem(model=body.model, params=p, priority=body.priority) for p in params],
        project_id=body.project_id,
        title=body.title or template.name,
        max_credits=body.max_credits,
    )
    return projects.create_batch(scope, batch)
