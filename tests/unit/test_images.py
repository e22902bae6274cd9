"""Ollama's raw base64 images -> data URIs whose MIME type is sniffed from the bytes."""

from __future__ import annotations

import base64
import struct
import zlib

import pytest

from app.translate.images import InvalidImage, sniff_mime, to_data_uri


def _png_1x1() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


PNG = _png_1x1()
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffdb004300") + bytes(64) + b"\xff\xd9"
GIF87 = b"GIF87a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"  # noqa: E501
GIF89 = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"  # noqa: E501
# A 1x1 lossless WebP (the one Modernizr uses to detect WebP support).
WEBP = base64.b64decode("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")
BMP = (
    b"BM"
    + struct.pack("<IHHI", 58, 0, 0, 54)
    + struct.pack("<IiiHHIIiiII", 40, 1, 1, 1, 24, 0, 4, 2835, 2835, 0, 0)
    + b"\x00\x00\xff\x00"
)
TIFF = b"II*\x00\x08\x00\x00\x00" + bytes(16)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (GIF87, "image/gif"),
        (GIF89, "image/gif"),
        (WEBP, "image/webp"),
        (BMP, "image/bmp"),
        (TIFF, "image/jpeg"),  # unknown: Ollama's llama-server path falls back to JPEG
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "image/jpeg"),  # RIFF but not WebP
    ],
)
def test_mime_is_sniffed_from_magic_bytes(data: bytes, mime: str) -> None:
    assert sniff_mime(data[:16]) == mime
    assert to_data_uri(b64(data)) == f"data:{mime};base64,{b64(data)}"


@pytest.mark.parametrize(
    "prefix", ["data:image/jpeg;base64,", "data:;base64,", "data:application/octet-stream;base64,"]
)
def test_a_data_uri_prefix_is_replaced_by_the_sniffed_type(prefix: str) -> None:
    assert to_data_uri(prefix + b64(PNG)) == f"data:image/png;base64,{b64(PNG)}"


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_line_wrapped_base64_is_accepted_and_unwrapped(newline: str) -> None:
    encoded = b64(PNG)
    wrapped = newline.join(encoded[i : i + 20] for i in range(0, len(encoded), 20)) + newline
    assert to_data_uri(wrapped) == f"data:image/png;base64,{encoded}"


def test_surrounding_whitespace_is_ignored() -> None:
    assert to_data_uri(f"  {b64(GIF89)}\n") == f"data:image/gif;base64,{b64(GIF89)}"


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        ("not base64!!", "is not valid base64"),
        ("iVBORw0KGgo", "is not valid base64"),  # missing padding: Go's std decoder rejects it
        ("https://example.com/cat.png", "is not valid base64"),
        ("", "is empty"),
        ("   ", "is empty"),
        ("data:image/png;base64,", "is empty"),
    ],
)
def test_invalid_images_are_rejected(image: str, problem: str) -> None:
    with pytest.raises(InvalidImage) as caught:
        to_data_uri(image)
    assert str(caught.value) == problem


@pytest.mark.parametrize("image", [None, 5, b"abc", ["abc"]])
def test_non_string_images_are_rejected(image: object) -> None:
    with pytest.raises(InvalidImage, match="must be a base64 string"):
        to_data_uri(image)  # type: ignore[arg-type]
