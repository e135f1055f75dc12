"""Outbound HTTP to public hosts only: refused addresses, DNS rebinding, redirects, limits."""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from videogen.config import Settings
from videogen.integrations.public_http import (
    OutboundFailed,
    OutboundRefused,
    PublicHttp,
    address_is_public,
)

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"

REFUSED = [
    "127.0.0.1",
    "127.8.9.10",
    "10.0.0.5",
    "172.16.3.4",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # CGNAT
    "0.0.0.0",
    "224.0.0.1",  # multicast
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "192.0.2.10",  # documentation
    "198.18.0.1",  # benchmarking
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a00:1::",  # 6to4 of 10.0.0.1
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "2001:db8::1",  # documentation
]


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"VIDEOGEN_ENV": "test"}
    values.update(overrides)
    return Settings(_env_file=None, **values)


class Resolver:
    """Answers from a list per call: the first call gets answers[0], the next answers[1]…"""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        return self.answers[min(len(self.calls), len(self.answers)) - 1]


class Recorder:
    """A MockTransport handler that keeps every request it saw."""

    def __init__(self, status: int = 200, content: bytes = b"{}", **headers: str) -> None:
        self.requests: list[httpx.Request] = []
        self.answer(status, content, **headers)

    def answer(self, status: int, content: bytes, **headers: str) -> None:
        self.status, self.content = status, content
        self.headers = {k.replace("_", "-"): v for k, v in headers.items()}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, content=self.content, headers=self.headers)


def client(
    resolver: Resolver, handler: Any, *, allow_private: bool = False, **kwargs: Any
) -> PublicHttp:
    return PublicHttp(
        settings=settings(),
        allow_private=allow_private,
        resolver=resolver,
        transport=httpx.MockTransport(handler),
        **kwargs,
    )


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not address_is_public(address)
    recorder = Recorder()
    with client(Resolver([address]), recorder) as http, pytest.raises(OutboundRefused) as caught:
        http.get("https://receiver.example/hook")
    assert caught.value.reason == "private_address"
    assert caught.value.status == 422 and caught.value.code == "URL_NOT_ALLOWED"
    assert recorder.requests == []  # nothing was sent


@pytest.mark.parametrize("address", ["127.0.0.1", "[::1]", "[::ffff:7f00:1]", "169.254.169.254"])
def test_literal_private_hosts_are_refused_without_resolving(address: str) -> None:
    resolver = Resolver(["8.8.8.8"])
    with client(resolver, Recorder()) as http, pytest.raises(OutboundRefused):
        http.get(f"https://{address}/x")
    assert resolver.calls == []


def test_public_addresses_pass() -> None:
    for address in [PUBLIC_V4, PUBLIC_V6, "::ffff:8.8.8.8", "8.8.8.8"]:
        assert address_is_public(address), address


def test_any_private_address_among_the_records_refuses_the_host() -> None:
    recorder = Recorder()
    with (
        client(Resolver([PUBLIC_V4, "10.1.2.3"]), recorder) as http,
        pytest.raises(OutboundRefused),
    ):
        http.post("https://receiver.example/hook", content=b"{}")
    assert recorder.requests == []


def test_the_connection_goes_to_the_checked_address_with_host_and_sni() -> None:
    """DNS rebinding: a second lookup would say 127.0.0.1; there is no second lookup."""
    resolver = Resolver([PUBLIC_V4], ["127.0.0.1"])
    recorder = Recorder()
    with client(resolver, recorder) as http:
        answer = http.post(
            "https://Receiver.Example:8443/hook?x=1",
            content=b'{"a":1}',
            headers={"Content-Type": "application/json"},
        )
    assert answer.status_code == 200 and answer.address == PUBLIC_V4
    assert resolver.calls == [("receiver.example", 8443)]  # resolved once
    (sent,) = recorder.requests
    assert sent.url.host == PUBLIC_V4 and sent.url.port == 8443
    assert sent.url.path == "/hook" and sent.url.query == b"x=1"
    assert sent.headers["host"] == "receiver.example:8443"
    assert sent.extensions["sni_hostname"] == "receiver.example"
    assert sent.content == b'{"a":1}'


