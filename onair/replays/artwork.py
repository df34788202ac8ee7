"""A host's podcast artwork: their initial on their colour, as the pages draw their avatar,
at the 1400 px square podcast directories ask for."""

from __future__ import annotations

import functools
import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SIZE = 1400
# The pages' .hue-N gradients (onair.css), first and last colour.
HUES = (
    ("#d7263d", "#7a1330"),
    ("#1f5fbf", "#1b2f66"),
    ("#e08a1e", "#9c3d10"),
    ("#2a9d6f", "#155243"),
    ("#7b4ec9", "#3a1f73"),
    ("#3b3a40", "#111014"),
)


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


@functools.lru_cache(maxsize=64)
def podcast_artwork(host_id: int, display_name: str) -> bytes:
    """JPEG bytes (CPU-bound: run it in a thread). Kept per host and name: podcast apps ask for
    the artwork with every feed refresh, and drawing it takes ~60 ms for a JPEG of ~55 kB."""
    start, end = (_rgb(c) for c in HUES[host_id % len(HUES)])
    # The diagonal gradient of the avatars: top left `start`, bottom right `end`.
    ramp = np.add.outer(np.arange(SIZE), np.arange(SIZE)) / (2 * (SIZE - 1))
    pixels = np.array(start) + ramp[..., None] * (np.array(end) - np.array(start))
    image = Image.fromarray(pixels.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    initial = (display_name.strip()[:1] or "?").upper()
    draw.text(
        (SIZE / 2, SIZE / 2 - 80),
        initial,
        font=ImageFont.load_default(size=720),
        fill="white",
        anchor="mm",
    )
    draw.text(
        (SIZE / 2, SIZE - 170),
        "OnAir",
        font=ImageFont.load_default(size=110),
        fill=(255, 255, 255),
        anchor="mm",
    )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()
