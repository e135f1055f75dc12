"""The local Realtime at /realtime/v1/websocket, with supabase-py's own `realtime` client
(vsn 1.0.0) and, for the wire details realtime-js relies on (vsn 2.0.0: arrays, binary
broadcasts), a plain websocket client speaking the protocol by hand."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from realtime import AsyncRealtimeClient, RealtimeSubscribeStates
from serverkit import wait_until
from supabase_auth import SyncGoTrueClient
from videogen_dev import migrations
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from videogen.config import LOCAL_PUBLISHABLE_KEY
from videogen.kit.auth import issue_access_token

Api = Any  # tests/functions/conftest.py's Api


def ws_url(to: Any, vsn: str = "2.0.0", key: str | None = LOCAL_PUBLISHABLE_KEY) -> str:
    """The websocket URL of a server (or an Api's server), as realtime-js builds it."""
    base = getattr(to, "server", to).base.replace("http://", "ws://")
    query = f"vsn={vsn}" + (f"&apikey={key}" if key else "")
    return f"{base}/realtime/v1/websocket?{query}"


def signed_in(api: Api, credits: int = 0) -> tuple[str, str]:
    """An anonymous user signed in through the local Auth API: (user id, access token)."""
    auth = SyncGoTrueClient(
        url=f"{api.server.base}/auth/v1", headers={"apikey": LOCAL_PUBLISHABLE_KEY}
    )
    try:
        session = auth.sign_in_anonymously().session
    finally:
        auth._http_client.close()
    assert session is not None
    if credits:
        api.sql(
            "select service.credits_grant(%s, %s, %s)",
            [session.user.id, credits, f"test-{uuid.uuid4().hex}"],
        )
    return session.user.id, session.access_token


def same_instants(event: dict[str, Any]) -> dict[str, Any]:
    """An event with its timestamp as an instant (JSON from SQL says +00:00, the API Z)."""
    return {**event, "created_at": datetime.fromisoformat(event["created_at"])}


def api_rows(api: Api, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(api.server.db_url) as conn:
        return conn.execute(query, params).fetchall()


def report(api: Api, job: dict[str, Any], kind: str, **fields: Any) -> Any:
    body = {"type": kind, "job_id": job["id"], "attempt": job["attempt"], **fields}
    return api.ok(api.signed("job-callback", body))


# supabase-py ------------------------------------------------------------------------------


async def _follow_job(api: Api) -> tuple[str, list[dict[str, Any]], dict[str, Any], str]:
    user_id, token = signed_in(api, credits=100)
    client = AsyncRealtimeClient(
        f"{api.server.base}/realtime/v1", LOCAL_PUBLISHABLE_KEY, auto_reconnect=False
    )
    await client.set_auth(token)
    received: list[dict[str, Any]] = []
    states: list[str] = []
    done = asyncio.Event()

    def on_event(message: dict[str, Any]) -> None:
        received.append(message)
        if message["event"] == "job_completed":
            done.set()

    channel = client.channel(f"user:{user_id}:jobs", {"config": {"private": True}})
    channel.on_broadcast("*", on_event)
    await channel.subscribe(lambda state, _err: states.append(state))
    assert states == [RealtimeSubscribeStates.SUBSCRIBED]

    model = api.test_model()
    worker = api.pull_worker(model)
    headers = {"Authorization": f"Bearer {token}"}
    created = api.ok(api.post("queue-job", headers=headers, json={"model": model}), 202)
    claim = {"action": "claim", "worker_id": worker, "limit": 1}
    [leased] = api.ok(api.signed("health-check-workers", claim))
    job = {"id": created["id"], "attempt": leased["attempt"]}
    report(api, job, "started")
    for percent in (25, 50, 75):
        report(api, job, "progress", progress=percent)
    video = f"{user_id}/{job['id']}.mp4"
    api.put_object("videos", video, b"\x00\x00\x00\x18ftypmp42", "video/mp4")
    report(api, job, "completed", output={"video_path": video}, credits_used=5)
    await asyncio.wait_for(done.wait(), 10)
    await client.close()
    seen = api.ok(api.get("queue-job", headers=headers, params={"id": job["id"]}))
    return user_id, received, seen, token


def test_supabase_py_follows_its_job_over_realtime_in_order(api: Api) -> None:
    user_id, received, seen, _ = asyncio.run(_follow_job(api))
    # Every change arrived, in order, each payload exactly the event GET ?id= lists.
    assert [m["event"] for m in received] == [f"job_{e['event']}" for e in seen["events"]]
    assert [same_instants(m["payload"]) for m in received] == [
        same_instants(e) for e in seen["events"]
    ]
    assert [e["status"] for e in seen["events"]][-1] == "completed"
    assert [e["progress"] for e in seen["events"] if e["event"] == "progress"] == [25, 50, 75]
    # meta.id is the realtime.messages row's id (what broadcast replay deduplicates by).
    ids = {
        str(r[0])
        for r in api_rows(
            api, "select id from realtime.messages where topic = %s", f"user:{user_id}:jobs"
        )
    }
    assert {m["meta"]["id"] for m in received} == ids


def test_supabase_py_join_of_another_users_topic_is_refused(api: Api) -> None:
    async def attempt() -> tuple[list[Any], list[Any]]:
        owner, _ = signed_in(api)
        _, intruder = signed_in(api)
        client = AsyncRealtimeClient(
            f"{api.server.base}/realtime/v1", LOCAL_PUBLISHABLE_KEY, auto_reconnect=False
        )
        await client.set_auth(intruder)
        states: list[Any] = []
        channel = client.channel(f"user:{owner}:jobs", {"config": {"private": True}})
        await channel.subscribe(lambda state, err: states.append((state, str(err))))
        await client.close()
        return states, [owner]

    states, [owner] = asyncio.run(attempt())
    [(state, error)] = states
    assert state == RealtimeSubscribeStates.CHANNEL_ERROR
    refusal = "Unauthorized: You do not have permissions to read from this Channel topic: "
    assert refusal + f"user:{owner}:jobs" in error


# The wire, by hand (vsn 2.0.0 as realtime-js speaks it) -----------------------------------


class Wire:
    """A websocket speaking Phoenix V2 by hand."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws, self.ref = ws, 0

    def push(self, topic: str, event: str, payload: Any, join_ref: str | None = None) -> str:
        self.ref += 1
        self.ws.send(json.dumps([join_ref, str(self.ref), topic, event, payload]))
        return str(self.ref)

    def join(self, topic: str, token: str | None = None, **config: Any) -> tuple[str, Any]:
        payload: dict[str, Any] = {"config": {"broadcast": {}, "presence": {}, **config}}
        if token:
            payload["access_token"] = token
        ref = self.push(topic, "phx_join", payload, join_ref=str(self.ref + 1))
        return ref, self.reply(ref)

    def next(self, timeout: float = 5.0) -> Any:
        frame = self.ws.recv(timeout=timeout)
        return frame if isinstance(frame, bytes) else json.loads(frame)

    def reply(self, ref: str) -> Any:
        while True:
            frame = self.next()
            if isinstance(frame, list) and frame[3] == "phx_reply" and frame[1] == ref:
                return frame[4]

    def until(self, event: str) -> Any:
        while True:
            frame = self.next()
            if isinstance(frame, list) and frame[3] == event:
                return frame


@pytest.fixture
def wire(api: Api) -> Iterator[Wire]:
    with connect(ws_url(api), open_timeout=10) as ws:
        yield Wire(ws)


def user_broadcast_push(join_ref: str, ref: str, topic: str, event: str, payload: Any) -> bytes:
    """What realtime-js sends for channel.send({type: 'broadcast', …}) on vsn 2 (kind 3)."""
    fields = [join_ref.encode(), ref.encode(), topic.encode(), event.encode(), b""]
    body = json.dumps(payload).encode()
    return bytes([3, *(len(f) for f in fields), 1]) + b"".join(fields) + body


def decode_user_broadcast(frame: bytes) -> tuple[str, str, Any, Any]:
    """A kind-4 frame as realtime-js decodes it: (topic, event, meta, payload)."""
    assert frame[0] == 4
    topic_len, event_len, meta_len, encoding = frame[1:5]
    at = 5
    topic = frame[at : at + topic_len].decode()
    at += topic_len
    event = frame[at : at + event_len].decode()
    at += event_len
    meta = json.loads(frame[at : at + meta_len]) if meta_len else None
    at += meta_len
    assert encoding == 1
    return topic, event, meta, json.loads(frame[at:])


def test_heartbeat_and_unmatched_topics(wire: Wire) -> None:
    ref = wire.push("phoenix", "heartbeat", {})
    assert wire.reply(ref) == {"status": "ok", "response": {}}
    ref = wire.push("realtime:nowhere", "broadcast", {"type": "broadcast", "event": "x"})
    assert wire.reply(ref) == {"status": "error", "response": {"reason": "unmatched topic"}}
    _, answer = wire.join("realtime:")
    assert answer["response"]["reason"] == "TopicNameRequired: You must provide a topic name"


def test_public_channel_relays_binary_broadcasts_with_self_and_ack(wire: Wire, api: Api) -> None:
    topic = f"realtime:room-{uuid.uuid4().hex[:8]}"
    ref, answer = wire.join(topic, broadcast={"self": True, "ack": True})
    assert answer == {"status": "ok", "response": {"postgres_changes": []}}
    with connect(ws_url(api), open_timeout=10) as other_ws:
        other = Wire(other_ws)
        assert other.join(topic)[1]["status"] == "ok"
        wire.ws.send(user_broadcast_push(ref, "99", topic, "wave", {"n": 1}))
        relayed = (topic, "wave", None, {"n": 1})
        # self: true → the sender hears itself, then gets the ack (Realtime's order).
        assert decode_user_broadcast(wire.next()) == relayed
        assert wire.next() == [ref, "99", topic, "phx_reply", {"status": "ok", "response": {}}]
        assert decode_user_broadcast(other.next()) == relayed


def test_leave_replies_then_closes(wire: Wire) -> None:
    topic = f"realtime:room-{uuid.uuid4().hex[:8]}"
    join_ref, _ = wire.join(topic)
    ref = wire.push(topic, "phx_leave", {}, join_ref=join_ref)
    assert wire.reply(ref) == {"status": "ok", "response": {}}
    assert wire.until("phx_close")[:3] == [join_ref, join_ref, topic]
    ref = wire.push(topic, "broadcast", {"type": "broadcast", "event": "x", "payload": {}})
    assert wire.reply(ref)["status"] == "error"  # no longer joined


def changes_until(wire: Wire, done: Any) -> list[dict[str, Any]]:
    """The ``postgres_changes`` payloads a socket receives, up to the one ``done`` accepts."""
    seen: list[dict[str, Any]] = []
    while True:
        frame = wire.next(timeout=10)
        if isinstance(frame, list) and frame[3] == "postgres_changes":
            seen.append(frame[4])
            if done(frame[4]):
                return seen


def grant(api: Api, user_id: str, amount: int) -> None:
    api.sql(
        "select service.credits_grant(%s, %s, %s)",
        [user_id, amount, f"test-{uuid.uuid4().hex}"],
    )


def test_postgres_changes_filters_events_and_rls(wire: Wire, api: Api) -> None:
    owner, token = signed_in(api)
    stranger, _ = signed_in(api)
    topic = f"realtime:projects-{uuid.uuid4().hex[:8]}"
    bindings = [
        {
            "event": "INSERT",
            "schema": "public",
            "table": "projects",
            "filter": f"user_id=eq.{owner}",
        },
        {"event": "*", "schema": "public", "table": "projects", "filter": "title=in.(alpha,gamma)"},
        {"event": "UPDATE", "schema": "public", "table": "projects", "filter": "title=neq.alpha"},
        {"event": "DELETE", "schema": "public", "table": "projects"},
    ]
    _, answer = wire.join(topic, token, postgres_changes=bindings)
    # The reply lists the bindings with their ids (what realtime-js matches), then a
    # system message says the subscription took.
    assert answer["status"] == "ok"
    listed = answer["response"]["postgres_changes"]
    assert [{k: v for k, v in b.items() if k != "id"} for b in listed] == bindings
    ids = [b["id"] for b in listed]
    assert len(set(ids)) == 4
    system = wire.until("system")[4]
    assert system == {
        "extension": "postgres_changes",
        "status": "ok",
        "message": "Subscribed to PostgreSQL",
        "channel": topic.removeprefix("realtime:"),
    }

    def project(user: str, title: str) -> str:
        return str(
            api.sql(
                "insert into public.projects (user_id, title) values (%s, %s) returning id",
                [user, title],
            )
        )

    alpha = project(owner, "alpha")
    beta = project(owner, "beta")
    gamma = project(stranger, "gamma")  # RLS: the owner cannot select it, so no INSERT
    api.sql("update public.projects set title = 'delta' where id = %s", [alpha])
    # RLS is checked against the row as it is when the change is dispatched (Realtime
    # selects it by its key): it must still exist then.
    seen = changes_until(wire, lambda p: p["data"]["type"] == "UPDATE")
    api.sql("delete from public.projects where id = %s", [alpha])
    api.sql("delete from public.projects where id = %s", [gamma])  # no RLS on deletes
    end = project(owner, "end")
    seen += changes_until(
        wire, lambda p: p["data"]["type"] == "INSERT" and p["data"]["record"]["id"] == end
    )
    b_owner, b_in, b_neq, b_delete = ids
    summary = [
        (
            p["data"]["type"],
            (p["data"].get("record") or p["data"].get("old_record") or {}).get("id"),
            sorted(p["ids"]),
        )
        for p in seen
    ]
    assert summary == [
        ("INSERT", alpha, sorted([b_owner, b_in])),
        ("INSERT", beta, [b_owner]),
        ("UPDATE", alpha, [b_neq]),  # the new title (delta) is not in (alpha, gamma)
        # A DELETE carries only the key: a filter on another column passes (NULL passes).
        ("DELETE", alpha, sorted([b_in, b_delete])),
        ("DELETE", gamma, sorted([b_in, b_delete])),
        ("INSERT", end, [b_owner]),
    ]
    insert, update, delete = seen[0]["data"], seen[2]["data"], seen[3]["data"]
    assert insert["schema"] == "public" and insert["table"] == "projects"
    assert insert["errors"] is None
    assert insert["record"]["title"] == "alpha" and insert["record"]["user_id"] == owner
    assert {"name": "id", "type": "uuid"} in insert["columns"]
    assert datetime.fromisoformat(insert["commit_timestamp"]).tzinfo is not None
    assert insert["commit_timestamp"].endswith("Z")
    assert update["record"]["title"] == "delta" and update["old_record"] == {"id": alpha}
    assert delete["old_record"] == {"id": alpha} and "record" not in delete
    assert not any(p["data"].get("record", {}).get("id") == gamma for p in seen)


def test_postgres_changes_on_profiles_compare_in_the_column_type(wire: Wire, api: Api) -> None:
    owner, token = signed_in(api)
    topic = f"realtime:balance-{uuid.uuid4().hex[:8]}"
    low = {"event": "UPDATE", "schema": "public", "table": "profiles", "filter": "balance=lt.50"}
    high = {"event": "UPDATE", "schema": "public", "table": "profiles", "filter": "balance=gte.50"}
    _, answer = wire.join(topic, token, postgres_changes=[low, high])
    low_id, high_id = (b["id"] for b in answer["response"]["postgres_changes"])
    assert wire.until("system")[4]["status"] == "ok"
    grant(api, owner, 9)  # 9 < 50 (as text, "9" > "50": the comparison is numeric)
    grant(api, owner, 100)
    seen = changes_until(wire, lambda p: p["data"]["record"]["balance"] >= 100)
    assert [(p["ids"], p["data"]["record"]["balance"]) for p in seen] == [
        ([low_id], 9),
        ([high_id], 109),
    ]
    assert seen[1]["data"]["old_record"] == {"id": owner}


def test_postgres_changes_without_select_rights_carry_an_error_and_no_row(
    wire: Wire, api: Api
) -> None:
    owner, _ = signed_in(api)
    topic = f"realtime:anon-{uuid.uuid4().hex[:8]}"
    binding = {"event": "UPDATE", "schema": "public", "table": "profiles"}
    _, answer = wire.join(topic, postgres_changes=[binding])  # the publishable key: anon
    assert answer["status"] == "ok"
    assert wire.until("system")[4]["status"] == "ok"
    grant(api, owner, 7)
    # As apply_rls: anon may not select profiles' key, so the change comes as an error
    # with no row, no columns and no time.
    [change] = changes_until(wire, lambda p: True)
    assert change["data"] == {
        "schema": "public",
        "table": "profiles",
        "type": "UPDATE",
        "commit_timestamp": None,
        "columns": [],
        "errors": ["Error 401: Unauthorized"],
        "record": {},
        "old_record": {},
    }


@pytest.mark.parametrize(
    ("binding", "message"),
    [
        (
            {"event": "*", "schema": "public", "table": "credit_ledger"},
            "Unable to subscribe to changes with given parameters. Please check Realtime is "
            "enabled for the given connect parameters: [event: *, schema: public, "
            "table: credit_ledger, filters: []]",
        ),
        (
            {"event": "*", "schema": "public", "table": "profiles", "filter": "nope=eq.1"},
            "invalid column for filter nope",
        ),
        (
            {"event": "*", "schema": "public", "table": "profiles", "filter": "balance=eq.x"},
            "invalid input syntax for type bigint",
        ),
        (
            {"event": "*", "schema": "public", "table": "profiles", "filter": "id=like.a%"},
            "Error parsing `filter` params",
        ),
    ],
)
def test_postgres_changes_refused_as_realtime_says(
    wire: Wire, api: Api, binding: dict[str, Any], message: str
) -> None:
    _, token = signed_in(api)
    topic = f"realtime:refused-{uuid.uuid4().hex[:8]}"
    _, answer = wire.join(topic, token, postgres_changes=[binding])
    # The join itself succeeds (broadcasts work on the channel); the system message says
    # why no change will come.
    assert answer["status"] == "ok"
    [listed] = answer["response"]["postgres_changes"]
    assert isinstance(listed["id"], int)
    system = wire.until("system")[4]
    assert (system["extension"], system["status"]) == ("postgres_changes", "error")
    assert message in system["message"]
    if "filter" not in binding:
        assert system["message"] == message


async def _follow_profile(api: Api) -> tuple[str, list[Any], list[Any], list[Any]]:
    owner, token = signed_in(api)
    stranger, _ = signed_in(api)
    client = AsyncRealtimeClient(
        f"{api.server.base}/realtime/v1", LOCAL_PUBLISHABLE_KEY, auto_reconnect=False
    )
    await client.set_auth(token)
    own: list[Any] = []
    every: list[Any] = []
    systems: list[Any] = []
    states: list[Any] = []
    ready, done = asyncio.Event(), asyncio.Event()

    def on_own(payload: Any) -> None:
        own.append(payload)
        done.set()

    def on_system(payload: Any) -> None:
        systems.append(payload)
        ready.set()

    channel = client.channel(f"profile-{uuid.uuid4().hex[:8]}")
    channel.on_postgres_changes(
        "UPDATE", on_own, table="profiles", schema="public", filter=f"id=eq.{owner}"
    )
    channel.on_postgres_changes("*", every.append, table="profiles", schema="public")
    channel.on_system(on_system)
    await channel.subscribe(lambda state, _err: states.append(state))
    await asyncio.wait_for(ready.wait(), 10)
    # The stranger's change commits first: had it been sent, it would arrive first.
    grant(api, stranger, 11)
    grant(api, owner, 12)
    await asyncio.wait_for(done.wait(), 10)
    await client.close()
    return owner, own, every, [states, systems]


def test_supabase_py_receives_its_own_balance_change_and_no_one_elses(api: Api) -> None:
    owner, own, every, (states, systems) = asyncio.run(_follow_profile(api))
    assert states == [RealtimeSubscribeStates.SUBSCRIBED]
    assert [dict(s)["message"] if isinstance(s, dict) else s.message for s in systems] == [
        "Subscribed to PostgreSQL"
    ]
    [change] = own
    data = change["data"]
    assert (data["type"], data["table"], data["errors"]) == ("UPDATE", "profiles", None)
    balance = api.sql("select balance from public.profiles where id = %s", [owner])
    assert data["record"]["id"] == owner and data["record"]["balance"] == balance == 12
    # The unfiltered binding too saw only the owner's row: RLS kept the stranger's out.
    # (A profile's INSERT at sign-in may be decoded after the subscription took: it is the
    # owner's too.)
    assert {c["data"]["record"]["id"] for c in every} == {owner}
    assert [c["data"]["record"]["balance"] for c in every if c["data"]["type"] == "UPDATE"] == [12]


def test_private_join_needs_a_policy_and_a_valid_token(wire: Wire, api: Api) -> None:
    owner, token = signed_in(api)
    topic = f"realtime:user:{owner}:jobs"
    # The publishable key alone is the anon role: no policy lets anon read.
    _, answer = wire.join(topic, private=True)
    assert answer["response"]["reason"].startswith("Unauthorized: You do not have permissions")
    expired = issue_access_token(owner, expires_in=-120)
    _, answer = wire.join(topic, expired, private=True)
    assert answer["response"]["reason"].startswith("InvalidJWTToken: Token has expired")
    _, answer = wire.join(topic, "not-a-jwt", private=True)
    assert answer["response"]["reason"] == "MalformedJWT: The token provided is not a valid JWT"
    _, answer = wire.join(topic, token, private=True)
    assert answer["status"] == "ok"


def test_a_token_for_someone_else_ends_the_channel(wire: Wire, api: Api) -> None:
    owner, token = signed_in(api)
    _, stranger = signed_in(api)
    topic = f"realtime:user:{owner}:jobs"
    join_ref, answer = wire.join(topic, token, private=True)
    assert answer["status"] == "ok"
    wire.push(topic, "access_token", {"access_token": token}, join_ref)  # same token: nothing
    wire.push(topic, "access_token", {"access_token": stranger}, join_ref)
    system = wire.until("system")[4]
    assert system == {
        "extension": "system",
        "status": "error",
        "message": "You no longer have permission to read from this Channel topic: "
        f"user:{owner}:jobs",
        "channel": f"user:{owner}:jobs",
    }
    assert wire.until("phx_close")[2] == topic


def test_a_channel_ends_when_its_token_expires(wire: Wire, api: Api) -> None:
    owner, _ = signed_in(api)
    short = issue_access_token(owner, expires_in=2)
    topic = f"realtime:user:{owner}:jobs"
    _, answer = wire.join(topic, short, private=True)
    assert answer["status"] == "ok"
    system = wire.until("system")[4]
    assert system["status"] == "error" and system["message"].startswith("Token has expired")
    assert wire.until("phx_close")[2] == topic


def test_private_client_broadcast_without_an_insert_policy_is_dropped(wire: Wire, api: Api) -> None:
    owner, token = signed_in(api)
    topic = f"realtime:user:{owner}:jobs"
    ref, _ = wire.join(topic, token, private=True, broadcast={"self": True, "ack": True})
    wire.ws.send(user_broadcast_push(ref, "77", topic, "spoof", {"status": "completed"}))
    wire.push("phoenix", "heartbeat", {})
    frame = wire.next()  # the heartbeat's reply comes first: no ack, no echo
    assert frame[3] == "phx_reply" and frame[2] == "phoenix"


def test_delivery_follows_commit_order_not_insert_order(wire: Wire, api: Api) -> None:
    room = f"room-{uuid.uuid4().hex[:8]}"
    assert wire.join(f"realtime:{room}")[1]["status"] == "ok"
    send = "select realtime.send(%s::jsonb, %s, %s, false)"
    with psycopg.connect(api.server.db_url) as first, psycopg.connect(api.server.db_url) as second:
        first.execute(send, ['{"n": 1}', "inserted-first", room])
        second.execute(send, ['{"n": 2}', "inserted-second", room])
        second.commit()
        time.sleep(0.3)  # the first is still open: nothing of it may be delivered yet
        first.commit()
    events = [decode_user_broadcast(wire.next())[1] for _ in range(2)]
    assert events == ["inserted-second", "inserted-first"]


def test_the_feed_comes_back_when_its_connection_and_slot_go(wire: Wire, api: Api) -> None:
    room = f"room-{uuid.uuid4().hex[:8]}"
    assert wire.join(f"realtime:{room}")[1]["status"] == "ok"
    # A slot is listed while it is being made; it reads from its consistent point on.
    ours = (
        "select slot_name, active_pid from pg_replication_slots where slot_name like %s"
        " and database = current_database() and confirmed_flush_lsn is not null"
    )

    def slots() -> dict[str, Any]:
        return dict(api_rows(api, ours, "videogen\\_realtime\\_%"))

    before = slots()
    assert before and all(before.values())
    # What `db reset` does to the readers it owns: end their backends (a temporary slot
    # goes with its session). The feed reconnects by itself and makes a new slot.
    ended = "select pg_terminate_backend(pid) from unnest(%s::int[]) as pid"
    api_rows(api, ended, [*before.values()])
    wait_until(lambda: bool(slots()) and not set(slots()) & set(before), 30, "no new slot")
    api.sql("select realtime.send(%s::jsonb, %s, %s, false)", ['{"n": 1}', "after", room])
    _, event, _, payload = decode_user_broadcast(wire.next(timeout=10))
    assert (event, payload["n"]) == ("after", 1)


def test_the_feed_comes_back_after_its_database_is_dropped_and_made_again(
    live_server: Any, database_server: str, template_database: str
) -> None:
    """What `make db-reset` does under a connected frontend: the database goes (its
    connections forced out) and comes back; the open websocket's channel gets broadcasts
    again, without reconnecting."""
    name = urlsplit(live_server.db_url).path.lstrip("/")
    with connect(ws_url(live_server), open_timeout=10) as ws:
        wire = Wire(ws)
        room = f"room-{uuid.uuid4().hex[:8]}"
        assert wire.join(f"realtime:{room}")[1]["status"] == "ok"
        # Postgres refuses to drop a database with an active slot, even with (force): a
        # reset ends the slots' backends first (the dev server's feed lets it: it waits
        # before reconnecting after an administrator ended it).
        with psycopg.connect(database_server, autocommit=True) as admin:
            admin.execute(
                "select pg_terminate_backend(active_pid) from pg_replication_slots"
                " where database = %s and active_pid is not null",
                [name],
            )
        migrations.drop_database(database_server, name)
        migrations.clone_database(database_server, template_database, name)

        def new_slot() -> bool:
            with psycopg.connect(live_server.db_url) as conn:
                row = conn.execute(
                    "select count(*) from pg_replication_slots where slot_name like %s"
                    " and database = current_database() and confirmed_flush_lsn is not null",
                    ["videogen\\_realtime\\_%"],
                ).fetchone()
            return bool(row and row[0])

        wait_until(new_slot, 60, "the feed made no slot in the new database")
        with psycopg.connect(live_server.db_url, autocommit=True) as conn:
            conn.execute(
                "select realtime.send(%s::jsonb, %s, %s, false)", ['{"n": 2}', "back", room]
            )
        _, event, _, payload = decode_user_broadcast(wire.next(timeout=10))
        assert (event, payload["n"]) == ("back", 2)


def test_connect_needs_an_api_key_and_a_known_version(api: Api) -> None:
    for url, status in (
        (ws_url(api, key=None), 401),
        (ws_url(api, key="sb_publishable_nope"), 401),
        (ws_url(api, vsn="9.9.9"), 400),
    ):
        with pytest.raises(InvalidStatus) as refused:
            connect(url, open_timeout=10)
        assert refused.value.response.status_code == status
        assert "error" in json.loads(refused.value.response.body)


def test_stopping_the_server_closes_open_sockets_at_once(live_server: Any) -> None:
    with connect(ws_url(live_server), open_timeout=10) as ws:
        Wire(ws).join("realtime:lobby")
        started = time.monotonic()
        os.kill(live_server.pid, signal.SIGTERM)
        with pytest.raises(Exception):  # noqa: B017 - closed by the server, any way it says it
            while True:
                ws.recv(timeout=15)
        assert ws.close_code == 1001
    # Not after gunicorn's graceful timeout (30 s), which open sockets would otherwise hold.
    assert time.monotonic() - started < 15


# The demo's feed (supabase-py's client in a thread) ---------------------------------------


def test_the_demo_feed_receives_a_users_events_and_says_when_it_cannot(api: Api) -> None:
    from videogen_dev.job_feed import JobFeed

    user_id, token = signed_in(api, credits=50)
    feed = JobFeed(api.server.base, LOCAL_PUBLISHABLE_KEY, token, user_id)
    try:
        assert feed.start() is True and feed.subscribed
        model = api.test_model()
        headers = {"Authorization": f"Bearer {token}"}
        job = api.ok(api.post("queue-job", headers=headers, json={"model": model}), 202)
        first = feed.next(5)
        assert first is not None and (first["job_id"], first["event"]) == (job["id"], "created")
    finally:
        feed.close()
    other, _ = signed_in(api)
    refused = JobFeed(api.server.base, LOCAL_PUBLISHABLE_KEY, token, other)
    try:
        assert refused.start() is False
        assert refused.state == "CHANNEL_ERROR" and "Unauthorized" in (refused.error or "")
    finally:
        refused.close()