def test_ipv6_addresses_are_bracketed_in_the_connect_url() -> None:
    recorder = Recorder()
    with client(Resolver([PUBLIC_V6]), recorder) as http:
        http.get("https://v6.example/")
    (sent,) = recorder.requests
    assert sent.url.host == PUBLIC_V6
    assert f"[{PUBLIC_V6}]" in str(sent.url)
    assert sent.headers["host"] == "v6.example"


@pytest.mark.parametrize(
    "url",
    ["http://receiver.example/x", "ftp://receiver.example/x", "file:///etc/passwd", "gopher://a/"],
)
def test_only_https_when_private_hosts_are_not_allowed(url: str) -> None:
    with client(Resolver([PUBLIC_V4]), Recorder()) as http, pytest.raises(OutboundRefused):
        http.get(url)


def test_credentials_in_the_url_are_refused() -> None:
    with client(Resolver([PUBLIC_V4]), Recorder()) as http, pytest.raises(OutboundRefused):
        http.get("https://user:pw@receiver.example/")


def test_unresolvable_hosts_are_refused() -> None:
    def nowhere(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with (
        PublicHttp(settings=settings(), resolver=nowhere) as http,
        pytest.raises(OutboundRefused) as caught,
    ):
        http.get("https://nowhere.invalid/")
    assert caught.value.reason == "dns"


def test_a_resolver_that_hangs_is_bounded_by_the_timeout() -> None:
    release = threading.Event()

    def stuck(host: str, port: int) -> list[str]:
        release.wait(30)
        return [PUBLIC_V4]

    recorder = Recorder()
    try:
        with (
            PublicHttp(
                settings=settings(),
                resolver=stuck,
                transport=httpx.MockTransport(recorder),
                timeout_s=0.3,
            ) as http,
            pytest.raises(OutboundFailed) as caught,
        ):
            http.get("https://slow-dns.example/")
    finally:
        release.set()
    assert caught.value.reason == "dns_timeout" and recorder.requests == []


def test_the_setting_allows_http_and_private_hosts() -> None:
    recorder = Recorder()
    local = settings(OUTBOUND_ALLOW_PRIVATE_HOSTS=True)
    with PublicHttp(
        settings=local, resolver=Resolver(["127.0.0.1"]), transport=httpx.MockTransport(recorder)
    ) as http:
        assert http.get("http://localhost:8080/x").status_code == 200
    assert recorder.requests[0].url.host == "127.0.0.1"
    assert "sni_hostname" not in recorder.requests[0].extensions  # plain http
    with pytest.raises(ValueError, match="OUTBOUND_ALLOW_PRIVATE_HOSTS"):
        settings(VIDEOGEN_ENV="production", OUTBOUND_ALLOW_PRIVATE_HOSTS=True)


def test_redirects_are_not_followed_by_default() -> None:
    recorder = Recorder(302, b"", Location="https://other.example/")
    with client(Resolver([PUBLIC_V4]), recorder) as http:
        answer = http.get("https://receiver.example/")
    assert answer.status_code == 302 and len(recorder.requests) == 1


def test_each_followed_redirect_is_checked_again() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "https://internal.example/secret"})

    resolver = Resolver([PUBLIC_V4], ["10.0.0.7"])
    with client(resolver, handler) as http, pytest.raises(OutboundRefused):
        http.get("https://receiver.example/", max_redirects=3)
    assert [host for host, _ in resolver.calls] == ["receiver.example", "internal.example"]


def test_a_followed_redirect_to_a_public_host_arrives() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["host"])
        if request.headers["host"] == "a.example":
            return httpx.Response(301, headers={"Location": "https://b.example/final"})
        return httpx.Response(200, content=b"done", headers={"Content-Type": "text/plain"})

    with client(Resolver([PUBLIC_V4]), handler) as http:
        answer = http.get("https://a.example/start", max_redirects=1)
    assert answer.content == b"done" and seen == ["a.example", "b.example"]
    assert str(answer.url) == "https://b.example/final"
    assert answer.redirects == ["https://a.example/start"]


