"""The creation wizard step by step over real HTTP: a script (written, analyzed, improved),
its narration, its pictures, and the composed video assembled from what the steps made."""

from __future__ import annotations

import itertools
import math
from typing import Any

Api = Any  # tests/functions/conftest.py's Api


def step(api: Api, user: Any, model: str, **params: Any) -> dict[str, Any]:
    """Make a step job; it runs in the request and answers finished (200)."""
    done = api.ok(api.post("queue-job", user=user, json={"model": model, "params": params}), 200)
    assert done["status"] == "completed", done
    return done


def balance(api: Api, user: Any) -> tuple[int, int]:
    credits = api.ok(api.get("update-credits", user=user))
    return credits["balance"], credits["reserved"]


def test_the_wizard_from_topic_to_video(api: Api) -> None:
    user = api.user(credits=100)
    written = step(api, user, "reference/script", prompt="How ocean tides work", sections=3)
    script = written["output"]["script"]
    assert len(script["sections"]) == 3 and written["output"]["engine"] == "offline"
    analysis = written["output"]["analysis"]
    assert analysis["words"] == sum(s["words"] for s in analysis["sections"]) > 0
    assert written["credits_used"] == written["cost"] == 1

    # The user edits a section, then asks for it shorter.
    script["sections"][1]["narration"] = (
        "The moon pulls the sea. Twice a day it rises. Then it falls."
    )
    shorter = step(api, user, "reference/script", script=script, instruction="make it shorter")
    improved = shorter["output"]["script"]
    assert improved["sections"][1]["narration"] == "The moon pulls the sea."
    assert shorter["output"]["analysis"]["words"] < analysis["words"]

    narrated = step(api, user, "reference/narration", script=improved, duration=60)
    sections = narrated["output"]["sections"]
    assert [s["index"] for s in sections] == [0, 1, 2]
    assert all(api.has_object("uploads", p) for p in narrated["output"]["narration_paths"])
    assert sections[1]["start_s"] == sections[0]["duration_s"] > sections[0]["speech_s"] > 0
    assert narrated["credits_used"] <= narrated["cost"]
    # Each word's time in its file, in the output and beside the file for the compose job.
    words = sections[0]["words"]
    assert [w["text"] for w in words] == improved["sections"][0]["narration"].split()
    assert all(a["start"] <= b["start"] for a, b in itertools.pairwise(words))
    assert words[-1]["end"] == sections[0]["speech_s"]
    assert all(
        api.has_object("uploads", p.removesuffix(".wav") + ".words.json")
        for p in narrated["output"]["narration_paths"]
    )

    pictured = step(api, user, "reference/images", script=improved, source="card", timings=sections)
    images = pictured["output"]["images"]
    assert [i["source"] for i in images] == ["card"] * 3
    assert [i["start_s"] for i in images] == [s["start_s"] for s in sections]
    assert all(api.has_object("uploads", p) for p in pictured["output"]["image_paths"])

    # Assembly: the compose job, fed by what the steps made (no TTS, no cards of its own).
    before = balance(api, user)
    video = api.ok(
        api.post(
            "generate-video",
            user=user,
            json={
                "model": "reference/compose",
                "prompt": improved["title"],
                "script": improved,
                "narration_paths": narrated["output"]["narration_paths"],
                "images": pictured["output"]["image_paths"],
                "resolution": "480p",
                "duration": 60,
            },
        ),
        200,
    )
    assert video["status"] == "completed", video
    total = narrated["output"]["duration_s"]
    assert abs(video["output"]["duration_s"] - total) < 0.5  # the narration's own timing
    assert video["output"]["video_url"]
    # Captions timed by the narration step's words (0.3 s lead before the first section).
    vtt = api.http.get(video["output"]["vtt_url"]).text
    first = vtt.split("\n")[3].split(" --> ")[0]
    assert first == f"00:00:{0.3 + words[0]['start']:06.3f}"
    assert balance(api, user)[0] == before[0] - video["credits_used"]
    assert balance(api, user)[1] == 0


