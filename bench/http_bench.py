"""The generate-video POST, measured against yardsticks in the same run:

1. its SQL (pgbench, no Python — exactly the message the function sends, then the
   assignment call) vs the bare "reserve credits + ledger row + job insert" transaction,
   same clients, alternating rounds: bar >= 0.3;
2. the create's cost with 20,000 jobs queued vs an empty queue (one client, mean latency of
   its SQL): bar <= 1.2;
3. the POST over HTTP at saturation (wrk, 32 connections, functions-framework's gunicorn)
   vs pgbench of its own SQL: bar >= 0.5;
4. database transactions per POST during that run (``xact_commit`` delta; each is one
   round trip): bar <= 2 (the write, plus the assignment);
5. open-loop latency (requests sent on a fixed schedule, measured from when they were due,
   so a slow server cannot slow the load down) at 50 % and 75 % of the saturation rate:
   p99 bars 15 ms and 50 ms.

Usage: python bench/http_bench.py [--seconds 8] [--rounds 3] [--workers 2] [--threads 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

MODEL = "reference/text-to-video"
PARAMS = {"prompt": "bench", "duration": 1, "resolution": "480p"}
CREDITS = 10**12
# Each transaction acts for a random one of USERS users (jobs stay queued, and a user may
# have at most 100 running): both scripts draw them the same way.
USERS = 400
USER = "'00000000-0000-4000-8000-' || lpad(:u::text, 12, '0')"

# What generate-video sends for one POST (db.py: one simple-protocol message), then the
# assignment call routing makes; \; joins statements into one message, as psycopg does.
OWN_SQL = f"""
\\set u random(0, {USERS - 1})
\\set r random(1, 2000000000)
BEGIN \\; SELECT set_config('request.jwt.claims', json_build_object('sub', {USER}, 'role', 'authenticated')::text, true), set_config('role', 'service_role', true) \\; SELECT private.require_known_user() \\; SELECT service.job_create_request(json_build_object('principal', 'user:' || {USER}, 'scope', 'generate-video:POST', 'bucket', 'generate-video', 'limit', 100000000, 'key', 'k-' || :client_id || '-' || :r, 'hash', 'h')::jsonb, '{MODEL}', '{json.dumps(PARAMS)}'::jsonb, 0) -> 'data' ->> 'id' AS job_id \\; COMMIT
\\aset
BEGIN \\; SELECT set_config('request.jwt.claims', '{{"role": "service_role"}}', true), set_config('role', 'service_role', true) \\; SELECT service.job_assign(':job_id') \\; COMMIT
"""

BARE = f"""
\\set u random(0, {USERS - 1})
BEGIN;
WITH job AS (
  INSERT INTO public.jobs (user_id, model_id, job_type, params, cost, max_attempts, provider)
  VALUES (({USER})::uuid, '{MODEL}', 'text_to_video',
          '{{"duration": 1, "aspect_ratio": "16:9", "resolution": "480p"}}', 3, 3, 'reference')
  RETURNING id
), money AS (
  UPDATE public.profiles SET balance = balance - 3, reserved = reserved + 3
   WHERE id = ({USER})::uuid AND balance >= 3
  RETURNING balance, reserved
)
INSERT INTO public.credit_ledger
  (user_id, kind, amount, hold, balance_after, reserved_after, job_id, description)
SELECT ({USER})::uuid, 'reserve', -3, 3, money.balance, money.reserved, job.id, 'reserve'
  FROM job, money;
