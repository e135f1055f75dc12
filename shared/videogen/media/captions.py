"""Word-timed captions: cues from word timings, burned in with libass, and sidecar files.

Words (:class:`~videogen.media.words.Word`, in seconds of the video) are grouped into cues
of at most ``lines`` lines of ``max_chars`` characters (``words_per_line`` words), a cue
ending at a sentence's end or a pause. The burned-in captions are an ASS script the
``ass`` filter (libass) draws: one event per word, the cue's text with the word being
spoken in ``highlight`` — the active word changes colour exactly when it is said. The same
cues are written as WebVTT and SRT for players that show their own subtitles.

The three formats are written here rather than with a subtitle library: each is a few
lines of text, and the per-word override tags are ours to write either way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from videogen.media.words import Word

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
# The faces of fonts-dejavu-core (.ci/system-deps): (family, bold) as libass looks them up.
FONTS: dict[str, tuple[str, bool]] = {
    "sans": ("DejaVu Sans", False),
    "sans-bold": ("DejaVu Sans", True),
    "serif": ("DejaVu Serif", False),
    "serif-bold": ("DejaVu Serif", True),
    "mono": ("DejaVu Sans Mono", False),
    "mono-bold": ("DejaVu Sans Mono", True),
}
FontName = Literal["sans", "sans-bold", "serif", "serif-bold", "mono", "mono-bold"]
Colour = str
_COLOUR = r"^#[0-9a-fA-F]{6}$"
# Title-safe margins by frame shape, as fractions of the frame: (side, top/bottom). Tall
# frames keep clear of the app chrome social players lay over their bottom and top.
SAFE_MARGINS: dict[str, tuple[float, float]] = {
    "16:9": (0.05, 0.08),
    "1:1": (0.06, 0.08),
    "4:5": (0.06, 0.1),
    "9:16": (0.08, 0.16),
}
# DejaVu Sans averages ~0.55 em a character (bold and mono run wider).
_CHAR_EM = {"sans": 0.55, "serif": 0.56, "mono": 0.6}
_SENTENCE_END = re.compile(r"[.!?…:;]['\")\]]*$")
PAUSE_BREAK_S = 0.6  # a silence this long ends a cue
LINGER_S = 1.2  # the most a cue stays up after its last word starts


class CaptionStyle(BaseModel):
    """How burned-in captions look. Sizes are fractions of the frame height, so a style
    looks the same at every resolution."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    font: FontName = Field("sans-bold", description="A DejaVu face: " + ", ".join(FONTS))
    size: float = Field(0.06, ge=0.02, le=0.15, description="Font size, fraction of height")
    color: Colour = Field("#ffffff", pattern=_COLOUR, description="Text colour")
    highlight: Colour | None = Field(
        "#ffd400", pattern=_COLOUR, description="The word being spoken; null: no highlight"
    )
    background: Literal["outline", "box", "none"] = Field(
        "outline", description="A dark outline round the letters, a dark box, or neither"
    )
    outline_color: Colour = Field("#000000", pattern=_COLOUR)
    position: Literal["bottom", "center", "top"] = "bottom"
    lines: int = Field(2, ge=1, le=3, description="Lines per caption at most")
    max_chars: int | None = Field(
        None, ge=8, le=80, description="Characters per line; default: what fits the frame"
    )
    words_per_line: int | None = Field(None, ge=1, le=20)


class Captions(BaseModel):
    """What the render burns in: each word's time in the video, and the style."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    words: list[tuple[str, float, float]] = Field(default_factory=list)  # (text, start, end)
    style: CaptionStyle = Field(default_factory=CaptionStyle)

    @classmethod
    def of(cls, words: Sequence[Word], style: CaptionStyle | None = None) -> Captions:
        """Captions of ``words`` in ``style`` (the default style if none)."""
        return cls(words=[(w.text, w.start, w.end) for w in words], style=style or CaptionStyle())

    def timed_words(self) -> list[Word]:
        """The words as :class:`Word`."""
        return [Word(t, s, e) for t, s, e in self.words]


@dataclass(frozen=True)
class Cue:
    """One caption on screen: its lines of words, from ``start`` to ``end``."""

    start: float
    end: float
    lines: list[list[Word]]

    @property
    def words(self) -> list[Word]:
        """The cue's words in order."""
        return [w for line in self.lines for w in line]

    @property
    def text(self) -> str:
        """The lines, newline-separated."""
        return "\n".join(" ".join(w.text for w in line) for line in self.lines)


