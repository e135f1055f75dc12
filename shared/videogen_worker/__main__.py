"""``python -m videogen_worker`` (or ``videogen worker``): run the reference GPU worker until
SIGTERM, then drain. Prints one JSON line when ready and one when stopped."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from videogen_worker.job import WorkerConfig
from videogen_worker.worker import ReferenceWorker


def run(config: WorkerConfig) -> int:
    """Run a worker until SIGTERM/SIGINT; prints one JSON line when ready and one when done."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per callback is noise
    worker = ReferenceWorker(config)

    def on_signal(signum: int, frame: Any) -> None:
        if worker._stop_requested.is_set():
            os._exit(128 + signum)  # a second signal: stop now, leases will lapse
        worker.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker.start()
    ready = {"event": "ready", "name": config.name, "worker_id": worker.worker_id}
    print(json.dumps({**ready, "url": worker.url, "mode": config.mode}), flush=True)
    worker.wait()
    print(json.dumps({"event": "stopped", "name": config.name}), flush=True)
    sys.stdout.flush()
    return 0


def _percent(value: str) -> int:
    """An argparse type: a whole percentage 0-100."""
    pct = int(value)
    if not 0 <= pct <= 100:
        raise argparse.ArgumentTypeError("a percentage must be 0-100")
    return pct


def run_from_args(args: argparse.Namespace) -> int:
    """Run the reference GPU worker until SIGTERM (then drain)."""
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    if not models:
        print("error: --models needs at least one model id", file=sys.stderr)
        return 2
    return run(
        WorkerConfig(
            name=args.name,
            models=models,
            host=args.host,
            port=args.port,
            public_url=args.public_url,
            mode=args.mode,
            capacity=args.capacity,
            functions_url=args.functions_url,
            heartbeat_s=args.heartbeat_interval,
            poll_s=args.poll_interval,
            drain_timeout_s=args.drain_timeout,
            fail_at=args.fail_at,
            hang_at=args.hang_at,
            crash_at=args.crash_at,
            render=not args.no_render,
            speed=args.speed,
        )
    )


def add_arguments(cmd: argparse.ArgumentParser) -> None:
    """The worker's options (also ``videogen worker`` in the dev CLI)."""
    cmd.add_argument("--name", required=True, help="unique worker name (re-registers by name)")
    cmd.add_argument("--models", required=True, help="comma-separated model ids it serves")
    cmd.add_argument("--host", default="127.0.0.1", help="address to listen on")
    cmd.add_argument("--port", type=int, default=0, help="port to listen on (0: any free one)")
    cmd.add_argument("--public-url", help="URL the backend reaches this worker at")
    cmd.add_argument("--mode", choices=["push", "pull"], default="push")
    cmd.add_argument("--capacity", type=int, default=2, help="jobs at once")
    cmd.add_argument("--functions-url", help="default: FUNCTIONS_URL")
    cmd.add_argument("--heartbeat-interval", type=float, default=5.0, help="seconds")
    cmd.add_argument("--poll-interval", type=float, default=1.0, help="pull mode: seconds")
    cmd.add_argument(
        "--drain-timeout", type=float, default=60.0, help="seconds to finish jobs on SIGTERM"
    )
    cmd.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="render no faster than SPEED x real time (0: as fast as possible)",
    )
    cmd.add_argument(
        "--no-render",
        action="store_true",
        help="skip ffmpeg: complete at once with a tiny fake output",
    )
    inject = cmd.add_argument_group("failure injection (tests)")
    inject.add_argument(
        "--fail-at", type=_percent, metavar="PCT", help="report a retryable failure at PCT %%"
    )
    inject.add_argument(
        "--hang-at",
        type=_percent,
        metavar="PCT",
        help="stop reporting and heartbeating at PCT %% (a hung GPU)",
    )
    inject.add_argument(
        "--crash-at", type=_percent, metavar="PCT", help="exit at once (status 137) at PCT %%"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """The worker's command line."""
    parser = argparse.ArgumentParser(prog="videogen-worker", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    return run_from_args(args)


if __name__ == "__main__":
    sys.exit(main())
