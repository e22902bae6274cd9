"""Ollama's raw base64 images -> OpenAI `image_url` data URIs with the real MIME type.

A hard-coded `image/png` breaks JPEG and WebP uploads on strict backends, so the type is sniffed
from the decoded bytes' magic numbers.
"""

from __future__ import annotations

import base64
import binascii

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)
# Ollama's own llama-server path falls back to JPEG when sniffing fails.
FALLBACK_MIME = "image/jpeg"


class InvalidImage(ValueError):
    pass


def sniff_mime(head: bytes) -> str:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    for signature, mime in _SIGNATURES:
        if head.startswith(signature):
            return mime
    return FALLBACK_MIME


def to_data_uri(image: str, *, webp: bool = True) -> str:
    """Validates one base64 image and returns it as a `data:` URI.

    A `data:...;base64,` prefix from a lenient client is accepted and replaced by the sniffed
    type. The full payload is decoded to validate it (the backend would reject it later, with a
    vaguer message); only the first bytes are needed to sniff.
    """
    if not isinstance(image, str):
        raise InvalidImage("must be a base64 string")
    payload = image
    if payload.startswith("data:"):
        _, _, payload = payload.partition(",")
    payload = payload.strip()
    try:
        head = base64.b64decode(payload, validate=True)[:16]
    except (binascii.Error, ValueError):
        # Go's decoder, and so Ollama, skips the line breaks of MIME-wrapped base64.
        payload = payload.replace("\r", "").replace("\n", "")
        try:
            head = base64.b64decode(payload, validate=True)[:16]
        except (binascii.Error, ValueError):
            raise InvalidImage("is not valid base64") from None
    if not head:
        raise InvalidImage("is empty")
    mime = sniff_mime(head)
    if mime == "image/webp" and not webp:
        raise InvalidImage("is WebP, which this backend cannot decode: send PNG or JPEG")
    return f"data:{mime};base64,{payload}"
