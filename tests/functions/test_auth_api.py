"""The dev server's Auth API at /auth/v1, driven by supabase_auth (supabase-py's client).

Everything goes through the real client as an app would use it, with the publishable key
as ``apikey``: anonymous and email sign-ups, password sign-in, refresh-token rotation,
``get_user`` and sign-out. The access tokens it hands out are ES256 with a ``kid`` from the
JWKS, and the functions accept them, verifying them through that JWKS.
"""

from __future__ import annotations

import stat
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import jwt
import pytest
from supabase_auth import SyncGoTrueClient
from supabase_auth.errors import AuthApiError, AuthError, AuthWeakPasswordError

from videogen.config import LOCAL_PUBLISHABLE_KEY

Api = Any  # tests/functions/conftest.py's Api (conftest modules are not imported)

PASSWORD = "correct horse battery staple"

_open: list[SyncGoTrueClient] = []


def auth_url(api: Api) -> str:
    return f"{api.server.base}/auth/v1"


def client_for(api: Api) -> SyncGoTrueClient:
    """supabase_auth as supabase-py builds it (publishable key, sessions kept in memory)."""
    client = SyncGoTrueClient(
        url=auth_url(api),
        headers={"apikey": LOCAL_PUBLISHABLE_KEY},
        auto_refresh_token=False,
        persist_session=True,
    )
    _open.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _open:
        _open.pop()._http_client.close()


def new_email() -> str:
    return f"a-{uuid.uuid4().hex[:12]}@example.test"


def refused(call: Any) -> Any:
    """The client's error (AuthApiError, or a subclass of AuthError for weak passwords)."""
    with pytest.raises(AuthError) as caught:
        call()
    return caught.value


def test_anonymous_sign_in_gives_a_session_and_a_profile(api: Api) -> None:
    client = client_for(api)
    result = client.sign_in_anonymously()
    assert result.session is not None and result.user is not None
    assert result.user.is_anonymous is True
    assert result.session.token_type == "bearer"
    assert result.session.expires_in == 3600
    claims = jwt.decode(result.session.access_token, options={"verify_signature": False})
    assert claims["is_anonymous"] is True
    assert claims["amr"][0]["method"] == "anonymous"
    assert api.sql("select count(*) from public.profiles where id = %s", [result.user.id]) == 1


def test_sign_up_and_sign_in_with_email_and_password(api: Api) -> None:
    email = new_email()
    signed_up = client_for(api).sign_up(
        {"email": email, "password": PASSWORD, "options": {"data": {"name": "Ada"}}}
    )
    user = signed_up.user
    assert user is not None and signed_up.session is not None  # autoconfirm: a session
    assert user.email == email and user.is_anonymous is False
    assert user.email_confirmed_at is not None
    assert user.app_metadata == {"provider": "email", "providers": ["email"]}
    assert user.user_metadata["name"] == "Ada"
    assert [i.provider for i in user.identities or []] == ["email"]
    stored = api.sql("select encrypted_password from auth.users where id = %s", [user.id])
    assert stored.startswith("$2a$10$")  # bcrypt, as GoTrue stores it

    client = client_for(api)
    signed_in = client.sign_in_with_password({"email": email, "password": PASSWORD})
    assert signed_in.user is not None and signed_in.user.id == user.id
    assert signed_in.session is not None
    assert signed_in.session.access_token != signed_up.session.access_token

    again = refused(lambda: client_for(api).sign_up({"email": email, "password": PASSWORD}))
    assert (again.status, again.code) == (422, "user_already_exists")


def test_wrong_password_and_unknown_email_are_refused_alike(api: Api) -> None:
    email = new_email()
    client_for(api).sign_up({"email": email, "password": PASSWORD})
    for creds in ({"email": email, "password": "wrong-password"},
                  {"email": new_email(), "password": PASSWORD}):  # fmt: skip
        error = refused(lambda c=creds: client_for(api).sign_in_with_password(c))
        assert (error.status, error.code) == (400, "invalid_credentials")
        assert error.message == "Invalid login credentials"
    weak = refused(lambda: client_for(api).sign_up({"email": new_email(), "password": "abc"}))
    assert isinstance(weak, AuthWeakPasswordError) and weak.reasons == ["length"]
    assert (weak.status, weak.code) == (422, "weak_password")


