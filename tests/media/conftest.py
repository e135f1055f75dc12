"""Real-ffmpeg fixtures: tiny generated images and sounds, and ways to measure renders."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

if not (shutil.which("ffmpeg") and shutil.which("ffprobe")):
    pytest.skip("ffmpeg/ffprobe are not installed", allow_module_level=True)


def ffmpeg(*args: str) -> None:
    """Run ffmpeg quietly for test setup; fail loudly."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="session")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of small inputs, generated once per test session."""
    root = tmp_path_factory.mktemp("assets")
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=640x360", "-frames:v", "1", str(root / "bars.png"))
    ffmpeg("-f", "lavfi", "-i", "mandelbrot=s=400x300", "-frames:v", "1", str(root / "fractal.jpg"))
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=320x180", "-frames:v", "1", str(root / "gray.png"))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=200x200", "-frames:v", "1", str(root / "pic.webp"))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=32x32", "-frames:v", "1", str(root / "tiny.png"))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x64", "-frames:v", "1", str(root / "anim.gif"))
    ffmpeg(
        "-f", "lavfi", "-i", "sine=f=330:d=1.5", "-ar", "24000", "-ac", "1", str(root / "voice.wav")
    )
    ffmpeg("-f", "lavfi", "-i", "sine=f=110:d=1", "-c:a", "aac", str(root / "music.m4a"))
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=1", "-pix_fmt", "yuv420p",
        str(root / "clip.mp4"),
    )  # fmt: skip
    return root


def _mean_volume(path: Path) -> float:
    """volumedetect's mean volume in dB (-91 is digital silence)."""
    done = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-af", "volumedetect",
         "-vn", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    match = re.search(r"mean_volume: (-?[\d.]+|-inf) dB", done.stderr)
    assert match, done.stderr
    return float(match.group(1))


def _gray_frame(path: Path, at_s: float) -> tuple[bytes, int, int]:
    """The frame at ``at_s`` as 8-bit luma, with its width and height."""
    from videogen.media.render import probe

    info = probe(path)
    done = subprocess.run(
        ["ffmpeg", "-v", "error", "-ss", str(at_s), "-i", str(path), "-frames:v", "1",
         "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        capture_output=True, check=True,
    )  # fmt: skip
    return done.stdout, info["width"], info["height"]


MeanVolume = Callable[[Path], float]
GrayFrame = Callable[[Path, float], tuple[bytes, int, int]]


@pytest.fixture
def mean_volume() -> MeanVolume:
    """Measure a file's mean volume in dB."""
    return _mean_volume


@pytest.fixture
def gray_frame() -> GrayFrame:
    """Grab one frame as luma bytes with its size."""
    return _gray_frame
