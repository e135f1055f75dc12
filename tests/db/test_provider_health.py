"""The health sweep reads every RunPod serverless endpoint of the catalogue (recorded
/health responses through an httpx transport), and skips RunPod when it is not configured."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from videogen.config import Settings
from videogen.db.connection import PostgresDatabase
from videogen.services.workers import runpod_health

HEALTH = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "providers" / "runpod_health.json").read_text()
)


def test_runpod_endpoints_are_probed(db_url: str) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/health"):
            return httpx.Response(200, json=HEALTH)
        return httpx.Response(404, json={"error": "unexpected"})

    db = PostgresDatabase(db_url)
    try:
        settings = Settings(DATABASE_URL=db_url, RUNPOD_API_KEY="rp_test_key")
        client = httpx.Client(transport=httpx.MockTransport(answer))
        report = runpod_health(db, settings, client)
        # The seed has one RunPod model (its endpoint id is the provider model id).
        assert report == [
            {
                "model": "runpod/wan-2.1-t2v",
                "endpoint": "wan-t2v-endpoint",
                "healthy": True,
                "has_capacity": True,
                "jobs_in_queue": 4,
                "workers_running": 1,
                "workers_idle": 1,
            }
        ]
        assert seen[0].url.path == "/v2/wan-t2v-endpoint/health"
        assert seen[0].headers["authorization"].endswith("rp_test_key")

        down = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(503)))
        [entry] = runpod_health(db, settings, down)
        assert entry["healthy"] is False and entry["error"]
    finally:
        db.close()


def test_runpod_is_skipped_without_a_key(db_url: str) -> None:
    db = PostgresDatabase(db_url)
    try:
        assert runpod_health(db, Settings(DATABASE_URL=db_url), None) == []
    finally:
        db.close()
