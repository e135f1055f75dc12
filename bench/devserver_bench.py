"""The dev server through a frontend team's day: many idle websockets and bursts of reads.

With ``--sockets`` (500) websockets open and idle on the local Realtime (each joined to a
topic, as a tab that follows its jobs), ``--readers`` (64) clients read finished jobs as fast
as they can (``GET /functions/v1/generate-video?id=…`` of completed jobs with outputs: every
answer signs its links through the server's own Storage API) for ``--seconds``, while a
probe asks ``/functions/v1/health-check-workers/live`` every 20 ms. The server runs as
``videogen serve`` does by default (one worker, four threads per core, at least eight).

Bars: ``/live`` p99 <= 50 ms under that load, and no read answered with
``links_unavailable`` (nor any error). Printed too: the same probe with nothing else
running (the yardstick), the reads' rate and latency, and the sockets still open at the end.

    python bench/devserver_bench.py [--sockets 500] [--readers 64] [--seconds 10] [--threads N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
from videogen_dev.devserver import default_threads

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

BAR_LIVE_P99_MS = 50.0
JOBS = 8  # finished jobs the readers pick from
MP4 = b"\x00\x00\x00\x18ftypmp42"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class IdleSockets:
    """``n`` websockets (vsn 2, as realtime-js) joined to a topic, held open by one asyncio
    loop in a thread; the client library's pings keep them alive, nothing else is sent."""

    def __init__(self, base: str, key: str, n: int) -> None:
        self.url = f"{base.replace('http', 'ws')}/realtime/v1/websocket?vsn=2.0.0&apikey={key}"
        self.n = n
        self.loop = asyncio.new_event_loop()
        self.sockets: list[Any] = []
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    async def _open(self, i: int) -> Any:
        from websockets.asyncio.client import connect

        ws = await connect(self.url, open_timeout=60)
        join = [str(i), str(i), f"realtime:idle-{i % 50}", "phx_join", {"config": {}}]
        await ws.send(json.dumps(join))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert reply[4]["status"] == "ok", reply
        return ws

    async def _open_all(self) -> None:
        for start in range(0, self.n, 50):  # 50 at a time: a tab at a time, not a flood
            batch = range(start, min(self.n, start + 50))
            self.sockets += await asyncio.gather(*(self._open(i) for i in batch))

    def open(self) -> float:
        began = time.perf_counter()
        asyncio.run_coroutine_threadsafe(self._open_all(), self.loop).result(300)
        return time.perf_counter() - began

    async def _still_open(self) -> int:
        async def alive(i: int, ws: Any) -> bool:
            try:
                await ws.send(json.dumps([None, f"h{i}", "phoenix", "heartbeat", {}]))
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    if frame[1] == f"h{i}":
                        return bool(frame[4]["status"] == "ok")
            except Exception:
                return False

        return sum(await asyncio.gather(*(alive(i, ws) for i, ws in enumerate(self.sockets))))

    def still_open(self) -> int:
        return int(asyncio.run_coroutine_threadsafe(self._still_open(), self.loop).result(120))

    def close(self) -> None:
        async def close_all() -> None:
            await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def finished_jobs(server: Any, dsn: str, n: int) -> tuple[str, list[str]]:
    """A user with ``n`` completed jobs whose videos are in storage: (token, job ids)."""
    from videogen_dev.users import ensure_user

    from videogen.config import Settings
    from videogen.integrations import webhooks
    from videogen.integrations.storage import get_storage
    from videogen.kit.auth import issue_access_token

    email = f"bench-{uuid.uuid4().hex[:8]}@example.test"
    user_id, _ = ensure_user(dsn, email)
    model = f"test/bench-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "select service.credits_grant(%s, %s, %s)", [user_id, 10_000, f"bench-{model}"]
        )
        conn.execute(
            "insert into public.models (id, name, provider, provider_model_id, job_type,"
            " credits_base, credits_per_second, max_attempts, lease_seconds)"
            " values (%s, %s, 'reference', 'reference-t2v', 'text_to_video', 2, 1, 2, 600)",
            [model, model],
        )
    token = issue_access_token(user_id, email=email)
    user = {"Authorization": f"Bearer {token}"}
    http = httpx.Client(timeout=30)

    def signed(payload: dict[str, Any]) -> Any:
        body = json.dumps(payload).encode()
        headers = {"content-type": "application/json", **webhooks.sign(body)}
        url = (
            f"{server.functions}/{'job-callback' if 'type' in payload else 'health-check-workers'}"
        )
        resp = http.post(url, content=body, headers=headers)
        assert resp.status_code < 300, resp.text
        return resp.json()["data"]

    worker = signed(
        {
            "action": "register",
            "name": f"w-{model}",
            "models": [model],
            "capacity": n,
            "mode": "pull",
        }
    )["id"]
    names = {f.alias for f in Settings.model_fields.values() if f.alias}
    storage = get_storage(Settings(**{k: v for k, v in server.env.items() if k in names}))
    ids = []
    try:
        for _ in range(n):
            created = http.post(
                f"{server.functions}/queue-job", headers=user, json={"model": model}
            )
            assert created.status_code == 202, created.text
            [leased] = signed({"action": "claim", "worker_id": worker, "limit": 1})
            job_id = created.json()["data"]["id"]
            video = f"{user_id}/{job_id}.mp4"
            storage.upload("videos", video, MP4, "video/mp4")
            signed(
                {
                    "type": "completed",
                    "job_id": job_id,
                    "attempt": leased["attempt"],
                    "output": {"video_path": video},
                    "credits_used": 3,
                }
            )
            ids.append(job_id)
    finally:
        storage.close()
        http.close()
    return token, ids


