"""Files by URL, the limits one by one (videogen.services.uploads.fetch_urls): a host that
resolves to a private address, an answer too large, too slow or of the wrong type, and a
good picture stored under the caller's folder — with a resolver and transport standing in
for the internet."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import httpx
import pytest

from videogen.config import Settings
from videogen.errors import AppError
from videogen.integrations.public_http import PublicHttp
from videogen.integrations.storage import LocalStorage
from videogen.models.jobs import JobParams
from videogen.services import uploads

UID = "00000000-0000-4000-8000-000000000001"
URL = "https://media.example.com/still.png"


@pytest.fixture(scope="module")
def png(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("png") / "still.png"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=320x180", "-frames:v", "1",
         str(out)],
        check=True,
    )  # fmt: skip
    return out.read_bytes()


def fetcher(handler, addresses=("93.184.215.14",)) -> PublicHttp:
    return PublicHttp(
        settings=Settings(),
        allow_private=False,
        resolver=lambda host, port: list(addresses),
        transport=httpx.MockTransport(handler),
    )


def fetch(tmp_path: Path, http: PublicHttp, url: str = URL) -> tuple[JobParams, LocalStorage]:
    storage = LocalStorage(tmp_path / "s", b"k" * 32, "https://files.example")
    params = JobParams(prompt="x", image_path=url)
    try:
        return uploads.fetch_urls(storage, Settings(), UID, params, http=http), storage
    finally:
        http.close()


def test_a_good_picture_is_stored_and_named_by_its_path(tmp_path: Path, png: bytes) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=png, headers={"content-type": "image/png"})

    params, storage = fetch(tmp_path, fetcher(handler))
    path = f"{UID}/from-url/{hashlib.sha256(png).hexdigest()[:40]}.png"
    assert params.image_path == path
    assert storage.download("uploads", path) == png
    (request,) = seen
    # It connected to the address it checked, naming the host.
    assert request.url.host == "93.184.215.14" and request.headers["host"] == "media.example.com"


@pytest.mark.parametrize(
    ("addresses", "url"),
    [
        (("10.0.0.5",), URL),
        (("93.184.215.14", "127.0.0.1"), URL),  # one private address is enough to refuse
        (("169.254.169.254",), URL),
        (("93.184.215.14",), "http://media.example.com/still.png"),  # not https
    ],
)
def test_a_private_or_plain_http_url_is_refused_before_any_fetch(
    tmp_path: Path, addresses: tuple[str, ...], url: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing may be fetched")

    with pytest.raises(AppError) as caught:
        fetch(tmp_path, fetcher(handler, addresses), url)
    assert (caught.value.status, caught.value.code) == (422, "URL_NOT_ALLOWED")
    assert caught.value.details == [
        {"field": "params.image_path", "message": caught.value.details[0]["message"],
         "code": "URL_NOT_ALLOWED"}
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda: httpx.Response(200, content=b"\x89PNG" + b"0" * (21 * 1024 * 1024),
                                headers={"content-type": "image/png"}), "larger than"),
        (lambda: httpx.Response(200, content=b"<html/>", headers={"content-type": "text/html"}),
         "content type"),
        (lambda: httpx.Response(404), "answered 404"),
    ],
)  # fmt: skip
def test_too_large_wrong_type_or_missing_is_a_422(tmp_path: Path, answer, words: str) -> None:
    with pytest.raises(AppError) as caught:
        fetch(tmp_path, fetcher(lambda request: answer()))
    assert (caught.value.status, caught.value.code) == (422, "MEDIA_URL_FAILED")
    assert words in caught.value.message
    assert not (tmp_path / "s" / "uploads").exists() or not any(
        (tmp_path / "s" / "uploads").rglob("*.png")
    )


def test_a_host_that_does_not_answer_in_time_is_a_422(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(AppError) as caught:
        fetch(tmp_path, fetcher(handler))
    assert caught.value.code == "MEDIA_URL_FAILED" and "in time" in caught.value.message


def test_a_file_that_is_not_what_the_field_takes_is_an_invalid_upload(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=b"GIF89a not ours", headers={"content-type": "image/gif"}
        )

    with pytest.raises(AppError) as caught:
        fetch(tmp_path, fetcher(handler))
    assert (caught.value.status, caught.value.code) == (422, "INVALID_UPLOAD")
