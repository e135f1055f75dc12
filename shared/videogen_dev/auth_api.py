"""A local Supabase Auth (GoTrue) API at ``/auth/v1``, for the real clients (supabase_auth,
auth-js) used unchanged.

Users are the rows of ``auth.users`` (the profile trigger gives each new one its profile),
with GoTrue's ``auth.identities``, ``auth.sessions``, ``auth.refresh_tokens`` and
``auth.mfa_amr_claims`` from the platform stand-in (sql/platform/10_auth.sql). Passwords are
bcrypt hashes made by pgcrypto (``$2a$10$…``, as GoTrue writes them). Refresh tokens are
rotated on every use; the database keeps only their SHA-256 (GoTrue keeps them as given).

Access tokens are ES256 JWTs with a ``kid``, signed by a P-256 key generated once and kept
in ``<VIDEOGEN_HOME>/auth/signing_key.pem`` (mode 0600), so tokens survive restarts; the
public key is served at ``/.well-known/jwks.json`` and the functions verify tokens through
it, as against a hosted project with asymmetric keys. Legacy HS256 tokens (the local JWT
secret) are accepted where a token is read. The key, the token checks and the API-key
checks are the platform's own (videogen_dev.platform_keys), not the functions' code.

Local settings are those of ``supabase start``: email sign-ups are confirmed at once
(``mailer_autoconfirm``), anonymous sign-ins are on, a password needs 6 characters, a
revoked refresh token may be reused for ``refresh_token_reuse_interval`` seconds (10) after
its use, and at any time while it is the parent of the session's active one (the client lost
the answer of its last refresh); once a reuse has revoked a session's tokens, none of them
refreshes again.

Against abuse, as GoTrue does it (the settings, from config.toml, and the mechanisms are in
videogen_dev.auth_guard):

- rate limits per client (``[auth.rate_limit]``): 429 ``over_request_rate_limit``;
- CAPTCHA on sign-ups and sign-ins when ``[auth.captcha]`` is enabled: 400 ``captcha_failed``;
- a password check that costs one bcrypt whether the email is known or not;
- banned users (``banned_until`` in the future) refused on sign-in, on refresh and on every
  route that takes an access token: ``user_banned``.

Errors have GoTrue's shape: ``{"code": <status>, "error_code": …, "msg": …}``, or
``{"code": …, "message": …}`` when the client sends ``X-Supabase-Api-Version: 2024-01-01``
(auth-js and supabase_auth do), the version then echoed in the answer's header.

Served (paths under /auth/v1): ``POST /signup`` (email + password, or anonymous),
``POST /token?grant_type=password|refresh_token``, ``GET|PUT /user``, ``POST /logout``
(``scope=global|local|others``), ``GET /.well-known/jwks.json``, ``GET /settings``,
``GET /health``, ``DELETE /admin/users/{id}`` (the service role only; a hard delete).
Not served: phone / SMS, magic links and OTP (``/otp``, ``/verify``, ``/magiclink``,
``/recover``, ``/resend``), OAuth / SSO / SAML (``/authorize``, ``/callback``, ``/sso``),
PKCE, MFA (``/factors``), ``/reauthenticate``, ``/user/identities``, the rest of the admin
API (``/admin/*``, ``/invite``) and the hooks.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from videogen_dev.auth_guard import (
    AuthSettings,
    CaptchaUnavailable,
    CaptchaVerifier,
    RateLimiter,
)
from videogen_dev.platform_keys import (
    Rejected,
    SigningKey,
    UnknownKey,
    decode_access_token,
    identify,
    local_signing_key,
    signing_key_path,
)
from videogen_dev.servicepool import LazyPool

if TYPE_CHECKING:
    import httpx

API_VERSION = "2024-01-01"
JWT_EXPIRY_S = 3600  # GoTrue's default (auth.jwt_expiry)
MIN_PASSWORD_LENGTH = 6
INSTANCE_ID = "00000000-0000-0000-0000-000000000000"
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# A bcrypt hash of a random password nobody has, at the cost GoTrue stores passwords with
# (10): a sign-in for an unknown email (or a user without a password) is checked against
# it, so it costs the same bcrypt as a known one and its timing tells nothing.
DUMMY_PASSWORD_HASH = "$2a$10$l7b3gC47gqH7SNTAVfyDEuAaCdD76yUTh0X59utA6KaaMHKIO2qTK"  # noqa: S105


# Errors -----------------------------------------------------------------------------------
class AuthError(Exception):
    """An error answered in GoTrue's JSON shape."""

    def __init__(
        self, status: int, error_code: str, message: str, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.error_code, self.message = status, error_code, message
        self.extra = extra or {}

    def response(self, request: Request) -> Response:
        """GoTrue's body for the API version the client asked for."""
        if _api_version(request) >= API_VERSION:
            body: dict[str, Any] = {"code": self.error_code, "message": self.message}
        else:
            body = {"code": self.status, "error_code": self.error_code, "msg": self.message}
        body.update(self.extra)
        return Response(json.dumps(body), self.status, mimetype="application/json")


def _api_version(request: Request) -> str:
    value = request.headers.get("X-Supabase-Api-Version", "").strip()
    return value if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else ""


def validation_failed(message: str, status: int = 400) -> AuthError:
    return AuthError(status, "validation_failed", message)


def invalid_credentials() -> AuthError:
    return AuthError(400, "invalid_credentials", "Invalid login credentials")


def bad_jwt(message: str) -> AuthError:
    return AuthError(403, "bad_jwt", f"invalid JWT: unable to parse or verify signature, {message}")


def over_rate_limit() -> AuthError:
    return AuthError(429, "over_request_rate_limit", "Request rate limit reached")


def captcha_failed(reason: str) -> AuthError:
    return AuthError(400, "captcha_failed", f"captcha protection: request disallowed ({reason})")


# The app ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Session:
    """A signed-in session: its row id, user, and how it was authenticated."""

    id: str
    user_id: str
    method: str
    signed_in_at: int


class AuthApi:
    """The WSGI app; one database pool per process, opened on the first request.

    ``settings`` default to config.toml's (``AuthSettings.load``); ``clock`` (seconds since
    the epoch) times the rate limits and refresh-token reuse, so tests can move it;
    ``captcha_transport`` replaces the network to the CAPTCHA provider.
    """

    USER_COLUMNS = (
        "id, aud, role, email, phone, email_confirmed_at, phone_confirmed_at, confirmed_at, "
        "last_sign_in_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at, "
        "is_anonymous, is_sso_user, banned_until, deleted_at, confirmation_sent_at, "
        "recovery_sent_at, email_change_sent_at, invited_at"
    )

    def __init__(
        self,
        dsn: str | None = None,
        key_path: Path | None = None,
        *,
        settings: AuthSettings | None = None,
        clock: Callable[[], float] = time.time,
        captcha_transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._key_path = key_path
        self._key: SigningKey | None = None
        self._pool = LazyPool("videogen-auth", dsn)
        self._lock = threading.Lock()
        self.settings = settings or AuthSettings.load()
        self.clock = clock
        self.limiter = RateLimiter(self.settings.limits(), clock)
        self.captcha = (
            CaptchaVerifier(self.settings.captcha, transport=captcha_transport)
            if self.settings.captcha
            else None
        )
        R = Rule
        self.urls = Map(
            [
                R("/health", methods=["GET"], endpoint="health"),
                R("/settings", methods=["GET"], endpoint="settings"),
                R("/.well-known/jwks.json", methods=["GET"], endpoint="jwks"),
                R("/signup", methods=["POST"], endpoint="signup"),
                R("/token", methods=["POST"], endpoint="token"),
                R("/user", methods=["GET"], endpoint="get_user"),
                R("/user", methods=["PUT"], endpoint="put_user"),
                R("/logout", methods=["POST"], endpoint="logout"),
                R("/admin/users/<user_id>", methods=["DELETE"], endpoint="admin_delete_user"),
            ],
            strict_slashes=False,
            merge_slashes=False,
        )

    # Plumbing -----------------------------------------------------------------------------
    @property
    def key(self) -> SigningKey:
        with self._lock:
            if self._key is None:
                key = local_signing_key(self._key_path or signing_key_path())
                assert key is not None  # created when absent
                self._key = key
            return self._key

    def pool(self) -> Any:
        return self._pool.get()

    def close(self) -> None:
        """Close the database pool and the CAPTCHA client (a server that stops)."""
        self._pool.close()
        if self.captcha is not None:
            self.captcha.close()

    # Abuse --------------------------------------------------------------------------------
    def _limit(self, limiter: str, request: Request) -> None:
        """Take a token from the client's bucket of GoTrue's ``limiter``, or answer 429."""
        if not self.limiter.allow(limiter, self._client_key(request)):
            raise over_rate_limit()

    def _client_key(self, request: Request) -> str | None:
        """Who a rate limit counts: the header GoTrue is told to read (its first value; none,
        no limit), else the address the request came from."""
        header = self.settings.rate_limit_header
        if header:
            return request.headers.get(header, "").split(",", 1)[0].strip() or None
        return request.remote_addr or None

    def _require_captcha(self, request: Request, body: dict[str, Any]) -> None:
        """GoTrue's verifyCaptcha: when enabled, the body's ``gotrue_meta_security.
        captcha_token`` must pass the provider's check (the service role needs none)."""
        if self.captcha is None or _is_service_role(request):
            return
        security = body.get("gotrue_meta_security")
        token = _text(security.get("captcha_token") if isinstance(security, dict) else None)
        if not token.strip():
            raise captcha_failed("no captcha_token found")
        try:
            verdict = self.captcha.verify(token.strip(), _ip(request))
        except CaptchaUnavailable as exc:
            failed = "captcha verification process failed"
            raise AuthError(500, "unexpected_failure", failed) from exc
        if not verdict.success:
            raise captcha_failed(", ".join(verdict.error_codes))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        """One transaction as the connection's owner (GoTrue's supabase_auth_admin)."""
        import psycopg

        try:
            with self.pool().connection() as conn, conn.transaction():
                yield conn
        except psycopg.Error as exc:
            state = getattr(exc, "sqlstate", None)
            if state is None:
                raise AuthError(500, "unexpected_failure", "Database is unavailable") from exc
            if state == "42P01":  # a database made before the stand-in had GoTrue's tables
                raise AuthError(
                    500,
                    "unexpected_failure",
                    "The auth tables are missing (auth.sessions, auth.refresh_tokens…): "
                    "restart with `videogen up`, which adds them to an older database",
                ) from exc
            raise AuthError(500, "unexpected_failure", "Database error") from exc

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        if request.method == "OPTIONS":  # a browser's preflight
            response = Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, DELETE"
            response.headers["Access-Control-Allow-Headers"] = request.headers.get(
                "Access-Control-Request-Headers",
                "authorization, apikey, content-type, x-client-info, x-supabase-api-version",
            )
            response.headers["Access-Control-Max-Age"] = "3600"
        else:
            try:
                endpoint, args = self.urls.bind_to_environ(environ).match()
                if endpoint != "jwks":  # the JWKS is public; the rest needs a project key
                    _check_apikey(request)
                response = getattr(self, f"on_{endpoint}")(request, **args)
            except AuthError as exc:
                response = exc.response(request)
            except HTTPException as exc:
                code = exc.code or 400
                kind = "not_found" if code == 404 else "validation_failed"
                response = AuthError(code, kind, exc.description or exc.name).response(request)
        if _api_version(request) >= API_VERSION:  # GoTrue echoes the version it answered in
            response.headers["X-Supabase-Api-Version"] = API_VERSION
        response.headers["Access-Control-Allow-Origin"] = _cors_origin()
        response.headers["Access-Control-Expose-Headers"] = (
            "X-Total-Count, Link, X-Supabase-Api-Version"
        )
        return response(environ, start_response)

    # Public endpoints ---------------------------------------------------------------------
    def on_health(self, request: Request) -> Response:
        return _json(
            {
                "version": "videogen-local",
                "name": "GoTrue",
                "description": "GoTrue is a user registration and authentication API",
            }
        )

    def on_settings(self, request: Request) -> Response:
        providers = [
            *("anonymous_users", "apple", "azure", "bitbucket", "discord", "facebook"),
            *("figma", "fly", "github", "gitlab", "google", "keycloak", "kakao", "linkedin"),
            *("linkedin_oidc", "notion", "spotify", "slack", "slack_oidc", "workos"),
            *("twitch", "twitter", "zoom", "email", "phone"),
        ]
        external = dict.fromkeys(providers, False)
        external.update(anonymous_users=True, email=True)
        return _json(
            {
                "external": external,
                "disable_signup": False,
                "mailer_autoconfirm": True,
                "phone_autoconfirm": False,
                "sms_provider": "",
                "saml_enabled": False,
            }
        )

    def on_jwks(self, request: Request) -> Response:
        return _json({"keys": [self.key.jwk]}, headers={"Cache-Control": "public, max-age=600"})

    # Sign-up and sign-in ------------------------------------------------------------------
    def on_signup(self, request: Request) -> Response:
        body = _body(request)
        self._require_captcha(request, body)
        email = _text(body.get("email")).strip().lower()
        phone = _text(body.get("phone")).strip()
        password = _text(body.get("password"))
        # Anonymous sign-ins and sign-ups count in separate buckets, before any other check.
        self._limit("signups" if email or phone else "anonymous", request)
        data = body.get("data") or {}
        if not isinstance(data, dict):
            raise validation_failed("data must be an object")
        if phone:
            raise AuthError(400, "phone_provider_disabled", "Unsupported phone provider")
        with self.transaction() as conn:
            if not email:
                if password:
                    raise validation_failed("Signup requires a valid email or phone")
                user_id = self._create_user(conn, None, None, data, anonymous=True)
                session = self._start_session(conn, user_id, "anonymous", request)
            else:
                _check_email(email)
                _check_password(password)
                taken = conn.execute(
                    "select 1 from auth.users where lower(email) = %s and not is_sso_user",
                    (email,),
                ).fetchone()
                if taken:
                    raise AuthError(422, "user_already_exists", "User already registered")
                user_id = self._create_user(conn, email, password, data, anonymous=False)
                session = self._start_session(conn, user_id, "password", request)
            return _json(self._session_body(conn, session))

    def on_token(self, request: Request) -> Response:
        grant = request.args.get("grant_type", "")
        body = _body(request)
        if grant not in ("refresh_token", "pkce", "id_token"):  # GoTrue's captcha-free grants
            self._require_captcha(request, body)
        if grant not in ("password", "refresh_token"):
            raise validation_failed("unsupported_grant_type")
        self._limit("token", request)  # password sign-ins and refreshes share GoTrue's bucket
        with self.transaction() as conn:
            if grant == "password":
                session = self._password_grant(conn, body, request)
                return _json(self._session_body(conn, session))
            answer = self._refresh_grant(conn, body)
        if isinstance(answer, AuthError):
            raise answer  # after the commit: the revoked token family stays revoked
        return _json(answer)

    def _password_grant(self, conn: Any, body: dict[str, Any], request: Request) -> Session:
        email = _text(body.get("email")).strip().lower()
        password = _text(body.get("password"))
        if _text(body.get("phone")).strip() and not email:
            raise invalid_credentials()
        if not email:
            raise validation_failed("missing email or phone")
        row = conn.execute(
            "select id::text, encrypted_password, coalesce(banned_until > now(), false) "
            "from auth.users where lower(email) = %s and not is_sso_user and deleted_at is null",
            (email,),
        ).fetchone()
        stored = row[1] if row and row[1] else None
        # One bcrypt whatever the email: an unknown one is checked against the dummy hash,
        # so the answer takes as long as for a known one and its timing tells nothing.
        matched = verify_password(conn, password, stored or DUMMY_PASSWORD_HASH)
        if row is None or stored is None:
            raise invalid_credentials()
        if row[2]:  # GoTrue says so before it looks at the password
            raise AuthError(400, "user_banned", "User is banned")
        if not matched:
            raise invalid_credentials()
        user_id = row[0]
        conn.execute(
            "update auth.identities set last_sign_in_at = now(), updated_at = now() "
            "where user_id = %s and provider = 'email'",
            (user_id,),
        )
        return self._start_session(conn, user_id, "password", request)

    def _refresh_grant(self, conn: Any, body: dict[str, Any]) -> dict[str, Any] | AuthError:
        """A rotated session, or the error to answer once the transaction is committed."""
        given = _text(body.get("refresh_token"))
        if not given:
            raise validation_failed("refresh_token required")
        row = conn.execute(
            "select t.id, t.token, t.revoked, t.session_id::text, t.updated_at, t.user_id, "
            "coalesce(u.banned_until > now(), false) from auth.refresh_tokens t "
            "left join auth.users u on u.id::text = t.user_id "
            "where t.token = %s for update of t",
            (_digest(given),),
        ).fetchone()
        if row is None or row[3] is None:
            raise AuthError(
                400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found"
            )
        token_id, token_hash, revoked, session_id, updated_at, user_id, banned = row
        if banned:  # GoTrue's answer, before it looks at the session or the token's state
            raise AuthError(400, "user_banned", "Invalid Refresh Token: User Banned")
        session = self._load_session(conn, session_id)
        if session is None:
            raise AuthError(
                400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found"
            )
        if revoked:
            active = conn.execute(
                "select id, parent, token from auth.refresh_tokens "
                "where session_id = %s and not revoked order by id desc limit 1",
                (session_id,),
            ).fetchone()
            already_used = AuthError(
                400, "refresh_token_already_used", "Invalid Refresh Token: Already Used"
            )
            if active is None:
                # Every token of the session is revoked: a reuse revoked the family, and
                # nothing in a revoked session refreshes, within the reuse interval or not.
                # (Rotation always leaves one active token, and a sign-out deletes the row.)
                return already_used
            if active[1] == token_hash:
                # The parent of the active token: the client lost the answer of its last
                # refresh, which GoTrue allows at any time by handing the active token back.
                # Only its hash is kept here, so the active one is rotated instead.
                token_id, token_hash = active[0], active[2]
            elif self.clock() > updated_at.timestamp() + self.settings.refresh_token_reuse_interval:
                # A reused token: the session's token family is revoked (GoTrue's answer).
                conn.execute(
                    "update auth.refresh_tokens set revoked = true, updated_at = to_timestamp(%s)"
                    " where session_id = %s and not revoked",
                    (self.clock(), session_id),
                )
                return already_used
            # Else within the reuse interval (concurrent refreshes): a new child of it.
        conn.execute(
            "update auth.refresh_tokens set revoked = true, updated_at = to_timestamp(%s) "
            "where id = %s and not revoked",
            (self.clock(), token_id),
        )
        refresh_token = self._new_refresh_token(conn, user_id, session_id, token_hash)
        conn.execute(
            "update auth.sessions set refreshed_at = now() at time zone 'utc', updated_at = now()"
            " where id = %s",
            (session_id,),
        )
        return self._session_body(conn, session, refresh_token=refresh_token)

    # The signed-in user -------------------------------------------------------------------
    def on_get_user(self, request: Request) -> Response:
        with self.transaction() as conn:
            session = self._caller(conn, request)
            return _json(self._user_json(conn, session.user_id))

    def on_put_user(self, request: Request) -> Response:
        body = _body(request)
        with self.transaction() as conn:
            session = self._caller(conn, request)
            self._limit("user", request)  # after authentication, as GoTrue's route does
            user_id = session.user_id
            data = body.get("data")
            if data is not None:
                if not isinstance(data, dict):
                    raise validation_failed("data must be an object")
                conn.execute(
                    "update auth.users set raw_user_meta_data = jsonb_strip_nulls("
                    "coalesce(raw_user_meta_data, '{}') || %s::jsonb), updated_at = now() "
                    "where id = %s",
                    (json.dumps(data), user_id),
                )
            email = _text(body.get("email")).strip().lower()
            if email:
                self._change_email(conn, user_id, email)
            password = body.get("password")
            if password is not None:
                self._change_password(conn, user_id, _text(password))
            return _json(self._user_json(conn, user_id))

    def _change_email(self, conn: Any, user_id: str, email: str) -> None:
        """Set the email at once (local autoconfirm); an anonymous user becomes permanent."""
        _check_email(email)
        current = conn.execute("select email from auth.users where id = %s", (user_id,)).fetchone()
        if current and current[0] == email:
            return
        taken = conn.execute(
            "select 1 from auth.users where lower(email) = %s and id <> %s and not is_sso_user",
            (email, user_id),
        ).fetchone()
        if taken:
            raise AuthError(
                422, "email_exists", "A user with this email address has already been registered"
            )
        identity = _identity_data(user_id, email)
        conn.execute(
            "update auth.users set email = %s, email_confirmed_at = now(), is_anonymous = false,"
            " raw_app_meta_data = coalesce(raw_app_meta_data, '{}') || %s::jsonb,"
            " raw_user_meta_data = coalesce(raw_user_meta_data, '{}') || %s::jsonb,"
            " updated_at = now() where id = %s",
            (
                email,
                json.dumps({"provider": "email", "providers": ["email"]}),
                json.dumps(identity),
                user_id,
            ),
        )
        conn.execute(
            "insert into auth.identities (provider_id, user_id, identity_data, provider, "
            "last_sign_in_at, created_at, updated_at) values (%s, %s, %s, 'email', now(), "
            "now(), now()) on conflict (provider_id, provider) do update set "
            "identity_data = excluded.identity_data, updated_at = now()",
            (user_id, user_id, json.dumps(identity)),
        )

    @staticmethod
    def _change_password(conn: Any, user_id: str, password: str) -> None:
        _check_password(password)
        same = conn.execute(
            "select encrypted_password is not null "
            "and extensions.crypt(%s, encrypted_password) = encrypted_password "
            "from auth.users where id = %s",
            (password, user_id),
        ).fetchone()
        if same and same[0]:
            raise AuthError(
                422, "same_password", "New password should be different from the old password."
            )
        conn.execute(
            "update auth.users set encrypted_password = "
            "extensions.crypt(%s, extensions.gen_salt('bf', 10)), updated_at = now() "
            "where id = %s",
            (password, user_id),
        )

    def on_logout(self, request: Request) -> Response:
        scope = request.args.get("scope", "global")
        if scope not in ("global", "local", "others"):
            raise validation_failed(
                "Unsupported logout scope, must be one of (global, local, others)"
            )
        with self.transaction() as conn:
            session = self._caller(conn, request)
            # Deleting a session deletes its refresh tokens (and amr claims) with it.
            if scope == "local":
                conn.execute("delete from auth.sessions where id = %s", (session.id,))
            elif scope == "others":
                conn.execute(
                    "delete from auth.sessions where user_id = %s and id <> %s",
                    (session.user_id, session.id),
                )
            else:
                conn.execute("delete from auth.sessions where user_id = %s", (session.user_id,))
        return Response(status=204)

    # Admin ---------------------------------------------------------------------------------
    def on_admin_delete_user(self, request: Request, user_id: str) -> Response:
        """GoTrue's adminUserDelete: the service role deletes a user for good (their
        identities, sessions and refresh tokens go with the row, and our own rows by their
        foreign keys); 200 ``{}``. A soft delete (``should_soft_delete``) is not served."""
        _require_admin(request)
        try:
            uid = str(uuid.UUID(user_id))
        except ValueError as exc:
            raise AuthError(404, "user_not_found", "User not found") from exc
        if _body(request).get("should_soft_delete") is True:
            raise validation_failed("Soft deletes are not served by the local Auth API.")
        with self.transaction() as conn:
            gone = conn.execute("delete from auth.users where id = %s", (uid,)).rowcount
        if not gone:
            raise AuthError(404, "user_not_found", "User not found")
        return _json({})

    # Sessions and tokens ------------------------------------------------------------------
    def _caller(self, conn: Any, request: Request) -> Session:
        """The session behind the request's access token (GoTrue's requireAuthentication)."""
        scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError(401, "no_authorization", "This endpoint requires a Bearer token")
        claims = self._verify(token)
        try:
            user_id = str(uuid.UUID(str(claims.get("sub"))))
        except ValueError as exc:
            raise bad_jwt("invalid claims") from exc
        user = conn.execute(
            "select coalesce(banned_until > now(), false) from auth.users "
            "where id = %s and deleted_at is null",
            (user_id,),
        ).fetchone()
        if user is None:
            raise AuthError(403, "user_not_found", "User from sub claim in JWT does not exist")
        if user[0]:  # an access token issued before the ban is refused too (GoTrue)
            raise AuthError(403, "user_banned", "User is banned")
        session = self._load_session(conn, str(claims.get("session_id") or ""))
        if session is None or session.user_id != user_id:
            raise AuthError(
                403, "session_not_found", "Session from session_id claim in JWT does not exist"
            )
        return session

    def _verify(self, token: str) -> dict[str, Any]:
        """Claims of an access token signed by our ES256 key (or the legacy HS256 secret)."""
        import jwt

        try:
            return decode_access_token(token, only_key=self.key)
        except UnknownKey as exc:
            raise bad_jwt("signing method or key not recognised") from exc
        except jwt.ExpiredSignatureError as exc:
            raise bad_jwt("token has invalid claims: token is expired") from exc
        except jwt.InvalidTokenError as exc:
            raise bad_jwt(str(exc)) from exc

    @staticmethod
    def _load_session(conn: Any, session_id: str) -> Session | None:
        try:
            sid = str(uuid.UUID(session_id))
        except ValueError:
            return None
        row = conn.execute(
            "select s.id::text, s.user_id::text, "
            "coalesce(c.authentication_method, 'password'), "
            "extract(epoch from coalesce(c.created_at, s.created_at))::bigint "
            "from auth.sessions s left join lateral (select authentication_method, created_at "
            "from auth.mfa_amr_claims where session_id = s.id order by created_at limit 1) c "
            "on true where s.id = %s and (s.not_after is null or s.not_after > now())",
            (sid,),
        ).fetchone()
        return Session(row[0], row[1], row[2], int(row[3])) if row else None

    def _create_user(
        self,
        conn: Any,
        email: str | None,
        password: str | None,
        data: dict[str, Any],
        *,
        anonymous: bool,
    ) -> str:
        user_id = str(uuid.uuid4())
        if anonymous:
            app_meta: dict[str, Any] = {}
            user_meta = dict(data)
        else:
            app_meta = {"provider": "email", "providers": ["email"]}
            user_meta = {**data, **_identity_data(user_id, email or "")}
        conn.execute(
            "insert into auth.users (instance_id, id, aud, role, email, encrypted_password, "
            "email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at,"
            " is_anonymous, confirmation_token, recovery_token, email_change_token_new, "
            "email_change) values (%s, %s, 'authenticated', 'authenticated', %s, "
            "case when %s::text is null then null "
            "else extensions.crypt(%s, extensions.gen_salt('bf', 10)) end, "
            "case when %s::text is null then null else now() end, %s, %s, now(), now(), %s, "
            "'', '', '', '')",
            (
                INSTANCE_ID,
                user_id,
                email,
                password,
                password,
                email,
                json.dumps(app_meta),
                json.dumps(user_meta),
                anonymous,
            ),
        )
        if email:
            conn.execute(
                "insert into auth.identities (provider_id, user_id, identity_data, provider, "
                "last_sign_in_at, created_at, updated_at) values (%s, %s, %s, 'email', now(), "
                "now(), now())",
                (user_id, user_id, json.dumps(_identity_data(user_id, email))),
            )
        return user_id

    def _start_session(self, conn: Any, user_id: str, method: str, request: Request) -> Session:
        session_id = str(uuid.uuid4())
        conn.execute(
            "insert into auth.sessions (id, user_id, created_at, updated_at, aal, refreshed_at,"
            " user_agent, ip) values (%s, %s, now(), now(), 'aal1', now() at time zone 'utc',"
            " %s, %s::inet)",
            (session_id, user_id, request.user_agent.string or None, _ip(request)),
        )
        conn.execute(
            "insert into auth.mfa_amr_claims (session_id, created_at, updated_at, "
            "authentication_method, id) values (%s, now(), now(), %s, %s)",
            (session_id, method, str(uuid.uuid4())),
        )
        conn.execute("update auth.users set last_sign_in_at = now() where id = %s", (user_id,))
        return Session(session_id, user_id, method, int(time.time()))

    def _new_refresh_token(
        self, conn: Any, user_id: str, session_id: str, parent: str | None
    ) -> str:
        token = secrets.token_urlsafe(16)
        now = self.clock()  # the reuse interval runs from these times, on the same clock
        conn.execute(
            "insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at,"
            " updated_at, parent, session_id) values (%s, %s, %s, false, to_timestamp(%s), "
            "to_timestamp(%s), %s, %s)",
            (INSTANCE_ID, _digest(token), user_id, now, now, parent, session_id),
        )
        return token

    def _session_body(
        self, conn: Any, session: Session, *, refresh_token: str | None = None
    ) -> dict[str, Any]:
        """GoTrue's AccessTokenResponse: a new access token, the refresh token, the user."""
        from videogen.config import get_settings

        settings = get_settings()
        if refresh_token is None:
            refresh_token = self._new_refresh_token(conn, session.user_id, session.id, None)
        user = self._user_json(conn, session.user_id)
        now = int(time.time())
        claims = {
            "iss": settings.supabase_url.rstrip("/") + "/auth/v1",
            "sub": user["id"],
            "aud": settings.jwt_audience,
            "exp": now + JWT_EXPIRY_S,
            "iat": now,
            "email": user["email"],
            "phone": user["phone"],
            "app_metadata": user["app_metadata"],
            "user_metadata": user["user_metadata"],
            "role": user["role"] or "authenticated",  # GoTrue's default group
            "aal": "aal1",
            "amr": [{"method": session.method, "timestamp": session.signed_in_at}],
            "session_id": session.id,
            "is_anonymous": user["is_anonymous"],
        }
        return {
            "access_token": self.key.sign(claims),
            "token_type": "bearer",
            "expires_in": JWT_EXPIRY_S,
            "expires_at": now + JWT_EXPIRY_S,
            "refresh_token": refresh_token,
            "user": user,
        }

    def _user_json(self, conn: Any, user_id: str) -> dict[str, Any]:
        """A user as GoTrue's ``GET /user`` answers it."""
        cur = conn.execute(
            f"select {self.USER_COLUMNS} from auth.users where id = %s",  # noqa: S608 - constant
            (user_id,),
        )
        row = cur.fetchone()
        if row is None:
            raise AuthError(404, "user_not_found", "User not found")
        u = dict(zip([c.name for c in cur.description], row, strict=True))
        identities = conn.execute(
            "select id::text, provider_id, user_id::text, identity_data, provider, "
            "last_sign_in_at, created_at, updated_at, email from auth.identities "
            "where user_id = %s order by created_at",
            (user_id,),
        ).fetchall()
        body: dict[str, Any] = {
            "id": str(u["id"]),
            "aud": u["aud"] or "",
            "role": u["role"] or "",
            "email": u["email"] or "",
            "phone": u["phone"] or "",
        }
        optional = (  # GoTrue leaves these out when null (omitempty)
            "email_confirmed_at",
            "phone_confirmed_at",
            "confirmation_sent_at",
            "confirmed_at",
            "recovery_sent_at",
            "email_change_sent_at",
            "invited_at",
            "last_sign_in_at",
        )
        body.update({k: _iso(u[k]) for k in optional if u[k] is not None})
        body["app_metadata"] = u["raw_app_meta_data"] or {}
        body["user_metadata"] = u["raw_user_meta_data"] or {}
        body["identities"] = [
            {
                "identity_id": i[0],
                "id": i[1],
                "user_id": i[2],
                "identity_data": i[3] or {},
                "provider": i[4],
                **({"last_sign_in_at": _iso(i[5])} if i[5] is not None else {}),
                "created_at": _iso(i[6]),
                "updated_at": _iso(i[7]),
                **({"email": i[8]} if i[8] else {}),
            }
            for i in identities
        ]
        body["created_at"] = _iso(u["created_at"])
        body["updated_at"] = _iso(u["updated_at"])
        for key in ("banned_until", "deleted_at"):
            if u[key] is not None:
                body[key] = _iso(u[key])
        body["is_anonymous"] = bool(u["is_anonymous"])
        return body


# Helpers ----------------------------------------------------------------------------------
def _check_apikey(request: Request) -> None:
    """A project key in ``apikey`` (Kong's key-auth on Supabase), else 401."""
    apikey = request.headers.get("apikey", "").strip()
    if not apikey:
        raise AuthError(401, "no_api_key", "No API key found in request")
    try:
        identify(apikey=apikey, allow=("secret", "public"))
    except Rejected as exc:
        raise AuthError(401, "invalid_api_key", "Invalid API key") from exc


def _check_email(email: str) -> None:
    if len(email) > 255 or not EMAIL_PATTERN.match(email):
        raise validation_failed("Unable to validate email address: invalid format")


def _check_password(password: str) -> None:
    if not password:
        raise validation_failed("Signup requires a valid password", 422)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError(
            422,
            "weak_password",
            f"Password should be at least {MIN_PASSWORD_LENGTH} characters.",
            {"weak_password": {"reasons": ["length"]}},
        )
    if len(password.encode()) > 72:  # bcrypt's limit, which GoTrue enforces too
        raise validation_failed("Password cannot be longer than 72 characters")


def _identity_data(user_id: str, email: str) -> dict[str, Any]:
    return {"sub": user_id, "email": email, "email_verified": True, "phone_verified": False}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def verify_password(conn: Any, password: str, hashed: str) -> bool:
    """Whether ``password`` matches a bcrypt ``hashed`` (one bcrypt, in pgcrypto)."""
    row = conn.execute("select extensions.crypt(%s, %s) = %s", (password, hashed, hashed))
    matched = row.fetchone()
    return bool(matched and matched[0])


def _require_admin(request: Request) -> None:
    """GoTrue's requireAdminCredentials: the service role (a secret key in ``apikey`` — the
    gateway's way for ``sb_secret_…`` keys — or as the bearer), else 401 / 403."""
    apikey = request.headers.get("apikey", "").strip()
    try:
        if apikey and identify(apikey=apikey, allow=("secret",)).kind == "secret":
            return
    except Rejected:
        pass
    if _is_service_role(request):
        return
    if not request.headers.get("Authorization", "").strip():
        raise AuthError(401, "no_authorization", "This endpoint requires a Bearer token")
    raise AuthError(403, "not_admin", "User not allowed")


def _is_service_role(request: Request) -> bool:
    """A bearer with the service role (a secret key, or the legacy service_role JWT), which
    GoTrue lets past the CAPTCHA (its requireAdminCredentials)."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    try:
        return identify(bearer=token.strip(), allow=("secret",)).kind == "secret"
    except Rejected:
        return False


def _ip(request: Request) -> str | None:
    value = request.remote_addr or ""
    try:
        import ipaddress

        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _iso(value: datetime | None) -> str | None:
    """A timestamp as GoTrue writes one (RFC 3339, UTC, microseconds)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _cors_origin() -> str:
    from videogen.config import get_settings

    return get_settings().cors_allow_origin


def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.get_data() or b"{}")
    except ValueError as exc:
        raise AuthError(400, "bad_json", "Could not parse request body as JSON") from exc
    if not isinstance(body, dict):
        raise AuthError(400, "bad_json", "Could not parse request body as JSON")
    return body


def _json(data: Any, *, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(data), 200, mimetype="application/json", headers=headers)


def create_app(dsn: str | None = None, key_path: Path | None = None) -> AuthApi:
    """The Auth API app (mounted at ``/auth/v1`` by the dev server), with config.toml's
    settings."""
    return AuthApi(dsn, key_path)


__all__ = ["AuthApi", "AuthError", "SigningKey", "create_app"]
