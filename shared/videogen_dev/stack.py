"""The embedded default as one long-running stack, and the demo a frontend would run.

``videogen up`` starts the embedded Postgres (applying pending migrations), the dev
server at http://127.0.0.1:54321 (the five functions at ``/functions/v1/<name>``, the
local Auth, PostgREST, Storage and Realtime APIs, the web app at ``/app/``, a page listing
it all at ``/``), the scheduler of ``private.schedules`` (videogen_dev.scheduler: the sweep,
where pg_cron does not run it) and two reference workers, each a detached process with its
pid and log under ``.videogen/run/`` (``videogen logs`` reads them); ``down`` stops them;
``status`` shows them. ``videogen demo`` then plays a frontend: it signs in
anonymously through the Auth API, claims the initial credits, uploads a still through the
Storage API, makes a generated, an image-to-video and a composed video, follows each on
the Realtime websocket with a progress bar (polling over HTTP when Realtime is silent),
and probes the results with ffprobe.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videogen.config import get_settings

SERVER_PORT = 54321
WORKER_PORTS = (54331, 54332)
REFERENCE_MODELS = (
    "reference/text-to-video,reference/image-to-video,reference/compose,"
    "reference/text-to-image,reference/image-to-image"
)


@dataclass(frozen=True)
class Proc:
    """One process of the stack."""

    name: str
    argv: list[str]

    def pid_file(self, run_dir: Path) -> Path:
        """Where its pid is kept."""
        return run_dir / f"{self.name}.pid"

    def log_file(self, run_dir: Path) -> Path:
        """Where its output goes."""
        return run_dir / f"{self.name}.log"


def run_dir() -> Path:
    """``<state dir>/run`` (created)."""
    from videogen_dev.migrations import project_root

    home = get_settings().state_dir
    path = (home if home.is_absolute() else project_root() / home) / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def processes() -> list[Proc]:
    """The server, the scheduler and the two reference workers."""
    py = [sys.executable, "-m", "videogen_dev"]
    procs = [
        Proc("functions", [*py, "serve", "--port", str(SERVER_PORT)]),
        # private.schedules (the sweep) where pg_cron does not run them; idle where it does.
        Proc("scheduler", [*py, "scheduler"]),
    ]
    for i, port in enumerate(WORKER_PORTS, start=1):
        procs.append(
            Proc(
                f"worker-{i}",
                [
                    *py,
                    "worker",
                    "--name",
                    f"local-worker-{i}",
                    "--port",
                    str(port),
                    "--models",
                    REFERENCE_MODELS,
                ],
            )
        )
    return procs


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _pid(proc: Proc, rd: Path) -> int | None:
    try:
        pid = int(proc.pid_file(rd).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def _wait_http(url: str, timeout: float) -> bool:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return True
        except httpx.TransportError:
            time.sleep(0.2)
    return False


def up() -> dict[str, Any]:
    """Start whatever of the stack is not running; returns what runs."""
    from videogen_dev import localdb, migrations

    dsn = localdb.ensure_running()
    migrations.apply_all(dsn)
    rd = run_dir()
    env = {**os.environ, "DATABASE_URL": dsn}
    if "storage_backend" not in get_settings().model_fields_set:
        # Workers keep objects through the dev server's Storage API (its storage.objects
        # rows and policies included), as they would through Supabase Storage.
        env.update(STORAGE_BACKEND="supabase", SUPABASE_URL=f"http://127.0.0.1:{SERVER_PORT}")
    # A webhook receiver on this machine works locally (never in production: config refuses).
    env.setdefault("OUTBOUND_ALLOW_PRIVATE_HOSTS", "true")
    started: dict[str, Any] = {}
    for proc in processes():
        pid = _pid(proc, rd)
        if pid is None:
            with proc.log_file(rd).open("ab") as log:
                p = subprocess.Popen(
                    proc.argv,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            proc.pid_file(rd).write_text(str(p.pid))
            pid = p.pid
        started[proc.name] = pid
        if proc.name == "functions" and not _wait_http(
            f"http://127.0.0.1:{SERVER_PORT}/functions/v1/queue-job", 30
        ):
            raise RuntimeError(f"the functions did not start; see {proc.log_file(rd)}")
    for port in WORKER_PORTS:
        _wait_http(f"http://127.0.0.1:{port}/health", 30)
    return {
        "database": localdb.redact(dsn),
        "processes": started,
        "functions_url": f"http://127.0.0.1:{SERVER_PORT}/functions/v1",
    }


def down(*, database: bool = True) -> list[str]:
    """Stop the stack (workers first, so they drain); returns what was stopped."""
    from videogen_dev import localdb

    rd = run_dir()
    stopped = []
    for proc in reversed(processes()):
        pid = _pid(proc, rd)
        if pid is not None:
            os.killpg(pid, signal.SIGTERM)
            for _ in range(100):
                if not _alive(pid):
                    break
                time.sleep(0.1)
            else:
                os.killpg(pid, signal.SIGKILL)
            stopped.append(proc.name)
        proc.pid_file(rd).unlink(missing_ok=True)
    if database and localdb.stop():
        stopped.append("database")
    return stopped


def status() -> dict[str, Any]:
    """What of the stack runs."""
    from videogen_dev import localdb

    rd = run_dir()
    return {"database": localdb.status(), "processes": {p.name: _pid(p, rd) for p in processes()}}


# ------------------------------------------------------------------------------------------
# The demo
# ------------------------------------------------------------------------------------------


def _call(client: Any, method: str, url: str, **kwargs: Any) -> Any:
    resp = client.request(method, url, **kwargs)
    body = resp.json()
    if not body.get("success"):
        raise RuntimeError(f"{method} {url} → {resp.status_code}: {body['error']['message']}")
    return body["data"]


TERMINAL = ("completed", "failed", "canceled")


POLL_S = 2.0  # the fallback: how often a job is read over HTTP when Realtime is silent


def _follow(
    feed: Any, client: Any, base: str, console: Any, job: dict[str, Any], timeout: float
) -> str:
    """Show a job's realtime events as a progress bar until it ends; how it was followed.

    Events come from the Realtime channel; with no event for ``POLL_S`` (or no channel),
    the job is read over HTTP instead — the fallback a frontend keeps.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    )
    sources: set[str] = set()
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(f"{job['status']:<10}", total=100, completed=job["progress"])
        deadline = time.monotonic() + timeout
        status = job["status"]
        while status not in TERMINAL and time.monotonic() < deadline:
            event = feed.next(POLL_S) if feed.subscribed else None
            if event is not None and event.get("job_id") != job["id"]:
                continue  # another job of this user
            if event is None:
                time.sleep(0 if feed.subscribed else POLL_S)
                now = _call(client, "GET", f"{base}/generate-video", params={"id": job["id"]})
                data = {"message": now.get("progress_message")}
                event = {**now, "event": now["status"], "data": data}
                sources.add("polling")
            else:
                sources.add("realtime")
            message = (event.get("data") or {}).get("message") or ""
            bar.update(
                task,
                completed=event["progress"],
                description=f"{event['event']:<10} attempt {event['attempt']} {message}",
            )
            status = event["status"]
    return "+".join(sorted(sources)) or "-"


