"""Storage: the local-disk backend for real, the Supabase backend over recorded responses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import jwt
import pytest

from videogen.config import Settings
from videogen.errors import ValidationFailed
from videogen.integrations.storage import (
    InvalidObjectPath,
    LocalStorage,
    ObjectExists,
    ObjectNotFound,
    StorageUnavailable,
    SupabaseStorage,
    clean_path,
    get_storage,
    owner_of,
    sign_object_token,
    user_path,
)

USER = "8d0fd2b3-9ca7-4d9e-a95f-9e13f3e4b3a2"
NOW = 1_747_218_000.0
BASE = "http://127.0.0.1:54321/storage/v1/object/sign"
SECRET = "a-test-jwt-secret-with-at-least-32-characters"


# Paths ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [
        "",
        "/etc/passwd",
        "../other/file",
        f"{USER}/../../escape",
        f"{USER}/./a.mp4",
        f"{USER}//a.mp4",
        f"{USER}/",
        "a\\b",
        "a\x00b",
        "a\nb",
        "x" * 1025,
    ],
)
def test_unsafe_paths_are_refused(bad: str) -> None:
    with pytest.raises(InvalidObjectPath) as err:
        clean_path(bad)
    assert err.value.status == 422


def test_user_folders() -> None:
    path = user_path(USER, "jobs", "j1.mp4")
    assert path == f"{USER}/jobs/j1.mp4"
    assert owner_of(path) == USER
    with pytest.raises(InvalidObjectPath):
        user_path(USER, "..", "x")


# Local disk -------------------------------------------------------------------------------
@pytest.fixture
def clock() -> list[float]:
    return [NOW]


@pytest.fixture
def local(tmp_path: Path, clock: list[float]) -> LocalStorage:
    return LocalStorage(tmp_path / "storage", SECRET, BASE, clock=lambda: clock[0])


def test_upload_download_exists_remove(local: LocalStorage, tmp_path: Path) -> None:
    path = f"{USER}/j1.mp4"
    assert not local.exists("videos", path)
    assert local.upload("videos", path, b"\x00\x00\x00\x18ftypmp42", "video/mp4") == path
    assert local.exists("videos", path)
    assert local.download("videos", path) == b"\x00\x00\x00\x18ftypmp42"
    assert local.content_type("videos", path) == "video/mp4"
    assert local.local_path("videos", path) == (tmp_path / "storage" / "videos" / path).resolve()
    local.remove("videos", [path, f"{USER}/never-existed.mp4"])
    assert not local.exists("videos", path)
    with pytest.raises(ObjectNotFound) as err:
        local.download("videos", path)
    assert err.value.status == 404


def test_upload_from_a_file_and_upsert(local: LocalStorage, tmp_path: Path) -> None:
    source = tmp_path / "thumb.jpg"
    source.write_bytes(b"\xff\xd8\xff\xe0jpeg")
    path = f"{USER}/j1.jpg"
    local.upload("thumbnails", path, source, "image/jpeg")
    assert local.download("thumbnails", path) == b"\xff\xd8\xff\xe0jpeg"
    local.upload("thumbnails", path, b"v2", "image/jpeg")
    assert local.download("thumbnails", path) == b"v2"
    with pytest.raises(ObjectExists) as err:
        local.upload("thumbnails", path, b"v3", "image/jpeg", upsert=False)
    assert err.value.status == 409
    assert local.download("thumbnails", path) == b"v2"
    # No temp files are left next to the object.
    assert [p.name for p in (tmp_path / "storage" / "thumbnails" / USER).iterdir()] == ["j1.jpg"]


def test_list_shows_files_directly_under_a_folder(local: LocalStorage) -> None:
    local.upload("uploads", f"{USER}/b.png", b"b")
    local.upload("uploads", f"{USER}/a.png", b"a")
    local.upload("uploads", f"{USER}/nested/c.png", b"c")
    assert local.list("uploads", USER) == [f"{USER}/a.png", f"{USER}/b.png"]
    assert local.list("uploads", "nobody") == []
    assert local.list("uploads") == []


def test_unknown_bucket_and_traversal_are_refused(local: LocalStorage, tmp_path: Path) -> None:
    with pytest.raises(InvalidObjectPath):
        local.upload("secrets", f"{USER}/a", b"x")
    with pytest.raises(InvalidObjectPath):
        local.download("videos", "../thumbnails/x")
    with pytest.raises(InvalidObjectPath):
        local.upload(".meta", "videos/x.json", b"{}")
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "storage" / "videos").mkdir(parents=True)
    (tmp_path / "storage" / "videos" / "link").symlink_to(outside)
    with pytest.raises(InvalidObjectPath):
        local.upload("videos", "link/escape.mp4", b"x")
    assert not (outside / "escape.mp4").exists()


def signed_parts(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert set(query) == {"token"}  # Supabase's format: the expiry lives in the token
    return unquote(parts.path.removeprefix("/storage/v1/object/sign/")), query["token"][0]


def test_signed_urls_are_supabase_tokens(local: LocalStorage) -> None:
    """``{url, scope, iat, exp}`` signed HS256 with the JWT secret, as Storage signs them."""
    url = local.signed_url("videos", f"{USER}/a.mp4", expires_in=60)
    _, token = signed_parts(url)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {
        "url": f"videos/{USER}/a.mp4",
        "scope": "download",
        "iat": int(NOW),
        "exp": int(NOW) + 60,
    }
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_signed_urls_verify_until_they_expire(local: LocalStorage, clock: list[float]) -> None:
    path = f"{USER}/my video.mp4"
    local.upload("videos", path, b"x", "video/mp4")
    url = local.signed_url("videos", path, expires_in=60)
    assert url.startswith(f"{BASE}/videos/{USER}/my%20video.mp4?token=")
    object_path, token = signed_parts(url)
    assert object_path == f"videos/{path}"
    assert local.verify_signed(object_path, token)
    assert not local.verify_signed(f"videos/{USER}/other.mp4", token)
    assert not local.verify_signed(object_path, token[:-2] + "AA")
    assert not local.verify_signed(object_path, "soon")
    assert not local.verify_signed("videos/../x", token)
    upload = sign_object_token(SECRET, object_path, 60, scope="upload", upsert=True, now=NOW)
    assert not local.verify_signed(object_path, upload)
    clock[0] += 61
    assert not local.verify_signed(object_path, token)


def test_signatures_depend_on_the_secret(local: LocalStorage, tmp_path: Path) -> None:
    other = LocalStorage(tmp_path / "storage", SECRET + "-other", BASE, clock=lambda: NOW)
    object_path, token = signed_parts(local.signed_url("videos", f"{USER}/a.mp4"))
    assert local.verify_signed(object_path, token)
    assert not other.verify_signed(object_path, token)
    with pytest.raises(ValidationFailed):
        local.signed_url("videos", f"{USER}/a.mp4", expires_in=0)


def test_get_storage_local_by_default(tmp_path: Path) -> None:
    storage = get_storage(Settings(storage_root=tmp_path))
    assert isinstance(storage, LocalStorage)
    assert storage.root == tmp_path.resolve()
    assert storage.base_url == "http://127.0.0.1:54321/storage/v1/object/sign"


# Supabase Storage (storage3) ----------------------------------------------------------------
SUPABASE = "https://abcd.supabase.co"
API = f"{SUPABASE}/storage/v1"
KEY = "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"
NOT_FOUND = {"statusCode": "404", "error": "not_found", "message": "Object not found"}


class Recorded:
    """Recorded Storage API answers keyed by method and path; requests are kept."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], httpx.Response] = {}
        self.requests: list[httpx.Request] = []

    def add(self, method: str, path: str, status: int = 200, **kwargs: object) -> None:
        self.answers[(method, f"{API}{path}")] = httpx.Response(status, **kwargs)  # type: ignore[arg-type]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.get((request.method, str(request.url.copy_with(query=None))))
        if answer is None:
            return httpx.Response(599, json={"message": f"unexpected {request.url}"})
        return httpx.Response(answer.status_code, content=answer.content, headers=answer.headers)


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


