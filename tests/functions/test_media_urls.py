"""Media by URL (seed 004's media download): an image or element may be an https URL of a
public file. It is fetched once, checked like an upload and stored in the caller's
`uploads` before any credit is reserved, and the job names the stored path; a URL to a
private address is refused before anything is fetched or reserved."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

I2I = "reference/image-to-image"
I2V = "reference/image-to-video"
COMPOSE = "reference/compose"


class Files:
    """A plain HTTP file server on 127.0.0.1 that counts the requests for each path."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.hits: dict[str, int] = {}
        files = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                files.hits[self.path] = files.hits.get(self.path, 0) + 1
                found = files.files.get(self.path)
                if found is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                body, content_type = found
                self.send_response(200)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def files() -> Iterator[Files]:
    served = Files()
    yield served
    served.close()


def balance(api: Any, user: Any) -> tuple[int, int, int]:
    overview = api.ok(api.get("update-credits", user=user))
    return overview["balance"], overview["reserved"], overview["ledger"]["total"]


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.7/still.png",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/still.png",
        "https://127.0.0.1/still.png",
        "https://localhost/still.png",
        "http://example.com/still.png",
    ],
)
def test_a_url_to_a_private_address_is_refused_before_money_moves(api, url):
    user = api.user(credits=100)
    before = balance(api, user)
    body = {"model": I2I, "params": {"prompt": "at night", "image_path": url}}
    error = api.fails(api.post("queue-job", user=user, json=body), 422, "URL_NOT_ALLOWED")
    assert error["details"][0]["field"] == "params.image_path"
    assert balance(api, user) == before
    # The same in a timeline of elements, and in a batch.
    element = {"type": "image", "path": url, "start": 0, "duration": 2}
    timeline = {"model": COMPOSE, "prompt": "t", "elements": [element]}
    error = api.fails(api.post("generate-video", user=user, json=timeline), 422, "URL_NOT_ALLOWED")
    assert error["details"][0]["field"] == "params.elements.0.path"
    batch = {"items": [{"model": I2I, "params": {"prompt": "x", "image_path": url}}]}
    api.fails(api.post("queue-job/batches", user=user, json=batch), 422, "URL_NOT_ALLOWED")
    assert balance(api, user) == before


def test_the_local_file_server_is_private_to_a_normal_server(api, files):
    files.files["/still.png"] = (api.png(), "image/png")
    user = api.user(credits=100)
    body = {"model": I2I, "params": {"prompt": "x", "image_path": files.url("/still.png")}}
    api.fails(api.post("queue-job", user=user, json=body), 422, "URL_NOT_ALLOWED")
    assert files.hits == {}  # refused before anything was fetched


def test_a_url_is_fetched_once_checked_and_stored_before_the_job(fetching_api, files):
    api = fetching_api
    png = api.png(320, 180)
    files.files["/still.png"] = (png, "image/png")
    user = api.user(credits=100)
    body = {"model": I2I, "params": {"prompt": "at night", "image_path": files.url("/still.png")}}
    job = api.ok(api.post("queue-job", user=user, json=body), 202)
    stored = job["params"]["image_path"]
    digest = hashlib.sha256(png).hexdigest()[:40]
    assert stored == f"{user.id}/from-url/{digest}.png"
    assert files.hits == {"/still.png": 1}
    assert api.has_object("uploads", stored)
    storage = api.storage()
    try:
        assert storage.download("uploads", stored) == png
    finally:
        storage.close()
    assert "://" not in str(job["params"])  # the job names the stored path only

    # Named twice in one timeline (and a sound by URL too): each file fetched once.
    wav = _wav()
    files.files["/tone"] = (wav, "audio/wav")
    elements = [
        {"type": "image", "path": files.url("/still.png"), "start": 0, "duration": 1},
        {"type": "image", "path": files.url("/still.png"), "start": 1, "duration": 1},
        {"type": "audio", "path": files.url("/tone"), "start": 0, "duration": 1},
    ]
    timeline = {"model": COMPOSE, "prompt": "a timeline", "elements": elements}
    made = api.post("generate-video", user=user, json=timeline)
    assert made.status_code in (200, 202), made.text
    got = made.json()["data"]["params"]["elements"]
    assert [e["path"] for e in got[:2]] == [stored, stored]
    assert got[2]["path"].startswith(f"{user.id}/from-url/") and got[2]["path"].endswith(".wav")
    assert files.hits == {"/still.png": 2, "/tone": 1}  # one fetch per request


def test_a_url_whose_file_is_unusable_moves_no_credit(fetching_api, files):
    api = fetching_api
    files.files["/fake.png"] = (b"<html>not a picture</html>", "image/png")
    files.files["/page"] = (b"<html></html>", "text/html")
    user = api.user(credits=100)
    before = balance(api, user)
    cases = [
        ("/fake.png", "INVALID_UPLOAD"),
        ("/page", "MEDIA_URL_FAILED"),  # not an image by its type
        ("/missing.png", "MEDIA_URL_FAILED"),  # 404
    ]
    for path, code in cases:
        body = {"model": I2I, "params": {"prompt": "x", "image_path": files.url(path)}}
        error = api.fails(api.post("queue-job", user=user, json=body), 422, code)
        assert error["details"][0]["field"] == "params.image_path", error
    assert balance(api, user) == before
    stored = api.sql(
        "select count(*) from storage.objects where name like %s", [f"{user.id}/from-url/%"]
    )
    assert stored == 0  # nothing unusable was kept


def _wav() -> bytes:
    import subprocess

    done = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
         "-f", "wav", "-"],
        capture_output=True, check=True,
    )  # fmt: skip
    return done.stdout
