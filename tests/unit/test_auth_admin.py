"""The Auth admin client (account deletion) against recorded GoTrue answers."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from videogen.config import LOCAL_SECRET_KEY, Settings
from videogen.errors import ServiceUnavailable
from videogen.integrations import auth_admin

USER = str(uuid.uuid4())


def settings() -> Settings:
    return Settings(SUPABASE_URL="https://example.supabase.co", VIDEOGEN_ENV="test")


def client(status: int, body: object, seen: list[httpx.Request]) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=body)

    return httpx.Client(transport=httpx.MockTransport(answer))


def test_it_deletes_with_the_secret_key_as_gotrue_expects() -> None:
    seen: list[httpx.Request] = []
    assert auth_admin.delete_user(settings(), USER, client(200, {}, seen)) is True
    [request] = seen
    assert request.method == "DELETE"
    assert str(request.url) == f"https://example.supabase.co/auth/v1/admin/users/{USER}"
    assert request.headers["apikey"] == LOCAL_SECRET_KEY
    assert "authorization" not in request.headers  # an sb_secret_ key is not a JWT
    assert json.loads(request.content) == {"should_soft_delete": False}


@pytest.mark.parametrize(
    "body",
    [
        {"code": "user_not_found", "message": "User not found"},  # 2024-01-01 shape
        {"code": 404, "error_code": "user_not_found", "msg": "User not found"},
    ],
)
def test_a_user_already_gone_is_not_an_error(body: dict[str, object]) -> None:
    assert auth_admin.delete_user(settings(), USER, client(404, body, [])) is False


@pytest.mark.parametrize(
    ("status", "body"),
    [(404, {"message": "no Route matched"}), (500, {"code": "unexpected_failure"}),
     (403, {"code": "not_admin"})],
)  # fmt: skip
def test_anything_else_is_a_503_to_retry(status: int, body: dict[str, object]) -> None:
    with pytest.raises(ServiceUnavailable) as caught:
        auth_admin.delete_user(settings(), USER, client(status, body, []))
    assert caught.value.code == "AUTH_UNAVAILABLE" and caught.value.headers["Retry-After"]