def probe(path: Path) -> dict[str, Any]:
    """ffprobe's view of a video, as a frontend sees the file it downloaded (the demo's own
    call, not the runtime's render code): duration, size, frame rate and codecs."""
    from fractions import Fraction

    done = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
         str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    data = json.loads(done.stdout or "{}")
    streams = data.get("streams", [])
    video: dict[str, Any] = next((s for s in streams if s.get("codec_type") == "video"), {})
    audio: dict[str, Any] = next((s for s in streams if s.get("codec_type") == "audio"), {})
    try:
        fps = float(Fraction(video.get("avg_frame_rate") or video.get("r_frame_rate") or "0"))
    except (ValueError, ZeroDivisionError):
        fps = 0.0
    return {
        "duration": float((data.get("format") or {}).get("duration") or 0.0),
        "width": int(video.get("width") or 0),
        "height": int(video.get("height") or 0),
        "fps": fps,
        "video_codec": video.get("codec_name"),
        "audio_codec": audio.get("codec_name"),
    }


def _summary(final: dict[str, Any], storage_dir: Path) -> dict[str, Any]:
    """What a user wants to know about a finished job, with ffprobe's view of the file."""
    result: dict[str, Any] = {
        "job_id": final["id"],
        "model": final["model_id"],
        "status": final["status"],
        "credits_used": final.get("credits_used"),
        "events": [e["event"] for e in final.get("events", [])],
    }
    if final["status"] != "completed":
        result["error"] = {"code": final.get("error_code"), "message": final.get("error_message")}
        return result
    out = final["output"]
    video = (storage_dir / "videos" / out["video_path"]).resolve()
    info = probe(video)
    result.update(
        {
            "video": str(video),
            "video_url": out.get("video_url"),
            "thumbnail": str((storage_dir / "thumbnails" / out["thumbnail_path"]).resolve()),
            "duration_s": info["duration"],
            "resolution": f"{info['width']}x{info['height']}",
            "fps": info["fps"],
            "streams": [c for c in (info.get("video_codec"), info.get("audio_codec")) if c],
        }
    )
    if out.get("title"):
        result["title"] = out["title"]
    if out.get("vtt_path"):
        vtt = (storage_dir / "videos" / out["vtt_path"]).resolve()
        result["captions_vtt"] = str(vtt)
        result["captions_vtt_url"] = out.get("vtt_url")
        result["first_cues"] = _first_cues(vtt)
    return result


