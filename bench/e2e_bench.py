"""End-to-end jobs/s: generate-video POST → push to a worker → signed callbacks → completed.

Two reference workers in ``--no-render`` mode (each capacity 4) behind the real dev
server and database; N jobs are submitted by 8 concurrent clients (one user each), and
the clock stops when the last one is completed. The share of time in each hop comes from
the job_events timestamps the database wrote:

  request  → created      the POST until the job row exists (auth, idempotency, reserve)
  created  → dispatched   routing: worker pick + push (or waiting for a free slot)
  dispatched → processing the worker accepting the push and calling back `started`
  processing → completed  the worker's (no-)render plus progress and completed callbacks

Usage: python bench/e2e_bench.py [--jobs 200] [--clients 8]
"""

from __future__ import annotations

import argparse
import json
import select
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

MODEL = "reference/text-to-video"


def start_worker(name: str, env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    """A no-render reference worker; returns once it printed its ready line."""
    argv = [
        sys.executable,
        "-m",
        "videogen_dev",
        "worker",
        "--name",
        name,
        "--port",
        "0",
        "--models",
        MODEL,
        "--capacity",
        "4",
        "--no-render",
        "--heartbeat-interval",
        "2",
    ]
    with log.open("w") as err:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if select.select([proc.stdout], [], [], 0.2)[0]:
            json.loads(proc.stdout.readline())
            return proc
    proc.kill()
    raise RuntimeError(f"worker {name} did not start: {log.read_text()}")


def main() -> int:
    """Run the benchmark and print jobs/s and the time share of each hop."""
    from serverkit import running_server
    from videogen_dev import localdb, migrations

    from videogen.kit.auth import issue_access_token

    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()

    admin_dsn = localdb.ensure_running()
    template = f"videogen_bench_tpl_{migrations.fingerprint()[:12]}"
    migrations.create_template(admin_dsn, template)
    name = f"videogen_bench_e2e_{uuid.uuid4().hex[:8]}"
    dsn = migrations.clone_database(admin_dsn, template, name)
    workers: list[subprocess.Popen[str]] = []
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("update public.models set lease_seconds = 60 where id = %s", [MODEL])
            users = [
                r[0]
                for r in conn.execute(
                    "insert into auth.users (id, email) select gen_random_uuid(), 'e2e' || g || '@x.io' "
                    "from generate_series(1, %s) g returning id::text",
                    [args.clients],
                ).fetchall()
            ]
            # A customer tier with a daily cap no bench reaches: the cap is checked on every
            # create (private.spend_days), as for any user, but never refuses.
            conn.execute(
                "insert into private.tier_limits values ('bench', 0, 1000000000000000)"
                " on conflict do nothing"
            )
            conn.execute("update public.profiles set concurrent_job_limit = 100, tier = 'bench'")
            for uid in users:
                conn.execute(
                    "select service.credits_grant(%s::uuid, 1000000, %s, 'grant', 'bench')",
                    [uid, f"e2e-{uid}"],
                )
        tokens = [issue_access_token(uid) for uid in users]
        with (
            tempfile.TemporaryDirectory() as tmp,
            running_server(
                dsn, Path(tmp), RATE_LIMIT_PER_MINUTE="100000000", WORKERS="2", THREADS="8"
            ) as server,
        ):
            for i in (1, 2):
                workers.append(start_worker(f"bench-{i}", server.env, Path(tmp) / f"w{i}.log"))
            url = server.url("generate-video")
            per_client = args.jobs // args.clients
            posted: dict[str, float] = {}

            def client(token: str) -> None:
                with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
                    for _ in range(per_client):
                        sent = time.time()
                        resp = http.post(
                            url,
                            headers={"Idempotency-Key": str(uuid.uuid4())},
                            json={
                                "model": MODEL,
                                "prompt": "bench",
                                "duration": 1,
                                "resolution": "480p",
                            },
                        )
                        resp.raise_for_status()
                        posted[resp.json()["data"]["id"]] = sent

            started = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(client, tokens))
            total = per_client * args.clients
            with psycopg.connect(dsn, autocommit=True) as conn:
                while True:
                    done = conn.execute(
                        "select count(*) from public.jobs where status = 'completed'"
                    ).fetchone()[0]
                    if done >= total or time.perf_counter() - started > args.timeout:
                        break
                    time.sleep(0.05)
                elapsed = time.perf_counter() - started
                status = dict(
                    conn.execute(
                        "select status::text, count(*) from public.jobs group by 1"
                    ).fetchall()
                )
                if done < total:
                    print(
                        "unfinished:",
                        status,
                        conn.execute(
                            "select name, status::text, consecutive_failures, metadata->'last_health'"
                            " from public.workers"
                        ).fetchall(),
                    )
                    print(Path(tmp, "w1.log").read_text()[-3000:])
                rows = conn.execute(
                    "select job_id::text, event, extract(epoch from created_at) from public.job_events"
                    " where event in ('created', 'dispatched', 'processing', 'completed')"
                ).fetchall()
    finally:
        for w in workers:
            w.terminate()
            w.wait(15)
        migrations.drop_database(admin_dsn, name)

    times: dict[str, dict[str, float]] = {}
    for job_id, event, at in rows:
        times.setdefault(job_id, {})[event] = float(at)
    hops = {
        "request → created": [],
        "created → dispatched": [],
        "dispatched → processing": [],
        "processing → completed": [],
    }
    for job_id, t in times.items():
        if len(t) < 4 or job_id not in posted:
            continue
        hops["request → created"].append(t["created"] - posted[job_id])
        hops["created → dispatched"].append(t["dispatched"] - t["created"])
        hops["dispatched → processing"].append(t["processing"] - t["dispatched"])
        hops["processing → completed"].append(t["completed"] - t["processing"])
    whole = sum(statistics.mean(v) for v in hops.values())
    print(
        f"{done}/{total} jobs completed in {elapsed:.1f} s -> {done / elapsed:.1f} jobs/s "
        f"(2 no-render workers x capacity 4, {args.clients} clients)"
    )
    for hop, values in hops.items():
        mean = statistics.mean(values)
        print(
            f"  {hop:<24} mean {mean * 1000:7.1f} ms  p95 "
            f"{sorted(values)[int(len(values) * 0.95) - 1] * 1000:7.1f} ms  share {mean / whole:5.1%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
