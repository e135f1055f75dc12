"""Running it: readiness (database, storage, who can serve jobs), the metrics scrape, and
the money audit. A service like the others: it calls procedures, never the HTTP kit.

Readiness answers booleans only: what failed is logged here (its exception's type), never
put in the answer, so a public probe learns nothing about hosts, DSNs or errors.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from videogen import metrics
from videogen.db import operations
from videogen.models.ops import MoneyDifference, ReadinessChecks

if TYPE_CHECKING:
    from videogen.config import Settings
    from videogen.db.connection import Database
    from videogen.integrations.storage import Storage

log = logging.getLogger(__name__)

READY_STATEMENT_TIMEOUT_MS = 1000  # the database check's one query
# Providers and the setting that configures each (their models must also be available).
PROVIDER_KEYS = {
    "fal": "fal_key",
    "replicate": "replicate_api_token",
    "runway": "runway_api_key",
    "runpod": "runpod_api_key",
}


def configured_providers(settings: Settings) -> set[str]:
    """External providers whose API key is set."""
    out = set()
    for provider, field in PROVIDER_KEYS.items():
        value = getattr(settings, field)
        if value is not None and value.get_secret_value():
            out.add(provider)
    return out


def _database_and_serving(db: Database, settings: Settings) -> tuple[bool, bool]:
    try:
        found = operations.ops_readiness(db, READY_STATEMENT_TIMEOUT_MS)
    except Exception as exc:  # down, timed out, refused: all mean not ready
        log.warning("readiness: database check failed (%s)", type(exc).__name__)
        return False, False
    serving = found.healthy_workers > 0 or bool(
        configured_providers(settings) & set(found.providers)
    )
    return True, serving


def _storage(storage: Storage, timeout_s: float) -> bool:
    try:
        return storage.ready(timeout_s)
    except Exception as exc:
        log.warning("readiness: storage check failed (%s)", type(exc).__name__)
        return False


def readiness(db: Database, storage: Storage, settings: Settings) -> ReadinessChecks:
    """The three checks, the database's and storage's at the same time."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        stored = pool.submit(_storage, storage, settings.health_timeout_s)
        database, serving = _database_and_serving(db, settings)
        return ReadinessChecks(database=database, storage=stored.result(), workers=serving)


def metrics_exposition(db: Database) -> bytes:
    """The Prometheus text: this process's request metrics and the database's numbers."""
    snapshot: dict[str, Any] | None
    try:
        snapshot = operations.ops_metrics(db)
    except Exception as exc:
        log.warning("metrics: database numbers unavailable (%s)", type(exc).__name__)
        snapshot = None
    return metrics.exposition(snapshot)


def audit(db: Database, grace_seconds: int) -> list[MoneyDifference]:
    """The money audit's differences (empty: the books are right)."""
    return operations.audit_money_report(db, grace_seconds)
