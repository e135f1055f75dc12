"""Auth modes as a caller meets them: every mode, every way a credential can be wrong."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from videogen.config import (
    LOCAL_ANON_KEY,
    LOCAL_JWT_SECRET,
    LOCAL_PUBLISHABLE_KEY,
    LOCAL_SECRET_KEY,
    LOCAL_SERVICE_ROLE_KEY,
    Settings,
)
from videogen.errors import ServiceUnavailable, Unauthorized
from videogen.kit.auth import (
    JwksCache,
    Principal,
    StaticJwks,
    authenticate,
    check_cron_secret,
    issue_access_token,
    jwks_for,
)

USER_ID = "8d0fd2b3-9ca7-4d9e-a95f-9e13dded323e"
OTHER_SECRET = "another-secret-that-is-also-at-least-32-characters"
PREVIOUS_SECRET_KEY = "sb_secret_previous_rotated_key_0000000000"


def make_settings(**overrides: Any) -> Settings:
    """Local defaults plus a rotated secret key, never read from the environment."""
    values: dict[str, Any] = {
        "env": "test",
        "secret_keys_json": json.dumps({"previous": PREVIOUS_SECRET_KEY}),
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def settings() -> Settings:
    return make_settings()


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def hs256(claims: dict[str, Any], secret: str = LOCAL_JWT_SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def user_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": USER_ID,
        "aud": "authenticated",
        "role": "authenticated",
        "iat": now,
        "exp": now + 600,
        "is_anonymous": False,
    }
    claims.update(overrides)
    return claims


def expect_401(code: str, call: Callable[[], object]) -> Unauthorized:
    with pytest.raises(Unauthorized) as info:
        call()
    assert info.value.status == 401
    assert info.value.code == code
    return info.value


# user ---------------------------------------------------------------------------------------


def test_user_token_gives_a_user_principal(settings: Settings) -> None:
    token = issue_access_token(USER_ID, email="ada@example.com", settings=settings)
    principal = authenticate(bearer(token), ("user",), settings)
    assert principal.kind == "user"
    assert principal.user_id == USER_ID
    assert principal.role == "authenticated"
    assert principal.is_anonymous is False
    assert principal.is_user and not principal.is_service
    assert principal.email == "ada@example.com"
    assert principal.token == token
    assert principal.claims["sub"] == USER_ID
    assert token not in repr(principal)


def test_anonymous_user_is_flagged(settings: Settings) -> None:
    token = issue_access_token(USER_ID, is_anonymous=True, settings=settings)
    principal = authenticate(bearer(token), "user", settings)
    assert principal.is_anonymous is True
    assert principal.email is None


def test_supabase_client_sends_apikey_and_user_token(settings: Settings) -> None:
    token = issue_access_token(USER_ID, settings=settings)
    headers = {"Authorization": f"Bearer {token}", "ApiKey": LOCAL_PUBLISHABLE_KEY}
    assert authenticate(headers, ("user",), settings).user_id == USER_ID
    headers["ApiKey"] = LOCAL_ANON_KEY
    assert authenticate(headers, ("user", "public"), settings).kind == "user"


def test_missing_credentials_names_what_is_expected(settings: Settings) -> None:
    err = expect_401("UNAUTHORIZED", lambda: authenticate({}, ("user",), settings))
    assert err.hint is not None and "Authorization: Bearer" in err.hint
    err = expect_401("UNAUTHORIZED", lambda: authenticate({}, ("user", "secret"), settings))
    assert err.hint is not None and "secret" in err.hint


def test_non_bearer_authorization_is_not_a_token(settings: Settings) -> None:
    expect_401(
        "UNAUTHORIZED",
        lambda: authenticate({"authorization": "Basic dXNlcjpwYXNz"}, "user", settings),
    )


def test_expired_token(settings: Settings) -> None:
    token = issue_access_token(USER_ID, expires_in=-120, settings=settings)
    err = expect_401("TOKEN_EXPIRED", lambda: authenticate(bearer(token), "user", settings))
    assert err.hint is not None and "Refresh" in err.hint


def test_small_clock_skew_is_tolerated(settings: Settings) -> None:
    token = issue_access_token(USER_ID, expires_in=-3, settings=settings)
    assert authenticate(bearer(token), "user", settings).user_id == USER_ID


# Each token is made when its test runs (claims carry `exp`/`iat` from now): a module
# collected long before it runs must not see them expire.
@pytest.mark.parametrize(
    ("make_token", "why"),
    [
        (lambda: hs256(user_claims(), OTHER_SECRET), "wrong signature"),
        (lambda: hs256(user_claims(aud="somebody-else")), "wrong audience"),
        (lambda: hs256(user_claims(role="supabase_admin")), "not an authenticated user"),
        (lambda: hs256(user_claims(sub="not-a-uuid")), "sub is not a uuid"),
        (lambda: hs256({k: v for k, v in user_claims().items() if k != "sub"}), "no sub"),
        (lambda: hs256({k: v for k, v in user_claims().items() if k != "exp"}), "no exp"),
        (lambda: hs256(user_claims(iat=int(time.time()) + 3600)), "issued in the future"),
        (lambda: jwt.encode(user_claims(), "", algorithm="none"), "alg none"),
        (lambda: "not.a.jwt", "garbage"),
        (lambda: "eyJhbGciOiJIUzI1NiJ9", "one segment"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_invalid_user_tokens(settings: Settings, make_token: Callable[[], str], why: str) -> None:
    token = make_token()
    expect_401("INVALID_TOKEN", lambda: authenticate(bearer(token), "user", settings))


def test_custom_audience(settings: Settings) -> None:
    custom = make_settings(jwt_audience="video-app")
    token = issue_access_token(USER_ID, settings=custom)
    assert authenticate(bearer(token), "user", custom).user_id == USER_ID
    expect_401("INVALID_TOKEN", lambda: authenticate(bearer(token), "user", settings))


def test_issue_access_token_has_supabase_claim_shape(settings: Settings) -> None:
    token = issue_access_token(USER_ID, email="ada@example.com", settings=settings)
    claims = jwt.decode(token, LOCAL_JWT_SECRET, algorithms=["HS256"], audience="authenticated")
    assert claims["iss"] == "http://127.0.0.1:54321/auth/v1"
    assert claims["aud"] == "authenticated"
    assert claims["role"] == "authenticated"
    assert claims["sub"] == USER_ID
    assert claims["email"] == "ada@example.com"
    assert claims["is_anonymous"] is False
    assert uuid.UUID(claims["session_id"])
    assert claims["aal"] == "aal1"
    assert claims["amr"][0]["method"] == "password"
    assert claims["app_metadata"] == {"provider": "email", "providers": ["email"]}
    assert claims["user_metadata"] == {}
    assert claims["exp"] - claims["iat"] == 3600
    anonymous = jwt.decode(
        issue_access_token(USER_ID, is_anonymous=True, settings=settings),
        options={"verify_signature": False},
    )
    assert anonymous["is_anonymous"] is True
    assert anonymous["amr"][0]["method"] == "anonymous"


# public -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"apikey": LOCAL_PUBLISHABLE_KEY},
        {"apikey": LOCAL_ANON_KEY},
        # supabase-js without a session sends the key in both headers.
        {"apikey": LOCAL_ANON_KEY, "authorization": f"Bearer {LOCAL_ANON_KEY}"},
        {"apikey": LOCAL_PUBLISHABLE_KEY, "authorization": f"Bearer {LOCAL_PUBLISHABLE_KEY}"},
        {"authorization": f"Bearer {LOCAL_ANON_KEY}"},
    ],
)
def test_public_mode_accepts_publishable_and_anon_keys(
    settings: Settings, headers: dict[str, str]
) -> None:
    principal = authenticate(headers, ("user", "public"), settings)
    assert principal.kind == "public"
    assert principal.role == "anon"
    assert principal.user_id is None
    assert principal.claims["role"] == "anon"


def test_anon_key_is_not_a_user_token(settings: Settings) -> None:
    err = expect_401(
        "UNAUTHORIZED", lambda: authenticate(bearer(LOCAL_ANON_KEY), ("user",), settings)
    )
    assert "not accepted" in err.message


def test_anon_jwt_signed_with_the_project_secret_is_accepted(settings: Settings) -> None:
    key = hs256({"iss": "supabase", "role": "anon", "exp": int(time.time()) + 60})
    assert authenticate({"apikey": key}, "public", settings).kind == "public"


@pytest.mark.parametrize(
    "apikey",
    [
        "sb_publishable_not_the_right_one",
        hs256({"role": "anon"}, OTHER_SECRET),
        "just-some-string",
    ],
)
def test_wrong_public_key_is_refused(settings: Settings, apikey: str) -> None:
    expect_401("INVALID_API_KEY", lambda: authenticate({"apikey": apikey}, "public", settings))


# secret -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "key_name"),
    [
        ({"apikey": LOCAL_SECRET_KEY}, "default"),
        ({"authorization": f"Bearer {LOCAL_SECRET_KEY}"}, "default"),
        ({"apikey": LOCAL_SECRET_KEY, "authorization": f"Bearer {LOCAL_SECRET_KEY}"}, "default"),
        ({"apikey": PREVIOUS_SECRET_KEY}, "previous"),
        ({"apikey": LOCAL_SERVICE_ROLE_KEY}, "service_role"),
        ({"authorization": f"Bearer {LOCAL_SERVICE_ROLE_KEY}"}, "service_role"),
    ],
)
def test_secret_mode_accepts_secret_and_service_role_keys(
    settings: Settings, headers: dict[str, str], key_name: str
) -> None:
    principal = authenticate(headers, ("user", "secret"), settings)
    assert principal.kind == "secret"
    assert principal.role == "service_role"
    assert principal.is_service
    assert principal.key_name == key_name


def test_service_role_jwt_is_verified_by_signature_and_role(settings: Settings) -> None:
    minted = hs256({"iss": "supabase", "role": "service_role", "exp": int(time.time()) + 60})
    assert authenticate({"apikey": minted}, "secret", settings).kind == "secret"
    forged = hs256({"iss": "supabase", "role": "service_role"}, OTHER_SECRET)
    expect_401("INVALID_API_KEY", lambda: authenticate({"apikey": forged}, "secret", settings))
    expired = hs256({"role": "service_role", "exp": int(time.time()) - 3600})
    expect_401("INVALID_API_KEY", lambda: authenticate({"apikey": expired}, "secret", settings))


def test_wrong_secret_key_is_refused(settings: Settings) -> None:
    for headers in ({"apikey": "sb_secret_wrong"}, bearer("sb_secret_wrong")):
        expect_401("INVALID_API_KEY", partial(authenticate, headers, "secret", settings))


def test_named_secret_key_mode(settings: Settings) -> None:
    principal = authenticate({"apikey": PREVIOUS_SECRET_KEY}, "secret:previous", settings)
    assert principal.key_name == "previous"
    expect_401(
        "INVALID_API_KEY",
        lambda: authenticate({"apikey": LOCAL_SECRET_KEY}, "secret:previous", settings),
    )


def test_publishable_key_does_not_open_a_secret_function(settings: Settings) -> None:
    err = expect_401(
        "UNAUTHORIZED",
        lambda: authenticate({"apikey": LOCAL_PUBLISHABLE_KEY}, ("secret",), settings),
    )
    assert err.hint is not None and "secret" in err.hint
    # Tried in order: a publishable key is absent for `secret`, then matches `public`.
    headers = {"apikey": LOCAL_PUBLISHABLE_KEY}
    assert authenticate(headers, ("secret", "public"), settings).kind == "public"


def test_secret_key_does_not_open_a_public_only_function(settings: Settings) -> None:
    expect_401(
        "UNAUTHORIZED", lambda: authenticate({"apikey": LOCAL_SECRET_KEY}, "public", settings)
    )


def test_non_ascii_keys_are_refused_not_crashed(settings: Settings) -> None:
    headers = {"apikey": "sb_secret_ünïcode"}
    expect_401("INVALID_API_KEY", lambda: authenticate(headers, "secret", settings))


# always and ordering ------------------------------------------------------------------------


def test_always_needs_nothing(settings: Settings) -> None:
    principal = authenticate({}, ("always",), settings)
    assert principal == Principal(kind="none", role="anon", claims={"role": "anon"})
    assert authenticate({}, ("user", "always"), settings).kind == "none"


def test_present_but_invalid_is_never_downgraded(settings: Settings) -> None:
    expired = issue_access_token(USER_ID, expires_in=-120, settings=settings)
    forged = hs256(user_claims(), OTHER_SECRET)
    cases = [
        (bearer(expired) | {"apikey": LOCAL_PUBLISHABLE_KEY}, ("user", "public"), "TOKEN_EXPIRED"),
        (bearer(forged) | {"apikey": LOCAL_SECRET_KEY}, ("user", "secret"), "INVALID_TOKEN"),
        (bearer(forged), ("user", "always"), "INVALID_TOKEN"),
        ({"apikey": "sb_secret_wrong"}, ("secret", "always"), "INVALID_API_KEY"),
        ({"apikey": "sb_publishable_wrong"}, ("public", "always"), "INVALID_API_KEY"),
        (
            {"apikey": LOCAL_PUBLISHABLE_KEY, "authorization": "Bearer sb_secret_wrong"},
            ("secret", "public"),
            "INVALID_API_KEY",
        ),
    ]
    for headers, allow, code in cases:
        expect_401(code, partial(authenticate, headers, allow, settings))


def test_first_matching_mode_wins(settings: Settings) -> None:
    token = issue_access_token(USER_ID, settings=settings)
    headers = bearer(token) | {"apikey": LOCAL_SECRET_KEY}
    assert authenticate(headers, ("user", "secret"), settings).kind == "user"
    assert authenticate(headers, ("secret", "user"), settings).kind == "secret"


def test_unknown_mode_is_a_programming_error(settings: Settings) -> None:
    with pytest.raises(ValueError, match="unknown auth mode"):
        authenticate({}, ("admin",), settings)
    with pytest.raises(ValueError, match="at least one"):
        authenticate({}, (), settings)


# asymmetric keys ----------------------------------------------------------------------------


def ec_key(kid: str) -> tuple[ec.EllipticCurvePrivateKey, dict[str, Any]]:
    private = ec.generate_private_key(ec.SECP256R1())
    public = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    public.update(kid=kid, alg="ES256", use="sig", key_ops=["verify"], ext=True)
    return private, public


def signed(private: Any, kid: str, alg: str = "ES256", **overrides: Any) -> str:
    return jwt.encode(user_claims(**overrides), private, algorithm=alg, headers={"kid": kid})


def test_es256_token_against_inline_jwks() -> None:
    private, public = ec_key("key-1")
    settings = make_settings(jwks=json.dumps({"keys": [public]}))
    principal = authenticate(bearer(signed(private, "key-1")), "user", settings)
    assert principal.user_id == USER_ID
    assert principal.claims["role"] == "authenticated"
    # Unknown kid, wrong key, missing kid, expired: all refused, none downgraded.
    other, _ = ec_key("key-1")
    for token, code in [
        (signed(private, "key-2"), "INVALID_TOKEN"),
        (signed(other, "key-1"), "INVALID_TOKEN"),
        (jwt.encode(user_claims(), private, algorithm="ES256"), "INVALID_TOKEN"),
        (signed(private, "key-1", exp=int(time.time()) - 60), "TOKEN_EXPIRED"),
        (signed(private, "key-1", aud="nobody"), "INVALID_TOKEN"),
    ]:
        expect_401(code, partial(authenticate, bearer(token), ("user", "always"), settings))


def test_rs256_token_and_algorithm_must_match_the_key() -> None:
    rsa_private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_public = RSAAlgorithm.to_jwk(rsa_private.public_key(), as_dict=True)
    rsa_public.update(kid="rsa-1", alg="RS256")
    ec_private, ec_public = ec_key("ec-1")
    settings = make_settings(jwks=json.dumps({"keys": [rsa_public, ec_public]}))
    assert authenticate(bearer(signed(rsa_private, "rsa-1", "RS256")), "user", settings).is_user
    expect_401(
        "INVALID_TOKEN",
        lambda: authenticate(bearer(signed(ec_private, "rsa-1")), "user", settings),
    )


def test_legacy_hs256_still_works_next_to_a_jwks() -> None:
    _, public = ec_key("key-1")
    settings = make_settings(jwks=json.dumps({"keys": [public]}))
    token = issue_access_token(USER_ID, settings=settings)
    assert authenticate(bearer(token), "user", settings).user_id == USER_ID


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class JwksServer:
    """A JWKS endpoint behind httpx.MockTransport that counts its requests."""

    def __init__(self, *keys: dict[str, Any]) -> None:
        self.keys = list(keys)
        self.requests: list[httpx.Request] = []
        self.down = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.down:
            return httpx.Response(503)
        return httpx.Response(200, json={"keys": self.keys})

    def cache(self, clock: FakeClock, url: str) -> JwksCache:
        client = httpx.Client(transport=httpx.MockTransport(self.handle))
        return JwksCache(url, client=client, ttl_s=600, cooldown_s=30, clock=clock)


JWKS_URL = "http://127.0.0.1:54321/auth/v1/.well-known/jwks.json"


def test_es256_token_against_fetched_jwks_is_cached(settings: Settings) -> None:
    private, public = ec_key("key-1")
    server, clock = JwksServer(public), FakeClock()
    jwks = server.cache(clock, JWKS_URL)
    for _ in range(3):
        principal = authenticate(bearer(signed(private, "key-1")), "user", settings, jwks=jwks)
        assert principal.user_id == USER_ID
    assert len(server.requests) == 1
    assert str(server.requests[0].url) == JWKS_URL
    clock.now += 601  # past the TTL
    authenticate(bearer(signed(private, "key-1")), "user", settings, jwks=jwks)
    assert len(server.requests) == 2


def test_unknown_kid_triggers_one_refetch(settings: Settings) -> None:
    old_private, old_public = ec_key("old")
    new_private, new_public = ec_key("new")
    server, clock = JwksServer(old_public), FakeClock()
    jwks = server.cache(clock, JWKS_URL)
    authenticate(bearer(signed(old_private, "old")), "user", settings, jwks=jwks)
    server.keys.append(new_public)  # Supabase rotates in a new signing key
    # Within the cooldown an unknown kid is refused without a request...
    expect_401(
        "INVALID_TOKEN",
        lambda: authenticate(bearer(signed(new_private, "new")), "user", settings, jwks=jwks),
    )
    assert len(server.requests) == 1
    # ...after it, exactly one refetch finds the new key.
    clock.now += 31
    assert authenticate(bearer(signed(new_private, "new")), "user", settings, jwks=jwks).is_user
    assert len(server.requests) == 2
    # A kid that is still unknown after the refetch is refused, and does not refetch again.
    expect_401(
        "INVALID_TOKEN",
        lambda: authenticate(bearer(signed(new_private, "nope")), "user", settings, jwks=jwks),
    )
    assert len(server.requests) == 2


def test_jwks_endpoint_down(settings: Settings) -> None:
    private, public = ec_key("key-1")
    server, clock = JwksServer(public), FakeClock()
    server.down = True
    jwks = server.cache(clock, JWKS_URL)
    token = signed(private, "key-1")
    with pytest.raises(ServiceUnavailable) as info:
        authenticate(bearer(token), "user", settings, jwks=jwks)
    assert info.value.code == "JWKS_UNAVAILABLE"
    with pytest.raises(ServiceUnavailable):  # within the cooldown: no new request
        authenticate(bearer(token), "user", settings, jwks=jwks)
    assert len(server.requests) == 1
    server.down = False
    clock.now += 31
    assert authenticate(bearer(token), "user", settings, jwks=jwks).is_user
    server.down = True
    clock.now += 601  # stale, and the refresh fails: the last good keys still verify
    assert authenticate(bearer(token), "user", settings, jwks=jwks).is_user


def test_default_key_sources(settings: Settings) -> None:
    remote = jwks_for(settings)
    assert isinstance(remote, JwksCache)
    assert remote.url == JWKS_URL
    assert jwks_for(settings) is remote
    _, public = ec_key("k")
    inline = jwks_for(make_settings(jwks=json.dumps(public)))  # a bare JWK works too
    assert isinstance(inline, StaticJwks)
    assert inline.get("k") is not None


# cron ---------------------------------------------------------------------------------------


def test_cron_secret(settings: Settings) -> None:
    secret = settings.cron_secret.get_secret_value()
    check_cron_secret({"X-Cron-Secret": secret}, settings)
    check_cron_secret(bearer(secret), settings)
    for headers in ({}, {"x-cron-secret": "wrong"}, bearer("wrong"), {"x-cron-secret": "ünï"}):
        expect_401("UNAUTHORIZED", partial(check_cron_secret, headers, settings))


def test_a_verified_token_is_not_verified_again_within_a_minute(monkeypatch):
    """Most of auth's cost is the signature check: once per token per minute, never past
    its exp, and never carried over to other settings."""
    import videogen.kit.auth as auth_module
    from videogen.kit.auth import issue_access_token

    settings = Settings(SUPABASE_JWT_SECRET="s" * 40)
    token = issue_access_token(uuid.uuid4(), settings=settings)
    calls = []
    real = auth_module._verify_user_token
    monkeypatch.setattr(auth_module, "_verify_user_token", lambda *a: calls.append(1) or real(*a))
    headers = {"Authorization": f"Bearer {token}"}
    first = authenticate(headers, ("user",), settings)
    assert authenticate(headers, ("user",), settings) == first
    assert len(calls) == 1
    with pytest.raises(Unauthorized):  # another secret: verified again, and refused
        authenticate(headers, ("user",), Settings(SUPABASE_JWT_SECRET="t" * 40))
    assert len(calls) == 2
    expired = issue_access_token(uuid.uuid4(), settings=settings, expires_in=-60)
    for _ in range(2):
        with pytest.raises(Unauthorized):
            authenticate({"Authorization": f"Bearer {expired}"}, ("user",), settings)


def test_api_key_modes_name_a_known_scope(settings: Settings) -> None:
    with pytest.raises(ValueError, match="scope"):
        authenticate({}, ("user", "api_key:admin"), settings)
    # A route that takes keys but gets none asks for either credential.
    with pytest.raises(Unauthorized) as caught:
        authenticate({}, ("user", "api_key:read"), settings)
    assert "vg_live_" in (caught.value.hint or "")


def test_a_malformed_personal_key_is_refused_before_any_lookup(settings: Settings) -> None:
    for headers in ({"Authorization": "Bearer vg_live_short"}, {"X-API-Key": "vg_nope"}):
        with pytest.raises(Unauthorized) as caught:
            authenticate(headers, ("user", "api_key:read"), settings)
        assert caught.value.code == "INVALID_API_KEY"
