"""What a job consumed, measured where it is consumed.

Code that runs a job opens a :func:`metering` block; the engines it calls add what they
used to the block's :class:`Meter` — the OpenAI engines their completions' token counts,
the narration their characters, the renders their ffmpeg wall time and output seconds, the
stock photo and cloud TTS clients their calls. Outside a block the ``record_*`` calls do
nothing, so a free helper (a voice preview, a prompt enhancement) meters nothing.

The meter's :meth:`Meter.as_usage` is the ``usage`` object a completion report carries
(``schemas.JobUsage``, ``private.check_job_usage``): the database adds it to the job's row
of ``private.job_usage`` in the capture's transaction.

Work that fans out to threads keeps its meter with :func:`in_context` (a thread pool does
not carry context variables by itself); a meter may be fed from several threads at once.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")
RenderKind = tuple[int, int, int, int]  # width, height, fps, sections rendered at once
MAX_RENDERS = 100  # renders a usage object lists (private.check_job_usage allows 100)


class Meter:
    """Sums of one job's consumption (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.llm_model: str | None = None
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.tts_engine: str | None = None
        self.tts_characters = 0
        self.provider_calls = 0
        self.provider_seconds = 0.0
        self.provider_cost_usd: float | None = None
        self.render_seconds = 0.0
        self.render_output_seconds = 0.0
        self.renders: list[dict[str, Any]] = []  # each sectioned render's speed
        self._touched: set[str] = set()

    def llm(self, model: str | None, prompt_tokens: int, completion_tokens: int) -> None:
        """One LLM completion (one call to its provider)."""
        with self._lock:
            if model:
                self.llm_model = model[:100]
            self.prompt_tokens += max(0, int(prompt_tokens))
            self.completion_tokens += max(0, int(completion_tokens))
            self.provider_calls += 1
            self._touched.update(("llm_model", "prompt_tokens", "completion_tokens"))
            self._touched.add("provider_calls")

    def tts(self, engine: str, characters: int) -> None:
        """Characters sent to a text-to-speech engine."""
        with self._lock:
            self.tts_engine = engine[:100]
            self.tts_characters += max(0, int(characters))
            self._touched.update(("tts_engine", "tts_characters"))

    def calls(self, count: int = 1) -> None:
        """Calls to a paid external API (cloud TTS, stock photos, a video provider)."""
        with self._lock:
            self.provider_calls += max(0, int(count))
            self._touched.add("provider_calls")

    def render(
        self, wall_seconds: float, output_seconds: float, kind: RenderKind | None = None
    ) -> None:
        """One ffmpeg render: its wall time and the seconds of media it made; ``kind``
        (width, height, fps, sections at once) for a sectioned render, whose speed the
        database keeps per kind (``usage.renders``, private.render_speeds)."""
        with self._lock:
            self.render_seconds += max(0.0, wall_seconds)
            self.render_output_seconds += max(0.0, output_seconds)
            self._touched.update(("render_seconds", "render_output_seconds"))
            if kind is not None and wall_seconds > 0 and output_seconds > 0:
                if len(self.renders) < MAX_RENDERS:
                    width, height, fps, sections = kind
                    self.renders.append(
                        {
                            "width": width,
                            "height": height,
                            "fps": fps,
                            "sections": sections,
                            "wall_seconds": round(wall_seconds, 3) or 0.001,
                            "output_seconds": round(output_seconds, 3) or 0.001,
                        }
                    )
                self._touched.add("renders")

    def as_usage(self) -> dict[str, Any]:
        """The ``usage`` object for a report: only what was measured ({} for nothing)."""
        with self._lock:
            out: dict[str, Any] = {}
            for key in sorted(self._touched):
                value = getattr(self, key)
                if value is None:
                    continue
                if isinstance(value, list):
                    value = [dict(v) for v in value]
                if isinstance(value, float):
                    value = round(value, 3)
                out[key] = value
            return out


_current: contextvars.ContextVar[Meter | None] = contextvars.ContextVar(
    "videogen_usage_meter", default=None
)


@contextmanager
def metering() -> Iterator[Meter]:
    """Meter the work done inside the block (nested blocks feed only the innermost)."""
    meter = Meter()
    token = _current.set(meter)
    try:
        yield meter
    finally:
        _current.reset(token)


def current() -> Meter | None:
    """The meter of the enclosing :func:`metering` block, if any."""
    return _current.get()


def in_context(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` bound to the caller's context (its meter), to hand to a thread pool."""
    context = contextvars.copy_context()
    lock = threading.Lock()

    def run(*args: Any, **kwargs: Any) -> T:
        # A Context may be entered by one thread at a time: copy it again per call.
        with lock:
            ctx = context.copy()
        return ctx.run(fn, *args, **kwargs)

    return run


def record_llm(model: str | None, usage: Any) -> None:
    """Count an OpenAI-style completion's ``usage`` (prompt/completion tokens; may be None)."""
    meter = _current.get()
    if meter is None:
        return
    prompt = getattr(usage, "prompt_tokens", None) or 0
    completion = getattr(usage, "completion_tokens", None) or 0
    meter.llm(model, int(prompt), int(completion))


def record_tts(engine: str, characters: int) -> None:
    """Count characters given to a TTS engine."""
    if (meter := _current.get()) is not None:
        meter.tts(engine, characters)


def record_calls(count: int = 1) -> None:
    """Count calls to a paid external API."""
    if (meter := _current.get()) is not None:
        meter.calls(count)


def record_render(
    wall_seconds: float, output_seconds: float, kind: RenderKind | None = None
) -> None:
    """Count a finished render: its wall time and the seconds of media it made (``kind``:
    a sectioned render's width, height, fps and sections at once, see :meth:`Meter.render`)."""
    if (meter := _current.get()) is not None:
        meter.render(wall_seconds, output_seconds, kind)


@contextmanager
def timed_render(output_seconds: float) -> Iterator[None]:
    """Time an ffmpeg render making ``output_seconds`` of media (recorded when it ends
    without an error)."""
    started = time.monotonic()
    yield
    record_render(time.monotonic() - started, output_seconds)
