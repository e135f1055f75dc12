"""The dev server's Storage API at /storage/v1, driven by storage3 (supabase-py's client).

Everything goes through the real client as an app would use it: a user's access token as
the bearer and the publishable key as ``apikey``. Access is decided by the storage
policies in the migrations (run as the caller's role with its claims), and errors come in
Storage's shape (HTTP 400, the real status in ``statusCode``) so storage3 raises its
``StorageApiError`` with ``status`` / ``code`` / ``message``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest
from storage3 import SyncStorageClient
from storage3.exceptions import StorageApiError

from videogen.config import LOCAL_JWT_SECRET, LOCAL_PUBLISHABLE_KEY, LOCAL_SECRET_KEY
from videogen.integrations.storage import LocalStorage, SupabaseStorage, sign_object_token

Api = Any  # tests/functions/conftest.py's Api and User (conftest modules are not imported)
User = Any

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)


def storage_url(api: Api) -> str:
    return f"{api.server.base}/storage/v1/"


_open: list[Any] = []


def client_for(api: Api, user: User | None = None, key: str = LOCAL_PUBLISHABLE_KEY) -> Any:
    """storage3 as supabase-py builds it: apikey, and the session's token as the bearer."""
    headers = {"apikey": key}
    if user is not None:
        headers["Authorization"] = f"Bearer {user.token}"
    client = SyncStorageClient(storage_url(api), headers)
    _open.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _open:
        _open.pop().session.close()


@pytest.fixture
def alice(api: Api) -> User:
    return api.user()


@pytest.fixture
def bob(api: Api) -> User:
    return api.user()


@pytest.fixture
def as_alice(api: Api, alice: User) -> Any:
    return client_for(api, alice)


@pytest.fixture
def as_bob(api: Api, bob: User) -> Any:
    return client_for(api, bob)


def refused(call: Any) -> StorageApiError:
    with pytest.raises(StorageApiError) as info:
        call()
    return info.value


def row(api: Api, bucket: str, name: str) -> Any:
    return api.sql(
        "select metadata from storage.objects where bucket_id = %s and name = %s", [bucket, name]
    )


def disk(api: Api, bucket: str, name: str) -> Path:
    return Path(api.server.env["STORAGE_ROOT"]) / bucket / name


# ------------------------------------------------------------------------------------------
# A user's own uploads
# ------------------------------------------------------------------------------------------


def test_a_user_uploads_lists_reads_signs_and_removes_their_image(
    api: Api, alice: User, as_alice: Any
) -> None:
    uploads = as_alice.from_("uploads")
    name = f"{alice.id}/pics/pic.png"
    answer = uploads.upload(name, PNG, {"content-type": "image/png", "upsert": "true"})
    assert answer.path == name and answer.full_path == f"uploads/{name}"
    # Upsert replaces it; the row keeps Supabase's metadata and the bytes sit where
    # LocalStorage would keep them.
    uploads.upload(name, PNG + b"x", {"content-type": "image/png", "upsert": "true"})
    meta = row(api, "uploads", name)
    assert meta["size"] == len(PNG) + 1 and meta["mimetype"] == "image/png"
    assert meta["cacheControl"] == "max-age=3600" and meta["httpStatusCode"] == 200
    assert set(meta) >= {"eTag", "lastModified", "contentLength"}
    assert disk(api, "uploads", name).read_bytes() == PNG + b"x"

    [folder] = uploads.list(alice.id)
    assert folder["name"] == "pics" and folder["id"] is None
    [entry] = uploads.list(f"{alice.id}/pics")
    assert entry["name"] == "pic.png" and entry["metadata"]["size"] == len(PNG) + 1
    assert uploads.list(f"{alice.id}/pics", {"search": "nothing"}) == []

    assert uploads.exists(name) and not uploads.exists(f"{alice.id}/missing.png")
    info = uploads.info(name)
    assert (info["name"], info["bucket_id"], info["size"]) == (name, "uploads", len(PNG) + 1)
    assert info["content_type"] == "image/png"
    head = httpx.head(
        f"{storage_url(api)}object/authenticated/uploads/{name}",
        headers={"Authorization": f"Bearer {alice.token}"},
    )
    assert head.status_code == 200 and head.headers["content-length"] == str(len(PNG) + 1)
    assert uploads.download(name) == PNG + b"x"

    signed = uploads.create_signed_url(name, 60)["signedURL"]
    assert signed.startswith(f"{storage_url(api)}object/sign/uploads/{name}?token=")
    fetched = httpx.get(signed)
    assert fetched.status_code == 200 and fetched.content == PNG + b"x"
    assert fetched.headers["content-type"] == "image/png"
    token = jwt.decode(signed.split("token=")[1], LOCAL_JWT_SECRET, algorithms=["HS256"])
    assert token["url"] == f"uploads/{name}" and token["exp"] - token["iat"] == 60
    many = uploads.create_signed_urls([name, f"{alice.id}/nope.png"], 60)
    assert many[0]["signedURL"] and many[0]["error"] is None
    assert many[1]["signedURL"] is None and many[1]["error"]

    removed = uploads.remove([name])
    assert [r["name"] for r in removed] == [name]
    assert row(api, "uploads", name) is None and not disk(api, "uploads", name).exists()
    assert not uploads.exists(name)
    gone = httpx.get(signed).json()
    assert (gone["statusCode"], gone["error"]) == ("404", "not_found")