def _first_cues(vtt: Path, count: int = 2) -> list[str]:
    """The first cues of a WebVTT file, "start --> end text", as a reader checks them."""
    blocks = vtt.read_text(encoding="utf-8").split("\n\n")[1:]
    return [" ".join(block.split()) for block in blocks if "-->" in block][:count]


def demo_console(file: Any = None) -> Any:
    """The demo's console: piped output keeps long lines (paths, URLs) whole, unwrapped."""
    from rich.console import Console

    return Console(file=file, soft_wrap=True)


# The composed video's captions: bold white words, the spoken one in yellow, outlined.
DEMO_CAPTIONS = {"font": "sans-bold", "color": "#ffffff", "highlight": "#ffd400",
                 "background": "outline", "position": "bottom", "words_per_line": 4}  # fmt: skip
CLIP_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv")
DEMO_CREDITS_NEEDED = 250  # what the demo's three jobs can reserve, with room to spare


def _upload_still(settings: Any, token: str, user_id: str, console: Any) -> str:
    """Upload a picture as the user, through the Storage API with their token, as a
    frontend does (``supabase.storage.from('uploads').upload``); its object path."""
    import tempfile

    from storage3 import SyncStorageClient

    path = f"{user_id}/demo-still.png"
    with tempfile.TemporaryDirectory(prefix="videogen-demo-") as tmp:
        still = Path(tmp) / "still.png"
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
             "testsrc2=s=1280x720", "-frames:v", "1", str(still)],
            check=True,
        )  # fmt: skip
        storage = SyncStorageClient(
            f"{settings.supabase_url.rstrip('/')}/storage/v1/",
            {
                "apikey": settings.publishable_key.get_secret_value(),
                "Authorization": f"Bearer {token}",
            },
        )
        try:
            storage.from_("uploads").upload(
                path, still.read_bytes(), {"content-type": "image/png", "upsert": "true"}
            )
        finally:
            storage.session.close()
    console.print(f"Uploaded uploads/{path} with the user's token (Storage API)")
    return path


def _sign_in(supabase_url: str, api_key: str) -> tuple[str, str]:
    """Sign in anonymously through the Auth API with supabase-py's auth client, as a
    frontend's first visit does: (user id, access token)."""
    from supabase_auth import SyncGoTrueClient

    auth = SyncGoTrueClient(url=f"{supabase_url}/auth/v1", headers={"apikey": api_key})
    try:
        session = auth.sign_in_anonymously().session
    finally:
        auth._http_client.close()
    if session is None:
        raise RuntimeError("the Auth API gave no session")
    return session.user.id, session.access_token


def _top_up(client: Any, console: Any, base: str, settings: Any, user_id: str, needed: int) -> None:
    """Grant the demo user what its jobs need when earlier runs spent the grant, as an
    operator would with the secret key: the demo works every time, from any state."""
    import uuid

    balance = _call(client, "GET", f"{base}/update-credits", params={"limit": 1})["balance"]
    if balance >= needed:
        return
    amount = needed - balance
    _call(
        client,
        "POST",
        f"{base}/update-credits",
        headers={
            "apikey": settings.secret_key.get_secret_value(),
            "Authorization": f"Bearer {settings.secret_key.get_secret_value()}",
        },
        json={
            "action": "grant",
            "user_id": user_id,
            "amount": amount,
            "grant_id": f"demo-top-up:{uuid.uuid4()}",
            "description": "demo top-up",
        },
    )
    console.print(f"Topped up {amount} credits with the secret key (balance was {balance})")


