"""The reference GPU worker's state machine: it takes jobs (pushed, or claimed in pull
mode), renders them, and reports back exactly as a GPU worker must (docs/worker-protocol.md).

It registers with ``health-check-workers``, heartbeats there (stopping any job the answer
no longer lists), claims jobs in pull mode, and for each job sends signed ``started`` /
``progress`` / ``completed`` | ``failed`` callbacks to ``job-callback`` through
:mod:`videogen_worker.client`. What it renders honours the job: text/image-to-video clips
come from :mod:`videogen.media.clip`, composed videos from :mod:`videogen.media.compose`,
pictures (text/image-to-image) from :mod:`videogen.media.picture`.
Failure injection (``fail_at``, ``hang_at``, ``crash_at``) and ``render=False`` exist for
tests and benchmarks. Its HTTP face is :mod:`videogen_worker.server`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videogen.config import Settings, get_settings
from videogen.errors import AppError
from videogen.integrations import storage as storage_mod
from videogen.integrations import webhooks
from videogen.media.clip import InvalidClip, VideoSpec, build_render
from videogen.media.errors import MediaError, RenderCanceled
from videogen.media.picture import InvalidPicture, PictureSpec
from videogen.models.params import (
    ComposeParams,
    ImageToImageParams,
    ImageToVideoParams,
    PictureParams,
    TextToImageParams,
    TextToVideoParams,
    VideoParams,
    params_for,
)
from videogen.rendering import speeds
from videogen_worker import __version__
from videogen_worker.client import BackendError, send_signed
from videogen_worker.job import InjectedFailure, InvalidJob, JobRun, JobStopped, WorkerConfig

if TYPE_CHECKING:
    import httpx
    from werkzeug.serving import BaseWSGIServer

log = logging.getLogger(__name__)

RENDER_SHARE = 90
PROGRESS_STEP = 5  # report when progress rose this many points …
PROGRESS_EVERY_S = 1.0  # … or this long after the last report
CALLBACK_TRIES = {"started": 5, "progress": 2, "completed": 10, "failed": 10}
REGISTER_TIMEOUT_S = 60.0
_SEEN_IDS = 10_000  # push webhook-ids remembered to refuse replays
VERSION = __version__


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
        self._server: BaseWSGIServer | None = None

    # Life cycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Serve HTTP, register, start the heartbeat (and claim) loops."""
        from videogen_worker.server import serve

        self._server = serve(self, self.config.host, self.config.port)
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
        if data.get("render_speeds"):  # the fleet's, for kinds this worker has not rendered
            speeds.seed(data["render_speeds"])
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
                self.accept(JobRun.of(job, callback_url))
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
            run = JobRun.of(json.loads(raw))
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
        from videogen.usage import metering

        with metering() as meter:
            run.meter = meter
            self._attempt(run)

    def _attempt(self, run: JobRun) -> None:
        try:
            if not self._report(run, {"type": "started"}):
                return
            output = self.produce(run)
            if run.cancel.is_set():
                raise JobStopped(run.stop_reason)
            completed: dict[str, Any] = {"type": "completed", "output": output}
            if run.meter is not None:
                completed["usage"] = run.meter.as_usage()
            if run.rendered_s is not None:  # the database captures pro rata of it
                completed["rendered_seconds"] = run.rendered_s
            self._release(run)  # the work is done: the slot is free before we report it
            self._report(run, completed)
            log.info("job %s attempt %s completed", run.job_id, run.attempt)
        except (JobStopped, RenderCanceled):
            if not run.silent:  # shutting down with the job unfinished: give it back now
                self._fail(run, "WORKER_SHUTDOWN", "the worker shut down", retryable=True)
        except InjectedFailure as exc:
            self._fail(run, "INJECTED_FAILURE", str(exc), retryable=True)
        except (InvalidJob, InvalidClip, InvalidPicture) as exc:
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
        failed: dict[str, Any] = {
            "type": "failed",
            "error": {"code": code, "message": message[:2000], "retryable": retryable},
        }
        if run.meter is not None:
            failed["usage"] = run.meter.as_usage()
        self._report(run, failed)

    def produce(self, run: JobRun) -> dict[str, Any]:
        """Make the job's result and store it; returns the callback's ``output``."""
        if not self.config.render:
            return self._fake(run)
        params = params_for(run.job_type, run.params)  # a 422 INVALID_PARAMS if they do not fit
        with tempfile.TemporaryDirectory(prefix="videogen-worker-") as tmp:
            workdir = Path(tmp)
            if isinstance(params, TextToImageParams | ImageToImageParams):
                return self._picture(run, params, workdir)
            if isinstance(params, ComposeParams):
                video, thumb = self._compose(run, params, workdir)
            elif isinstance(params, TextToVideoParams | ImageToVideoParams):
                video, thumb = self._render(run, params, workdir)
            else:
                raise InvalidJob(f"this worker does not make {run.job_type} jobs")
            self._progress(run, RENDER_SHARE + 2, "uploading")
            return self._store(run, video, thumb)

    def _render(self, run: JobRun, params: VideoParams, workdir: Path) -> tuple[Path, Path]:
        from videogen.media.render import make_thumbnail, render

        spec = VideoSpec.from_params(params)
        image = None
        if isinstance(params, ImageToVideoParams) and params.image_path:
            image = self._input_image(run, params.image_path, workdir)
        plan = build_render(spec, workdir / "video.mp4", image=image, speed=self.config.speed)
        render(
            plan,
            progress=lambda pct: self._progress(run, pct * RENDER_SHARE // 100, "rendering"),
            cancel=run.cancel,
        )
        width = min(spec.size[0], 640)
        thumb = make_thumbnail(plan.output, workdir / "thumbnail.jpg", spec.duration / 2, width)
        return plan.output, thumb

    def _picture(self, run: JobRun, params: PictureParams, workdir: Path) -> dict[str, Any]:
        """Draw a picture (over the job's upload for image-to-image) and store it in
        ``images`` with a thumbnail; the callback's ``output``."""
        from videogen.media import picture
        from videogen.rendering.outputs import store_picture

        spec = PictureSpec(
            prompt=(params.prompt or "").strip() or "(no prompt)",
            aspect_ratio=params.aspect_ratio or "1:1",
            resolution=params.resolution or "720p",
            seed=params.seed or 0,
            strength=(
                params.strength
                if isinstance(params, ImageToImageParams) and params.strength is not None
                else PictureSpec.strength
            ),
        )
        init = None
        if isinstance(params, ImageToImageParams):
            if not params.image_path:
                raise InvalidJob("an image-to-image job needs image_path")
            init = self._input_image(run, params.image_path, workdir)
        self._progress(run, 10, "drawing")
        drawn = picture.draw(spec, workdir / "picture.png", init)
        self._progress(run, RENDER_SHARE, "drawing")
        thumb = picture.thumbnail(drawn, workdir / "thumbnail.jpg")
        if run.cancel.is_set():
            raise JobStopped(run.stop_reason)
        self._progress(run, RENDER_SHARE + 2, "uploading")
        return store_picture(self.storage, run.user_id, run.job_id, drawn, thumb)

    def _compose(self, run: JobRun, params: ComposeParams, workdir: Path) -> tuple[Path, Path]:
        from videogen.rendering import composition

        result = composition.render(
            params,
            run.user_id,
            self.storage,
            workdir,
            lambda pct: self._progress(run, pct * RENDER_SHARE // 100, "composing"),
            cancel=run.cancel,
        )
        run.rendered_s = result.duration
        run.script = result.script.model_dump() if result.script is not None else None
        run.files = dict(result.files)
        return result.video_path, result.thumbnail_path

    def _input_image(self, run: JobRun, path: str, workdir: Path) -> Path:
        """The job's uploaded still (``image_path``), as a local file."""
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
        from videogen.rendering.outputs import store_outputs

        output = store_outputs(self.storage, run.user_id, run.job_id, video, thumb, run.files)
        if run.script is not None:
            output["script"] = run.script
        return output

    def _fake(self, run: JobRun) -> dict[str, Any]:
        """``--no-render``: pass the injection points, then a tiny made-up result."""
        for pct in range(10, 100, 10):
            if run.cancel.is_set():
                raise JobStopped(run.stop_reason)
            self._inject(run, pct)
        spec = VideoSpec("", 1.0)
        with contextlib.suppress(AppError, InvalidClip):
            params = params_for(run.job_type, run.params)
            if isinstance(params, TextToVideoParams | ImageToVideoParams):
                spec = VideoSpec.from_params(params)
            elif isinstance(params, ComposeParams):
                spec = VideoSpec(
                    "",
                    float(params.duration if params.duration is not None else 5),
                    params.aspect_ratio or "16:9",
                    params.resolution or "720p",
                )
        width, height = spec.size
        return {"fake": True, "duration_s": spec.duration, "width": width, "height": height}
