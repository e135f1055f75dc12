"""The fleet's render speed as a process's prior: read through the typed SQL API at most
every REFRESH_S, never failing a render when the read fails, and seeded into media.render
(a database test reads real rows: tests/db/test_usage.py)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from videogen_worker.job import WorkerConfig
from videogen_worker.worker import ReferenceWorker

from videogen.config import Settings
from videogen.media import render
from videogen.media.timeline import OutputPreset
from videogen.rendering import speeds

FIGURE = {"width": 854, "height": 480, "fps": 25, "sections": 13, "factor": 0.21, "renders": 4}
OUT = OutputPreset(quality="480p", fps=25)


class FakeDatabase:
    """Answers service.render_speeds_read as the database does, or fails."""

    def __init__(self, rows: list[dict[str, Any]], fail: bool = False) -> None:
        self.rows, self.fail, self.calls = rows, fail, []

    def rpc(self, name: str, /, **args: Any) -> Any:
        self.calls.append((name, args))
        if self.fail:
            raise ConnectionError("database down")
        return self.rows


@pytest.fixture(autouse=True)
def fresh() -> Any:
    speeds.forget()
    render.seed_factors([])
    yield
    speeds.forget()
    render.seed_factors([])


def test_the_figure_is_read_once_per_refresh_and_seeds_the_prior() -> None:
    now = [100.0]
    db = FakeDatabase([FIGURE])
    assert render.speed_prior(OUT, 13)[1] == "calibrated"
    assert speeds.seed(speeds.fleet_speeds(db, clock=lambda: now[0])) == 1
    assert db.calls == [("service.render_speeds_read", {"hours": speeds.WINDOW_HOURS})]
    assert render.speed_prior(OUT, 13) == (pytest.approx(0.21), "fleet")
    now[0] += speeds.REFRESH_S - 1
    speeds.fleet_speeds(db, clock=lambda: now[0])
    assert len(db.calls) == 1  # cached
    now[0] += 2
    speeds.fleet_speeds(db, clock=lambda: now[0])
    assert len(db.calls) == 2


def test_a_failed_read_never_fails_the_render() -> None:
    now = [0.0]
    good = FakeDatabase([FIGURE])
    assert len(speeds.fleet_speeds(good, clock=lambda: now[0])) == 1
    now[0] += speeds.REFRESH_S
    down = FakeDatabase([], fail=True)
    # The figures read before stay; the next try waits RETRY_S, not every render.
    assert speeds.seed(speeds.fleet_speeds(down, clock=lambda: now[0])) == 1
    speeds.fleet_speeds(down, clock=lambda: now[0] + speeds.RETRY_S - 1)
    assert len(down.calls) == 1
    speeds.forget()
    assert speeds.seed_from_fleet(FakeDatabase([], fail=True)) == 0
    assert render.speed_prior(OUT, 13)[1] == "calibrated"


def test_a_heartbeats_figures_seed_the_worker_and_bad_ones_are_skipped() -> None:
    assert speeds.seed([FIGURE, {"width": "wide"}, {**FIGURE, "factor": 0}]) == 1
    assert render.speed_prior(OUT, 13) == (pytest.approx(0.21), "fleet")


def test_a_worker_seeds_its_priors_from_the_heartbeats_answer(tmp_path: Any) -> None:
    sent: list[dict[str, Any]] = []

    def front_door(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        data = {"worker": {}, "jobs": [], "render_speeds": [FIGURE]}
        return httpx.Response(200, json={"success": True, "data": data})

    settings = Settings(STORAGE_BACKEND="local", STORAGE_ROOT=str(tmp_path / "storage"))
    client = httpx.Client(transport=httpx.MockTransport(front_door))
    worker = ReferenceWorker(
        WorkerConfig(name="w", models=("reference/compose",)), settings, client
    )
    worker.worker_id = "00000000-0000-4000-8000-0000000000ab"
    assert render.speed_prior(OUT, 13)[1] == "calibrated"
    worker.heartbeat()
    assert sent[0]["action"] == "heartbeat"
    assert render.speed_prior(OUT, 13) == (pytest.approx(0.21), "fleet")