def _step(client: Any, base: str, model: str, params: dict[str, Any], project: str) -> Any:
    """One wizard step (it runs in the request): its finished job, or an error."""
    import uuid

    job = _call(
        client,
        "POST",
        f"{base}/queue-job",
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={"model": model, "params": params, "project_id": project},
    )
    if job["status"] != "completed":
        raise RuntimeError(f"{model} {job['status']}: {job.get('error_message')}")
    return job


def _wizard(
    client: Any, base: str, console: Any, project: str, topic: str, look: dict[str, Any]
) -> dict[str, Any]:
    """Step by step, as a creator in the wizard: script → shorter → narration → pictures;
    the body of the compose job that assembles them."""
    written = _step(client, base, "reference/script", {"prompt": topic, "sections": 3}, project)
    words = written["output"]["analysis"]["words"]
    console.print(f"[bold]script[/]: {written['output']['script']['title']!r}, {words} words")
    improved = _step(
        client,
        base,
        "reference/script",
        {"script": written["output"]["script"], "instruction": "make it shorter"},
        project,
    )
    script = improved["output"]["script"]
    console.print(
        f"[bold]script, shorter[/]: {improved['output']['analysis']['words']} words, "
        f"{improved['output']['analysis']['reading_seconds']} s to read"
    )
    narrated = _step(
        client, base, "reference/narration", {"script": script, "duration": 60}, project
    )
    console.print(
        f"[bold]narration[/]: {len(narrated['output']['narration_paths'])} files, "
        f"{narrated['output']['duration_s']} s"
    )
    pictured = _step(
        client,
        base,
        "reference/images",
        {"script": script, "source": "mixed", "timings": narrated["output"]["sections"], **look},
        project,
    )
    visuals = pictured["output"]["image_paths"]
    clips = sum(1 for path in visuals if path.endswith(CLIP_SUFFIXES))
    console.print(
        f"[bold]images[/]: {len(visuals) - clips} stills and {clips} moving clips, alternating"
    )
    return {
        "model": "reference/compose",
        "prompt": script["title"],
        "script": script,
        "narration_paths": narrated["output"]["narration_paths"],
        "images": pictured["output"]["image_paths"],
        "duration": 60,
        "project_id": project,
        # Each word highlighted as the narration says it; cues also as a sidecar WebVTT.
        "caption_style": DEMO_CAPTIONS,
        **look,
    }


