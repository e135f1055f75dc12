"""Request plumbing: Idempotency-Key records, rate limits, cleanup."""

from __future__ import annotations

from db.helpers import Conn, as_service, raises_sqlstate

SCOPE = "POST /queue-job"


def begin(conn: Conn, key: str, request_hash: str, principal: str = "user:1") -> dict[str, object]:
    """idempotency_begin as the service."""
    result: dict[str, object] = as_service(
        conn, "idempotency_begin", principal, SCOPE, key, request_hash
    )
    return result


def test_new_then_in_progress_then_replay(db: Conn) -> None:
    assert begin(db, "k1", "h1") == {"state": "new"}
    with raises_sqlstate("VGI09"):
        begin(db, "k1", "h1")  # the first is still running
    as_service(db, "idempotency_finish", "user:1", SCOPE, "k1", 201, {"job": {"id": "j1"}})
    assert begin(db, "k1", "h1") == {
        "state": "replay",
        "status": 201,
        "body": {"job": {"id": "j1"}},
    }
    assert begin(db, "k1", "h1")["state"] == "replay"


def test_same_key_with_another_body_is_refused(db: Conn) -> None:
    begin(db, "k1", "h1")
    with raises_sqlstate("VGI22"):
        begin(db, "k1", "h2")
    as_service(db, "idempotency_finish", "user:1", SCOPE, "k1", 200, {})
    with raises_sqlstate("VGI22"):
        begin(db, "k1", "h2")


def test_keys_are_per_principal_and_scope(db: Conn) -> None:
    assert begin(db, "k1", "h1", "user:1") == {"state": "new"}
    assert begin(db, "k1", "h2", "user:2") == {"state": "new"}
    other_scope = as_service(db, "idempotency_begin", "user:1", "POST /other", "k1", "h3")
    assert other_scope == {"state": "new"}


def test_abandon_frees_an_in_progress_key_only(db: Conn) -> None:
    begin(db, "k1", "h1")
    as_service(db, "idempotency_abandon", "user:1", SCOPE, "k1")
    assert begin(db, "k1", "h2") == {"state": "new"}  # a retry may even change the body
    as_service(db, "idempotency_finish", "user:1", SCOPE, "k1", 200, {"ok": True})
    as_service(db, "idempotency_abandon", "user:1", SCOPE, "k1")  # completed: kept
    assert begin(db, "k1", "h2")["state"] == "replay"


def test_an_expired_key_can_be_reused_for_anything(db: Conn) -> None:
    begin(db, "k1", "h1")
    as_service(db, "idempotency_finish", "user:1", SCOPE, "k1", 200, {"old": True})
    db.execute("update private.idempotency_keys set expires_at = now() - interval '1 second'")
    assert begin(db, "k1", "h2") == {"state": "new"}
    row = db.execute(
        "select request_hash, state, response_body, expires_at > now() + interval '23 hours'"
        " from private.idempotency_keys"
    ).fetchone()
    assert row == ("h2", "in_progress", None, True)


def test_rate_limit_counts_then_refuses_with_retry_after(db: Conn) -> None:
    remaining = [as_service(db, "rate_limit_take", "user:1", "create", 3, 3600) for _ in range(3)]
    assert remaining == [2, 1, 0]
    with raises_sqlstate("VGR29") as info:
        as_service(db, "rate_limit_take", "user:1", "create", 3, 3600)
    detail = info.value.diag.message_detail
    assert detail is not None and detail.startswith("retry_after=")
    assert 1 <= int(detail.split("=", 1)[1]) <= 3600
    # The refused request was not counted; other principals and buckets are separate.
    count = db.execute("select count from private.rate_limits where principal = 'user:1'")
    assert count.fetchone() == (3,)
    assert as_service(db, "rate_limit_take", "user:2", "create", 3, 3600) == 2
    assert as_service(db, "rate_limit_take", "user:1", "read", 3, 3600) == 2


def test_rate_limit_starts_over_in_a_new_window(db: Conn) -> None:
    for _ in range(2):
        as_service(db, "rate_limit_take", "user:1", "create", 2, 60)
    db.execute("update private.rate_limits set window_start = window_start - interval '1 minute'")
    assert as_service(db, "rate_limit_take", "user:1", "create", 2, 60) == 1


def test_cleanup_drops_what_expired(db: Conn) -> None:
    begin(db, "old", "h")
    begin(db, "fresh", "h")
    as_service(db, "webhook_receipt", "old-msg", "worker")
    as_service(db, "webhook_receipt", "new-msg", "worker")
    db.execute(
        "update private.idempotency_keys set expires_at = now() - interval '1 s' where key = 'old'"
    )
    db.execute(
        "update private.webhook_receipts set received_at = now() - interval '8 days'"
        " where webhook_id = 'old-msg'"
    )
    assert as_service(db, "requests_cleanup") == {"idempotency_keys": 1, "webhook_receipts": 1}
    assert as_service(db, "webhook_receipt", "new-msg", "worker") is False
    assert as_service(db, "webhook_receipt", "old-msg", "worker") is True
