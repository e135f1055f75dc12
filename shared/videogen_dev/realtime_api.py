"""A local Supabase Realtime at ``/realtime/v1/websocket``, for realtime-js and supabase-py.

It follows the Realtime server (supabase/realtime: RealtimeWeb.UserSocket,
RealtimeWeb.RealtimeChannel, Realtime.Tenants.Authorization) so the same policies, topics
and clients work here as on a hosted project:

- **connect**: ``GET /realtime/v1/websocket?apikey=<key>&vsn=1.0.0|2.0.0`` upgrades to a
  websocket; a missing or invalid key is a 401 ``{"error": …}`` before the upgrade.
- **Phoenix channels** (videogen_dev.realtime_protocol): ``phx_join`` on
  ``realtime:<topic>`` with ``config {broadcast {self, ack}, presence, postgres_changes,
  private}`` and ``access_token``; ``phx_reply`` ``{status, response}``; heartbeats on
  ``phoenix``; ``phx_leave`` → reply and ``phx_close``; ``access_token`` re-checks the
  token and the policies (a token that expires, or loses read access, ends the channel
  with a ``system`` error and ``phx_close``); ``broadcast`` from clients (JSON, or binary
  on vsn 2).
- **authorization of a private join** as Realtime does it: in a transaction that is
  rolled back, insert probe rows into ``realtime.messages``, become the joining role with
  ``request.jwt.claims`` and ``realtime.topic`` set, and select them; a visible row means
  allowed. A private client broadcast needs an INSERT policy, checked the same way.
- **delivery**: every committed row of ``realtime.messages`` (``realtime.send()``,
  ``realtime.broadcast_changes()``) goes to the channels joined on its topic whose
  ``private`` matches, as ``{type: "broadcast", event, payload, meta: {id}}``, in commit
  order, read from a logical replication slot (videogen_dev.realtime_replication).
- **postgres_changes** with RLS, from the same slot (videogen_dev.realtime_changes): the
  join's bindings matched against the ``supabase_realtime`` publication, Realtime's
  ``Subscribed to PostgreSQL`` / ``Unable to subscribe…`` system messages, filters ``eq,
  neq, lt, lte, gt, gte, in``, and each change sent only to the subscribers whose role and
  claims can select the row (``apply_rls``'s rules, DELETEs unchecked and key-only).

Not served locally: Presence (a ``system`` error on join, an error reply to ``presence``),
broadcast replay, the REST broadcast endpoint, and the parts of postgres_changes that
realtime_changes lists. Client broadcasts reach the sockets of the same server process
(the dev server runs one).

gunicorn's own websocket support does the upgrade (a ``101`` through ``start_response``,
then ``gunicorn.socket``); the dev server's worker then lets go of the socket
(``released``) and one event loop thread per process (``Reactor``: ``selectors``, frames
parsed by wsproto) reads every websocket, handling frames in order per socket on a small
pool. An open websocket holds no request thread; the feed thread writes to it directly.
"""

from __future__ import annotations

import contextlib
import json
import logging
import selectors
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from videogen_dev import realtime_protocol as wire
from videogen_dev.realtime_changes import ChangeHub
from videogen_dev.realtime_replication import MessageFeed, StoredMessage
from videogen_dev.servicepool import LazyPool

log = logging.getLogger("videogen.realtime")

HEARTBEAT_TIMEOUT_S = 60.0  # Phoenix closes a socket that sent nothing for this long
MAX_MESSAGE_BYTES = 1_048_576
MAX_CHANNELS = 100  # per socket (Realtime's max_channels_per_client)
SEND_TIMEOUT_S = 10.0
WORK_THREADS = 4  # per process: frames are handled here, in order per socket
UNMATCHED = {"reason": "unmatched topic"}
CANNOT_READ = "You do not have permissions to read from this Channel topic: {}"
NO_LONGER_READS = "You no longer have permission to read from this Channel topic: {}"
NO_DATABASE = "UnableToConnectToProject: Realtime was unable to connect to the project database"
PRESENCE_LOCALLY = "Presence is not served by the local Realtime (videogen dev server)."


