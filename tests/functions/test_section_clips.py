"""Generated clips per section over real HTTP: a compose job's `section_clips` become
text-to-video jobs of their own, priced and reserved in the compose job's transaction; the
compose job waits (queued, not handed to a worker) until each has finished; the reference
worker renders the clip, then the assembly with it. A clip that fails releases its own
reservation and its section falls back to a still. The money audit runs after each test."""

from __future__ import annotations

import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from videogen_worker.job import JobRun, WorkerConfig
from videogen_worker.worker import ReferenceWorker

from videogen.config import Settings

Api = Any  # tests/functions/conftest.py's Api
SCRIPT = {
    "title": "Tides",
    "sections": [
        {"title": "One", "narration": "The sea rises."},
        {"title": "Two", "narration": "Then it falls back again, slowly."},
    ],
}


def balance(api: Api, user: Any) -> tuple[int, int]:
    credits = api.ok(api.get("update-credits", user=user))
    return credits["balance"], credits["reserved"]


def compose_model(api: Api) -> str:
    """A compose model of this test's own (the reference one's row), so only our pull
    worker claims its jobs."""
    model_id = f"test/compose-{uuid.uuid4().hex[:8]}"
    api.sql(
        "insert into public.models select (jsonb_populate_record(null::public.models, "
        "to_jsonb(m) || jsonb_build_object('id', %s::text, 'name', %s::text))).* "
        "from public.models m where m.id = 'reference/compose'",
        [model_id, model_id],
    )
    return model_id


@contextmanager
def worker(api: Api, *models: str) -> Iterator[ReferenceWorker]:
    """The reference worker, run in this process against the test server."""
    names = {f.alias for f in Settings.model_fields.values() if f.alias}
    settings = Settings(**{k: v for k, v in api.server.env.items() if k in names})
    config = WorkerConfig(name="ref", models=models, functions_url=api.url(""), mode="pull")
    with httpx.Client(timeout=60) as client:
        ref = ReferenceWorker(config, settings, client)
        try:
            yield ref
        finally:
            ref.storage.close()


def claim(api: Api, worker_id: str) -> list[dict[str, Any]]:
    resp = api.signed("health-check-workers", {"action": "claim", "worker_id": worker_id})
    return list(api.ok(resp))


def run_claimed(api: Api, ref: ReferenceWorker, worker_id: str) -> str:
    """Claim one job as a pull worker and let the reference worker render and report it."""
    [item] = claim(api, worker_id)
    ref._execute(JobRun.of(item, callback_url=api.url("job-callback")))
    return str(item["job_id"])


def job(api: Api, user: Any, job_id: str) -> dict[str, Any]:
    return dict(api.ok(api.get("queue-job", user=user, params={"id": job_id})))


