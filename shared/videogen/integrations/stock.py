"""Stock photos and clips for a script's sections: the Pexels and Unsplash photo searches
and the Pexels and Pixabay video searches, over httpx.

Each client searches for one landscape (or portrait, or square) photo for a query and
downloads it at a size fit for the video; the answer keeps who made it, because both
services ask for attribution. Unsplash also asks that a download be reported to its
``download_location`` (its API guidelines), which :meth:`UnsplashPhotos.download` does.
Tests replay recorded answers through ``httpx.MockTransport``; nothing here needs the
network unless a key is configured (``STOCK_PHOTOS``, ``PEXELS_API_KEY``,
``UNSPLASH_ACCESS_KEY``; ``STOCK_VIDEOS``, ``PIXABAY_API_KEY``). A clip is searched in the
frame's orientation and downloaded in the smallest rendition that covers the frame
(:func:`pick_rendition`); the render repeats and crops it to its section.
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


def _get_bytes(
    client: httpx.Client, url: str, provider: str, limit: int = MAX_PHOTO_BYTES
) -> bytes:
    import httpx  # cold start: httpx loads on first use

    try:
        with client.stream("GET", url, follow_redirects=True, timeout=30) as resp:
            resp.raise_for_status()
            data = bytearray()
            for chunk in resp.iter_bytes():
                data += chunk
                if len(data) > limit:
                    raise ImageError(f"the {provider} file is larger than {limit >> 20} MB")
            return bytes(data)
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


# Stock videos ---------------------------------------------------------------------------------

MAX_CLIP_BYTES = 100 * 1024 * 1024  # as a video upload (services.uploads.MAX_VIDEO_BYTES)


@dataclass(frozen=True)
class StockVideo:
    """One clip found for a query: the rendition chosen for the frame, and its credit."""

    provider: str
    id: str
    video_url: str  # the chosen rendition's file
    page_url: str
    author: str
    author_url: str
    width: int  # the rendition's
    height: int
    duration: float

    @property
    def attribution(self) -> str:
        """The credit line (Pexels asks for one; Pixabay welcomes it)."""
        name = "Pexels" if self.provider == "pexels" else "Pixabay"
        return f"Video by {self.author} on {name}"

    @property
    def credit(self) -> dict[str, str]:
        """What a job output keeps of it: who made it, where it lives."""
        return {
            "source": self.provider,
            "attribution": self.attribution,
            "author_url": self.author_url,
            "page_url": self.page_url,
        }


class StockVideos(Protocol):
    """A stock video search."""

    name: str

    def search(
        self, query: str, orientation: Orientation, size: tuple[int, int]
    ) -> StockVideo | None:
        """The best clip for ``query`` with a rendition fit for a ``size`` frame, or None."""
        ...

    def download(self, video: StockVideo) -> bytes:
        """The chosen rendition's bytes."""
        ...


def pick_rendition(
    files: list[tuple[int, int, str]], size: tuple[int, int]
) -> tuple[int, int, str] | None:
    """The rendition (width, height, url) to download for a ``size`` frame: among those that
    cover the frame once cropped (each side at least the frame's, after scaling to the
    frame's aspect), the smallest; when none covers it, the largest. Same-orientation ones
    first, since cropping a portrait clip into a landscape frame wastes most of it."""
    w, h = size
    usable = [f for f in files if f[0] > 0 and f[1] > 0 and f[2]]
    if not usable:
        return None
    landscape = w >= h
    same = [f for f in usable if (f[0] >= f[1]) == landscape] or usable
    covering = [f for f in same if max(w / f[0], h / f[1]) <= 1.0]
    if covering:
        return min(covering, key=lambda f: f[0] * f[1])
    return max(same, key=lambda f: f[0] * f[1])


