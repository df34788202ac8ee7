"""The ASGI application factory: wires settings, database, routers and pages."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from onair.accounts.router import router as accounts_router
from onair.catalog.router import router as catalog_router
from onair.clock import Clock, SystemClock
from onair.context import OnAir
from onair.db.base import make_engine, make_sessionmaker
from onair.errors import error_body, install_error_handlers
from onair.live.router import authorize_host
from onair.live.router import router as studio_router
from onair.media.icecast import stream_routes
from onair.media.whep import webrtc_router
from onair.rooms.router import router as rooms_router
from onair.settings import Settings
from onair.shows.router import router as shows_router
from onair.web.router import mount_web

log = logging.getLogger("onair")

# Covers are the largest thing anyone uploads; JSON bodies are far smaller.
_BODY_SLACK = 64 * 1024


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    onair = OnAir(
        settings=settings,
        clock=clock or SystemClock(),
        engine=engine,
        sessions=make_sessionmaker(engine),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await onair.stations.resume()
        yield
        await onair.stations.aclose()
        await engine.dispose()

    app = FastAPI(
        title="OnAir",
        version="0.1.0",
        description="Open, self-hostable live radio: shows, catalog, rooms and streams.",
        lifespan=lifespan,
    )
    app.state.onair = onair
    install_error_handlers(app)

    max_body = settings.max_upload_bytes + _BODY_SLACK

    @app.middleware("http")
    async def _limit_body(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body):
            return JSONResponse(
                error_body("too_large", f"request bodies are limited to {max_body} bytes"),
                status_code=413,
            )
        return await call_next(request)

    app.include_router(accounts_router)
    app.include_router(catalog_router)
    app.include_router(shows_router)
    app.include_router(rooms_router)
    app.include_router(studio_router)
    app.include_router(webrtc_router(onair.stations.webrtc, onair.stations.media, authorize_host))
    app.mount("/listen", stream_routes(onair.stations.feed))
    mount_web(app)
    return app
