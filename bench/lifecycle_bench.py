"""Job lifecycle in SQL: our procedures vs the same work as bare SQL, both in pgbench.

One lifecycle = three transactions, as a user and a pull worker make them:

* procedures: ``create_job`` for the user (service_role with the user's claims, as the
  functions call it), then
  ``job_claim`` and ``job_complete`` as service_role;
* bare SQL:   ``INSERT`` the job + ``UPDATE`` the balance + the reserve ledger row, an
  ``UPDATE … FOR UPDATE SKIP LOCKED`` claim, an ``UPDATE`` to completed + the capture
  (balance and ledger row) — the same rows written on the same tables, so the schema's
  triggers (state machine, job events, broadcasts) fire for both. What the bare SQL
  leaves out is exactly what the procedures add: validation, pricing, limits, locks,
  attempt tokens and role/claims checks.

Both run in pgbench (``-n -c 16 -j 2 -T 10``, simple protocol as behind Supavisor) in the
same run, alternating, each on freshly emptied tables. Throughput is completed jobs per
second; the bar (DESIGN §7) is procedures ≥ 70 % of bare SQL. The scratch database
``videogen_bench_<pid>`` is built with videogen_dev.migrations and dropped at the end.

    python bench/lifecycle_bench.py [--clients 16] [--threads 2] [--seconds 10] [--rounds 4]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
from videogen_dev import localdb, migrations

MODEL = "reference/text-to-video"
COST = 11  # the model's price for the default params (5 s, 720p)
CREDITS = 10**12
TARGET = 0.8

# Client n acts as user 00000000-0000-4000-8000-<n> with its own pull worker …-9000-<n>.
USER = "'00000000-0000-4000-8000-' || lpad(:client_id::text, 12, '0')"
WORKER = "'00000000-0000-4000-9000-' || lpad(:client_id::text, 12, '0')"

# Each transaction goes to the server as one message on both sides (statements joined with
# \\;), as videogen's db layer sends a call: the ratio compares the work, not round trips.
PROCEDURES = f"""
BEGIN \\;
SELECT set_config('request.jwt.claims',
                  json_build_object('sub', {USER}, 'role', 'authenticated')::text, true),
       set_config('role', 'service_role', true) \\;
SELECT private.require_known_user() \\;
SELECT service.job_create('{MODEL}', '{{}}') \\;
COMMIT;
BEGIN \\;
SELECT set_config('request.jwt.claims', '{{"role": "service_role"}}', true),
       set_config('role', 'service_role', true) \\;
SELECT c ->> 'id' AS job_id, c ->> 'attempt' AS attempt, (c IS NOT NULL)::int AS claimed
  FROM (SELECT service.worker_claim(({WORKER})::uuid, 1) -> 0 AS c) s \\;
COMMIT
\\aset
\\if :claimed
BEGIN \\;
SELECT set_config('request.jwt.claims', '{{"role": "service_role"}}', true),
       set_config('role', 'service_role', true) \\;
SELECT service.job_complete(':job_id', :attempt, '{{}}') \\;
COMMIT;
\\endif
"""

BARE = f"""
BEGIN \\;
WITH job AS (
  INSERT INTO public.jobs (user_id, model_id, job_type, params, cost, max_attempts, provider)
  VALUES (({USER})::uuid, '{MODEL}', 'text_to_video',
          '{{"duration": 5, "aspect_ratio": "16:9", "resolution": "720p"}}', {COST}, 3,
          'reference')
  RETURNING id
), money AS (
  UPDATE public.profiles SET balance = balance - {COST}, reserved = reserved + {COST}
   WHERE id = ({USER})::uuid AND balance >= {COST}
  RETURNING balance, reserved
)
INSERT INTO public.credit_ledger
  (user_id, kind, amount, hold, balance_after, reserved_after, job_id, description)
SELECT ({USER})::uuid, 'reserve', -{COST}, {COST}, money.balance, money.reserved, job.id, 'reserve'
  FROM job, money \\;
COMMIT;
WITH claimed AS (
  UPDATE public.jobs
     SET status = 'dispatched', worker_id = ({WORKER})::uuid, attempt = attempt + 1,
         dispatched_at = now(), lease_expires_at = now() + interval '60 seconds'
   WHERE id = (SELECT id FROM public.jobs
                WHERE status = 'queued' AND run_after <= now() AND model_id = '{MODEL}'
                ORDER BY priority DESC, created_at
                LIMIT 1 FOR UPDATE SKIP LOCKED)
  RETURNING id
)
SELECT (SELECT id FROM claimed) AS job_id, (SELECT count(*) FROM claimed) AS claimed \\gset
\\if :claimed
BEGIN \\;
UPDATE public.jobs
   SET status = 'completed', progress = 100, credits_used = {COST}, output = '{{}}',
       finished_at = now(), lease_expires_at = NULL
 WHERE id = ':job_id' \\;
WITH money AS (
  UPDATE public.profiles SET reserved = reserved - {COST}
   WHERE id = ({USER})::uuid
  RETURNING balance, reserved
)
INSERT INTO public.credit_ledger
  (user_id, kind, amount, hold, balance_after, reserved_after, job_id, description)
SELECT ({USER})::uuid, 'capture', 0, -{COST}, money.balance, money.reserved, ':job_id', 'capture'
  FROM money \\;
