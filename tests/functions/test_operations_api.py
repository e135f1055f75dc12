"""health-check-workers /live, /ready and /metrics over real HTTP, and the money audit in
the sweep's answer."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from functions.conftest import METRICS_TOKEN, Api
from prometheus_client.parser import text_string_to_metric_families

from videogen.config import LOCAL_CRON_SECRET, LOCAL_SECRET_KEY

CRON = {"x-cron-secret": LOCAL_CRON_SECRET}


def fresh_worker(api: Api) -> str:
    """A registered (so online, fresh heartbeat) pull worker of a model of its own."""
    return api.pull_worker(api.test_model())


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition by (name, sorted labels)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


# /live -----------------------------------------------------------------------------------


def test_live_needs_nothing_and_touches_nothing(api: Api) -> None:
    assert api.ok(api.get("health-check-workers/live")) == {"status": "ok"}
    # Whatever credentials come along (even wrong ones), a probe is not refused.
    wrong = {"Authorization": "Bearer nonsense", "apikey": "sb_secret_wrong"}
    assert api.ok(api.get("health-check-workers/live", headers=wrong)) == {"status": "ok"}
    assert api.ok(api.get("health-check-workers/live/")) == {"status": "ok"}


def test_live_answers_while_the_database_is_gone(start_server: Any) -> None:
    dead = "postgresql://postgres:postgres@127.0.0.1:9/postgres"
    with start_server(DATABASE_URL=dead, STORAGE_BACKEND="local") as server:
        client = Api(server)
        try:
            started = time.perf_counter()
            assert client.ok(client.get("health-check-workers/live")) == {"status": "ok"}
            assert time.perf_counter() - started < 0.5
            error = client.fails(client.get("health-check-workers/ready"), 503, "NOT_READY")
            assert {d["check"]: d["ok"] for d in error["details"]} == {
                "database": False,
                "storage": True,
                "workers": False,
            }
            resp = client.get("health-check-workers/ready")
            for internal in ("127.0.0.1", ":9", "postgres", "Error", "connection"):
                assert internal not in resp.text, internal
        finally:
            client.close()


# /ready ----------------------------------------------------------------------------------


def test_ready_when_database_storage_and_a_worker_are(api: Api) -> None:
    fresh_worker(api)
    answer = api.ok(api.get("health-check-workers/ready"))
    assert answer == {
        "status": "ready",
        "checks": {"database": True, "storage": True, "workers": True},
    }


def test_not_ready_without_anyone_to_serve_jobs(api: Api) -> None:
    fresh_worker(api)
    api.sql("update public.workers set last_heartbeat_at = now() - interval '1 hour'")
    try:
        error = api.fails(api.get("health-check-workers/ready"), 503, "NOT_READY")
        assert error["details"] == [
            {"check": "database", "ok": True},
            {"check": "storage", "ok": True},
            {"check": "workers", "ok": False},
        ]
        assert error["message"] == "Not ready: workers."
    finally:
        fresh_worker(api)  # leave the shared server with a live worker again


def test_a_configured_provider_with_models_is_someone_to_serve_jobs(
    start_server: Any,
) -> None:
    with start_server(FAL_KEY="fal-test-key") as server:
        client = Api(server)
        try:
            client.sql("delete from public.workers")
            answer = client.ok(client.get("health-check-workers/ready"))
            assert answer["checks"]["workers"] is True
            client.sql("update public.models set is_available = false where provider = 'fal'")
            client.fails(client.get("health-check-workers/ready"), 503, "NOT_READY")
        finally:
            client.close()


def test_not_ready_when_storage_is_unreachable(start_server: Any) -> None:
    # Storage at a port nobody listens on (the server's own Storage API is elsewhere).
    with start_server(SUPABASE_URL="http://127.0.0.1:9", STORAGE_BACKEND="supabase") as server:
        client = Api(server)
        try:
            fresh_worker(client)
            resp = client.get("health-check-workers/ready")
            error = client.fails(resp, 503, "NOT_READY")
            assert {d["check"]: d["ok"] for d in error["details"]}["storage"] is False
            assert "127.0.0.1" not in resp.text and ":9" not in resp.text
        finally:
            client.close()


# /metrics --------------------------------------------------------------------------------


def test_metrics_are_off_without_a_token(api: Api) -> None:
    api.fails(
        api.get("health-check-workers/metrics", headers={"Authorization": "Bearer x"}),
        503,
        "METRICS_NOT_CONFIGURED",
    )


@pytest.fixture
def scrape(metrics_api: Api) -> Iterator[Any]:
    def get(**headers: str) -> httpx.Response:
        auth = {"Authorization": f"Bearer {METRICS_TOKEN}", **headers}
        return metrics_api.get("health-check-workers/metrics", headers=auth)

    yield get


def test_metrics_need_the_token(metrics_api: Api) -> None:
    url = "health-check-workers/metrics"
    metrics_api.fails(metrics_api.get(url), 401)
    metrics_api.fails(metrics_api.get(url, headers={"Authorization": "Bearer wrong"}), 401)
    # Another credential is not a metrics token.
    metrics_api.fails(metrics_api.get(url, headers={"apikey": LOCAL_SECRET_KEY}), 401)
    metrics_api.fails(metrics_api.get(url, headers=CRON), 401)


def test_metrics_count_requests_and_read_the_database(metrics_api: Api, scrape: Any) -> None:
    user = metrics_api.user(credits=100)
    model = metrics_api.test_model()
    worker = metrics_api.pull_worker(model)
    created = metrics_api.post("queue-job", user=user, json={"model": model, "params": {}})
    job = metrics_api.ok(created, 202)
    metrics_api.fails(metrics_api.get("queue-job", params={"id": str(uuid.uuid4())}), 401)
    before = samples(scrape().text)

    metrics_api.get("queue-job", user=user, params={"id": job["id"]})
    resp = scrape()
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    after = samples(resp.text)

    def count(name: str, status: str, method: str = "GET") -> float:
        key = (
            "videogen_http_requests_total",
            (("function", name), ("method", method), ("status", status)),
        )
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert count("queue-job", "200") == 1
    assert count("health-check-workers", "200") == 1  # the scrape before this one
    latency = (
        "videogen_http_request_duration_seconds_count",
        (("function", "queue-job"), ("method", "GET"), ("status", "200")),
    )
    assert after[latency] - before.get(latency, 0.0) == 1
    assert after[("videogen_http_requests_total", (("function", "queue-job"),
                  ("method", "POST"), ("status", "202")))] >= 1  # fmt: skip
    assert after[("videogen_http_requests_total", (("function", "queue-job"),
                  ("method", "GET"), ("status", "401")))] >= 1  # fmt: skip

    # The database's numbers, read at this scrape.
    assert after[("videogen_database_up", ())] == 1
    assert after[("videogen_jobs", (("model", model), ("status", "queued")))] == 1
    assert after[("videogen_queue_depth", (("model", model),))] == 1
    assert after[("videogen_queue_oldest_age_seconds", (("model", model),))] >= 0
    assert after[("videogen_workers_healthy", ())] >= 1
    assert ("videogen_workers", (("status", "online"),)) in after
    reserved = metrics_api.sql(
        "select coalesce(-sum(amount), 0) from public.credit_ledger where kind = 'reserve'"
    )
    assert after[("videogen_credits_ledger", (("kind", "reserved"),))] == reserved
    assert ("videogen_credits_outstanding", (("state", "reserved"),)) in after

    # A claim and a failure show up at the next scrape.
    claimed = metrics_api.signed(
        "health-check-workers", {"action": "claim", "worker_id": worker, "limit": 1}
    )
    [leased] = metrics_api.ok(claimed)
    failed = {
        "type": "failed",
        "job_id": job["id"],
        "attempt": leased["attempt"],
        "error": {"code": "TEST_FAILURE", "message": "boom", "retryable": False},
        # A kind of render no other test makes: 6 s for 12 s of video, 7 sections at once.
        "usage": {
            "renders": [
                {
                    "width": 1234,
                    "height": 678,
                    "fps": 29,
                    "sections": 7,
                    "wall_seconds": 6,
                    "output_seconds": 12,
                }
            ]
        },
    }
    metrics_api.ok(metrics_api.signed("job-callback", failed))
    later = samples(scrape().text)
    speed = (("fps", "29"), ("resolution", "1234x678"), ("sections", "7"))
    assert later[("videogen_render_realtime_factor_by_resolution", speed)] == 0.5
    assert later[("videogen_job_failures", (("error_code", "TEST_FAILURE"),))] >= 1
    assert later[("videogen_jobs", (("model", model), ("status", "failed")))] == 1
    assert later[("videogen_job_attempts", ())] >= 1


def test_an_odd_method_is_counted_as_other(metrics_api: Api, scrape: Any) -> None:
    metrics_api.http.request("BREW", metrics_api.url("queue-job"))
    text = scrape().text
    assert 'method="BREW"' not in text
    assert 'function="queue-job",method="other",status="405"' in text


# The sweep's money audit --------------------------------------------------------------------


def test_the_sweep_reports_the_money_audit(api: Api) -> None:
    summary = api.ok(api.get("health-check-workers", headers=CRON))
    assert summary["money_audit"] == {"differences": 0}


def test_the_sweep_counts_differences_in_the_books(start_server: Any) -> None:
    with start_server() as server:
        client = Api(server)
        try:
            user = client.user(credits=50)
            with psycopg.connect(server.db_url, autocommit=True) as conn, conn.transaction():
                conn.execute("set local session_replication_role = replica")
                conn.execute(
                    "update public.profiles set balance = balance + 5 where id = %s", [user.id]
                )
            summary = client.ok(client.get("health-check-workers", headers=CRON))
            assert summary["money_audit"] == {"differences": 1}
            assert "money audit: balance" in server.logs()
        finally:
            client.close()


def test_the_sweep_writes_the_unit_prices_of_the_environment(start_server: Any) -> None:
    prices = {
        "COST_PER_1K_TOKENS_USD": "0.003",
        "COST_PER_1M_TTS_CHARS_USD": "4",
        "COST_PER_RENDER_HOUR_USD": "0.5",
        "PROVIDER_COST_PER_SECOND_USD": '{"replicate": 0.0014}',
        "CREDIT_VALUE_USD": "0.02",
    }
    with start_server(**prices) as server:
        client = Api(server)
        try:
            client.ok(client.get("health-check-workers", headers=CRON))
            with psycopg.connect(server.db_url, autocommit=True) as conn:
                row = conn.execute("select service.ops_unit_prices_read()").fetchone()
            assert row is not None and row[0] == {
                "cost_per_1k_tokens_usd": 0.003,
                "cost_per_1m_tts_chars_usd": 4,
                "cost_per_render_hour_usd": 0.5,
                "provider_cost_per_second_usd": {"replicate": 0.0014},
                "credit_value_usd": 0.02,
            }
        finally:
            client.close()
