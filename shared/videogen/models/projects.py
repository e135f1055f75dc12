"""Projects: a user's folders of generations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, StringConstraints, model_validator

from videogen.models.common import ListQuery, Open, Page, Root, SortOrder, Strict, order_field

# Requests ---------------------------------------------------------------------------------

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]


class ProjectRequest(Strict):
    """POST /queue-job/projects: a new project."""

    title: Title = Field(examples=["Launch trailer"])
    description: str = Field("", max_length=2000)


class ProjectQuery(ListQuery):
    """GET /queue-job/projects: one project (?id=) or a page, sorted."""

    sort: Literal["created", "updated", "title"] = Field(
        "created", description="The field to sort by."
    )
    order: SortOrder = order_field()


class ProjectChange(Strict):
    """PATCH /queue-job/projects?id=: a new title or description (at least one)."""

    title: Title | None = None
    description: str | None = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _something(self) -> ProjectChange:
        if self.title is None and self.description is None:
            raise ValueError("give a title or a description")
        return self


# Answers ----------------------------------------------------------------------------------


class ProjectRow(Open):
    """A user's folder of generations."""

    id: UUID
    user_id: UUID
    title: str
    description: str
    created_at: datetime
    updated_at: datetime


class Project(ProjectRow):
    """A project with how many of its jobs are in each status."""

    jobs: dict[str, int] = Field(description="Jobs per status.")


class ProjectPage(Page):
    """A page of the caller's projects, newest first."""

    items: list[Project]


class ProjectOrPage(Root[Project | ProjectPage]):
    """GET ?id= → the project; otherwise a page of projects."""


class ProjectDeleted(Open):
    """A deleted project: its jobs stay, ungrouped, with their ledger."""

    project: ProjectRow
    jobs_ungrouped: int = Field(ge=0)
