"""A local Supabase Storage API at ``/storage/v1``, for the real clients (storage3, storage-js).

Bytes live on disk in the layout :class:`videogen.integrations.storage.LocalStorage` uses
(``<storage_dir>/<bucket>/<name>``); every object has its ``storage.objects`` row, with
metadata shaped like Supabase's (``eTag``, ``size``, ``mimetype``, ``cacheControl``,
``lastModified``, ``contentLength``, ``httpStatusCode``).

Access is decided the way Supabase Storage decides it: each call is one transaction in
which the caller's statement on ``storage.objects`` runs as the caller's role with its
claims (``set_config('role', …)``, ``request.jwt.claims``…), so the storage policies in
the migrations are what allow or refuse it. The secret / service_role key runs as
``service_role``, which bypasses RLS. As in Storage, an upload first tests the caller's
insert (or upsert) permission in a savepoint that is rolled back, then writes the row as
the owner of the connection; a failed upload leaves neither a row nor a file.

Every write or delete of an object takes a transaction-scoped advisory lock on its
``bucket/name`` and changes the file while holding it, before the commit: a delete moves
the file aside (removed after the commit), an upload puts the new file in place. So two
calls on one object are serialized as a whole — the row and the bytes on disk always
agree, whichever commits last — across threads and dev-server processes alike.

Errors have Storage's shape and status: HTTP 400 (500 for internal errors) with
``{"statusCode": "<real status>", "code": …, "error": …, "message": …}``.

Served (paths under /storage/v1):

- ``POST|PUT /object/{bucket}/{path}``: upload / update (multipart or raw body, x-upsert)
- ``GET /object/{bucket}/{path}``, ``GET /object/authenticated/{bucket}/{path}``: download
- ``HEAD`` of both, ``GET /object/info[/authenticated]/{bucket}/{path}``: exists / info
- ``DELETE /object/{bucket}`` (``{prefixes}``) and ``DELETE /object/{bucket}/{path}``
- ``POST /object/list/{bucket}``: files and folders under a prefix
- ``POST /object/sign/{bucket}/{path}``, ``POST /object/sign/{bucket}``: signed URLs
- ``GET /object/sign/{bucket}/{path}?token=``: download by signed URL
- ``POST /object/upload/sign/{bucket}/{path}``, ``PUT /object/upload/sign/{bucket}/{path}``
- ``POST /object/move``, ``POST /object/copy``

Not served: bucket management (``/bucket``), public objects (no public buckets),
image transformations (``/render``), TUS resumable uploads, S3, ``list-v2``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from videogen_dev.platform_keys import Rejected, decode_url_token, identify, sign_url_token
from videogen_dev.servicepool import LazyPool

log = logging.getLogger("videogen.storage_api")

MAX_OBJECTS_PER_REQUEST = 1000
MAX_KEY_CHARS = 1024  # LocalStorage's limit on an object path
# A file name on disk (NAME_MAX): each segment of a key is one, in LocalStorage's layout.
MAX_SEGMENT_BYTES = 255
# Storage's isValidKey: the characters S3 keys are safe with (ASCII only).
VALID_OBJECT_KEY = re.compile(r"[A-Za-z0-9_/!.*'() &$=@;:+,?-]*")
UPLOAD_SIGNED_URL_EXPIRES_S = 7200  # Storage's uploadSignedUrlExpirationTime default
# Storage's MAX_ABSOLUTE_JWT_EXPIRATION_SECONDS: the last second a JS Date (and a JWT's
# numeric exp) holds exactly, floor(Number.MAX_SAFE_INTEGER / 1000).
MAX_EXPIRES_AT = (2**53 - 1) // 1000
MAX_CUSTOM_METADATA_BYTES = 1024 * 1024  # Storage's MAX_CUSTOM_METADATA_SIZE
DEFAULT_MAX_FILE_SIZE = 5 * 1024**3  # when a bucket sets no file_size_limit
CHUNK = 1024 * 1024
JWT_ERROR_MESSAGES = {  # what Storage (jose) says for the common failures
    "ExpiredSignatureError": "jwt expired",
    "InvalidSignatureError": "invalid signature",
    "DecodeError": "jwt malformed",
}


# Errors -----------------------------------------------------------------------------------
class StorageError(Exception):
    """An error answered in Storage's JSON shape."""

    def __init__(
        self, status: int, code: str, message: str, error: str | None = None, *, http: int = 0
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.error = error or code
        self.http = http or (500 if status == 500 else 400)

    def response(self) -> Response:
        """The answer: HTTP 400 (or 500) and the body Storage's error handler writes."""
        body = {
            "statusCode": str(self.status),
            "code": self.code,
            "error": self.error,
            "message": self.message,
        }
        return Response(json.dumps(body), self.http, mimetype="application/json")


def no_such_key() -> StorageError:
    return StorageError(404, "NoSuchKey", "Object not found", "not_found")


def no_such_bucket() -> StorageError:
    return StorageError(404, "NoSuchBucket", "Bucket not found", "Bucket not found")


def access_denied(message: str = "Access denied") -> StorageError:
    return StorageError(403, "AccessDenied", message, "Unauthorized")


def invalid_request(message: str) -> StorageError:
    return StorageError(400, "InvalidRequest", message)


def invalid_key(key: str) -> StorageError:
    return StorageError(400, "InvalidKey", f"Invalid key: {key}")


def entity_too_large(entity: str = "object") -> StorageError:
    return StorageError(
        413,
        "EntityTooLarge",
        f"The {entity} exceeded the maximum allowed size",
        "Payload too large",
    )


def invalid_parameter(name: str) -> StorageError:
    return StorageError(400, "InvalidParameter", f"Invalid Parameter {name}")


def invalid_mime_type(mimetype: str) -> StorageError:
    return StorageError(
        415, "InvalidMimeType", f"mime type {mimetype} is not supported", "invalid_mime_type"
    )


def invalid_content_type_header() -> StorageError:
    """What Storage answers when Fastify cannot parse a request's Content-Type."""
    return StorageError(415, "InvalidMimeType", "Invalid Content-Type header", "invalid_mime_type")


def invalid_header_char(name: str, value: str, where: str = "response header") -> StorageError:
    """Storage's answer when a header would carry a control character."""
    return StorageError(
        400,
        "InvalidRequest",
        f'Invalid character in {where} "{name}": {value[:50]}',
        "invalid_header_char",
    )


def database_error(exc: Exception) -> StorageError:
    """Storage's mapping of a Postgres error (``DBError.fromDBError``)."""
    state = getattr(exc, "sqlstate", None)
    if state == "42501":
        text = str(exc)
        return access_denied(
            "new row violates row-level security policy" if "row-level security" in text else text
        )
    if state == "23505":
        return StorageError(409, "KeyAlreadyExists", "The resource already exists", "Duplicate")
    if state == "23503":
        return StorageError(404, "InvalidRequest", "The related resource does not exist")
    if state == "57014":
        return StorageError(544, "DatabaseTimeout", "Timeout while communicating with database")
    return StorageError(500, "DatabaseError", f"database error, code: {state}")


# Callers ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Caller:
    """Who calls, as Storage sees it: the database role, the claims, the owner (``sub``)."""

    role: str
    claims: dict[str, Any] = field(default_factory=dict)
    token: str = ""
    authenticated: bool = True

    @property
    def owner(self) -> str | None:
        sub = self.claims.get("sub")
        return str(sub) if sub else None


ANON = Caller("anon", {"role": "anon"}, authenticated=False)


def authenticate(request: Request, *, allow_invalid: bool = False) -> Caller:
    """The caller of a request, from ``Authorization`` / ``apikey`` (checked by
    videogen_dev.platform_keys, as Storage checks them).

    A user's access token → ``authenticated`` with its claims; the secret or service_role
    key → ``service_role``; the publishable or anon key → ``anon``. Routes that allow an
    invalid JWT (downloads, info) treat a missing or bad credential as an anonymous,
    unauthenticated caller; the others refuse it with ``AccessDenied``.
    """
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    bearer = token if scheme.lower() == "bearer" and token else None
    try:
        identity = identify(bearer=bearer, apikey=request.headers.get("apikey", "").strip())
    except Rejected as exc:
        if allow_invalid:
            return ANON
        raise access_denied(exc.message) from exc
    token = request.headers.get("Authorization", "").partition(" ")[2].strip()
    if identity.kind == "user":
        return Caller("authenticated", dict(identity.claims), token)
    if identity.kind == "secret":
        return Caller("service_role", {"role": "service_role", **identity.claims}, token)
    return Caller("anon", {"role": "anon", **identity.claims}, token)


# Paths and tokens -------------------------------------------------------------------------
def check_key(name: str) -> str:
    """An object name Storage and LocalStorage both accept, or ``InvalidKey``.

    Storage's own rule (``isValidKey``: S3-safe ASCII characters), LocalStorage's (relative,
    no empty, ``.`` or ``..`` segments, at most 1024 characters), and the disk's: each
    segment is a file or folder name, at most 255 bytes.
    """
    parts = name.split("/")
    if (
        not name
        or len(name) > MAX_KEY_CHARS
        or name.startswith("/")
        or "\\" in name
        or any(ord(c) < 32 or ord(c) == 127 for c in name)
        or any(part in ("", ".", "..") for part in parts)
        or not VALID_OBJECT_KEY.fullmatch(name)
        or any(len(part.encode()) > MAX_SEGMENT_BYTES for part in parts)
    ):
        raise invalid_key(name)
    return name


def _now() -> int:
    return int(time.time())


def _iso(value: datetime | None) -> str | None:
    """A timestamp as JSON.stringify writes a JS Date (what Storage answers)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def check_expires_in(seconds: int, now: float | None = None) -> int:
    """Storage's ``assertValidNumericJWTExpiration``: an expiry a JWT and a JS Date hold."""
    if seconds < 1 or seconds > MAX_EXPIRES_AT - int(time.time() if now is None else now):
        raise invalid_parameter("expiresIn")
    return seconds


def http_date(seconds: int) -> str:
    """An HTTP date as JS's ``toUTCString`` writes it, for any year up to Storage's maximum
    expiry (datetime stops at 9999; JS and ``time.gmtime`` go on)."""
    t = time.gmtime(seconds)
    day = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[t.tm_wday]
    month = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    return (
        f"{day}, {t.tm_mday:02d} {month[t.tm_mon - 1]} {t.tm_year:04d}"
        f" {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


# Request bodies ---------------------------------------------------------------------------
class _Body(BaseModel):
    """A JSON body as Storage's route schema (Fastify's Ajv) takes it: unknown properties
    dropped, numbers from numeric strings; text holds no NUL (Postgres text cannot)."""

    model_config = ConfigDict(extra="ignore")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(text, str) and "\0" in text for text in texts):
            raise ValueError("must not contain NUL")
        return value


class SortBy(_Body):
    column: Literal["name", "updated_at", "created_at", "last_accessed_at"]
    order: Literal["asc", "desc"] = "asc"


class ListBody(_Body):
    """``POST /object/list/{bucket}``."""

    prefix: str
    limit: int = Field(100, ge=1)
    offset: int = Field(0, ge=0)
    sortBy: SortBy | None = None
    search: str = ""


class SignBody(_Body):
    """``POST /object/sign/{bucket}/{path}``."""

    expiresIn: int = Field(ge=1)


class SignManyBody(SignBody):
    """``POST /object/sign/{bucket}``."""

    paths: list[str] = Field(min_length=1, max_length=MAX_OBJECTS_PER_REQUEST)


class DeleteBody(_Body):
    """``DELETE /object/{bucket}``."""

    prefixes: list[str] = Field(min_length=1, max_length=MAX_OBJECTS_PER_REQUEST)


class MoveBody(_Body):
    """``POST /object/move`` and ``POST /object/copy``."""

    bucketId: str
    sourceKey: str
    destinationKey: str
    destinationBucket: str | None = None


BodyT = TypeVar("BodyT", bound=_Body)

_AJV_TYPES = {
    "int_type": "integer",
    "int_parsing": "integer",
    "int_from_float": "integer",
    "finite_number": "integer",
    "string_type": "string",
    "model_type": "object",
    "dict_type": "object",
    "model_attributes_type": "object",
    "list_type": "array",
    "bool_type": "boolean",
    "bool_parsing": "boolean",
}


def _ajv_message(error: Any) -> str:
    """A pydantic error in the words of Ajv's messages, as Storage answers them."""
    loc = [str(part) for part in error["loc"]]
    path = "/".join(["body", *loc])
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "json_invalid":
        return "Body is not valid JSON"
    if kind == "missing":
        return f"{'/'.join(['body', *loc[:-1]])} must have required property '{loc[-1]}'"
    if kind in _AJV_TYPES:
        return f"{path} must be {_AJV_TYPES[kind]}"
    if kind == "literal_error":
        return f"{path} must be equal to one of the allowed values"
    if kind == "greater_than_equal":
        return f"{path} must be >= {ctx.get('ge')}"
    if kind == "too_short":
        return f"{path} must NOT have fewer than {ctx.get('min_length')} items"
    if kind == "too_long":
        return f"{path} must NOT have more than {ctx.get('max_length')} items"
    message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
    return f"{path} {message}"


def parse_body(model: type[BodyT], request: Request) -> BodyT:
    """The request's JSON body as ``model``, or Storage's 400 ``InvalidRequest`` naming the
    first problem. Parsing is bounded: pydantic refuses JSON nested deeper than it handles
    instead of recursing without end."""
    try:
        return model.model_validate_json(request.get_data() or b"{}")
    except ValidationError as exc:
        raise invalid_request(_ajv_message(exc.errors()[0])) from exc


# The app ----------------------------------------------------------------------------------
class StorageApi:
    """The WSGI app; one database pool per process, opened on the first request."""

    OBJECT_COLUMNS = (
        "id, bucket_id, name, owner, owner_id, version, metadata, user_metadata, "
        "created_at, updated_at, last_accessed_at"
    )

    def __init__(self, dsn: str | None = None, root: Path | None = None) -> None:
        self._root = root
        self._pool = LazyPool("videogen-storage", dsn)
        self._lock = threading.Lock()
        R = Rule
        self.urls = Map(
            [
                R("/object/list/<bucket>", methods=["POST"], endpoint="list"),
                R("/object/move", methods=["POST"], endpoint="move"),
                R("/object/copy", methods=["POST"], endpoint="copy"),
                R("/object/sign/<bucket>", methods=["POST"], endpoint="sign_many"),
                R("/object/sign/<bucket>/<path:name>", methods=["POST"], endpoint="sign"),
                R("/object/sign/<bucket>/<path:name>", methods=["GET"], endpoint="get_signed"),
                R("/object/upload/sign/<bucket>/<path:name>", methods=["POST"], endpoint="sign_up"),
                R(
                    "/object/upload/sign/<bucket>/<path:name>",
                    methods=["PUT"],
                    endpoint="put_signed",
                ),
                R(
                    "/object/info/authenticated/<bucket>/<path:name>",
                    methods=["GET"],
                    endpoint="info",
                ),
                R("/object/info/<bucket>/<path:name>", methods=["GET"], endpoint="info_any"),
                R(
                    "/object/authenticated/<bucket>/<path:name>",
                    methods=["GET", "HEAD"],
                    endpoint="get",
                ),
                R("/object/<bucket>/<path:name>", methods=["GET", "HEAD"], endpoint="get_any"),
                R("/object/<bucket>/<path:name>", methods=["POST"], endpoint="create"),
                R("/object/<bucket>/<path:name>", methods=["PUT"], endpoint="update"),
                R("/object/<bucket>/<path:name>", methods=["DELETE"], endpoint="delete_one"),
                R("/object/<bucket>", methods=["DELETE"], endpoint="delete_many"),
            ],
            strict_slashes=False,
            merge_slashes=False,
        )

    # Plumbing -----------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        if self._root is None:
            from videogen.config import get_settings

            self._root = get_settings().storage_dir.resolve()
        return self._root

    def pool(self) -> Any:
        return self._pool.get()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        """One transaction (as the connection's owner until :meth:`become`)."""
        import psycopg

        try:
            with self.pool().connection() as conn, conn.transaction():
                yield conn
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.DataError) and exc.sqlstate is None:
                # Refused by the driver before it was sent (text holding NUL): the request's.
                raise invalid_request(str(exc)) from exc
            if getattr(exc, "sqlstate", None) is None:
                raise StorageError(
                    503, "DatabaseError", "The database is unavailable", http=500
                ) from exc
            raise database_error(exc) from exc

    @staticmethod
    def become(conn: Any, caller: Caller, request: Request, operation: str) -> None:
        """What Storage's scope statement sets: the role and the caller's claims."""
        claims = json.dumps(caller.claims)
        conn.execute(
            "select set_config('role', %s, true), set_config('request.jwt.claim.role', %s, true),"
            " set_config('request.jwt', %s, true), set_config('request.jwt.claim.sub', %s, true),"
            " set_config('request.jwt.claims', %s, true), set_config('request.method', %s, true),"
            " set_config('request.path', %s, true), set_config('storage.operation', %s, true)",
            (
                caller.role,
                caller.role,
                caller.token,
                caller.owner or "",
                claims,
                request.method,
                request.path,
                operation,
            ),
        )

    @staticmethod
    def lock(conn: Any, *objects: tuple[str, str]) -> None:
        """Hold each ``(bucket, name)``'s advisory lock until the transaction ends.

        Taken before an object's row and file change, so a concurrent write or delete of
        the same object waits until this one has committed with its file in place; locks
        are taken in one order (sorted keys) so two multi-object calls cannot deadlock.
        """
        keys = sorted({_lock_key(bucket, name) for bucket, name in objects})
        if keys:
            conn.execute(
                "select count(pg_advisory_xact_lock(k))"
                " from unnest(%s::bigint[]) with ordinality as t(k, i)",
                (keys,),
            )

    @staticmethod
    def unbecome(conn: Any) -> None:
        """Back to the connection's own role (Storage's ``asSuperUser``)."""
        conn.execute("reset role")

    def file(self, bucket: str, name: str) -> Path:
        """Where an object's bytes live; never outside its bucket's folder."""
        if bucket in ("", ".", "..") or any(c in bucket for c in "/\\\0"):
            raise no_such_bucket()  # a folder of its own under the root, nothing else
        folder = (self.root / bucket).resolve()
        target = (folder / name).resolve()
        if not target.is_relative_to(folder):
            raise invalid_key(name)
        return target

    @staticmethod
    def bucket(conn: Any, bucket_id: str) -> dict[str, Any] | None:
        row = conn.execute(
            "select id, public, file_size_limit, allowed_mime_types from storage.buckets "
            "where id = %s",
            (bucket_id,),
        ).fetchone()
        if row is None:
            return None
        return {"id": row[0], "public": bool(row[1]), "limit": row[2], "mimes": row[3] or []}

    def find(
        self, conn: Any, bucket: str, name: str, *, for_update: bool = False
    ) -> dict[str, Any]:
        """The object's row as the current role sees it, or ``NoSuchKey``."""
        cur = conn.execute(
            f"select {self.OBJECT_COLUMNS} from storage.objects "  # noqa: S608 - constant columns
            "where bucket_id = %s and name = %s" + (" for update" if for_update else ""),
            (bucket, name),
        )
        row = cur.fetchone()
        if row is None:
            raise no_such_key()
        return dict(zip([c.name for c in cur.description], row, strict=True))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        if request.method == "OPTIONS":  # a browser's preflight (Kong answers it on Supabase)
            response = Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = "GET, HEAD, POST, PUT, DELETE"
            response.headers["Access-Control-Allow-Headers"] = request.headers.get(
                "Access-Control-Request-Headers", "authorization, apikey, content-type"
            )
            response.headers["Access-Control-Max-Age"] = "3600"
        else:
            try:
                endpoint, args = self.urls.bind_to_environ(environ).match()
                response = getattr(self, f"on_{endpoint}")(request, **args)
            except StorageError as exc:
                response = exc.response()
            except HTTPException as exc:
                code = exc.code or 400
                message = exc.description or exc.name
                kind = "NotFound" if code == 404 else "InvalidRequest"
                response = StorageError(code, kind, message).response()
                response.status_code = code if code in (404, 405) else 400
            except Exception:
                # Storage's last resort: an answer in its shape, never a dropped connection.
                log.exception("storage API: %s %s failed", request.method, request.path)
                response = StorageError(
                    500, "InternalError", "Internal Server Error", "Internal"
                ).response()
        response.headers["Access-Control-Allow-Origin"] = _cors_origin()
        # No browser may second-guess an object's stored type (or an error's JSON).
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response(environ, start_response)

    # Uploads ------------------------------------------------------------------------------
    def _read_upload(
        self, request: Request, bucket: dict[str, Any], name: str
    ) -> tuple[Path, dict[str, Any], dict[str, Any] | None]:
        """The body staged next to its target, its metadata and the user metadata."""
        limit = int(bucket["limit"] or DEFAULT_MAX_FILE_SIZE)
        content_type = request.headers.get("Content-Type", "")
        if content_type and not is_media_type(content_type):
            raise invalid_content_type_header()  # Fastify refuses it before the route runs
        user_metadata: dict[str, Any] | None = None
        stream: IO[bytes]
        if content_type.startswith("multipart/form-data"):
            upload = next(iter(request.files.values()), None)
            if upload is None:
                raise invalid_request("No content provided")
            form = request.form
            mimetype = form.get("contentType") or upload.mimetype or "application/octet-stream"
            if not is_media_type(mimetype):
                # Stricter than Storage, which takes the form field as it comes: a value the
                # header grammar refuses would be served back as a header, so it is not kept.
                raise invalid_mime_type(mimetype)
            cache = form.get("cacheControl")
            cache_control = f"max-age={cache}" if cache else "no-cache"
            if not _header_safe(cache_control):  # it is served back as a header
                raise invalid_header_char("cacheControl", cache_control, "form field")
            custom = form.get("metadata") or form.get("userMetadata")
            if custom:
                if len(custom.encode(errors="surrogatepass")) > MAX_CUSTOM_METADATA_BYTES:
                    raise entity_too_large("user_metadata")
                with contextlib.suppress(ValueError):
                    user_metadata = _user_metadata(custom)
            stream = upload.stream
        else:
            mimetype = content_type or "application/octet-stream"
            cache_control = request.headers.get("Cache-Control") or "no-cache"
            custom = request.headers.get("x-metadata")
            if custom:
                with contextlib.suppress(ValueError):
                    user_metadata = _user_metadata(base64.b64decode(custom))
            if request.content_length is not None and request.content_length > limit:
                raise entity_too_large()
            stream = request.stream
        if bucket["mimes"]:
            validate_mime_type(mimetype, bucket["mimes"])
        target = self.file(bucket["id"], name)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        digest, size = hashlib.md5(usedforsecurity=False), 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise entity_too_large()
                    digest.update(chunk)
                    out.write(chunk)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        modified = datetime.now(UTC)
        metadata = {
            "eTag": f'"{digest.hexdigest()}"',
            "size": size,
            "mimetype": mimetype,
            "cacheControl": cache_control,
            "lastModified": _iso(modified),
            "contentLength": size,
            "httpStatusCode": 200,
        }
        return Path(tmp), metadata, user_metadata

    def _upload(
        self,
        request: Request,
        bucket_id: str,
        name: str,
        caller: Caller,
        *,
        upsert: bool,
        test_permission: bool,
        owner: str | None,
    ) -> dict[str, Any]:
        """Stage the body, test the caller's right to write the row, then write both.

        The file replaces the previous one just before the commit and is put back if the
        commit fails: a failed upload leaves neither a row nor a file.
        """
        from psycopg.types.json import Jsonb

        name = check_key(name)
        staged: Path | None = None
        installed: _Installed | None = None
        owner_uuid = _uuid_or_none(owner)
        try:
            with self.transaction() as conn:
                bucket = self.bucket(conn, bucket_id)
                if bucket is None:
                    raise no_such_bucket()
                staged, metadata, user_metadata = self._read_upload(request, bucket, name)
                # Locked after the body is staged (it may be slow), before row and file.
                self.lock(conn, (bucket_id, name))
                if test_permission:  # Uploader.canUpload: the caller's insert / upsert
                    self._test_insert(
                        conn, request, caller, bucket_id, name, owner, upsert, metadata
                    )
                row = conn.execute(
                    "insert into storage.objects (bucket_id, name, owner, owner_id, version,"  # noqa: S608
                    " metadata, user_metadata) values (%s, %s, %s, %s, %s, %s, %s)"
                    " on conflict (name, bucket_id) do update set metadata = excluded.metadata,"
                    " user_metadata = excluded.user_metadata, version = excluded.version,"
                    " owner = excluded.owner, owner_id = excluded.owner_id"
                    + ("" if upsert else " where false")
                    + " returning id",
                    (
                        bucket_id,
                        name,
                        owner_uuid,
                        owner,
                        str(uuid.uuid4()),
                        Jsonb(metadata),
                        Jsonb(user_metadata) if user_metadata is not None else None,
                    ),
                ).fetchone()
                if row is None:
                    raise database_error(_Duplicate())
                installed = _Installed.replace(staged, self.file(bucket_id, name))
        except BaseException:
            if installed is not None:
                installed.undo()
            elif staged is not None:
                staged.unlink(missing_ok=True)
            raise
        installed.done()
        return {"Id": str(row[0]), "Key": f"{bucket_id}/{name}"}

    def _test_insert(
        self,
        conn: Any,
        request: Request,
        caller: Caller,
        bucket_id: str,
        name: str,
        owner: str | None,
        upsert: bool,
        metadata: dict[str, Any],
    ) -> None:
        """Storage's ``testPermission``: the caller's insert (or upsert), rolled back."""
        from psycopg.types.json import Jsonb

        try:
            with conn.transaction():  # a savepoint: role, claims and row all go with it
                self.become(conn, caller, request, "storage.object.upload")
                conn.execute(
                    "insert into storage.objects (bucket_id, name, owner, owner_id, version,"  # noqa: S608
                    " metadata) values (%s, %s, %s, %s, '1', %s)"
                    + (
                        " on conflict (name, bucket_id) do update set"
                        " version = excluded.version, metadata = excluded.metadata"
                        if upsert
                        else ""
                    ),
                    (bucket_id, name, _uuid_or_none(owner), owner, Jsonb(metadata)),
                )
                raise _Rollback
        except _Rollback:
            pass

    def on_create(self, request: Request, bucket: str, name: str) -> Response:
        caller = authenticate(request)
        upsert = request.headers.get("x-upsert") == "true"
        answer = self._upload(
            request, bucket, name, caller, upsert=upsert, test_permission=True, owner=caller.owner
        )
        return _json(answer)

    def on_update(self, request: Request, bucket: str, name: str) -> Response:
        caller = authenticate(request)
        answer = self._upload(
            request, bucket, name, caller, upsert=True, test_permission=True, owner=caller.owner
        )
        return _json(answer)

    # Downloads and info -------------------------------------------------------------------
    def _visible(
        self, request: Request, bucket_id: str, name: str, caller: Caller, operation: str
    ) -> dict[str, Any]:
        """The object's row as the caller may see it (RLS), or NoSuchKey / NoSuchBucket."""
        name = check_key(name)
        with self.transaction() as conn:
            bucket = self.bucket(conn, bucket_id)
            if bucket is None or (not caller.authenticated and not bucket["public"]):
                raise no_such_bucket()
            if not bucket["public"]:
                self.become(conn, caller, request, operation)
            return self.find(conn, bucket_id, name)

    def _send(
        self, request: Request, obj: dict[str, Any], *, expires: int | None = None
    ) -> Response:
        from werkzeug.utils import send_file

        path = self.file(obj["bucket_id"], obj["name"])
        if not path.is_file():
            raise no_such_key()
        meta = obj["metadata"] or {}
        mimetype = _served_content_type(meta.get("mimetype"))
        cache_control = meta.get("cacheControl") or "no-cache"
        for header, value in (("content-type", mimetype), ("cache-control", cache_control)):
            if not _header_safe(value):  # a row stored before these were checked
                raise invalid_header_char(header, value)
        download = request.args.get("download")
        response = send_file(
            path,
            request.environ,
            mimetype=mimetype,
            conditional=True,
            etag=str(meta.get("eTag", "")).strip('"') or True,
            max_age=None,
        )
        if download == "":
            response.headers["Content-Disposition"] = "attachment;"
        elif download is not None:
            # Storage's handleDownload: the name percent-encoded as encodeURIComponent does,
            # so no character of it (CR and LF included) reaches the header as itself.
            name = quote(download, safe="-_.!~*'()")
            response.headers["Content-Disposition"] = (
                f"attachment; filename={name}; filename*=UTF-8''{name}"
            )
        # As stored (werkzeug would add a charset to text types); Storage's other headers.
        response.headers["Content-Type"] = mimetype
        response.headers["Cache-Control"] = cache_control
        response.headers["X-Robots-Tag"] = "none"
        if expires is not None:
            response.headers["Expires"] = http_date(expires)
        return response

    def on_get(self, request: Request, bucket: str, name: str) -> Response:
        caller = authenticate(request)
        obj = self._visible(request, bucket, name, caller, "storage.object.get_authenticated")
        return self._send(request, obj)

    def on_get_any(self, request: Request, bucket: str, name: str) -> Response:
        caller = authenticate(request, allow_invalid=True)
        obj = self._visible(request, bucket, name, caller, "storage.object.get_authenticated")
        return self._send(request, obj)

    def _info(self, request: Request, bucket: str, name: str, caller: Caller) -> Response:
        obj = self._visible(request, bucket, name, caller, "storage.object.info")
        meta = obj["metadata"] or {}
        return _json(
            {
                "id": str(obj["id"]),
                "name": obj["name"],
                "version": obj["version"],
                "bucket_id": obj["bucket_id"],
                "size": meta.get("size"),
                "content_type": meta.get("mimetype"),
                "cache_control": meta.get("cacheControl"),
                "etag": meta.get("eTag"),
                "metadata": obj["user_metadata"],
                "last_modified": _iso(obj["updated_at"]),
                "created_at": _iso(obj["created_at"]),
            },
            headers={"ETag": str(meta.get("eTag", ""))},
        )

    def on_info(self, request: Request, bucket: str, name: str) -> Response:
        return self._info(request, bucket, name, authenticate(request))

    def on_info_any(self, request: Request, bucket: str, name: str) -> Response:
        return self._info(request, bucket, name, authenticate(request, allow_invalid=True))

    # Signed URLs --------------------------------------------------------------------------
    def on_sign(self, request: Request, bucket: str, name: str) -> Response:
        caller = authenticate(request)
        expires_in = check_expires_in(parse_body(SignBody, request).expiresIn)
        name = check_key(name)
        with self.transaction() as conn:
            self.become(conn, caller, request, "storage.object.sign")
            self.find(conn, bucket, name)
        token = sign_url_token(f"{bucket}/{name}", expires_in)
        return _json({"signedURL": f"/object/sign/{bucket}/{name}?token={token}"})

    def on_sign_many(self, request: Request, bucket: str) -> Response:
        caller = authenticate(request)
        body = parse_body(SignManyBody, request)
        expires_in, paths = check_expires_in(body.expiresIn), body.paths
        with self.transaction() as conn:
            self.become(conn, caller, request, "storage.object.sign_many")
            rows = conn.execute(
                "select name from storage.objects where bucket_id = %s and name = any(%s)",
                (bucket, paths),
            ).fetchall()
        found = {r[0] for r in rows}
        answer = []
        for path in paths:
            if path in found:
                token = sign_url_token(f"{bucket}/{path}", expires_in)
                signed, error = f"/object/sign/{bucket}/{path}?token={token}", None
            else:
                signed = None
                error = "Either the object does not exist or you do not have access to it"
            answer.append({"error": error, "path": path, "signedURL": signed})
        return _json(answer)

    def on_get_signed(self, request: Request, bucket: str, name: str) -> Response:
        token = request.args.get("token")
        if not token:
            raise invalid_request("querystring must have required property 'token'")
        payload = verify_token(token, f"{bucket}/{name}", "download")
        with self.transaction() as conn:
            obj = self.find(conn, bucket, name)
        return self._send(request, obj, expires=int(payload["exp"]))

    def on_sign_up(self, request: Request, bucket: str, name: str) -> Response:
        caller = authenticate(request)
        name = check_key(name)
        upsert = request.headers.get("x-upsert") == "true"
        with self.transaction() as conn:
            if self.bucket(conn, bucket) is None:
                raise no_such_bucket()
            meta = {"mimetype": request.headers.get("Content-Type")}
            self._test_insert(conn, request, caller, bucket, name, caller.owner, upsert, meta)
        token = sign_url_token(
            f"{bucket}/{name}",
            UPLOAD_SIGNED_URL_EXPIRES_S,
            scope="upload",
            owner=caller.owner,
            upsert=upsert,
        )
        return _json({"url": f"/object/upload/sign/{bucket}/{name}?token={token}", "token": token})

    def on_put_signed(self, request: Request, bucket: str, name: str) -> Response:
        token = request.args.get("token")
        if not token:
            raise invalid_request("querystring must have required property 'token'")
        payload = verify_token(token, f"{bucket}/{name}", "upload")
        answer = self._upload(
            request,
            bucket,
            name,
            ANON,
            upsert=bool(payload.get("upsert")),
            test_permission=False,
            owner=payload.get("owner"),
        )
        return _json({"Key": answer["Key"]})

    # Listing ------------------------------------------------------------------------------
    def on_list(self, request: Request, bucket: str) -> Response:
        caller = authenticate(request)
        body = parse_body(ListBody, request)
        prefix = body.prefix
        if prefix and not prefix.endswith("/"):
            prefix += "/"  # Storage assumes the prefix is a folder
        search, limit, offset = body.search, min(body.limit, 1500), body.offset
        column = body.sortBy.column if body.sortBy else "name"
        descending = body.sortBy is not None and body.sortBy.order == "desc"
        pattern = _like_escape(prefix + search).lower() + "%"
        with self.transaction() as conn:
            self.become(conn, caller, request, "storage.object.list")
            cur = conn.execute(
                "select name, id, updated_at, created_at, last_accessed_at, metadata"
                " from storage.objects where bucket_id = %s and lower(name) like %s",
                (bucket, pattern),
            )
            rows = cur.fetchall()
        folders: dict[str, dict[str, Any]] = {}
        files: list[dict[str, Any]] = []
        for full, oid, updated, created, accessed, metadata in rows:
            rel = full[len(prefix) :]
            if "/" in rel:
                folder = rel.split("/", 1)[0]
                folders.setdefault(
                    folder,
                    {
                        "name": folder,
                        "id": None,
                        "updated_at": None,
                        "created_at": None,
                        "last_accessed_at": None,
                        "metadata": None,
                    },
                )
            else:
                files.append(
                    {
                        "name": rel,
                        "id": str(oid),
                        "updated_at": _iso(updated),
                        "created_at": _iso(created),
                        "last_accessed_at": _iso(accessed),
                        "metadata": metadata,
                        "_sort": {
                            "updated_at": updated,
                            "created_at": created,
                            "last_accessed_at": accessed,
                        },
                    }
                )
        folder_list = sorted(folders.values(), key=lambda e: e["name"].lower(), reverse=descending)
        if column == "name":
            entries = sorted(
                [*folder_list, *files], key=lambda e: str(e["name"]).lower(), reverse=descending
            )
        else:
            epoch = datetime.min.replace(tzinfo=UTC)
            files.sort(key=lambda e: e["_sort"][column] or epoch, reverse=descending)
            entries = [*folder_list, *files]
        for entry in entries:
            entry.pop("_sort", None)
        return _json(entries[offset : offset + limit])

    # Deletes ------------------------------------------------------------------------------
    def _delete(
        self, request: Request, bucket: str, names: list[str], *, one: bool = False
    ) -> list[dict[str, Any]]:
        caller = authenticate(request)
        removed: list[_Removed] = []
        try:
            with self.transaction() as conn:
                self.lock(conn, *[(bucket, name) for name in names])
                if one:  # Storage's deleteObject: found as superuser, for update
                    self.find(conn, bucket, names[0], for_update=True)
                self.become(conn, caller, request, "storage.object.delete")
                cur = conn.execute(
                    "delete from storage.objects where bucket_id = %s and name = any(%s)"  # noqa: S608
                    f" returning {self.OBJECT_COLUMNS}",
                    (bucket, names),
                )
                columns = [c.name for c in cur.description]
                deleted = [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
                for obj in deleted:  # under the lock: no upload can land in between
                    with contextlib.suppress(StorageError):
                        removed.append(_Removed.aside(self.file(bucket, obj["name"])))
        except BaseException:
            for aside in reversed(removed):  # rolled back: the files are kept with the rows
                aside.undo()
            raise
        for aside in removed:
            aside.done()
        return [_obj_json(obj) for obj in deleted]

    def on_delete_many(self, request: Request, bucket: str) -> Response:
        prefixes = parse_body(DeleteBody, request).prefixes
        return _json(self._delete(request, bucket, prefixes))

    def on_delete_one(self, request: Request, bucket: str, name: str) -> Response:
        if not self._delete(request, bucket, [check_key(name)], one=True):
            raise access_denied()
        return _json({"message": "Successfully deleted"})

    # Move and copy ------------------------------------------------------------------------
    def _move_args(self, request: Request) -> tuple[str, str, str, str]:
        body = parse_body(MoveBody, request)
        return (
            body.bucketId,
            check_key(body.sourceKey),
            body.destinationBucket or body.bucketId,
            check_key(body.destinationKey),
        )

    def on_move(self, request: Request) -> Response:
        caller = authenticate(request)
        src_bucket, src, dst_bucket, dst = self._move_args(request)
        installed: _Installed | None = None
        try:
            with self.transaction() as conn:
                self.lock(conn, (src_bucket, src), (dst_bucket, dst))
                self.become(conn, caller, request, "storage.object.move")
                self.find(conn, src_bucket, src)
                row = conn.execute(
                    "update storage.objects set bucket_id = %s, name = %s, owner = %s,"
                    " owner_id = %s where bucket_id = %s and name = %s returning id",
                    (dst_bucket, dst, _uuid_or_none(caller.owner), caller.owner, src_bucket, src),
                ).fetchone()
                if row is None:
                    raise access_denied()
                source, target = self.file(src_bucket, src), self.file(dst_bucket, dst)
                if source != target:  # onto itself: the row was the permission test
                    try:
                        installed = _Installed.link(source, target)
                    except FileNotFoundError as exc:
                        raise no_such_key() from exc
        except BaseException:
            if installed is not None:
                installed.undo()
            raise
        if installed is not None:
            installed.done()
        return _json({"message": "Successfully moved", "Id": str(row[0]), "Key": dst})

    def on_copy(self, request: Request) -> Response:
        from psycopg.types.json import Jsonb

        caller = authenticate(request)
        src_bucket, src, dst_bucket, dst = self._move_args(request)
        upsert = request.headers.get("x-upsert") == "true"
        installed: _Installed | None = None
        staged: Path | None = None
        try:
            with self.transaction() as conn:
                self.lock(conn, (src_bucket, src), (dst_bucket, dst))
                self.become(conn, caller, request, "storage.object.copy")
                original = self.find(conn, src_bucket, src)
                self.unbecome(conn)
                metadata = original["metadata"] or {}
                self._test_insert(
                    conn, request, caller, dst_bucket, dst, caller.owner, upsert, metadata
                )
                cur = conn.execute(
                    "insert into storage.objects (bucket_id, name, owner, owner_id, version,"  # noqa: S608
                    " metadata, user_metadata) values (%s, %s, %s, %s, %s, %s, %s)"
                    " on conflict (name, bucket_id) do update set metadata = excluded.metadata,"
                    " user_metadata = excluded.user_metadata, version = excluded.version"
                    f" returning {self.OBJECT_COLUMNS}",
                    (
                        dst_bucket,
                        dst,
                        _uuid_or_none(caller.owner),
                        caller.owner,
                        str(uuid.uuid4()),
                        Jsonb(metadata),
                        Jsonb(original["user_metadata"]) if original["user_metadata"] else None,
                    ),
                )
                columns = [c.name for c in cur.description]
                copied = dict(zip(columns, cur.fetchone() or (), strict=True))
                target = self.file(dst_bucket, dst)
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".copy-")
                os.close(fd)
                staged = Path(tmp)
                try:
                    shutil.copyfile(self.file(src_bucket, src), staged)
                except OSError as exc:
                    raise no_such_key() from exc
                installed = _Installed.replace(staged, target)
        except BaseException:
            if installed is not None:
                installed.undo()
            elif staged is not None:
                staged.unlink(missing_ok=True)
            raise
        installed.done()
        return _json({"Id": str(copied["id"]), "Key": f"{dst_bucket}/{dst}", **_obj_json(copied)})


