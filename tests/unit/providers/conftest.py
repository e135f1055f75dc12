"""A recorded-response HTTP stand-in for the provider adapters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from provider_router import Router, fixture


@pytest.fixture
def router() -> Router:
    """An empty router; add recorded responses per test."""
    return Router()


@pytest.fixture
def load() -> Callable[[str], Any]:
    """Load a recorded provider response body by file name."""
    return fixture


@pytest.fixture
def http(router: Router) -> Iterator[httpx.Client]:
    """An httpx client whose transport is the router."""
    with httpx.Client(transport=httpx.MockTransport(router)) as client:
        yield client
