"""Absolute links to this server, for what leaves it: Alexa's stream URLs, embeds, oEmbed."""

from __future__ import annotations

import html
from typing import Any

from starlette.requests import Request

__all__ = [
    "EMBED_HEIGHT",
    "EMBED_WIDTH",
    "embed_snippet",
    "iframe_html",
    "page_base",
    "public_base",
]

EMBED_WIDTH = 400
EMBED_HEIGHT = 160


def public_base(request: Request, public_url: str) -> str:
    """`ONAIR_PUBLIC_URL` when set, else the request's own base URL (behind a proxy, uvicorn's
    proxy headers have already made it the public scheme and host); never a trailing slash."""
    if public_url:
        return public_url.rstrip("/")
    return str(request.base_url).rstrip("/")


def page_base(request: Request) -> str:
    """`public_base` for a page of this app (templates call it as `public_base(request)`)."""
    return public_base(request, request.app.state.onair.settings.public_url)


def iframe_html(src: str, title: str, width: int, height: int) -> str:
    """The snippet a site pastes (or oEmbed hands out): escaped, so a title cannot break out."""
    return (
        f'<iframe src="{html.escape(src)}" width="{width}" height="{height}" '
        f'title="{html.escape(f"OnAir: {title}")}" allow="autoplay" loading="lazy" '
        'style="border:0;border-radius:12px;max-width:100%"></iframe>'
    )


def embed_snippet(base: str, show: Any) -> str:
    """The iframe of a show's player at its default size (the show page's "Share / embed")."""
    return iframe_html(f"{base}/embed/{show.id}", show.title, EMBED_WIDTH, EMBED_HEIGHT)
