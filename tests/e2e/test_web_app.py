"""The reference web app (/app/) in headless Chromium, against a real dev server and two
reference workers: anonymous and email sign-in, claim, upload, text- and image-to-video
with live progress to 100 %, play the video, cancel a running job, page through history,
and an API error as a person reads it; then the workspace: a project, quotes, a batch
followed to 100 % over Realtime, ETAs, the history of one project, the theme kept across a
reload; then the creator's tools: a prompt improved and used (the job keeps both), and the
wizard step by step, from a topic to the video played. Driven by tests/e2e/js/web_app.mjs
(playwright-core from npm, `make setup`); what the page showed is checked against the
database."""

from __future__ import annotations

import itertools
import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_stack import Stack
from videogen_dev.stack import REFERENCE_MODELS

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("js") / "web_app.mjs"
SCREENSHOTS = ROOT / ".videogen" / "screenshots"  # gitignored
SHOTS = {
    "full": "web-app.png",
    "fallback": "web-app-polling.png",
    "workspace": "web-app-workspace.png",
    "wizard": "web-app-wizard.png",
}


def _still(path: Path) -> Path:
    """A real 640x360 PNG (ffmpeg's test card)."""
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=640x360",
         "-frames:v", "1", str(path)],
        check=True,
    )  # fmt: skip
    return path


def _static_files(base: str) -> None:
    """What /app/ serves, and what it refuses, before a browser opens it."""
    with httpx.Client(base_url=base, timeout=10) as http:
        for path, kind in [
            ("/app/", "text/html"),
            ("/app/app.js", "text/javascript"),
            ("/app/style.css", "text/css"),
            ("/app/vendor/supabase.js", "text/javascript"),
            ("/app/config.json", "application/json"),
        ]:
            resp = http.get(path)
            assert resp.status_code == 200, (path, resp.text[:200])
            assert resp.headers["content-type"].startswith(kind), path
            assert resp.headers["cache-control"] == "no-cache", path
        config = http.get("/app/config.json").json()
        assert set(config) == {"publishable_key"}
        assert config["publishable_key"].startswith("sb_publishable_")
        assert http.get("/app").headers["location"] == "/app/"
        for resp in (http.get("/app/nope.js"), http.get("/app/vendor/x.js")):
            assert resp.status_code == 404
            assert resp.json() == {
                "success": False,
                "error": {"code": "NOT_FOUND", "message": "No such file."},
            }
        refused = http.post("/app/config.json")
        assert refused.status_code == 405 and refused.json()["success"] is False


