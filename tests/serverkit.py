"""Real servers for tests and benchmarks: free ports, a `videogen serve` subprocess on a
given database, and the environment it runs with. Imported by tests/conftest.py (fixtures)
and bench/http_bench.py; a plain module so nothing depends on which conftest loaded last."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import tenacity


def free_port() -> int:
    """A TCP port nobody listens on right now."""

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    """Wait until something answers HTTP at ``url``."""

    def answers() -> bool:
        try:
            httpx.get(url, timeout=1.0)
        except httpx.TransportError:
            return False
        return True

    wait_until(answers, timeout, f"nothing answered at {url}")


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Until ``check()`` says the state a test caused has come (tenacity asks every 0.1 s);
    ``timeout`` is only a safety net for a state that never comes: AssertionError(what)."""
    poll = tenacity.Retrying(
        retry=tenacity.retry_if_result(lambda came: not came),
        wait=tenacity.wait_fixed(0.1),
        stop=tenacity.stop_after_delay(timeout),
        retry_error_callback=lambda _state: False,
    )
    if not poll(check):
        raise AssertionError(what)


class LiveServer:
    """A ``videogen serve`` subprocess and the database it uses."""

    def __init__(
        self, db_url: str, port: int, env: dict[str, str], log_path: Path | None = None
    ) -> None:
        self.db_url = db_url
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.functions = f"{self.base}/functions/v1"
        self.env = env
        self.log_path = log_path
        self.pid: int | None = None  # the gunicorn master (its workers are its children)

    def url(self, name: str) -> str:
        """The URL of one function."""
        return f"{self.functions}/{name}"

    def logs(self) -> str:
        """What the server wrote to stderr so far (its JSON log lines)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")


def server_env(db_url: str, port: int, tmp_path: object, **extra: str) -> dict[str, str]:
    """Environment for a server or worker process pointed at a test database."""

    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": db_url,
            "VIDEOGEN_ENV": "test",
            "SUPABASE_URL": f"http://127.0.0.1:{port}",
            "FUNCTIONS_URL": f"http://127.0.0.1:{port}/functions/v1",
            "STORAGE_ROOT": str(tmp_path),
            # Functions and workers keep objects through the server's own Storage API, so
            # every object has its storage.objects row (the API keeps bytes in STORAGE_ROOT).
            "STORAGE_BACKEND": "supabase",
            "LOG_LEVEL": "WARNING",
            "WORKERS": "1",
            "THREADS": "8",
            # A render in the request is stopped at this deadline and goes on as a job: on a
            # busy machine a short render can pass the production 20 s, and which answer a
            # test gets (200 rendered, 202 queued) must not depend on the machine's speed.
            # tests/media/test_render_bounds.py sets its own to test the deadline itself.
            "SYNC_RENDER_DEADLINE_SECONDS": "600",
        }
    )
    env.update(extra)
    return env


@contextmanager
def running_server(db_url: str, workdir: Path, **extra_env: str) -> Iterator[LiveServer]:
    """``videogen serve`` on a free port against ``db_url``; stopped on exit.

    ``workdir`` holds local storage and ``server.log`` (stderr: a file, not a pipe, so a
    chatty server never blocks on a full pipe); ``extra_env`` overrides settings.
    """

    port = free_port()
    storage = workdir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    env = server_env(db_url, port, storage, **extra_env)
    log_path = workdir / "server.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "videogen_dev", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    server = LiveServer(db_url, port, env, log_path)
    server.pid = proc.pid
    try:
        wait_http(server.url("queue-job"))
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
