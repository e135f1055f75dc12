"""Element templates: a saved `elements` timeline with `{{name}}` merge fields, and the
requests that render it (sql/schema/21_element_templates.sql)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Self
from uuid import UUID

from pydantic import Field, StringConstraints, model_validator

from videogen.models.common import INT8_MAX, ModelId, Open, Page, Root, Strict
from videogen.models.jobs import AspectRatio, Batch, Job, Resolution

# Requests ---------------------------------------------------------------------------------

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
FieldValue = Annotated[str, StringConstraints(max_length=2000)] | int | float
Values = Annotated[dict[str, FieldValue], Field(max_length=100)]


class TemplateSettings(Strict):
    """The frame and length a template renders with (as a compose job's params)."""

    aspect_ratio: AspectRatio | None = None
    resolution: Resolution | None = None
    fps: int | None = Field(None, ge=8, le=60)
    duration: int | None = Field(None, ge=1, le=600, description="Seconds.")


class ElementTemplateRequest(TemplateSettings):
    """POST /queue-job/element-templates: save a timeline whose strings may hold `{{name}}`
    fields (a text, an upload's path, a colour; a whole-string field may also stand for a
    number)."""

    name: Name = Field(examples=["Product promo"])
    description: str = Field("", max_length=2000)
    elements: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=50,
        description="The `elements` of a composed video (docs/elements.md), with fields.",
        examples=[
            [
                {
                    "type": "text",
                    "text": "{{headline}}",
                    "start": 0,
                    "duration": 3,
                    "color": "{{brand_colour}}",
                }
            ]
        ],
    )


class ElementTemplateChange(TemplateSettings):
    """PATCH /queue-job/element-templates?id=: what to change (at least one thing); new
    `elements` replace the old, and their fields with them."""

    name: Name | None = None
    description: str | None = Field(None, max_length=2000)
    elements: list[dict[str, Any]] | None = Field(None, min_length=1, max_length=50)

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("give something to change")
        return self


class TemplateRenderRequest(Strict):
    """POST /queue-job/element-templates/render: the template filled in with `values` (one
    job), or with each of `values_list` (a batch: all reserved together or none)."""

    template_id: UUID
    model: ModelId = Field(examples=["reference/compose"])
    values: Values | None = Field(None, examples=[{"headline": "Hello", "brand_colour": "#ff0066"}])
    values_list: list[Values] | None = Field(None, min_length=1, max_length=20)
    priority: int = Field(0, ge=-100, le=100)
    project_id: UUID | None = Field(None, description="File the job(s) in one of your projects.")
    title: Annotated[str, StringConstraints(strip_whitespace=True, max_length=120)] | None = None
    max_credits: int | None = Field(None, ge=0, le=INT8_MAX)

    @model_validator(mode="after")
    def _one_or_many(self) -> Self:
        if (self.values is None) == (self.values_list is None):
            raise ValueError("give values (one job) or values_list (a batch), not both")
        return self


# Answers ----------------------------------------------------------------------------------


class ElementTemplate(Open):
    """A saved timeline with its merge fields."""

    id: UUID
    user_id: UUID
    name: str
    description: str
    elements: list[dict[str, Any]]
    settings: dict[str, Any] = Field(description="aspect_ratio, resolution, fps, duration.")
    fields: list[str] = Field(description="The `{{name}}` fields its elements hold, sorted.")
    created_at: datetime
    updated_at: datetime


class ElementTemplatePage(Page):
    """A page of the caller's templates, newest first."""

    items: list[ElementTemplate]


class ElementTemplateOrPage(Root[ElementTemplate | ElementTemplatePage]):
    """GET ?id= → the template; otherwise a page."""


class ElementTemplateDeleted(Open):
    """A deleted template (jobs rendered from it stay)."""

    template: ElementTemplate
    deleted: bool


class JobOrBatch(Root[Job | Batch]):
    """A template rendered: its job (`values`), or its batch (`values_list`)."""
