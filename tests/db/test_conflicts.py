"""A transaction that lost a deadlock or a serialization conflict is run again by the
database layer — the client never sees a 503 for it."""

from __future__ import annotations

import pytest

from videogen.db.connection import PostgresDatabase
from videogen.errors import AppError


@pytest.fixture
def flaky(db) -> None:
    """public.flaky(p_code): raises p_code on its first two calls (a sequence counts them:
    it is not rolled back with the failed transactions), then answers its call number."""
    db.execute("create sequence public.flaky_calls")
    db.execute(
        """
        create function public.flaky(p_code text) returns bigint language plpgsql as $$
        declare v_call bigint := nextval('public.flaky_calls');
        begin
          if v_call <= 2 then
            raise exception 'conflict %', v_call using errcode = p_code;
          end if;
          return v_call;
        end $$
        """
    )
    db.execute("grant execute on function public.flaky(text) to service_role")


@pytest.mark.parametrize("code", ["40P01", "40001"])
def test_deadlocks_and_serialization_failures_are_run_again(db_url, flaky, code):
    database = PostgresDatabase(db_url)
    try:
        assert database.admin_call("flaky", code=code) == 3
    finally:
        database.close()


def test_other_errors_are_not_retried(db_url, flaky):
    database = PostgresDatabase(db_url)
    try:
        for _ in range(2):  # each call ran once: a retry would have used up both failures
            with pytest.raises(AppError) as info:
                database.admin_call("flaky", code="VG402")
            assert info.value.code == "INSUFFICIENT_CREDITS"
        assert database.admin_call("flaky", code="VG402") == 3
    finally:
        database.close()
