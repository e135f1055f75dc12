"""generate-video over HTTP vs a trivial function served the same way, in one run.

Both run under functions-framework's gunicorn (gthread) with the same WORKERS/THREADS;
wrk drives 32 connections at each in turn (alternating rounds). The generate-video POST
does the whole path: JWT check, rate limit, Idempotency-Key (a fresh key per request),
reserve + queue in one transaction, stored response, routing attempt. Users get ample
credits and are rotated so the per-user concurrent-job limit never binds.
Usage: python bench/http_bench.py [--seconds 8] [--rounds 2] [--workers 2] [--threads 8]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

LUA = """
local tokens = {%(tokens)s}
local counter = 0
local threads = 0
-- setup() runs in the main state; thread:set makes `tid` a global of each thread's state.
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  math.randomseed(os.time() * 1000 + tid)
end
function request()
  counter = counter + 1
  local token = tokens[(counter %% #tokens) + 1]
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = "Bearer " .. token
  headers["Idempotency-Key"] = "bench-" .. tid .. "-" .. counter .. "-" .. math.random(1, 1000000000)
  return wrk.format("POST", nil, headers, '{"model":"reference/text-to-video","prompt":"bench","duration":1,"resolution":"480p"}')
end
"""


def parse_wrk(out: str) -> tuple[float, float]:
    """Requests/s and p99 latency (ms) from `wrk --latency` output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert m is not None, out
    value, unit = float(m.group(1)), m.group(2)
    p99 = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        print(f"    warning: {non2xx.group(1)} non-2xx responses")
    return rps, p99


def start(argv: list[str], env: dict[str, str], url: str) -> subprocess.Popen[bytes]:
    """Start a server process and wait until it answers."""
    from serverkit import wait_http

    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(url, timeout=30)
    except httpx.TransportError:
        proc.kill()
        raise
    return proc


def main() -> int:
    """Run the comparison and print requests/s, p99 and the ratio."""
    from serverkit import free_port
    from videogen_dev import localdb, migrations

    from videogen.auth import issue_access_token

    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--users", type=int, default=300)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk); skipping the HTTP benchmark")
        return 0

    admin_dsn = localdb.ensure_running()
    template = f"videogen_bench_tpl_{migrations.fingerprint()[:12]}"
    migrations.create_template(admin_dsn, template)
    migrations.drop_database(admin_dsn, "videogen_bench_http")
    dsn = migrations.clone_database(admin_dsn, template, "videogen_bench_http")
    tokens = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "insert into auth.users (id, email) select gen_random_uuid(), 'bench' || g || '@x.io' "
            "from generate_series(1, %s) g returning id::text",
            [args.users],
        ).fetchall()
        conn.execute("update public.profiles set concurrent_job_limit = 100")
        for (uid,) in rows:
            conn.execute(
                "select public.grant_credits(%s::uuid, 1000000, %s, 'grant', 'bench')",
                [uid, f"bench-{uid}"],
            )
            tokens.append(issue_access_token(uid, expires_in=3600))

    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "RATE_LIMIT_PER_MINUTE": "100000000",
        "WORKERS": str(args.workers),
        "THREADS": str(args.threads),
        "LOG_LEVEL": "WARNING",
        "DB_POOL_MAX": str(args.threads),
    }
    gv_port, tr_port = free_port(), free_port()
    gv = start(
        [sys.executable, "-m", "videogen_dev", "serve", "--port", str(gv_port)],
        env,
        f"http://127.0.0.1:{gv_port}/functions/v1/generate-video",
    )
    trivial_launcher = (
        "import sys; from functions_framework import create_app;"
        "from functions_framework._http.gunicorn import GunicornApplication;"
        f"GunicornApplication(create_app('trivial', '{ROOT}/bench/trivial/main.py'),"
        " '127.0.0.1', int(sys.argv[1]), False).run()"
    )
    tr = start(
        [sys.executable, "-c", trivial_launcher, str(tr_port)], env, f"http://127.0.0.1:{tr_port}/"
    )
    results: dict[str, list[tuple[float, float]]] = {"trivial": [], "generate-video": []}
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write(LUA % {"tokens": ",".join(f'"{t}"' for t in tokens)})
            script = f.name
        targets = {
            "trivial": f"http://127.0.0.1:{tr_port}/",
            "generate-video": f"http://127.0.0.1:{gv_port}/functions/v1/generate-video",
        }
        for _ in range(args.rounds):
            for name, url in targets.items():
                out = subprocess.run(
                    ["wrk", "-t2", "-c32", f"-d{args.seconds}s", "--latency", "-s", script, url],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                results[name].append(parse_wrk(out))
                print(
                    f"  {name:<15} {results[name][-1][0]:8.0f} req/s  p99 {results[name][-1][1]:6.1f} ms"
                )
    finally:
        for p in (gv, tr):
            p.terminate()
            p.wait(10)
        migrations.drop_database(admin_dsn, "videogen_bench_http")
    best = {k: max(r for r, _ in v) for k, v in results.items()}
    p99 = {k: min(p for _, p in v) for k, v in results.items()}
    ratio = best["generate-video"] / best["trivial"]
    print(
        f"generate-video {best['generate-video']:.0f} req/s vs trivial {best['trivial']:.0f} req/s"
        f" -> ratio {ratio:.2f} (bar 0.50); p99 {p99['generate-video']:.1f} ms (bar 25 ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
