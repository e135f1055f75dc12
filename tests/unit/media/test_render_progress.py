"""Render progress that follows the clock: the tally's reports against elapsed/total on a
simulated render (a fake clock; sections side by side, a start-up before the first frame,
the join at the end), with the expected time right, off by a quarter and off by half; on
scripted renders as ffmpeg reports them (a machine twice as slow as the calibration, a
cold start on a faster one, sixteen sections on two cores, the sound's passes taking cores
for a while, stills that encode at different speeds); and the speed a machine learns from
its renders, or is seeded with from the fleet."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from videogen.media import render
from videogen.media.timeline import OutputPreset

CALIBRATED = render.PRIOR_SPREAD["calibrated"]
MEASURED = render.PRIOR_SPREAD["measured"]


def simulate(
    prior: float,
    *,
    startup: float,
    total_s: float = 30.0,
    sections: int = 6,
    workers: int = 2,
    spread: float | None = None,
) -> float:
    """The worst distance, in points, between the reports and elapsed/total."""
    now = [0.0]
    reports: list[tuple[float, int]] = []
    tally = render._Tally(
        [100] * sections,
        lambda pct: reports.append((now[0], pct)),
        sound=True,
        expected_s=total_s * prior,
        spread=spread,
        at_once=workers,
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
    assert simulate(1.0, startup=startup, spread=MEASURED) <= 3
    # Off by a quarter either way: the frame rate corrects it.
    assert simulate(0.8, startup=startup) <= 5 and simulate(1.25, startup=startup) <= 5
    # Off by half or twice (a first render on an unknown machine, its prior the
    # calibration and said to be so): within the bar (a slow prior and a long start-up
    # before the first frame lag most).
    assert simulate(0.5, startup=startup, spread=CALIBRATED) <= 7
    assert simulate(2.0, startup=startup, spread=CALIBRATED) <= (7 if startup <= 0.1 else 10)


def scripted(
    *,
    sections: int,
    workers: int,
    cores: float,
    prior: Callable[[float], float],
    spread: float,
    startup_s: float = 0.6,
    frames: int = 900,
    section_s: float = 0.44,
    sound_s: float = 0.0,
    still_cost: Callable[[int], float] = lambda frame: 1.0,
    join_s: float = 0.25,
) -> tuple[float, float]:
    """A render as ffmpeg reports it, on a fake clock: ``sections`` of ``frames`` each,
    ``workers`` processes at a time sharing ``cores`` (one core makes a frame of cost 1 in
    ``section_s`` / 30 s), each starting with ``startup_s`` of core time before its first
    frame and reporting its whole percent every half second; the sound's passes take a
    core's share for ``sound_s`` of core time; the join takes ``join_s``. ``prior(total)``
    is the tally's expected total, told to be off by up to ``spread``.

    Returns (worst distance in points from elapsed/total, the total seconds)."""
    dt = 0.05
    now = [0.0]
    reports: list[tuple[float, int]] = []
    # Run once to learn the total (the prior is a function of it), then again with it.
    total = None
    for _ in range(2):
        reports.clear()
        expected = prior(total) if total is not None else 1.0
        now[0] = 0.0
        tally = render._Tally(
            [frames] * sections,
            lambda pct: reports.append((now[0], pct)),
            sound=True,
            expected_s=expected,
            spread=spread,
            at_once=workers,
            clock=lambda: now[0],
        )
        tally.report(0)
        callbacks = [tally.section(i) for i in range(sections)]
        sound = tally.sound_pass(1)  # the apply pass: its 100 says the cores are free
        made = [0.0] * sections
        warm = [0.0] * sections
        told = [-1] * sections
        sound_left, waiting, running = sound_s, list(range(sections)), []
        next_report = 0.5
        while waiting or running:
            while waiting and len(running) < workers:
                running.append(waiting.pop(0))
            busy = len(running) + (1 if sound_left > 0 else 0)
            share = min(1.0, cores / busy) * dt  # core seconds each process gets this step
            if sound_left > 0:
                sound_left -= share
            for i in list(running):
                if warm[i] < startup_s:
                    warm[i] += share
                    continue
                made[i] += share * 30 / section_s / still_cost(int(made[i]))
                if made[i] >= frames:
                    made[i] = frames
                    running.remove(i)
            now[0] += dt
            if now[0] >= next_report or not running:
                next_report += 0.5
                for i in range(sections):
                    pct = int(100 * made[i] / frames)
                    if pct != told[i]:
                        told[i] = pct
                        callbacks[i](pct)
                sound(50 if sound_left > 0 else 100)
        now[0] += join_s
        tally.report(100)
        total = now[0]
    assert total is not None
    pcts = [p for _, p in reports]
    assert pcts == sorted(pcts) and pcts[0] == 0 and pcts[-1] == 100  # monotone 0 → 100
    return max(abs(p - 100 * t / total) for t, p in reports), total


def test_a_machine_twice_as_slow_as_the_calibration() -> None:
    """A first render whose prior (the calibration) says half the time it takes."""
    worst, total = scripted(
        sections=2, workers=2, cores=2, prior=lambda t: t / 2, spread=CALIBRATED, sound_s=1.5
    )
    assert total > 10 and worst <= 7


def test_a_cold_start_on_a_faster_machine() -> None:
    """A process's first render: the calibration says 1.5 times what this machine needs,
    the sound's passes take a core for the first seconds, the stills start slower."""
    worst, _ = scripted(
        sections=2,
        workers=2,
        cores=2,
        prior=lambda t: 1.5 * t,
        spread=CALIBRATED,
        startup_s=0.8,
        sound_s=1.5,
    )
    assert worst <= 8


