"""The schedules of ``private.schedules``, run by the local stack where pg_cron does not.

``sql/schema/10_schedules.sql`` keeps one list of what runs when (pg_cron's syntax: five
cron fields, or ``N seconds``). Where pg_cron runs for the database (Supabase; the embedded
Postgres with Debian's ``postgresql-<major>-cron``), the rows are its ``cron.job`` and this
scheduler only watches. Elsewhere ``videogen up`` starts it (``videogen scheduler``) and it
runs each row's command on the row's schedule, re-reading the rows every tick, so a changed
schedule applies within a tick and the schedule lives in one place: the database.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter

log = logging.getLogger("videogen.scheduler")

TICK_S = 1.0  # how often the rows are read (and the finest schedule: pg_cron's '1 seconds')
_SECONDS = re.compile(r"^\s*([1-9]|[1-5][0-9])\s+seconds?\s*$")  # pg_cron ≥ 1.5's form


@dataclass(frozen=True)
class Schedule:
    """One row of ``private.schedules``."""

    name: str
    schedule: str
    command: str

    def next_after(self, moment: datetime) -> datetime:
        """The first run after ``moment`` (UTC), as pg_cron would pick it."""
        seconds = _SECONDS.match(self.schedule)
        if seconds is not None:
            return moment + timedelta(seconds=int(seconds.group(1)))
        nxt: datetime = croniter(self.schedule, moment).get_next(datetime)
        return nxt


class Scheduler:
    """Runs the due rows of ``private.schedules`` unless pg_cron does (see the module doc)."""

    def __init__(self, dsn: str, *, tick: float = TICK_S) -> None:
        self.dsn, self.tick = dsn, tick
        self._due: dict[tuple[str, str], datetime] = {}  # (name, schedule) → next run
        self._by_pg_cron: bool | None = None

    def run(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set; a database that is away (a reset) is waited for."""
        import psycopg

        log.info("scheduler started (rows of private.schedules, every %.0f s)", self.tick)
        while not stop.is_set():
            try:
                self.tick_once()
            except psycopg.Error as exc:
                log.warning("scheduler: the database is unavailable (%s); retrying", exc)
                self._due.clear()
            stop.wait(self.tick)

    def tick_once(self, now: datetime | None = None) -> list[str]:
        """Run what is due now; the names run."""
        import psycopg

        now = now or datetime.now(UTC)
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
            rows, by_pg_cron = _read(conn)
            if by_pg_cron != self._by_pg_cron:
                self._by_pg_cron = by_pg_cron
                if by_pg_cron:
                    log.info("pg_cron runs the schedules of this database; standing by")
                else:
                    log.info("pg_cron does not run here: running %s", _describe(rows))
            if by_pg_cron:
                return []
            wanted = {(r.name, r.schedule): r for r in rows}
            self._due = {k: v for k, v in self._due.items() if k in wanted}
            ran = []
            for key, row in wanted.items():
                due = self._due.setdefault(key, row.next_after(now))
                if due > now:
                    continue
                self._due[key] = row.next_after(now)
                ran.append(row.name)
                try:
                    result = conn.execute(row.command).fetchone()  # the row's own SQL
                except psycopg.Error as exc:
                    log.error("%s failed: %s", row.name, exc)
                    continue
                log.info("%s: %s", row.name, _show(result))
            return ran


def _read(conn: Any) -> tuple[list[Schedule], bool]:
    """The rows, and whether pg_cron runs them."""
    rows = conn.execute(
        "select name, schedule, command from private.schedules order by name"
    ).fetchall()
    flag = conn.execute("select private.schedules_by_pg_cron()").fetchone()
    return [Schedule(*row) for row in rows], bool(flag and flag[0])


def _describe(rows: list[Schedule]) -> str:
    return ", ".join(f"{r.name} ({r.schedule!r})" for r in rows) or "nothing (no rows)"


def _show(result: Any) -> str:
    if not result:
        return "done"
    value = result[0]
    return json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)


def start_in_thread(dsn: str, *, tick: float = TICK_S) -> tuple[threading.Thread, threading.Event]:
    """Run a :class:`Scheduler` in a daemon thread; set the event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(
        target=Scheduler(dsn, tick=tick).run, args=(stop,), name="scheduler", daemon=True
    )
    thread.start()
    return thread, stop