def probe(url: str, stop: threading.Event, every: float = 0.02) -> list[float]:
    """``GET url`` every ``every`` seconds until ``stop``: each answer's latency (ms)."""
    took: list[float] = []
    with httpx.Client(timeout=30) as http:
        while not stop.is_set():
            began = time.perf_counter()
            try:
                ok = http.get(url).status_code == 200
            except httpx.TransportError:
                ok = False
            took.append((time.perf_counter() - began) * 1000 if ok else float("inf"))
            stop.wait(max(0.0, every - (time.perf_counter() - began)))
    return took


def probe_for(url: str, seconds: float) -> list[float]:
    """:func:`probe` for ``seconds``, run in a process of its own (the readers' threads in
    this one would otherwise hold the probe's GIL, and that wait is not the server's)."""
    stop = threading.Event()
    timer = threading.Timer(seconds, stop.set)
    timer.start()
    return probe(url, stop)


def read_jobs(
    base: str, token: str, ids: list[str], stop: threading.Event
) -> tuple[list[float], int, int]:
    """One reader: GET a random finished job until ``stop``: (latencies ms, errors,
    answers with links_unavailable)."""
    took, errors, unavailable = [], 0, 0
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(timeout=60, headers=headers) as http:
        while not stop.is_set():
            began = time.perf_counter()
            try:
                resp = http.get(f"{base}/generate-video", params={"id": random.choice(ids)})
            except httpx.TransportError:
                errors += 1
                continue
            took.append((time.perf_counter() - began) * 1000)
            if resp.status_code != 200:
                errors += 1
                continue
            output = resp.json()["data"]["output"] or {}
            if output.get("links_unavailable") or not output.get("video_url"):
                unavailable += 1
    return took, errors, unavailable


def main() -> int:
    from serverkit import running_server
    from videogen_dev import localdb, migrations

    from videogen.config import LOCAL_PUBLISHABLE_KEY

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=500)
    parser.add_argument("--readers", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=default_threads())
    args = parser.parse_args()

    admin = localdb.ensure_running()
    template = f"videogen_bench_tpl_{migrations.fingerprint()[:12]}"
    migrations.create_template(admin, template)
    name = "videogen_bench_devserver"
    migrations.drop_database(admin, name)
    dsn = migrations.clone_database(admin, template, name)
    env = {
        "WORKERS": "1",
        "THREADS": str(args.threads),
        "RATE_LIMIT_PER_MINUTE": "100000000",
        "FREE_CALLS_PER_MINUTE": "100000000",
        "HEALTH_TIMEOUT_SECONDS": "30",
    }
    try:
        with tempfile.TemporaryDirectory() as tmp, running_server(dsn, Path(tmp), **env) as srv:
            live = f"{srv.functions}/health-check-workers/live"
            token, ids = finished_jobs(srv, dsn, JOBS)

            spawn = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(1, mp_context=spawn) as prober:
                quiet = prober.submit(probe_for, live, min(5.0, args.seconds)).result()

            sockets = IdleSockets(srv.base, LOCAL_PUBLISHABLE_KEY, args.sockets)
            opened = sockets.open()
            print(f"{args.sockets} websockets open and joined in {opened:.1f} s")

            stop = threading.Event()
            with (
                ProcessPoolExecutor(1, mp_context=spawn) as prober,
                ThreadPoolExecutor(args.readers) as pool,
            ):
                readers = [
                    pool.submit(read_jobs, srv.functions, token, ids, stop)
                    for _ in range(args.readers)
                ]
                time.sleep(1.0)  # the readers at full speed first
                loaded = prober.submit(probe_for, live, args.seconds).result()
                stop.set()
                results = [r.result() for r in readers]
            still = sockets.still_open()
            sockets.close()
    finally:
        migrations.drop_database(admin, name)

    reads = [t for took, _, _ in results for t in took]
    errors = sum(e for _, e, _ in results)
    unavailable = sum(u for _, _, u in results)
    p99 = pct(loaded, 0.99)
    print(
        f"/live alone:         {len(quiet)} probes, p50 {pct(quiet, 0.5):.1f} ms,"
        f" p99 {pct(quiet, 0.99):.1f} ms"
    )
    print(
        f"/live under load:    {len(loaded)} probes, p50 {pct(loaded, 0.5):.1f} ms,"
        f" p99 {p99:.1f} ms, max {max(loaded):.1f} ms"
        f" (bar p99 <= {BAR_LIVE_P99_MS:.0f} ms: {'ok' if p99 <= BAR_LIVE_P99_MS else 'missed'})"
    )
    print(
        f"job reads:           {len(reads)} by {args.readers} readers in {args.seconds + 1:.0f} s"
        f" ({len(reads) / (args.seconds + 1):.0f}/s), p50 {pct(reads, 0.5):.1f} ms,"
        f" p99 {pct(reads, 0.99):.1f} ms, median {statistics.median(reads):.1f} ms"
    )
    print(
        f"links_unavailable:   {unavailable}, errors: {errors}"
        f" (bar 0: {'ok' if unavailable == 0 and errors == 0 else 'missed'})"
    )
    print(f"websockets still open after the run: {still} of {args.sockets}")
    return 0  # the verdicts are printed, as the other benches do


if __name__ == "__main__":
    raise SystemExit(main())
