"""``videogen logs [service]``: the local stack's logs, one line per event.

The stack's processes write to ``<state dir>/run/<service>.log`` (videogen_dev.stack). This
reads them like ``tail -f`` (or ``--no-follow``), and makes them readable:

* a function's request is one JSON object (videogen.kit.endpoint); it becomes one line:
  time, level, what happened, how long, the error code;
* a plain ``LEVEL logger: message`` line followed by the JSON line of the same record is
  shown once (logs written before the dev server stopped doubling them);
* workers' heartbeats and claims (2xx, ``action`` in the request's log fields) are summed up
  per worker: one line "12 heartbeats, 30 claims from local-worker-1 in the last 60 s"
  per window instead of one per call. A failed heartbeat is shown as itself.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

WINDOW_S = 60.0  # heartbeats are summed up per this many seconds
QUIET_ACTIONS = ("heartbeat", "claim")
_PLAIN = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) ([\w.]+): (.*)$")
_TAIL_BYTES = 4_000_000  # how much of a long log is read for its last lines


def _clock(moment: float | None) -> str:
    if moment is None:
        return "        "
    return datetime.fromtimestamp(moment, UTC).strftime("%H:%M:%S")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass
class Digest:
    """Raw log lines in, display lines out (see the module doc). ``feed`` takes one line of
    one service; ``flush`` lets out what waits (a held plain line; heartbeat counts whose
    window is over, or all of them with ``final``)."""

    window_s: float = WINDOW_S
    clock: Callable[[], float] = time.time
    _held: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    _beats: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    _since: float | None = None
    _names: dict[str, str] = field(default_factory=dict)  # worker id → name
    _last: float | None = None  # the latest event time seen

    def feed(self, service: str, line: str) -> list[str]:
        """The display lines this raw line lets out (maybe none)."""
        line = line.rstrip("\n")
        out: list[str] = []
        record = _json(line)
        if record is None:
            out += self._release(service)
            plain = _PLAIN.match(line)
            if plain is not None:  # held: its JSON twin may follow
                self._held[service] = (line, plain.group(2), plain.group(3))
            elif line.strip():
                out.append(self._show(service, line))
            return out
        held = self._held.pop(service, None)
        if held is not None and (held[1], held[2]) != (record.get("logger"), record.get("message")):
            out.append(self._show(service, held[0]))
        moment = _float(record.get("time"))
        out += self._window(moment)
        if moment is not None:
            self._last = moment
        if record.get("worker") and record.get("worker_id"):
            self._names[str(record["worker_id"])] = str(record["worker"])
        status = _float(record.get("status")) or 0
        if record.get("action") in QUIET_ACTIONS and 200 <= status < 400:
            worker = str(record.get("worker") or record.get("worker_id") or "?")
            self._beats[(service, worker, str(record["action"]))] += 1
            if self._since is None:
                self._since = moment if moment is not None else self.clock()
            return out
        out.append(self._show(service, _event(record)))
        return out

    def flush(self, *, final: bool = False) -> list[str]:
        """Let out held lines, and heartbeat counts whose window ended (all when final)."""
        out: list[str] = []
        for service in list(self._held):
            out += self._release(service)
        if final:  # a file read to its end: its last event closes the window
            out += self._summaries(self._last if self._last is not None else self.clock())
        else:
            out += self._window(self.clock())
        return out

    def _window(self, moment: float | None) -> list[str]:
        if self._since is None or moment is None or moment < self._since + self.window_s:
            return []
        return self._summaries(moment)

    def _summaries(self, moment: float) -> list[str]:
        if not self._beats:
            self._since = None
            return []
        since = self._since if self._since is not None else moment
        seconds = max(1, round(min(moment - since, self.window_s) if moment > since else 0))
        per_worker: dict[tuple[str, str], list[str]] = {}
        for (service, worker, action), n in sorted(self._beats.items()):
            name = self._names.get(worker, worker)
            per_worker.setdefault((service, name), []).append(_plural(n, action))
        lines = [
            self._show(
                service,
                f"{_clock(moment)} INFO    {', '.join(counts)} from {worker} "
                f"in the last {seconds} s",
            )
            for (service, worker), counts in per_worker.items()
        ]
        self._beats.clear()
        self._since = None
        return lines

    def _release(self, service: str) -> list[str]:
        held = self._held.pop(service, None)
        return [] if held is None else [self._show(service, held[0])]

    @staticmethod
    def _show(service: str, text: str) -> str:
        return f"{service:<10} {text}"


def _json(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    with contextlib.suppress(ValueError):
        value = json.loads(line)
        if isinstance(value, dict):
            return value
    return None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _event(record: dict[str, Any]) -> str:
    """One JSON log record as one line (a JSON line that is no log record, as is)."""
    if "message" not in record:
        return f"{_clock(_float(record.get('time')))} {'INFO':<7} {json.dumps(record)}"
    level = str(record.get("severity") or record.get("level") or "INFO")
    text = f"{_clock(_float(record.get('time')))} {level:<7} {record.get('message', '')}"
    if record.get("duration_ms") is not None:
        text += f" ({record['duration_ms']} ms)"
    if record.get("error_code"):
        text += f" {record['error_code']}"
    if record.get("action"):
        text += f" action={record['action']}"
    if record.get("exception"):
        text += " | " + str(record["exception"]).strip().splitlines()[-1]
    return text


# ------------------------------------------------------------------------------------------
# Reading the files
# ------------------------------------------------------------------------------------------


def log_files(run_dir: Path, services: list[str]) -> dict[str, Path]:
    """``service → <run_dir>/<service>.log`` for the services asked for."""
    return {name: run_dir / f"{name}.log" for name in services}


def _read_existing(path: Path) -> tuple[list[str], int]:
    """The file's lines (its last ``_TAIL_BYTES``) and the offset after them."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - _TAIL_BYTES))
            data = handle.read()
    except FileNotFoundError:
        return [], 0
    if size > _TAIL_BYTES:
        data = data.split(b"\n", 1)[-1]  # a cut first line
    end = data.rfind(b"\n") + 1  # a last line without its newline yet is read when complete
    return data[:end].decode(errors="replace").splitlines(), max(0, size - len(data)) + end


