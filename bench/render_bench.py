"""Render benchmark: our pipeline against a naive ffmpeg command and MoviePy, same spec.

Renders a 60 s 720p explainer (6 stills with Ken Burns zooms and crossfades, six narration
clips with captions, a looped music bed ducked under the voice, loudness normalised) with
our pipeline and with one hand-written ffmpeg command, alternating the runs so both see
the same machine state, then with MoviePy, then a 10-minute version with our pipeline.
Each figure is printed with its bar and ok/MISSED:

- time: pipeline <= 0.7 x the naive command (median of ``--runs``);
- quality: SSIM >= 0.98 against the naive output (every 10th frame), same duration,
  frame size, frame rate and streams;
- loudness: integrated within 1 LU of the preset's ``loudness_lufs``, true peak <= -1 dBTP
  (ffmpeg's ebur128 on the finished file);
- MoviePy 2.2.1 (an optional benchmark dependency: ``pip install '.[bench]'``; skipped with
  a note when it is not installed) takes >= 6 x the pipeline's time;
- linear cost: time per output second of the 10-minute render <= 1.1 x the 1-minute one;
- progress: monotone 0 -> 100 and within 10 points of elapsed/total at every report.

    .venv/bin/python bench/render_bench.py [--runs 3] [--quality 720p] [--no-long]
        [--no-moviepy] [--captions] [--clips] [--keep] [--cores N] [--workers N]
    .venv/bin/python bench/render_bench.py --progress-only [--sections 6] [--cores N]
        [--workers N] [--trace]: only the progress check and the estimate against the wall
        time, per run and for the process's first render apart (``--trace``: every report)

``--captions``: the captions are word-timed and styled (media.captions: bold DejaVu with an
outline, two lines, the spoken word highlighted — one ASS event per word, from espeak-ng's
word timings) instead of a line of text per section. The naive command burns the same ASS
script with the ``ass`` filter, as a person would; MoviePy keeps its per-section captions
(a caption clip per word would only slow it further).

``--clips`` (combinable with ``--captions``): every other section's picture is a video clip
instead of a still, as a compose job places stock or generated clips — a ``VideoClip`` with
``loop`` and the probed ``source_duration``, so our pipeline repeats a clip shorter than its
section, trims a longer one, converts its frame rate, makes it cover the frame (cropped
to the frame's shape, then scaled) and leaves its sound out. The clips are made up front with lavfi
sources and deliberately match nothing of the output: 1920x1080 at 25 fps, 4 s, with sound
(repeats); 720x1280 portrait at 24 fps, 14 s (trimmed, cropped to a band); 1280x720 at 60
fps, 12 s (trimmed, frames dropped). The naive command does the same in its one
``filter_complex`` (``-stream_loop -1 -t`` on the input, ``fps``, ``scale`` to cover,
``crop``, padded and trimmed to the section's frames, then the same ``xfade``: the same
picture, the overflow scaled too, each pass of a repeating clip decoded again); MoviePy
uses ``VideoFileClip`` without sound, looped or cut to the section, resized to cover and
centred (the frame crops it). The 10-minute render uses the same mixed spec.

"Our pipeline" is what a job does after narration exists: build and validate the
Timeline, then :func:`render_timeline` (sections side by side, sound measured and
normalised, joined without re-encoding). The naive command is what a competent ffmpeg
user writes for the same spec: one ``filter_complex`` with each still scaled to twice the
frame for a smooth ``zoompan``, ``xfade``, ``drawtext``, the audio mix with one-pass
``loudnorm``, and the preset's x264 settings. Everything gets the same inputs (the narration
is synthesized once, up front, outside the timing).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from videogen.media.captions import Captions, CaptionStyle, write_ass
from videogen.media.graph import find_font, section_count
from videogen.media.narration import EspeakEngine
from videogen.media.render import (
    default_workers,
    expected_render_seconds,
    learned_factor,
    probe,
    render_timeline,
    speed_prior,
)
from videogen.media.timeline import (
    AudioClip,
    ImageClip,
    OutputPreset,
    Quality,
    TextClip,
    Timeline,
    Track,
    Transition,
    VideoClip,
    validate_timeline,
)
from videogen.media.words import Word

SECTIONS = 6
SECTION_S = 10.0
FADE_S = 0.5
LEAD_S = 0.3
FPS = 30
SOURCES = ("testsrc2", "mandelbrot", "life=mold=10:ratio=0.5:s=1920x1080", "rgbtestsrc", "cellauto")
WORDS: dict[Path, tuple[Word, ...]] = {}  # each narration clip's word timings
# --clips: (lavfi source, width, height, fps, seconds, with sound) of the video clips, none
# matching the output: shorter than a section (it repeats), portrait, another frame rate.
CLIPS = (
    ("testsrc2", 1920, 1080, 25, 4.0, True),
    ("gradients=speed=0.02", 720, 1280, 24, 14.0, False),
    ("cellauto=rule=110", 1280, 720, 60, 12.0, False),
)
CLIP_SECONDS: dict[Path, float] = {}  # each clip's length, probed as a compose job does
CAPTION_STYLE = CaptionStyle(font="sans-bold", background="outline", highlight="#ffd400")
SENTENCES = [
    "Tides are the slow rise and fall of the sea, twice a day.",
    "The Moon's gravity pulls the ocean into a gentle bulge.",
    "A second bulge forms on the far side of the Earth.",
    "As the Earth turns, each coast passes through both bulges.",
    "The Sun adds its own pull, making spring and neap tides.",
    "So next time you visit the beach, thank the Moon.",
]


def make_inputs(folder: Path) -> tuple[list[Path], list[tuple[Path, float]], Path]:
    """Six 1080p stills, six narration clips (with durations) and a music loop."""
    images = []
    for i in range(SECTIONS):
        source = SOURCES[i % len(SOURCES)]
        spec = source if "s=" in source else f"{source}=s=1920x1080"
        path = folder / f"image_{i}.{'jpg' if i % 2 else 'png'}"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", spec, "-frames:v", "1",
             str(path)],
            check=True,
        )  # fmt: skip
        images.append(path)
    engine = EspeakEngine()
    voices = []
    for i, text in enumerate(SENTENCES):
        speech = engine.synthesize(text, folder / f"voice_{i}.wav")
        voices.append((speech.path, speech.duration))
        WORDS[speech.path] = speech.words
    music = folder / "music.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
         "sine=f=220:d=4,volume=0.5", "-ar", "44100", str(music)],
        check=True,
    )  # fmt: skip
    return images, voices, music


def make_clips(folder: Path) -> list[Path]:
    """The ``--clips`` video clips (:data:`CLIPS`), H.264 as stock footage comes."""
    clips = []
    for i, (source, w, h, fps, seconds, sound) in enumerate(CLIPS):
        path = folder / f"clip_{i}.mp4"
        spec = f"{source}{':' if '=' in source else '='}s={w}x{h}:r={fps}"
        tone = ["-f", "lavfi", "-i", f"sine=f=330:d={seconds}"] if sound else []
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", spec, *tone,
             "-t", f"{seconds}", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
             "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)],
            check=True,
        )  # fmt: skip
        CLIP_SECONDS[path] = float(probe(path)["duration"])
        clips.append(path)
    return clips


def pictures(images: list[Path], clips: list[Path], sections: int) -> list[Path]:
    """Each section's picture: the stills in turn, or (with ``clips``) a clip every other
    section."""
    if not clips:
        return [images[i % len(images)] for i in range(sections)]
    return [
        clips[i // 2 % len(clips)] if i % 2 else images[i % len(images)] for i in range(sections)
    ]


def section_frames(i: int, sections: int) -> int:
    """Frames of section ``i``'s picture: its own, and the crossfade into the next."""
    return round((SECTION_S + (FADE_S if i < sections - 1 else 0)) * FPS)


