"""What a use case is given: one caller's request as the services see it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from videogen.db.writes import record_refusal
from videogen.errors import AppError

if TYPE_CHECKING:
    from videogen.config import Settings
    from videogen.db.connection import Database
    from videogen.db.outcomes import WriteRequest
    from videogen.integrations.storage import Storage
    from videogen.principal import Principal

__all__ = ["Scope"]

W = TypeVar("W")


@dataclass(frozen=True)
class Scope:
    """Who is calling, the deployment they reach, and the write their request may make."""

    db: Database
    settings: Settings
    storage: Storage
    principal: Principal
    write: WriteRequest

    def perform(self, action: Callable[[WriteRequest], W]) -> W:
        """Run the request's write (one database call carrying ``write``); a definite
        refusal is kept as the key's answer, so a retry with it hears the same."""
        try:
            return action(self.write)
        except AppError as err:
            record_refusal(self.db, self.write, err)
            raise
