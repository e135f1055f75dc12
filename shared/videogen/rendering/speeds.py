"""The fleet's render speed as the prior of renders this process has not measured yet.

Every sectioned render reports its kind (frame size, frame rate, sections at once) and its
speed with the job's usage (``usage.renders`` → private.render_speeds). A process that has
not rendered a kind yet would start its progress estimate from the calibration, made on
another machine; instead it starts from what the fleet measured in the last 24 h
(service.render_speeds_read), seeded into :func:`videogen.media.render.seed_factors` (the
media room stays free of the database). Read at most every ``REFRESH_S``; a failed read
never fails a render: it is logged, what was read before stays, and the next try waits
``RETRY_S``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from videogen.db import operations
from videogen.media.render import seed_factors
from videogen.models.ops import RenderSpeedFigure

if TYPE_CHECKING:
    from videogen.db.calls import Runs

log = logging.getLogger(__name__)

WINDOW_HOURS = 24
REFRESH_S = 600.0
RETRY_S = 60.0


class _Cache:
    """The last figures read and when the next read is due."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.figures: list[RenderSpeedFigure] = []
        self.due = float("-inf")


_cache = _Cache()


def fleet_speeds(
    db: Runs, *, clock: Callable[[], float] = time.monotonic
) -> list[RenderSpeedFigure]:
    """The fleet's render speeds of the last ``WINDOW_HOURS``, read from the database at
    most every ``REFRESH_S`` (``RETRY_S`` after a failed read, which answers the figures
    read before, if any)."""
    with _cache.lock:
        now = clock()
        if now < _cache.due:
            return list(_cache.figures)
        try:
            _cache.figures = operations.render_speeds(db, WINDOW_HOURS)
        except Exception:  # a render never fails for want of a progress prior
            log.warning("render speeds: the database read failed", exc_info=True)
            _cache.due = now + RETRY_S
        else:
            _cache.due = now + REFRESH_S
        return list(_cache.figures)


def seed(figures: Iterable[RenderSpeedFigure | Mapping[str, Any]]) -> int:
    """Seed this process's render-speed priors with the fleet's figures (models or the
    JSON a heartbeat carries; malformed ones are skipped); answers how many it took."""
    taken: list[tuple[tuple[int, int, int, int], float]] = []
    for figure in figures:
        try:
            f = RenderSpeedFigure.model_validate(figure)
        except ValueError:
            continue
        taken.append(((f.width, f.height, f.fps, f.sections), f.factor))
    return seed_factors(taken)


def seed_from_fleet(db: Runs) -> int:
    """Seed the priors from the database's recent figure (cached; never raises)."""
    return seed(fleet_speeds(db))


def forget() -> None:
    """Drop the cached figures (tests: the next read goes to the database)."""
    with _cache.lock:
        _cache.figures = []
        _cache.due = float("-inf")
