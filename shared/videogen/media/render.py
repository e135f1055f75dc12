"""The thin runner: the only place that starts ffmpeg or ffprobe.

:func:`run_ffmpeg` streams ``-progress pipe:1`` into a ``progress(pct)`` callback, stops on
a ``threading.Event`` and turns a failure into :class:`RenderError` with ffmpeg's last
lines of stderr.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import math
import os
import re
import resource
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

from videogen.media.errors import ProbeError, RenderCanceled, RenderError
from videogen.media.graph import (
    RenderPlan,
    audio_args,
    captions_file,
    concat_list,
    join_args,
    loudness_gain,
    measure_args,
    section_args,
    section_count,
    section_cuts,
    thumbnail_args,
)
from videogen.media.timeline import OutputPreset, Timeline
from videogen.usage import record_render, timed_render

Progress = Callable[[int], None]
FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"
_STDERR_LINES = 20
_KILL_GRACE_S = 3.0
# Every ffmpeg run is bounded (see _bound): address space, and CPU seconds when the caller
# knows how much output it asked for. 3 GiB holds a dozen 8192-px RGBA frames in flight.
MAX_MEMORY_BYTES = 3 << 30
# CPU seconds an ffmpeg run may spend per second of output it makes, and on top of that:
# about 25 times what the slowest measured section needs (0.66 s/s at 720p30).
CPU_S_PER_OUTPUT_S = 16.0
CPU_S_BASE = 30.0
# The join's share of a render's time (a copy of the sections and the sound).
_JOIN_SHARE = 3


def _drain(pipe: Any, tail: collections.deque[str], keep: list[str] | None = None) -> None:
    """Keep reading stderr so a chatty ffmpeg never blocks on a full pipe."""
    for line in pipe:
        tail.append(line.rstrip())
        if keep is not None:
            keep.append(line.rstrip())


def _watch_cancel(proc: subprocess.Popen[str], cancel: threading.Event) -> None:
    """Stop ffmpeg soon after ``cancel`` is set, even while it prints nothing."""
    while proc.poll() is None:
        if cancel.wait(0.1):
            proc.terminate()
            try:
                proc.wait(_KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
            return


def _follow(proc: subprocess.Popen[str], duration: float | None, progress: Progress | None) -> None:
    """Turn ffmpeg's ``-progress`` key=value stream into rising whole percentages."""
    last = -1
    assert proc.stdout is not None
    for line in proc.stdout:
        key, _, value = line.strip().partition("=")
        pct = -1
        if key == "out_time_us" and duration and value.isdigit():
            # 99 at most until ffmpeg says "end": the muxer still has to finish the file.
            pct = min(99, int(int(value) / 1e6 / duration * 100))
        elif key == "progress" and value == "end":
            pct = 100
        if progress is not None and pct > last:
            last = pct
            progress(pct)


def cpu_budget(output_seconds: float | None) -> float | None:
    """The CPU seconds an ffmpeg run making ``output_seconds`` of media may spend."""
    if output_seconds is None:
        return None
    return CPU_S_BASE + CPU_S_PER_OUTPUT_S * max(0.0, output_seconds)


def _bound(proc: subprocess.Popen[str], cpu_seconds: float | None) -> None:
    """Cap a started ffmpeg's address space and CPU time (the kernel stops it past them).

    Set on the running process with prlimit(2): a ``preexec_fn`` is not safe in a threaded
    server. The few instructions ffmpeg runs before this are not worth bounding.
    """

    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        resource.prlimit(proc.pid, resource.RLIMIT_AS, (MAX_MEMORY_BYTES, MAX_MEMORY_BYTES))
        if cpu_seconds is not None:
            soft = math.ceil(cpu_seconds)
            resource.prlimit(proc.pid, resource.RLIMIT_CPU, (soft, soft + 5))


