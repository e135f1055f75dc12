"""End-to-end fixtures: a live server per test, and the workers it starts (stopped after);
node and Chromium for the browser tests (their scripts in js/ launch it with js/launch.mjs)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_stack import Stack

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def stack(live_server: Any, tmp_path: Path) -> Iterator[Stack]:
    """A live server with retry backoff off; workers started by the test are stopped after."""
    s = Stack(live_server, tmp_path)
    s.sql("update private.settings set value = '0' where name = 'retry_backoff_base_seconds'")
    try:
        yield s
    finally:
        s.close()


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: `make setup` installs it (.ci/system-deps, npm ci)")
    pytest.skip(f"{reason} (`make setup` installs it)")


@pytest.fixture(scope="module")
def browser() -> tuple[str, str]:
    """node and Chromium, with playwright-core installed; skipped locally, failed in CI."""
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "playwright-core").is_dir():
        _missing("node or playwright-core (npm) is not installed")
    if not CHROMIUM.exists():
        _missing(f"Chromium is not installed at {CHROMIUM} (Debian package `chromium`)")
    assert node is not None
    return node, str(CHROMIUM)