def chars_per_line(style: CaptionStyle, width: int, height: int, aspect: str = "16:9") -> int:
    """How many characters of ``style`` fit a line inside the safe area."""
    if style.max_chars is not None:
        return style.max_chars
    side = SAFE_MARGINS.get(aspect, SAFE_MARGINS["16:9"])[0]
    em = _CHAR_EM[style.font.split("-")[0]] * (1.08 if style.font.endswith("bold") else 1.0)
    return max(8, int(width * (1 - 2 * side) / (height * style.size * em)))


def make_cues(words: Sequence[Word], style: CaptionStyle, per_line: int) -> list[Cue]:
    """Group words into cues: lines of at most ``per_line`` characters (and
    ``words_per_line`` words), at most ``style.lines`` lines, a sentence's end or a pause
    of ``PAUSE_BREAK_S`` ending the cue early."""
    cues: list[Cue] = []
    lines: list[list[Word]] = [[]]

    def close() -> None:
        nonlocal lines
        if lines[-1] or len(lines) > 1:
            chosen = [line for line in lines if line]
            last = chosen[-1][-1]
            end = min(last.end, last.start + LINGER_S)
            cues.append(
                Cue(start=chosen[0][0].start, end=max(end, last.start + 0.05), lines=chosen)
            )
        lines = [[]]

    for i, word in enumerate(words):
        line = lines[-1]
        length = sum(len(w.text) + 1 for w in line) + len(word.text)
        too_long = line and length > per_line
        too_many = style.words_per_line is not None and len(line) >= style.words_per_line
        if too_long or too_many:
            if len(lines) >= style.lines:
                close()
            else:
                lines.append([])
        lines[-1].append(word)
        nxt = words[i + 1] if i + 1 < len(words) else None
        pause = nxt is not None and nxt.start - word.start > PAUSE_BREAK_S + 0.08 * len(word.text)
        if nxt is None or _SENTENCE_END.search(word.text) or pause:
            close()
    # Neighbours never overlap: a cue ends where the next begins at the latest.
    fixed = []
    for cue, nxt_cue in zip(cues, [*cues[1:], None], strict=True):
        end = min(cue.end, nxt_cue.start) if nxt_cue is not None else cue.end
        fixed.append(
            Cue(start=cue.start, end=round(max(end, cue.start + 0.01), 3), lines=cue.lines)
        )
    return fixed


# ASS (burned in) -------------------------------------------------------------------------------


def _ass_colour(hex_colour: str, alpha: int = 0) -> str:
    """``#rrggbb`` as ASS's ``&HAABBGGRR``."""
    r, g, b = hex_colour[1:3], hex_colour[3:5], hex_colour[5:7]
    return f"&H{alpha:02X}{b}{g}{r}".upper()


def _ass_time(seconds: float) -> str:
    centis = max(0, round(seconds * 100))
    h, rest = divmod(centis, 360000)
    m, rest = divmod(rest, 6000)
    s, cs = divmod(rest, 100)
    return f"{h}:{m:02d}:{s:02d}.{cs:02d}"


def _ass_text(text: str) -> str:
    """User words as literal ASS text: braces would open override tags, a backslash an escape."""
    return text.replace("\\", "\u29f5").replace("{", "(").replace("}", ")")