def run_bounded(
    cmd: Sequence[str], *, timeout: float, cpu_seconds: float = CPU_S_BASE
) -> subprocess.CompletedProcess[str]:
    """Run a short ffmpeg or ffprobe command to its end, bounded as :func:`run_ffmpeg` is
    (memory, ``cpu_seconds``) and killed after ``timeout`` seconds
    (:class:`subprocess.TimeoutExpired`); its output captured as text."""
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
    ) as proc:
        _bound(proc, cpu_seconds)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
    return subprocess.CompletedProcess(list(cmd), proc.returncode, out, err)


def run_ffmpeg(
    args: Sequence[str],
    *,
    duration: float | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    output: Path | None = None,
    timeout: float | None = None,
    stderr: list[str] | None = None,
) -> None:
    """Run ffmpeg with ``args``; report 0-100 against ``duration`` seconds of output.

    ``stderr``, if given, receives every line ffmpeg wrote there. The run is bounded: at
    most MAX_MEMORY_BYTES, :func:`cpu_budget` of ``duration`` CPU seconds, ``timeout``
    seconds of wall time; past any of them it fails with :class:`RenderError`.
    """
    cmd = [FFMPEG, "-progress", "pipe:1", "-nostats", *args]
    try:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
        )
    except FileNotFoundError as exc:
        raise RenderError("ffmpeg is not installed", hint="apt-get install ffmpeg") from exc
    _bound(proc, cpu_budget(duration))
    tail: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)
    with proc:  # closes both pipes however we leave
        helpers = [threading.Thread(target=_drain, args=(proc.stderr, tail, stderr), daemon=True)]
        if cancel is not None:
            helpers.append(threading.Thread(target=_watch_cancel, args=(proc, cancel), daemon=True))
        for thread in helpers:
            thread.start()
        timer = threading.Timer(timeout, proc.kill) if timeout else None
        if timer:
            timer.start()
        try:
            _follow(proc, duration, progress)
        finally:
            if timer:
                timer.cancel()
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for thread in helpers:
                thread.join(timeout=_KILL_GRACE_S)
    if proc.returncode != 0 and cancel is not None and cancel.is_set():
        if output is not None:
            output.unlink(missing_ok=True)
        raise RenderCanceled()
    if proc.returncode != 0:  # a cancel that lost the race to a finished render is ignored
        if output is not None:
            output.unlink(missing_ok=True)
        stderr_tail = "\n".join(tail)
        # Killed (the wall-time timer), or ffmpeg's own exit on signals: 255 after one,
        # 123 after several (SIGXCPU comes every second past the CPU bound).
        if proc.returncode < 0 or proc.returncode in (123, 255):
            reason = "stopped: over its time or CPU bound"
        else:
            reason = f"exit {proc.returncode}"
        raise RenderError(f"ffmpeg failed ({reason})", stderr_tail=stderr_tail)


def render(
    plan: RenderPlan,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    timeout: float | None = None,
) -> Path:
    """Run a compiled render; returns the output path."""
    plan.output.parent.mkdir(parents=True, exist_ok=True)
    with timed_render(plan.duration or 0.0):
        run_ffmpeg(
            plan.args,
            duration=plan.duration,
            progress=progress,
            cancel=cancel,
            output=plan.output,
            timeout=timeout,
        )
    return plan.output


