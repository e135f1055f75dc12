"""Module 17: a completion stores what the job consumed in the capture's transaction; the
cost views price it exactly with the unit prices in private.settings; anon and
authenticated can read none of it."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from db.helpers import (
    FAL,
    T2V,
    Conn,
    as_service,
    create_job,
    create_user,
    dispatched_job,
    job_row,
    raises_sqlstate,
    select_as,
)
from psycopg.types.json import Jsonb

from videogen.db.connection import PostgresDatabase
from videogen.media import render
from videogen.media.timeline import OutputPreset
from videogen.rendering import speeds

PRICES = {
    "cost_per_1k_tokens_usd": 0.002,
    "cost_per_1m_tts_chars_usd": 15,
    "cost_per_render_hour_usd": 0.36,
    "credit_value_usd": 0.01,
    "provider_cost_per_second_usd": {"reference": 0.001, "fal": 0.05},
}


def usage_row(conn: Conn, job_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        "select to_jsonb(u) - 'created_at' - 'updated_at' from private.job_usage u"
        " where job_id = %s",
        (job_id,),
    ).fetchone()
    return None if row is None else row[0]


def completed(conn: Conn, job: dict[str, Any], usage: Any, credits_used: int | None = None) -> Any:
    report = {"type": "completed", "job_id": job["id"], "attempt": job["attempt"], "output": {}}
    if credits_used is not None:
        report["credits_used"] = credits_used
    if usage is not None:
        report["usage"] = usage
    return as_service(conn, "service.job_report", f"msg_{uuid.uuid4().hex}", "worker", report)


def costs(conn: Conn, job_id: str) -> dict[str, Any]:
    [row] = select_as(
        conn,
        "service_role",
        None,
        "select to_jsonb(c) from service.ops_job_costs c where job_id = %s",
        (job_id,),
    )
    result: dict[str, Any] = row[0]
    return result


def test_a_completion_stores_its_usage_with_the_capture(db: Conn, user: uuid.UUID) -> None:
    job, _ = dispatched_job(db, user)
    usage = {
        "llm_model": "gpt-4o-mini",
        "prompt_tokens": 120,
        "completion_tokens": 380,
        "tts_engine": "espeak",
        "tts_characters": 812,
        "provider_calls": 2,
        "provider_seconds": 12.5,
        "render_seconds": 7.25,
        "render_output_seconds": 24,
    }
    change = completed(db, job, usage, credits_used=3)
    assert change["applied"] is True and change["job"]["status"] == "completed"
    assert usage_row(db, job["id"]) == {
        "job_id": job["id"],
        **usage,
        "provider_cost_usd": None,
        "reports": 1,
    }


def test_a_stale_or_repeated_report_records_nothing_more(db: Conn, user: uuid.UUID) -> None:
    job, _ = dispatched_job(db, user)
    report = {
        "type": "completed",
        "job_id": job["id"],
        "attempt": job["attempt"],
        "output": {},
        "usage": {"prompt_tokens": 10},
    }
    assert as_service(db, "service.job_report", "msg_same", "worker", report)["applied"] is True
    again = as_service(db, "service.job_report", "msg_same", "worker", report)
    assert again == {"applied": False, "reason": "duplicate_delivery"}
    stale = as_service(db, "service.job_report", "msg_other", "worker", report)
    assert stale["applied"] is False
    row = usage_row(db, job["id"])
    assert row is not None and row["prompt_tokens"] == 10 and row["reports"] == 1


def test_failed_attempts_add_up_their_usage(db: Conn, user: uuid.UUID) -> None:
    job, worker = dispatched_job(db, user)
    failed = {
        "type": "failed",
        "job_id": job["id"],
        "attempt": job["attempt"],
        "error": {"code": "OOM", "message": "x", "retryable": True},
        "usage": {"provider_calls": 1, "provider_seconds": 4, "provider_cost_usd": 0.5},
    }
    assert as_service(db, "service.job_report", None, "worker", failed)["job"]["status"] == "queued"
    db.execute("update public.jobs set run_after = now() where id = %s", (job["id"],))
    [again] = as_service(db, "service.worker_claim", worker, 1)
    completed(db, again, {"provider_calls": 1, "provider_seconds": 6})
    row = usage_row(db, job["id"])
    assert row is not None
    assert (row["provider_calls"], row["provider_seconds"], row["reports"]) == (2, 10, 2)
    assert row["provider_cost_usd"] == 0.5  # the one reported cost is kept


@pytest.mark.parametrize(
    "usage",
    [
        [],
        {"prompt_tokens": -1},
        {"prompt_tokens": 1.5},
        {"prompt_tokens": "12"},
        {"render_seconds": -0.1},
        {"llm_model": ""},
        {"llm_model": 7},
        {"tokens": 3},
    ],
)
def test_a_malformed_usage_applies_nothing(db: Conn, user: uuid.UUID, usage: Any) -> None:
    job, _ = dispatched_job(db, user)
    with raises_sqlstate("VGU22", case=usage):
        completed(db, job, usage)
    assert job_row(db, job["id"])["status"] == "dispatched"
    assert usage_row(db, job["id"]) is None
    # No receipt was kept either: the same job completes with a good usage.
    assert completed(db, job, {"prompt_tokens": 1})["applied"] is True


def test_the_cost_of_a_job_and_its_margin_are_exact(db: Conn, user: uuid.UUID) -> None:
    as_service(db, "service.ops_unit_prices_set", PRICES)
    job, _ = dispatched_job(db, user)
    completed(
        db,
        job,
        {
            "prompt_tokens": 1500,
            "completion_tokens": 500,  # 2000 tokens x 0.002 / 1k = 0.004
            "tts_characters": 20000,  # x 15 / 1M = 0.3
            "provider_calls": 1,
            "provider_seconds": 30,  # no reported cost: x reference's 0.001 = 0.03
            "render_seconds": 10,  # x 0.36 / 3600 = 0.001
            "render_output_seconds": 40,
        },
        credits_used=5,  # x 0.01 = 0.05
    )
    row = costs(db, job["id"])
    money = {
        k: Decimal(str(row[k]))
        for k in (
            "credits_usd",
            "llm_cost_usd",
            "tts_cost_usd",
            "provider_cost_usd",
            "render_cost_usd",
            "cost_usd",
            "margin_usd",
        )
    }
    assert money == {
        "credits_usd": Decimal("0.05"),
        "llm_cost_usd": Decimal("0.004"),
        "tts_cost_usd": Decimal("0.3"),
        "provider_cost_usd": Decimal("0.03"),
        "render_cost_usd": Decimal("0.001"),
        "cost_usd": Decimal("0.335"),
        "margin_usd": Decimal("-0.285"),
    }
    assert row["credits_captured"] == 5 and row["has_usage"] is True
    assert row["render_realtime_factor"] == 0.25
    assert row["provider"] == "reference"


def test_a_reported_provider_cost_wins_over_the_per_second_price(db: Conn, user: uuid.UUID) -> None:
    as_service(db, "service.ops_unit_prices_set", PRICES)
    job, _ = dispatched_job(db, user)
    completed(db, job, {"provider_seconds": 100, "provider_cost_usd": 0.125})
    assert Decimal(str(costs(db, job["id"])["provider_cost_usd"])) == Decimal("0.125")


def test_failed_and_unrecorded_jobs_cost_what_they_consumed(db: Conn, user: uuid.UUID) -> None:
    as_service(db, "service.ops_unit_prices_set", PRICES)
    job, _ = dispatched_job(db, user)
    failed = {
        "type": "failed",
        "job_id": job["id"],
        "attempt": job["attempt"],
        "error": {"code": "X", "message": "x", "retryable": False},
        "usage": {"prompt_tokens": 1000},
    }
    as_service(db, "service.job_report", None, "worker", failed)
    row = costs(db, job["id"])
    assert row["credits_captured"] == 0
    assert Decimal(str(row["margin_usd"])) == Decimal("-0.002")
    bare, _ = dispatched_job(db, user)
    as_service(db, "service.job_complete", bare["id"], bare["attempt"], {}, 2)
    row = costs(db, bare["id"])
    assert row["has_usage"] is False and Decimal(str(row["cost_usd"])) == 0
    assert Decimal(str(row["margin_usd"])) == Decimal("0.02")
    unfinished = create_job(db, user)
    assert not select_as(
        db, "service_role", None, "select 1 from service.ops_job_costs where job_id = %s",
        (unfinished["id"],),
    )  # fmt: skip


def test_daily_costs_add_up_per_day_and_model(db: Conn, user: uuid.UUID) -> None:
    as_service(db, "service.ops_unit_prices_set", PRICES)
    one, _ = dispatched_job(db, user)
    completed(db, one, {"prompt_tokens": 1000, "render_seconds": 3600}, credits_used=10)
    two, _ = dispatched_job(db, user)
    completed(db, two, {"tts_characters": 1000000}, credits_used=8)
    [day] = select_as(
        db,
        "service_role",
        None,
        "select finished, completed, with_usage, credits_captured, credits_usd, cost_usd,"
        " margin_usd, margin_rate, cost_per_completed_usd, prompt_tokens, tts_characters,"
        " render_seconds from service.ops_costs_daily",
    )
    # cost: 0.002 + 0.36 (one), 15 (two) = 15.362; credits 18 x 0.01 = 0.18
    assert [Decimal(str(v)) for v in day] == [
        2, 2, 2, 18, Decimal("0.18"), Decimal("15.362"), Decimal("-15.182"),
        Decimal("-84.3444"), Decimal("7.681"), 1000, 1000000, 3600,
    ]  # fmt: skip
    rows = select_as(
        db,
        "service_role",
        None,
        "select model_id, job_type, finished, cost_usd from service.ops_costs_daily_by_model",
    )
    assert [(m, t, n, Decimal(str(c))) for m, t, n, c in rows] == [
        (T2V, "text_to_video", 2, Decimal("15.362"))
    ]


def test_unit_prices_are_set_and_checked(db: Conn) -> None:
    prices = as_service(db, "service.ops_unit_prices_set", PRICES)
    assert prices == PRICES
    assert as_service(db, "service.ops_unit_prices_set", {"credit_value_usd": 0.02})[
        "credit_value_usd"
    ]
    for bad in (
        {"credit_value_usd": -1},
        {"credit_value_usd": "1"},
        {"provider_cost_per_second_usd": {"fal": -0.1}},
        {"provider_cost_per_second_usd": 3},
        {"cost_per_token": 1},
        Jsonb([]),
    ):
        with raises_sqlstate("VG400", case=bad):
            as_service(db, "service.ops_unit_prices_set", bad)


def test_the_provider_rate_applies_to_the_jobs_provider(db: Conn, user: uuid.UUID) -> None:
    as_service(db, "service.ops_unit_prices_set", PRICES)
    job = create_job(db, user, FAL)
    opened = as_service(db, "service.job_dispatch_external", job["id"])
    as_service(db, "service.job_set_provider_id", job["id"], opened["attempt"], "fal-app/req-1")
    completed(db, opened, {"provider_calls": 1, "provider_seconds": 2})
    row = costs(db, job["id"])
    assert row["provider"] == "fal"
    assert Decimal(str(row["provider_cost_usd"])) == Decimal("0.1")


def test_measured_render_factor_is_in_the_metrics(db: Conn, user: uuid.UUID) -> None:
    job, _ = dispatched_job(db, user)
    completed(db, job, {"render_seconds": 6, "render_output_seconds": 12})
    metrics = as_service(db, "service.ops_metrics_read")
    assert metrics["render_realtime_factor_measured"] == [{"model": T2V, "factor": 0.5, "jobs": 1}]
    assert "render_realtime_factor" in metrics


def render_of(width: int, height: int, fps: int, sections: int, wall: float, made: float) -> Any:
    return {
        "width": width,
        "height": height,
        "fps": fps,
        "sections": sections,
        "wall_seconds": wall,
        "output_seconds": made,
    }


def test_render_speeds_are_kept_per_kind_and_read_over_a_window(db: Conn, user: uuid.UUID) -> None:
    first, _ = dispatched_job(db, user)
    second, _ = dispatched_job(db, user)
    completed(
        db,
        first,
        {
            "render_seconds": 20,
            "render_output_seconds": 60,
            "renders": [render_of(1280, 720, 30, 2, 12, 60), render_of(854, 480, 30, 2, 3, 30)],
        },
    )
    completed(db, second, {"renders": [render_of(1280, 720, 30, 2, 18, 60)]})
    rows = db.execute(
        "select job_id::text, width, height, fps, sections, wall_seconds, output_seconds"
        " from private.render_speeds order by id"
    ).fetchall()
    assert [r[0] for r in rows] == [first["id"], first["id"], second["id"]]
    # Per kind: wall seconds over output seconds of all its renders.
    assert as_service(db, "service.render_speeds_read", 24) == [
        {"width": 854, "height": 480, "fps": 30, "sections": 2, "factor": 0.1, "renders": 1},
        {"width": 1280, "height": 720, "fps": 30, "sections": 2, "factor": 0.25, "renders": 2},
    ]
    # The window: a render of 30 h ago counts for 48 h, not for 24.
    db.execute(
        "update private.render_speeds set recorded_at = now() - interval '30 hours'"
        " where job_id = %s",
        (second["id"],),
    )
    assert [r["factor"] for r in as_service(db, "service.render_speeds_read", 24)] == [0.1, 0.2]
    assert [r["factor"] for r in as_service(db, "service.render_speeds_read", 48)] == [0.1, 0.25]
    # /metrics reads the last 24 h per kind beside the per-model figure.
    metrics = as_service(db, "service.ops_metrics_read")
    assert metrics["render_speeds"] == as_service(db, "service.render_speeds_read", 24)
    for hours in (0, 721, None):
        with raises_sqlstate("VG400", case=hours):
            as_service(db, "service.render_speeds_read", hours)


@pytest.mark.parametrize(
    "renders",
    [
        {"width": 1280},
        [render_of(1280, 720, 30, 2, 1, 1) | {"extra": 1}],
        [render_of(0, 720, 30, 2, 1, 1)],
        [render_of(1280, 720, 30, 2, 0, 1)],
        [render_of(1280, 720, 30, 2.5, 1, 1)],
        [{k: str(v) for k, v in render_of(1280, 720, 30, 2, 1, 1).items()}],
        [render_of(1280, 720, 30, 2, 1, 1)] * 101,
    ],
)
def test_malformed_renders_are_refused_and_nothing_applies(shared_db: Conn, renders: Any) -> None:
    job = {"id": str(uuid.uuid4()), "attempt": 1}  # the usage is checked before the job
    with raises_sqlstate("VGU22", case=renders):
        completed(shared_db, job, {"renders": renders})


def test_a_fresh_process_starts_from_the_stored_figure(
    db: Conn, db_url: str, user: uuid.UUID
) -> None:
    """A process that has not rendered 1280x720 at 25 fps with 9 sections yet seeds its
    prior from the database's figure (through services' typed SQL API, cached), and the
    render estimate uses it."""
    job, _ = dispatched_job(db, user)
    completed(db, job, {"renders": [render_of(1280, 720, 25, 9, 13.5, 45)]})
    out = OutputPreset(quality="720p", fps=25)
    speeds.forget()
    render.seed_factors([])
    assert render.speed_prior(out, 9)[1] == "calibrated"
    database = PostgresDatabase(db_url)
    try:
        assert speeds.seed_from_fleet(database) == 1
        assert render.speed_prior(out, 9) == (pytest.approx(0.3), "fleet")
    finally:
        database.close()
        speeds.forget()
        render.seed_factors([])


@pytest.mark.parametrize(
    "call",
    [
        "select service.render_speeds_read(24)",
        "select * from private.render_speeds",
        "select * from service.ops_job_costs",
        "select * from service.ops_costs_daily",
        "select * from service.ops_costs_daily_by_model",
        "select service.ops_unit_prices_read()",
        "select service.ops_unit_prices_set('{}')",
        "select * from private.job_usage",
    ],
)
@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_costs_are_for_the_service_only(db: Conn, call: str, role: str) -> None:
    user = create_user(db) if role == "authenticated" else None
    with raises_sqlstate("42501", case=(role, call)):
        select_as(db, role, user, call)
