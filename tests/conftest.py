"""Base fixtures: one Postgres per session, one template per SQL state, one clone per test.

The embedded cluster is started in fast mode (fsync off) unless it already runs, or
DATABASE_URL names another server, which is then used as is (it needs CREATEDB). The
template ``videogen_tpl_<hash>`` is built once per content of sql/platform, the migrations
and the seed, so editing any of them builds a new one; every test that asks for ``db_url``
gets its own ``CREATE DATABASE … TEMPLATE`` copy, dropped afterwards. The cluster is left
running at the end: other sessions may share it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import psycopg
import pytest
from videogen_dev import migrations

# Templates and clones left behind by crashed or older sessions are dropped after this long:
# longer than any session lasts, so a second checkout's suite (another fingerprint) never
# drops the template a running one still clones from.
_STALE_AFTER_S = 6 * 60 * 60


@pytest.fixture(scope="session")
def database_server() -> str:
    """DSN of the maintenance database (``postgres``) on the session's server."""
    from videogen_dev import localdb

    return localdb.ensure_running(fast=True)


def _template(dsn_admin: str, name: str, *, platform_only: bool) -> str:
    """Build (or reuse) a template database and clear out stale ones."""
    prefix = name.rsplit("_", 1)[0]
    migrations.drop_stale_databases(
        dsn_admin, f"{prefix}_%", older_than_s=_STALE_AFTER_S, keep=[name]
    )
    migrations.drop_stale_databases(dsn_admin, "videogen_test_%", older_than_s=_STALE_AFTER_S)
    migrations.create_template(dsn_admin, name, platform_only=platform_only)
    return name


def _clone(dsn_admin: str, template: str) -> Iterator[str]:
    """A fresh copy of ``template`` for one test, dropped afterwards."""
    name = f"videogen_test_{uuid.uuid4().hex[:12]}"
    url = migrations.clone_database(dsn_admin, template, name)
    try:
        yield url
    finally:
        migrations.drop_database(dsn_admin, name)


@pytest.fixture(scope="session")
def template_database(database_server: str) -> str:
    """Name of the template with platform stand-in, migrations and seed applied."""
    name = f"videogen_tpl_{migrations.fingerprint()[:16]}"
    return _template(database_server, name, platform_only=False)


@pytest.fixture(scope="session")
def platform_template_database(database_server: str) -> str:
    """Name of a template with the platform stand-in only (no migrations, no seed)."""
    return _template(database_server, migrations.platform_template_name(), platform_only=True)


@pytest.fixture
def db_url(database_server: str, template_database: str) -> Iterator[str]:
    """DSN of a fresh database holding the full schema and seed, private to this test."""
    yield from _clone(database_server, template_database)


@pytest.fixture
def admin_conn(db_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit connection to ``db_url`` as ``postgres`` (bypasses RLS)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def platform_db_url(database_server: str, platform_template_database: str) -> Iterator[str]:
    """DSN of a fresh database with the platform stand-in only, private to this test."""
    yield from _clone(database_server, platform_template_database)


@pytest.fixture
def empty_db_url(database_server: str) -> Iterator[str]:
    """DSN of a fresh, empty database (from template0), private to this test."""
    name = f"videogen_test_{uuid.uuid4().hex[:12]}"
    url = migrations.clone_database(database_server, "template0", name)
    try:
        yield url
    finally:
        migrations.drop_database(database_server, name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """Keep each phase's report on the test (``item.rep_call``), for fixtures that check
    something after the test only when it passed (the money audit)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


# ------------------------------------------------------------------------------------------
# A real dev server (all five functions over HTTP) on its own database
# ------------------------------------------------------------------------------------------


from serverkit import LiveServer, running_server  # noqa: E402 - shared with bench/


@pytest.fixture
def live_server(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """``videogen serve`` on a free port against this test's database; stopped afterwards."""
    with running_server(db_url, tmp_path_factory.mktemp("server")) as server:
        yield server


@pytest.fixture(scope="session")
def start_server(
    database_server: str, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., AbstractContextManager[LiveServer]]:
    """A factory for servers shared by a module: ``with start_server(**env) as server:``.

    Each server gets its own fresh clone of the template (dropped when it stops).
    """

    @contextmanager
    def start(**extra_env: str) -> Iterator[LiveServer]:
        workdir = tmp_path_factory.mktemp("server")
        with (
            contextmanager(_clone)(database_server, template_database) as url,
            running_server(url, workdir, **extra_env) as server,
        ):
            yield server

    return start
