"""A compose job that ends early takes its section clips with it (module 04's
private.section_clips_cancel): whoever ends it — its owner, the deadline sweep, an admin —
every unfinished clip is canceled in the same transaction, its reservation released, and
whoever runs a clip is named to be told (private.job_cancellation's `clips`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from db.helpers import (
    Conn,
    as_service,
    assert_books_balance,
    claim,
    for_user,
    job_row,
    ledger,
    profile,
    register_worker,
)

T2V = "reference/text-to-video"
CLIP = {"model": T2V, "prompt": "waves at dusk", "duration": 2}
PARAMS = {
    "script": {
        "title": "Tides",
        "sections": [
            {"title": "One", "narration": "The sea rises."},
            {"title": "Two", "narration": "Then it falls back."},
            {"title": "Three", "narration": "And rises again."},
        ],
    },
    "resolution": "480p",
    "duration": 30,
    "section_clips": [CLIP, None, CLIP],
}


def compose_with_clips(db: Conn, user: uuid.UUID) -> tuple[dict[str, Any], list[str], str]:
    """A compose job with two generated clips, the first claimed by a pull worker: (the
    compose job, the clips' ids, that worker's id)."""
    parent = for_user(db, user, "service.job_create", "reference/compose", PARAMS)
    clips = [c["job_id"] for c in parent["params"]["section_clips"] if c is not None]
    assert parent["waiting_for"] == clips and len(clips) == 2
    worker_id = register_worker(db, models=[T2V], capacity=1)
    assert [j["id"] for j in claim(db, worker_id)] == [clips[0]]
    return parent, clips, worker_id


def cancel_as_owner(db: Conn, user: uuid.UUID, job_id: str) -> dict[str, Any]:
    told: dict[str, Any] = for_user(db, user, "service.job_cancel", job_id)
    return told


def cancel_by_deadline(db: Conn, user: uuid.UUID, job_id: str) -> dict[str, Any]:
    db.execute("update public.jobs set deadline_at = now() where id = %s", (job_id,))
    swept = as_service(db, "service.jobs_cancel_overdue")
    assert swept["canceled"] == 1, swept  # the compose job; its clips go with it, unswept
    (told,) = swept["running"]
    return dict(told)


def fail_by_admin(db: Conn, user: uuid.UUID, job_id: str) -> dict[str, Any]:
    told: dict[str, Any] = as_service(db, "service.admin_job_fail", job_id, "stuck")
    return told


ENDERS: dict[str, tuple[Callable[[Conn, uuid.UUID, str], dict[str, Any]], str, str]] = {
    "owner": (cancel_as_owner, "CANCELED", "PARENT_CANCELED"),
    "deadline": (cancel_by_deadline, "DEADLINE", "PARENT_CANCELED"),
    "admin": (fail_by_admin, "ADMIN_FAILED", "PARENT_FAILED"),
}


@pytest.mark.parametrize("ender", sorted(ENDERS))
def test_ending_a_compose_job_cancels_its_unfinished_clips_and_releases_them(
    db: Conn, user: uuid.UUID, ender: str
) -> None:
    end, parent_code, clip_code = ENDERS[ender]
    parent, clips, worker_id = compose_with_clips(db, user)
    assert profile(db, user)[1] == parent["cost"] + sum(job_row(db, c)["cost"] for c in clips)

    told = end(db, user, parent["id"])

    assert job_row(db, parent["id"])["error_code"] == parent_code
    for clip_id in clips:
        row = job_row(db, clip_id)
        assert (row["status"], row["error_code"]) == ("canceled", clip_code), row
        assert parent["id"] in row["error_message"]
        assert [k for k, _, _ in ledger(db, clip_id)] == ["reserve", "release"]
    # Every credit is back, and the compose job knows how each section ended.
    assert profile(db, user) == (1000, 0)
    after = job_row(db, parent["id"])
    assert after["waiting_for"] == []
    assert [c and c["status"] for c in after["params"]["section_clips"]] == [
        "canceled", None, "canceled",
    ]  # fmt: skip
    # Only the claimed clip has somebody to tell: its worker.
    (notice,) = told["clips"]
    assert notice["job"]["id"] == clips[0] and notice["notify"]["worker_id"] == worker_id
    assert notice["job"]["status"] == "canceled"
    assert_books_balance(db, user)


def test_clips_that_finished_before_the_cancel_stay_as_they_are(db: Conn, user: uuid.UUID) -> None:
    parent, clips, _ = compose_with_clips(db, user)
    for_user(db, user, "service.job_cancel", clips[1])  # the owner cancels one clip alone
    assert job_row(db, parent["id"])["waiting_for"] == [clips[0]]

    told = for_user(db, user, "service.job_cancel", parent["id"])

    assert job_row(db, clips[1])["error_code"] == "CANCELED"  # not rewritten
    assert job_row(db, clips[0])["error_code"] == "PARENT_CANCELED"
    assert [n["job"]["id"] for n in told["clips"]] == [clips[0]]
    assert [k for k, _, _ in ledger(db, clips[1])] == ["reserve", "release"]  # released once
    assert profile(db, user) == (1000, 0)
    assert_books_balance(db, user)


def test_a_job_without_clips_names_none(db: Conn, user: uuid.UUID) -> None:
    plain = for_user(db, user, "service.job_create", T2V, {"prompt": "a cat"})
    assert for_user(db, user, "service.job_cancel", plain["id"])["clips"] == []
    assert_books_balance(db, user)
