"""Realtime delivery: what a subscriber costs the committing transactions, and its latency.

Every job change writes one ``realtime.messages`` row (``realtime.send``) in its own
transaction. The dev server's Realtime reads those rows after commit from a logical slot;
the old local design sent a ``NOTIFY`` per message instead, which takes one cluster-wide
lock at commit. Measured side by side, alternating rounds, in one run:

* commits/s of a pgbench transaction that sends one broadcast (16 clients), with
  - ``idle``:   no Realtime subscriber (no slot: the cost of the row alone),
  - ``feed``:   the dev server running with one websocket joined to the topic (the slot
                read every 50 ms, every message delivered to it),
  - ``notify``: no server, the same transaction plus ``pg_notify`` of the payload and one
                session LISTENing (the yardstick: the design this replaced);
* delivery latency at a fixed offered load (``--rate`` messages/s, one writer committing
  each alone): the time from ``clock_timestamp()`` in the sending transaction to the
  websocket frame, p50 / p99 / max.

    python bench/realtime_bench.py [--clients 16] [--seconds 8] [--rounds 3] [--rate 200]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

TOPIC = "bench"
SEND = (
    "SELECT realtime.send(jsonb_build_object('client', :client_id, 'at', "
    "extract(epoch from clock_timestamp())), 'job_progress', '" + TOPIC + "', false);\n"
)
NOTIFY = (
    "BEGIN \\;\n"
    + SEND.rstrip(";\n")
    + " \\;\nSELECT pg_notify('videogen_realtime', json_build_object('client', :client_id)::text)"
    " \\;\nCOMMIT;\n"
)
BAR_FEED = 0.85  # a subscriber may cost the senders at most 15 %


def pgbench(tool: str, dsn: str, script: Path, clients: int, seconds: int) -> float:
    done = subprocess.run(
        [tool, "-n", "-c", str(clients), "-j", "2", "-T", str(seconds), "-f", str(script), dsn],
        capture_output=True,
        text=True,
        timeout=seconds * 3 + 60,
    )
    found = re.search(r"tps = ([\d.]+)", done.stdout)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"pgbench failed: {done.stderr[-500:]}")
    return float(found.group(1))


def truncate(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("truncate realtime.messages")


class Subscriber:
    """A websocket joined to the topic (vsn 2, as realtime-js), timing what arrives."""

    def __init__(self, base: str, key: str) -> None:
        from websockets.sync.client import connect

        url = f"{base.replace('http', 'ws')}/realtime/v1/websocket?vsn=2.0.0&apikey={key}"
        self.ws = connect(url, open_timeout=10, max_size=None)
        self.ws.send(json.dumps(["1", "1", f"realtime:{TOPIC}", "phx_join", {"config": {}}]))
        reply = json.loads(self.ws.recv(timeout=10))
        assert reply[4]["status"] == "ok", reply
        self.latencies: list[float] = []
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self.ws.recv(timeout=0.5)
            except TimeoutError:
                continue
            except Exception:
                return
            if isinstance(frame, bytes) and frame[0] == 4:
                now = time.time()
                topic_len, event_len, meta_len = frame[1], frame[2], frame[3]
                payload = json.loads(frame[5 + topic_len + event_len + meta_len :])
                self.received += 1
                if payload.get("client") == -1:  # the latency writer's messages
                    self.latencies.append(now - float(payload["at"]))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.ws.close()


def drain_time(dsn: str, sub: Subscriber, limit: float = 60.0) -> float:
    """Seconds until the subscriber has every message the senders committed."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("select count(*) from realtime.messages").fetchone()
    total = int(row[0]) if row else 0
    start = time.monotonic()
    while sub.received < total and time.monotonic() - start < limit:
        time.sleep(0.05)
    return time.monotonic() - start


def with_listener(dsn: str, run: Callable[[], float]) -> float:
    """``run()`` while one session LISTENs and drains the notifications."""
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("listen videogen_realtime")
        stop = threading.Event()

        def drain() -> None:
            while not stop.is_set():
                for _ in listener.notifies(timeout=0.2):
                    pass

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        try:
            return run()
        finally:
            stop.set()
            reader.join(2)


