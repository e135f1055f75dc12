"""The local Realtime's pure parts for postgres_changes: a join's binding parsed as Realtime
parses it (Extensions.PostgresCdcRls.Subscriptions.parse_subscription_params), and pgoutput
messages decoded into row changes (PostgreSQL's "Logical Replication Message Formats")."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest
from videogen_dev.realtime_changes import BadParams, Filter, Params, parse_params
from videogen_dev.realtime_replication import UNCHANGED, Decoding, parse


@pytest.mark.parametrize(
    ("binding", "parsed"),
    [
        (
            {"event": "*", "schema": "public", "table": "profiles", "filter": "id=eq.7"},
            Params("*", "public", "profiles", (Filter("id", "eq", "7"),)),
        ),
        (
            {"event": "update", "schema": "public", "table": "jobs", "filter": "status=in.(a,b)"},
            Params("UPDATE", "public", "jobs", (Filter("status", "in", ("a", "b")),)),
        ),
        (
            {"event": "INSERT", "schema": "public", "table": "t", "filter": "id=gt.0,id=lt.100"},
            Params("INSERT", "public", "t", (Filter("id", "gt", "0"), Filter("id", "lt", "100"))),
        ),
        ({"event": "*", "table": "jobs"}, Params("*", "public", "jobs")),
        ({"event": "*", "schema": "public"}, Params("*", "public", "*")),
        ({"event": "nonsense", "schema": "s", "table": "t", "filter": " "}, Params("*", "s", "t")),
    ],
)
def test_bindings_parse_as_realtime_parses_them(binding: dict, parsed: Params) -> None:
    assert parse_params(binding) == parsed


@pytest.mark.parametrize(
    "binding",
    [
        {"event": "*", "schema": "public", "table": "t", "filter": "undefined"},
        {"event": "*", "schema": "public", "table": "t", "filter": "title=like.a%"},
        {"event": "*", "schema": "public", "table": "t", "filter": "id=not.eq.1"},
        {"event": "*", "schema": "public", "table": "t", "filter": "id=in.1,2"},
        {"event": "*"},
    ],
)
def test_bindings_realtime_refuses(binding: dict) -> None:
    with pytest.raises(BadParams):
        parse_params(binding)


def _relation(relid: int) -> bytes:
    columns = [(1, "id", 23), (0, "body", 25)]
    out = b"R" + struct.pack("!I", relid) + b"public\0notes\0" + b"d" + struct.pack("!h", 2)
    for flags, name, oid in columns:
        out += struct.pack("!b", flags) + name.encode() + b"\0" + struct.pack("!Ii", oid, -1)
    return out


def _tuple(*values: bytes | object | None) -> bytes:
    out = struct.pack("!h", len(values))
    for value in values:
        if value is None:
            out += b"n"
        elif value is UNCHANGED:
            out += b"u"
        else:
            assert isinstance(value, bytes)
            out += b"t" + struct.pack("!i", len(value)) + value
    return out


def test_pgoutput_changes_decode_with_their_commit_time() -> None:
    state = Decoding()
    micros = 851_000_000_123_456  # microseconds since 2000-01-01
    assert parse(b"B" + struct.pack("!QqI", 1, micros, 7), state) is None
    assert parse(_relation(42), state) is None
    inserted = parse(b"I" + struct.pack("!I", 42) + b"N" + _tuple(b"1", b"hi"), state)
    assert inserted is not None
    assert (inserted.action, inserted.new, inserted.old) == (
        "INSERT",
        {"id": "1", "body": "hi"},
        None,
    )
    assert inserted.relation.type_oids == (23, 25)
    assert inserted.committed_at == datetime(2026, 12, 19, 12, 53, 20, 123456, tzinfo=UTC)

    # An UPDATE that kept its key has no old tuple; one whose key changed sends it ('K').
    kept = parse(b"U" + struct.pack("!I", 42) + b"N" + _tuple(b"1", UNCHANGED), state)
    assert kept is not None and kept.old is None and kept.new == {"id": "1", "body": UNCHANGED}
    moved = parse(
        b"U" + struct.pack("!I", 42) + b"K" + _tuple(b"1", None) + b"N" + _tuple(b"2", b"x"),
        state,
    )
    assert moved is not None and (moved.old, moved.new) == (
        {"id": "1", "body": None},
        {"id": "2", "body": "x"},
    )
    deleted = parse(b"D" + struct.pack("!I", 42) + b"K" + _tuple(b"2", None), state)
    assert deleted is not None
    assert (deleted.action, deleted.new, deleted.old) == ("DELETE", None, {"id": "2", "body": None})
    # A change of a table never described (no Relation yet) is skipped.
    assert parse(b"I" + struct.pack("!I", 99) + b"N" + _tuple(b"1", b"x"), state) is None