def pipeline_timeline(
    images: list[Path],
    voices: list[tuple[Path, float]],
    music: Path,
    quality: Quality,
    sections: int = SECTIONS,
    captions: bool = False,
    clips: list[Path] | None = None,
) -> Timeline:
    """The benchmark video as our spec; more ``sections`` repeat the inputs in turn;
    ``captions``: word-timed styled captions instead of a line of text a section;
    ``clips``: every other section a video clip, as a compose job places one."""
    total = sections * SECTION_S
    images = pictures(images, clips or [], sections)
    voices = [voices[i % len(voices)] for i in range(sections)]
    styled = styled_captions(voices) if captions else None
    return validate_timeline(
        Timeline(
            output=OutputPreset(quality=quality, fps=FPS),
            captions=styled,
            transition=Transition(duration=FADE_S),
            tracks=[
                Track(
                    kind="video",
                    clips=[
                        VideoClip(
                            start=i * SECTION_S,
                            duration=SECTION_S,
                            source=img,
                            loop=True,
                            source_duration=CLIP_SECONDS[img],
                        )
                        if img in CLIP_SECONDS
                        else ImageClip(
                            start=i * SECTION_S, duration=SECTION_S, source=img, zoom_out=i % 2 == 1
                        )
                        for i, img in enumerate(images)
                    ],
                ),
                Track(
                    kind="audio",
                    clips=[
                        AudioClip(start=i * SECTION_S + LEAD_S, duration=d, source=p)
                        for i, (p, d) in enumerate(voices)
                    ],
                ),
                Track(
                    kind="text",
                    clips=[
                        TextClip(start=i * SECTION_S + LEAD_S, duration=d, text=f"Part {i + 1}")
                        for i, (_, d) in enumerate(voices)
                        if not captions
                    ],
                ),
                Track(
                    kind="audio",
                    clips=[
                        AudioClip(
                            start=0,
                            duration=total,
                            source=music,
                            role="music",
                            loop=True,
                            volume=0.25,
                        )
                    ],
                ),
            ],
        )
    )


