"""The reference GPU worker: a real process that takes jobs, renders them with ffmpeg and
reports back exactly as a GPU worker must (docs/worker-protocol.md).

It serves ``GET /health``, ``POST /jobs`` (a signed push) and ``POST /jobs/{id}/cancel``
(signed), registers itself with ``health-check-workers``, heartbeats there (stopping any
job the answer no longer lists), claims jobs in pull mode, and for each job sends signed
``started`` / ``progress`` / ``completed`` | ``failed`` callbacks to ``job-callback``. A
callback is retried with backoff on transport errors and 5xx under the same
``webhook-id``, so a retry of a delivery that did arrive is de-duplicated by the backend.

What it renders honours the job: the prompt is drawn on a background coloured by it (or
on the uploaded still, slowly zooming, for image-to-video), at the requested duration,
aspect ratio and resolution, with a sine tone as audio; composed videos go through
:mod:`videogen.media.compose`. Failure injection (``fail_at``, ``hang_at``, ``crash_at``)
and ``render=False`` exist for tests and benchmarks.
"""

from __future__ import annotations

import colorsys
import contextlib
import hashlib
import json
import logging
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import ffmpeg

from videogen import storage as storage_mod
from videogen import webhooks
from videogen.config import Settings, get_settings
from videogen.errors import AppError
from videogen.media.errors import MediaError, RenderCanceled
from videogen.media.graph import GLOBAL_ARGS, RenderPlan, find_font, wrap_caption
from videogen.media.timeline import frame_size

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

Mode = Literal["push", "pull"]
ASPECTS = ("16:9", "9:16", "1:1")
RESOLUTIONS = ("480p", "720p", "1080p")
SAMPLE_RATE = 48_000
# Share of the job's 0-100 that the ffmpeg render covers; thumbnail and upload follow.
RENDER_SHARE = 90
PROGRESS_STEP = 5  # report when progress rose this many points …
PROGRESS_EVERY_S = 1.0  # … or this long after the last report
# Callback tries by event: the final report matters most, a lost progress tick does not.
CALLBACK_TRIES = {"started": 5, "progress": 2, "completed": 10, "failed": 10}
BACKOFF_BASE_S = 0.25
BACKOFF_MAX_S = 5.0
REGISTER_TIMEOUT_S = 60.0
_CANCEL_PATH = re.compile(r"/jobs/(?P<job_id>[0-9a-fA-F-]{36})/cancel")
_SEEN_IDS = 10_000  # push webhook-ids remembered to refuse replays


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("videogen")
    except PackageNotFoundError:
        return "0.0.0"


VERSION = _version()


# ------------------------------------------------------------------------------------------
# Configuration and jobs
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerConfig:
    """How one worker process runs."""

    name: str
    models: tuple[str, ...]
    host: str = "127.0.0.1"
    port: int = 0
    public_url: str | None = None
    mode: Mode = "push"
    capacity: int = 2
    functions_url: str | None = None
    heartbeat_s: float = 5.0
    poll_s: float = 1.0
    drain_timeout_s: float = 60.0
    fail_at: int | None = None
    hang_at: int | None = None
    crash_at: int | None = None
    render: bool = True
    speed: float = 0.0  # 0: as fast as ffmpeg can; 1: no faster than real time