# Render speed. Calibrated on the reference machine (2 vCPU, ffmpeg 5.1, libx264 veryfast)
# for this sectioned pipeline: a second of 1280x720 at 30 fps costs 0.48 s of one core's
# wall time, the sound's passes and the join included (bench/render_bench.py
# --progress-only, 2026-12-05: 0.22-0.25 s per output second with both cores busy, 2 or
# 16 sections at once; media.compose.RENDER_S_PER_OUTPUT_S_720P30, 0.66, is the one-graph
# cost the price and the in-request decision use, and stays on the safe side). Sections
# side by side divide it by the cores they get. What this machine really does is learned
# from each render (:func:`learned_factor`): the wall seconds per output second that
# ``record_render`` reports to the job's usage (and the database keeps per kind,
# private.render_speeds), kept per frame size, frame rate and sections at once. A process
# that has not rendered a kind yet starts from the fleet's recent figure when the
# rendering layer seeds it (:func:`seed_factors`, from service.render_speeds_read), else
# from the calibration.
CALIBRATED_S_PER_OUTPUT_S_720P30 = 0.48
_LEARN_WEIGHT = 0.5  # each render moves the learned factor half way to what it measured
SpeedKey = tuple[int, int, int, int]  # width, height, fps, sections at once
_learned: dict[SpeedKey, float] = {}
_seeded: dict[SpeedKey, float] = {}
_learned_lock = threading.Lock()
# How far a prior may be off, as a share of the render's time: what the tally weighs it by
# against the frame rate (see _Tally). A speed this process measured is a few renders'
# spread on a quiet machine; the fleet's figure comes from other machines and loads; the
# calibration may come from another machine altogether.
PRIOR_SPREAD = {"measured": 0.15, "fleet": 0.25, "calibrated": 0.5}


def _speed_key(output: OutputPreset, workers: int) -> SpeedKey:
    return (output.width, output.height, output.fps, workers)


def speed_prior(output: OutputPreset, workers: int | None = None) -> tuple[float, str]:
    """(wall seconds per output second, where it comes from: ``measured`` by this process,
    the ``fleet``'s recent figure, or ``calibrated``) for renders of this frame size and
    rate with ``workers`` sections at once."""
    workers = workers or default_workers()
    key = _speed_key(output, workers)
    with _learned_lock:
        known, seeded = _learned.get(key), _seeded.get(key)
    if known is not None:
        return known, "measured"
    if seeded is not None:
        return seeded, "fleet"
    scale = output.width * output.height / (1280 * 720) * output.fps / 30
    parallel = max(1, min(workers, default_workers()))
    return CALIBRATED_S_PER_OUTPUT_S_720P30 * scale / parallel, "calibrated"


def learned_factor(output: OutputPreset, workers: int | None = None) -> float:
    """Wall seconds per output second for renders of this frame size and rate with
    ``workers`` sections at once: what this process measured, else the fleet's figure it
    was seeded with, else the calibration."""
    return speed_prior(output, workers)[0]


def learn_factor(output: OutputPreset, workers: int, seconds: float, made_s: float) -> None:
    """Fold one render's measured wall seconds per output second into the learned factor
    (the first of a kind starts from the fleet's figure, when seeded, as from nothing)."""
    if made_s <= 0 or seconds <= 0:
        return
    measured = seconds / made_s
    key = _speed_key(output, workers)
    with _learned_lock:
        before = _learned.get(key)
        _learned[key] = measured if before is None else before + _LEARN_WEIGHT * (measured - before)


def seed_factors(figures: Iterable[tuple[SpeedKey, float]]) -> int:
    """Take the fleet's recent render speeds, ((width, height, fps, sections), wall
    seconds per output second), as the priors of kinds; what this process measures itself
    wins over them. Replaces the earlier seed; answers how many figures it took."""
    fresh = {
        (int(w), int(h), int(f), int(n)): float(factor)
        for (w, h, f, n), factor in figures
        if math.isfinite(factor) and factor > 0
    }
    with _learned_lock:
        _seeded.clear()
        _seeded.update(fresh)
    return len(fresh)


def expected_render_seconds(timeline: Timeline, *, workers: int | None = None) -> float:
    """How long :func:`render_timeline` should take for ``timeline`` on this machine."""
    return _expected(timeline, workers)[0]


def _expected(timeline: Timeline, workers: int | None) -> tuple[float, str]:
    workers = workers or default_workers()
    sections = section_count(timeline, workers)
    factor, source = speed_prior(timeline.output, min(workers, sections))
    return RENDER_OVERHEAD_S + factor * timeline.total, source


RENDER_OVERHEAD_S = 0.6  # process start, input probing, the join