def test_analysis_is_free_and_bad_steps_cost_nothing(api: Api) -> None:
    user = api.user(credits=10)
    script = {"title": "T", "sections": [{"title": "One", "narration": "Hello there, friend."}]}
    analysis = api.ok(api.post("queue-job/script/analyze", user=user, json={"script": script}))
    assert (analysis["words"], analysis["sections"][0]["words"]) == (3, 3)
    slow = api.ok(
        api.post(
            "queue-job/script/analyze", user=user, json={"script": script, "speaking_rate": 0.5}
        )
    )
    assert slow["reading_seconds"] == 2 * analysis["reading_seconds"]
    # The offline engine understands shorter and longer only: anything else is refused
    # before a job or a reservation exists, naming the engine that can.
    for instruction in ("in French", "make it funnier"):
        refused = api.fails(
            api.post(
                "queue-job",
                user=user,
                json={
                    "model": "reference/script",
                    "params": {"script": script, "instruction": instruction},
                },
            ),
            422,
            "INSTRUCTION_NOT_SUPPORTED",
        )
        assert "OpenAI" in refused["message"], refused
        assert refused["details"][0]["engines_that_can"] == ["openai"]
        assert balance(api, user) == (10, 0)
    # Images need a script; stock photos need a configured provider: refused before money.
    api.fails(
        api.post(
            "queue-job",
            user=user,
            json={"model": "reference/images", "params": {"script": script, "source": "stock"}},
        ),
        503,
        "PROVIDER_NOT_CONFIGURED",
    )
    no_script = api.ok(
        api.post(
            "queue-job", user=user, json={"model": "reference/images", "params": {"prompt": "x"}}
        ),
        200,
    )
    assert (no_script["status"], no_script["error_code"]) == ("failed", "INVALID_PARAMS")
    assert balance(api, user) == (10, 0)


def test_a_voice_preview_is_audio(api: Api) -> None:
    user = api.user()
    resp = api.post(
        "queue-job/voices/preview", user=user, json={"voice": "en-gb", "text": "Hi there."}
    )
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("audio/wav")
    assert resp.content[:4] == b"RIFF" and len(resp.content) > 1000
    api.fails(api.post("queue-job/voices/preview", user=user, json={"text": "x" * 201}), 422)
    api.fails(api.post("queue-job/voices/preview", json={}), 401)


def usage_of(api: Api, job_id: str) -> Any:
    return api.sql(
        "select to_jsonb(u) - 'job_id' - 'created_at' - 'updated_at' from private.job_usage u"
        " where job_id = %s",
        [job_id],
    )


def test_each_step_records_what_it_consumed(api: Api) -> None:
    user = api.user(credits=100)
    written = step(api, user, "reference/script", prompt="How ocean tides work", sections=2)
    # The offline engine calls no LLM: its job records nothing consumed, but it records.
    assert usage_of(api, written["id"])["prompt_tokens"] == 0
    script = written["output"]["script"]
    narrated = step(api, user, "reference/narration", script=script, duration=60)
    got = usage_of(api, narrated["id"])
    spoken = sum(len(s["narration"]) for s in script["sections"])
    assert (got["tts_engine"], got["tts_characters"]) == ("espeak", spoken)
    assert (got["prompt_tokens"], got["render_seconds"]) == (0, 0)

    # A composed video rendered in the request records its ffmpeg time and length.
    video = api.ok(
        api.post(
            "generate-video",
            user=user,
            json={
                "model": "reference/compose",
                "prompt": script["title"],
                "script": script,
                "narration_paths": narrated["output"]["narration_paths"],
                "resolution": "480p",
                "duration": 60,
            },
        ),
        200,
    )
    assert video["status"] == "completed", video
    rendered = usage_of(api, video["id"])
    assert rendered["tts_characters"] == 0  # the narration step's files: no TTS again
    assert rendered["render_seconds"] > 0
    assert abs(rendered["render_output_seconds"] - video["output"]["duration_s"]) < 0.5
    factor = api.sql(
        "select render_realtime_factor from service.ops_job_costs where job_id = %s",
        [video["id"]],
    )
    assert factor > 0


def test_the_wizards_own_video_fits_the_anonymous_grant(api: Api) -> None:
    """A guest with its 20 free credits makes the web app's wizard video (720p): every step
    and the assembly, paid as quoted; the assembly is priced at the narration's length."""
    guest = api.user(anonymous=True)
    assert api.ok(api.post("update-credits", user=guest, json={"action": "claim_initial_grant"}))
    topic = "Why the sky is blue"
    written = step(api, guest, "reference/script", prompt=topic, sections=3)
    script = written["output"]["script"]
    # The web app asks 60 s of narration at most (WIZARD_DURATION): it pays what it used.
    narrated = step(api, guest, "reference/narration", script=script, duration=60)
    timings = narrated["output"]["sections"]
    pictured = step(api, guest, "reference/images", script=script, source="card", timings=timings)
    params = {
        "prompt": script["title"],
        "script": script,
        "narration_paths": narrated["output"]["narration_paths"],
        "images": pictured["output"]["image_paths"],
        "duration": 60,
        "resolution": "720p",
    }
    items = [{"model": "reference/compose", "params": params}]
    quote = api.ok(api.post("queue-job/quote", user=guest, json={"items": items}))
    made = api.post("generate-video", user=guest, json={"model": "reference/compose", **params})
    assert made.status_code in (200, 202), made.text  # rendered here, or queued for a worker
    video = made.json()["data"]
    # Priced at the narration's own length, not the 60 s asked as a bound.
    assert video["params"]["duration"] == math.ceil(narrated["output"]["duration_s"])
    assert video["cost"] == quote["total"]
    steps_used = sum(j["credits_used"] for j in (written, narrated, pictured))
    assert steps_used + video["cost"] <= 20
    held = 0 if video["status"] == "completed" else video["cost"]
    assert balance(api, guest) == (20 - steps_used - video["cost"], held)