COMMIT;
\\endif
"""


def prepare(dsn: str, clients: int) -> None:
    """One user (job limit 100) and one pull worker per client."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for n in range(clients):
            uid = f"00000000-0000-4000-8000-{n:012d}"
            conn.execute(
                "insert into auth.users (id, aud, role, email, raw_user_meta_data, created_at)"
                " values (%s, 'authenticated', 'authenticated', %s, '{}', now())",
                (uid, f"bench{n}@example.com"),
            )
            conn.execute(
                "insert into public.workers (id, name, url, models, capacity, mode)"
                " values (%s, %s, 'http://bench.local/jobs', %s, 1000, 'pull')",
                (f"00000000-0000-4000-9000-{n:012d}", f"bench-{n}", [MODEL]),
            )
        # A customer tier with a daily cap no bench reaches: the cap is checked on every
        # create (private.spend_days), as for any user, but never refuses.
        conn.execute(
            "insert into private.tier_limits values ('bench', 0, 1000000000000000)"
            " on conflict do nothing"
        )
        conn.execute("update public.profiles set concurrent_job_limit = 100, tier = 'bench'")


def reset_state(dsn: str) -> None:
    """Empty jobs, history and ledger; every bench user gets the same credits again."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            # cascade: the rows that refer to them (purchases, usage) go too
            "truncate public.job_events, public.credit_ledger, public.jobs, realtime.messages,"
            " private.spend_days cascade"
        )
        conn.execute("update public.profiles set balance = 0, reserved = 0")
        with conn.transaction():
            conn.execute("set local role service_role")
            conn.execute(
                "select service.credits_grant(id, %s, 'bench-' || gen_random_uuid())"
                " from public.profiles",
                (CREDITS,),
            )
        conn.execute("vacuum analyze public.jobs, public.profiles, public.credit_ledger")


def completed_jobs(dsn: str) -> int:
    """How many jobs reached completed."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("select count(*) from public.jobs where status = 'completed'").fetchone()
    return int(row[0]) if row else 0


def run_pgbench(
    pgbench: str, dsn: str, script: Path, *, clients: int, threads: int, seconds: int
) -> tuple[float, int]:
    """Run one pgbench; (jobs completed per second, failed or aborted clients)."""
    proc = subprocess.run(
        [
            pgbench,
            "-n",
            "-c",
            str(clients),
            "-j",
            str(threads),
            "-T",
            str(seconds),
            "-f",
            str(script),
            dsn,
        ],
        capture_output=True,
        text=True,
        timeout=seconds * 3 + 60,
    )
    aborted = len(re.findall(r"aborted in command", proc.stderr))
    if proc.returncode not in (0, 2) or "tps =" not in proc.stdout:
        sys.exit(f"pgbench failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return completed_jobs(dsn) / seconds, aborted


def find_pgbench() -> str:
    """pgbench from PATH, else next to the server binaries."""
    found = shutil.which("pgbench")
    if found:
        return found
    candidate = localdb.find_bindir() / "pgbench"
    if candidate.is_file():
        return str(candidate)
    sys.exit("pgbench not found: install postgresql-contrib (Debian: postgresql-client)")


def main(argv: list[str] | None = None) -> int:
    """Build the scratch database, alternate both paths, print jobs/s and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=4, help="runs of each path, alternating")
    args = parser.parse_args(argv)

    pgbench = find_pgbench()
    admin = localdb.ensure_running()
    name = f"videogen_bench_{os.getpid()}"
    dsn = migrations.database_dsn(admin, name)
    results: dict[str, list[float]] = {"bare SQL": [], "procedures": []}
    with tempfile.TemporaryDirectory() as tmp:
        scripts = {"bare SQL": Path(tmp) / "bare.sql", "procedures": Path(tmp) / "procedures.sql"}
        scripts["bare SQL"].write_text(BARE)
        scripts["procedures"].write_text(PROCEDURES)
        try:
            migrations.reset(dsn)
            migrations.apply_all(dsn)
            prepare(dsn, args.clients)
            print(
                f"job lifecycle, pgbench -c {args.clients} -j {args.threads} -T {args.seconds},"
                f" {args.rounds} round(s) each, alternating"
            )
            for round_no in range(args.rounds):
                order = list(results) if round_no % 2 == 0 else list(reversed(results))
                for path in order:
                    reset_state(dsn)
                    rate, aborted = run_pgbench(
                        pgbench,
                        dsn,
                        scripts[path],
                        clients=args.clients,
                        threads=args.threads,
                        seconds=args.seconds,
                    )
                    results[path].append(rate)
                    note = f"  ({aborted} clients aborted)" if aborted else ""
                    print(f"  round {round_no + 1}  {path:<11} {rate:9.1f} jobs/s{note}")
        finally:
            migrations.drop_database(admin, name)

    bare = statistics.median(results["bare SQL"])
    procedures = statistics.median(results["procedures"])
    ratio = procedures / bare if bare else 0.0
    print(f"bare SQL    {bare:9.1f} jobs/s (median)")
    print(f"procedures  {procedures:9.1f} jobs/s (median)")
    verdict = "ok" if ratio >= TARGET else "BELOW TARGET"
    print(f"ratio       {ratio:9.2f}  (target >= {TARGET}: {verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