def styled_captions(voices: list[tuple[Path, float]]) -> Captions:
    """Every narration clip's words where the clip plays, in the benchmark's caption style."""
    words = [
        w.shifted(i * SECTION_S + LEAD_S) for i, (path, _) in enumerate(voices) for w in WORDS[path]
    ]
    return Captions.of(words, CAPTION_STYLE)


def hand_written_command(
    images: list[Path],
    voices: list[tuple[Path, float]],
    music: Path,
    out: Path,
    quality: Quality,
    ass: Path | None = None,
) -> list[str]:
    """The same video as one naive ffmpeg command, written the way a person would write it
    (``ass``: the captions' ASS script, burned in with the ``ass`` filter; a video clip among
    ``images`` is read looping for exactly its section, brought to the frame rate, scaled to
    cover the frame and cropped, its last frame held if it comes up a frame short)."""
    w, h = OutputPreset(quality=quality).size
    total = SECTIONS * SECTION_S
    font = find_font()
    size = round(h * 0.055)
    y = h - round(h * 0.06) - round(size * 1.45)
    inputs: list[str] = []
    for i, img in enumerate(images):
        if img in CLIP_SECONDS:
            length = section_frames(i, SECTIONS) / FPS
            inputs += ["-stream_loop", "-1", "-t", f"{length:.6f}"]
        inputs += ["-i", str(img)]
    for path, _ in voices:
        inputs += ["-i", str(path)]
    inputs += ["-stream_loop", "-1", "-i", str(music)]
    parts = []
    for i in range(SECTIONS):
        frames = section_frames(i, SECTIONS)
        if images[i] in CLIP_SECONDS:
            parts.append(
                f"[{i}:v]fps={FPS},scale={w}:{h}:force_original_aspect_ratio=increase,"
                f"crop={w}:{h},tpad=stop_mode=clone:stop_duration={frames / FPS:.6f},"
                f"trim=end_frame={frames},setsar=1,format=yuv420p,settb=1/{FPS},"
                f"setpts=PTS-STARTPTS[v{i}]"
            )
            continue
        step = f"((1.12-1)*on/{frames - 1})"
        zoom = f"1.12-{step}" if i % 2 else f"1+{step}"
        parts.append(
            f"[{i}]scale={2 * w}:{2 * h}:force_original_aspect_ratio=increase,crop={2 * w}:{2 * h},"
            f"zoompan=z={zoom}:x=iw/2-(iw/zoom/2):y=ih/2-(ih/zoom/2):d={frames}:s={w}x{h}:fps={FPS},"
            f"setsar=1,format=yuv420p,settb=1/{FPS},setpts=PTS-STARTPTS[v{i}]"
        )
    chain = "v0"
    for i in range(1, SECTIONS):
        parts.append(
            f"[{chain}][v{i}]xfade=transition=fade:duration={FADE_S}:offset={i * SECTION_S}[x{i}]"
        )
        chain = f"x{i}"
    captions = ",".join(
        f"drawtext=fontfile={font}:text=Part {i + 1}:expansion=none:fontsize={size}:"
        f"fontcolor=white:x=(w-text_w)/2:y={y}:box=1:boxcolor=black@0.55:"
        f"boxborderw={round(size * 0.3)}:"
        f"enable=gte(t\\,{i * SECTION_S + LEAD_S:.3f})*lt(t\\,{i * SECTION_S + LEAD_S + d:.3f})"
        for i, (_, d) in enumerate(voices)
    )
    if ass is not None:
        captions = f"ass=filename={ass}:fontsdir=/usr/share/fonts/truetype/dejavu"
    parts.append(f"[{chain}]{captions}[vout]")
    for i, (_, d) in enumerate(voices):
        delay = round((i * SECTION_S + LEAD_S) * 1000)
        parts.append(
            f"[{SECTIONS + i}:a]atrim=duration={d},asetpts=PTS-STARTPTS,aresample=48000,"
            f"aformat=sample_fmts=fltp:channel_layouts=stereo,adelay={delay}:all=1[a{i}]"
        )
    voice_in = "".join(f"[a{i}]" for i in range(SECTIONS))
    parts.append(
        f"{voice_in}amix=inputs={SECTIONS}:duration=longest:normalize=0,"
        f"apad=whole_dur={total},asplit=2[key][voice]"
    )
    parts.append(
        f"[{2 * SECTIONS}:a]atrim=duration={total},asetpts=PTS-STARTPTS,aresample=48000,"
        f"aformat=sample_fmts=fltp:channel_layouts=stereo,volume=0.25,apad=whole_dur={total}[bed]"
    )
    parts.append("[bed][key]sidechaincompress=threshold=0.02:ratio=8:attack=20:release=400[duck]")
    parts.append(
        f"[duck][voice]amix=inputs=2:duration=longest:normalize=0,apad=whole_dur={total},"
        f"loudnorm=I=-16:TP=-1.5:LRA=11,aresample=48000,atrim=duration={total}[aout]"
    )
    return [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        *inputs,
        "-filter_complex", ";".join(parts),
        "-map", "[vout]", "-map", "[aout]",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
        "-r", str(FPS), "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2",
        "-t", f"{total:.6f}", "-movflags", "+faststart", str(out),
    ]  # fmt: skip