# Helpers ----------------------------------------------------------------------------------
class _Rollback(Exception):
    """Leaves a savepoint, rolling it back (Storage's testPermission)."""


class _Duplicate(Exception):
    sqlstate = "23505"


class _Installed:
    """A file put at its target inside a transaction, undone if the transaction fails."""

    def __init__(self, target: Path, backup: Path | None, source: _Removed | None = None) -> None:
        self.target, self.backup, self.source = target, backup, source

    @classmethod
    def replace(cls, staged: Path, target: Path) -> _Installed:
        """Move ``staged`` to ``target``, keeping what was there until :meth:`done`.

        The previous file first gets a second name (a hard link), so ``target`` exists
        throughout and a concurrent download gets the old bytes or the new, never nothing.
        """
        backup: Path | None = target.parent / f".previous-{uuid.uuid4().hex}"
        try:
            os.link(target, str(backup))
        except FileNotFoundError:
            backup = None
        try:
            os.replace(staged, target)
        except BaseException:
            if backup is not None:
                backup.unlink(missing_ok=True)
            raise
        return cls(target, backup)

    @classmethod
    def link(cls, source: Path, target: Path) -> _Installed:
        """Give ``source`` the name ``target`` and move its old name aside (both under the
        objects' locks); :meth:`done` removes the old name for good."""
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)  # an orphaned file: the row's unique key says so
        os.link(source, target)
        return cls(target, None, _Removed.aside(source))

    def done(self) -> None:
        """After the commit: drop the previous content (or the moved file's old name)."""
        if self.backup is not None:
            self.backup.unlink(missing_ok=True)
        if self.source is not None:
            self.source.done()

    def undo(self) -> None:
        """After a rollback: put things back as they were."""
        if self.source is not None:
            self.source.undo()
        if self.backup is not None:
            os.replace(self.backup, self.target)
        else:
            self.target.unlink(missing_ok=True)


