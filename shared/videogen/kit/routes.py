"""A function's route table: every sub-path, its methods, their auth modes and its handler.

One table per function, read by the kit (which route a request is for, 404 for a path it
does not serve, 405 with ``Allow``, CORS), by the dev server and the CORS tests (every
route), and by the OpenAPI generator (paths, methods and security), so a route is declared
once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from videogen.errors import NotFound

if TYPE_CHECKING:
    from videogen.kit.context import Context
    from videogen.kit.endpoint import Reply

__all__ = ["JOBS", "READS", "SESSION", "Contract", "Handler", "Modes", "Route"]

Modes = Mapping[str, tuple[str, ...]]  # method → the auth modes it accepts, in order
Handler = Callable[["Context"], "Reply"]

# A user's routes: a session's access token only (account, keys, money, admin), or also a
# personal API key with the scope the method needs (kit.auth's ``api_key`` mode).
SESSION: tuple[str, ...] = ("user",)
READS: tuple[str, ...] = ("user", "api_key:read")
JOBS: tuple[str, ...] = ("user", "api_key:jobs")


@dataclass(frozen=True)
class Route:
    """One path of a function: ``None`` is its root, else a sub-path such as ``/models``."""

    path: str | None
    methods: Modes
    handler: Handler


@dataclass(frozen=True)
class Contract:
    """A function's route table (kept on the served handler as ``.contract``)."""

    name: str
    routes: tuple[Route, ...]

    def __post_init__(self) -> None:
        paths = [r.path for r in self.routes]
        if paths.count(None) != 1 or len(set(paths)) != len(paths):
            raise ValueError(f"{self.name}: one root and each sub-path once, not {paths}")

    @property
    def root(self) -> Route:
        """The function's root route."""
        return next(r for r in self.routes if r.path is None)

    def route_for(self, path: str) -> Route:
        """The route a request path is for; 404 for a sub-path this function does not serve
        (a function with no sub-paths answers every path at its root)."""
        trimmed = path.rstrip("/")
        for route in self.routes:
            if route.path is not None and trimmed.endswith(route.path):
                return route
        if len(self.routes) == 1 or trimmed.rsplit("/", 1)[-1] in ("", self.name):
            return self.root
        raise NotFound(
            f"No such route on {self.name}.",
            hint="Routes: " + ", ".join(r.path or "/" for r in self.routes) + ".",
        )

    def all_routes(self) -> list[tuple[str | None, Modes]]:
        """Every route with its methods, the root (``None``) first."""
        return [(self.root.path, self.root.methods)] + [
            (r.path, r.methods) for r in self.routes if r.path is not None
        ]