def _run_page(
    stack: Stack, browser: tuple[str, str], tmp_path: Path, scenario: str, capsys: Any
) -> dict[str, Any]:
    """Two reference workers, then the node script in Chromium; what the page showed."""
    for name in ("web-w1", "web-w2"):
        stack.start_worker(name, "--speed", "1", models=REFERENCE_MODELS)
    node, chromium = browser
    screenshot = tmp_path / SHOTS[scenario]
    done = subprocess.run(
        [node, str(SCRIPT), stack.server.base, str(_still(tmp_path / "still.png")),
         str(screenshot), str(tmp_path / "chromium-profile"), chromium, scenario],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    print(done.stderr)
    assert done.returncode == 0, done.stderr[-4000:]
    seen: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert screenshot.stat().st_size > 10_000
    copy = SCREENSHOTS / screenshot.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(screenshot, copy)
    video = f"; video {seen['video']['duration']:.2f} s" if "video" in seen else ""
    with capsys.disabled():
        print(
            f"\nweb app ({scenario}): live updates from {seen['live_source']!r} "
            f"({seen['live_counts']}; channel {seen['channel_status']}); "
            f"progress seen {seen['progress_seen']}{video}; "
            f"browser run {seen['seconds']:.1f} s\nscreenshot: {screenshot} (copied to {copy})"
        )
    assert seen["page_errors"] == []
    return seen


def _counts(seen: dict[str, Any]) -> tuple[int, int]:
    """(broadcasts received, polls made), from the page's "N broadcasts, M polls"."""
    broadcasts, polls = (int(part.split()[0]) for part in seen["live_counts"].split(","))
    return broadcasts, polls


def test_web_app_end_to_end(stack: Stack, browser: tuple[str, str], tmp_path: Path, capsys):
    _static_files(stack.server.base)
    seen = _run_page(stack, browser, tmp_path, "full", capsys)

    # A visitor signed in anonymously and claimed the anonymous grant; then an email user
    # signed up (confirmed at once), out and in again, and claimed the full grant.
    grants = {
        r["name"]: int(r["value"])
        for r in stack.sql(
            "select name, value from private.settings where name in "
            "('initial_grant_credits', 'initial_grant_credits_anonymous')"
        )
    }
    anonymous = seen["anonymous"]
    assert stack.sql("select is_anonymous from auth.users where id = %s", anonymous["id"]) == [
        {"is_anonymous": True}
    ]
    assert anonymous["claim"] == {
        "before": 0,
        "after": grants["initial_grant_credits_anonymous"],
        "disabled": True,
    }
    uid = seen["user_id"]
    assert uid == seen["signed_up"]["id"] != anonymous["id"]
    assert stack.sql("select email, is_anonymous from auth.users where id = %s", uid) == [
        {"email": seen["signed_up"]["email"], "is_anonymous": False}
    ]
    assert seen["jobs_shown_after_switch"] == 0
    assert (seen["balance_before"], seen["balance_claimed"]) == (0, grants["initial_grant_credits"])
    assert seen["claim_disabled"] is True

    # The upload is the user's own object, and the image-to-video job used it.
    assert seen["upload_path"].startswith(f"{uid}/") and seen["upload_path"].endswith(".png")
    [upload] = stack.sql(
        "select metadata ->> 'mimetype' as type, owner_id from storage.objects "
        "where bucket_id = 'uploads' and name = %s",
        seen["upload_path"],
    )
    assert upload == {"type": "image/png", "owner_id": uid}
    t2v, i2v = stack.job_row(seen["t2v"]), stack.job_row(seen["i2v"])
    assert (t2v["model_id"], t2v["status"]) == ("reference/text-to-video", "completed")
    assert (i2v["model_id"], i2v["status"]) == ("reference/image-to-video", "completed")
    assert i2v["params"]["image_path"] == seen["upload_path"]
    compose = stack.job_row(seen["compose"])
    assert (compose["model_id"], compose["status"]) == ("reference/compose", "completed")
    assert compose["params"]["images"] == [seen["upload_path"]]
    assert compose["params"]["sections"] == 1
    assert t2v["user_id"] == i2v["user_id"] == compose["user_id"] == uid

    # Progress moved in the page and reached 100 %, for each job: never backwards within an
    # attempt (a composed video whose in-request render ran past its deadline goes on as a
    # worker's attempt, whose progress starts again).
    for job_id in (seen["t2v"], seen["i2v"], seen["compose"]):
        assert seen["final_progress"][job_id] == "100%"
        shown = [int(p.rstrip("%")) for p in seen["progress_seen"][job_id]]
        restarts = sum(later < earlier for earlier, later in itertools.pairwise(shown))
        assert restarts <= max(stack.job_row(job_id)["attempt"], 1) - 1 and shown[-1] == 100, shown
    assert len(seen["progress_seen"][seen["t2v"]]) >= 3, seen["progress_seen"]  # 4 s at 1x

    # The video played in the page, its poster is the thumbnail.
    video = seen["video"]
    assert video["error"] is None and video["duration"] > 0, video
    assert video["duration"] == pytest.approx(t2v["output"]["duration_s"], abs=0.2)
    assert video["currentTime"] > 0 and (video["width"], video["height"]) == (854, 480)
    assert "/storage/v1/object/sign/videos/" in video["src"]
    assert "/storage/v1/object/sign/thumbnails/" in video["poster"]
    assert seen["poster_loads"] == 200
    assert seen["compose_video"]["error"] is None
    assert seen["compose_video"]["duration"] == pytest.approx(
        compose["output"]["duration_s"], abs=0.2
    )

    # The third job was canceled while it ran; its credits came back.
    canceled = stack.job_row(seen["canceled"])
    assert canceled["status"] == "canceled" and seen["cancel_button_hidden"] is True
    assert int(seen["cancel_at"].rstrip("%")) > 0
    assert stack.ledger(seen["canceled"]) == ["reserve", "release"]
    profile = stack.sql("select balance, reserved from public.profiles where id = %s", uid)[0]
    # Charged what each finished job used (a composed video: what its render lasted).
    used = sum(job["credits_used"] for job in (t2v, i2v, compose))
    assert all(0 < job["credits_used"] <= job["cost"] for job in (t2v, i2v, compose))
    assert profile == {"balance": grants["initial_grant_credits"] - used, "reserved": 0}
    assert seen["balance_after"] == profile["balance"]

    # History: 4 jobs, 2 per page, newest first; next and back.
    first, second, back = seen["history"]
    newest_first = [seen["canceled"], seen["compose"], seen["i2v"], seen["t2v"]]
    assert first["label"] == back["label"] == "Page 1 of 2 (4 jobs)"
    assert first["rows"] == back["rows"]
    assert first["rows"] == [
        {"id": seen["canceled"], "status": "canceled"},
        {"id": seen["compose"], "status": "completed"},
    ]
    assert (first["prev_disabled"], first["next_disabled"]) == (True, False)
    assert second["label"] == "Page 2 of 2 (4 jobs)"
    assert [r["id"] for r in second["rows"]] == newest_first[2:]
    assert (second["prev_disabled"], second["next_disabled"]) == (False, True)

    # An API error, shown as words: message and hint, no JSON.
    error = seen["error"]
    assert error["code"] == "INSUFFICIENT_CREDITS", error
    assert error["message"] and error["hint"], error
    assert "{" not in error["text"] and '"code"' not in error["text"], error

    # The live updates came over the Realtime websocket (the dev server's /realtime/v1):
    # the channel joined, and the last change of each job was a broadcast.
    assert seen["live_source"] == "realtime", seen["live_counts"]
    assert seen["channel_status"] == "SUBSCRIBED"
    assert set(seen["job_sources"].values()) == {"realtime"}
    broadcasts, _ = _counts(seen)
    assert broadcasts >= len(seen["progress_seen"][seen["t2v"]]), seen["live_counts"]


def test_web_app_follows_jobs_by_polling_without_realtime(
    stack: Stack, browser: tuple[str, str], tmp_path: Path, capsys
):
    """The Realtime websocket refused (closed at once): progress still reaches 100 % in the
    page, from GET generate-video?id= every 2 s, and the page says so; a batch's progress
    too, from GET queue-job/batches?id=."""
    seen = _run_page(stack, browser, tmp_path, "fallback", capsys)
    job_id = seen["t2v"]
    row = stack.job_row(job_id)
    assert (row["status"], row["user_id"]) == ("completed", seen["user_id"])
    assert seen["claim"]["disabled"] is True and seen["claim"]["after"] > 0
    assert seen["final_progress"][job_id] == "100%"
    shown = [int(p.rstrip("%")) for p in seen["progress_seen"][job_id]]
    assert shown == sorted(shown) and shown[-1] == 100
    assert seen["video"]["error"] is None and seen["video"]["duration"] > 0
    assert seen["live_source"] == "polling" and seen["job_sources"] == {job_id: "polling"}
    assert seen["channel_status"] != "SUBSCRIBED"
    broadcasts, polls = _counts(seen)
    assert broadcasts == 0 and polls >= 2, seen["live_counts"]
    # A batch's progress bar follows its polls the same way (GET queue-job/batches?id=).
    batch = seen["batch_shown"]
    assert (batch["percent"], batch["source"], batch["broadcasts"]) == ("100%", "polling", 0)
    assert batch["polls"] >= 1, batch
    [row] = stack.sql("select status from public.jobs where batch_id = %s", batch["id"])
    assert row == {"status": "completed"}


QUOTE = re.compile(r"^Costs (\d+) credits( for (\d+) jobs)?, ready in ~(\d+) s, you have (\d+)\.$")
LIGHT, DARK = "rgb(246, 247, 249)", "rgb(21, 24, 27)"  # style.css's --bg


def test_web_app_workspace(stack: Stack, browser: tuple[str, str], tmp_path: Path, capsys):
    """Projects, quotes, a batch followed as one over Realtime, ETAs, preferences."""
    seen = _run_page(stack, browser, tmp_path, "workspace", capsys)
    uid = seen["user_id"]
    grant = int(
        stack.sql(
            "select value from private.settings where name = 'initial_grant_credits_anonymous'"
        )[0]["value"]
    )
    assert seen["claim"]["after"] == grant

    # The quote line, before the first job: its price, an estimate, the balance.
    loose = stack.job_row(seen["loose"])
    quote = QUOTE.match(seen["loose_quote"]["text"])
    assert quote and seen["loose_quote"]["state"] == "ok", seen["loose_quote"]
    assert int(quote[1]) == seen["loose_quote"]["total"] == loose["cost"] > 0
    assert int(quote[4]) >= 1 and int(quote[5]) == grant
    assert (loose["status"], loose["project_id"], loose["batch_id"]) == ("completed", None, None)

    # The batch too big for the balance: quoted as short, refused as a person reads it.
    short = seen["short_quote"]
    assert short["state"] == "short" and short["text"].endswith("Not enough credits."), short
    refused = re.fullmatch(
        r"This batch needs (\d+) credits, you have (\d+)\.", seen["short_error"]["message"]
    )
    assert refused and seen["short_error"]["code"] == "INSUFFICIENT_CREDITS", seen["short_error"]
    assert int(refused[1]) == short["total"] > int(refused[2])
    assert "{" not in seen["short_error"]["text"]

    # The batch: two jobs of the two prompts, paid as quoted, filed in the project.
    [batch] = stack.sql("select * from public.batches where user_id = %s", uid)  # one, not two
    assert str(batch["id"]) == seen["batch_id"] and batch["title"] == "Two shots"
    jobs = stack.sql(
        "select id::text, status, cost, params from public.jobs where batch_id = %s order by id",
        seen["batch_id"],
    )
    assert {j["id"] for j in jobs} == set(seen["batch_jobs"])
    assert sorted(j["params"]["prompt"] for j in jobs) == sorted(seen["prompts"])
    assert {j["status"] for j in jobs} == {"completed"}
    batch_quote = QUOTE.match(seen["batch_quote"]["text"])
    assert batch_quote and batch_quote[3] == "2", seen["batch_quote"]
    assert int(batch_quote[1]) == sum(j["cost"] for j in jobs) == batch["cost"]

    # Its progress bar reached 100 % in the page, from batch_progress broadcasts alone.
    shown = seen["batch_shown"]
    percents = [int(p.rstrip("%")) for p in seen["batch_percent_seen"]]
    assert percents == sorted(percents) and percents[-1] == 100 and len(percents) >= 2, percents
    assert (shown["percent"], shown["bar"], shown["status"]) == ("100%", 100, "completed")
    assert shown["source"] == "realtime" and shown["broadcasts"] >= 2 and shown["polls"] == 0, shown
    assert shown["summary"].startswith("2 of 2 finished (2 completed)") and shown["cancel_disabled"]
    assert seen["channel_status"] == "SUBSCRIBED"

    # Each running job showed its estimated time left; none once finished.
    for job_id, etas in seen["eta_seen"].items():
        assert any(re.fullmatch(r"~\d+ s left", e) for e in etas), (job_id, etas)
        assert seen["final_eta"][job_id] == ""

    # The history of the project: exactly the batch's jobs; of no project: all three.
    assert seen["project_title"] == "Launch teaser"
    assert seen["project_history"]["label"] == "Page 1 of 1 (2 jobs)"
    assert {r["id"] for r in seen["project_history"]["rows"]} == set(seen["batch_jobs"])
    assert {r["id"] for r in seen["all_history"]["rows"]} == {*seen["batch_jobs"], seen["loose"]}

    # The theme: light (the OS's, headless) at first; dark once saved, and after a reload.
    assert seen["looks_before"] == {
        "theme": "system",
        "lang": "en",
        "background": LIGHT,
        "select": "system",
    }
    dark = {"theme": "dark", "lang": "pt-BR", "background": DARK, "select": "dark"}
    assert seen["looks_saved"] == seen["looks_reloaded"] == dark
    profile = stack.sql("select theme, language, tier from public.profiles where id = %s", uid)[0]
    assert (
        profile == {"theme": "dark", "language": "pt-BR", "tier": seen["tier"]}
        and seen["tier"] == "free"
    )
    reloaded = seen["reloaded"]
    assert reloaded["user_id"] == uid and reloaded["project"] == seen["project_id"]
    assert reloaded["history_label"] == "Page 1 of 1 (2 jobs)"

    # Deleted: the project is gone, its jobs stay, in no project.
    assert seen["deleted"] == {
        "info": "Deleted “Launch teaser”: its 2 jobs stay, in no project.",
        "project": "",
        "options": 1,
    }
    assert stack.sql("select count(*) as n from public.projects where user_id = %s", uid) == [
        {"n": 0}
    ]
    assert stack.sql(
        "select count(*) as n from public.jobs where user_id = %s and project_id is null", uid
    ) == [{"n": 3}]
    assert seen["page_errors"] == []


def test_web_app_wizard_and_prompt_enhancement(
    stack: Stack, browser: tuple[str, str], tmp_path: Path, capsys
):
    """The improved prompt chosen in the form (the job keeps both prompts); the wizard step by
    step: script, an edit, shorter, a failed step, a voice heard, narration, pictures, the
    video assembled and played — each step a job of its own, paid as the page said."""
    seen = _run_page(stack, browser, tmp_path, "wizard", capsys)
    uid = seen["user_id"]

    # Enhancement: the user's words first, then cues; declined once, then used.
    enhance = seen["enhance"]
    assert enhance["original"] == "a paper boat on a river"
    assert enhance["enhanced"].startswith("a paper boat on a river, "), enhance
    assert enhance["prompt_used"] == enhance["enhanced"]
    assert enhance["template"] == "(text_to_video template v1, offline)"
    assert seen["kept"] == {"prompt": "a paper boat on a river", "panel_hidden": True}
    job = stack.job_row(seen["enhanced_job"])
    assert (job["user_id"], job["model_id"], job["status"]) == (
        uid,
        "reference/text-to-video",
        "completed",
    )
    assert job["params"]["prompt"] == enhance["enhanced"]
    assert job["params"]["original_prompt"] == "a paper boat on a river"

    # The wizard's steps: one job each, made in order, charged what the page said.
    costs = seen["costs"]
    steps = [
        ("Script", "reference/script", "completed"),
        ("Script (make it shorter)", "reference/script", "completed"),
        ("Narration", "reference/narration", "completed"),
        ("Pictures", "reference/images", "completed"),
        ("Video", "reference/compose", "completed"),
    ]
    assert [(c["step"], c["status"]) for c in costs] == [(s, st) for s, _, st in steps], costs
    rows = {c["jobId"]: stack.job_row(c["jobId"]) for c in costs}
    for line, (_, model, status) in zip(costs, steps, strict=True):
        row = rows[line["jobId"]]
        assert (row["user_id"], row["model_id"], row["status"]) == (uid, model, status)
        charged = row["credits_used"] if status == "completed" else 0
        assert int(line["credits"]) == charged and int(line["cost"]) == row["cost"], line
        assert line["text"].startswith(
            f"{line['step']}: {charged} credit" if status == "completed" else line["step"]
        )
        # Its own Idempotency-Key, whose stored answer is this job.
        [key] = stack.sql(
            "select response_status, response_body::text as body from private.idempotency_keys "
            "where key = %s",
            line["idempotencyKey"],
        )
        assert row["id"] in key["body"], key
    assert len({c["idempotencyKey"] for c in costs}) == len(costs)

    # The script: two sections; the edit reached the shorter step, which kept one sentence.
    script = rows[costs[0]["jobId"]]["output"]["script"]
    assert len(script["sections"]) == 2 and seen["script"]["title"] == script["title"]
    assert seen["script"]["narrations"] == [s["narration"] for s in script["sections"]]
    assert seen["edited"]["section_words"][1] == 14
    assert seen["edited"]["words"] == seen["edited"]["section_words"][0] + 14
    shorter = rows[costs[1]["jobId"]]
    assert shorter["params"]["script"]["sections"][1]["narration"] == seen["edited_narration"]
    improved = shorter["output"]["script"]
    assert seen["shorter"]["narrations"][1] == "Sunlight scatters in the air."
    assert seen["shorter"]["narrations"] == [s["narration"] for s in improved["sections"]]
    assert seen["shorter"]["words"] == shorter["output"]["analysis"]["words"]
    assert seen["shorter"]["words"] < seen["edited"]["words"]
    # The failed step is said in words and changed nothing.
    error = seen["step_error"]
    # Refused before any job or money (422 naming the engine that can follow it).
    assert error["code"] == "INSTRUCTION_NOT_SUPPORTED", error
    assert "shorter or longer" in error["text"] and "OpenAI" in error["text"], error
    assert "{" not in error["text"], error
    assert seen["after_error"]["narrations"] == seen["shorter"]["narrations"]

    # The voice, heard from the preview's WAV; the narration of the shorter script with it.
    assert "en-gb" in seen["voices"]
    preview = seen["preview"]
    assert preview["error"] is None and preview["src"].startswith("blob:")
    assert preview["duration"] > 0, preview
    narration = rows[costs[2]["jobId"]]
    assert narration["params"]["script"] == improved
    assert (narration["params"]["voice"], narration["params"]["duration"]) == ("en-gb", 60)
    assert seen["narration"]["seconds"] == narration["output"]["duration_s"]
    assert len(seen["narration"]["sections"]) == 2

    # The pictures: title cards on the narration's timings, shown from signed links.
    pictures = rows[costs[3]["jobId"]]
    assert pictures["params"]["source"] == "card"
    timings = [(t["start_s"], t["duration_s"]) for t in pictures["params"]["timings"]]
    assert timings == [(s["start_s"], s["duration_s"]) for s in narration["output"]["sections"]]
    assert [i["source"] for i in pictures["output"]["images"]] == ["card", "card"]
    assert [(i["width"], i["height"]) for i in seen["images"]] == [(854, 480)] * 2
    for shown, path in zip(seen["images"], pictures["output"]["image_paths"], strict=True):
        assert f"/storage/v1/object/sign/uploads/{path}?token=" in shown["src"]

    # Assembled from what the steps made, then played in the wizard.
    video = rows[seen["video_job"]]
    assert seen["video_job"] == costs[4]["jobId"]
    assert video["params"]["narration_paths"] == narration["output"]["narration_paths"]
    assert video["params"]["images"] == pictures["output"]["image_paths"]
    # Asked for 60 s at most, priced at the narration's own length (compose_length).
    assert video["params"]["script"] == improved
    assert video["params"]["duration"] == math.ceil(narration["output"]["duration_s"])
    played = seen["video"]
    assert played["error"] is None and played["duration"] > 0, played
    assert played["currentTime"] > 0 and (played["width"], played["height"]) == (854, 480)
    assert played["duration"] == pytest.approx(video["output"]["duration_s"], abs=0.2)
    assert abs(video["output"]["duration_s"] - narration["output"]["duration_s"]) < 0.5
    assert seen["final_progress"][seen["video_job"]] == "100%"
    # Step jobs stay in the wizard; job cards are the two videos only.
    assert sorted(seen["job_cards"]) == sorted([seen["video_job"], seen["enhanced_job"]])

    # The money: the grant, less what each job used; nothing still held.
    grant = int(
        stack.sql("select value from private.settings where name = 'initial_grant_credits'")[0][
            "value"
        ]
    )
    used = sum(r["credits_used"] or 0 for r in [*rows.values(), job])
    profile = stack.sql("select balance, reserved from public.profiles where id = %s", uid)[0]
    assert profile == {"balance": grant - used, "reserved": 0}
    assert seen["balance_after"] == profile["balance"]