@dataclass
class JobRun:
    """One attempt of one job on this worker."""

    job_id: str
    attempt: int
    user_id: str
    model: str
    job_type: str
    params: dict[str, Any]
    callback_url: str
    accepted_at: float = field(default_factory=time.monotonic)
    cancel: threading.Event = field(default_factory=threading.Event)
    silent: bool = False  # no more callbacks: canceled, reassigned or lost
    stop_reason: str | None = None
    reported: int = 0
    reported_at: float = 0.0
    cost: int | None = None
    rendered_s: float | None = None  # compose: the length actually rendered
    script: dict[str, Any] | None = None  # compose: what was narrated

    @classmethod
    def from_push(cls, payload: Mapping[str, Any]) -> JobRun:
        """A job as ``routing.push_payload`` sends it."""
        return cls(
            job_id=str(payload["job_id"]),
            attempt=int(payload["attempt"]),
            user_id=str(payload["user_id"]),
            model=str(payload["model"]),
            job_type=str(payload["job_type"]),
            params=dict(payload.get("params") or {}),
            callback_url=str(payload["callback_url"]),
            cost=payload.get("cost"),
        )

    @classmethod
    def from_claim(cls, job: Mapping[str, Any], callback_url: str) -> JobRun:
        """A job as ``job_claim`` returns it."""
        return cls(
            job_id=str(job["id"]),
            attempt=int(job["attempt"]),
            user_id=str(job["user_id"]),
            model=str(job["model_id"]),
            job_type=str(job["job_type"]),
            params=dict(job.get("params") or {}),
            callback_url=callback_url,
            cost=job.get("cost"),
        )

    def stop(self, reason: str, *, silent: bool) -> None:
        """Stop the attempt; ``silent`` means it must not report anything more."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.silent = self.silent or silent
        self.cancel.set()


class JobStopped(Exception):
    """The attempt was stopped (canceled, reassigned or shutting down)."""


class InjectedFailure(Exception):
    """A failure asked for with ``--fail-at``."""


class InvalidJob(ValueError):
    """The job's params cannot be rendered."""