def test_signed_urls_that_expired_or_are_forged_are_refused(
    api: Api, alice: User, as_alice: Any
) -> None:
    name = f"{alice.id}/pic.png"
    as_alice.from_("uploads").upload(name, PNG, {"content-type": "image/png"})
    base = f"{storage_url(api)}object/sign/uploads/{name}"
    cases = {
        "expired": sign_object_token(
            LOCAL_JWT_SECRET, f"uploads/{name}", 60, now=time.time() - 120
        ),
        "forged": sign_object_token("another-secret-another-secret-123", f"uploads/{name}", 60),
        "other object": sign_object_token(LOCAL_JWT_SECRET, f"uploads/{alice.id}/x.png", 60),
        "upload token": sign_object_token(
            LOCAL_JWT_SECRET, f"uploads/{name}", 60, scope="upload", upsert=True
        ),
    }
    for case, token in cases.items():
        resp = httpx.get(f"{base}?token={token}")
        assert resp.status_code == 400, case
        body = resp.json()
        assert set(body) == {"statusCode", "code", "error", "message"}, case
        assert body["statusCode"] == "400", case
    assert httpx.get(f"{base}?token={cases['expired']}").json()["code"] == "ExpiredToken"
    assert httpx.get(f"{base}?token={cases['forged']}").json()["code"] == "InvalidJWT"
    # The legacy payload {url, iat, exp} (no scope) is still a download token.
    legacy = jwt.encode(
        {"url": f"uploads/{name}", "iat": int(time.time()), "exp": int(time.time()) + 60},
        LOCAL_JWT_SECRET,
        algorithm="HS256",
    )
    assert httpx.get(f"{base}?token={legacy}").content == PNG


def test_signed_upload_urls(api: Api, alice: User, as_alice: Any) -> None:
    uploads = as_alice.from_("uploads")
    name = f"{alice.id}/signed.png"
    signed = uploads.create_signed_upload_url(name)
    assert signed["signedUrl"].startswith(f"{storage_url(api)}object/upload/sign/uploads/")
    claims = jwt.decode(signed["token"], LOCAL_JWT_SECRET, algorithms=["HS256"])
    assert (claims["owner"], claims["url"], claims["upsert"]) == (
        alice.id,
        f"uploads/{name}",
        False,
    )
    # Anyone holding the URL may upload once; the token names the owner.
    anyone = client_for(api).from_("uploads")
    answer = anyone.upload_to_signed_url(name, signed["token"], PNG, {"content-type": "image/png"})
    assert answer.full_path == f"uploads/{name}"
    assert uploads.download(name) == PNG
    owner = api.sql("select owner_id from storage.objects where name = %s", [name])
    assert owner == alice.id
    again = refused(
        lambda: anyone.upload_to_signed_url(
            name, signed["token"], PNG, {"content-type": "image/png"}
        )
    )
    assert (again.status, again.code) == ("409", "Duplicate")
    # No signed upload URL for somebody else's folder.
    err = refused(lambda: uploads.create_signed_upload_url(f"{api.user().id}/x.png"))
    assert (err.status, err.code) == ("403", "Unauthorized")


