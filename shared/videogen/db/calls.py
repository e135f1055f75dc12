"""How the db face calls a service procedure: in a session's transaction, or on its own."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from videogen.db.connection import Database, Session

    Runs = Session | Database

JSON = dict[str, Any]


def service_call(on: Runs, name: str, /, **args: Any) -> Any:
    """A service procedure in ``on``'s transaction (a session) or on its own (a database)."""
    if hasattr(on, "admin_call"):
        return on.admin_call(name, **args)
    return on.rpc(name, **args)
