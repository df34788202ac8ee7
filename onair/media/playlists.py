"""`.m3u` and `.pls` links for players that open a playlist file (VLC, Winamp, car radios).

Both point at the show's absolute MP3 stream URL, built from the request itself (so they are
right behind whatever host and mount the app is served under).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from onair.errors import error_body
from onair.media.feed import FeedLookup

__all__ = ["m3u", "playlist_routes", "pls"]

_LINE_BREAKS = re.compile(r"[\r\n]+")


def _one_line(text: str) -> str:
    return _LINE_BREAKS.sub(" ", text).strip()


def m3u(stream_url: str, title: str) -> str:
    """An extended M3U with one live entry (length -1)."""
    return f"#EXTM3U\n#EXTINF:-1,{_one_line(title)}\n{stream_url}\n"


def pls(stream_url: str, title: str) -> str:
    """A PLS (version 2) with one live entry (length -1)."""
    return (
        "[playlist]\n"
        "NumberOfEntries=1\n"
        f"File1={stream_url}\n"
        f"Title1={_one_line(title)}\n"
        "Length1=-1\n"
        "Version=2\n"
    )


def _stream_url(request: Request, extension: str) -> str:
    # This request's own URL with its extension swapped: right under any mount or proxy
    # (uvicorn's proxy headers already rewrote scheme and host).
    path = request.url.path.removesuffix(extension) + ".mp3"
    return str(request.url.replace(path=path, query=""))


def playlist_routes(lookup_feed: FeedLookup) -> list[BaseRoute]:
    def route(extension: str, media_type: str, render: Callable[[str, str], str]) -> Route:
        async def endpoint(request: Request) -> Response:
            show_id = int(request.path_params["show_id"])
            feed = lookup_feed(show_id)
            if feed is None or feed.closed:
                return JSONResponse(
                    error_body("not_live", f"show {show_id} is not live"), status_code=404
                )
            body = render(_stream_url(request, extension), feed.info.name)
            return Response(
                body,
                media_type=media_type,
                headers={
                    "content-disposition": f'inline; filename="show-{show_id}{extension}"',
                    "cache-control": "no-cache",
                },
            )

        return Route(f"/{{show_id:int}}{extension}", endpoint, methods=["GET"])

    return [
        route(".m3u", "audio/x-mpegurl", m3u),
        route(".pls", "audio/x-scpls", pls),
    ]