def load() -> str:
    """The machine's load averages, printed with each timing: the box is shared."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def verdict(ok: bool) -> str:
    """The word printed after a figure and its bar."""
    return "ok" if ok else "MISSED"


def moviepy_render(
    images: list[Path], voices: list[tuple[Path, float]], music: Path, out: Path, quality: Quality
) -> None:
    """The same spec with MoviePy 2.x, the way its documentation composes a slideshow.

    Ken Burns is a per-frame resize of the still, crossfades are CrossFadeIn on overlapping
    clips, captions are TextClips with a box, the music loops under the voices. A video clip
    is a VideoFileClip without its sound, looped or cut to its section and resized to cover
    the frame (centred, so the frame crops it). MoviePy has no side-chain ducking or
    loudness normalisation, so it does less work than the spec asks.
    """
    from moviepy import (  # type: ignore[import-not-found]
        AudioFileClip,
        CompositeAudioClip,
        CompositeVideoClip,
        ImageClip,
        TextClip,
        VideoFileClip,
        afx,
        vfx,
    )

    w, h = OutputPreset(quality=quality).size
    total = SECTIONS * SECTION_S
    size = round(h * 0.055)
    y = h - round(h * 0.06) - round(size * 1.45)
    layers: list[Any] = []
    for i, img in enumerate(images):
        length = SECTION_S + (FADE_S if i < SECTIONS - 1 else 0)
        if img in CLIP_SECONDS:
            footage = VideoFileClip(str(img), audio=False)
            if footage.duration < length:
                footage = footage.with_effects([vfx.Loop(duration=length)])
            else:
                footage = footage.subclipped(0, length)
            moving = footage.resized(max(w / footage.w, h / footage.h))
        else:
            still = ImageClip(str(img), duration=length)
            cover = max(w / still.w, h / still.h)

            def zoom(t: float, i: int = i, length: float = length, cover: float = cover) -> float:
                step = 0.12 * t / length
                return cover * ((1.12 - step) if i % 2 else (1 + step))

            moving = still.resized(zoom)
        clip = moving.with_position("center").with_start(i * SECTION_S)
        if i:
            clip = clip.with_effects([vfx.CrossFadeIn(FADE_S)])
        layers.append(clip)
    font = str(find_font())
    for i, (_, d) in enumerate(voices):
        caption = TextClip(
            font=font,
            text=f"Part {i + 1}",
            font_size=size,
            color="white",
            bg_color=(0, 0, 0),
            margin=(round(size * 0.3), round(size * 0.3)),
        )
        layers.append(
            caption.with_opacity(0.9)
            .with_start(i * SECTION_S + LEAD_S)
            .with_duration(d)
            .with_position(("center", y))
        )
    sounds: list[Any] = [
        AudioFileClip(str(path)).with_start(i * SECTION_S + LEAD_S)
        for i, (path, _) in enumerate(voices)
    ]
    bed = AudioFileClip(str(music)).with_effects(
        [afx.AudioLoop(duration=total), afx.MultiplyVolume(0.25)]
    )
    video = CompositeVideoClip(layers, size=(w, h)).with_duration(total)
    video = video.with_audio(CompositeAudioClip([bed, *sounds]).with_duration(total))
    video.write_videofile(
        str(out),
        fps=FPS,
        codec="libx264",
        preset="veryfast",
        audio_codec="aac",
        audio_bitrate="128k",
        audio_fps=48000,
        ffmpeg_params=["-crf", "23", "-pix_fmt", "yuv420p"],
        logger=None,
    )


def loudness(path: Path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) of a file's sound, measured by ffmpeg's ebur128."""
    done = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-vn",
         "-af", "ebur128=peak=true", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    summary = done.stderr[done.stderr.rindex("Summary:") :]
    integrated = re.search(r"I:\s+(-?[\d.]+) LUFS", summary)
    peak = re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary)
    assert integrated and peak, summary
    return float(integrated.group(1)), float(peak.group(1))


