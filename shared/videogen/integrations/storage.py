"""One ``Storage`` interface over Supabase Storage (storage3) and the local disk.

Buckets are ``videos``, ``thumbnails`` and ``uploads``; objects live under the owner's
folder (``<user_id>/…``), which is what the storage policies check with
``storage.foldername(name)[1] = auth.uid()::text``. Object paths are validated the same
way by both backends: no absolute paths, no ``.``/``..`` segments, no empty segments, no
backslashes or control characters.

The local backend signs URLs itself, in Supabase Storage's format: ``…/object/sign/<bucket>/
<path>?token=<JWT>``, the token an HS256 JWT with the project's JWT secret over
``{url: "<bucket>/<path>", scope: "download", iat, exp}`` — so the dev server's Storage API
(and Supabase Storage itself) serves them, and :meth:`LocalStorage.verify_signed` checks them.
"""

from __future__ import annotations

import json
import mimetypes
import os
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from videogen.config import IN_PROCESS_TRANSPORTS, LOCAL_SECRET_KEY, LOCAL_SERVICE_ROLE_KEY
from videogen.errors import AppError, NotFound, ServiceUnavailable, ValidationFailed

if TYPE_CHECKING:
    import httpx

    from videogen.config import Settings

BUCKETS: tuple[str, ...] = ("videos", "images", "thumbnails", "uploads")
DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_PATH_CHARS = 1024
Source = bytes | bytearray | memoryview | os.PathLike[str]


class ObjectNotFound(NotFound):
    """The stored object does not exist."""

    code = "OBJECT_NOT_FOUND"


class ObjectExists(AppError):
    """An object already exists at this path."""

    status, code = 409, "OBJECT_EXISTS"


class InvalidObjectPath(ValidationFailed):
    """The object path is not allowed."""

    code = "INVALID_OBJECT_PATH"


class StorageUnavailable(ServiceUnavailable):
    """Storage is unavailable; retry later."""

    code = "STORAGE_UNAVAILABLE"


def clean_path(path: str) -> str:
    """``path`` as a safe object key, or :class:`InvalidObjectPath`."""
    if not path or len(path) > MAX_PATH_CHARS:
        raise InvalidObjectPath("Object paths must be 1 to 1024 characters long.")
    if path.startswith("/") or "\\" in path or any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise InvalidObjectPath("Object paths must be relative, without backslashes or controls.")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise InvalidObjectPath("Object paths must not contain empty, '.' or '..' segments.")
    return path


def user_path(user_id: str, *parts: str) -> str:
    """An object path inside ``user_id``'s folder, as the storage policies expect."""
    return clean_path("/".join([user_id, *parts]))


def owner_of(path: str) -> str:
    """The user id a path belongs to: its first folder (``storage.foldername(name)[1]``)."""
    return clean_path(path).split("/", 1)[0]


class Storage(ABC):
    """Where videos, thumbnails and uploads are kept."""

    def __init__(self, buckets: Sequence[str] = BUCKETS) -> None:
        self.buckets = tuple(buckets)

    def _check(self, bucket: str, path: str) -> str:
        if bucket not in self.buckets:
            raise InvalidObjectPath(
                f"Unknown bucket {bucket!r}.", hint="Use one of: " + ", ".join(self.buckets)
            )
        return clean_path(path)

    @abstractmethod
    def upload(
        self,
        bucket: str,
        path: str,
        source: Source,
        content_type: str = DEFAULT_CONTENT_TYPE,
        *,
        upsert: bool = True,
    ) -> str:
        """Store bytes or a file's content at ``bucket/path``; returns ``path``."""

    @abstractmethod
    def download(self, bucket: str, path: str) -> bytes:
        """The object's bytes, or :class:`ObjectNotFound`."""

    @abstractmethod
    def signed_url(self, bucket: str, path: str, expires_in: int = 3600) -> str:
        """A URL that serves the object to anyone holding it, for ``expires_in`` seconds."""

    def signed_urls(
        self, bucket: str, paths: Sequence[str], expires_in: int = 3600
    ) -> dict[str, str]:
        """Signed URLs for the objects of ``paths`` that exist, by path."""
        return {
            path: self.signed_url(bucket, path, expires_in)
            for path in paths
            if self.exists(bucket, path)
        }

    @abstractmethod
    def exists(self, bucket: str, path: str) -> bool:
        """True if the object exists."""

    @abstractmethod
    def remove(self, bucket: str, paths: str | Sequence[str]) -> None:
        """Delete objects; missing ones are ignored."""

    @abstractmethod
    def list(self, bucket: str, prefix: str = "") -> list[str]:
        """Object paths directly under the folder ``prefix`` (files, not sub-folders)."""

    def local_path(self, bucket: str, path: str) -> Path | None:
        """The object's file on this machine, when the backend keeps one (else None)."""
        return None

    @abstractmethod
    def ready(self, timeout_s: float) -> bool:
        """Whether the backend can serve now (readiness probes): reachable, or writable."""

    def close(self) -> None:  # noqa: B027 - optional hook, only remote backends hold sessions
        """Release network resources, if any."""