# ------------------------------------------------------------------------------------------
# Pure builders: what to render
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoSpec:
    """What a text- or image-to-video job asks for."""

    prompt: str
    duration: float
    aspect_ratio: str = "16:9"
    resolution: str = "720p"
    fps: int = 24
    seed: int = 0

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> VideoSpec:
        """Read and check a job's params (already normalised by the database)."""
        aspect = str(params.get("aspect_ratio", "16:9"))
        resolution = str(params.get("resolution", "720p"))
        if aspect not in ASPECTS:
            raise InvalidJob(f"aspect ratio {aspect!r} is not one of {', '.join(ASPECTS)}")
        if resolution not in RESOLUTIONS:
            raise InvalidJob(f"resolution {resolution!r} is not one of {', '.join(RESOLUTIONS)}")
        try:
            duration = float(params.get("duration", 5))
            fps = int(params.get("fps") or 24)
            seed = int(params.get("seed") or 0)
        except (TypeError, ValueError) as exc:
            raise InvalidJob("duration, fps and seed must be numbers") from exc
        if not 0 < duration <= 600 or not 1 <= fps <= 60:
            raise InvalidJob("duration must be 0-600 s and fps 1-60")
        prompt = str(params.get("prompt") or "").strip() or "(no prompt)"
        return cls(prompt, duration, aspect, resolution, fps, seed)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height): 854x480, 1280x720, 1920x1080, 480x854, 720x720, …"""
        return frame_size(cast(Any, self.aspect_ratio), cast(Any, self.resolution))


def prompt_colour(prompt: str, seed: int = 0) -> str:
    """A dark, saturated background colour that the prompt (and seed) always map to."""
    digest = hashlib.sha256(f"{seed}:{prompt}".encode()).digest()
    r, g, b = colorsys.hsv_to_rgb(digest[0] / 255, 0.6, 0.45)
    return f"0x{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def prompt_tone(prompt: str, seed: int = 0) -> int:
    """A sine frequency (220-660 Hz) the prompt maps to."""
    return 220 + hashlib.sha256(f"{seed}:{prompt}".encode()).digest()[1] * 440 // 255


def _picture(spec: VideoSpec, image: Path | None) -> Any:
    """The moving picture under the text: colour field, or the still with a slow zoom."""
    w, h = spec.size
    if image is None:
        colour = prompt_colour(spec.prompt, spec.seed)
        return ffmpeg.input(
            f"color=c={colour}:s={w}x{h}:r={spec.fps}", f="lavfi", t=spec.duration
        ).video
    frames = max(2, round(spec.duration * spec.fps))
    # Zoom on a frame twice the output size so zoompan's integer offsets move smoothly.
    big = (
        ffmpeg.input(str(image))
        .filter("scale", w * 2, h * 2, force_original_aspect_ratio="increase")
        .filter("crop", w * 2, h * 2)
    )
    return big.filter(
        "zoompan",
        z=f"1+0.15*on/{frames - 1}",
        x="iw/2-(iw/zoom/2)",
        y="ih/2-(ih/zoom/2)",
        d=frames,
        s=f"{w}x{h}",
        fps=spec.fps,
    )


def build_render(
    spec: VideoSpec,
    output: Path,
    *,
    image: Path | None = None,
    font: Path | None = None,
    speed: float = 0.0,
) -> RenderPlan:
    """The one ffmpeg run for a text/image-to-video job: picture, prompt text, sine tone."""
    w, h = spec.size
    fontfile = str(font or find_font())
    video = _picture(spec, image)
    # A marker sliding along the bottom, so every frame differs like a generated clip.
    marker = max(8, h // 30)
    dot = ffmpeg.input(f"color=c=white:s={marker}x{marker}:r={spec.fps}", f="lavfi")
    video = ffmpeg.overlay(
        video, dot, x=f"(W-w)*t/{spec.duration:g}", y=f"H-h-{marker}", shortest=1
    )
    size = max(12, round(min(w, h) * 0.06))
    lines = wrap_caption(spec.prompt, w, size, max_lines=4)
    line_h = round(size * 1.4)
    top = (h - line_h * len(lines)) // 2
    for i, line in enumerate(lines):
        video = video.filter(
            "drawtext",
            fontfile=fontfile,
            text=line,
            expansion="none",  # user text is never read as %{…} expressions
            fontsize=size,
            fontcolor="white",
            box=1,
            boxcolor="black@0.45",
            boxborderw=round(size * 0.25),
            x="(w-text_w)/2",
            y=top + i * line_h,
        )
    video = video.filter("format", "yuv420p")
    if speed > 0:
        video = video.filter("realtime", speed=speed)
    tone = prompt_tone(spec.prompt, spec.seed)
    fade = min(0.5, spec.duration / 4)
    audio = (
        ffmpeg.input(
            f"sine=frequency={tone}:sample_rate={SAMPLE_RATE}:duration={spec.duration:g}",
            f="lavfi",
        )
        .filter("volume", 0.2)
        .filter("afade", t="in", st=0, d=fade)
        .filter("afade", t="out", st=max(0.0, spec.duration - fade), d=fade)
    )
    out = ffmpeg.output(
        video,
        audio,
        str(output),
        vcodec="libx264",
        preset="veryfast",
        crf=26,
        pix_fmt="yuv420p",
        r=spec.fps,
        acodec="aac",
        ar=SAMPLE_RATE,
        t=f"{spec.duration:g}",
        movflags="+faststart",
        **{"b:a": "96k"},
    )
    # -stats_period: progress lines four times a second, so short renders report too.
    args = [*GLOBAL_ARGS, "-stats_period", "0.25", *out.get_args()]
    return RenderPlan(
        args=args, output=output, duration=spec.duration, inputs=[image] if image else []
    )


# ------------------------------------------------------------------------------------------
# Signed HTTP to the backend
# ------------------------------------------------------------------------------------------


class BackendError(Exception):
    """The backend answered with an error (or not at all)."""

    def __init__(self, status: int, code: str, message: str = "") -> None:
        super().__init__(f"{status} {code}: {message}".strip())
        self.status, self.code = status, code


def send_signed(
    client: httpx.Client,
    url: str,
    body: dict[str, Any],
    settings: Settings,
    *,
    tries: int = 1,
    sleep: Callable[[float], Any] = time.sleep,
    timeout: float = 10.0,
) -> Any:
    """POST ``body`` signed; retry transport errors, 429 and 5xx with backoff under the same
    ``webhook-id``; return the envelope's ``data`` or raise :class:`BackendError`."""
    import httpx

    raw = json.dumps(body, default=str).encode()
    msg_id = webhooks.new_message_id()
    error = BackendError(0, "NOT_SENT")
    for attempt in range(tries):
        if attempt:
            delay = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (attempt - 1))
            log.info("POST %s failed (%s); retry %d in %.2fs", url, error, attempt, delay)
            sleep(delay)
        # A fresh timestamp each try keeps the signature inside the tolerance window.
        headers = {
            "content-type": "application/json",
            **webhooks.sign(raw, msg_id=msg_id, settings=settings),
        }
        try:
            resp = client.post(url, content=raw, headers=headers, timeout=timeout)
        except httpx.TransportError as exc:
            error = BackendError(0, "UNREACHABLE", type(exc).__name__)
            continue
        try:
            envelope = resp.json()
        except ValueError:
            envelope = None
        if not isinstance(envelope, dict):  # a proxy's page, not our envelope
            envelope = {}
        if resp.status_code < 300:
            return envelope.get("data")
        err = envelope.get("error")
        err = err if isinstance(err, dict) else {}
        error = BackendError(
            resp.status_code, str(err.get("code", "HTTP_ERROR")), str(err.get("message", ""))
        )
        if resp.status_code != 429 and resp.status_code < 500:
            break  # our request is wrong; sending it again will not help
    raise error