def test_move_and_copy_stay_inside_the_own_folder(
    api: Api, alice: User, bob: User, as_alice: Any
) -> None:
    uploads = as_alice.from_("uploads")
    name = f"{alice.id}/a.png"
    uploads.upload(name, PNG, {"content-type": "image/png"})
    uploads.copy(name, f"{alice.id}/b.png")
    uploads.move(name, f"{alice.id}/c.png")
    assert sorted(e["name"] for e in uploads.list(alice.id)) == ["b.png", "c.png"]
    assert uploads.download(f"{alice.id}/c.png") == PNG
    assert not disk(api, "uploads", name).exists()
    err = refused(lambda: uploads.move(f"{alice.id}/c.png", f"{bob.id}/c.png"))
    assert (err.status, err.code) == ("403", "Unauthorized")
    err = refused(lambda: uploads.copy(f"{alice.id}/c.png", f"{bob.id}/c.png"))
    assert (err.status, err.code) == ("403", "Unauthorized")
    assert disk(api, "uploads", f"{alice.id}/c.png").exists()


def test_moving_an_object_onto_itself_keeps_it(api: Api, alice: User, as_alice: Any) -> None:
    """Storage answers a move onto the same key with the object unchanged."""
    uploads = as_alice.from_("uploads")
    name = f"{alice.id}/same.png"
    uploads.upload(name, PNG, {"content-type": "image/png"})
    uploads.move(name, name)
    assert uploads.download(name) == PNG and disk(api, "uploads", name).read_bytes() == PNG


# ------------------------------------------------------------------------------------------
# Other users, anon, outputs, limits
# ------------------------------------------------------------------------------------------


def test_another_user_can_neither_read_nor_write_the_folder(
    api: Api, alice: User, bob: User, as_alice: Any, as_bob: Any
) -> None:
    name = f"{alice.id}/pic.png"
    as_alice.from_("uploads").upload(name, PNG, {"content-type": "image/png"})
    theirs = as_bob.from_("uploads")
    for call in (
        lambda: theirs.download(name),
        lambda: theirs.info(name),
        lambda: theirs.create_signed_url(name, 60),
    ):
        err = refused(call)
        assert (err.status, err.code, err.message) == ("404", "not_found", "Object not found")
    assert not theirs.exists(name)
    assert theirs.list(alice.id) == []
    assert theirs.remove([name]) == []
    err = refused(lambda: theirs.upload(name, PNG, {"content-type": "image/png", "upsert": "true"}))
    assert (err.status, err.code) == ("403", "Unauthorized")
    assert err.message == "new row violates row-level security policy"
    assert as_alice.from_("uploads").download(name) == PNG


def test_users_cannot_write_outputs_but_read_their_own(
    api: Api, alice: User, bob: User, as_alice: Any, as_bob: Any
) -> None:
    video = f"{alice.id}/jobs/j1.mp4"
    err = refused(
        lambda: as_alice.from_("videos").upload(video, b"mp4", {"content-type": "video/mp4"})
    )
    assert (err.status, err.code) == ("403", "Unauthorized")
    # The service writes outputs (through the same API, with the secret key).
    service = SupabaseStorage(api.server.base, LOCAL_SECRET_KEY)
    service.upload("videos", video, b"mp4", "video/mp4")
    assert as_alice.from_("videos").download(video) == b"mp4"
    assert refused(lambda: as_bob.from_("videos").download(video)).status == "404"
    assert as_alice.from_("videos").remove([video]) == []  # no delete policy on outputs
    assert service.exists("videos", video)
    service.remove("videos", video)
    assert not service.exists("videos", video)
    service.close()