def test_a_composed_video_reserves_close_to_what_it_uses(api: Api) -> None:
    """No duration given: reserved for the length its script reads for (words at 160 a
    minute, 0.7 s a section, a margin of 25 % and 2 s), not the model's 60 s default; a
    topic whose script is not written yet is reserved for 40 words a section."""
    user = api.user(credits=100)
    script = {"title": "Tides", "sections": [
        {"title": "Pull", "narration": "The moon pulls the sea toward it, and the water rises."},
        {"title": "Turn", "narration": "As the earth turns, the bulge moves, and the tide falls."},
    ]}  # fmt: skip
    job = {"model": "reference/compose", "prompt": "Tides", "script": script, "resolution": "480p"}
    made = api.post("generate-video", user=user, json=job)
    assert made.status_code in (200, 202), made.text
    video = made.json()["data"]
    expected = math.ceil((22 / 160 * 60 + 2 * 0.7) * 1.25 + 2)  # 22 words, 2 sections
    assert video["params"]["duration"] == expected < 60
    if video["status"] == "completed":  # the capture is pro rata of what it rendered
        assert video["output"]["duration_s"] <= expected
        assert video["credits_used"] >= video["cost"] * video["output"]["duration_s"] / expected
    topic = {"items": [{"model": "reference/compose", "params": {"prompt": "Tides",
             "sections": 2, "resolution": "480p"}}]}  # fmt: skip
    quoted = api.ok(api.post("queue-job/quote", user=user, json=topic))
    assert quoted["items"][0]["params"]["duration"] == math.ceil((80 / 160 * 60 + 1.4) * 1.25 + 2)


def test_every_espeak_language_and_variant_is_listed_and_previewable(api: Api) -> None:
    import subprocess
    import tempfile
    from pathlib import Path

    from videogen.config import LOCAL_PUBLISHABLE_KEY

    headers = {"apikey": LOCAL_PUBLISHABLE_KEY}
    voices = api.ok(
        api.http.get(api.url("queue-job/voices"), headers=headers, params={"engine": "espeak"})
    )
    installed = subprocess.run(["espeak-ng", "--voices"], capture_output=True, text=True)
    codes = {line.split()[1] for line in installed.stdout.splitlines()[1:] if line.strip()}
    listed = {v["id"].removeprefix("espeak:") for v in voices}
    assert len(codes) > 50 and codes <= listed, codes - listed
    by_id = {v["id"]: v for v in voices}
    assert by_id["espeak:cmn"]["language"] == "cmn" and by_id["espeak:fr-be"]["language"] == "fr-BE"
    assert {"ar", "hi", "ja", "sw", "vi"} <= {v["language"] for v in voices}
    # Variants: for a language, every variant espeak-ng has.
    french = api.ok(
        api.http.get(
            api.url("queue-job/voices"),
            headers=headers,
            params={"language": "fr", "variants": "true"},
        )
    )
    variants = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True)
    files = {line.split()[4].rsplit("/", 1)[-1] for line in variants.stdout.splitlines()[1:]}
    assert {v["variant"] for v in french if v["id"].startswith("espeak:fr-fr+")} == files
    assert all(v["language"].startswith("fr") for v in french)
    api.fails(
        api.http.get(api.url("queue-job/voices"), headers=headers, params={"variants": "true"}),
        422,
    )
    # A variant speaks: its preview decodes as audio, and a second ask is the cached same.
    user = api.user()
    voice = next(v for v in french if v.get("variant") == "Alicia")["id"].removeprefix("espeak:")
    first = api.post("queue-job/voices/preview", user=user, json={"voice": voice, "language": "fr"})
    assert first.status_code == 200 and first.headers["cache-control"].startswith("private")
    again = api.post("queue-job/voices/preview", user=user, json={"voice": voice, "language": "fr"})
    assert again.content == first.content
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "preview.wav"
        wav.write_bytes(first.content)
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
             str(wav)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert 1.0 < float(probe.stdout) < 15.0