def ass_script(
    captions: Captions, width: int, height: int, aspect: str = "16:9"
) -> tuple[str, list[Cue]]:
    """The ASS script burning ``captions`` into a ``width`` x ``height`` frame, and its cues."""
    style = captions.style
    family, bold = FONTS[style.font]
    size = max(8, round(height * style.size))
    side, vertical = SAFE_MARGINS.get(aspect, SAFE_MARGINS["16:9"])
    border_style, outline, shadow = {
        "outline": (1, max(1, round(size * 0.08)), 0),
        "box": (3, max(2, round(size * 0.2)), 0),
        "none": (1, 0, 0),
    }[style.background]
    back = _ass_colour(style.outline_color, 0x60 if style.background == "box" else 0)
    alignment = {"bottom": 2, "center": 5, "top": 8}[style.position]
    header = "\n".join(
        [
            "[Script Info]",
            "ScriptType: v4.00+",
            f"PlayResX: {width}",
            f"PlayResY: {height}",
            "WrapStyle: 2",
            "ScaledBorderAndShadow: yes",
            "",
            "[V4+ Styles]",
            "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
            "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
            "BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding",
            f"Style: Caption,{family},{size},{_ass_colour(style.color)},"
            f"{_ass_colour(style.highlight or style.color)},"
            f"{_ass_colour(style.outline_color, 0x60 if style.background == 'box' else 0)},"
            f"{back},{-1 if bold else 0},0,0,0,100,100,0,0,{border_style},{outline},{shadow},"
            f"{alignment},{round(width * side)},{round(width * side)},{round(height * vertical)},1",
            "",
            "[Events]",
            "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
        ]
    )
    cues = make_cues(captions.timed_words(), style, chars_per_line(style, width, height, aspect))
    events = []
    highlight = _ass_colour(style.highlight) if style.highlight else None
    for cue in cues:
        words = cue.words
        if highlight is None:
            events.append((cue.start, cue.end, _cue_ass(cue, None)))
            continue
        # Before the first word starts nothing is active; each word is active until the next.
        for k, word in enumerate(words):
            start = cue.start if k == 0 else word.start
            end = words[k + 1].start if k + 1 < len(words) else cue.end
            if end - start >= 0.005:
                events.append((start, end, _cue_ass(cue, (k, highlight))))
    lines = [header]
    for start, end, text in events:
        lines.append(f"Dialogue: 0,{_ass_time(start)},{_ass_time(end)},Caption,,0,0,0,,{text}")
    return "\n".join(lines) + "\n", cues


def _cue_ass(cue: Cue, active: tuple[int, str] | None) -> str:
    out_lines, k = [], 0
    for line in cue.lines:
        parts = []
        for word in line:
            text = _ass_text(word.text)
            if active is not None and k == active[0]:
                text = f"{{\\1c{active[1]}}}{text}{{\\1c}}"
            parts.append(text)
            k += 1
        out_lines.append(" ".join(parts))
    return "\\N".join(out_lines)


def write_ass(
    captions: Captions, out: Path, width: int, height: int, aspect: str = "16:9"
) -> list[Cue]:
    """Write the ASS script for ``captions`` to ``out``; returns the cues."""
    text, cues = ass_script(captions, width, height, aspect)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return cues


# Sidecars --------------------------------------------------------------------------------------


def _clock(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    h, rest = divmod(millis, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{separator}{ms:03d}"


def webvtt(cues: Sequence[Cue]) -> str:
    """The cues as a WebVTT file (``text/vtt``)."""
    blocks = ["WEBVTT", ""]
    for i, cue in enumerate(cues, 1):
        text = cue.text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        text = text.replace("-->", "--&gt;")
        blocks += [str(i), f"{_clock(cue.start, '.')} --> {_clock(cue.end, '.')}", text, ""]
    return "\n".join(blocks)


def srt(cues: Sequence[Cue]) -> str:
    """The cues as a SubRip file."""
    blocks = []
    for i, cue in enumerate(cues, 1):
        blocks += [str(i), f"{_clock(cue.start, ',')} --> {_clock(cue.end, ',')}", cue.text, ""]
    return "\n".join(blocks)


def cues_for(captions: Captions, width: int, height: int, aspect: str = "16:9") -> list[Cue]:
    """The cues the burned-in captions show, for the sidecars."""
    style = captions.style
    return make_cues(captions.timed_words(), style, chars_per_line(style, width, height, aspect))