def test_bucket_limits_are_enforced(api: Api, alice: User, as_alice: Any) -> None:
    uploads = as_alice.from_("uploads")
    err = refused(
        lambda: uploads.upload(f"{alice.id}/x.gif", b"GIF89a", {"content-type": "image/gif"})
    )
    assert (err.status, err.code) == ("415", "invalid_mime_type")
    assert err.message == "mime type image/gif is not supported"
    # Storage compares a raw body's type exactly: case and parameters count.
    for content_type in ("image/PNG", "image/png; charset=binary"):
        raw = httpx.post(
            f"{storage_url(api)}object/uploads/{alice.id}/x.png",
            content=PNG,
            headers={**alice.headers, "content-type": content_type},
        )
        assert raw.json()["message"] == f"mime type {content_type} is not supported"
    thumb_limit = api.sql("select file_size_limit from storage.buckets where id = 'thumbnails'")
    service = client_for(api, key=LOCAL_SECRET_KEY).from_("thumbnails")
    big = b"\0" * (int(thumb_limit) + 1)
    name = f"{alice.id}/big.jpg"
    err = refused(lambda: service.upload(name, big, {"content-type": "image/jpeg"}))
    assert (err.status, err.code) == ("413", "Payload too large")
    # A raw body (as storage-js sends a Blob) is refused from its Content-Length.
    raw = httpx.post(
        f"{storage_url(api)}object/thumbnails/{name}",
        content=big,
        headers={"apikey": LOCAL_SECRET_KEY, "content-type": "image/jpeg"},
    )
    assert raw.status_code == 400 and raw.json()["statusCode"] == "413"
    assert row(api, "thumbnails", name) is None and not disk(api, "thumbnails", name).exists()
    uploads.upload(f"{alice.id}/d.png", PNG, {"content-type": "image/png"})
    dup = refused(lambda: uploads.upload(f"{alice.id}/d.png", PNG, {"content-type": "image/png"}))
    assert (dup.status, dup.code) == ("409", "Duplicate")


def test_anon_is_refused(api: Api, alice: User, as_alice: Any) -> None:
    name = f"{alice.id}/pic.png"
    as_alice.from_("uploads").upload(name, PNG, {"content-type": "image/png"})
    anon = client_for(api).from_("uploads")
    err = refused(lambda: anon.download(name))
    assert (err.status, err.code) == ("404", "not_found")
    assert anon.list(alice.id) == []
    err = refused(lambda: anon.upload(f"{alice.id}/y.png", PNG, {"content-type": "image/png"}))
    assert (err.status, err.code) == ("403", "Unauthorized")
    # No credentials at all: the bucket is private, so it is not found.
    bare = httpx.get(f"{storage_url(api)}object/uploads/{name}")
    assert bare.status_code == 400 and bare.json()["error"] == "Bucket not found"
    # A bad token is refused outright where a JWT is required.
    bad = httpx.post(
        f"{storage_url(api)}object/list/uploads",
        json={"prefix": ""},
        headers={"Authorization": "Bearer not.a.jwt"},
    )
    assert bad.status_code == 400 and bad.json()["statusCode"] == "403"


def test_local_storage_signs_urls_the_api_serves(api: Api, alice: User, as_alice: Any) -> None:
    """LocalStorage's signed URLs are Supabase's, so this server serves them."""
    name = f"{alice.id}/pic.png"
    as_alice.from_("uploads").upload(name, PNG, {"content-type": "image/png"})
    local = LocalStorage(
        api.server.env["STORAGE_ROOT"],
        LOCAL_JWT_SECRET,
        f"{api.server.base}/storage/v1/object/sign",
    )
    assert httpx.get(local.signed_url("uploads", name, 60)).content == PNG


def test_raw_uploads_as_storage_js_sends_them(api: Api, alice: User) -> None:
    """storage-js sends a Buffer as a raw body with cache-control, x-metadata and x-upsert."""
    import base64
    import json

    base = f"{storage_url(api)}object/uploads/{alice.id}/raw.png"
    headers = {
        "Authorization": f"Bearer {alice.token}",
        "apikey": LOCAL_PUBLISHABLE_KEY,
        "content-type": "image/png",
        "cache-control": "max-age=60",
        "x-upsert": "true",
        "x-metadata": base64.b64encode(json.dumps({"source": "camera"}).encode()).decode(),
    }
    with httpx.Client(headers=headers) as http:
        created = http.post(base, content=PNG)
        assert created.status_code == 200, created.text
        assert created.json()["Key"] == f"uploads/{alice.id}/raw.png"
        info = http.get(f"{storage_url(api)}object/info/uploads/{alice.id}/raw.png").json()
        assert info["metadata"] == {"source": "camera"} and info["cache_control"] == "max-age=60"
        ranged = http.get(base, headers={"Range": "bytes=0-3"})
        assert ranged.status_code == 206 and ranged.content == PNG[:4]
        preflight = http.options(base, headers={"Access-Control-Request-Method": "POST"})
        assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"]
        assert http.delete(base).json() == {"message": "Successfully deleted"}
        missing = http.delete(base).json()
        assert (missing["statusCode"], missing["error"]) == ("404", "not_found")
    assert row(api, "uploads", f"{alice.id}/raw.png") is None