def _read_source(source: Source) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    return Path(source).read_bytes()


# Local disk -------------------------------------------------------------------------------
def sign_object_token(
    secret: str | bytes,
    object_path: str,
    expires_in: int,
    *,
    scope: str = "download",
    owner: str | None = None,
    upsert: bool | None = None,
    now: float | None = None,
) -> str:
    """A signed-URL token as Supabase Storage makes one (``signJWT``, HS256).

    Download: ``{url, scope, iat, exp}``; upload: ``{owner, url, upsert, scope, iat, exp}``
    (``owner`` left out when there is none, as JSON.stringify drops undefined).
    """
    import jwt  # cold start: jwt loads on first use

    issued = int(time.time() if now is None else now)
    payload: dict[str, Any] = {}
    if scope == "upload":
        if owner is not None:
            payload["owner"] = owner
        payload.update(url=object_path, upsert=bool(upsert))
    else:
        payload["url"] = object_path
    payload.update(scope=scope, iat=issued, exp=issued + int(expires_in))
    key = secret.decode() if isinstance(secret, bytes) else secret
    return jwt.encode(payload, key, algorithm="HS256")


class LocalStorage(Storage):
    """Buckets as folders under ``root``; Supabase-format signed URLs (:meth:`verify_signed`)."""

    META_DIR = ".meta"

    def __init__(
        self,
        root: str | os.PathLike[str],
        signing_secret: str | bytes,
        base_url: str,
        *,
        buckets: Sequence[str] = BUCKETS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(buckets)
        self.root = Path(root).resolve()
        key = signing_secret.encode() if isinstance(signing_secret, str) else signing_secret
        if not key:
            raise ValueError("LocalStorage needs a non-empty signing secret")
        self._key = key.decode()
        self.base_url = base_url.rstrip("/")
        self._clock = clock

    def _file(self, bucket: str, path: str) -> Path:
        path = self._check(bucket, path)
        bucket_root = self.root / bucket
        target = (bucket_root / path).resolve()
        # Belt and braces against symlinks pointing out of the bucket.
        if not target.is_relative_to(bucket_root.resolve()):
            raise InvalidObjectPath("The object path leaves its bucket.")
        return target

    def _meta(self, bucket: str, path: str) -> Path:
        return self.root / self.META_DIR / bucket / f"{path}.json"

    def upload(
        self,
        bucket: str,
        path: str,
        source: Source,
        content_type: str = DEFAULT_CONTENT_TYPE,
        *,
        upsert: bool = True,
    ) -> str:
        """Write the object atomically (temp file, then rename) with its content type."""
        target = self._file(bucket, path)
        if not upsert and target.exists():
            raise ObjectExists(f"{bucket}/{path} already exists.")
        data = _read_source(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(target, data)
        meta = self._meta(bucket, path)
        meta.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(meta, json.dumps({"content_type": content_type, "size": len(data)}).encode())
        return path

    def download(self, bucket: str, path: str) -> bytes:
        """The object's bytes."""
        target = self._file(bucket, path)
        try:
            return target.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFound(f"{bucket}/{path} does not exist.") from exc

    def content_type(self, bucket: str, path: str) -> str:
        """The content type given at upload (or guessed from the name)."""
        try:
            meta = json.loads(self._meta(bucket, self._check(bucket, path)).read_text())
            return str(meta["content_type"])
        except (OSError, ValueError, KeyError):
            return mimetypes.guess_type(path)[0] or DEFAULT_CONTENT_TYPE

    def exists(self, bucket: str, path: str) -> bool:
        """True if the object's file exists."""
        return self._file(bucket, path).is_file()

    def remove(self, bucket: str, paths: str | Sequence[str]) -> None:
        """Delete the objects' files (and their metadata)."""
        for path in [paths] if isinstance(paths, str) else paths:
            self._file(bucket, path).unlink(missing_ok=True)
            self._meta(bucket, path).unlink(missing_ok=True)

    def list(self, bucket: str, prefix: str = "") -> list[str]:
        """Object paths directly under ``prefix``, sorted by name."""
        prefix = prefix.strip("/")
        folder = self._file(bucket, prefix) if prefix else (self.root / bucket)
        if not folder.is_dir():
            return []
        return sorted(
            f"{prefix}/{entry.name}" if prefix else entry.name
            for entry in folder.iterdir()
            if entry.is_file() and not entry.name.startswith(".")
        )

    def ready(self, timeout_s: float) -> bool:
        """The storage folder can be written: a probe file is created and removed."""
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.root, prefix=".ready-"):
            return True

    def local_path(self, bucket: str, path: str) -> Path | None:
        """The object's file (whether or not it exists yet)."""
        return self._file(bucket, path)

    # Signed URLs ------------------------------------------------------------------------
    def signed_url(self, bucket: str, path: str, expires_in: int = 3600) -> str:
        """``{base_url}/{bucket}/{path}?token=<JWT>``, valid for ``expires_in`` seconds."""
        path = self._check(bucket, path)
        if expires_in <= 0:
            raise ValidationFailed("expires_in must be a positive number of seconds.")
        object_path = f"{bucket}/{path}"
        token = sign_object_token(self._key, object_path, expires_in, now=self._clock())
        return f"{self.base_url}/{quote(object_path)}?token={token}"

    def verify_signed(self, path: str, token: str) -> bool:
        """True if ``token`` is a download token for ``bucket/path`` that has not expired."""
        import jwt  # cold start: jwt loads on first use

        try:
            bucket, _, object_key = path.partition("/")
            self._check(bucket, object_key)
            claims = jwt.decode(
                token or "", self._key, algorithms=["HS256"], options={"verify_exp": False}
            )
        except (AppError, jwt.InvalidTokenError):
            return False
        scope = claims.get("scope")
        if scope != "download" and not (scope is None and "upsert" not in claims):
            return False
        exp = claims.get("exp")
        return claims.get("url") == path and isinstance(exp, int) and exp >= self._clock()


def _atomic_write(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# Supabase Storage -------------------------------------------------------------------------
class SupabaseStorage(Storage):
    """Supabase Storage through storage3's sync client (imported on first use)."""

    def __init__(
        self,
        supabase_url: str,
        key: str,
        http_client: httpx.Client | None = None,
        *,
        buckets: Sequence[str] = BUCKETS,
    ) -> None:
        super().__init__(buckets)
        self.storage_url = supabase_url.rstrip("/") + "/storage/v1/"
        self._key = key
        self._http_client = http_client
        self._client: Any = None

    def _headers(self) -> dict[str, str]:
        # The new sb_secret_… keys go in `apikey` only; legacy JWT keys also as a bearer.
        headers = {"apikey": self._key}
        if not self._key.startswith("sb_"):
            headers["Authorization"] = f"Bearer {self._key}"
        return headers

    def _bucket(self, bucket: str) -> Any:
        if self._client is None:
            from storage3 import SyncStorageClient  # cold start: storage3 loads on first use

            self._client = SyncStorageClient(
                self.storage_url, self._headers(), http_client=self._http_client
            )
        return self._client.from_(bucket)

    def _call(self, bucket: str, path: str, action: str, fn: Callable[[Any], Any]) -> Any:
        """Run a storage3 call, translating its errors into ours."""
        import httpx  # cold start: httpx loads on first use
        from storage3.exceptions import StorageApiError  # cold start: storage3 loads on first use

        try:
            return fn(self._bucket(bucket))
        except StorageApiError as exc:
            raise _storage_error(exc, f"{bucket}/{path}", action) from exc
        except httpx.HTTPError as exc:
            raise StorageUnavailable(f"Storage could not be reached to {action}.") from exc

    def upload(
        self,
        bucket: str,
        path: str,
        source: Source,
        content_type: str = DEFAULT_CONTENT_TYPE,
        *,
        upsert: bool = True,
    ) -> str:
        """``POST /object/{bucket}/{path}`` (multipart) with ``x-upsert`` and the type."""
        path = self._check(bucket, path)
        data = source if isinstance(source, bytes) else _read_source(source)
        options = {"content-type": content_type, "upsert": "true" if upsert else "false"}
        self._call(bucket, path, "upload", lambda b: b.upload(path, data, options))
        return path

    def download(self, bucket: str, path: str) -> bytes:
        """``GET /object/{bucket}/{path}`` with our key."""
        path = self._check(bucket, path)
        return bytes(self._call(bucket, path, "download", lambda b: b.download(path)))

    def signed_url(self, bucket: str, path: str, expires_in: int = 3600) -> str:
        """``POST /object/sign/{bucket}/{path}`` → an absolute signed URL."""
        path = self._check(bucket, path)
        if expires_in <= 0:
            raise ValidationFailed("expires_in must be a positive number of seconds.")
        signed = self._call(
            bucket, path, "sign", lambda b: b.create_signed_url(path, int(expires_in))
        )
        url = signed.get("signedURL") or signed.get("signedUrl")
        if not url:
            raise StorageUnavailable("Storage answered without a signed URL.")
        return str(url)

    def signed_urls(
        self, bucket: str, paths: Sequence[str], expires_in: int = 3600
    ) -> dict[str, str]:
        """``POST /object/sign/{bucket}`` with all the paths: one call; objects that do not
        exist (or that our key may not read) come back with an error and are left out."""
        keys = [self._check(bucket, p) for p in paths]
        if not keys:
            return {}
        if expires_in <= 0:
            raise ValidationFailed("expires_in must be a positive number of seconds.")
        items = self._call(
            bucket, keys[0], "sign", lambda b: b.create_signed_urls(keys, int(expires_in))
        )
        return {
            str(item["path"]): str(item.get("signedURL") or item.get("signedUrl"))
            for item in items
            if not item.get("error") and (item.get("signedURL") or item.get("signedUrl"))
        }

    def exists(self, bucket: str, path: str) -> bool:
        """``GET /object/info/{bucket}/{path}``; a 404 means no."""
        path = self._check(bucket, path)
        return bool(self._call(bucket, path, "check", lambda b: b.exists(path)))

    def remove(self, bucket: str, paths: str | Sequence[str]) -> None:
        """``DELETE /object/{bucket}`` with the prefixes."""
        keys = [self._check(bucket, p) for p in ([paths] if isinstance(paths, str) else paths)]
        if keys:
            self._call(bucket, keys[0], "remove", lambda b: b.remove(keys))

    def list(self, bucket: str, prefix: str = "") -> list[str]:
        """``POST /object/list/{bucket}``; folders (entries without an id) are skipped."""
        prefix = prefix.strip("/")
        if prefix:
            self._check(bucket, prefix)
        elif bucket not in self.buckets:
            self._check(bucket, "x")
        entries = self._call(bucket, prefix, "list", lambda b: b.list(prefix or None))
        return sorted(
            f"{prefix}/{e['name']}" if prefix else str(e["name"])
            for e in entries
            if e.get("id") is not None
        )

    def ready(self, timeout_s: float) -> bool:
        """``POST /object/list/<first bucket>`` (limit 1) with our key answers 200."""
        import httpx  # cold start: httpx loads on first use

        url = f"{self.storage_url}object/list/{self.buckets[0]}"
        body = {"prefix": "", "limit": 1}
        if self._http_client is not None:
            resp = self._http_client.post(
                url, json=body, headers=self._headers(), timeout=timeout_s
            )
        else:
            resp = httpx.post(url, json=body, headers=self._headers(), timeout=timeout_s)
        return resp.status_code == 200

    def close(self) -> None:
        """Close storage3's HTTP session if it created one."""
        if self._client is not None and self._http_client is None:
            self._client.session.close()


def _storage_error(exc: Any, where: str, action: str) -> AppError:
    status = str(getattr(exc, "status", ""))
    code = str(getattr(exc, "code", ""))
    if status == "404" or code in ("not_found", "NoSuchKey", "Not found"):
        return ObjectNotFound(f"{where} does not exist.")
    if status == "409" or code in ("Duplicate", "already_exists"):
        return ObjectExists(f"{where} already exists.")
    if status in ("400", "413", "415", "422"):
        return ValidationFailed(f"Storage refused to {action} {where}: {exc.message}")
    if status in ("401", "403"):
        return StorageUnavailable(
            f"Storage refused our key when trying to {action}.",
            hint="Check SUPABASE_SECRET_KEY / SUPABASE_SERVICE_ROLE_KEY.",
        )
    return StorageUnavailable(f"Storage failed to {action} {where}.")


# Factory ------------------------------------------------------------------------------------
def local_signing_secret(settings: Settings) -> str:
    """The key local signed URLs are made with: the project's JWT secret, as on Supabase."""
    return settings.jwt_secret.get_secret_value()


def service_key(settings: Settings) -> str:
    """The server key storage calls use: the secret key, or the legacy service_role JWT."""
    secret = settings.secret_key.get_secret_value()
    legacy = settings.service_role_key.get_secret_value()
    # A deployment that only set the legacy key still has the local default secret key.
    if secret == LOCAL_SECRET_KEY and legacy != LOCAL_SERVICE_ROLE_KEY:
        return legacy
    return secret


_in_process: dict[str, httpx.Client] = {}


def _in_process_client(supabase_url: str) -> httpx.Client | None:
    """A client for a Storage API this process serves itself (``IN_PROCESS_TRANSPORTS``,
    filled by the local dev server only): the same storage3 requests, through its WSGI
    app in-process instead of a socket."""
    url = supabase_url.rstrip("/")
    transport = IN_PROCESS_TRANSPORTS.get(url)
    if transport is None:
        return None
    if url not in _in_process:
        import httpx  # cold start: httpx loads on first use

        _in_process[url] = httpx.Client(transport=transport, timeout=30.0)
    return _in_process[url]


def get_storage(settings: Settings, http_client: httpx.Client | None = None) -> Storage:
    """The storage backend ``STORAGE_BACKEND`` names."""
    if settings.storage_backend == "supabase":
        client = http_client or _in_process_client(settings.supabase_url)
        return SupabaseStorage(settings.supabase_url, service_key(settings), client)
    return LocalStorage(
        settings.storage_dir,
        local_signing_secret(settings),
        settings.supabase_url.rstrip("/") + "/storage/v1/object/sign",
    )


_clients: dict[int, tuple[Settings, Storage]] = {}


def storage_for(settings: Settings) -> Storage:
    """One storage client per process and settings object (a storage3 client is costly)."""
    kept = _clients.get(id(settings))
    if kept is None or kept[0] is not settings:
        kept = _clients[id(settings)] = (settings, get_storage(settings))
    return kept[1]