def corner_rgb(api: Api, path: str, at_s: float) -> tuple[int, int, int]:
    """The mean colour of a 16x16 corner of a stored video's frame at ``at_s``."""
    storage = api.storage()
    try:
        data = storage.download("videos", path)
    finally:
        storage.close()
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "v.mp4"
        video.write_bytes(data)
        raw = subprocess.run(
            ["ffmpeg", "-v", "error", "-ss", f"{at_s:.2f}", "-i", str(video), "-frames:v", "1",
             "-vf", "crop=16:16:4:4", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
            capture_output=True, check=True,
        ).stdout  # fmt: skip
    n = len(raw) // 3
    return tuple(sum(raw[i::3]) // n for i in range(3))  # type: ignore[return-value]


def make(api: Api, user: Any, compose: str, clip_model: str) -> dict[str, Any]:
    params = {
        "script": SCRIPT, "resolution": "480p", "duration": 30,
        "section_clips": [None, {"model": clip_model, "prompt": "waves at dusk", "duration": 2}],
    }  # fmt: skip
    return dict(
        api.ok(api.post("queue-job", user=user, json={"model": compose, "params": params}), 202)
    )


def _check_waiting_over(api: Api, user: Any, parent_id: str, child_id: str) -> str:
    """After the clip completed: the compose job waits no more and knows the clip's video."""
    child = job(api, user, child_id)
    assert child["status"] == "completed", child
    parent = job(api, user, parent_id)
    clip = parent["params"]["section_clips"][1]
    assert parent["waiting_for"] == [] and clip["status"] == "completed"
    assert clip["video_path"] == child["output"]["video_path"]
    return parent_id


def test_a_generated_section_clip_is_used_in_the_assembly(api: Api) -> None:
    user = api.user(credits=300)
    clip_model, compose = api.test_model(), compose_model(api)
    clip_worker, compose_worker = api.pull_worker(clip_model), api.pull_worker(compose)
    start = balance(api, user)
    parent = make(api, user, compose, clip_model)
    child_id = parent["params"]["section_clips"][1]["job_id"]
    assert parent["status"] == "queued" and parent["waiting_for"] == [child_id]
    assert parent["params"]["section_clips"][0] is None
    child = job(api, user, child_id)
    assert (child["parent_job_id"], child["job_type"], child["status"]) == (
        parent["id"], "text_to_video", "queued",
    )  # fmt: skip
    assert child["params"]["prompt"] == "waves at dusk" and child["params"]["duration"] == 2
    # Both reserved, in the one transaction that made them.
    assert balance(api, user) == (start[0] - parent["cost"] - child["cost"],
                                  parent["cost"] + child["cost"])  # fmt: skip
    # The assembly is not handed out while its clip runs.
    assert claim(api, compose_worker) == []

    with worker(api, clip_model, compose) as ref:
        assert run_claimed(api, ref, clip_worker) == child_id
        assembled_id = _check_waiting_over(api, user, parent["id"], child_id)
        assert run_claimed(api, ref, compose_worker) == assembled_id
    child = job(api, user, child_id)
    done = job(api, user, parent["id"])
    assert done["status"] == "completed", done
    out = done["output"]
    assert (out["width"], out["height"]) == (854, 480) and out["duration_s"] > 2
    # Section two shows the generated clip (its prompt's colour), section one a title card.
    second = done["output"]["duration_s"] - 0.5
    clip_colour = corner_rgb(api, child["output"]["video_path"], 1.0)
    assembled = corner_rgb(api, out["video_path"], second)
    first = corner_rgb(api, out["video_path"], 0.8)
    assert all(abs(a - b) <= 12 for a, b in zip(assembled, clip_colour, strict=True)), (
        assembled, clip_colour,
    )  # fmt: skip
    assert any(abs(a - b) > 12 for a, b in zip(first, clip_colour, strict=True))
    spent = done["credits_used"] + child["credits_used"]
    assert balance(api, user) == (start[0] - spent, 0)


def test_a_failed_clip_falls_back_to_a_still_and_releases_its_credits(api: Api) -> None:
    user = api.user(credits=300)
    clip_model, compose = api.test_model(max_attempts=1), compose_model(api)
    clip_worker, compose_worker = api.pull_worker(clip_model), api.pull_worker(compose)
    start = balance(api, user)
    parent = make(api, user, compose, clip_model)
    child_id = parent["params"]["section_clips"][1]["job_id"]
    [item] = claim(api, clip_worker)
    failed = api.signed(
        "job-callback",
        {"type": "failed", "job_id": child_id, "attempt": item["attempt"],
         "error": {"code": "MODEL_ERROR", "message": "the model gave up", "retryable": False}},
    )  # fmt: skip
    assert failed.status_code == 200, failed.text
    child = job(api, user, child_id)
    assert child["status"] == "failed" and child["credits_used"] is None
    # The clip's own failure released its reservation; the assembly's is still held.
    assert balance(api, user) == (start[0] - parent["cost"], parent["cost"])
    parent = job(api, user, parent["id"])
    clip = parent["params"]["section_clips"][1]
    assert parent["waiting_for"] == [] and clip["status"] == "failed"
    assert clip["error_code"] == "MODEL_ERROR" and "video_path" not in clip

    with worker(api, compose) as ref:
        assert run_claimed(api, ref, compose_worker) == parent["id"]
    done = job(api, user, parent["id"])
    assert done["status"] == "completed", done
    # Section two is a title card (its slate colour), not a clip.
    second = corner_rgb(api, done["output"]["video_path"], done["output"]["duration_s"] - 0.5)
    assert all(abs(a - b) <= 12 for a, b in zip(second, (0x1E, 0x29, 0x3B), strict=True)), second
    assert balance(api, user) == (start[0] - done["credits_used"], 0)
    kinds = api.sql(
        "select array_agg(kind::text order by id) from public.credit_ledger where job_id = %s",
        [child_id],
    )
    assert kinds == ["reserve", "release"]


def test_section_clips_are_refused_in_a_batch_and_for_a_non_clip_model(api: Api) -> None:
    user = api.user(credits=300)
    clip_model = api.test_model()
    params = {"script": SCRIPT, "section_clips": [{"model": clip_model, "prompt": "x"}]}
    api.fails(
        api.post("queue-job/batches", user=user,
                 json={"items": [{"model": "reference/compose", "params": params}]}),
        422, "INVALID_PARAMS",
    )  # fmt: skip
    wrong = {"script": SCRIPT, "section_clips": [{"model": "reference/compose", "prompt": "x"}]}
    api.fails(
        api.post("queue-job", user=user, json={"model": "reference/compose", "params": wrong}),
        422,
        "INVALID_PARAMS",
    )
    assert balance(api, user) == (300, 0)


def test_canceling_the_compose_job_cancels_its_running_clip(api: Api) -> None:
    """The owner cancels the assembly while its clip runs: the clip is canceled with it (its
    credits released, the worker's late report not applied) and every credit is back."""
    user = api.user(credits=300)
    clip_model, compose = api.test_model(), compose_model(api)
    clip_worker = api.pull_worker(clip_model)
    start = balance(api, user)
    parent = make(api, user, compose, clip_model)
    child_id = parent["params"]["section_clips"][1]["job_id"]
    [item] = claim(api, clip_worker)

    canceled = api.ok(api.delete("queue-job", user=user, params={"id": parent["id"]}))

    assert canceled["job"]["status"] == "canceled"
    child = job(api, user, child_id)
    assert (child["status"], child["error_code"]) == ("canceled", "PARENT_CANCELED")
    assert balance(api, user) == (start[0], 0)
    late = api.signed(
        "job-callback",
        {"type": "completed", "job_id": child_id, "attempt": item["attempt"], "output": {}},
    )
    assert (api.ok(late)["applied"], api.ok(late)["job"]["status"]) == (False, "canceled")
    assert job(api, user, parent["id"])["params"]["section_clips"][1]["status"] == "canceled"
    assert balance(api, user) == (start[0], 0)
