"""Tests of fixed-window rate limits that do not depend on when in the minute they run.

A limit counts per window (`service.rate_limit_take`: windows start on the minute). A test
that makes N+1 calls expecting the last refused is wrong only if it straddled a window
boundary, which a busy machine makes likely: such a try is run again, with fresh callers.
A try within one window that was not refused is a real failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def in_one_window(attempt: Callable[[], tuple[bool, T]], window_s: int = 60, tries: int = 3) -> T:
    """Run ``attempt`` (fresh callers each time; returns (refused as expected, what the test
    reads next)) until a try inside one window answers as expected."""
    for _ in range(tries):
        window = int(time.time() // window_s)
        expected, seen = attempt()
        if expected:
            return seen
        if int(time.time() // window_s) == window:
            raise AssertionError(f"not refused within one {window_s} s window: {seen!r}")
    raise AssertionError(f"every try straddled a window boundary: {seen!r}")
