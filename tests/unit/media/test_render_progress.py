"""Render progress that follows the clock: the tally's reports against elapsed/total on a
simulated render (a fake clock; sections side by side, a start-up before the first frame,
the join at the end), with the expected time right, off by a quarter and off by half; and
the speed a machine learns from its renders."""

from __future__ import annotations

import itertools

import pytest

from videogen.media import render
from videogen.media.timeline import OutputPreset


def simulate(
    prior: float, *, startup: float, total_s: float = 30.0, sections: int = 6, workers: int = 2
) -> float:
    """The worst distance, in points, between the reports and elapsed/total."""
    now = [0.0]
    reports: list[tuple[float, int]] = []
    tally = render._Tally(
        [100] * sections,
        lambda pct: reports.append((now[0], pct)),
        sound=True,
        expected_s=total_s * prior,
        clock=lambda: now[0],
    )
    join = render._JOIN_SHARE / 100 * total_s
    encoding = total_s - join - startup * total_s
    for step in range(int(total_s / 0.25) + 1):
        now[0] = step * 0.25
        done = min(max(now[0] - startup * total_s, 0.0) / encoding, 1.0) * sections
        for i in range(sections):  # in pairs, as `workers` processes take them
            first = i // workers * workers
            tally.done[i] = 100 * min(max(done - first, 0.0) / workers, 1.0)
        with tally.lock:
            tally.report(tally._overall())
    now[0] = total_s
    tally.report(100)
    pcts = [p for _, p in reports]
    assert pcts == sorted(pcts) and pcts[0] == 0 and pcts[-1] == 100  # monotone 0 → 100
    return max(abs(p - 100 * t / total_s) for t, p in reports)


@pytest.mark.parametrize("startup", [0.0, 0.05, 0.1, 0.15])
def test_progress_stays_within_ten_points_of_the_clock(startup: float) -> None:
    # The speed learned from earlier renders is right: the bar is the clock.
    assert simulate(1.0, startup=startup) <= 3
    # Off by a quarter either way: the frame rate corrects it.
    assert simulate(0.8, startup=startup) <= 4 and simulate(1.25, startup=startup) <= 4
    # Off by half (a first render on an unknown machine): still within the bar.
    assert simulate(0.5, startup=startup) <= 10 and simulate(2.0, startup=startup) <= 10


def test_a_frames_only_bar_would_lag_the_start_up() -> None:
    """What the clock-following bar fixes: frames done over all frames, with 15 % of the
    time spent before the first frame, is more than ten points behind at some report."""
    total, startup = 30.0, 0.15
    encoding = total * (1 - startup - render._JOIN_SHARE / 100)
    worst = max(
        abs(100 * min(max(t - startup * total, 0) / encoding, 1) * 0.97 - 100 * t / total)
        for t in (x * 0.25 for x in range(int(total / 0.25)))
    )
    assert worst > 10


def test_the_speed_is_learned_per_frame_size_and_sections() -> None:
    out = OutputPreset(quality="480p", fps=30)
    workers = 7  # a key no other test renders with
    calibrated = render.learned_factor(out, workers)
    assert calibrated == pytest.approx(
        render.CALIBRATED_S_PER_OUTPUT_S_720P30 * (854 * 480) / (1280 * 720)
        / min(workers, render.default_workers())
    )  # fmt: skip
    render.learn_factor(out, workers, 12.0, 10.0)  # 1.2 s per output second measured
    assert render.learned_factor(out, workers) == pytest.approx(1.2)
    render.learn_factor(out, workers, 8.0, 10.0)  # then 0.8: half way
    assert render.learned_factor(out, workers) == pytest.approx(1.0)
    assert render.learned_factor(OutputPreset(quality="720p", fps=30), workers) != 1.0


def test_a_composed_videos_bar_is_shared_by_time_not_fixed_slices() -> None:
    from pathlib import Path

    from videogen.media.compose import ComposeRequest, stage_bounds
    from videogen.media.script import OfflineScriptEngine

    script = OfflineScriptEngine().write("ocean tides", sections=4)
    bounds = stage_bounds(
        ComposeRequest(script=script, quality="480p"),
        script_engine="offline",
        narration_engine="espeak",
        workers=2,
    )
    assert bounds[0] == 0 and bounds[-1] == 100 and bounds == sorted(bounds)
    script_share, narration, _pictures, rendering, finish = (
        b - a for a, b in itertools.pairwise(bounds)
    )
    # espeak-ng speaks in about a second: a sliver of the bar, not the old 30 points; the
    # render, the long part, has most of it.
    assert script_share <= 1 and narration < 15 and rendering > 65 and finish <= 10
    # A narration step's files are not spoken again: no share for speech.
    wavs = [Path(f"/tmp/n{i}.wav") for i in range(4)]
    given = stage_bounds(
        ComposeRequest(script=script, quality="480p", narration=wavs),
        script_engine="offline",
        narration_engine="espeak",
        workers=2,
    )
    assert given[2] - given[1] < narration
    # A slower machine (a larger learned factor) gives the render more of the bar.
    out = ComposeRequest(script=script, quality="1080p").output
    render.learn_factor(out, 2, 40.0, 10.0)
    slow = stage_bounds(ComposeRequest(script=script, quality="1080p"), workers=2)
    assert slow[4] - slow[3] > rendering
