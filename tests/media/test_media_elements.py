"""A composition of elements rendered for real: an image, a short generated video clip, a
line of text and a sound, placed in time, on the frame and by layer; checked with ffprobe,
by sampling pixels where and when each element should (and should not) be, and by the
sound's level inside and outside the audio element."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from videogen.media.compose import estimate
from videogen.media.graph import section_cuts
from videogen.media.render import probe, render_timeline
from videogen.media.timeline import Overlay, PlacedText
from videogen.models.params import ComposeParams
from videogen.rendering import composition

UID = "00000000-0000-4000-8000-000000000001"
W, H, FPS = 854, 480, 25  # 480p 16:9


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def rgb(video: Path, at_s: float, x: int, y: int) -> tuple[int, int, int]:
    """The colour of the pixel at (x, y) of the frame shown at ``at_s``."""
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-ss", f"{at_s}", "-i", str(video), "-frames:v", "1",
         "-vf", f"crop=2:2:{x}:{y}", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return out[0], out[1], out[2]


def yellow_pixels(video: Path, at_s: float, box: tuple[int, int, int, int]) -> int:
    """How many pixels of the box (x, y, w, h) are yellow at ``at_s``."""
    x, y, w, h = box
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-ss", f"{at_s}", "-i", str(video), "-frames:v", "1",
         "-vf", f"crop={w}:{h}:{x}:{y}", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return sum(
        1 for i in range(0, len(out), 3) if out[i] > 180 and out[i + 1] > 180 and out[i + 2] < 110
    )


def rms_db(video: Path, start: float, length: float) -> float:
    """The sound's RMS level in dB over [start, start + length)."""
    done = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostats", "-ss", f"{start}", "-t", f"{length}",
         "-i", str(video), "-vn", "-af", "astats=measure_overall=RMS_level:measure_perchannel=0",
         "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    match = re.search(r"RMS level dB: (-?[\d.]+|-inf)", done.stderr)
    assert match, done.stderr
    return float(match.group(1)) if match.group(1) != "-inf" else -200.0


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("elements")
    red, blue, tone = root / "red.png", root / "blue.mp4", root / "tone.wav"
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=320x240", "-frames:v", "1", str(red))
    # A 1.2 s generated clip, shorter than its 1.6 s element: its last frame holds.
    ffmpeg("-f", "lavfi", "-i", "color=c=blue:s=320x240:r=25:d=1.2", "-pix_fmt", "yuv420p",
           str(blue))  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", "sine=f=440:d=2", str(tone))
    return {"image": red, "video": blue, "audio": tone}


def params() -> dict[str, Any]:
    return {
        "prompt": "elements",
        "resolution": "480p",
        "aspect_ratio": "16:9",
        "fps": FPS,
        "elements": [
            # Listed out of layer order on purpose: the layer decides what is on top.
            {"type": "text", "text": "ELEMENTS", "start": 0.5, "duration": 2.0,
             "position": {"x": 0.05, "y": 0.05}, "font_size": 0.1, "color": "yellow",
             "layer": 2},
            {"type": "video", "path": f"{UID}/blue.mp4", "start": 1.5, "duration": 1.6,
             "position": {"x": 0.5, "y": 0.5}, "width": 0.4, "layer": 1,
             "transitions": {"out": {"kind": "fadeblack", "duration": 0.4}}},
            {"type": "image", "path": f"{UID}/red.png", "start": 0, "duration": 4,
             "transitions": {"in": {"kind": "fade", "duration": 0.4}}},
            {"type": "audio", "path": f"{UID}/tone.wav", "start": 0.5, "duration": 1.5},
        ],
    }  # fmt: skip


def typed() -> ComposeParams:
    return ComposeParams.model_validate(params())