# Tokens -----------------------------------------------------------------------------------
class Refused(Exception):
    """A join or token refused, with Realtime's ``<Code>: <message>`` reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message

    @property
    def reason(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class Caller:
    """Who holds a channel: the database role, the JWT claims and the token."""

    role: str
    claims: dict[str, Any]
    token: str

    @property
    def expires_at(self) -> float | None:
        exp = self.claims.get("exp")
        return float(exp) if isinstance(exp, int | float) else None


def verify(token: str | None, *, as_api_key: bool = False) -> Caller:
    """The caller a token (a user's access token, or an API key) stands for, or Refused.

    Checked as Realtime checks a token, with the platform's own keys
    (videogen_dev.platform_keys): the signature (the local Auth's ES256 key, the legacy
    HS256 secret, ``SUPABASE_JWKS``), ``exp`` and the role; or the publishable / secret keys.
    """
    from videogen_dev.platform_keys import Rejected, identify

    if not token:
        raise Refused("MissingAPIKey", "API key is missing or not a valid string")
    try:
        if as_api_key:
            identity = identify(apikey=token, allow=("secret", "public"))
        else:
            identity = identify(bearer=token, allow=("user", "secret", "public"))
    except Rejected as exc:
        if exc.reason == "expired":
            exp = exc.expired_at if exc.expired_at is not None else time.time()
            raise Refused(
                "InvalidJWTToken", f"Token has expired {max(0, int(time.time() - exp))} seconds ago"
            ) from exc
        if token.count(".") != 2 and not token.startswith("sb_"):
            raise Refused("MalformedJWT", "The token provided is not a valid JWT") from exc
        raise Refused("InvalidJWTToken", exc.message) from exc
    claims = {"role": identity.role, **identity.claims}
    return Caller(str(claims.get("role") or identity.role), claims, token)


# Authorization ----------------------------------------------------------------------------
class Unavailable(Exception):
    """The database could not be reached."""


class Authorizer:
    """Realtime's policy checks on ``realtime.messages``, each in a rolled-back transaction."""

    def __init__(self, pool: LazyPool) -> None:
        self.pool = pool

    @staticmethod
    def become(conn: Any, caller: Caller, topic: str) -> None:
        conn.execute(
            "select set_config('role', %s, true), set_config('realtime.topic', %s, true),"
            " set_config('request.jwt.claims', %s, true),"
            " set_config('request.jwt.claim.sub', %s, true),"
            " set_config('request.jwt.claim.role', %s, true),"
            " set_config('request.headers', '{}', true)",
            [
                caller.role,
                topic,
                json.dumps(caller.claims),
                str(caller.claims.get("sub") or ""),
                caller.role,
            ],
        )

    def _run(self, check: Callable[[Any], bool]) -> bool:
        import psycopg

        try:
            with self.pool.get().connection() as conn, conn.transaction(force_rollback=True):
                return check(conn)
        except psycopg.Error as exc:
            if getattr(exc, "sqlstate", None) is None:
                raise Unavailable(str(exc)) from exc
            log.warning("realtime policy check failed: %s", exc)
            return False  # an error in a policy (RlsPolicyError) denies

    def can_read(self, caller: Caller, topic: str, extensions: Iterable[str]) -> set[str]:
        """The extensions (``broadcast``, ``presence``) this caller may read on ``topic``."""
        probes = {ext: str(uuid.uuid4()) for ext in extensions}
        seen: set[str] = set()

        def check(conn: Any) -> bool:
            conn.execute(
                "insert into realtime.messages (topic, extension, id)"
                " select %s, ext, id::uuid from unnest(%s::text[], %s::text[]) as p(ext, id)",
                [topic, list(probes), list(probes.values())],
            )
            self.become(conn, caller, topic)
            rows = conn.execute(
                "select extension from realtime.messages where topic = %s and id = any(%s::uuid[])",
                [topic, list(probes.values())],
            ).fetchall()
            seen.update(row[0] for row in rows)
            return bool(rows)

        self._run(check)
        return seen

    def can_write(self, caller: Caller, topic: str) -> bool:
        """True when this caller's INSERT of a broadcast on ``topic`` passes the policies."""

        def check(conn: Any) -> bool:
            self.become(conn, caller, topic)
            conn.execute(
                "insert into realtime.messages (topic, extension, id)"
                " values (%s, 'broadcast', gen_random_uuid())",
                [topic],
            )
            return True

        return self._run(check)


# Channels and the hub ---------------------------------------------------------------------
@dataclass(eq=False)
class Channel:
    """One joined topic on one socket."""

    socket: Connection
    topic: str  # "realtime:<sub_topic>", as on the wire
    join_ref: str | None
    private: bool
    caller: Caller
    self_broadcast: bool = False
    ack: bool = False
    reads_broadcast: bool = True
    may_write: bool | None = None  # learnt at the first broadcast of a private channel
    subscribed: bool = field(default=False, repr=False)

    @property
    def sub_topic(self) -> str:
        return self.topic.removeprefix("realtime:")


class Hub:
    """The channels of this process by (topic, private), fed by one replication feed."""

    def __init__(self, dsn: Callable[[], str], changes: ChangeHub) -> None:
        self._lock = threading.Lock()
        self._channels: dict[tuple[str, bool], set[Channel]] = {}
        self.changes = changes
        self.feed = MessageFeed(dsn, self.deliver, changes.dispatch)

    def subscribe(self, channel: Channel) -> None:
        """Start receiving the topic's messages (raises ConnectionError if it cannot)."""
        self.feed.start()
        with self._lock:
            self._channels.setdefault((channel.sub_topic, channel.private), set()).add(channel)
        channel.subscribed = True

    def unsubscribe(self, channel: Channel) -> None:
        if not channel.subscribed:
            return
        channel.subscribed = False
        self.changes.unsubscribe(channel)
        with self._lock:
            key = (channel.sub_topic, channel.private)
            members = self._channels.get(key)
            if members is not None:
                members.discard(channel)
                if not members:
                    del self._channels[key]
        self.feed.stop_one()

    def _members(self, topic: str, private: bool) -> list[Channel]:
        with self._lock:
            return list(self._channels.get((topic, private), ()))

    def deliver(self, message: StoredMessage) -> None:
        """A committed row of realtime.messages, to every channel on its topic."""
        for channel in self._members(message.topic, message.private):
            if channel.reads_broadcast:
                channel.socket.send_broadcast(
                    wire.Broadcast(
                        channel.topic,
                        message.event,
                        message.payload.encode(),
                        meta={"id": message.id},
                    )
                )

    def relay(self, sender: Channel, broadcast: wire.Broadcast) -> None:
        """A client's broadcast, to the other channels on its topic (and itself with ``self``)."""
        for channel in self._members(sender.sub_topic, sender.private):
            if (channel is not sender or sender.self_broadcast) and channel.reads_broadcast:
                channel.socket.send_broadcast(
                    wire.Broadcast(
                        channel.topic, broadcast.event, broadcast.body, broadcast.encoding
                    )
                )


# The event loop ---------------------------------------------------------------------------
class Reactor:
    """One thread per process watching every websocket (``selectors``), so an open socket
    holds no request thread; its frames are handled on a small pool (``WORK_THREADS``), in
    order per socket. A websocket costs a file descriptor and a few objects, not a thread.
    """

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.work = ThreadPoolExecutor(WORK_THREADS, thread_name_prefix="realtime-work")
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self.selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._adds: deque[Connection] = deque()
        self._thread = threading.Thread(target=self._run, name="realtime-loop", daemon=True)
        self._thread.start()

    def adopt(self, connection: Connection) -> None:
        """Start watching a connection's socket (from any thread)."""
        with self._lock:
            self._adds.append(connection)
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _run(self) -> None:
        ticked = time.monotonic()
        while True:
            for key, _ in self.selector.select(timeout=1.0):
                if key.data is None:
                    with contextlib.suppress(OSError):
                        self._wake_r.recv(4096)
                    with self._lock:
                        adds, self._adds = list(self._adds), deque()
                    for connection in adds:
                        try:
                            self.selector.register(
                                connection.sock, selectors.EVENT_READ, connection
                            )
                        except (OSError, ValueError):  # already gone
                            connection.submit(connection.finish)
                    continue
                connection = key.data
                if not connection.on_readable():
                    with contextlib.suppress(KeyError, ValueError, OSError):
                        self.selector.unregister(connection.sock)
                    connection.submit(connection.finish)
            now = time.monotonic()
            if now - ticked >= 1.0:
                ticked = now
                for key in list(self.selector.get_map().values()):
                    if key.data is not None and key.data.due(now):
                        key.data.submit(key.data.tick)


_reactor_lock = threading.Lock()
_reactor: Reactor | None = None
_handoff = False  # set by a gunicorn worker that lets go of a handed-off socket
_taken_lock = threading.Lock()
_taken: set[socket.socket] = set()


def reactor() -> Reactor:
    """This process's event loop (started on first use: after gunicorn's fork)."""
    global _reactor
    with _reactor_lock:
        if _reactor is None:
            _reactor = Reactor()
        return _reactor


def enable_handoff() -> None:
    """Called by the dev server's worker: it lets go of sockets ``released`` says it may."""
    global _handoff
    _handoff = True


def released(sock: Any) -> bool:
    """True (once) when ``sock`` was upgraded to a websocket and now belongs to the loop."""
    with _taken_lock:
        if sock in _taken:
            _taken.discard(sock)
            return True
        return False


# One websocket ----------------------------------------------------------------------------
_open_lock = threading.Lock()
_open: set[Connection] = set()


def close_all() -> None:
    """Close every websocket of this process (the server is stopping)."""
    with _open_lock:
        connections = list(_open)
    for connection in connections:
        connection.close(1001, "server shutting down")


def open_count() -> int:
    """How many websockets this process holds."""
    with _open_lock:
        return len(_open)


class Connection:
    """One client's websocket: its bytes read by the event loop, its frames handled in
    order on the loop's pool, written under a lock from any thread."""

    def __init__(self, sock: socket.socket, vsn: str, api_key: str, api: RealtimeApi) -> None:
        from wsproto.connection import Connection as WsConnection
        from wsproto.connection import ConnectionType

        self.sock, self.vsn, self.api_key, self.api = sock, vsn, api_key, api
        self.ws = WsConnection(ConnectionType.SERVER)
        self.channels: dict[str, Channel] = {}
        self._send_lock = threading.Lock()
        self.closed = False
        self.done = threading.Event()
        self._last_seen = time.monotonic()
        self._queue: deque[Callable[[], None]] = deque()
        self._queue_lock = threading.Lock()
        self._draining = False
        self._parts: list[Any] = []
        self._size = 0
        with _open_lock:
            _open.add(self)

    # Writing ----------------------------------------------------------------------------
    def _write(self, event: Any) -> None:
        with self._send_lock:
            if self.closed:
                return
            try:
                self.sock.sendall(self.ws.send(event))
            except Exception as exc:  # a gone client (OSError) or a closed wsproto state
                log.debug("realtime: send failed (%s); closing", exc)
                self._abort()

    def send(self, message: wire.Message) -> None:
        from wsproto.events import TextMessage

        self._write(TextMessage(data=wire.encode(message, self.vsn)))

    def send_change(self, channel: Channel, payload: dict[str, Any]) -> None:
        """A ``postgres_changes`` message (Realtime's fastlane: no refs)."""
        if self.channels.get(channel.topic) is channel:
            self.send(wire.Message(channel.topic, "postgres_changes", payload))

    def send_broadcast(self, broadcast: wire.Broadcast) -> None:
        from wsproto.events import BytesMessage, TextMessage

        if self.vsn == wire.VSN_1 and broadcast.encoding != wire.JSON_ENCODING:
            return  # V1 sockets cannot represent a binary payload (as on Realtime)
        frame = wire.encode_broadcast(broadcast, self.vsn)
        self._write(
            BytesMessage(data=frame) if isinstance(frame, bytes) else TextMessage(data=frame)
        )

    def system(self, channel: Channel, extension: str, status: str, message: str) -> None:
        self.send(
            wire.Message(
                channel.topic,
                "system",
                {
                    "extension": extension,
                    "status": status,
                    "message": message,
                    "channel": channel.sub_topic,
                },
                None,
                channel.join_ref,
            )
        )

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame and end the connection."""
        from wsproto.events import CloseConnection

        self._write(CloseConnection(code=code, reason=reason))
        with self._send_lock:
            self._abort()

    def _abort(self) -> None:
        """Mark closed and shut the socket (the loop then sees it end). Holds the lock."""
        if not self.closed:
            self.closed = True
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)

    # Reading (the event loop's thread) ---------------------------------------------------
    def submit(self, work: Callable[[], None]) -> None:
        """Run ``work`` on the loop's pool after this socket's earlier work."""
        with self._queue_lock:
            self._queue.append(work)
            if self._draining:
                return
            self._draining = True
        reactor().work.submit(self._drain)

    def _drain(self) -> None:
        while True:
            with self._queue_lock:
                if not self._queue:
                    self._draining = False
                    return
                work = self._queue.popleft()
            try:
                work()
            except Exception:  # one bad frame must not stop the socket's queue
                log.exception("realtime: handling a frame failed")

    def on_readable(self) -> bool:
        """Read what arrived; False once the socket is done (closed by either side)."""
        from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError, TimeoutError):
            return True
        except OSError:
            return False
        if not data:
            return False
        self._last_seen = time.monotonic()
        with self._send_lock:
            try:
                self.ws.receive_data(data)
                events = list(self.ws.events())
            except Exception as exc:  # a protocol error from the client
                log.info("realtime: bad websocket data (%s)", exc)
                self._abort()
                return False
        for event in events:
            if isinstance(event, Ping):
                self._write(event.response())
            elif isinstance(event, CloseConnection):
                with contextlib.suppress(Exception):
                    self._write(event.response())
                return False
            elif isinstance(event, TextMessage | BytesMessage):
                self._parts.append(event.data)
                self._size += len(event.data)
                if self._size > MAX_MESSAGE_BYTES:
                    self.submit(lambda: self.close(1009, "message too big"))
                    return True
                if event.message_finished:
                    text = isinstance(event, TextMessage)
                    frame = "".join(self._parts) if text else b"".join(self._parts)
                    self._parts, self._size = [], 0
                    self.submit(lambda frame=frame: self._frame(frame))  # type: ignore[misc]
        return True

    def due(self, now: float) -> bool:
        """Whether ``tick`` has something to do (checked by the loop once a second)."""
        if now - self._last_seen > HEARTBEAT_TIMEOUT_S:
            return True
        wall = time.time()
        try:
            channels = list(self.channels.values())
        except RuntimeError:  # changed meanwhile on the pool: look again next second
            return False
        return any((exp := c.caller.expires_at) is not None and wall >= exp for c in channels)

    def tick(self) -> None:
        """End a silent socket, and channels whose token has expired."""
        now = time.time()
        if time.monotonic() - self._last_seen > HEARTBEAT_TIMEOUT_S:
            self.close(1000, "heartbeat timeout")
            return
        for channel in list(self.channels.values()):
            exp = channel.caller.expires_at
            if exp is not None and now >= exp:
                self._shutdown(channel, f"Token has expired {int(now - exp)} seconds ago")

    def finish(self) -> None:
        """The socket is done: leave every channel, close it (on the pool, after its frames)."""
        with _open_lock:
            _open.discard(self)
        for channel in list(self.channels.values()):
            self.api.hub.unsubscribe(channel)
        self.channels.clear()
        with self._send_lock:
            self._abort()
        with contextlib.suppress(OSError):
            self.sock.close()
        self.done.set()

    def _frame(self, frame: str | bytes) -> None:
        try:
            decoded = wire.decode(frame, self.vsn)
        except (wire.ProtocolError, UnicodeDecodeError) as exc:
            log.info("realtime: bad frame (%s)", exc)
            self.close(1007, "invalid message")
            return
        if isinstance(decoded, wire.BroadcastPush):
            channel = self.channels.get(decoded.broadcast.topic)
            if channel is None:
                msg = wire.Message(
                    decoded.broadcast.topic, "broadcast", {}, decoded.ref, decoded.join_ref
                )
                self.send(wire.reply(msg, "error", UNMATCHED))
                return
            push = wire.Message(channel.topic, "broadcast", {}, decoded.ref, decoded.join_ref)
            self._broadcast(channel, push, decoded.broadcast)
            return
        self._message(decoded)

    # Messages ---------------------------------------------------------------------------
    def _message(self, msg: wire.Message) -> None:
        if msg.topic == "phoenix":
            if msg.event == "heartbeat":
                self.send(wire.reply(msg, "ok", {}))
            return
        if msg.event == "phx_join":
            self._join(msg)
            return
        channel = self.channels.get(msg.topic)
        if channel is None:
            self.send(wire.reply(msg, "error", UNMATCHED))
            return
        if msg.event == "phx_leave":
            self.send(wire.reply(msg, "ok", {}))
            self._end(channel)
        elif msg.event == "access_token":
            self._refresh(channel, msg.payload if isinstance(msg.payload, dict) else {})
        elif msg.event == "broadcast":
            payload = msg.payload if isinstance(msg.payload, dict) else {}
            event = payload.get("event")
            if not isinstance(event, str):
                return
            body = json.dumps(payload.get("payload", {})).encode()
            self._broadcast(channel, msg, wire.Broadcast(channel.topic, event, body))
        elif msg.event == "presence":
            self.send(wire.reply(msg, "error", {"reason": PRESENCE_LOCALLY}))
        # anything else: ignored, as Realtime does ("Unexpected message from client")

    def _join(self, msg: wire.Message) -> None:
        if not msg.topic.startswith("realtime:"):
            self.send(wire.reply(msg, "error", UNMATCHED))
            return
        if msg.topic == "realtime:":
            self.send(
                wire.reply(
                    msg, "error", {"reason": "TopicNameRequired: You must provide a topic name"}
                )
            )
            return
        if (previous := self.channels.get(msg.topic)) is not None:
            self._end(previous)  # Phoenix closes the old channel when a topic is joined again
        if len(self.channels) >= MAX_CHANNELS:
            self.send(
                wire.reply(msg, "error", {"reason": "ChannelRateLimitReached: Too many channels"})
            )
            return
        params = _object(msg.payload)
        config = _object(params.get("config"))
        broadcast, presence = _object(config.get("broadcast")), _object(config.get("presence"))
        changes = config.get("postgres_changes")
        changes = changes if isinstance(changes, list) else []
        token = params.get("access_token") or params.get("user_token") or self.api_key
        if not isinstance(token, str) or token.startswith("sb_"):
            token = self.api_key
        try:
            caller = verify(token)
        except Refused as exc:
            self.send(wire.reply(msg, "error", {"reason": exc.reason}))
            return
        channel = Channel(
            self,
            msg.topic,
            msg.join_ref or msg.ref,
            _flag(config.get("private")),
            caller,
            self_broadcast=_flag(broadcast.get("self")),
            ack=_flag(broadcast.get("ack")),
        )
        presence_on = _flag(presence.get("enabled"))
        try:
            if channel.private:
                readable = self.api.authorizer.can_read(
                    caller,
                    channel.sub_topic,
                    ("broadcast", "presence") if presence_on else ("broadcast",),
                )
                if not readable:
                    raise Refused(
                        "Unauthorized",
                        CANNOT_READ.format(channel.sub_topic),
                    )
                channel.reads_broadcast = "broadcast" in readable
            self.api.hub.subscribe(channel)
        except Refused as exc:
            self.send(wire.reply(msg, "error", {"reason": exc.reason}))
            return
        except (Unavailable, ConnectionError):
            self.send(wire.reply(msg, "error", {"reason": NO_DATABASE}))
            return
        self.channels[msg.topic] = channel
        bindings = [c for c in changes if isinstance(c, dict)]
        if not bindings:
            self.send(wire.reply(msg, "ok", {"postgres_changes": []}))
        else:
            # As Realtime: the reply lists the bindings with their ids, then a system
            # message says whether the subscription took ("Subscribed to PostgreSQL").
            answer, status, message = self.api.hub.changes.subscribe(channel, bindings)
            self.send(wire.reply(msg, "ok", {"postgres_changes": answer}))
            self.system(channel, "postgres_changes", status, message)
        if presence_on:
            self.system(channel, "presence", "error", PRESENCE_LOCALLY)

    def _refresh(self, channel: Channel, payload: dict[str, Any]) -> None:
        """``access_token``: a new token for the channel, and its policies checked again."""
        token = payload.get("access_token")
        if not isinstance(token, str) or token.startswith("sb_") or token == channel.caller.token:
            return
        try:
            caller = verify(token)
            if channel.private:
                readable = self.api.authorizer.can_read(caller, channel.sub_topic, ("broadcast",))
                if channel.reads_broadcast and "broadcast" not in readable:
                    raise Refused(
                        "Unauthorized",
                        NO_LONGER_READS.format(channel.sub_topic),
                    )
        except Refused as exc:
            self._shutdown(channel, exc.message)
            return
        except Unavailable:
            self._shutdown(channel, "Realtime was unable to connect to the project database")
            return
        channel.caller, channel.may_write = caller, None

    def _broadcast(self, channel: Channel, push: wire.Message, broadcast: wire.Broadcast) -> None:
        if channel.private:
            if channel.may_write is None:
                try:
                    channel.may_write = self.api.authorizer.can_write(
                        channel.caller, channel.sub_topic
                    )
                except Unavailable:
                    return
            if not channel.may_write:
                return  # as Realtime: dropped, and no ack
        self.api.hub.relay(channel, broadcast)
        if channel.ack:
            self.send(wire.reply(push, "ok", {}))

    def _shutdown(self, channel: Channel, message: str) -> None:
        """End a channel with a ``system`` error, as Realtime's shutdown_response."""
        self.system(channel, "system", "error", message)
        self._end(channel)

    def _end(self, channel: Channel) -> None:
        """Leave a channel and tell the client (``phx_close``)."""
        self.channels.pop(channel.topic, None)
        self.api.hub.unsubscribe(channel)
        self.send(wire.Message(channel.topic, "phx_close", {}, channel.join_ref, channel.join_ref))


def _object(value: Any) -> dict[str, Any]:
    """A JSON object from a client, or {} for anything else."""
    return value if isinstance(value, dict) else {}


def _flag(value: Any) -> bool:
    """Realtime's FlexibleBoolean: true/false, or "true"/"false"."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


# The HTTP side ----------------------------------------------------------------------------
def _json(start_response: Any, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


class RealtimeApi:
    """The WSGI app mounted at ``/realtime/v1``."""

    def __init__(self, dsn: str | None = None) -> None:
        from videogen.config import get_settings

        pool = LazyPool("videogen-realtime", dsn, max_size=4)
        self.authorizer = Authorizer(pool)
        changes_pool = LazyPool("videogen-realtime-changes", dsn, max_size=2)
        changes = ChangeHub(changes_pool, Authorizer.become)
        self.hub = Hub(lambda: dsn or get_settings().database_url, changes)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        from wsproto.utilities import generate_accept_token

        if (environ.get("PATH_INFO") or "/").rstrip("/") != "/websocket":
            return _json(start_response, "404 Not Found", {"error": "Not Found"})
        upgrade = environ.get("HTTP_UPGRADE", "").lower() == "websocket"
        key = environ.get("HTTP_SEC_WEBSOCKET_KEY", "")
        if environ.get("REQUEST_METHOD") != "GET" or not upgrade or not key:
            return _json(
                start_response,
                "400 Bad Request",
                {"error": "This endpoint only accepts websocket upgrades"},
            )
        if environ.get("HTTP_SEC_WEBSOCKET_VERSION") != "13":
            return _json(
                start_response, "426 Upgrade Required", {"error": "WebSocket version 13 only"}
            )
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        vsn = query.get("vsn", wire.VSN_1)
        if vsn not in wire.VERSIONS:
            return _json(start_response, "400 Bad Request", {"error": f"Unsupported vsn {vsn!r}"})
        api_key = environ.get("HTTP_X_API_KEY") or query.get("apikey", "")
        try:
            verify(api_key, as_api_key=True)
        except Refused as exc:
            message = "API key is missing" if exc.code == "MissingAPIKey" else exc.message
            return _json(start_response, "401 Unauthorized", {"error": message})
        sock = environ.get("gunicorn.socket")
        if sock is None:
            return _json(
                start_response,
                "501 Not Implemented",
                {"error": "websockets need the dev server's gunicorn (videogen serve)"},
            )
        write = start_response(
            "101 Switching Protocols",
            [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", generate_accept_token(key.encode()).decode()),
            ],
        )
        write(b"")  # gunicorn sends the 101 now
        sock.settimeout(SEND_TIMEOUT_S)  # for writes; reads wait in the event loop
        connection = Connection(sock, vsn, api_key, self)
        if _handoff:
            # The dev server's worker lets go of the socket (no keep-alive, no close): the
            # event loop owns it from here, and this request thread is free again.
            with _taken_lock:
                _taken.add(sock)
            force_close = getattr(getattr(start_response, "__self__", None), "force_close", None)
            if callable(force_close):
                force_close()
            reactor().adopt(connection)
        else:  # another server: the loop reads it, this thread waits for the end
            reactor().adopt(connection)
            connection.done.wait()
        return []


def create_app(dsn: str | None = None) -> RealtimeApi:
    """The local Realtime API (mounted by the dev server at ``/realtime/v1``)."""
    return RealtimeApi(dsn)