def latency_run(dsn: str, sub: Subscriber, rate: int, seconds: int) -> list[float]:
    """One writer committing ``rate`` broadcasts a second, each in its own transaction."""
    sub.latencies.clear()
    interval = 1.0 / rate
    with psycopg.connect(dsn, autocommit=True) as conn:
        # Each commit flushed, as on a durable server: logical decoding reads only what is
        # flushed, so the test cluster's synchronous_commit=off would add up to 200 ms.
        conn.execute("set synchronous_commit = on")
        start = time.perf_counter()
        for n in range(rate * seconds):
            delay = start + n * interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            conn.execute(
                "select realtime.send(jsonb_build_object('client', -1, 'at',"
                " extract(epoch from clock_timestamp())), 'job_progress', %s, false)",
                [TOPIC],
            )
    time.sleep(1.0)
    return sorted(sub.latencies)


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main() -> int:
    from lifecycle_bench import find_pgbench
    from serverkit import running_server
    from videogen_dev import localdb, migrations

    from videogen.config import LOCAL_PUBLISHABLE_KEY

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=int, default=200)
    args = parser.parse_args()

    tool = find_pgbench()
    admin = localdb.ensure_running()
    template = f"videogen_bench_tpl_{migrations.fingerprint()[:12]}"
    migrations.create_template(admin, template)
    name = "videogen_bench_realtime"
    migrations.drop_database(admin, name)
    dsn = migrations.clone_database(admin, template, name)
    tps: dict[str, list[float]] = {"idle": [], "feed": [], "notify": []}
    drains: list[tuple[int, float]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            send, notify = Path(tmp) / "send.sql", Path(tmp) / "notify.sql"
            send.write_text(SEND)
            notify.write_text(NOTIFY)
            for round_no in range(args.rounds):
                order = list(tps) if round_no % 2 == 0 else list(reversed(tps))
                for config in order:
                    truncate(dsn)
                    if config == "feed":
                        with running_server(dsn, Path(tmp) / f"srv{round_no}") as server:
                            sub = Subscriber(server.base, LOCAL_PUBLISHABLE_KEY)
                            rate = pgbench(tool, dsn, send, args.clients, args.seconds)
                            drained = drain_time(dsn, sub)
                            print(
                                f"    {sub.received} delivered; the last "
                                f"{drained:.1f} s after the senders stopped"
                            )
                            drains.append((sub.received, args.seconds + drained))
                            sub.close()
                    elif config == "notify":
                        rate = with_listener(
                            dsn, lambda: pgbench(tool, dsn, notify, args.clients, args.seconds)
                        )
                    else:
                        rate = pgbench(tool, dsn, send, args.clients, args.seconds)
                    tps[config].append(rate)
                    print(f"  round {round_no + 1}  {config:<7} {rate:8.0f} commits/s")
            truncate(dsn)
            with running_server(dsn, Path(tmp) / "latency") as server:
                sub = Subscriber(server.base, LOCAL_PUBLISHABLE_KEY)
                lat = latency_run(dsn, sub, args.rate, args.seconds)
                sub.close()
    finally:
        migrations.drop_database(admin, name)

    idle, feed, note = (statistics.median(tps[k]) for k in ("idle", "feed", "notify"))
    print(f"idle    {idle:8.0f} commits/s (median)")
    print(
        f"feed    {feed:8.0f} commits/s → {feed / idle:.2f} of idle "
        f"(bar >= {BAR_FEED}: {'ok' if feed / idle >= BAR_FEED else 'missed'})"
    )
    print(f"notify  {note:8.0f} commits/s → {note / idle:.2f} of idle (the replaced design)")
    delivered = sum(n for n, _ in drains) / sum(t for _, t in drains)
    print(f"feed delivery while senders ran flat out: {delivered:.0f} messages/s to one socket")
    sent = args.rate * args.seconds
    ms = [x * 1000 for x in lat]
    print(
        f"latency at {args.rate} msg/s: {len(ms)} of {sent} delivered, p50 {pct(ms, 0.5):.1f} ms,"
        f" p99 {pct(ms, 0.99):.1f} ms, max {ms[-1] if ms else float('nan'):.1f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
