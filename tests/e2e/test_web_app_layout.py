"""The reference web app on a 390-px phone and a 1280-px desktop (headless Chromium, driven
by tests/e2e/js/web_app_layout.mjs): no horizontal overflow, no two visible controls on top
of each other, and an error shown where the user's eyes are — in view, next to the button
they pressed (the batch's, the wizard's first step and its last, Assemble, at the bottom of
a long card). A full-page screenshot per size."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

from serverkit import LiveServer

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("js") / "web_app_layout.mjs"
SCREENSHOTS = ROOT / ".videogen" / "screenshots"  # gitignored
NEAR_PX = 160  # an error's box starts this close under (or over) the button, at most


def _png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR; fails on anything that is not a PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", path
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _near(shown: dict[str, Any]) -> None:
    button, error = shown["button"], shown["error"]
    assert error["width"] > 0 and error["height"] > 0, shown
    # In view: the whole box, not only its edge. Scrolled to the nearest edge by whole
    # pixels, a box laid out at a fraction may overhang that edge by less than one.
    assert error["top"] > -1 and error["bottom"] < shown["innerHeight"] + 1, shown
    assert error["left"] > -1 and error["right"] < shown["innerWidth"] + 1, shown
    # Next to the button: the gap between them, above or below, is small.
    gap = max(error["top"] - button["bottom"], button["top"] - error["bottom"], 0)
    assert gap <= NEAR_PX, shown


def test_web_app_fits_a_phone_and_a_desktop(
    live_server: LiveServer, browser: tuple[str, str], tmp_path: Path
) -> None:
    node, chromium = browser
    shots = tmp_path / "screenshots"
    shots.mkdir()
    done = subprocess.run(
        [node, str(SCRIPT), live_server.base, str(shots), str(tmp_path / "profile"), chromium],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    seen: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["page_errors"] == []
    assert set(seen["sizes"]) == {"phone", "desktop"}
    for size, at in seen["sizes"].items():
        for state in ("signedOut", "signedIn", "afterErrors"):
            measured = at[state]
            fits = measured["scrollWidth"] <= measured["innerWidth"]
            assert fits, (size, state, measured["wide"])
            assert measured["innerWidth"] == at["viewport"]["width"], (size, measured)
            assert measured["overlaps"] == [], (size, state, measured["overlaps"])
            assert measured["outside"] == [], (size, state, measured["outside"])
        assert at["signedIn"]["controls"] >= 30, at["signedIn"]  # the signed-in page, measured
        assert at["afterErrors"]["controls"] > at["signedIn"]["controls"]  # steps, job cards
        for pressed in ("batch", "wizard", "assemble"):
            shown = at["errors"][pressed]
            assert shown["code"] == "INSUFFICIENT_CREDITS", (size, pressed, shown)
            _near(shown)
        screenshot = Path(at["screenshot"])
        width, height = _png_size(screenshot)
        assert width == at["viewport"]["width"] and height >= at["viewport"]["height"], (
            size,
            width,
            height,
        )
        assert screenshot.stat().st_size > 10_000
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, SCREENSHOTS / screenshot.name)
