"""Cover images: checked with Pillow and re-encoded, so what we serve is always a clean JPEG."""

from __future__ import annotations

import io
import secrets
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from onair.errors import ApiError

MAX_SIDE = 1200
MAX_PIXELS = 40_000_000


def save_cover(data: bytes, folder: Path, show_id: int) -> Path:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            picture = img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ApiError(
            415, "not_an_image", "the cover must be a PNG, JPEG, GIF or WebP image"
        ) from None
    picture.thumbnail((MAX_SIDE, MAX_SIDE))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"show-{show_id}-{secrets.token_hex(4)}.jpg"
    picture.save(path, "JPEG", quality=88)
    return path