class PexelsVideos(_StockApi):
    """``GET https://api.pexels.com/videos/search`` (Authorization: the key); each video
    lists its ``video_files`` (``quality``, ``file_type``, ``width``, ``height``, ``link``)."""

    name = "pexels"
    base_url = "https://api.pexels.com/videos"

    def search(
        self, query: str, orientation: Orientation, size: tuple[int, int]
    ) -> StockVideo | None:
        import httpx  # cold start: httpx loads on first use

        try:
            resp = self.client.get(
                f"{self.base_url}/search",
                params={"query": query, "per_page": 5, "orientation": orientation},
                headers={"Authorization": self.key},
            )
            resp.raise_for_status()
            found: dict[str, Any] = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise _failed("Pexels", exc) from exc
        for v in found.get("videos") or []:
            files = [
                (int(f.get("width") or 0), int(f.get("height") or 0), f.get("link") or "")
                for f in v.get("video_files") or []
                if f.get("file_type") == "video/mp4"
            ]
            chosen = pick_rendition(files, size)
            if chosen is None:
                continue
            user = v.get("user") or {}
            return StockVideo(
                provider="pexels",
                id=str(v["id"]),
                video_url=chosen[2],
                page_url=v.get("url", ""),
                author=user.get("name", ""),
                author_url=user.get("url", ""),
                width=chosen[0],
                height=chosen[1],
                duration=float(v.get("duration") or 0),
            )
        return None

    def download(self, video: StockVideo) -> bytes:
        return _get_bytes(self.client, video.video_url, "Pexels", MAX_CLIP_BYTES)


class PixabayVideos(_StockApi):
    """``GET https://pixabay.com/api/videos/?key=…&q=…``; each hit has ``videos`` in four
    renditions (``large`` 1920x1080, ``medium`` 1280x720, ``small`` 960x540, ``tiny``
    640x360; ``url``, ``width``, ``height``, ``size``). The API has no orientation filter:
    the rendition check prefers clips of the frame's orientation."""

    name = "pixabay"
    base_url = "https://pixabay.com/api/videos/"

    def search(
        self, query: str, orientation: Orientation, size: tuple[int, int]
    ) -> StockVideo | None:
        import httpx  # cold start: httpx loads on first use

        try:
            resp = self.client.get(
                self.base_url,
                params={"key": self.key, "q": query[:100], "per_page": 5, "safesearch": "true"},
            )
            resp.raise_for_status()
            found: dict[str, Any] = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise _failed("Pixabay", exc) from exc
        hits = found.get("hits") or []
        landscape = size[0] >= size[1]
        for hit in sorted(hits, key=lambda h: not _pixabay_same_way(h, landscape)):
            files = [
                (int(r.get("width") or 0), int(r.get("height") or 0), r.get("url") or "")
                for r in (hit.get("videos") or {}).values()
                if isinstance(r, dict)
            ]
            chosen = pick_rendition(files, size)
            if chosen is None:
                continue
            author = str(hit.get("user") or "")
            return StockVideo(
                provider="pixabay",
                id=str(hit["id"]),
                video_url=chosen[2],
                page_url=hit.get("pageURL", ""),
                author=author,
                author_url=f"https://pixabay.com/users/{author}-{hit.get('user_id', '')}/",
                width=chosen[0],
                height=chosen[1],
                duration=float(hit.get("duration") or 0),
            )
        return None

    def download(self, video: StockVideo) -> bytes:
        return _get_bytes(self.client, video.video_url, "Pixabay", MAX_CLIP_BYTES)


def _pixabay_same_way(hit: dict[str, Any], landscape: bool) -> bool:
    large = (hit.get("videos") or {}).get("large") or {}
    w, h = int(large.get("width") or 0), int(large.get("height") or 0)
    return w > 0 and h > 0 and (w >= h) == landscape


def stock_videos(settings: Settings, client: httpx.Client | None = None) -> StockVideos | None:
    """The configured clip search, or None (``STOCK_VIDEOS=none``: clips are made offline);
    a chosen one without its key is a 503."""
    if settings.stock_videos == "none":
        return None
    key = settings.pexels_api_key if settings.stock_videos == "pexels" else settings.pixabay_api_key
    if key is None:
        raise ServiceUnavailable(
            f"STOCK_VIDEOS={settings.stock_videos} needs its API key.",
            code="PROVIDER_NOT_CONFIGURED",
            hint="Set PEXELS_API_KEY or PIXABAY_API_KEY, or STOCK_VIDEOS=none for offline clips.",
        )
    if settings.stock_videos == "pexels":
        return PexelsVideos(key.get_secret_value(), client)
    return PixabayVideos(key.get_secret_value(), client)
