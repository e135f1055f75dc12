"""The Phoenix channel wire formats Supabase Realtime speaks, as pure functions.

``vsn=1.0.0`` (supabase-py's ``realtime``): every frame is a JSON object
``{topic, event, payload, ref, join_ref}``. ``vsn=2.0.0`` (realtime-js): text frames are
JSON arrays ``[join_ref, ref, topic, event, payload]``, and user broadcasts travel as
binary frames (RealtimeWeb.Socket.V2Serializer): a client pushes kind 3
(``user_broadcast_push``) and the server delivers kind 4 (``user_broadcast``), each a
header of one-byte lengths followed by the fields and the payload (JSON or raw bytes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

VSN_1 = "1.0.0"
VSN_2 = "2.0.0"
VERSIONS = (VSN_1, VSN_2)

USER_BROADCAST_PUSH = 3  # client → server
USER_BROADCAST = 4  # server → client
BINARY_ENCODING = 0
JSON_ENCODING = 1


class ProtocolError(ValueError):
    """A frame that is not a message of the negotiated version."""


@dataclass
class Message:
    """One Phoenix message."""

    topic: str
    event: str
    payload: Any = field(default_factory=dict)
    ref: str | None = None
    join_ref: str | None = None


@dataclass(frozen=True)
class Broadcast:
    """A user broadcast: ``event`` and its payload (JSON text or raw bytes) on ``topic``."""

    topic: str
    event: str
    body: bytes
    encoding: int = JSON_ENCODING
    meta: dict[str, Any] | None = None

    def json_payload(self) -> dict[str, Any]:
        """What a JSON client receives as the ``broadcast`` message's payload."""
        if self.encoding != JSON_ENCODING:
            raise ProtocolError("a binary broadcast has no JSON form")
        out: dict[str, Any] = {
            "type": "broadcast",
            "event": self.event,
            "payload": json.loads(self.body),
        }
        if self.meta:
            out["meta"] = self.meta
        return out


@dataclass(frozen=True)
class BroadcastPush:
    """A client's binary broadcast (kind 3) and the refs a reply goes to."""

    broadcast: Broadcast
    ref: str | None
    join_ref: str | None


def decode(data: str | bytes, vsn: str) -> Message | BroadcastPush:
    """A frame from a client: a message, or (``vsn`` 2, binary) a user broadcast push."""
    if isinstance(data, bytes):
        if vsn != VSN_2:
            raise ProtocolError("binary frames need vsn=2.0.0")
        return _decode_user_broadcast_push(data)
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise ProtocolError("a text frame must be JSON") from exc
    if vsn == VSN_2:
        if not isinstance(raw, list) or len(raw) < 5:
            raise ProtocolError("expected a V2 array [join_ref, ref, topic, event, payload]")
        join_ref, ref, topic, event, payload = raw[:5]
    else:
        if not isinstance(raw, dict):
            raise ProtocolError("expected a V1 object {topic, event, payload, ref}")
        join_ref, ref = raw.get("join_ref"), raw.get("ref")
        topic, event, payload = raw.get("topic"), raw.get("event"), raw.get("payload")
    if not isinstance(topic, str) or not isinstance(event, str):
        raise ProtocolError("topic and event must be strings")
    return Message(topic, event, payload if payload is not None else {}, _ref(ref), _ref(join_ref))


def _ref(value: Any) -> str | None:
    return None if value is None else str(value)


def _decode_user_broadcast_push(data: bytes) -> BroadcastPush:
    """Kind 3: kind, five lengths, encoding, join_ref, ref, topic, event, metadata, payload."""
    if len(data) < 7 or data[0] != USER_BROADCAST_PUSH:
        raise ProtocolError("unknown binary frame kind")
    join_ref_len, ref_len, topic_len, event_len, meta_len, encoding = data[1:7]
    offset = 7
    fields = []
    for size in (join_ref_len, ref_len, topic_len, event_len, meta_len):
        if offset + size > len(data):
            raise ProtocolError("binary frame shorter than its header says")
        fields.append(data[offset : offset + size].decode())
        offset += size
    join_ref, ref, topic, event, meta = fields
    body = data[offset:]
    if encoding not in (BINARY_ENCODING, JSON_ENCODING):
        raise ProtocolError("unknown payload encoding")
    try:
        if meta:
            json.loads(meta)  # client hints such as "persist": read, not delivered
        if encoding == JSON_ENCODING:
            json.loads(body)
    except ValueError as exc:
        raise ProtocolError("a JSON user broadcast must carry JSON") from exc
    return BroadcastPush(Broadcast(topic, event, body, encoding), ref or None, join_ref or None)


def encode(message: Message, vsn: str) -> str:
    """A message as a text frame of ``vsn``."""
    if vsn == VSN_2:
        return json.dumps(
            [message.join_ref, message.ref, message.topic, message.event, message.payload]
        )
    return json.dumps(
        {
            "topic": message.topic,
            "event": message.event,
            "payload": message.payload,
            "ref": message.ref,
            "join_ref": message.join_ref,
        }
    )


def encode_broadcast(broadcast: Broadcast, vsn: str) -> str | bytes:
    """A user broadcast as the server delivers it: kind 4 binary (V2) or a JSON message (V1)."""
    if vsn != VSN_2:
        return encode(Message(broadcast.topic, "broadcast", broadcast.json_payload()), vsn)
    topic, event = broadcast.topic.encode(), broadcast.event.encode()
    meta = json.dumps(broadcast.meta).encode() if broadcast.meta else b""
    for name, value in (("topic", topic), ("event", event), ("metadata", meta)):
        if len(value) > 255:
            raise ProtocolError(f"{name} longer than 255 bytes")
    header = bytes([USER_BROADCAST, len(topic), len(event), len(meta), broadcast.encoding])
    return header + topic + event + meta + broadcast.body


def reply(message: Message, status: str, response: dict[str, Any]) -> Message:
    """The ``phx_reply`` to ``message``."""
    return Message(
        message.topic,
        "phx_reply",
        {"status": status, "response": response},
        message.ref,
        message.join_ref,
    )