@pytest.fixture
def remote(recorded: Recorded) -> Iterator[SupabaseStorage]:
    with httpx.Client(transport=httpx.MockTransport(recorded)) as client:
        yield SupabaseStorage(SUPABASE, KEY, client)


def test_supabase_upload_sends_multipart_with_upsert_and_type(
    remote: SupabaseStorage, recorded: Recorded
) -> None:
    path = f"{USER}/j1.mp4"
    recorded.add(
        "POST",
        f"/object/videos/{path}",
        json={"Key": f"videos/{path}", "Id": "2b5f3c1e-0d9e-4bd4-9a51-2b9f3e0c7d11"},
    )
    assert remote.upload("videos", path, b"MP4DATA", "video/mp4") == path
    sent = recorded.requests[-1]
    assert sent.headers["apikey"] == KEY
    assert "authorization" not in sent.headers  # sb_ keys never go in as a bearer
    assert sent.headers["x-upsert"] == "true"
    assert b"Content-Type: video/mp4" in sent.content
    assert b"MP4DATA" in sent.content


def test_supabase_legacy_jwt_key_is_also_a_bearer(recorded: Recorded) -> None:
    recorded.add("GET", f"/object/videos/{USER}/a.mp4", content=b"bytes")
    with httpx.Client(transport=httpx.MockTransport(recorded)) as client:
        storage = SupabaseStorage(SUPABASE, "eyJhbGciOiJIUzI1NiJ9.e30.sig", client)
        assert storage.download("videos", f"{USER}/a.mp4") == b"bytes"
    assert recorded.requests[-1].headers["authorization"] == "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig"


