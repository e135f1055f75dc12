"""`videogen logs` over what a real dev server wrote while a real pull worker heartbeated
and claimed: each call is one JSON line naming its action and worker, and the command sums
them up per worker instead of printing each."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from e2e_stack import Stack
from serverkit import LiveServer, wait_until


def _calls(server: LiveServer, action: str) -> list[dict[str, object]]:
    found = []
    for line in server.logs().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("action") == action:
                found.append(record)
    return found


def test_logs_sum_up_a_real_workers_heartbeats(
    start_server: Callable[..., AbstractContextManager[LiveServer]], tmp_path: Path
) -> None:
    with start_server(LOG_LEVEL="INFO") as server:
        stack = Stack(server, tmp_path)
        try:
            # A pull worker: heartbeats every 1 s, claims every 0.2 s.
            worker = stack.start_worker("logs-w1", "--mode", "pull")
            wait_until(
                lambda: len(_calls(server, "heartbeat")) >= 3,
                60,
                f"no heartbeats logged: {server.logs()[-2000:]}",
            )
        finally:
            stack.close()
        beats = _calls(server, "heartbeat")
        assert {(b["worker"], b["worker_id"], b["status"]) for b in beats} == {
            ("logs-w1", worker.worker_id, 200)
        }
        assert {c["worker_id"] for c in _calls(server, "claim")} == {worker.worker_id}

        home = tmp_path / "home"
        (home / "run").mkdir(parents=True)
        shutil.copyfile(server.log_path or "", home / "run" / "functions.log")
        done = subprocess.run(
            [sys.executable, "-m", "videogen_dev", "logs", "functions", "--no-follow", "-n", "500"],
            env={**os.environ, "VIDEOGEN_HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    summaries = [line for line in out if "from logs-w1 in the last" in line]
    assert summaries, out
    counted = sum(int(s.split("heartbeat")[0].split()[-1]) for s in summaries if "heartbeat" in s)
    assert counted == len(beats), (summaries, len(beats))
    claims = [s for s in summaries if " claim" in s]
    assert claims, summaries  # claims summed up too
    assert not any("action=heartbeat" in line or "action=claim" in line for line in out), out