# ------------------------------------------------------------------------------------------
# The worker
# ------------------------------------------------------------------------------------------


class ReferenceWorker:
    """One worker process: HTTP server, control loops and one thread per job."""

    def __init__(
        self,
        config: WorkerConfig,
        settings: Settings | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        import httpx

        self.config = config
        self.settings = settings or get_settings()
        self.functions_url = (config.functions_url or self.settings.functions_url).rstrip("/")
        self.client = client or httpx.Client()
        self.storage = storage_mod.get_storage(self.settings)
        self.worker_id: str | None = None
        self.url = ""
        self._runs: dict[str, JobRun] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._seen: deque[str] = deque(maxlen=_SEEN_IDS)
        self._draining = False
        self._hung = threading.Event()
        self._stopping = threading.Event()  # the loops end
        self._stop_requested = threading.Event()  # SIGTERM arrived
        self._slot_freed = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    # Life cycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Serve HTTP, register, start the heartbeat (and claim) loops."""
        self._server = _Server((self.config.host, self.config.port), _Handler, self)
        port = self._server.server_address[1]
        self.url = (self.config.public_url or f"http://{self.config.host}:{port}").rstrip("/")
        threading.Thread(target=self._server.serve_forever, name="http", daemon=True).start()
        self.register(timeout=REGISTER_TIMEOUT_S)
        threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True).start()
        if self.config.mode == "pull":
            threading.Thread(target=self._claim_loop, name="claim", daemon=True).start()

    def request_stop(self) -> None:
        """Ask the worker to drain and exit (what SIGTERM does)."""
        self._stop_requested.set()

    def wait(self) -> None:
        """Block until :meth:`request_stop`, then drain and shut down."""
        while not self._stop_requested.wait(0.5):
            pass
        self.shutdown()

    def shutdown(self) -> None:
        """Drain: refuse new work, tell the backend, let running jobs finish, then stop."""
        self._draining = True
        self._slot_freed.set()
        with contextlib.suppress(Exception):
            self.heartbeat()
        deadline = time.monotonic() + self.config.drain_timeout_s
        while self.in_flight() and time.monotonic() < deadline:
            time.sleep(0.1)
        with self._lock:
            leftovers = list(self._runs.values())
        for run in leftovers:  # out of time: report them failed so they requeue now
            run.stop("shutdown", silent=self._hung.is_set())
        for thread in list(self._threads):
            thread.join(timeout=15)
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self.client.close()

    # State ------------------------------------------------------------------------------
    def in_flight(self) -> int:
        """Jobs running now."""
        with self._lock:
            return len(self._runs)

    def status(self) -> str:
        """``ok``, ``draining`` or ``hung``."""
        if self._hung.is_set():
            return "hung"
        return "draining" if self._draining else "ok"

    def health(self) -> tuple[int, dict[str, Any]]:
        """The health URL's answer: 200 while usable, 503 when hung or draining."""
        body = {
            "status": self.status(),
            "name": self.config.name,
            "worker_id": self.worker_id,
            "mode": self.config.mode,
            "models": list(self.config.models),
            "in_flight": self.in_flight(),
            "capacity": self.config.capacity,
            "version": VERSION,
        }
        return (200 if body["status"] == "ok" else 503), body

    # Control plane ----------------------------------------------------------------------
    def _front_door(self, body: dict[str, Any], tries: int = 1) -> Any:
        return send_signed(
            self.client,
            f"{self.functions_url}/health-check-workers",
            body,
            self.settings,
            tries=tries,
        )

    def register(self, timeout: float = 0.0) -> str:
        """Register (or re-register) this worker; returns its id."""
        body = {
            "action": "register",
            "name": self.config.name,
            "url": self.url,
            "health_url": f"{self.url}/health",
            "models": list(self.config.models),
            "capacity": self.config.capacity,
            "mode": self.config.mode,
            "metadata": {"version": VERSION, "pid": os.getpid(), "render": self.config.render},
        }
        deadline = time.monotonic() + timeout
        while True:
            try:
                worker = self._front_door(body)
                break
            except BackendError as exc:
                if (exc.status and exc.status < 500) or time.monotonic() > deadline:
                    raise
                log.info("functions not reachable yet (%s); retrying", exc)
                time.sleep(0.5)
        self.worker_id = str(worker["id"])
        log.info("registered %s as %s (%s)", self.config.name, self.worker_id, self.url)
        return self.worker_id

    def heartbeat(self) -> None:
        """Say we are alive; stop running jobs the backend no longer gives us."""
        sent_at = time.monotonic()
        body = {
            "action": "heartbeat",
            "worker_id": self.worker_id,
            "status": "draining" if self._draining else "online",
        }
        try:
            data = self._front_door(body)
        except BackendError as exc:
            if exc.code == "WORKER_NOT_FOUND" and not self._draining:
                self.register()
            else:
                log.warning("heartbeat failed: %s", exc)
            return
        owned = {(str(j["job_id"]), int(j["attempt"])) for j in data.get("jobs", [])}
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            # A job accepted after the heartbeat left may not be in its answer yet.
            if run.accepted_at < sent_at and (run.job_id, run.attempt) not in owned:
                log.warning(
                    "job %s attempt %s is no longer ours; stopping", run.job_id, run.attempt
                )
                run.stop("reassigned", silent=True)

    def _heartbeat_loop(self) -> None:
        while not self._stopping.wait(self.config.heartbeat_s):
            if not self._hung.is_set():  # a wedged worker stops vouching for its leases
                self.heartbeat()

    def _claim_loop(self) -> None:
        callback_url = f"{self.functions_url}/job-callback"
        while not self._stopping.is_set():
            free = self.config.capacity - self.in_flight()
            if self._draining or self._hung.is_set() or free <= 0:
                self._slot_freed.wait(self.config.poll_s)
                self._slot_freed.clear()
                continue
            try:
                jobs = self._front_door(
                    {"action": "claim", "worker_id": self.worker_id, "limit": free}
                )
            except BackendError as exc:
                log.warning("claim failed: %s", exc)
                jobs = []
            for job in jobs or []:
                self.accept(JobRun.from_claim(job, callback_url))
            if not jobs:
                self._stopping.wait(self.config.poll_s)

    # Data plane: push, cancel ----------------------------------------------------------
    def _verify(self, headers: Mapping[str, str], raw: bytes) -> str:
        msg_id = webhooks.verify(headers, raw, self.settings)
        with self._lock:
            if msg_id in self._seen:
                raise AppError("This delivery was already received.", status=409, code="REPLAYED")
            self._seen.append(msg_id)
        return msg_id

    def handle_push(self, headers: Mapping[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
        """``POST /jobs``: verify, then accept or refuse the job."""
        try:
            self._verify(headers, raw)
            run = JobRun.from_push(json.loads(raw))
        except AppError as exc:
            return exc.status, {"error": exc.to_dict()}
        except (ValueError, KeyError, TypeError) as exc:
            return 422, {"error": {"code": "INVALID_JOB", "message": str(exc)}}
        return self.accept(run)

    def accept(self, run: JobRun) -> tuple[int, dict[str, Any]]:
        """Start a job when there is room: 202, or 409 when full, 503 when draining."""
        with self._lock:
            current = self._runs.get(run.job_id)
            if current is not None and current.attempt == run.attempt:
                return 200, {"accepted": True, "job_id": run.job_id, "duplicate": True}
            if self._draining:
                return 503, {"error": {"code": "DRAINING", "message": "shutting down"}}
            if run.model not in self.config.models:
                return 422, {"error": {"code": "MODEL_NOT_SERVED", "message": run.model}}
            if self._hung.is_set() or len(self._runs) >= self.config.capacity:
                return 409, {"error": {"code": "AT_CAPACITY", "message": "no free slot"}}
            if current is not None:  # an older attempt of the same job: it is not ours now
                current.stop("superseded", silent=True)
            self._runs[run.job_id] = run
            thread = threading.Thread(target=self._execute, args=(run,), name=f"job-{run.job_id}")
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        log.info("accepted job %s attempt %s", run.job_id, run.attempt)
        return 202, {"accepted": True, "job_id": run.job_id}

    def handle_cancel(
        self, job_id: str, headers: Mapping[str, str], raw: bytes
    ) -> tuple[int, dict[str, Any]]:
        """``POST /jobs/{id}/cancel``: verify, then stop the job without reporting."""
        try:
            self._verify(headers, raw)
            attempt = json.loads(raw or b"{}").get("attempt")
        except AppError as exc:
            return exc.status, {"error": exc.to_dict()}
        except (ValueError, AttributeError) as exc:
            return 422, {"error": {"code": "INVALID_BODY", "message": str(exc)}}
        with self._lock:
            run = self._runs.get(job_id)
        if run is None or (attempt is not None and int(attempt) != run.attempt):
            return 200, {"canceled": False, "job_id": job_id}
        log.info("job %s canceled by the backend", job_id)
        run.stop("canceled", silent=True)
        return 200, {"canceled": True, "job_id": job_id}

    # Running one job ------------------------------------------------------------------
    def _report(self, run: JobRun, body: dict[str, Any]) -> bool:
        """Send one callback; False when the attempt is no longer ours (then stop)."""
        if run.silent:
            return False
        event = body["type"]
        try:
            data = send_signed(
                self.client,
                run.callback_url,
                {**body, "job_id": run.job_id, "attempt": run.attempt},
                self.settings,
                tries=CALLBACK_TRIES[event],
            )
        except BackendError as exc:
            log.warning("%s callback for %s failed: %s", event, run.job_id, exc)
            if exc.code == "JOB_NOT_FOUND":
                run.stop("gone", silent=True)
                return False
            return event == "progress"  # a lost tick is fine; a lost start or end is not
        data = data or {}
        if not data.get("applied") and data.get("reason") == "stale_attempt":
            log.warning("job %s attempt %s is stale; stopping", run.job_id, run.attempt)
            run.stop("stale", silent=True)
            return False
        return True

    def _inject(self, run: JobRun, pct: int) -> None:
        """Failure injection at ``pct`` percent of the job."""
        cfg = self.config
        if cfg.crash_at is not None and pct >= cfg.crash_at:
            log.warning("crash injected at %s%% of %s", pct, run.job_id)
            os._exit(137)
        if cfg.fail_at is not None and pct >= cfg.fail_at:
            raise InjectedFailure(f"failure injected at {pct}%")
        if cfg.hang_at is not None and pct >= cfg.hang_at:
            log.warning("hang injected at %s%% of %s", pct, run.job_id)
            self._hung.set()
            run.cancel.wait()  # wedged until told to stop
            raise JobStopped(run.stop_reason)

    def _progress(self, run: JobRun, pct: int, message: str | None = None) -> None:
        """Check injection and stops, then report progress now and then."""
        if run.cancel.is_set():
            raise JobStopped(run.stop_reason)
        self._inject(run, pct)
        now = time.monotonic()
        due = pct - run.reported >= PROGRESS_STEP or now - run.reported_at >= PROGRESS_EVERY_S
        if 0 < pct < 100 and pct > run.reported and due:
            run.reported, run.reported_at = pct, now
            body: dict[str, Any] = {"type": "progress", "progress": pct}
            if message:
                body["message"] = message
            if not self._report(run, body):
                raise JobStopped(run.stop_reason)

    def _execute(self, run: JobRun) -> None:
        try:
            if not self._report(run, {"type": "started"}):
                return
            output = self.produce(run)
            if run.cancel.is_set():
                raise JobStopped(run.stop_reason)
            completed: dict[str, Any] = {"type": "completed", "output": output}
            if run.rendered_s is not None and run.cost is not None:
                from videogen.composition import credits_used

                completed["credits_used"] = credits_used(run.cost, run.params, run.rendered_s)
            self._release(run)  # the work is done: the slot is free before we report it
            self._report(run, completed)
            log.info("job %s attempt %s completed", run.job_id, run.attempt)
        except (JobStopped, RenderCanceled):
            if not run.silent:  # shutting down with the job unfinished: give it back now
                self._fail(run, "WORKER_SHUTDOWN", "the worker shut down", retryable=True)
        except InjectedFailure as exc:
            self._fail(run, "INJECTED_FAILURE", str(exc), retryable=True)
        except InvalidJob as exc:
            self._fail(run, "INVALID_PARAMS", str(exc), retryable=False)
        except MediaError as exc:
            self._fail(run, exc.code, str(exc)[:2000], retryable=exc.status >= 500)
        except AppError as exc:  # storage and the like: a 5xx is worth another try
            self._fail(run, exc.code, exc.message, retryable=exc.status >= 500)
        except Exception as exc:
            log.exception("job %s crashed", run.job_id)
            self._fail(run, "WORKER_ERROR", f"{type(exc).__name__}: {exc}", retryable=True)
        finally:
            self._release(run)

    def _release(self, run: JobRun) -> None:
        """Free the job's slot (idempotent).

        Done before the final callback: the service pushes the next job while it handles
        that callback, and the slot must already be free or the push would be refused.
        """
        with self._lock:
            if self._runs.get(run.job_id) is run:
                del self._runs[run.job_id]
        self._slot_freed.set()

    def _fail(self, run: JobRun, code: str, message: str, *, retryable: bool) -> None:
        log.warning("job %s attempt %s failed: %s %s", run.job_id, run.attempt, code, message)
        self._release(run)
        self._report(
            run,
            {
                "type": "failed",
                "error": {"code": code, "message": message[:2000], "retryable": retryable},
            },
        )

    def produce(self, run: JobRun) -> dict[str, Any]:
        """Make the job's result and store it; returns the callback's ``output``."""
        if not self.config.render:
            return self._fake(run)
        with tempfile.TemporaryDirectory(prefix="videogen-worker-") as tmp:
            workdir = Path(tmp)
            if run.job_type == "compose":
                video, thumb = self._compose(run, workdir)
            else:
                video, thumb = self._render(run, workdir)
            self._progress(run, RENDER_SHARE + 2, "uploading")
            return self._store(run, video, thumb)

    def _render(self, run: JobRun, workdir: Path) -> tuple[Path, Path]:
        from videogen.media.render import make_thumbnail, render

        spec = VideoSpec.from_params(run.params)
        image = self._input_image(run, workdir) if run.params.get("image_path") else None
        plan = build_render(spec, workdir / "video.mp4", image=image, speed=self.config.speed)
        render(
            plan,
            progress=lambda pct: self._progress(run, pct * RENDER_SHARE // 100, "rendering"),
            cancel=run.cancel,
        )
        width = min(spec.size[0], 640)
        thumb = make_thumbnail(plan.output, workdir / "thumbnail.jpg", spec.duration / 2, width)
        return plan.output, thumb

    def _compose(self, run: JobRun, workdir: Path) -> tuple[Path, Path]:
        from videogen import composition

        result = composition.render(
            run.params,
            run.user_id,
            self.storage,
            workdir,
            lambda pct: self._progress(run, pct * RENDER_SHARE // 100, "composing"),
            cancel=run.cancel,
        )
        run.rendered_s = result.duration
        run.script = result.script.model_dump() if result.script is not None else None
        return result.video_path, result.thumbnail_path

    def _input_image(self, run: JobRun, workdir: Path) -> Path:
        """The job's uploaded still, as a local file."""
        path = str(run.params["image_path"])
        if storage_mod.owner_of(path) != run.user_id:
            raise InvalidJob("image_path is not in the job owner's folder")
        local = self.storage.local_path("uploads", path)
        if local is not None and local.is_file():
            return local
        target = workdir / ("input" + (Path(path).suffix or ".img"))
        target.write_bytes(self.storage.download("uploads", path))
        return target

    def _store(self, run: JobRun, video: Path, thumb: Path) -> dict[str, Any]:
        """Upload to ``videos`` and ``thumbnails`` under the owner's folder."""
        from videogen.composition import store_outputs

        output = store_outputs(self.storage, run.user_id, run.job_id, video, thumb)
        if run.script is not None:
            output["script"] = run.script
        return output

    def _fake(self, run: JobRun) -> dict[str, Any]:
        """``--no-render``: pass the injection points, then a tiny made-up result."""
        for pct in range(10, 100, 10):
            if run.cancel.is_set():
                raise JobStopped(run.stop_reason)
            self._inject(run, pct)
        try:
            spec = VideoSpec.from_params(run.params)
        except InvalidJob:
            spec = VideoSpec("", 1.0)
        width, height = spec.size
        return {"fake": True, "duration_s": spec.duration, "width": width, "height": height}


# ------------------------------------------------------------------------------------------
# HTTP server
# ------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, worker: ReferenceWorker) -> None:
        super().__init__(address, handler)
        self.worker = worker


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = f"videogen-worker/{VERSION}"

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body, default=str).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        """``GET /health``."""
        if self.path.split("?", 1)[0].rstrip("/") in ("", "/health"):
            self._reply(*self.server.worker.health())
        else:
            self._reply(404, {"error": {"code": "NOT_FOUND", "message": self.path}})

    def do_POST(self) -> None:
        """``POST /jobs`` and ``POST /jobs/{id}/cancel``."""
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = self.path.split("?", 1)[0].rstrip("/")
        worker = self.server.worker
        if path == "/jobs":
            self._reply(*worker.handle_push(headers, raw))
        elif match := _CANCEL_PATH.fullmatch(path):
            self._reply(*worker.handle_cancel(match["job_id"].lower(), headers, raw))
        else:
            self._reply(404, {"error": {"code": "NOT_FOUND", "message": self.path}})

    def log_message(self, format: str, *args: Any) -> None:
        """Access lines go to the debug log, not stderr."""
        log.debug("%s " + format, self.address_string(), *args)


# ------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------


def run(config: WorkerConfig) -> int:
    """Run a worker until SIGTERM/SIGINT; prints one JSON line when ready and one when done."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per callback is noise
    worker = ReferenceWorker(config)

    def on_signal(signum: int, frame: Any) -> None:
        if worker._stop_requested.is_set():
            os._exit(128 + signum)  # a second signal: stop now, leases will lapse
        worker.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker.start()
    ready = {"event": "ready", "name": config.name, "worker_id": worker.worker_id}
    print(json.dumps({**ready, "url": worker.url, "mode": config.mode}), flush=True)
    worker.wait()
    print(json.dumps({"event": "stopped", "name": config.name}), flush=True)
    sys.stdout.flush()
    return 0