class _Removed:
    """A deleted object's file moved aside inside the transaction, removed after it."""

    def __init__(self, target: Path, moved: Path | None) -> None:
        self.target, self.moved = target, moved

    @classmethod
    def aside(cls, target: Path) -> _Removed:
        """Rename ``target`` to a unique name next to it (nothing to do when it is missing)."""
        moved = target.parent / f".deleted-{uuid.uuid4().hex}"
        try:
            os.replace(target, moved)
        except (FileNotFoundError, NotADirectoryError):
            return cls(target, None)
        return cls(target, moved)

    def done(self) -> None:
        """After the commit: the bytes go."""
        if self.moved is not None:
            with contextlib.suppress(OSError):
                self.moved.unlink(missing_ok=True)

    def undo(self) -> None:
        """After a rollback: the file is back under its name."""
        if self.moved is not None:
            os.replace(self.moved, self.target)


def _lock_key(bucket: str, name: str) -> int:
    """A stable signed 64-bit advisory lock key for an object (``pg_advisory_xact_lock``)."""
    digest = hashlib.blake2b(
        f"videogen-storage:{bucket}/{name}".encode(errors="surrogatepass"), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


# RFC 9110's media-type (type "/" subtype *( OWS ";" OWS [ token "=" value ] )), the grammar
# Fastify's content-type parser holds a request's Content-Type to; no control characters.
_TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # RFC 9110 token
_QUOTED = r'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_MEDIA_TYPE = re.compile(
    rf"{_TCHARS}/{_TCHARS}(?:[ \t]*;[ \t]*(?:{_TCHARS}=(?:{_TCHARS}|{_QUOTED}))?)*[ \t]*"
)
# What Node lets through in a header value (Storage's header validator).
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