@pytest.fixture(scope="module")
def no_reuse_api(start_server: Any) -> Iterator[Any]:
    """A server where a used refresh token is never accepted again (reuse interval 0)."""
    with start_server(GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL="0") as server:
        yield SimpleNamespace(server=server)


def test_refresh_rotates_and_a_lost_answer_can_be_retried(api: Api) -> None:
    client = client_for(api)
    first = client.sign_in_anonymously().session
    assert first is not None
    second = client.refresh_session(first.refresh_token).session
    assert second is not None and second.refresh_token != first.refresh_token
    assert second.user.id == first.user.id
    # The parent of the active token: the client never stored the answer; GoTrue allows it.
    retried = client_for(api).refresh_session(first.refresh_token).session
    assert retried is not None and retried.user.id == first.user.id
    assert client_for(api).refresh_session(retried.refresh_token).session is not None
    stored = api.sql(
        "select array_agg(token) from auth.refresh_tokens where user_id = %s", [first.user.id]
    )
    assert len(stored) == 4 and first.refresh_token not in stored  # hashes only
    unknown = refused(lambda: client_for(api).refresh_session("not-a-refresh-token"))
    assert (unknown.status, unknown.code) == (400, "refresh_token_not_found")


def test_a_reused_refresh_token_is_refused_and_revokes_the_session(no_reuse_api: Any) -> None:
    api = no_reuse_api
    first = client_for(api).sign_in_anonymously().session
    assert first is not None
    second = client_for(api).refresh_session(first.refresh_token).session
    assert second is not None
    third = client_for(api).refresh_session(second.refresh_token).session
    assert third is not None
    # An older token (not the active one's parent), past the reuse interval: an abuse.
    error = refused(lambda: client_for(api).refresh_session(first.refresh_token))
    assert isinstance(error, AuthApiError)
    assert (error.status, error.code) == (400, "refresh_token_already_used")
    assert error.message == "Invalid Refresh Token: Already Used"
    # The whole session's tokens went with it, the active one too.
    error = refused(lambda: client_for(api).refresh_session(third.refresh_token))
    assert (error.status, error.code) == (400, "refresh_token_already_used")


def test_get_user_and_update_metadata(api: Api) -> None:
    client = client_for(api)
    session = client.sign_up({"email": new_email(), "password": PASSWORD}).session
    assert session is not None
    fetched = client.get_user()
    assert fetched is not None and fetched.user.id == session.user.id
    updated = client.update_user({"data": {"plan": "pro"}})
    assert updated.user.user_metadata["plan"] == "pro"
    no_token = httpx.get(f"{auth_url(api)}/user", headers={"apikey": LOCAL_PUBLISHABLE_KEY})
    assert no_token.status_code == 401
    assert no_token.json()["error_code"] == "no_authorization"


def test_sign_out_ends_the_session(api: Api) -> None:
    client = client_for(api)
    session = client.sign_up({"email": new_email(), "password": PASSWORD}).session
    assert session is not None
    client.sign_out({"scope": "local"})
    assert client.get_session() is None
    error = refused(lambda: client_for(api).refresh_session(session.refresh_token))
    assert (error.status, error.code) == (400, "refresh_token_not_found")
    gone = refused(lambda: client_for(api).get_user(session.access_token))
    assert (gone.status, gone.code) == (403, "session_not_found")