@pytest.mark.parametrize("off", [0.85, 1.0, 1.15])
def test_sixteen_sections_on_two_cores(off: float) -> None:
    """Sixteen processes share two cores: each decodes its stills before a frame comes
    out, and the sound's passes get a seventeenth of the cores all along."""
    worst, total = scripted(
        sections=16,
        workers=16,
        cores=2,
        prior=lambda t: off * t,
        spread=MEASURED,
        frames=300,
        sound_s=4.0,
    )
    assert total > 30 and worst <= 7


@pytest.mark.parametrize(("off", "bound"), [(0.9, 6), (1.0, 8)])
def test_uneven_stills_and_a_measured_prior(off: float, bound: float) -> None:
    """Stills that encode at different speeds (a noisy one costs 1.8 times a plain one):
    the frame rate swings, the measured prior keeps the bar near the clock."""
    worst, _ = scripted(
        sections=2,
        workers=2,
        cores=2,
        prior=lambda t: off * t,
        spread=MEASURED,
        sound_s=1.5,
        still_cost=lambda frame: 1.8 if 300 <= frame < 600 else 1.0,
    )
    # (A prior a tenth too slow on top of it strays up to 11 points: both say "later".)
    assert worst <= bound


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


def test_a_seeded_fleet_figure_is_the_prior_until_the_process_measures() -> None:
    out = OutputPreset(quality="480p", fps=24)
    workers = 11  # a key no other test renders with
    factor, source = render.speed_prior(out, workers)
    assert source == "calibrated"
    try:
        assert render.seed_factors([((854, 480, 24, workers), 0.37), ((1, 1, 1, 1), -1.0)]) == 1
        assert render.speed_prior(out, workers) == (pytest.approx(0.37), "fleet")
        assert render.learned_factor(out, workers) == pytest.approx(0.37)
        render.learn_factor(out, workers, 5.0, 10.0)  # what this process measures wins
        assert render.speed_prior(out, workers) == (pytest.approx(0.5), "measured")
    finally:
        render.seed_factors([])
        with render._learned_lock:
            render._learned.pop((854, 480, 24, workers), None)
    assert render.speed_prior(out, workers) == (pytest.approx(factor), "calibrated")


def test_a_burst_of_frames_after_the_start_does_not_run_the_bar_off() -> None:
    """ffmpeg reports a few frames at once just after it starts: measured, with the prior
    right, a rate over that sliver once said the render would take 6 s of its 13.6."""
    now = [0.0]
    reports: list[tuple[float, int]] = []
    total = 13.6
    tally = render._Tally(
        [900, 900],
        lambda pct: reports.append((now[0], pct)),
        sound=True,
        expected_s=total,
        spread=MEASURED,
        at_once=2,
        clock=lambda: now[0],
    )
    first, second = tally.section(0), tally.section(1)
    for at, report, pct in [(0.68, first, 2), (1.13, second, 1), (1.18, first, 8)]:
        now[0] = at
        report(pct)
    worst = max(abs(p - 100 * t / total) for t, p in reports)
    assert worst <= 3