# ------------------------------------------------------------------------------------------
# Keys
# ------------------------------------------------------------------------------------------


def test_a_key_storage_or_the_disk_cannot_take_is_an_invalid_key(
    api: Api, alice: User, as_alice: Any
) -> None:
    """A 300-character segment (over a file name's 255 bytes), or a character outside
    Storage's S3-safe set, is Storage's ``InvalidKey`` on every route — an answer, never a
    dropped connection — and nothing is stored."""
    uploads = as_alice.from_("uploads")
    for name in [
        f"{alice.id}/{'a' * 300}.png",
        f"{alice.id}/{'b' * 256}/pic.png",
        f"{alice.id}/photo#1.png",
        f"{alice.id}/caf\u00e9.png",
    ]:
        err = refused(lambda n=name: uploads.upload(n, PNG, {"content-type": "image/png"}))
        assert (err.status, err.code) == ("400", "InvalidKey"), name
        assert err.message == f"Invalid key: {name}"
        for call in (
            lambda n=name: uploads.download(n),
            lambda n=name: uploads.info(n),
            lambda n=name: uploads.create_signed_url(n, 60),
            lambda n=name: uploads.create_signed_upload_url(n),
            lambda n=name: uploads.move(f"{alice.id}/a.png", n),
            lambda n=name: uploads.copy(f"{alice.id}/a.png", n),
        ):
            err = refused(call)
            assert (err.status, err.code) == ("400", "InvalidKey"), name
        raw = httpx.delete(f"{storage_url(api)}object/uploads/{quote(name)}", headers=alice.headers)
        assert raw.status_code == 400 and raw.json() == {
            "statusCode": "400",
            "code": "InvalidKey",
            "error": "InvalidKey",
            "message": f"Invalid key: {name}",
        }
        assert row(api, "uploads", name) is None
    # 255 bytes is a file name the disk takes.
    longest = f"{alice.id}/{'c' * 251}.png"
    uploads.upload(longest, PNG, {"content-type": "image/png"})
    assert uploads.download(longest) == PNG


# ------------------------------------------------------------------------------------------
# Content types
# ------------------------------------------------------------------------------------------

STORAGE_ERROR_KEYS = {"statusCode", "code", "error", "message"}


def test_a_malformed_content_type_is_refused_and_nothing_is_stored(api: Api, alice: User) -> None:
    """A Content-Type header outside RFC 9110's media-type grammar is what Fastify refuses
    for Storage (415 ``Invalid Content-Type header``); a multipart ``contentType`` field
    must be one too, since it is served back as a header."""
    base = f"{storage_url(api)}object"
    auth = {"Authorization": f"Bearer {alice.token}", "apikey": LOCAL_PUBLISHABLE_KEY}
    service = {"apikey": LOCAL_SECRET_KEY}
    with httpx.Client() as http:
        for bucket, headers, content_type in [
            ("uploads", auth, "image/png/x"),  # passes a split("/") allow-list check
            ("uploads", auth, "image/\tpng"),
            ("videos", service, "video/mp4/html"),
        ]:
            name = f"{alice.id}/raw-{len(content_type)}.bin"
            answer = http.post(
                f"{base}/{bucket}/{name}",
                content=PNG,
                headers={**headers, "content-type": content_type},
            )
            assert answer.status_code == 400, content_type
            assert answer.json() == {
                "statusCode": "415",
                "code": "InvalidMimeType",
                "error": "invalid_mime_type",
                "message": "Invalid Content-Type header",
            }, content_type
            assert row(api, bucket, name) is None and not disk(api, bucket, name).exists()
        for bucket, headers, content_type in [
            ("uploads", auth, "image/png/x"),
            ("uploads", auth, "image/png\r\nX-Injected: 1"),
            ("videos", service, "video/mp4/html"),
        ]:
            name = f"{alice.id}/form-{len(content_type)}.bin"
            answer = http.post(
                f"{base}/{bucket}/{name}",
                files={"file": ("x.bin", PNG, "application/octet-stream")},
                data={"contentType": content_type},
                headers=headers,
            )
            assert answer.status_code == 400, content_type
            body = answer.json()
            assert set(body) == STORAGE_ERROR_KEYS, content_type
            assert (body["statusCode"], body["code"]) == ("415", "InvalidMimeType"), content_type
            assert row(api, bucket, name) is None and not disk(api, bucket, name).exists()