def ssim(a: Path, b: Path, every: int = 10) -> float:
    """Mean SSIM of every ``every``-th frame of ``a`` against the same frame of ``b``."""
    pick = f"select='not(mod(n\\,{every}))',setpts=N/TB"
    done = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostats", "-i", str(a), "-i", str(b),
         "-lavfi", f"[0:v]{pick}[a];[1:v]{pick}[b];[a][b]ssim", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = re.search(r"All:([\d.]+)", done.stderr)
    assert found, done.stderr[-500:]
    return float(found.group(1))


WORKERS: int | None = None  # --workers: sections rendered at once (default: one per core)


def timed_render(timeline: Timeline, out: Path) -> tuple[float, list[tuple[float, int]]]:
    """Our pipeline's wall time and its progress reports as (seconds, percent)."""
    reports: list[tuple[float, int]] = []
    started = time.perf_counter()
    render_timeline(
        timeline,
        out,
        progress=lambda pct: reports.append((time.perf_counter() - started, pct)),
        workers=WORKERS,
    )
    return time.perf_counter() - started, reports


def progress_only(args: argparse.Namespace, work: Path) -> int:
    """``--progress-only``: render ``--runs`` times (``--sections`` of 10 s) and report how
    far the progress strayed from elapsed/total at every report, per run (with the load
    average the machine had) and for the process's first render apart (its prior is the
    calibration: nothing measured yet), and the estimate against the wall time.
    ``--trace`` prints every report as (elapsed, percent, elapsed/total)."""
    images, voices, music = make_inputs(work)
    spec = pipeline_timeline(images, voices, music, args.quality, sections=args.sections)
    workers = WORKERS or default_workers()
    at_once = min(workers, section_count(spec, workers))
    runs = []
    for run in range(args.runs):
        guess = expected_render_seconds(spec, workers=workers)
        _, source = speed_prior(spec.output, at_once)
        load = os.getloadavg()[0]
        elapsed, reports = timed_render(spec, work / "ours.mp4")
        monotone, worst = progress_error(elapsed, reports)
        runs.append((elapsed, guess, monotone, worst))
        if args.trace:
            for t, pct in reports:
                print(f"  {t:7.2f}s {pct:3d}% ideal {100 * t / elapsed:5.1f} "
                      f"off {pct - 100 * t / elapsed:+5.1f}")  # fmt: skip
        print(
            f"run {run + 1}: {elapsed:.2f}s (estimated {guess:.2f}s from the {source} speed, "
            f"off {100 * (guess - elapsed) / elapsed:+.0f}%), {len(reports)} reports, worst "
            f"{worst:.1f} points, monotone {monotone}, load {load:.2f} -> "
            f"{os.getloadavg()[0]:.2f}",
            flush=True,
        )
    worst = max(r[3] for r in runs)
    ok = all(r[2] for r in runs) and worst <= 10
    print(
        f"progress on {len(os.sched_getaffinity(0))} cores, {workers} sections at once, "
        f"{args.sections} x 10 s at {args.quality}: worst {worst:.1f} points from "
        f"elapsed/total (bar <= 10) {verdict(ok)}; the process's first render "
        f"{runs[0][3]:.1f}, the later ones "
        f"{max((r[3] for r in runs[1:]), default=float('nan')):.1f}"
    )
    factor = learned_factor(spec.output, at_once)
    print(f"learned render factor: {factor:.3f} s per output second")
    shutil.rmtree(work)
    return 0 if ok else 1


