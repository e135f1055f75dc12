"""What a use case is given: one caller's request as the services see it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from videogen.db.writes import record_refusal
from videogen.errors import AppError

if TYPE_CHECKING:
    from videogen.config import Settings
    from videogen.db.connection import Database
    from videogen.db.outcomes import WriteRequest
    from videogen.integrations.storage import Storage
    from videogen.principal import Principal

__all__ = ["Scope"]


@dataclass(frozen=True)
class Scope:
    """Who is calling, the deployment they reach, and the write their request may make."""

    db: Database
    settings: Settings
    storage: Storage
    principal: Principal
    write: WriteRequest
    # The client's address for per-address limits; None for the local stack's own clients.
    client_address: str | None = None

    @contextmanager
    def writing(self) -> Iterator[WriteRequest]:
        """The request's write, for the one database call that carries it; a refusal raised
        inside counts against the rate limit, and a definite one is kept as the key's
        answer, so a retry with it hears the same."""
        try:
            yield self.write
        except AppError as err:
            record_refusal(self.db, self.write, err)
            raise
