"""Upload checks and title cards, against real files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from videogen.media.errors import ImageError
from videogen.media.images import make_title_card, sniff_image_format, validate_upload
from videogen.media.render import probe


@pytest.mark.parametrize(
    ("name", "kind", "size"),
    [
        ("bars.png", "png", (640, 360)),
        ("fractal.jpg", "jpeg", (400, 300)),
        ("pic.webp", "webp", (200, 200)),
    ],
)
def test_png_jpeg_and_webp_uploads_are_accepted(
    assets: Path, name: str, kind: str, size: tuple[int, int]
) -> None:
    info = validate_upload(assets / name)
    assert (info.format, info.width, info.height) == (kind, *size)
    assert info.size == (assets / name).stat().st_size


def test_the_extension_proves_nothing(assets: Path, tmp_path: Path) -> None:
    disguised = tmp_path / "photo.png"
    shutil.copy(assets / "anim.gif", disguised)
    with pytest.raises(ImageError, match="not a PNG, JPEG or WebP"):
        validate_upload(disguised)
    renamed = tmp_path / "photo.jpg"
    shutil.copy(assets / "bars.png", renamed)
    assert validate_upload(renamed).format == "png"  # content wins over the name


def test_truncated_oversized_and_tiny_images_are_refused(assets: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "cut.png"
    truncated.write_bytes((assets / "bars.png").read_bytes()[:40])
    with pytest.raises(ImageError):
        validate_upload(truncated)
    # Cut where ffprobe still reads the whole header (640x360): only decoding tells.
    data = (assets / "bars.png").read_bytes()
    truncated.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ImageError, match="does not decode"):
        validate_upload(truncated)
    with pytest.raises(ImageError, match="over the 1000-byte limit") as caught:
        validate_upload(assets / "bars.png", max_bytes=1000)
    assert caught.value.status == 422 and caught.value.hint
    with pytest.raises(ImageError, match="32x32 is outside 64-8192"):
        validate_upload(assets / "tiny.png")
    with pytest.raises(ImageError, match="640x360 is outside 64-500"):
        validate_upload(assets / "bars.png", max_side=500)
    empty = tmp_path / "empty.png"
    empty.touch()
    with pytest.raises(ImageError, match="empty"):
        validate_upload(empty)
    with pytest.raises(ImageError, match="not found"):
        validate_upload(tmp_path / "nothing.png")


def test_sniffing_reads_magic_bytes() -> None:
    assert sniff_image_format(b"\x89PNG\r\n\x1a\n....") == "png"
    assert sniff_image_format(b"\xff\xd8\xff\xe0") == "jpeg"
    assert sniff_image_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    assert sniff_image_format(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None
    assert sniff_image_format(b"GIF89a") is None


def test_title_cards_are_pngs_of_the_output_size(tmp_path: Path) -> None:
    card = make_title_card(
        "How tides work: the Moon's pull, explained", tmp_path / "cards" / "c.png", 480, 854,
        subtitle="Part 1",
    )  # fmt: skip
    info = probe(card)
    assert (info["video_codec"], info["width"], info["height"]) == ("png", 480, 854)
    assert validate_upload(card).format == "png"