def test_supabase_download_and_missing(remote: SupabaseStorage, recorded: Recorded) -> None:
    recorded.add("GET", f"/object/videos/{USER}/a.mp4", content=b"\x00\x01")
    recorded.add("GET", f"/object/videos/{USER}/gone.mp4", 400, json=NOT_FOUND)
    assert remote.download("videos", f"{USER}/a.mp4") == b"\x00\x01"
    with pytest.raises(ObjectNotFound):
        remote.download("videos", f"{USER}/gone.mp4")


def test_supabase_signed_url_is_absolute(remote: SupabaseStorage, recorded: Recorded) -> None:
    token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1cmwiOiJ2aWRlb3MvYS5tcDQifQ.sig"
    recorded.add(
        "POST",
        f"/object/sign/videos/{USER}/a.mp4",
        json={"signedURL": f"/object/sign/videos/{USER}/a.mp4?token={token}"},
    )
    url = remote.signed_url("videos", f"{USER}/a.mp4", expires_in=600)
    assert url == f"{API}/object/sign/videos/{USER}/a.mp4?token={token}"
    assert json.loads(recorded.requests[-1].content) == {"expiresIn": "600"}


def test_supabase_exists(remote: SupabaseStorage, recorded: Recorded) -> None:
    recorded.add(
        "GET",
        f"/object/info/videos/{USER}/a.mp4",
        json={"id": "2b5f3c1e", "name": f"{USER}/a.mp4", "size": 7, "content_type": "video/mp4"},
    )
    recorded.add("GET", f"/object/info/videos/{USER}/gone.mp4", 404, json=NOT_FOUND)
    assert remote.exists("videos", f"{USER}/a.mp4")
    assert not remote.exists("videos", f"{USER}/gone.mp4")


def test_supabase_remove_and_list(remote: SupabaseStorage, recorded: Recorded) -> None:
    recorded.add("DELETE", "/object/videos", json=[{"name": f"{USER}/a.mp4"}])
    remote.remove("videos", f"{USER}/a.mp4")
    assert json.loads(recorded.requests[-1].content) == {"prefixes": [f"{USER}/a.mp4"]}
    recorded.add(
        "POST",
        "/object/list/videos",
        json=[
            {"name": "b.mp4", "id": "id-b", "metadata": {"size": 2}},
            {"name": "a.mp4", "id": "id-a", "metadata": {"size": 1}},
            {"name": "drafts", "id": None, "metadata": None},
        ],
    )
    assert remote.list("videos", USER) == [f"{USER}/a.mp4", f"{USER}/b.mp4"]
    assert json.loads(recorded.requests[-1].content)["prefix"] == USER


def test_supabase_errors_are_ours(remote: SupabaseStorage, recorded: Recorded) -> None:
    recorded.add(
        "GET",
        f"/object/videos/{USER}/a.mp4",
        403,
        json={"statusCode": "403", "error": "Unauthorized", "message": "invalid signature"},
    )
    with pytest.raises(StorageUnavailable):
        remote.download("videos", f"{USER}/a.mp4")
    recorded.add(
        "POST",
        f"/object/videos/{USER}/a.mp4",
        400,
        json={"statusCode": "409", "error": "Duplicate", "message": "The resource already exists"},
    )
    with pytest.raises(ObjectExists):
        remote.upload("videos", f"{USER}/a.mp4", b"x", upsert=False)
    assert recorded.requests[-1].headers["x-upsert"] == "false"
    with pytest.raises(InvalidObjectPath):
        remote.download("videos", "../escape")


def test_supabase_transport_failure_is_unavailable() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with (
        httpx.Client(transport=httpx.MockTransport(down)) as client,
        pytest.raises(StorageUnavailable),
    ):
        SupabaseStorage(SUPABASE, KEY, client).download("videos", f"{USER}/a.mp4")


def test_get_storage_supabase(recorded: Recorded) -> None:
    settings = Settings(storage_backend="supabase", supabase_url=SUPABASE)
    with httpx.Client(transport=httpx.MockTransport(recorded)) as client:
        storage = get_storage(settings, client)
        assert isinstance(storage, SupabaseStorage)
        assert storage.storage_url == f"{API}/"
