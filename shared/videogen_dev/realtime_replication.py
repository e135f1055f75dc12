"""Rows written to ``realtime.messages``, read in commit order from a logical replication slot.

This is how Supabase Realtime's broadcast-from-database works
(Realtime.Tenants.ReplicationConnection): a publication on ``realtime.messages``
(``supabase_realtime_messages_publication``, created if missing), a *temporary* logical
slot with the ``pgoutput`` plugin, and every committed INSERT turned into a broadcast.
Logical decoding reads the WAL after commit, so nothing is added to the committing
transaction — unlike a ``NOTIFY``, which takes one cluster-wide lock at every commit.

psycopg has no streaming-replication client, so the slot is read through the SQL
interface (``pg_logical_slot_get_binary_changes``), a few times a second while anyone
listens. The pgoutput messages are parsed here because no maintained Python package
parses protocol version 1 from bytes (the format: PostgreSQL's "Logical Replication
Message Formats"); only Relation and Insert matter, the rest is skipped.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("videogen.realtime")

PUBLICATION = "supabase_realtime_messages_publication"
POLL_S = 0.05  # how often the slot is read while anyone listens
IDLE_S = 30.0  # the slot is dropped this long after the last listener left
BATCH = 5000  # changes read per call (a call ends at a transaction boundary past this)


@dataclass(frozen=True)
class Relation:
    """A table as pgoutput describes it: its schema, name and column names."""

    namespace: str
    name: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Inserted:
    """One inserted row: its table and its columns as text (None for NULL)."""

    relation: Relation
    values: dict[str, str | None]


class _Reader:
    """A cursor over one pgoutput message."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return value

    def string(self) -> str:
        end = self.data.index(b"\0", self.pos)
        value = self.data[self.pos : end].decode()
        self.pos = end + 1
        return value

    def raw(self, size: int) -> bytes:
        value = self.data[self.pos : self.pos + size]
        self.pos += size
        return value


def parse(data: bytes, relations: dict[int, Relation]) -> Inserted | None:
    """One pgoutput (v1) message: remember a Relation, return an Insert, skip the rest."""
    kind = data[:1]
    reader = _Reader(data)
    reader.pos = 1
    if kind == b"R":
        relid = reader.take("!I")
        namespace, name = reader.string(), reader.string()
        reader.take("!b")  # replica identity
        columns = []
        for _ in range(reader.take("!h")):
            reader.take("!b")  # flags
            columns.append(reader.string())
            reader.take("!I")  # type oid
            reader.take("!i")  # type modifier
        relations[relid] = Relation(namespace, name, tuple(columns))
        return None
    if kind != b"I":
        return None
    relid = reader.take("!I")
    relation = relations.get(relid)
    if relation is None or reader.raw(1) != b"N":
        return None
    values: dict[str, str | None] = {}
    for index in range(reader.take("!h")):
        tag = reader.raw(1)
        value: str | None = None
        if tag == b"t":
            value = reader.raw(reader.take("!i")).decode()
        name = relation.columns[index] if index < len(relation.columns) else str(index)
        values[name] = value
    return Inserted(relation, values)


@dataclass(frozen=True)
class StoredMessage:
    """A committed ``realtime.messages`` row, as the Realtime server broadcasts it."""

    id: str
    topic: str
    event: str
    payload: str  # JSON text
    private: bool


def message_of(row: Inserted) -> StoredMessage | None:
    """The broadcast a row of ``realtime.messages`` (any partition) stands for, if any."""
    relation, values = row.relation, row.values
    if relation.namespace != "realtime" or not relation.name.startswith("messages"):
        return None
    if values.get("extension") != "broadcast":
        return None
    topic, event, payload, ident = (values.get(k) for k in ("topic", "event", "payload", "id"))
    if not (topic and event and payload and ident):
        return None
    return StoredMessage(ident, topic, event, payload, values.get("private") == "t")


class MessageFeed:
    """One process's reader of the slot, running while anyone listens.

    ``start()`` returns once the slot exists, so a subscriber that joined before a
    transaction commits receives its rows. ``deliver`` is called from the feed's thread
    with each message, in commit order. If the database goes away, the feed reconnects
    with a new slot; what was committed in between is not delivered (as with Supabase,
    whose slot is temporary too) — clients re-read state over HTTP.
    """

    def __init__(self, dsn: Callable[[], str], deliver: Callable[[StoredMessage], None]) -> None:
        self._dsn, self._deliver = dsn, deliver
        self._lock = threading.Lock()
        self._wanted = 0
        self._idle_since: float | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failed: str | None = None
        self._stop = threading.Event()

    def start(self, timeout: float = 10.0) -> None:
        """Count one listener and make sure the slot is being read; raise if it cannot be."""
        with self._lock:
            self._wanted += 1
            self._idle_since = None
            if self._thread is None or not self._thread.is_alive():
                self._ready.clear()
                self._failed = None
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="realtime-feed", daemon=True)
                self._thread.start()
        if not self._ready.wait(timeout):
            self.stop_one()
            raise ConnectionError(self._failed or "the replication slot was not ready in time")

    def stop_one(self) -> None:
        """One listener fewer; the slot goes ``IDLE_S`` after the last one."""
        with self._lock:
            self._wanted = max(0, self._wanted - 1)
            if self._wanted == 0:
                self._idle_since = time.monotonic()

    def close(self) -> None:
        """Stop reading now (process shutdown)."""
        self._stop.set()

    def _idle_out(self) -> bool:
        with self._lock:
            return (
                self._wanted == 0
                and self._idle_since is not None
                and time.monotonic() - self._idle_since > IDLE_S
            )

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set() and not self._idle_out():
            try:
                with psycopg.connect(self._dsn(), autocommit=True, connect_timeout=5) as conn:
                    slot = self._open(conn)
                    self._ready.set()
                    self._read(conn, slot)
            except psycopg.Error as exc:
                self._ready.clear()
                self._failed = f"the database is unavailable: {exc.__class__.__name__}"
                log.warning("realtime feed: %s; reconnecting", exc)
                self._stop.wait(1.0)
        self._ready.clear()

    @staticmethod
    def _open(conn: Any) -> str:
        """The publication (created as Realtime does, if missing) and a temporary slot."""
        import psycopg

        if (
            conn.execute(
                "select 1 from pg_publication where pubname = %s", [PUBLICATION]
            ).fetchone()
            is None
        ):
            with contextlib.suppress(psycopg.errors.DuplicateObject):  # made by another process
                conn.execute(f"create publication {PUBLICATION} for table realtime.messages")
        slot = f"videogen_realtime_{secrets.token_hex(4)}"
        conn.execute("select pg_create_logical_replication_slot(%s, 'pgoutput', true)", [slot])
        return slot

    def _read(self, conn: Any, slot: str) -> None:
        relations: dict[int, Relation] = {}
        while not self._stop.is_set() and not self._idle_out():
            rows = conn.execute(
                "select data from pg_logical_slot_get_binary_changes("
                "%s, null, %s, 'proto_version', '1', 'publication_names', %s)",
                [slot, BATCH, PUBLICATION],
            ).fetchall()
            for (data,) in rows:
                inserted = parse(bytes(data), relations)
                message = message_of(inserted) if inserted is not None else None
                if message is not None:
                    try:
                        self._deliver(message)
                    except Exception:  # one bad subscriber must not stop the feed
                        log.exception("realtime feed: delivery failed")
            if len(rows) < BATCH:
                self._stop.wait(POLL_S)