def show(
    files: dict[str, Path],
    out: TextIO,
    *,
    lines: int = 20,
    follow: bool = True,
    poll_s: float = 0.2,
    digest: Digest | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> None:
    """Print the last ``lines`` display lines of each file, then (``follow``) what they get."""
    from rich.console import Console

    console = Console(file=out, soft_wrap=True, highlight=False, markup=False, emoji=False)
    digest = digest or Digest()
    offsets: dict[str, int] = {}
    for service, path in files.items():  # the last lines of each, one after the other (tail)
        shown: list[str] = []
        existing, offsets[service] = _read_existing(path)
        for raw in existing:
            shown += digest.feed(service, raw)
        shown += digest.flush(final=True)
        for text in shown[-lines:] if lines > 0 else []:
            console.print(text)
    out.flush()
    if not follow:
        return
    for batch in _follow(files, offsets, poll_s, stop):
        produced: list[str] = []
        for service, raw in batch:
            produced += digest.feed(service, raw)
        produced += digest.flush()
        for text in produced:
            console.print(text)
        out.flush()


def _follow(
    files: dict[str, Path], offsets: dict[str, int], poll_s: float, stop: Callable[[], bool]
) -> Iterator[list[tuple[str, str]]]:
    """Batches of new complete lines, as ``tail -F`` reads them (a truncated or replaced
    file is read again from its start); an empty batch every ``poll_s`` when quiet."""
    partial: dict[str, bytes] = dict.fromkeys(files, b"")
    while not stop():
        batch: list[tuple[str, str]] = []
        for service, path in files.items():
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            if size < offsets.get(service, 0):
                offsets[service], partial[service] = 0, b""
            if size == offsets.get(service, 0):
                continue
            with path.open("rb") as handle:
                handle.seek(offsets.get(service, 0))
                data = partial[service] + handle.read()
                offsets[service] = handle.tell()
            *complete, partial[service] = data.split(b"\n")
            batch += [(service, raw.decode(errors="replace")) for raw in complete]
        yield batch
        if not batch:
            time.sleep(poll_s)
