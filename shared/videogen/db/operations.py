"""Running it: unit prices, the money audit, metrics, readiness (sql/schema/20_operations.sql)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from videogen.db.calls import JSON, service_call
from videogen.models.ops import MoneyDifference, Readiness, RenderSpeedFigure

if TYPE_CHECKING:
    from videogen.db.calls import Runs
    from videogen.db.connection import Database


def ops_set_unit_prices(on: Runs, prices: JSON) -> JSON:
    """Write the unit prices the cost views use (sql/schema/19_usage.sql); the prices now."""
    result: JSON = service_call(on, "service.ops_unit_prices_set", prices=prices)
    return result


def audit_money_report(on: Runs, grace_seconds: int) -> list[MoneyDifference]:
    """Every difference the money audit finds (none: the books are right)."""
    result = service_call(on, "service.money_audit_report", grace_seconds=grace_seconds)
    return [MoneyDifference.model_validate(r) for r in result]


def ops_metrics(on: Runs) -> JSON:
    """The numbers /metrics exposes from the database (one call at scrape time)."""
    result: JSON = service_call(on, "service.ops_metrics_read")
    return result


def render_speeds(on: Runs, hours: int = 24) -> list[RenderSpeedFigure]:
    """The fleet's render speed of the last ``hours`` per frame size, frame rate and
    sections at once (sql/schema/20_operations.sql, service.render_speeds_read)."""
    result = service_call(on, "service.render_speeds_read", hours=hours)
    return [RenderSpeedFigure.model_validate(r) for r in result]


def ops_readiness(db: Database, timeout_ms: int) -> Readiness:
    """Healthy workers and catalogue providers, as a cheap call the server cancels after
    ``timeout_ms``."""
    return Readiness.model_validate(db.probe_call("service.ops_readiness_check", timeout_ms))