def progress_error(elapsed: float, reports: list[tuple[float, int]]) -> tuple[bool, float]:
    """(monotone 0 -> 100?, worst distance in points from elapsed/total at a report)."""
    pcts = [p for _, p in reports]
    monotone = bool(pcts) and pcts[0] == 0 and pcts[-1] == 100 and pcts == sorted(pcts)
    worst = max((abs(p - 100 * t / elapsed) for t, p in reports), default=100.0)
    return monotone, worst


def main() -> int:
    """Run the comparisons and print every figure with its bar."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quality", default="720p", choices=["480p", "720p", "1080p"])
    parser.add_argument("--no-long", action="store_true", help="skip the 10-minute render")
    parser.add_argument("--no-moviepy", action="store_true", help="skip the MoviePy render")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--captions", action="store_true", help="word-timed styled captions (media.captions)"
    )
    parser.add_argument(
        "--clips",
        action="store_true",
        help="every other section a video clip (looped, trimmed, scaled and cropped)",
    )
    parser.add_argument(
        "--cores", type=int, help="run on this many CPUs only (sched_setaffinity; ffmpeg inherits)"
    )
    parser.add_argument(
        "--workers", type=int, help="sections rendered at once (default: one per usable core)"
    )
    parser.add_argument("--sections", type=int, default=SECTIONS, help="--progress-only: 10 s each")
    parser.add_argument(
        "--progress-only",
        action="store_true",
        help="only measure progress against elapsed/total and the estimate",
    )
    parser.add_argument("--trace", action="store_true", help="--progress-only: every report")
    args = parser.parse_args()
    global WORKERS
    WORKERS = args.workers
    if args.cores:
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: args.cores]))

    work = Path(tempfile.mkdtemp(prefix="render_bench_"))
    if args.progress_only:
        return progress_only(args, work)
    images, voices, music = make_inputs(work)
    clips = make_clips(work) if args.clips else []
    timeline = pipeline_timeline(
        images, voices, music, args.quality, captions=args.captions, clips=clips
    )
    if clips:
        print(
            "clips: "
            + ", ".join(f"{w}x{h} {fps} fps {s:g} s" for _, w, h, fps, s, _ in CLIPS)
            + " on every other section",
            flush=True,
        )
    ass = None
    if args.captions:
        o = timeline.output
        assert timeline.captions is not None
        ass = work / "naive.ass"
        cues = write_ass(timeline.captions, ass, o.width, o.height, o.aspect)
        print(f"captions: {len(timeline.captions.words)} words in {len(cues)} cues", flush=True)
    seconds = SECTIONS * SECTION_S
    ours: list[float] = []
    hand: list[float] = []
    progress_runs: list[tuple[float, list[tuple[float, int]]]] = []
    for run in range(args.runs):
        # Alternate which goes first so warm caches and CPU boost favour neither side.
        order = ("ours", "hand") if run % 2 == 0 else ("hand", "ours")
        for side in order:
            if side == "ours":
                spec = pipeline_timeline(
                    images, voices, music, args.quality, captions=args.captions, clips=clips
                )
                elapsed, reports = timed_render(spec, work / "ours.mp4")
                ours.append(elapsed)
                progress_runs.append((elapsed, reports))
            else:
                started = time.perf_counter()
                cmd = hand_written_command(
                    pictures(images, clips, SECTIONS),
                    voices,
                    music,
                    work / "hand.mp4",
                    args.quality,
                    ass,
                )
                subprocess.run(cmd, check=True)
                hand.append(time.perf_counter() - started)
        print(
            f"run {run + 1}: pipeline {ours[-1]:.2f}s  naive command {hand[-1]:.2f}s  {load()}",
            flush=True,
        )

    figures: list[tuple[str, str, bool | None]] = []
    t_ours, t_hand = statistics.median(ours), statistics.median(hand)
    ratio = t_ours / t_hand
    figures.append(
        (
            f"pipeline vs naive command (median of {args.runs})",
            f"{t_ours:.2f}s vs {t_hand:.2f}s -> {ratio:.3f}x (best runs {min(ours) / min(hand):.3f}x)"
            " (bar <= 0.70x)",
            ratio <= 0.7,
        )
    )
    a, b = probe(work / "ours.mp4"), probe(work / "hand.mp4")
    keys = ("width", "height", "fps", "has_audio", "has_video", "video_codec", "audio_codec")
    same = all(a[k] == b[k] for k in keys) and abs(a["duration"] - b["duration"]) < 1 / FPS
    figures.append(
        (
            "same duration, frame size, fps and streams as the naive output",
            f"{a['width']}x{a['height']} @ {a['fps']:g} fps, {a['duration']:.3f}s vs "
            f"{b['width']}x{b['height']} @ {b['fps']:g} fps, {b['duration']:.3f}s; "
            f"file {a['size'] / 1e6:.1f} vs {b['size'] / 1e6:.1f} MB",
            same,
        )
    )
    score = ssim(work / "ours.mp4", work / "hand.mp4")
    figures.append(
        (
            "SSIM against the naive output (every 10th frame)",
            f"{score:.4f} (bar >= 0.98)",
            score >= 0.98,
        )
    )
    target = timeline.output.loudness_lufs
    lufs, peak = loudness(work / "ours.mp4")
    naive_lufs, naive_peak = loudness(work / "hand.mp4")
    figures.append(
        (
            f"loudness (preset {target:g} LUFS)",
            f"{lufs:.1f} LUFS, true peak {peak:.1f} dBTP (naive: {naive_lufs:.1f} LUFS, "
            f"{naive_peak:.1f} dBTP) (bar: within 1 LU, <= -1 dBTP)",
            abs(lufs - target) <= 1 and peak <= -1,
        )
    )
    checks = [progress_error(e, r) for e, r in progress_runs]
    worst = max(w for _, w in checks)
    figures.append(
        (
            f"progress ({args.runs} runs, {sum(len(r) for _, r in progress_runs)} reports)",
            f"monotone 0->100: {all(m for m, _ in checks)}; worst {worst:.1f} points from "
            "elapsed/total (bar <= 10)",
            all(m for m, _ in checks) and worst <= 10,
        )
    )

    if args.no_moviepy:
        figures.append(("MoviePy vs pipeline", "skipped (--no-moviepy)", None))
    elif importlib.util.find_spec("moviepy") is None:
        figures.append(
            (
                "MoviePy vs pipeline",
                "skipped: moviepy is not installed (pip install '.[bench]')",
                None,
            )
        )
    else:
        started = time.perf_counter()
        moviepy_render(
            pictures(images, clips, SECTIONS), voices, music, work / "moviepy.mp4", args.quality
        )
        t_peer = time.perf_counter() - started
        # Right after it, so both see the same machine.
        t_after, _ = timed_render(timeline, work / "ours.mp4")
        t_ref = statistics.median([*ours, t_after])
        figures.append(
            (
                "MoviePy 2.2.1 vs pipeline",
                f"{t_peer:.2f}s vs {t_ref:.2f}s -> {t_peer / t_ref:.1f}x slower, {load()} "
                "(bar >= 6x)",
                t_peer / t_ref >= 6,
            )
        )

    if args.no_long:
        figures.append(
            ("10-minute vs 1-minute render, per output second", "skipped (--no-long)", None)
        )
    else:
        long_spec = pipeline_timeline(
            images,
            voices,
            music,
            args.quality,
            sections=SECTIONS * 10,
            captions=args.captions,
            clips=clips,
        )
        t_long, reports = timed_render(long_spec, work / "long.mp4")
        t_short, _ = timed_render(timeline, work / "ours.mp4")
        info = probe(work / "long.mp4")
        per_long = t_long / long_spec.total
        per_short = statistics.median([*ours, t_short]) / seconds
        monotone, off = progress_error(t_long, reports)
        figures.append(
            (
                "10-minute vs 1-minute render, per output second",
                f"{per_long:.3f} vs {per_short:.3f} s/s -> {per_long / per_short:.3f}x "
                f"({t_long:.1f}s for {info['duration']:.1f}s), {load()} (bar <= 1.10x)",
                per_long / per_short <= 1.1,
            )
        )
        figures.append(
            (
                "progress of the 10-minute render",
                f"monotone 0->100: {monotone}; worst {off:.1f} points (bar <= 10)",
                monotone and off <= 10,
            )
        )

    print(
        f"real-time factor: {seconds / t_ours:.2f}x real time "
        f"({t_ours / seconds:.3f} s of render per output second)"
    )
    for name, value, ok in figures:
        print(f"{name}: {value} {'' if ok is None else verdict(ok)}".rstrip())
    if args.keep:
        print(f"files kept in {work}")
    else:
        shutil.rmtree(work)
    return 0 if all(ok is not False for _, _, ok in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
