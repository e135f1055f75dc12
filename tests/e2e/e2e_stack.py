"""End-to-end helpers: a real ``videogen serve``, real ``videogen worker`` processes, real
Postgres, real HTTP. Each test gets its own database, server and workers.

Tests poll job state through an admin connection (no rate limits, no token expiry) and
read what a user sees through the functions.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row
from videogen_dev.users import ensure_user

from videogen.kit.auth import issue_access_token

T2V = "reference/text-to-video"
TERMINAL = {"completed", "failed", "canceled"}


@dataclass
class User:
    """A signed-in user with its starting credits claimed."""

    id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        """Authorization for the functions."""
        return {"Authorization": f"Bearer {self.token}"}


class WorkerProc:
    """One ``videogen worker`` subprocess."""

    def __init__(self, proc: subprocess.Popen[str], ready: dict[str, Any], log: Path) -> None:
        self.proc = proc
        self.name: str = ready["name"]
        self.worker_id: str = ready["worker_id"]
        self.url: str = ready["url"]
        self.log = log

    def health(self) -> httpx.Response:
        """GET /health."""
        return httpx.get(f"{self.url}/health", timeout=5)

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc.poll() is None

    def children(self) -> list[int]:
        """Pids of its child processes (ffmpeg while rendering)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                pids.append(int(stat.parent.name))
        return pids

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (drain), then SIGKILL if it does not exit in time; the exit code."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode


class Stack:
    """The server, its database and the workers of one test."""

    def __init__(self, server: Any, tmp: Path) -> None:
        self.server = server
        self.tmp = tmp
        self.workers: list[WorkerProc] = []
        self.http = httpx.Client(timeout=30)
        self.db = psycopg.connect(server.db_url, autocommit=True, row_factory=dict_row)

    # Database -----------------------------------------------------------------------------
    def reconnect(self) -> None:
        """A new admin connection (after the old one was cut)."""
        self.db.close()
        self.db = psycopg.connect(self.server.db_url, autocommit=True, row_factory=dict_row)

    def sql(self, query: str, *params: Any) -> list[dict[str, Any]]:
        """Run SQL as ``postgres`` (bypasses RLS); the rows."""
        cur = self.db.execute(query, params)  # type: ignore[call-overload]
        return cur.fetchall() if cur.description else []

    def job_row(self, job_id: str) -> dict[str, Any]:
        """The job as stored, as JSON (ids as strings)."""
        row: dict[str, Any] = self.sql(
            "select to_jsonb(j) as job from public.jobs j where id = %s", job_id
        )[0]["job"]
        return row

    def ledger(self, job_id: str) -> list[str]:
        """Ledger kinds of a job, in order."""
        rows = self.sql(
            "select kind from public.credit_ledger where job_id = %s order by id", job_id
        )
        return [r["kind"] for r in rows]

    def balance(self, user: User) -> dict[str, Any]:
        """Balance and reserve of a user."""
        return self.sql("select balance, reserved from public.profiles where id = %s", user.id)[0]

    def model(self, model_id: str = T2V, **values: Any) -> None:
        """Change a catalogue entry (lease_seconds, max_attempts, …)."""
        sets = ", ".join(f"{k} = %s" for k in values)
        self.sql(f"update public.models set {sets} where id = %s", *values.values(), model_id)

    # Users and jobs ----------------------------------------------------------------------
    def user(self, email: str = "ada@example.com") -> User:
        """Create a user, sign in, claim the starting credits."""
        user_id, _ = ensure_user(self.server.db_url, email)
        user = User(user_id, email, issue_access_token(user_id, email=email))
        resp = self.http.post(
            self.server.url("update-credits"),
            json={"action": "claim_initial_grant"},
            headers=user.headers,
        )
        assert resp.status_code < 300, resp.text
        return user

    def generate(self, user: User, **params: Any) -> dict[str, Any]:
        """POST generate-video; the created job."""
        body = {
            "model": T2V,
            "prompt": "A paper boat sails across a calm lake",
            "duration": 2,
            "aspect_ratio": "16:9",
            "resolution": "480p",
            **params,
        }
        resp = self.http.post(self.server.url("generate-video"), json=body, headers=user.headers)
        assert resp.status_code == 202, resp.text
        job: dict[str, Any] = resp.json()["data"]
        return job

    def get_job(self, user: User, job_id: str) -> dict[str, Any]:
        """GET generate-video?id= as the user: the job with its events."""
        resp = self.http.get(
            self.server.url("generate-video"), params={"id": job_id}, headers=user.headers
        )
        assert resp.status_code == 200, resp.text
        job: dict[str, Any] = resp.json()["data"]
        return job

    def sweep(self) -> dict[str, Any]:
        """What the scheduler does: POST health-check-workers with the cron secret."""
        resp = self.http.post(
            self.server.url("health-check-workers"),
            json={"action": "sweep"},
            headers={"x-cron-secret": "local-cron-secret"},
        )
        assert resp.status_code == 200, resp.text
        summary: dict[str, Any] = resp.json()["data"]
        return summary

    def wait_for(
        self,
        job_id: str,
        done: Callable[[dict[str, Any]], bool],
        timeout: float = 180.0,
        sweep_every: float | None = None,
    ) -> dict[str, Any]:
        """Poll the job row until ``done(row)``; optionally run the sweep meanwhile.

        ``timeout`` is only a safety net for a state that never comes: generous, so a busy
        machine is never mistaken for a broken one.
        """
        deadline = time.monotonic() + timeout
        next_sweep = time.monotonic() + (sweep_every or 0)
        while True:
            row = self.job_row(job_id)
            if done(row):
                return row
            if time.monotonic() > deadline:
                raise AssertionError(f"job never got there; last state: {row}")
            if sweep_every is not None and time.monotonic() >= next_sweep:
                self.sweep()
                next_sweep = time.monotonic() + sweep_every
            time.sleep(0.1)

    def wait_status(self, job_id: str, *statuses: str, **kw: Any) -> dict[str, Any]:
        """Poll until the job has one of ``statuses``."""
        return self.wait_for(job_id, lambda row: row["status"] in statuses, **kw)

    # Workers -------------------------------------------------------------------------------
    def start_worker(self, name: str, *flags: str, models: str = T2V) -> WorkerProc:
        """Start ``videogen worker`` and wait for its ready line."""
        log = self.tmp / f"{name}.log"
        argv = [
            sys.executable, "-m", "videogen_dev", "-v", "worker", "--name", name, "--port", "0",
            "--models", models, "--heartbeat-interval", "1", "--poll-interval", "0.2",
            "--drain-timeout", "5", *flags,
        ]  # fmt: skip
        with log.open("w") as err:
            proc = subprocess.Popen(
                argv, env=self.server.env, stdout=subprocess.PIPE, stderr=err, text=True
            )
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        line = ""
        while not line:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"worker {name} did not start:\n{log.read_text()}")
            if select.select([proc.stdout], [], [], 0.2)[0]:
                line = proc.stdout.readline()
        worker = WorkerProc(proc, json.loads(line), log)
        self.workers.append(worker)
        return worker

    def close(self) -> None:
        """Stop the workers and close connections."""
        for worker in self.workers:
            worker.stop(timeout=10)
        self.http.close()
        self.db.close()


def storage_file(stack: Stack, bucket: str, path: str) -> Path:
    """Where local storage keeps an object."""
    return Path(stack.server.env["STORAGE_ROOT"]) / bucket / path


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists (and is not a zombie we reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")
