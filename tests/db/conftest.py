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
