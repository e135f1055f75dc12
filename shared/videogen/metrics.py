"""Prometheus metrics with the official client (``prometheus-client``): what the HTTP kit
records per request, and the text exposition ``GET health-check-workers/metrics`` answers.

Per request the kit calls :func:`observe` once: a counter and a latency histogram labelled
by function, method and status, in this process's own registry (the children of each label
set are kept, so a request costs two lock-protected additions, not a label lookup). The
client is imported on the first request, not when a function loads (it takes ~75 ms to
import). Numbers that live in the database (jobs, queue, failures, workers, credits, render
speed) are read with one procedure call at scrape time and exposed as gauges
(:func:`exposition`): they are the same whichever instance is scraped, while request
metrics are this process's own (each Cloud Run instance has its own).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Histogram
    from prometheus_client.metrics_core import Metric

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"})
# Seconds; a function answers in milliseconds, a synchronous render in seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _Requests:
    """The process's registry and its two request metrics (created on first use)."""

    def __init__(self) -> None:
        # cold start: prometheus_client loads on first use
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry: CollectorRegistry = CollectorRegistry(auto_describe=True)
        labels = ("function", "method", "status")
        self.count: Counter = Counter(
            "videogen_http_requests",
            "Requests answered, by function, method and status.",
            labels,
            registry=self.registry,
        )
        self.latency: Histogram = Histogram(
            "videogen_http_request_duration_seconds",
            "Time to answer a request, by function, method and status.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


_requests: _Requests | None = None
_lock = threading.Lock()


def _get() -> _Requests:
    global _requests
    if _requests is None:
        with _lock:
            if _requests is None:
                _requests = _Requests()
    return _requests


def observe(function: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request and its latency (any method outside HTTP's is ``other``:
    a client cannot grow the label set)."""
    requests = _get()
    key = (function, method if method in METHODS else "other", status)
    children = requests.children.get(key)
    if children is None:
        labels = (key[0], key[1], str(status))
        children = (requests.count.labels(*labels), requests.latency.labels(*labels))
        requests.children[key] = children
    children[0].inc()
    children[1].observe(seconds)


def _families(snapshot: dict[str, Any]) -> Iterator[Metric]:
    """The database's numbers (``public.ops_metrics()``) as gauge families."""
    # cold start: prometheus_client loads on first use
    from prometheus_client.core import GaugeMetricFamily

    jobs = GaugeMetricFamily(
        "videogen_jobs", "Jobs by model and status.", labels=["model", "status"]
    )
    for row in snapshot.get("jobs", []):
        jobs.add_metric([row["model"], row["status"]], row["count"])
    yield jobs
    depth = GaugeMetricFamily("videogen_queue_depth", "Queued jobs by model.", labels=["model"])
    age = GaugeMetricFamily(
        "videogen_queue_oldest_age_seconds",
        "Age of the oldest queued job, by model.",
        labels=["model"],
    )
    for row in snapshot.get("queue", []):
        depth.add_metric([row["model"]], row["depth"])
        age.add_metric([row["model"]], float(row["oldest_age_seconds"]))
    yield depth
    yield age
    yield GaugeMetricFamily(
        "videogen_job_attempts", "Attempts dispatched, all jobs.", value=snapshot["attempts"]
    )
    failures = GaugeMetricFamily(
        "videogen_job_failures",
        "Failed tries (retried or final) in the kept job history, by error code.",
        labels=["error_code"],
    )
    for row in snapshot.get("failures", []):
        failures.add_metric([row["error_code"]], row["count"])
    yield failures
    workers = GaugeMetricFamily("videogen_workers", "Workers by status.", labels=["status"])
    for row in snapshot.get("workers", []):
        workers.add_metric([row["status"]], row["count"])
    yield workers
    yield GaugeMetricFamily(
        "videogen_workers_healthy",
        "Workers online with a fresh heartbeat.",
        value=snapshot["healthy_workers"],
    )
    credits = GaugeMetricFamily(
        "videogen_credits_ledger",
        "Ledger totals: credits ever reserved, captured, released and granted.",
        labels=["kind"],
    )
    for kind, value in snapshot["credits"].items():
        credits.add_metric([kind], value)
    yield credits
    outstanding = GaugeMetricFamily(
        "videogen_credits_outstanding",
        "Credits on all accounts now: spendable balance and reserved.",
        labels=["state"],
    )
    for state, value in snapshot["credits_outstanding"].items():
        outstanding.add_metric([state], value)
    yield outstanding
    rtf = GaugeMetricFamily(
        "videogen_render_realtime_factor",
        "Jobs completed in the last 24 h: seconds from started to finished per second of "
        "video made (where the output says its duration_s).",
        labels=["model"],
    )
    for row in snapshot.get("render_realtime_factor", []):
        rtf.add_metric([row["model"]], float(row["factor"]))
    yield rtf
    measured = GaugeMetricFamily(
        "videogen_render_realtime_factor_measured",
        "Jobs completed in the last 24 h: ffmpeg wall seconds per second of media rendered, "
        "as the renders reported them (job usage).",
        labels=["model"],
    )
    for row in snapshot.get("render_realtime_factor_measured", []):
        measured.add_metric([row["model"]], float(row["factor"]))
    yield measured
    speeds = GaugeMetricFamily(
        "videogen_render_realtime_factor_by_resolution",
        "Sectioned renders of the last 24 h: ffmpeg wall seconds per second of video made, "
        "by frame size (WIDTHxHEIGHT), frame rate and sections rendered at once; what a "
        "process that has not rendered that kind yet starts its progress estimate from.",
        labels=["resolution", "fps", "sections"],
    )
    for row in snapshot.get("render_speeds", []):
        speeds.add_metric(
            [f"{row['width']}x{row['height']}", str(row["fps"]), str(row["sections"])],
            float(row["factor"]),
        )
    yield speeds


class _Snapshot:
    """A collector over one scrape's database snapshot."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        yield from _families(self.snapshot)


def exposition(snapshot: dict[str, Any] | None) -> bytes:
    """The text exposition: this process's request metrics, then the database's numbers
    (``None``: the database could not be read; only the request metrics are answered and
    ``videogen_database_up`` says 0)."""
    # cold start: prometheus_client loads on first use
    from prometheus_client import CollectorRegistry, generate_latest

    # cold start: prometheus_client loads on first use
    from prometheus_client.core import GaugeMetricFamily

    scrape = CollectorRegistry(auto_describe=False)
    if snapshot is not None:
        scrape.register(_Snapshot(snapshot))

    class _Up:
        def collect(self) -> Iterator[Metric]:
            yield GaugeMetricFamily(
                "videogen_database_up",
                "1 when this scrape could read the database's numbers.",
                value=0 if snapshot is None else 1,
            )

    scrape.register(_Up())
    return generate_latest(_get().registry) + generate_latest(scrape)


__all__ = ["CONTENT_TYPE", "LATENCY_BUCKETS", "exposition", "observe"]