def test_a_declared_length_over_the_limit_is_refused() -> None:
    recorder = Recorder(200, b"x" * 2000)
    with (
        client(Resolver([PUBLIC_V4]), recorder, max_bytes=1000) as http,
        pytest.raises(OutboundFailed) as caught,
    ):
        http.get("https://receiver.example/")
    assert caught.value.reason == "too_large"


def test_a_streamed_body_is_stopped_at_the_limit() -> None:
    produced: list[int] = []

    def endless() -> Iterator[bytes]:
        while True:
            produced.append(1)
            yield b"y" * 100

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=endless())  # no Content-Length: chunked

    with (
        client(Resolver([PUBLIC_V4]), handler, max_bytes=1000) as http,
        pytest.raises(OutboundFailed) as caught,
    ):
        http.get("https://receiver.example/")
    assert caught.value.reason == "too_large"
    assert len(produced) <= 11  # stopped right after the limit, not read to the end


def test_a_compressed_body_is_bounded_after_decompression() -> None:
    bomb = gzip.compress(b"\0" * 1_000_000)
    recorder = Recorder(200, bomb, Content_Encoding="gzip")
    with client(Resolver([PUBLIC_V4]), recorder, max_bytes=10_000) as http:
        assert len(bomb) < 10_000
        with pytest.raises(OutboundFailed) as caught:
            http.get("https://receiver.example/")
    assert caught.value.reason == "too_large"
    small = Recorder(200, gzip.compress(b"hello"), Content_Encoding="gzip")
    with client(Resolver([PUBLIC_V4]), small) as http:
        assert http.get("https://receiver.example/").content == b"hello"


def test_a_download_streams_to_a_file_within_the_limit(tmp_path: Any) -> None:
    target = tmp_path / "video.mp4"
    recorder = Recorder(200, b"v" * 5000, Content_Type="video/mp4")
    with client(Resolver([PUBLIC_V4]), recorder) as http:
        answer = http.download("https://cdn.example/v.mp4", target, content_types=["video/"])
        assert answer.status_code == 200 and answer.content == b""
        assert target.read_bytes() == b"v" * 5000
        with pytest.raises(OutboundFailed):
            http.download("https://cdn.example/v.mp4", target, max_bytes=1000)
        assert not target.exists()  # nothing half-written is left
        recorder.answer(404, b"gone")
        assert http.download("https://cdn.example/v.mp4", target).status_code == 404
        assert not target.exists()


def test_content_types_are_checked() -> None:
    recorder = Recorder(200, b"<html>", Content_Type="text/html")
    with client(Resolver([PUBLIC_V4]), recorder) as http, pytest.raises(OutboundFailed) as caught:
        http.get("https://receiver.example/", content_types=["image/", "video/mp4"])
        assert caught.value.reason == "content_type"
        recorder.answer(200, b"\x89PNG", Content_Type="image/png; q=1")
        assert http.get("https://receiver.example/", content_types=["image/"]).content


class _Dripping(BaseHTTPRequestHandler):
    """Sends headers, then one byte every 0.1 s until the test is over."""

    stop: threading.Event

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        try:
            while not self.stop.wait(0.1):
                self.wfile.write(b".")
                self.wfile.flush()
        except OSError:
            pass  # the client gave up: that is the point

    def log_message(self, *_args: Any) -> None:
        pass


def test_the_whole_exchange_is_bounded_in_time_on_a_real_server() -> None:
    """A server that keeps sending (each read is quick) is still cut at the total time."""
    stop = threading.Event()
    handler = type("Dripping", (_Dripping,), {"stop": stop})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        with (
            PublicHttp(settings=settings(), allow_private=True, timeout_s=0.6) as http,
            pytest.raises(OutboundFailed) as caught,
        ):
            http.get(f"http://127.0.0.1:{port}/slow")
        assert caught.value.reason == "timeout"
        # The same server refused when private hosts are not allowed.
        with PublicHttp(settings=settings()) as http, pytest.raises(OutboundRefused):
            http.get(f"http://127.0.0.1:{port}/slow")
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
