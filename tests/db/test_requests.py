"""Request plumbing: Idempotency-Key records, rate limits, cleanup."""

from __future__ import annotations

from db.helpers import Conn, as_service, profile, raises_sqlstate

SCOPE = "update-credits:POST"


def request(key: str | None, request_hash: str, principal: str = "secret:default") -> dict:
    """The p_request the functions send with a write."""
    return {
        "principal": principal,
        "scope": SCOPE,
        "bucket": "update-credits",
        "limit": None,
        "key": key,
        "hash": request_hash,
    }


def grant(conn: Conn, req: dict, user: object, amount: int = 10, grant_id: str = "g1") -> dict:
    """grant_credits_request as the service: one write with its key."""
    result: dict = as_service(
        conn, "service.credits_grant_request", req, str(user), amount, grant_id
    )
    return result


def test_new_then_replay(db: Conn, user: object) -> None:
    first = grant(db, request("k1", "h1"), user)
    assert first["status"] == 200 and first["data"]["applied"] is True
    assert "replayed" not in first
    again = grant(db, request("k1", "h1"), user, grant_id="another")  # the key decides
    assert again == {
        "status": 200,
        "body": {"success": True, "data": first["data"]},
        "replayed": True,
    }
    assert profile(db, user)[0] == 1000 + 10  # granted once


def test_same_key_with_another_body_is_refused(db: Conn, user: object) -> None:
    grant(db, request("k1", "h1"), user)
    with raises_sqlstate("VGI22"):
        grant(db, request("k1", "h2"), user)


def test_keys_are_per_principal_and_scope(db: Conn, user: object) -> None:
    grant(db, request("k1", "h1", "secret:default"), user, grant_id="a")
    assert "replayed" not in grant(db, request("k1", "h2", "secret:other"), user, grant_id="b")
    other_scope = {**request("k1", "h3"), "scope": "queue-job:POST"}
    assert "replayed" not in grant(db, other_scope, user, grant_id="c")


def test_a_failed_write_leaves_no_key_behind(db: Conn, user: object) -> None:
    """The key, the action and the answer commit together: after a failure (or a crash)
    a retry with the key simply runs — there is no "in progress" to strand."""
    with raises_sqlstate("VGC22"):
        grant(db, request("k1", "h1"), user, amount=0)
    assert db.execute("select count(*) from private.idempotency_keys").fetchone() == (0,)
    assert grant(db, request("k1", "h2"), user)["data"]["applied"] is True


def test_a_stranded_in_progress_key_is_reclaimed(db: Conn, user: object) -> None:
    """Rows an older release left "in_progress" after a crash no longer block a retry."""
    db.execute(
        "insert into private.idempotency_keys (principal, scope, key, request_hash)"
        " values ('secret:default', %s, 'k1', 'h-old')",
        (SCOPE,),
    )
    assert grant(db, request("k1", "h1"), user)["data"]["applied"] is True
    row = db.execute("select request_hash, state from private.idempotency_keys").fetchone()
    assert row == ("h1", "completed")


def test_a_stored_refusal_is_replayed_and_never_overwrites_an_answer(
    db: Conn, user: object
) -> None:
    refusal = {"success": False, "error": {"code": "INSUFFICIENT_CREDITS"}, "status": 402}
    as_service(db, "service.request_refuse", request("k1", "h1"), 402, refusal, True)
    assert grant(db, request("k1", "h1"), user)["body"] == refusal
    grant(db, request("k2", "h1"), user)
    as_service(db, "service.request_refuse", request("k2", "h1"), 402, refusal, True)
    assert grant(db, request("k2", "h1"), user)["body"]["success"] is True


def test_an_expired_key_can_be_reused_for_anything(db: Conn, user: object) -> None:
    grant(db, request("k1", "h1"), user)
    db.execute("update private.idempotency_keys set expires_at = now() - interval '1 second'")
    assert "replayed" not in grant(db, request("k1", "h2"), user, grant_id="g2")
    row = db.execute(
        "select request_hash, state, response_body ->> 'success',"
        " expires_at > now() + interval '23 hours' from private.idempotency_keys"
    ).fetchone()
    assert row == ("h2", "completed", "true", True)


def test_a_request_takes_its_rate_limit_slot_in_the_same_transaction(
    db: Conn, user: object
) -> None:
    limited = {**request(None, "h"), "principal": "user:1", "limit": 2}
    grant(db, limited, user, grant_id="r1")
    grant(db, limited, user, grant_id="r2")
    with raises_sqlstate("VGR29"):
        grant(db, limited, user, grant_id="r3")
    assert profile(db, user)[0] == 1000 + 20  # the refused one granted nothing


def test_rate_limit_counts_then_refuses_with_retry_after(db: Conn) -> None:
    remaining = [
        as_service(db, "service.rate_limit_take", "user:1", "create", 3, 3600) for _ in range(3)
    ]
    assert remaining == [2, 1, 0]
    with raises_sqlstate("VGR29") as info:
        as_service(db, "service.rate_limit_take", "user:1", "create", 3, 3600)
    detail = info.value.diag.message_detail
    assert detail is not None and detail.startswith("retry_after=")
    assert 1 <= int(detail.split("=", 1)[1]) <= 3600
    # The refused request was not counted; other principals and buckets are separate.
    count = db.execute("select count from private.rate_limits where principal = 'user:1'")
    assert count.fetchone() == (3,)
    assert as_service(db, "service.rate_limit_take", "user:2", "create", 3, 3600) == 2
    assert as_service(db, "service.rate_limit_take", "user:1", "read", 3, 3600) == 2


def test_rate_limit_starts_over_in_a_new_window(db: Conn) -> None:
    for _ in range(2):
        as_service(db, "service.rate_limit_take", "user:1", "create", 2, 60)
    db.execute("update private.rate_limits set window_start = window_start - interval '1 minute'")
    assert as_service(db, "service.rate_limit_take", "user:1", "create", 2, 60) == 1


def test_cleanup_drops_what_expired(db: Conn, user: object) -> None:
    grant(db, request("old", "h"), user, grant_id="old")
    grant(db, request("fresh", "h"), user, grant_id="fresh")
    as_service(db, "private.webhook_receipt_record", "old-msg", "worker")
    as_service(db, "private.webhook_receipt_record", "new-msg", "worker")
    db.execute(
        "update private.idempotency_keys set expires_at = now() - interval '1 s' where key = 'old'"
    )
    db.execute(
        "update private.webhook_receipts set received_at = now() - interval '8 days'"
        " where webhook_id = 'old-msg'"
    )
    assert as_service(db, "service.requests_clean_up") == {
        "idempotency_keys": 1,
        "webhook_receipts": 1,
        "webhook_deliveries": 0,
    }
    assert as_service(db, "private.webhook_receipt_record", "new-msg", "worker") is False
    assert as_service(db, "private.webhook_receipt_record", "old-msg", "worker") is True


def test_a_refused_write_still_counts_against_the_rate_limit(db: Conn) -> None:
    limited = {**request("k9", "h"), "principal": "user:1", "limit": 2}
    refusal = {"success": False, "error": {"code": "INSUFFICIENT_CREDITS"}, "status": 402}
    as_service(db, "service.request_refuse", limited, 402, refusal, False)
    as_service(db, "service.request_refuse", limited, 402, refusal, False)
    assert db.execute("select count from private.rate_limits").fetchone() == (2,)
    assert db.execute("select count(*) from private.idempotency_keys").fetchone() == (0,)