COMMIT;
"""

LUA = """
local tokens = {%(tokens)s}
local counter = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  math.randomseed(os.time() * 1000 + tid)
end
function request()
  counter = counter + 1
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = "Bearer " .. tokens[(counter %% #tokens) + 1]
  headers["Idempotency-Key"] = "bench-" .. tid .. "-" .. counter .. "-" .. math.random(1, 1000000000)
  return wrk.format("POST", nil, headers, '%(body)s')
end
"""


def verdict(ok: bool) -> str:
    """The word printed after a figure and its bar."""
    return "ok" if ok else "MISSED"


def pgbench(tool: str, dsn: str, script: Path, *, clients: int, seconds: int) -> dict[str, float]:
    """One pgbench run: tps and mean latency (ms)."""
    proc = subprocess.run(
        [tool, "-n", "-c", str(clients), "-j", "2", "-T", str(seconds), "-f", str(script), dsn],
        capture_output=True,
        text=True,
        timeout=seconds * 3 + 60,
    )
    tps = re.search(r"tps = ([\d.]+)", proc.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", proc.stdout)
    if proc.returncode not in (0, 2) or tps is None or latency is None:
        sys.exit(f"pgbench failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return {"tps": float(tps.group(1)), "latency_ms": float(latency.group(1))}


def prepare(dsn: str, users: int) -> None:
    """Users 0…users-1 with ample credits and no concurrent-job limit to speak of."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "insert into auth.users (id, aud, role, email)"
            " select ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid,"
            " 'authenticated', 'authenticated', 'bench' || g || '@example.com'"
            " from generate_series(0, %s - 1) g",
            [users],
        )
        # A customer tier with a daily cap no bench reaches: the cap is checked on every
        # create (private.spend_days), as for any user, but never refuses.
        conn.execute(
            "insert into private.tier_limits values ('bench', 0, 1000000000000000)"
            " on conflict do nothing"
        )
        conn.execute("update public.profiles set concurrent_job_limit = 100, tier = 'bench'")


def reset_state(dsn: str, queued: int = 0) -> None:
    """No jobs, history, ledger or keys; every user the same credits; ``queued`` jobs of the
    model waiting (another user's, so they do not count against anyone's limit)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "truncate public.job_events, public.credit_ledger, public.jobs, realtime.messages,"
            " private.idempotency_keys, private.rate_limits, private.spend_days cascade"  # purchases, usage rows
        )
        conn.execute("update public.profiles set balance = %s, reserved = 0", [CREDITS])
        if queued:
            conn.execute(
                "insert into public.jobs (user_id, model_id, job_type, params, cost, max_attempts,"
                " provider) select (select id from public.profiles order by id desc limit 1),"
                " %s, 'text_to_video', '{}', 1, 1, 'reference' from generate_series(1, %s)",
                [MODEL, queued],
            )
        conn.execute("vacuum analyze public.jobs, public.profiles, public.credit_ledger")


def commits(dsn: str) -> int:
    """Committed transactions of this database so far, after closing the other sessions
    (backends flush their counters when they end; the server's pool reconnects)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where datname = current_database() and pid <> pg_backend_pid()"
        )
        time.sleep(0.5)
        conn.execute("select pg_stat_clear_snapshot()")
        row = conn.execute(
            "select xact_commit from pg_stat_database where datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


class _Connection:
    """One keep-alive HTTP/1.1 connection speaking just what the load needs.

    Hand-written on asyncio streams because the load generator shares two cores with the
    server and Postgres: httpx costs ~10x the CPU per request, enough to fall behind the
    schedule and measure itself instead of the server.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def post(self, request: bytes) -> int:
        """Send one request; its status once the whole answer is read."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = re.search(rb"(?i)content-length: *(\d+)", head)
        await self.reader.readexactly(int(length.group(1)) if length else 0)
        return status


async def open_loop(url: str, tokens: list[str], rate: float, seconds: float) -> list[float]:
    """POST at ``rate`` per second on a fixed schedule; latencies (ms) from when each was due
    (a request waits for nobody: with no idle connection it opens another)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    body = json.dumps({"model": MODEL, **PARAMS}).encode()
    interval, count = 1.0 / rate, int(rate * seconds)
    idle: list[_Connection] = []
    latencies: list[float] = []
    start = time.perf_counter() + 0.5

    async def fresh() -> _Connection:
        return _Connection(*await asyncio.open_connection(parts.hostname, parts.port))

    async def one(i: int) -> None:
        due = start + i * interval
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        request = (
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Content-Type: application/json\r\n"
            f"Authorization: Bearer {tokens[i % len(tokens)]}\r\n"
            f"Idempotency-Key: open-{rate:.0f}-{i}-{time.time_ns()}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        conn = idle.pop() if idle else await fresh()
        try:
            status = await conn.post(request)
        except (asyncio.IncompleteReadError, ConnectionError):
            # gunicorn closes keep-alive connections idle for 2 s: send it on a new one.
            conn = await fresh()
            status = await conn.post(request)
        if status == 202:
            latencies.append((time.perf_counter() - due) * 1000)
        idle.append(conn)

    await asyncio.gather(*(one(i) for i in range(count)))
    for conn in idle:
        conn.writer.close()
    return latencies


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))] if ordered else float("nan")


def start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """``videogen serve`` on ``port``, answering."""
    from serverkit import wait_http

    proc = subprocess.Popen(
        [sys.executable, "-m", "videogen_dev", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_http(f"http://127.0.0.1:{port}/functions/v1/generate-video", timeout=30)
    return proc


def main() -> int:
    """Run every part and print each figure with its bar."""
    from serverkit import free_port
    from videogen_dev import localdb, migrations

    from videogen.kit.auth import issue_access_token

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--users", type=int, default=USERS)
    args = parser.parse_args()
    from lifecycle_bench import find_pgbench  # bench/ is on sys.path when run as a script

    tool = find_pgbench()
    admin = localdb.ensure_running()
    name = "videogen_bench_http"
    template = f"videogen_bench_tpl_{migrations.fingerprint()[:12]}"
    migrations.create_template(admin, template)
    migrations.drop_database(admin, name)
    dsn = migrations.clone_database(admin, template, name)
    prepare(dsn, max(args.users, USERS))
    figures: list[tuple[str, str, bool]] = []
    with tempfile.TemporaryDirectory() as tmp:
        own, bare = Path(tmp) / "own.sql", Path(tmp) / "bare.sql"
        own.write_text(OWN_SQL)
        bare.write_text(BARE)

        # 1. Its SQL vs the bare transaction ------------------------------------------------
        sql: dict[str, list[float]] = {"bare": [], "own": []}
        for round_no in range(args.rounds):
            order = ["bare", "own"] if round_no % 2 == 0 else ["own", "bare"]
            for which in order:
                reset_state(dsn)
                run = pgbench(
                    tool,
                    dsn,
                    bare if which == "bare" else own,
                    clients=args.clients,
                    seconds=args.seconds,
                )
                sql[which].append(run["tps"])
                print(f"  round {round_no + 1}  {which:<5} SQL {run['tps']:8.0f} tps")
        own_tps, bare_tps = statistics.median(sql["own"]), statistics.median(sql["bare"])
        ratio = own_tps / bare_tps
        figures.append(
            (
                f"its SQL vs bare reserve+ledger+insert (pgbench, {args.clients} clients)",
                f"{own_tps:.0f} vs {bare_tps:.0f} tps -> {ratio:.2f} (bar >= 0.30)",
                ratio >= 0.3,
            )
        )

        # 2. Flat in queue depth ------------------------------------------------------------
        depth: dict[int, list[float]] = {0: [], 20_000: []}
        for round_no in range(args.rounds):
            for queued in [0, 20_000] if round_no % 2 == 0 else [20_000, 0]:
                reset_state(dsn, queued)
                run = pgbench(tool, dsn, own, clients=1, seconds=max(3, args.seconds // 2))
                depth[queued].append(run["latency_ms"])
        empty, deep = statistics.median(depth[0]), statistics.median(depth[20_000])
        figures.append(
            (
                "create cost, 20,000 queued vs empty (1 client, its SQL)",
                f"{deep:.2f} vs {empty:.2f} ms -> {deep / empty:.2f} (bar <= 1.20)",
                deep / empty <= 1.2,
            )
        )

    # 3-5. Over HTTP -------------------------------------------------------------------------
    with psycopg.connect(dsn, autocommit=True) as conn:
        ids = [
            r[0]
            for r in conn.execute("select id::text from public.profiles order by id").fetchall()
        ]
    tokens = [issue_access_token(uid, expires_in=3600) for uid in ids[: args.users]]
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "RATE_LIMIT_PER_MINUTE": "100000000",
        "WORKERS": str(args.workers),
        "THREADS": str(args.threads),
        "LOG_LEVEL": "WARNING",
        "DB_POOL_MAX": str(args.threads),
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}/functions/v1/generate-video"
    server = start_server(env, port)
    try:
        if shutil.which("wrk") is None:
            print("wrk is not installed (apt-get install wrk): skipping the HTTP figures")
            return 0
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            body = json.dumps({"model": MODEL, **PARAMS})
            f.write(LUA % {"tokens": ",".join(f'"{t}"' for t in tokens), "body": body})
            script = f.name
        http: list[float] = []
        per_post: list[float] = []
        for _ in range(args.rounds):
            reset_state(dsn)
            before = commits(dsn)
            out = subprocess.run(
                ["wrk", "-t2", "-c32", f"-d{args.seconds}s", "-s", script, url],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            after = commits(dsn)
            match = re.search(r"(\d+) requests in", out)
            rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
            assert match is not None and rps is not None, out
            if "Non-2xx" in out:
                print("  warning: " + out.split("Non-2xx", 1)[1].splitlines()[0])
            http.append(float(rps.group(1)))
            per_post.append((after - before) / max(1, int(match.group(1))))
            print(f"  HTTP {http[-1]:8.0f} req/s, {per_post[-1]:.2f} transactions per POST")
        saturation = statistics.median(http)
        figures.append(
            (
                f"POST over HTTP vs its SQL (wrk -c32; WORKERS={args.workers} THREADS={args.threads})",
                f"{saturation:.0f} req/s vs {own_tps:.0f} tps -> {saturation / own_tps:.2f}"
                " (bar >= 0.50)",
                saturation / own_tps >= 0.5,
            )
        )
        trips = statistics.median(per_post)
        figures.append(
            (
                "database transactions (= round trips) per POST",
                f"{trips:.2f} (bar <= 2: the write, plus the assignment; the run's edges add"
                " a few hundredths)",
                trips <= 2.05,
            )
        )
        for share, bar in ((0.5, 15.0), (0.75, 50.0)):
            reset_state(dsn)
            commits(dsn)  # the server's pool reconnects during the warm-up, not the run
            asyncio.run(open_loop(url, tokens, saturation * share, 1.5))  # warm-up, discarded
            latencies = asyncio.run(open_loop(url, tokens, saturation * share, args.seconds))
            p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
            figures.append(
                (
                    f"open loop at {share:.0%} of saturation ({saturation * share:.0f} req/s)",
                    f"p50 {p50:.1f} ms, p99 {p99:.1f} ms (bar p99 <= {bar:.0f} ms)",
                    p99 <= bar,
                )
            )
    finally:
        server.terminate()
        server.wait(10)
        migrations.drop_database(admin, name)

    print()
    for what, figure, ok in figures:
        print(f"{what}\n    {figure}  {verdict(ok)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
