"""`videogen logs`: one line per event over the stack's log files, heartbeats summed up,
the doubled lines of older dev servers shown once, and ``tail -f`` following."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from serverkit import wait_until

T0 = 1_796_420_000.0  # a fixed moment: the lines' times are data, not the clock


def _request(message: str, at: float, **fields: object) -> str:
    record = {
        "severity": "INFO",
        "message": message,
        "logger": "videogen.kit.endpoint",
        "time": at,
        "request_id": "r",
        **fields,
    }
    return json.dumps(record)


def _beat(at: float, worker: str = "local-worker-1", status: int = 200) -> str:
    return _request(
        f"POST health-check-workers {status}",
        at,
        function="health-check-workers",
        method="POST",
        action="heartbeat",
        worker_id="5e1c0b7e-0000-4000-8000-000000000001",
        worker=worker,
        status=status,
        duration_ms=1.5,
    )


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "VIDEOGEN_HOME": str(home)}


def _log(home: Path, service: str) -> Path:
    path = home / "run" / f"{service}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_logs_show_each_event_once_and_sum_up_heartbeats(tmp_path: Path) -> None:
    lines = [
        # An older dev server wrote each record twice: plain, then JSON.
        "INFO videogen.kit.endpoint: GET queue-job 401",
        _request("GET queue-job 401", T0, status=401, error_code="UNAUTHORIZED", duration_ms=0.8),
        *[_beat(T0 + 1 + i) for i in range(12)],
        _beat(T0 + 13, status=401),  # a failing heartbeat is news
        _request("POST generate-video 201", T0 + 14, status=201, duration_ms=42.0),
        *[_beat(T0 + 70 + i) for i in range(3)],  # the next window
        "WARNING videogen_dev.realtime_replication: realtime feed: gone; reconnecting",
    ]
    _log(tmp_path, "functions").write_text("\n".join(lines) + "\n")

    done = subprocess.run(
        [sys.executable, "-m", "videogen_dev", "logs", "functions", "--no-follow", "-n", "50"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert len([line for line in out if "GET queue-job 401" in line]) == 1, out
    assert any("GET queue-job 401 (0.8 ms) UNAUTHORIZED" in line for line in out), out
    assert not any("INFO videogen.kit.endpoint:" in line for line in out), out
    assert any("12 heartbeats from local-worker-1 in the last" in line for line in out), out
    assert any("3 heartbeats from local-worker-1" in line for line in out), out
    assert any("POST health-check-workers 401" in line for line in out), out
    assert any("POST generate-video 201 (42.0 ms)" in line for line in out), out
    # The window still open when the file ends is summed up last.
    assert out[-2].endswith("realtime feed: gone; reconnecting"), out
    assert "3 heartbeats from local-worker-1 in the last 2 s" in out[-1], out
    assert all(line.startswith("functions ") for line in out), out
    # One line per event: 1 request + 1 summary + 1 failed beat + 1 request + 1 summary + 1
    assert len(out) == 6, out

    last_two = subprocess.run(
        [sys.executable, "-m", "videogen_dev", "logs", "functions", "--no-follow", "-n", "2"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert last_two.stdout.splitlines() == out[-2:]


def test_logs_follow_what_is_appended(tmp_path: Path) -> None:
    path = _log(tmp_path, "functions")
    path.write_text(_request("GET queue-job 200", T0, status=200) + "\n")
    errors = (tmp_path / "stderr").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "videogen_dev", "logs", "functions"],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(iter(proc.stdout.readline, "")))  # type: ignore[union-attr]
    reader.start()
    try:
        wait_until(lambda: any("GET queue-job 200" in s for s in seen), 60, f"no tail: {seen}")
        with path.open("a") as log:
            log.write("".join(_beat(T0 + i) + "\n" for i in range(5)))
            log.write(_request("POST update-credits 200", T0 + 6, status=200) + "\n")
            log.write('{"severity": "ERROR", "message": "half a ')  # completed below
        wait_until(
            lambda: any("POST update-credits 200" in s for s in seen), 60, f"not followed: {seen}"
        )
        assert not any("half a" in s for s in seen), seen  # an incomplete line waits
        with path.open("a") as log:
            log.write('line", "time": 1796420010}\n')
        wait_until(lambda: any("half a line" in s for s in seen), 60, f"not completed: {seen}")
        assert not any("POST health-check-workers" in s for s in seen), seen  # summed up later
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        reader.join(timeout=30)
        proc.stdout.close()  # type: ignore[union-attr]
        errors.close()