def test_access_tokens_are_es256_from_the_jwks_and_the_functions_accept_them(
    api: Api,
) -> None:
    session = client_for(api).sign_up({"email": new_email(), "password": PASSWORD}).session
    assert session is not None
    header = jwt.get_unverified_header(session.access_token)
    assert header["alg"] == "ES256"
    jwks = httpx.get(f"{auth_url(api)}/.well-known/jwks.json").json()  # public: no apikey
    [key] = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    assert key["kty"] == "EC" and key["crv"] == "P-256" and key["key_ops"] == ["verify"]
    claims = jwt.decode(
        session.access_token, jwt.PyJWK(key).key, algorithms=["ES256"], audience="authenticated"
    )
    assert claims["iss"] == f"{auth_url(api)}"
    assert claims["sub"] == session.user.id and claims["role"] == "authenticated"
    assert claims["aal"] == "aal1" and claims["amr"][0]["method"] == "password"
    assert api.sql("select count(*) from auth.sessions where id = %s", [claims["session_id"]])

    answer = api.http.get(
        api.url("update-credits"), headers={"Authorization": f"Bearer {session.access_token}"}
    )
    assert answer.status_code == 200, answer.text
    assert "balance" in answer.json()["data"]


def test_signing_key_is_kept_private_in_the_state_dir(tmp_path: Any) -> None:
    from videogen_dev.auth_api import SigningKey

    path = tmp_path / "auth" / "signing_key.pem"
    first = SigningKey(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SigningKey(path).kid == first.kid  # the same key after a restart


def test_errors_have_gotrue_shape_and_cors_preflight(api: Api) -> None:
    base = auth_url(api)
    legacy = httpx.post(
        f"{base}/token?grant_type=password",
        json={"email": new_email(), "password": "x"},
        headers={"apikey": LOCAL_PUBLISHABLE_KEY},
    )
    assert legacy.status_code == 400
    assert legacy.json() == {
        "code": 400,
        "error_code": "invalid_credentials",
        "msg": "Invalid login credentials",
    }
    assert "x-supabase-api-version" not in legacy.headers
    versioned = httpx.post(
        f"{base}/token?grant_type=password",
        json={"email": new_email(), "password": "x"},
        headers={"apikey": LOCAL_PUBLISHABLE_KEY, "X-Supabase-Api-Version": "2024-01-01"},
    )
    assert versioned.json() == {
        "code": "invalid_credentials",
        "message": "Invalid login credentials",
    }
    assert versioned.headers["x-supabase-api-version"] == "2024-01-01"
    assert httpx.get(f"{base}/settings").status_code == 401  # no apikey
    settings = httpx.get(f"{base}/settings", headers={"apikey": LOCAL_PUBLISHABLE_KEY}).json()
    assert settings["external"]["anonymous_users"] is True and settings["mailer_autoconfirm"]
    health = httpx.get(f"{base}/health", headers={"apikey": LOCAL_PUBLISHABLE_KEY})
    assert health.json()["name"] == "GoTrue"
    preflight = httpx.options(
        f"{base}/token",
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "apikey, content-type, x-client-info",
        },
    )
    assert preflight.status_code == 204
    assert "apikey" in preflight.headers["access-control-allow-headers"]
    assert preflight.headers["access-control-allow-origin"]


def test_an_anonymous_user_becomes_permanent_with_an_email_and_password(api: Api) -> None:
    client = client_for(api)
    anonymous = client.sign_in_anonymously().user
    assert anonymous is not None and anonymous.is_anonymous
    email = new_email()
    updated = client.update_user({"email": email, "password": PASSWORD}).user
    assert updated.id == anonymous.id and updated.email == email
    assert updated.is_anonymous is False and updated.email_confirmed_at is not None
    same = refused(lambda: client.update_user({"password": PASSWORD}))
    assert (same.status, same.code) == (422, "same_password")
    signed_in = client_for(api).sign_in_with_password({"email": email, "password": PASSWORD})
    assert signed_in.user is not None and signed_in.user.id == anonymous.id
    # A global sign-out ends every session of the user, the other client's too.
    client.sign_out()
    gone = refused(lambda: client_for(api).get_user(signed_in.session.access_token))
    assert (gone.status, gone.code) == (403, "session_not_found")
