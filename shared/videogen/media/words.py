"""Word timings of a narration: when each word of the text is spoken, from the engine itself.

espeak-ng reports a word event (its character position and its sample in the audio) for
every word it speaks; its command line prints none of them, so the library is called
through ``ctypes`` (no Python binding is packaged). Google Cloud TTS returns the time of
each SSML ``<mark>`` (:func:`marked_ssml` puts one before every word). For an uploaded
narration, :mod:`videogen.media.align` maps a synthesized reading onto the recording.
Every source ends in :func:`words_from_starts`: the text's words with a start and an end.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import html
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_TAG = re.compile(r"<[^>]*>")
_WORD = re.compile(r"\S+")
# espeak-ng's C API (speak_lib.h): the values this module uses.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_SSML = 0x10
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_RATE = 1
_EE_OK = 0


@dataclass(frozen=True)
class Word:
    """One spoken word: its text and when it starts and ends, in seconds of its audio."""

    text: str
    start: float
    end: float

    def shifted(self, by: float) -> Word:
        """The same word ``by`` seconds later."""
        return Word(self.text, round(self.start + by, 3), round(self.end + by, 3))

    def as_json(self) -> dict[str, Any]:
        """``{"text", "start", "end"}`` as stored with a narration step's output."""
        return {"text": self.text, "start": self.start, "end": self.end}


def word_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of the words of ``text``; an SSML document's tags
    are not words."""
    ssml = text.lstrip().startswith("<speak")
    blanked = _TAG.sub(lambda m: " " * len(m.group(0)), text) if ssml else text
    return [m.span() for m in _WORD.finditer(blanked)]


def spoken_words(text: str) -> list[str]:
    """The words of ``text`` as captions show them (SSML tags dropped, entities decoded)."""
    ssml = text.lstrip().startswith("<speak")
    return [html.unescape(text[a:b]) if ssml else text[a:b] for a, b in word_spans(text)]


def words_from_starts(
    words: Sequence[str], starts: Sequence[float | None], duration: float
) -> list[Word]:
    """Words with a start each (``None``: unknown, interpolated between its neighbours),
    made monotone and clamped into ``duration``; each ends where the next starts."""
    n = len(words)
    if n == 0:
        return []
    known = [(i, s) for i, s in enumerate(starts) if s is not None]
    if not known:
        known = [(0, 0.0)]
    filled: list[float] = []
    for i in range(n):
        before = max(((j, s) for j, s in known if j <= i), default=None, key=lambda k: k[0])
        after = min(((j, s) for j, s in known if j >= i), default=None, key=lambda k: k[0])
        if before is not None and before[0] == i:
            filled.append(before[1])
        elif before is not None and after is not None:
            share = (i - before[0]) / (after[0] - before[0])
            filled.append(before[1] + (after[1] - before[1]) * share)
        elif before is not None:  # after the last known word: even steps to the end
            left = n - before[0]
            filled.append(before[1] + (duration - before[1]) * (i - before[0]) / left)
        else:
            assert after is not None
            filled.append(after[1] * i / max(1, after[0]))
    out: list[Word] = []
    last = 0.0
    for i, word in enumerate(words):
        start = min(max(filled[i], last), duration)
        last = start
        out.append(Word(word, round(start, 3), 0.0))
    ends = [w.start for w in out[1:]] + [duration]
    return [
        Word(w.text, w.start, round(max(w.start, e), 3)) for w, e in zip(out, ends, strict=True)
    ]


def marked_ssml(text: str) -> tuple[str, list[str]]:
    """``text`` (plain or SSML) with ``<mark name="wN"/>`` before each word, and the words.

    The marks go in front of each word where it stands, so the SSML's own tags keep their
    place; Google reports when it reached each mark (``timepoints``)."""
    spans = word_spans(text)
    match = re.match(r"^\s*<speak\b[^>]*>(.*)</speak>\s*$", text, re.DOTALL)
    parts, cursor = [], 0
    for i, (a, b) in enumerate(spans):
        chunk = text[cursor:a]
        parts.append(chunk if match else html.escape(chunk, quote=False))
        word = text[a:b]
        parts.append(f'<mark name="w{i}"/>' + (word if match else html.escape(word, quote=False)))
        cursor = b
    tail = text[cursor:]
    parts.append(tail if match else html.escape(tail, quote=False))
    body = "".join(parts)
    ssml = body if match else f"<speak>{body}</speak>"
    return ssml, [html.unescape(text[a:b]) if match else text[a:b] for a, b in spans]


# espeak-ng's word events -----------------------------------------------------------------------


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


_Callback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)
_LOCK = threading.Lock()  # the library keeps one global synthesizer
_LIB: list[Any] = []


class EspeakUnavailable(RuntimeError):
    """libespeak-ng cannot be loaded, or has no such voice."""


def _library() -> tuple[Any, int]:
    if not _LIB:
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            raise EspeakUnavailable(f"cannot load {name}: {exc}") from exc
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, 0)
        if rate <= 0:
            raise EspeakUnavailable("espeak-ng did not initialise")
        _LIB.extend([lib, rate])
    return _LIB[0], _LIB[1]


def espeak_word_starts(text: str, voice: str, wpm: int) -> tuple[list[float | None], float]:
    """When espeak-ng starts each word of ``text`` (by :func:`word_spans`) and the length
    of the speech, read from the library's word events while it synthesizes (the audio is
    dropped: the caller's WAV comes from the same engine, voice and speed)."""
    spans = word_spans(text)
    events: list[tuple[int, int]] = []  # (character offset, sample)
    samples = [0]
    with _LOCK:
        lib, rate = _library()

        def collect(_wav: Any, count: int, event: Any) -> int:
            samples[0] += max(0, count)
            i = 0
            while event[i].type != _EVENT_LIST_TERMINATED:
                if event[i].type == _EVENT_WORD:
                    events.append((event[i].text_position - 1, event[i].sample))
                i += 1
            return 0

        callback = _Callback(collect)
        lib.espeak_SetSynthCallback(callback)
        if lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise EspeakUnavailable(f"espeak-ng has no voice {voice!r}")
        lib.espeak_SetParameter(_RATE, wpm, 0)
        data = text.encode("utf-8")
        flags = _CHARS_UTF8 | (_SSML if text.lstrip().startswith("<speak") else 0)
        lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, flags, None, None)
        lib.espeak_Synchronize()
    starts: list[float | None] = [None] * len(spans)
    # A word's start is its first event (numbers and abbreviations get several).
    k = 0
    for position, sample in sorted(events, key=lambda e: e[1]):
        while k < len(spans) and spans[k][1] <= position:
            k += 1
        if k < len(spans) and spans[k][0] <= position < spans[k][1] and starts[k] is None:
            starts[k] = sample / rate
    return starts, samples[0] / rate
