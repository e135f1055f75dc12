"""End-to-end fixtures: a live server per test, and the workers it starts (stopped after)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_stack import Stack


@pytest.fixture
def stack(live_server: Any, tmp_path: Path) -> Iterator[Stack]:
    """A live server with retry backoff off; workers started by the test are stopped after."""
    s = Stack(live_server, tmp_path)
    s.sql("update private.settings set value = '0' where name = 'retry_backoff_base_seconds'")
    try:
        yield s
    finally:
        s.close()