def test_every_object_is_served_with_nosniff(api: Api, alice: User, as_alice: Any) -> None:
    uploads = as_alice.from_("uploads")
    name = f"{alice.id}/served.png"
    uploads.upload(name, PNG, {"content-type": "image/png"})
    auth = {"Authorization": f"Bearer {alice.token}"}
    signed = uploads.create_signed_url(name, 60)["signedURL"]
    with httpx.Client() as http:
        for answer in [
            http.get(f"{storage_url(api)}object/authenticated/uploads/{name}", headers=auth),
            http.get(f"{storage_url(api)}object/uploads/{name}", headers=auth),
            http.head(f"{storage_url(api)}object/uploads/{name}", headers=auth),
            http.get(
                f"{storage_url(api)}object/uploads/{name}", headers={**auth, "Range": "bytes=0-1"}
            ),
            http.get(signed),
        ]:
            assert answer.status_code in (200, 206), answer.request.url
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["content-type"] == "image/png"


def test_a_stored_type_that_is_unsafe_to_serve_is_not_served_as_is(
    api: Api, alice: User, as_alice: Any
) -> None:
    """Rows written before content types were checked (or by SQL): HTML is served as plain
    text, as Storage does, and a control character is Storage's ``invalid_header_char``
    error, not a crash."""
    uploads = as_alice.from_("uploads")
    name = f"{alice.id}/legacy.png"
    uploads.upload(name, PNG, {"content-type": "image/png"})
    url = f"{storage_url(api)}object/authenticated/uploads/{name}"
    auth = {"Authorization": f"Bearer {alice.token}"}
    set_type = (
        "update storage.objects"
        " set metadata = jsonb_set(metadata, '{mimetype}', to_jsonb(%s::text))"
        " where bucket_id = 'uploads' and name = %s"
    )
    api.sql(set_type, ["text/html; charset=utf-8", name])
    served = httpx.get(url, headers=auth)
    assert served.status_code == 200 and served.headers["content-type"] == "text/plain"
    api.sql(set_type, ["image/png\r\nX-Injected: 1", name])
    for _ in range(2):  # and again: it stays an answer, never a broken connection
        refused = httpx.get(url, headers=auth)
        assert refused.status_code == 400 and "x-injected" not in refused.headers
        body = refused.json()
        assert (body["statusCode"], body["code"], body["error"]) == (
            "400",
            "InvalidRequest",
            "invalid_header_char",
        )


# ------------------------------------------------------------------------------------------
# Malformed requests
# ------------------------------------------------------------------------------------------


def storage_error(answer: httpx.Response) -> dict[str, Any]:
    """An answer in Storage's error shape: HTTP 400 (the real status in ``statusCode``)."""
    assert answer.status_code == 400, (answer.status_code, answer.text)
    body = answer.json()
    assert set(body) == STORAGE_ERROR_KEYS, body
    return body


DEEP = "[" * 5000 + "]" * 5000  # far deeper than any parser should recurse


