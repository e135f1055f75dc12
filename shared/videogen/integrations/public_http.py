"""HTTP to hosts on the public internet only: the one way our servers reach a URL a user gave.

A user's URL (a webhook receiver, media to fetch) must not make our servers talk to their
own network (SSRF). Each request here:

- takes ``https`` only (``http`` too when ``OUTBOUND_ALLOW_PRIVATE_HOSTS`` is on: the local
  stack and tests, whose receivers listen on 127.0.0.1);
- resolves the host once (every A/AAAA record) and refuses it if any address is not a
  global unicast one (private, loopback, link-local, multicast, reserved, unspecified,
  CGNAT, documentation, and IPv6 forms that embed one: IPv4-mapped, 6to4, Teredo, NAT64);
- connects to the address it checked, never resolving again (DNS rebinding): the URL is
  rewritten to the IP, the ``Host`` header and the TLS ``sni_hostname`` name the host, so
  the certificate is still verified against the hostname;
- follows no redirect by itself (``max_redirects`` > 0 re-checks each ``Location``);
- bounds the time of the whole exchange, the size of the body (streamed, stopped at the
  limit) and, when asked, its content type.

The resolver and the httpx transport are injectable (tests). httpx's environment proxies
are off (``trust_env=False``): a proxy would resolve the name again.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from videogen.config import Settings, get_settings
from videogen.errors import AppError

__all__ = [
    "OutboundFailed",
    "OutboundRefused",
    "PublicHttp",
    "PublicResponse",
    "Target",
    "address_is_public",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port → the addresses the name resolves to (strings or ip_address objects).
Resolver = Callable[[str, int], Iterable[str | IPAddress]]

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DNS_TIMEOUT_S = 5.0
# getaddrinfo has no timeout of its own: lookups run here, and the caller waits a bounded time.
_RESOLVERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="public-http-dns")
DEFAULT_TIMEOUT_S = 10.0
_REDIRECTS = {301, 302, 303, 307, 308}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


class OutboundRefused(AppError):
    """The URL may not be fetched: it is not an https URL on a public host."""

    status, code = 422, "URL_NOT_ALLOWED"
    hint = "Give an https URL whose host resolves only to public internet addresses."

    def __init__(self, message: str | None = None, *, reason: str = "refused") -> None:
        super().__init__(message)
        self.reason = reason


class OutboundFailed(AppError):
    """The remote host could not be reached or its answer was not acceptable."""

    status, code = 502, "UPSTREAM_FAILED"

    def __init__(self, message: str | None = None, *, reason: str = "failed") -> None:
        super().__init__(message)
        self.reason = reason


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``getaddrinfo`` gives for the host (A and AAAA), in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
        if address not in seen:
            seen.append(address)
    return seen


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (6to4, Teredo, NAT64)."""
    found: list[ipaddress.IPv4Address] = []
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if address in _NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def address_is_public(address: str | IPAddress) -> bool:
    """True for a global unicast address (and any IPv4 address it embeds is one too)."""
    try:
        ip = ipaddress.ip_address(str(address).split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return address_is_public(ip.ipv4_mapped)  # ::ffff:a.b.c.d is a.b.c.d
    if not ip.is_global or ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL:
            return False
        # An "IPv4-compatible" ::a.b.c.d (deprecated) is not global either: is_global covers it.
        return all(address_is_public(inner) for inner in _embedded_ipv4(ip))
    return True


@dataclass(frozen=True)
class Target:
    """Where one request goes: the checked address and the names the server must see."""

    url: httpx.URL  # the user's URL
    address: str  # the checked IP the connection goes to
    connect_url: httpx.URL  # the URL with the IP as its host
    host_header: str  # host[:port] as the user's URL names it
    sni_hostname: str | None  # for TLS: the certificate must name this host


@dataclass
class PublicResponse:
    """A bounded answer: status, headers and the whole (size-limited) body."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    url: httpx.URL
    address: str
    redirects: list[str] = field(default_factory=list)

    @property
    def is_success(self) -> bool:
        """2xx."""
        return 200 <= self.status_code < 300

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower case ("" when none)."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (replacing what does not decode)."""
        return self.content.decode("utf-8", errors="replace")


class PublicHttp:
    """Requests to public hosts, each bounded in time and size (see the module docstring)."""

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        allow_private: bool | None = None,
        resolver: Resolver | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_bytes: int = DEFAULT_MAX_BYTES,
        user_agent: str = "videogen",
    ) -> None:
        settings = settings or get_settings()
        self.allow_private = (
            settings.outbound_allow_private_hosts if allow_private is None else allow_private
        )
        self.resolver: Resolver = resolver or system_resolver
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.user_agent = user_agent
        self._client = httpx.Client(
            transport=transport,
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> PublicHttp:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # Checks -------------------------------------------------------------------------------
    def target(self, url: str | httpx.URL) -> Target:
        """Check the URL and resolve its host once; where the request will connect."""
        try:
            parsed = httpx.URL(str(url))
        except (httpx.InvalidURL, ValueError, TypeError) as exc:
            raise OutboundRefused("The URL cannot be read.", reason="invalid_url") from exc
        scheme = parsed.scheme.lower()
        if scheme not in ("https", "http"):
            raise OutboundRefused("Only https URLs are allowed.", reason="scheme")
        if scheme == "http" and not self.allow_private:
            raise OutboundRefused("Only https URLs are allowed.", reason="scheme")
        if parsed.userinfo:
            raise OutboundRefused("URLs with credentials are not allowed.", reason="userinfo")
        host = parsed.host.rstrip(".").lower()
        if not host:
            raise OutboundRefused("The URL has no host.", reason="invalid_url")
        port = parsed.port or (443 if scheme == "https" else 80)
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [str(literal)]
        else:
            lookup = _RESOLVERS.submit(lambda: list(self.resolver(host, port)))
            try:
                found = lookup.result(timeout=min(self.timeout_s, DNS_TIMEOUT_S))
            except FutureTimeout as exc:
                raise OutboundFailed(
                    f"The host {host} did not resolve in time.", reason="dns_timeout"
                ) from exc
            except (OSError, UnicodeError) as exc:
                raise OutboundRefused(f"The host {host} does not resolve.", reason="dns") from exc
            addresses = [str(a).split("%", 1)[0] for a in found]
        if not addresses:
            raise OutboundRefused(f"The host {host} does not resolve.", reason="dns")
        if not self.allow_private:
            blocked = [a for a in addresses if not address_is_public(a)]
            if blocked:
                raise OutboundRefused(
                    f"The host {host} resolves to a non-public address ({blocked[0]}).",
                    reason="private_address",
                )
        address = addresses[0]
        default_port = 443 if scheme == "https" else 80
        host_header = host if port == default_port else f"{host}:{port}"
        if ":" in host and literal is not None and isinstance(literal, ipaddress.IPv6Address):
            host_header = f"[{host}]" if port == default_port else f"[{host}]:{port}"
        return Target(
            url=parsed,
            address=address,
            connect_url=parsed.copy_with(host=address),
            host_header=host_header,
            sni_hostname=host if scheme == "https" and literal is None else None,
        )

    # Requests -----------------------------------------------------------------------------
    def request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
        timeout_s: float | None = None,
        content_types: Sequence[str] | None = None,
        max_redirects: int = 0,
        sink: BinaryIO | None = None,
    ) -> PublicResponse:
        """One exchange (plus up to ``max_redirects`` re-checked redirects), fully bounded.

        ``content_types``: accepted media types; an entry ending in ``/`` is a prefix
        (``"image/"``). A redirect beyond ``max_redirects`` is returned as it came.
        ``sink``: a 2xx body is written there as it arrives (``content`` stays empty).
        """
        limit = self.max_bytes if max_bytes is None else max_bytes
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        redirects: list[str] = []
        current = httpx.URL(str(url)) if not isinstance(url, httpx.URL) else url
        while True:
            target = self.target(current)
            response = self._exchange(
                method,
                target,
                content,
                headers,
                limit,
                deadline,
                content_types,
                final=len(redirects) >= max_redirects,
                sink=sink,
            )
            location = response.headers.get("location")
            if response.status_code in _REDIRECTS and location and len(redirects) < max_redirects:
                redirects.append(str(current))
                current = target.url.join(location)
                if response.status_code == 303 or (
                    response.status_code in (301, 302) and method.upper() == "POST"
                ):
                    method, content = "GET", None
                continue
            response.redirects = redirects
            return response

    def get(self, url: str | httpx.URL, **kwargs: Any) -> PublicResponse:
        """GET (see :meth:`request`)."""
        return self.request("GET", url, **kwargs)

    def post(self, url: str | httpx.URL, **kwargs: Any) -> PublicResponse:
        """POST (see :meth:`request`)."""
        return self.request("POST", url, **kwargs)

    def download(self, url: str | httpx.URL, path: Path, **kwargs: Any) -> PublicResponse:
        """GET into a file, streamed within the same bounds (see :meth:`request`); the file
        is removed unless a 2xx came back whole."""
        kept = False
        try:
            with path.open("wb") as out:
                answer = self.request("GET", url, sink=out, **kwargs)
            kept = answer.is_success
            return answer
        finally:
            if not kept:
                path.unlink(missing_ok=True)

    def _exchange(
        self,
        method: str,
        target: Target,
        content: bytes | None,
        headers: Mapping[str, str] | None,
        limit: int,
        deadline: float,
        content_types: Sequence[str] | None,
        *,
        final: bool,
        sink: BinaryIO | None = None,
    ) -> PublicResponse:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise OutboundFailed("The remote host did not answer in time.", reason="timeout")
        sent = {
            "User-Agent": self.user_agent,
            **(dict(headers) if headers else {}),
        }
        sent["Host"] = target.host_header
        extensions: dict[str, Any] = {
            "timeout": {
                "connect": min(remaining, 5.0),
                "read": remaining,
                "write": remaining,
                "pool": remaining,
            }
        }
        if target.sni_hostname:
            extensions["sni_hostname"] = target.sni_hostname
        request = self._client.build_request(
            method, target.connect_url, content=content, headers=sent, extensions=extensions
        )
        try:
            response = self._client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise OutboundFailed(
                "The remote host did not answer in time.", reason="timeout"
            ) from exc
        except httpx.HTTPError as exc:
            raise OutboundFailed(
                f"The remote host could not be reached: {type(exc).__name__}.",
                reason="connect",
            ) from exc
        try:
            is_redirect = response.status_code in _REDIRECTS and not final
            if content_types is not None and response.is_success and not is_redirect:
                _check_content_type(response.headers.get("content-type", ""), content_types)
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise OutboundFailed(
                    f"The answer is larger than {limit} bytes.", reason="too_large"
                )
            body = bytearray()
            to_sink = sink is not None and response.is_success and not is_redirect
            size = 0
            try:
                # httpx decodes gzip/deflate/br chunk by chunk: the limit is on what it gives.
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise OutboundFailed(
                            f"The answer is larger than {limit} bytes.", reason="too_large"
                        )
                    if to_sink:
                        sink.write(chunk)  # type: ignore[union-attr]
                    else:
                        body.extend(chunk)
                    if len(body) > limit:
                        raise OutboundFailed(
                            f"The answer is larger than {limit} bytes.", reason="too_large"
                        )
                    if time.monotonic() > deadline:
                        raise OutboundFailed(
                            "The remote host did not answer in time.", reason="timeout"
                        )
            except httpx.TimeoutException as exc:
                raise OutboundFailed(
                    "The remote host did not answer in time.", reason="timeout"
                ) from exc
            except httpx.HTTPError as exc:
                raise OutboundFailed(
                    f"The answer could not be read: {type(exc).__name__}.", reason="read"
                ) from exc
            body_bytes = bytes(body)
        finally:
            response.close()
        return PublicResponse(
            status_code=response.status_code,
            headers=response.headers,
            content=body_bytes,
            url=target.url,
            address=target.address,
        )


def _check_content_type(header: str, accepted: Sequence[str]) -> None:
    media = header.split(";", 1)[0].strip().lower()
    for entry in accepted:
        entry = entry.lower()
        if (entry.endswith("/") and media.startswith(entry)) or media == entry:
            return
    raise OutboundFailed(
        f"The answer's content type {media or '(none)'} is not one of {', '.join(accepted)}.",
        reason="content_type",
    )
