"""`videogen db reset` while the local Realtime reads the database's replication slot:
Postgres will not drop a database a slot uses, so the reset ends the reader, drops the
slot, resets, and the reader comes back by itself on the new database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest
from serverkit import wait_until
from videogen_dev import migrations
from videogen_dev.realtime_replication import MessageFeed


def _slots(admin_dsn: str, name: str) -> list[tuple[str, bool]]:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        rows = conn.execute(
            "select slot_name, active from pg_replication_slots where database = %s", [name]
        ).fetchall()
    return [(str(slot), bool(active)) for slot, active in rows]


@pytest.fixture
def feed(db_url: str, database_server: str) -> Iterator[MessageFeed]:
    """The dev server's Realtime reader on this test's database, holding its slot."""
    reader = MessageFeed(lambda: db_url, lambda message: None)
    reader.start()
    try:
        yield reader
    finally:
        reader.close()
        name = migrations.database_name(db_url)
        wait_until(lambda: not _slots(database_server, name), 30, "the slot outlived its reader")


def _reset(db_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "videogen_dev", "db", "reset", "--yes"],
        env={**os.environ, "DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_db_reset_ends_the_realtime_reader_and_the_feed_comes_back(
    db_url: str, database_server: str, feed: MessageFeed
) -> None:
    name = migrations.database_name(db_url)
    before = _slots(database_server, name)
    assert [slot.startswith("videogen_realtime_") for slot, _ in before] == [True]

    done = _reset(db_url)

    assert done.returncode == 0, done.stderr
    assert f"ended the Realtime reader of slot {before[0][0]}" in done.stdout
    assert "database reset" in done.stdout
    with psycopg.connect(db_url) as conn:  # the new database, migrated and seeded
        assert conn.execute("select count(*) from private.schedules").fetchone() == (5,)
    wait_until(
        lambda: any(s != before[0][0] for s, _ in _slots(database_server, name)),
        60,
        "the Realtime reader did not come back on the new database",
    )


def test_db_reset_stops_at_a_slot_that_is_not_ours(db_url: str, database_server: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("select pg_create_logical_replication_slot('someone_elses', 'pgoutput')")
    try:
        done = _reset(db_url)
        assert done.returncode == 1
        assert "someone_elses" in done.stderr
        assert "pg_drop_replication_slot" in done.stderr
        with psycopg.connect(db_url) as conn:  # untouched, and open to connections again
            assert conn.execute("select count(*) from private.schedules").fetchone() == (5,)
    finally:
        with psycopg.connect(database_server, autocommit=True) as admin:
            admin.execute("select pg_drop_replication_slot('someone_elses')")