@pytest.mark.parametrize(
    ("route", "body", "code", "message"),
    [
        ("list", {"prefix": "", "limit": "abc"}, "InvalidRequest", "body/limit must be integer"),
        ("list", {"prefix": "", "limit": 0}, "InvalidRequest", "body/limit must be >= 1"),
        ("list", {"prefix": "", "offset": 1.5}, "InvalidRequest", "body/offset must be integer"),
        ("list", {"prefix": "", "sortBy": "name"}, "InvalidRequest", "body/sortBy must be object"),
        (
            "list",
            {"prefix": "", "sortBy": {"column": "size"}},
            "InvalidRequest",
            "body/sortBy/column must be equal to one of the allowed values",
        ),
        ("list", {"limit": 10}, "InvalidRequest", "body must have required property 'prefix'"),
        ("list", {"prefix": "a\u0000b"}, "InvalidRequest", "body/prefix must not contain NUL"),
        ("list", DEEP, "InvalidRequest", "Body is not valid JSON"),
        ("list", '{"prefix": "", "x": ' + DEEP + "}", "InvalidRequest", "Body is not valid JSON"),
        ("list", "[1]", "InvalidRequest", "body must be object"),
        ("sign", {"expiresIn": "abc"}, "InvalidRequest", "body/expiresIn must be integer"),
        ("sign", {"expiresIn": 1.5}, "InvalidRequest", "body/expiresIn must be integer"),
        ("sign", {"expiresIn": 0}, "InvalidRequest", "body/expiresIn must be >= 1"),
        ("sign", {"expiresIn": 1e13}, "InvalidParameter", "Invalid Parameter expiresIn"),
        ("sign", '{"expiresIn": 1e400}', "InvalidRequest", "body/expiresIn must be integer"),
        ("sign_many", {"expiresIn": 1e13, "paths": ["a"]}, "InvalidParameter", None),
        ("sign_many", {"expiresIn": 60, "paths": "a"}, "InvalidRequest", None),
        ("sign_many", {"expiresIn": 60, "paths": []}, "InvalidRequest", None),
        ("delete", {"prefixes": "a.png"}, "InvalidRequest", "body/prefixes must be array"),
        ("delete", {"prefixes": [1]}, "InvalidRequest", "body/prefixes/0 must be string"),
        (
            "move",
            {"bucketId": "uploads", "sourceKey": 5, "destinationKey": "b"},
            "InvalidRequest",
            "body/sourceKey must be string",
        ),
    ],
)
def test_a_malformed_json_body_is_storage_s_400(
    api: Api, alice: User, route: str, body: Any, code: str, message: str | None
) -> None:
    """Every JSON body is validated as Storage's route schemas validate it (pydantic for
    Ajv), so a wrong type, a missing property, a bound or a body nested too deep is a 400
    in Storage's shape, never a 500; Storage's own limit bounds ``expiresIn``."""
    url = {
        "list": "object/list/uploads",
        "sign": f"object/sign/uploads/{alice.id}/a.png",
        "sign_many": "object/sign/uploads",
        "delete": "object/uploads",
        "move": "object/move",
    }[route]
    content = body if isinstance(body, str) else json.dumps(body)
    answer = httpx.request(
        "DELETE" if route == "delete" else "POST",
        f"{storage_url(api)}{url}",
        content=content,
        headers={**alice.headers, "content-type": "application/json"},
    )
    error = storage_error(answer)
    assert (error["statusCode"], error["code"]) == ("400", code), error
    if message is not None:
        assert error["message"] == message


def test_signed_urls_last_as_long_as_storage_lets_them(
    api: Api, alice: User, as_alice: Any
) -> None:
    """Storage takes any expiry a JS Date holds (1e12 s is in the year 33 700): the URL
    works and says when it expires; beyond that, ``InvalidParameter`` (see above)."""
    uploads = as_alice.from_("uploads")
    name = f"{alice.id}/long.png"
    uploads.upload(name, PNG, {"content-type": "image/png"})
    signed = uploads.create_signed_url(name, int(1e12))["signedURL"]
    fetched = httpx.get(signed)
    assert fetched.status_code == 200 and fetched.content == PNG
    day, date, _month, year, _clock, zone = fetched.headers["expires"].split(" ")
    assert int(year) > 33000 and zone == "GMT" and len(date) == 2 and day.endswith(",")


def test_a_download_name_is_encoded_never_a_header_of_its_own(
    api: Api, alice: User, as_alice: Any
) -> None:
    """``download=`` is percent-encoded into Content-Disposition as Storage does
    (encodeURIComponent), so CR/LF in it can neither break the answer nor add a header."""
    uploads = as_alice.from_("uploads")
    name = f"{alice.id}/named.png"
    uploads.upload(name, PNG, {"content-type": "image/png"})
    url = f"{storage_url(api)}object/authenticated/uploads/{name}"
    evil = "a b\r\nX-Injected: 1\r\n\r\n<html>.png"
    got = httpx.get(url, params={"download": evil}, headers=alice.headers)
    assert got.status_code == 200 and got.content == PNG, got.text
    assert "x-injected" not in got.headers
    encoded = quote(evil, safe="-_.!~*'()")
    assert got.headers["content-disposition"] == (
        f"attachment; filename={encoded}; filename*=UTF-8''{encoded}"
    )
    got = httpx.get(url, params={"download": ""}, headers=alice.headers)
    assert got.headers["content-disposition"] == "attachment;"
    signed = uploads.create_signed_url(name, 60)["signedURL"]
    got = httpx.get(f"{signed}&download={quote(evil)}")
    assert got.status_code == 200 and "x-injected" not in got.headers