def default_workers() -> int:
    """Sections rendered at once: one per CPU this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _loudness(lines: list[str]) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) from ebur128's summary in the measure pass's stderr."""
    text = "\n".join(lines)
    summary = text[text.rfind("Summary:") :]
    integrated = re.search(r"I:\s+(-?[\d.]+|-inf|nan) LUFS", summary)
    peak = re.search(r"Peak:\s+(-?[\d.]+|-inf|nan) dBFS", summary)
    if "Summary:" not in text or not integrated or not peak:
        raise RenderError("loudness measurement printed no result", stderr_tail=text[-2000:])
    values = [float(m.group(1)) for m in (integrated, peak)]
    return tuple(v if math.isfinite(v) else -99.0 for v in values)  # type: ignore[return-value]


class _Tally:
    """Monotone overall progress that follows the clock, not only the frames.

    Frames done over frames in all lag the clock: the processes start and decode their
    stills before a frame comes out, and the sound's passes take cores from the sections
    for a while. So the bar says elapsed / expected total. The expected total weighs two
    guesses by how far each may be off: the prior (:func:`expected_render_seconds`, off by
    up to ``spread`` of itself: little for a speed this process measured, much for the
    calibration) and what the frame rate says is left, plus the join (off by a share of
    what is left: a still that is harder to encode slows the frames for a while; more
    when the rate is over a sliver of the frames). The rate counts from when every
    section running at once has made its first frame (sixteen processes on two cores
    start one after another). Early on the prior decides, near the end the frames do;
    before the first frame, the prior's slow end. The bar never runs far ahead of the
    frames done (a guess that is too quick cannot run off).

    Why by hand: the estimate is specific to sections rendered side by side; no library
    estimates that.
    """

    PRIOR_SPREAD = 0.25  # the prior's share of itself it may be off by, when not told
    RATE_SPREAD = 0.4  # the frame rate's estimate of what is left may be off by this share
    RATE_SETTLED = 0.1  # the share of the frames from which the rate is only that rough
    AHEAD_OF_FRAMES = 15  # points the bar may lead the frames done
    START_MARGIN = 0.5  # before the first frame, the prior this share of its spread slower

    def __init__(
        self,
        frames: list[int],
        progress: Progress | None,
        *,
        sound: bool,
        expected_s: float = 0.0,
        spread: float | None = None,
        at_once: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.frames = frames
        self.done = [0.0] * len(frames)
        self.total = max(1, sum(frames))
        self.progress = progress
        self.last = -1
        self.lock = threading.Lock()
        self.clock = clock
        self.started = clock()
        self.expected = max(expected_s, 0.1)
        self.spread = self.PRIOR_SPREAD if spread is None else max(spread, 0.01)
        self.at_once = max(1, min(at_once or 1, len(frames)))  # sections started together
        # (elapsed, work) when the first frame came, and when every section running at
        # once had made one (the start-up over: the rate from then on is the real one).
        self.first: tuple[float, float] | None = None
        self.started_all: tuple[float, float] | None = None

    def _work(self) -> float:
        return sum(self.done) / self.total

    def estimate(self, elapsed: float, work: float) -> float:
        """The expected total seconds, ``elapsed`` into the render with ``work`` done."""
        prior = max(self.expected, elapsed * 1.02)
        if work > 0 and self.first is None:
            self.first = (elapsed, work)
        if self.started_all is None and sum(d > 0 for d in self.done) >= self.at_once:
            self.started_all = (elapsed, work)
        if work >= 1:
            return prior
        if self.first is None or elapsed <= self.first[0] or work <= self.first[1]:
            # No frame rate yet: the prior's slow end (a bar that waits a moment is better
            # than one that runs off on a guess).
            return max(self.expected * (1 + self.START_MARGIN * self.spread), elapsed * 1.02)
        t0, w0 = self.first
        if self.started_all is not None and work > self.started_all[1]:
            t0, w0 = self.started_all
        left = (1 - work) * (elapsed - t0) / (work - w0)
        by_rate = elapsed + left + _JOIN_SHARE / 100 * self.expected
        # A rate over a sliver of the frames (some sections still starting) is a rough one;
        # a settled one that says "later" than the prior widens the prior's own spread.
        rough = max(1.0, self.RATE_SETTLED / (work - w0))
        prior_var = (self.spread * (prior if rough > 1 else max(prior, by_rate))) ** 2
        # Off by a share of what is left; while rough, of what is left by the rate or by the
        # prior, whichever says more: a burst of frames (ffmpeg reports a few at once just
        # after the start) must not make itself certain.
        spread_of = max(left, prior - elapsed) if rough > 1 else left
        rate_var = (self.RATE_SPREAD * spread_of) ** 2 * rough + 1e-9
        return (prior / prior_var + by_rate / rate_var) / (1 / prior_var + 1 / rate_var)

    def _overall(self) -> int:
        elapsed = self.clock() - self.started
        work = self._work()
        pct = 100 * elapsed / max(self.estimate(elapsed, work), elapsed, 1e-6)
        pct = min(pct, 100 * work + self.AHEAD_OF_FRAMES)
        return int(min(99.0, pct))

    def section(self, index: int) -> Progress:
        def report(pct: int) -> None:
            with self.lock:
                self.done[index] = self.frames[index] * min(pct, 100) / 100
                self.report(self._overall())

        return report

    def sound_pass(self, index: int) -> Progress:
        def report(pct: int) -> None:
            with self.lock:
                self.report(self._overall())

        return report

    def report(self, pct: int) -> None:
        if self.progress is not None and pct > self.last:
            self.last = pct
            self.progress(pct)


def render_timeline(
    timeline: Timeline,
    output: Path,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    timeout: float | None = None,
    workers: int | None = None,
    font: Path | None = None,
) -> Path:
    """Render a timeline in sections side by side, the sound measured and normalised once.

    The picture is cut where no crossfade spans the cut (:func:`section_cuts`); each
    section is one ffmpeg process encoding on one thread, ``workers`` at a time. The sound
    runs meanwhile: a measure pass and an apply pass of ``loudnorm``, so the file is as
    loud as ``loudness_lufs`` says. A last process joins the sections with the concat
    demuxer and muxes the sound without re-encoding. ``progress`` gets 0-100, rising with
    the frames all sections have encoded.
    """
    started = time.monotonic()
    workers = workers or default_workers()
    output.parent.mkdir(parents=True, exist_ok=True)
    spans = section_cuts(timeline, section_count(timeline, workers))
    fps = timeline.output.fps
    duration = (spans[-1][1]) / fps
    expected_s, source = _expected(timeline, workers)
    tally = _Tally(
        [b - a for a, b in spans],
        progress,
        sound=bool(timeline.clips("audio")),
        expected_s=expected_s,
        spread=PRIOR_SPREAD[source],
        at_once=min(workers, len(spans)),
    )
    tally.report(0)
    stop = threading.Event()  # set on cancel or on the first failure: ends every process
    done = threading.Event()
    failures: list[BaseException] = []

    def relay_cancel() -> None:
        while not done.is_set():
            if cancel is not None and cancel.wait(0.1):
                stop.set()
                return

    def guarded(job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as exc:
            if not isinstance(exc, RenderCanceled) or not failures:
                failures.append(exc)
            stop.set()

    with tempfile.TemporaryDirectory(prefix=f".{output.stem}-", dir=output.parent) as tmp:
        folder = Path(tmp)
        parts = [folder / f"section_{i:03d}.mp4" for i in range(len(spans))]
        sound = folder / "audio.m4a"
        subtitles = captions_file(timeline, folder / "captions.ass")

        def audio_job() -> None:
            if not timeline.clips("audio"):
                run_ffmpeg(audio_args(timeline, None, sound), cancel=stop, timeout=timeout)
                return
            lines: list[str] = []
            mix = folder / "mix.wav"
            run_ffmpeg(
                measure_args(timeline, mix),
                duration=duration,
                progress=tally.sound_pass(0),
                cancel=stop,
                timeout=timeout,
                stderr=lines,
            )
            gain, limit = loudness_gain(timeline, *_loudness(lines))
            args = audio_args(timeline, mix, sound, gain, limit)
            run_ffmpeg(
                args,
                duration=duration,
                progress=tally.sound_pass(1),
                cancel=stop,
                output=sound,
                timeout=timeout,
            )

        def section_job(i: int) -> None:
            if stop.is_set():
                raise RenderCanceled()
            a, b = spans[i]
            run_ffmpeg(
                section_args(timeline, spans[i], parts[i], font, threads=1, subtitles=subtitles),
                duration=(b - a) / fps,
                progress=tally.section(i),
                cancel=stop,
                output=parts[i],
                timeout=timeout,
            )

        helpers = [threading.Thread(target=guarded, args=(audio_job,), daemon=True)]
        if cancel is not None:
            helpers.append(threading.Thread(target=relay_cancel, daemon=True))
        for thread in helpers:
            thread.start()
        try:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="section") as pool:
                for i in range(len(spans)):
                    pool.submit(guarded, functools.partial(section_job, i))
            helpers[0].join()
        finally:
            done.set()
        if cancel is not None and cancel.is_set():
            output.unlink(missing_ok=True)
            raise RenderCanceled()
        if failures:
            output.unlink(missing_ok=True)
            raise failures[0]
        listing = folder / "sections.txt"
        listing.write_text(concat_list(parts, [(b - a) / fps for a, b in spans]), encoding="utf-8")
        run_ffmpeg(
            join_args(timeline, listing, sound, output),
            duration=duration,
            cancel=cancel,
            output=output,
            timeout=timeout,
        )
    wall = time.monotonic() - started
    at_once = min(workers, len(spans))
    out = timeline.output
    record_render(wall, duration, (out.width, out.height, out.fps, at_once))
    learn_factor(out, at_once, wall, duration)
    tally.report(100)
    return output


def make_thumbnail(video: Path, out: Path, at_s: float, width: int | None = None) -> Path:
    """Save the frame at ``at_s`` seconds (clamped into the video) as an image."""
    length = probe(video)["duration"]
    # Seeking to the very end yields no frame; stay a little inside the video.
    at = min(max(0.0, at_s), max(0.0, length - 0.1))
    out.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg(thumbnail_args(video, out, at, width), output=out)
    if not out.is_file():
        raise RenderError(f"no frame at {at:g}s in {video.name}")
    return out


def _rate(value: str | None) -> float:
    """ffprobe's "30000/1001" as a float; 0 when unknown."""
    with contextlib.suppress(ValueError, ZeroDivisionError, TypeError):
        return float(Fraction(value or "0"))
    return 0.0


def probe(path: Path) -> dict[str, Any]:
    """ffprobe summary: duration, width, height, fps, has_audio, has_video, codecs, format."""
    try:
        done = subprocess.run(
            [FFPROBE, "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
             str(path)],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
    except FileNotFoundError as exc:
        raise ProbeError("ffprobe is not installed", hint="apt-get install ffmpeg") from exc
    if done.returncode != 0:
        raise ProbeError(f"cannot read {Path(path).name}: {done.stderr.strip()[-300:]}")
    data = json.loads(done.stdout or "{}")
    streams = data.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    fmt = data.get("format", {})
    duration = float(fmt.get("duration") or (video or audio or {}).get("duration") or 0.0)
    return {
        "duration": duration,
        "width": int(video["width"]) if video else 0,
        "height": int(video["height"]) if video else 0,
        "fps": _rate(video.get("avg_frame_rate") or video.get("r_frame_rate")) if video else 0.0,
        "has_video": video is not None,
        "has_audio": audio is not None,
        "video_codec": video.get("codec_name") if video else None,
        "audio_codec": audio.get("codec_name") if audio else None,
        "pix_fmt": video.get("pix_fmt") if video else None,
        "sample_rate": int(audio.get("sample_rate", 0)) if audio else 0,
        "format": fmt.get("format_name"),
        "size": int(fmt.get("size") or 0),
    }