def is_media_type(value: str) -> bool:
    """Whether ``value`` is a well-formed media type (``image/png``, ``text/plain; a=b``)."""
    return _MEDIA_TYPE.fullmatch(value) is not None


def _header_safe(value: str) -> bool:
    return _HEADER_VALUE.fullmatch(value) is not None


def _served_content_type(mimetype: str | None) -> str:
    """The Content-Type an object is served with: Storage serves HTML as plain text."""
    if not mimetype:
        return "application/octet-stream"
    return "text/plain" if "text/html" in mimetype else mimetype


def validate_mime_type(mimetype: str, allowed: list[str]) -> None:
    """Storage's ``validateMimeType``: the part before and after the first ``/`` must equal
    an allowed ``type/subtype``, or its type an allowed ``type/*`` (exact, as Storage
    compares: parameters are part of the subtype)."""
    requested = mimetype.split("/")
    if len(requested) < 2:
        raise invalid_mime_type(mimetype)
    kind, sub = requested[0], requested[1]
    for allowed_type in allowed:
        parts = allowed_type.split("/")
        if len(parts) >= 2 and parts[0] == kind and parts[1] in ("*", sub):
            return
    raise invalid_mime_type(mimetype)


def verify_token(token: str, object_path: str, scope: str) -> dict[str, Any]:
    """A signed-URL token's payload, checked as Storage's ``verifyObjectSignature``."""
    import jwt

    try:
        payload = decode_url_token(token)
    except jwt.InvalidTokenError as exc:
        message = JWT_ERROR_MESSAGES.get(type(exc).__name__, str(exc) or "Invalid JWT")
        raise StorageError(400, "InvalidJWT", message) from exc
    has_scope = payload.get("scope")
    if scope == "upload":
        ok = has_scope == "upload" or (has_scope is None and "upsert" in payload)
    else:
        ok = has_scope == "download" or (has_scope is None and "upsert" not in payload)
    if not ok:
        raise StorageError(400, "InvalidSignature", f"Token is not scoped for {scope}")
    if payload.get("url") != object_path:
        raise StorageError(400, "InvalidSignature", "Invalid signature")
    if not isinstance(payload.get("exp"), int | float) or payload["exp"] < time.time():
        raise StorageError(400, "ExpiredToken", "The provided token has expired.")
    return payload