@pytest.fixture(scope="module")
def rendered(files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    local = {1: files["video"], 2: files["image"], 3: files["audio"]}
    timeline = composition.elements_timeline(typed(), local)
    # Two sections, cut at 2 s: the video element runs across the cut.
    assert section_cuts(timeline, 2) == [(0, 50), (50, 100)]
    out = tmp_path_factory.mktemp("render") / "elements.mp4"
    render_timeline(timeline, out, workers=2)
    return out


def test_the_timeline_is_drawn_by_layer() -> None:
    placeholders = {1: Path("b.mp4"), 2: Path("r.png"), 3: Path("t.wav")}
    timeline = composition.elements_timeline(typed(), placeholders, check_files=False)
    kinds = [o.media if isinstance(o, Overlay) else "text" for o in timeline.overlays]
    assert kinds == ["image", "video", "text"]  # bottom first
    assert isinstance(timeline.overlays[2], PlacedText)
    assert timeline.total == 4.0 and len(timeline.clips("audio")) == 1


def test_the_render_has_the_timeline_s_length_and_streams(rendered: Path) -> None:
    info = probe(rendered)
    assert info["duration"] == pytest.approx(4.0, abs=1 / FPS)
    assert (info["width"], info["height"], info["fps"]) == (W, H, FPS)
    assert (info["video_codec"], info["audio_codec"], info["pix_fmt"]) == ("h264", "aac", "yuv420p")


def test_each_element_is_where_and_when_it_should_be(rendered: Path) -> None:
    def red(c: tuple[int, int, int]) -> bool:
        return c[0] > 200 and c[1] < 40 and c[2] < 40

    def blue(c: tuple[int, int, int]) -> bool:
        return c[2] > 200 and c[0] < 40 and c[1] < 40

    # The image fades in from the black background, then fills the frame.
    assert max(rgb(rendered, 0.02, 100, 400)) < 80
    assert red(rgb(rendered, 0.8, 100, 400))
    # The video's box: left edge at x = 0.5 * 854 = 427, top at y = 240, 342 px wide.
    for at in (1.7, 1.95, 2.05, 2.6):  # both sides of the section cut at 2 s
        assert blue(rgb(rendered, at, 600, 350)), at
        assert blue(rgb(rendered, at, 432, 246)), at  # just inside the corner
        assert red(rgb(rendered, at, 420, 350)), at  # just left of it
        assert red(rgb(rendered, at, 600, 232)), at  # just above it
        assert red(rgb(rendered, at, 100, 400)), at  # elsewhere the image shows
    assert red(rgb(rendered, 1.3, 600, 350))  # not yet on
    fading = rgb(rendered, 3.0, 600, 350)  # fading through black at its end
    assert fading[2] < 160 and fading[0] < 40
    assert red(rgb(rendered, 3.5, 600, 350))  # gone again
    # The text, on top of the image: yellow glyphs near (43, 24) only while it is on.
    box = (30, 20, 400, 60)
    assert yellow_pixels(rendered, 1.0, box) > 300
    assert yellow_pixels(rendered, 3.0, box) == 0
    assert yellow_pixels(rendered, 0.3, box) == 0


def test_the_sound_plays_only_in_its_element(rendered: Path) -> None:
    assert rms_db(rendered, 0.8, 1.0) > -30
    assert rms_db(rendered, 2.5, 1.4) < -60
    assert rms_db(rendered, 0.0, 0.4) < -60


def test_the_estimate_counts_the_elements() -> None:
    placeholders = {1: Path("b.mp4"), 2: Path("r.png"), 3: Path("t.wav")}
    timeline = composition.elements_timeline(typed(), placeholders, check_files=False)
    bare = timeline.model_copy(update={"overlays": timeline.overlays[:1]})
    assert estimate(timeline)[0] > estimate(bare)[0]
    assert composition.estimated_render_seconds(params()) == estimate(timeline)[0]
    assert composition.estimated_render_seconds({**params(), "elements": [{"type": "x"}]}) == (
        float("inf")
    )


def test_the_reference_worker_renders_a_composition_of_elements(
    files: dict[str, Path], tmp_path: Path
) -> None:
    import json

    import httpx
    from videogen_worker.job import JobRun, WorkerConfig
    from videogen_worker.worker import ReferenceWorker

    from videogen.config import Settings

    sent: list[dict[str, Any]] = []

    def callback(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"success": True, "data": {}})

    settings = Settings(STORAGE_BACKEND="local", STORAGE_ROOT=str(tmp_path / "storage"))
    client = httpx.Client(transport=httpx.MockTransport(callback))
    worker = ReferenceWorker(
        WorkerConfig(name="w", models=("reference/compose",)), settings, client
    )
    for path in files.values():
        worker.storage.upload("uploads", f"{UID}/{path.name}", path.read_bytes(), "video/mp4")
    run = JobRun(
        job_id="00000000-0000-4000-8000-0000000000aa",
        attempt=1,
        user_id=UID,
        model="reference/compose",
        job_type="compose",
        params={**params(), "duration": 5},
        callback_url="http://functions.test/job-callback",
    )
    output = worker.produce(run)
    video = worker.storage.local_path("videos", output["video_path"])
    assert video is not None and output["video_path"] == f"{UID}/{run.job_id}.mp4"
    assert output["duration_s"] == pytest.approx(4.0, abs=1 / FPS)
    assert (output["width"], output["height"]) == (W, H)
    assert "script" not in output and run.rendered_s == pytest.approx(4.0, abs=1 / FPS)
    # The same picture as the render above: the video's box is blue while it is on.
    assert rgb(video, 2.2, 600, 350)[2] > 200
    assert any(body["type"] == "progress" for body in sent)
