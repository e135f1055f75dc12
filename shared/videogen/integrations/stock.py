"""Stock photos for a script's sections: Pexels and Unsplash search APIs over httpx.

Each client searches for one landscape (or portrait, or square) photo for a query and
downloads it at a size fit for the video; the answer keeps who made it, because both
services ask for attribution. Unsplash also asks that a download be reported to its
``download_location`` (its API guidelines), which :meth:`UnsplashPhotos.download` does.
Tests replay recorded answers through ``httpx.MockTransport``; nothing here needs the
network unless a key is configured (``STOCK_PHOTOS``, ``PEXELS_API_KEY``,
``UNSPLASH_ACCESS_KEY``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from videogen.errors import ServiceUnavailable
from videogen.media.errors import ImageError

if TYPE_CHECKING:
    import httpx

    from videogen.config import Settings

Orientation = Literal["landscape", "portrait", "square"]
MAX_PHOTO_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class StockPhoto:
    """One photo found for a query, and whom to credit for it."""

    provider: str
    id: str
    image_url: str  # what to download
    page_url: str  # the photo's page (link it in the credit)
    photographer: str
    photographer_url: str
    width: int
    height: int
    alt: str = ""
    download_location: str | None = None  # Unsplash: report a download here

    @property
    def attribution(self) -> str:
        """The credit line both services ask for."""
        name = "Pexels" if self.provider == "pexels" else "Unsplash"
        return f"Photo by {self.photographer} on {name}"


class StockPhotos(Protocol):
    """A stock photo search."""

    name: str

    def search(self, query: str, orientation: Orientation) -> StockPhoto | None:
        """The best photo for ``query``, or None when there is none."""
        ...

    def download(self, photo: StockPhoto) -> bytes:
        """The photo's bytes."""
        ...


def _failed(provider: str, exc: Exception) -> ImageError:
    return ImageError(
        f"{provider} did not answer: {exc.__class__.__name__}",
        status=502,
        code="STOCK_PHOTO_FAILED",
    )


def _get_bytes(client: httpx.Client, url: str, provider: str) -> bytes:
    import httpx  # cold start: httpx loads on first use

    try:
        with client.stream("GET", url, follow_redirects=True, timeout=30) as resp:
            resp.raise_for_status()
            data = b""
            for chunk in resp.iter_bytes():
                data += chunk
                if len(data) > MAX_PHOTO_BYTES:
                    raise ImageError(f"the {provider} photo is larger than 20 MB")
            return data
    except httpx.HTTPError as exc:
        raise _failed(provider, exc) from exc


class _StockApi:
    """A search API's key and its HTTP client (made on first use)."""

    def __init__(self, key: str, client: httpx.Client | None = None) -> None:
        self.key = key
        self._client = client

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            import httpx  # cold start: httpx loads on first use

            self._client = httpx.Client(timeout=15)
        return self._client


class PexelsPhotos(_StockApi):
    """``GET https://api.pexels.com/v1/search`` with the key in ``Authorization``."""

    name = "pexels"
    base_url = "https://api.pexels.com/v1"

    def search(self, query: str, orientation: Orientation) -> StockPhoto | None:
        import httpx  # cold start: httpx loads on first use

        try:
            resp = self.client.get(
                f"{self.base_url}/search",
                params={"query": query, "per_page": 1, "orientation": orientation},
                headers={"Authorization": self.key},
            )
            resp.raise_for_status()
            found: dict[str, Any] = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise _failed("Pexels", exc) from exc
        photos = found.get("photos") or []
        if not photos:
            return None
        p = photos[0]
        src = p.get("src") or {}
        return StockPhoto(
            provider="pexels",
            id=str(p["id"]),
            # "large2x": 1880 px wide at most, enough for 1080p without the full original.
            image_url=src.get("large2x") or src.get("large") or src["original"],
            page_url=p.get("url", ""),
            photographer=p.get("photographer", ""),
            photographer_url=p.get("photographer_url", ""),
            width=int(p.get("width", 0)),
            height=int(p.get("height", 0)),
            alt=p.get("alt") or "",
        )

    def download(self, photo: StockPhoto) -> bytes:
        return _get_bytes(self.client, photo.image_url, "Pexels")


class UnsplashPhotos(_StockApi):
    """``GET https://api.unsplash.com/search/photos`` with ``Authorization: Client-ID``."""

    name = "unsplash"
    base_url = "https://api.unsplash.com"

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Client-ID {self.key}", "Accept-Version": "v1"}

    def search(self, query: str, orientation: Orientation) -> StockPhoto | None:
        import httpx  # cold start: httpx loads on first use

        try:
            resp = self.client.get(
                f"{self.base_url}/search/photos",
                params={"query": query, "per_page": 1, "orientation": orientation},
                headers=self._headers,
            )
            resp.raise_for_status()
            found: dict[str, Any] = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise _failed("Unsplash", exc) from exc
        results = found.get("results") or []
        if not results:
            return None
        p = results[0]
        user = p.get("user") or {}
        return StockPhoto(
            provider="unsplash",
            id=str(p["id"]),
            image_url=(p.get("urls") or {})["regular"],  # 1080 px wide
            page_url=(p.get("links") or {}).get("html", ""),
            photographer=user.get("name", ""),
            photographer_url=(user.get("links") or {}).get("html", ""),
            width=int(p.get("width", 0)),
            height=int(p.get("height", 0)),
            alt=p.get("alt_description") or p.get("description") or "",
            download_location=(p.get("links") or {}).get("download_location"),
        )

    def download(self, photo: StockPhoto) -> bytes:
        import httpx  # cold start: httpx loads on first use

        if photo.download_location:  # required by the API guidelines when a photo is used
            try:
                self.client.get(photo.download_location, headers=self._headers).raise_for_status()
            except httpx.HTTPError as exc:
                raise _failed("Unsplash", exc) from exc
        return _get_bytes(self.client, photo.image_url, "Unsplash")


def stock_photos(settings: Settings, client: httpx.Client | None = None) -> StockPhotos | None:
    """The configured search, or None (``STOCK_PHOTOS=none``); a chosen one without its key
    is a 503, not a silent fallback."""
    if settings.stock_photos == "none":
        return None
    key = (
        settings.pexels_api_key
        if settings.stock_photos == "pexels"
        else settings.unsplash_access_key
    )
    if key is None:
        raise ServiceUnavailable(
            f"STOCK_PHOTOS={settings.stock_photos} needs its API key.",
            code="PROVIDER_NOT_CONFIGURED",
            hint="Set PEXELS_API_KEY or UNSPLASH_ACCESS_KEY, or ask for title cards.",
        )
    if settings.stock_photos == "pexels":
        return PexelsPhotos(key.get_secret_value(), client)
    return UnsplashPhotos(key.get_secret_value(), client)
