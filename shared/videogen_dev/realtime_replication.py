"""Rows written to ``realtime.messages``, and row changes of the tables in the
``supabase_realtime`` publication, read in commit order from a logical replication slot.

This is how Supabase Realtime reads the database: broadcast-from-database
(Realtime.Tenants.ReplicationConnection) with a publication on ``realtime.messages``
(``supabase_realtime_messages_publication``, created if missing), and ``postgres_changes``
(Extensions.PostgresCdcRls: the tables of ``supabase_realtime``, which the platform creates
empty and a project fills). One *temporary* logical slot with the ``pgoutput`` plugin reads
both publications; every committed INSERT of ``realtime.messages`` becomes a broadcast,
every INSERT / UPDATE / DELETE of a published table a ``Change`` (videogen_dev.realtime_changes
decides who may see it). Logical decoding reads the WAL after commit, so nothing is added
to the committing transaction — unlike a ``NOTIFY``, which takes one cluster-wide lock at
every commit.

psycopg has no streaming-replication client, so the slot is read through the SQL
interface (``pg_logical_slot_get_binary_changes``), a few times a second while anyone
listens. The pgoutput messages are parsed here because no maintained Python package
parses protocol version 1 from bytes (the format: PostgreSQL's "Logical Replication
Message Formats"); Begin, Relation, Insert, Update and Delete matter, the rest is skipped.

When the database goes away (a restart, ``db reset`` dropping it and terminating this
reader), the feed logs it once, reconnects with backoff and creates a new slot (and the
publication, once the schema is back); what was committed in between is not delivered, as
with Supabase, whose slot is temporary too.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

log = logging.getLogger("videogen.realtime")

PUBLICATION = "supabase_realtime_messages_publication"
CHANGES_PUBLICATION = "supabase_realtime"  # the tables postgres_changes serves
POLL_S = 0.05  # how often the slot is read while anyone listens
IDLE_S = 30.0  # the slot is dropped this long after the last listener left
BATCH = 5000  # changes read per call (a call ends at a transaction boundary past this)
BACKOFF_S = (0.5, 1.0, 2.0, 5.0)  # waits between reconnects (the last one repeats)
ADMIN_SHUTDOWN = "57P01"  # our backend was ended (pg_terminate_backend, a shutdown)
ENDED_WAIT_S = 2.0
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
UNCHANGED = object()  # a TOASTed value an UPDATE did not change (pgoutput's 'u')


@dataclass(frozen=True)
class Relation:
    """A table as pgoutput describes it: its schema, name, column names and type oids."""

    namespace: str
    name: str
    columns: tuple[str, ...]
    type_oids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Change:
    """One committed row change: ``action`` INSERT / UPDATE / DELETE, the new row (INSERT,
    UPDATE) and the old one pgoutput sent (UPDATE / DELETE: the replica identity's columns,
    every column with ``replica identity full``; None when an UPDATE kept the key), each
    column as text (None for NULL, ``UNCHANGED`` for an untouched TOASTed value)."""

    relation: Relation
    action: str
    new: dict[str, Any] | None
    old: dict[str, Any] | None = None
    committed_at: datetime = field(default=PG_EPOCH)

    @property
    def values(self) -> dict[str, Any]:
        """The new row (INSERT, UPDATE) or the old one (DELETE)."""
        return self.new if self.new is not None else (self.old or {})


@dataclass
class Decoding:
    """What a slot's stream has told so far: its tables and the open transaction's commit time."""

    relations: dict[int, Relation] = field(default_factory=dict)
    committed_at: datetime = PG_EPOCH


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

    def tuple(self, relation: Relation) -> dict[str, Any]:
        """TupleData: per column 'n' (NULL), 'u' (unchanged TOAST), 't' (text) or 'b'."""
        values: dict[str, Any] = {}
        for index in range(self.take("!h")):
            tag = self.raw(1)
            value: Any = None
            if tag == b"u":
                value = UNCHANGED
            elif tag in (b"t", b"b"):
                value = self.raw(self.take("!i")).decode()
            name = relation.columns[index] if index < len(relation.columns) else str(index)
            values[name] = value
        return values


def parse(data: bytes, state: Decoding | dict[int, Relation]) -> Change | None:
    """One pgoutput (v1) message: remember a Relation or a Begin's commit time, return a
    Change for an Insert, Update or Delete, skip the rest."""
    if isinstance(state, dict):  # a bare relation map (no commit times)
        state = Decoding(state)
    kind = data[:1]
    reader = _Reader(data)
    reader.pos = 1
    if kind == b"B":
        reader.take("!Q")  # final LSN
        state.committed_at = PG_EPOCH + timedelta(microseconds=reader.take("!q"))
        return None
    if kind == b"R":
        relid = reader.take("!I")
        namespace, name = reader.string(), reader.string()
        reader.take("!b")  # replica identity
        columns, oids = [], []
        for _ in range(reader.take("!h")):
            reader.take("!b")  # flags
            columns.append(reader.string())
            oids.append(reader.take("!I"))
            reader.take("!i")  # type modifier
        state.relations[relid] = Relation(namespace, name, tuple(columns), tuple(oids))
        return None
    if kind not in (b"I", b"U", b"D"):
        return None
    relation = state.relations.get(reader.take("!I"))
    if relation is None:
        return None
    tag = reader.raw(1)
    old: dict[str, Any] | None = None
    if kind == b"I":
        if tag != b"N":
            return None
        return Change(relation, "INSERT", reader.tuple(relation), None, state.committed_at)
    if tag in (b"K", b"O"):
        old = reader.tuple(relation)
        tag = reader.raw(1) if kind == b"U" else b""
    if kind == b"D":
        return Change(relation, "DELETE", None, old, state.committed_at)
    if tag != b"N":
        return None
    return Change(relation, "UPDATE", reader.tuple(relation), old, state.committed_at)


@dataclass(frozen=True)
class StoredMessage:
    """A committed ``realtime.messages`` row, as the Realtime server broadcasts it."""

    id: str
    topic: str
    event: str
    payload: str  # JSON text
    private: bool


def message_of(row: Change) -> StoredMessage | None:
    """The broadcast a row of ``realtime.messages`` (any partition) stands for, if any."""
    relation = row.relation
    if relation.namespace != "realtime" or not relation.name.startswith("messages"):
        return None
    if row.action != "INSERT" or row.new is None:
        return None
    values = row.new
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
    with each message, ``on_change`` with each change of a published table, in commit
    order. If the database goes away, the feed reconnects (backoff ``BACKOFF_S``) with a
    new slot; what was committed in between is not delivered (as with Supabase, whose slot
    is temporary too) — clients re-read state over HTTP.
    """

    def __init__(
        self,
        dsn: Callable[[], str],
        deliver: Callable[[StoredMessage], None],
        on_change: Callable[[Change], None] | None = None,
    ) -> None:
        self._dsn, self._deliver, self._on_change = dsn, deliver, on_change
        self._lock = threading.Lock()
        self._wanted = 0
        self._idle_since: float | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failed: str | None = None
        self._stop = threading.Event()
        self.slots_opened = 0  # how many slots this feed has created (a reconnect makes one)

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

        failures = 0
        while not self._stop.is_set() and not self._idle_out():
            try:
                with psycopg.connect(self._dsn(), autocommit=True, connect_timeout=5) as conn:
                    slot = self._open(conn)
                    self.slots_opened += 1
                    if failures:
                        log.warning("realtime feed: the database is back (new slot %s)", slot)
                    failures = 0
                    self._ready.set()
                    self._read(conn, slot)
            except psycopg.Error as exc:
                self._ready.clear()
                self._failed = f"the database is unavailable: {exc.__class__.__name__}"
                if failures == 0:  # once per outage; the retries are quiet
                    log.warning("realtime feed: %s; reconnecting until it is back", exc)
                else:
                    log.debug("realtime feed: still unavailable (%s)", exc)
                wait = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
                if getattr(exc, "sqlstate", None) == ADMIN_SHUTDOWN:
                    # Ended by an administrator: `db reset` ends the slots' readers, then
                    # drops the database, which a new slot would stop. Give it that time.
                    wait = max(wait, ENDED_WAIT_S)
                self._stop.wait(wait)
                failures += 1
        self._ready.clear()

    @staticmethod
    def _open(conn: Any) -> str:
        """The publications (created as Realtime and the platform do, if missing) and a
        temporary slot."""
        import psycopg

        for name, ddl in (
            (PUBLICATION, f"create publication {PUBLICATION} for table realtime.messages"),
            (CHANGES_PUBLICATION, f"create publication {CHANGES_PUBLICATION}"),
        ):
            found = conn.execute("select 1 from pg_publication where pubname = %s", [name])
            if found.fetchone() is None:
                with contextlib.suppress(psycopg.errors.DuplicateObject):  # another process
                    conn.execute(ddl)
        slot = f"videogen_realtime_{secrets.token_hex(4)}"
        conn.execute("select pg_create_logical_replication_slot(%s, 'pgoutput', true)", [slot])
        return slot

    def _read(self, conn: Any, slot: str) -> None:
        state = Decoding()
        publications = f"{PUBLICATION},{CHANGES_PUBLICATION}"
        while not self._stop.is_set() and not self._idle_out():
            rows = conn.execute(
                "select data from pg_logical_slot_get_binary_changes("
                "%s, null, %s, 'proto_version', '1', 'publication_names', %s)",
                [slot, BATCH, publications],
            ).fetchall()
            for (data,) in rows:
                change = parse(bytes(data), state)
                if change is None:
                    continue
                try:
                    message = message_of(change)
                    if message is not None:
                        self._deliver(message)
                    elif self._on_change is not None and change.relation.namespace != "realtime":
                        self._on_change(change)
                except Exception:  # one bad subscriber must not stop the feed
                    log.exception("realtime feed: delivery failed")
            if len(rows) < BATCH:
                self._stop.wait(POLL_S)