def _follow_batch(
    feed: Any, client: Any, base: str, console: Any, batch: dict[str, Any], timeout: float
) -> str:
    """Show a batch's progress (its ``batch_progress`` broadcasts, or polling) until done."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    sources: set[str] = set()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
    )
    with Progress(*columns, TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(f"batch of {batch['jobs_total']}", total=100, completed=0)
        deadline, done = time.monotonic() + timeout, False
        while not done and time.monotonic() < deadline:
            event = feed.next(POLL_S) if feed.subscribed else None
            if event is not None and event.get("id") != batch["id"]:
                continue  # a job event, or another batch
            if event is None:
                time.sleep(0 if feed.subscribed else POLL_S)
                event = _call(
                    client, "GET", f"{base}/queue-job/batches", params={"id": batch["id"]}
                )
                sources.add("polling")
            else:
                sources.add("realtime")
            counts = ", ".join(f"{n} {status}" for status, n in sorted(event["counts"].items()))
            bar.update(task, completed=event["percent"], description=f"batch: {counts}")
            done = event["done"]
    return "+".join(sorted(sources)) or "-"


def demo(
    prompt: str,
    *,
    duration: int = 4,
    resolution: str = "480p",
    aspect_ratio: str = "9:16",
    topic: str = "How ocean tides work",
    timeout: float = 300.0,
) -> dict[str, Any]:
    """Play a frontend: sign in, claim credits, upload a picture, then in a project: a batch
    of two videos, an image-to-video, and a composed video made step by step."""
    import uuid

    import httpx

    from videogen_dev.job_feed import JobFeed
    from videogen_dev.migrations import project_root

    settings = get_settings()
    console = demo_console()
    supabase_url = f"http://127.0.0.1:{SERVER_PORT}"
    base = f"{supabase_url}/functions/v1"
    publishable = settings.publishable_key.get_secret_value()
    storage_dir = (
        settings.storage_dir
        if settings.storage_dir.is_absolute()
        else project_root() / settings.storage_dir
    )
    look = {"resolution": resolution, "aspect_ratio": aspect_ratio}
    console.print(f"[bold]Web app[/]: {supabase_url}/app/")
    user_id, token = _sign_in(supabase_url, publishable)
    headers = {"Authorization": f"Bearer {token}", "apikey": publishable}
    feed = JobFeed(supabase_url, publishable, token, user_id)
    if feed.start():
        console.print(
            f"[bold]Signed in[/] anonymously ({user_id}) through the Auth API; following "
            f"{feed.topic} over the Realtime websocket ({feed.url}/websocket)"
        )
    else:
        console.print(
            f"[bold]Signed in[/] anonymously ({user_id}); Realtime unavailable "
            f"({feed.error}), following jobs by polling"
        )
    results = []
    try:
        with httpx.Client(headers=headers, timeout=120) as client:
            claim = client.post(f"{base}/update-credits", json={"action": "claim_initial_grant"})
            if claim.status_code == 200:
                amount = claim.json()["data"]["entry"]["amount"]
                console.print(f"Claimed the initial grant: {amount} credits")
            _top_up(client, console, base, settings, user_id, DEMO_CREDITS_NEEDED)
            still = _upload_still(settings, token, user_id, console)
            project = _call(
                client,
                "POST",
                f"{base}/queue-job/projects",
                json={"title": "Demo project", "description": "made by videogen demo"},
            )
            console.print(f"[bold]Project[/] {project['title']!r} ({project['id']})")
            shots = [f"{prompt}, wide shot", f"{prompt}, close-up"]
            items = [
                {
                    "model": "reference/text-to-video",
                    "params": {"prompt": p, "duration": duration, **look},
                }
                for p in shots
            ]
            quote = _call(client, "POST", f"{base}/queue-job/quote", json={"items": items})
            console.print(
                f"[bold]Quote[/]: a batch of {len(items)} costs {quote['total']} credits "
                f"(you have {quote['balance']})"
            )
            batch = _call(
                client,
                "POST",
                f"{base}/queue-job/batches",
                headers={"Idempotency-Key": str(uuid.uuid4())},
                json={"items": items, "project_id": project["id"], "title": "Two shots"},
            )
            console.print(
                f"[bold]Batch[/] {batch['id']}: {batch['jobs_total']} jobs, {batch['cost']} "
                "credits reserved together"
            )
            followed = _follow_batch(feed, client, base, console, batch, timeout)
            done = _call(client, "GET", f"{base}/queue-job/batches", params={"id": batch["id"]})
            for job in done["jobs"]:
                final = _call(client, "GET", f"{base}/generate-video", params={"id": job["id"]})
                results.append({**_summary(final, storage_dir), "followed_by": followed})
            bodies = [
                {
                    "model": "reference/image-to-video",
                    "prompt": "a slow push in on the test card",
                    "image_path": still,
                    "duration": duration,
                    "project_id": project["id"],
                    **look,
                },
                _wizard(client, base, console, project["id"], topic, look),
            ]
            for body in bodies:
                job = _call(
                    client,
                    "POST",
                    f"{base}/generate-video",
                    headers={"Idempotency-Key": str(uuid.uuid4())},
                    json=body,
                )
                console.print(
                    f"[bold]{body['model']}[/]: job {job['id']} {job['status']}, "
                    f"{job['cost']} credits reserved"
                )
                followed = _follow(feed, client, base, console, job, timeout)
                final = _call(client, "GET", f"{base}/generate-video", params={"id": job["id"]})
                results.append({**_summary(final, storage_dir), "followed_by": followed})
            filed = _call(client, "GET", f"{base}/queue-job/projects", params={"id": project["id"]})
            balance = _call(client, "GET", f"{base}/update-credits", params={"limit": 5})
    finally:
        feed.close()
    summary = {
        "project": {"id": project["id"], "title": project["title"], "jobs": filed["jobs"]},
        "jobs": results,
        "balance_after": balance["balance"],
        "reserved": balance["reserved"],
    }
    console.print_json(json.dumps(summary, default=str))
    return summary