def _cors_origin() -> str:
    from videogen.config import get_settings

    return get_settings().cors_allow_origin


def _uuid_or_none(value: str | None) -> str | None:
    try:
        return str(uuid.UUID(str(value))) if value else None
    except ValueError:
        return None


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _user_metadata(text: str | bytes) -> Any:
    """Custom metadata as Storage keeps it: any JSON, parsed with bounded nesting; what
    does not parse (or jsonb cannot hold: NUL) raises ValueError, and Storage drops it."""
    import pydantic_core

    value = pydantic_core.from_json(text)
    if _has_nul(value):
        raise ValueError("jsonb holds no NUL")
    return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\0" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _obj_json(obj: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in obj.items():
        if isinstance(value, datetime):
            value = _iso(value)
        elif isinstance(value, uuid.UUID):
            value = str(value)
        out[key] = value
    return out


def _json(data: Any, *, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(data), 200, mimetype="application/json", headers=headers)


def create_app(dsn: str | None = None, root: Path | None = None) -> StorageApi:
    """The Storage API app (mounted at ``/storage/v1`` by the dev server)."""
    return StorageApi(dsn, root)


__all__ = [
    "Caller",
    "StorageApi",
    "StorageError",
    "create_app",
    "is_media_type",
    "validate_mime_type",
]