def test_multipart_fields_are_checked_before_anything_is_stored(api: Api, alice: User) -> None:
    """A form's cacheControl is served back as a header: CR/LF in it is refused and nothing
    is kept. Custom metadata Storage cannot parse (here: nested deeper than the parser
    goes, or holding NUL) is dropped as Storage drops it, the upload itself kept."""
    base = f"{storage_url(api)}object/uploads/{alice.id}"
    with httpx.Client(headers=alice.headers) as http:
        answer = http.post(
            f"{base}/cache.png",
            files={"file": ("x.png", PNG, "image/png")},
            data={"cacheControl": "60\r\nX-Injected: 1"},
        )
        error = storage_error(answer)
        assert (error["statusCode"], error["error"]) == ("400", "invalid_header_char")
        assert row(api, "uploads", f"{alice.id}/cache.png") is None
        assert not disk(api, "uploads", f"{alice.id}/cache.png").exists()
        for n, custom in enumerate([DEEP, '{"a": "\\u0000"}']):
            answer = http.post(
                f"{base}/meta{n}.png",
                files={"file": ("x.png", PNG, "image/png")},
                data={"metadata": custom},
            )
            assert answer.status_code == 200, answer.text
            info = http.get(f"{storage_url(api)}object/info/uploads/{alice.id}/meta{n}.png")
            assert info.json()["metadata"] is None
        deep = base64.b64encode(DEEP.encode()).decode()
        raw = http.post(
            f"{base}/meta-raw.png",
            content=PNG,
            headers={"content-type": "image/png", "x-metadata": deep},
        )
        assert raw.status_code == 200, raw.text


# ------------------------------------------------------------------------------------------
# Races
# ------------------------------------------------------------------------------------------


def test_a_delete_racing_an_upsert_never_parts_a_row_from_its_bytes(api: Api, alice: User) -> None:
    """An upsert and deletes of one object sent at once: whichever commits last decides,
    and the row and the bytes on disk always agree (both there and the upsert's, or
    neither). Both of Storage's delete routes race in every round."""
    name = f"{alice.id}/race.png"
    writer, deleter = client_for(api, alice), client_for(api, alice)
    delete_one = httpx.Client(
        headers={"Authorization": f"Bearer {alice.token}", "apikey": LOCAL_PUBLISHABLE_KEY}
    )
    options = {"content-type": "image/png", "upsert": "true"}
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            for round_ in range(80):
                writer.from_("uploads").upload(name, PNG, options)
                body = PNG + round_.to_bytes(2, "big")  # this round's bytes, told apart
                start = threading.Barrier(3)

                def upsert(body: bytes = body, start: threading.Barrier = start) -> None:
                    start.wait()
                    writer.from_("uploads").upload(name, body, options)

                def remove(start: threading.Barrier = start) -> None:
                    start.wait()
                    deleter.from_("uploads").remove([name])

                def delete(start: threading.Barrier = start) -> None:
                    start.wait()
                    gone = delete_one.delete(f"{storage_url(api)}object/uploads/{name}")
                    # 404 when the other delete took it first.
                    assert gone.status_code == 200 or gone.json()["statusCode"] == "404"

                for done in [pool.submit(upsert), pool.submit(remove), pool.submit(delete)]:
                    done.result()
                meta, path = row(api, "uploads", name), disk(api, "uploads", name)
                if meta is None:
                    assert not path.exists(), f"round {round_}: bytes left without a row"
                    continue
                assert path.is_file(), f"round {round_}: a row without its bytes"
                assert path.read_bytes() == body, f"round {round_}: another round's bytes"
                etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
                assert (meta["size"], meta["eTag"]) == (len(body), f'"{etag}"'), round_
    finally:
        delete_one.close()
