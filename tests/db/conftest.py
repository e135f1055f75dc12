"""Fixtures for the schema tests: a superuser connection to a fresh database, funded users."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from db.helpers import Conn, create_user
from videogen_dev import migrations


@pytest.fixture
def db(admin_conn: Conn) -> Conn:
    """Autocommit superuser connection to this test's own database (calls switch roles)."""
    return admin_conn


@pytest.fixture
def user(db: Conn) -> uuid.UUID:
    """A signed-up user holding 1 000 credits."""
    return create_user(db, credits=1000)


@pytest.fixture
def other_user(db: Conn) -> uuid.UUID:
    """A second user holding 1 000 credits."""
    return create_user(db, credits=1000)


@pytest.fixture(scope="module")
def shared_db(database_server: str, template_database: str) -> Iterator[Conn]:
    """One database for a whole module, for checks that change nothing (failed calls)."""
    name = f"videogen_test_{uuid.uuid4().hex[:12]}"
    url = migrations.clone_database(database_server, template_database, name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            yield conn
    finally:
        migrations.drop_database(database_server, name)


# Reservations are judged stale only after a day here: nothing runs the sweep during a test,
# so a lease a test lets run out is not the books' fault. Every other check is exact.
AUDIT_GRACE_SECONDS = 86_400


@pytest.fixture(autouse=True)
def books_balance_after_the_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every test on its own database (``db``), the money audit finds nothing —
    unless the test unbalances the books on purpose (``@pytest.mark.books_unbalanced``)."""
    wanted = "db" in request.fixturenames and not request.node.get_closest_marker(
        "books_unbalanced"
    )
    # Taken here, so the database outlives this fixture's check.
    conn: Conn | None = request.getfixturevalue("db") if wanted else None
    yield
    outcome = getattr(request.node, "rep_call", None)
    if conn is None or (outcome is not None and outcome.failed):
        return  # nothing to audit, or the test's own failure says more
    if conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        return
    with conn.transaction():
        conn.execute("set local role service_role")
        row = conn.execute(
            "select service.money_audit_report(%s)", (AUDIT_GRACE_SECONDS,)
        ).fetchone()
    rows = row[0] if row else []
    if rows:
        pytest.fail(f"the money audit found {len(rows)} difference(s): {rows[:5]}")
