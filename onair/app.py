"""The ASGI application factory: wires settings, database, routers and pages."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from onair.accounts.router import router as accounts_router
from onair.catalog.router import router as catalog_router
from onair.clock import Clock, SystemClock
from onair.cluster.proxy import OwnerProxy
from onair.cluster.router import router as cluster_router
from onair.context import OnAir
from onair.csrf import CrossSiteGuard
from onair.db.base import make_engine, make_sessionmaker
from onair.db.migrate import script_heads
from onair.errors import error_body, install_error_handlers
from onair.integrations.routes import mount_integrations
from onair.licensing.geoblock import TerritoryGuard
from onair.licensing.router import router as licensing_router
from onair.live.router import router as studio_router
from onair.live.source_router import router as source_router
from onair.media.icecast import StreamFront, stream_routes
from onair.media.ingest import SourceIngest, serve_ingest
from onair.media.source_keys import check_key
from onair.media.whep import webrtc_router
from onair.moderation.pages import router as moderation_pages
from onair.moderation.router import router as moderation_router
from onair.ops.metrics import CountResponses
from onair.ops.router import Ops
from onair.ops.router import router as ops_router
from onair.replays.router import files as replay_files
from onair.replays.router import router as replays_router
from onair.replays.service import Replays
from onair.requests.router import router as requests_router
from onair.restream.router import router as restream_router
from onair.rooms.router import router as rooms_router
from onair.rooms.wire import RoomWire
from onair.royalties.router import pages as analytics_pages
from onair.royalties.router import router as royalties_router
from onair.settings import Settings
from onair.shows.browse.router import router as hashtags_router
from onair.shows.discovery.pages import router as discovery_pages
from onair.shows.discovery.router import router as discovery_router
from onair.shows.follows.pages import router as follows_pages
from onair.shows.follows.router import feeds as calendar_feeds
from onair.shows.follows.router import router as follows_router
from onair.shows.follows.stream import HttpCycle
from onair.shows.router import router as shows_router
from onair.stage.router import authorize_voice
from onair.stage.router import router as stage_router
from onair.web.router import mount_web

log = logging.getLogger("onair")

# Covers are the largest thing anyone uploads; JSON bodies are far smaller.
_BODY_SLACK = 64 * 1024


class BodyLimit:
    """Refuses bodies declared larger than `max_body` before reading them.

    Pure ASGI rather than `@app.middleware("http")`, which would wrap every response (and
    every chunk of every stream) in extra tasks and queues.
    """

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                response = JSONResponse(
                    error_body("too_large", f"request bodies are limited to {self.max_body} bytes"),
                    status_code=413,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_asgi(settings: Settings | None = None, clock: Clock | None = None) -> ASGIApp:
    """What `onair serve` runs: the app, with listeners' streams answered ahead of it.

    A stream never ends, so it is served straight onto the connection (as Icecast does)
    rather than through the app's middleware stack, which would cost more than the stream.
    """
    app = create_app(settings, clock, source_ingest=True)
    onair: OnAir = app.state.onair
    front: ASGIApp = StreamFront(app, onair.stations.feed)
    if onair.cluster is not None:  # a show's media and studio, wherever its studio runs
        front = OwnerProxy(front, onair.cluster)
    return TerritoryGuard(front, onair)


def create_app(
    settings: Settings | None = None, clock: Clock | None = None, *, source_ingest: bool = False
) -> FastAPI:
    """The app; `source_ingest` also runs the Icecast source ingest on `settings.source_port`
    for the app's lifetime (`onair serve` does; tests that do not need it leave the port be)."""
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    onair = OnAir(
        settings=settings,
        clock=clock or SystemClock(),
        engine=engine,
        sessions=make_sessionmaker(engine),
    )
    replays = Replays(onair.sessions, onair.clock, settings.recordings_path, settings.replays_path)

    async def source_key_matches(show_id: int, key: str) -> bool:
        async with onair.sessions() as db:
            return await check_key(db, show_id, key)

    ingest = SourceIngest(  # with several nodes, a source for another node's show goes there
        onair.stations.get,
        source_key_matches,
        route=onair.cluster.source_address if onair.cluster is not None else None,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if onair.bus is not None:
            onair.bus.start()  # room events, presence and rate limits across nodes
        if onair.cluster is not None:
            await onair.cluster.start()
        await onair.stations.resume()
        await replays.resume()
        await asyncio.to_thread(script_heads)  # read now, not by /readyz's first probe
        ingest_server = None
        if source_ingest and settings.source_port:
            try:
                ingest_server = await serve_ingest(ingest, settings.host, settings.source_port)
                log.info("source ingest on %s:%s", settings.host, settings.source_port)
            except OSError as exc:  # the show goes on without DJ software; say so loudly
                log.error(
                    "source ingest cannot listen on %s:%s (%s): DJ software cannot connect",
                    settings.host,
                    settings.source_port,
                    exc,
                )
        yield
        if ingest_server is not None:
            ingest_server.close()
            ingest.close()
        await replays.aclose()
        await onair.notifications.aclose()
        await onair.notifier.aclose()
        await onair.stations.aclose()
        if onair.bus is not None:
            await onair.bus.aclose()  # after the studios' last events
        if onair.cluster is not None:
            await onair.cluster.aclose()
        await engine.dispose()

    app = FastAPI(
        title="OnAir",
        version="0.1.0",
        description="Open, self-hostable live radio: shows, catalog, rooms and streams.",
        lifespan=lifespan,
    )
    app.state.onair = onair
    app.state.replays = replays
    app.state.ingest = ingest
    app.state.ops = ops = Ops(onair)  # /metrics' registry, /readyz's checks (others add theirs)
    install_error_handlers(app)

    app.add_middleware(TerritoryGuard, onair=onair)  # 451 outside the territories
    app.add_middleware(BodyLimit, max_body=settings.max_upload_bytes + _BODY_SLACK)
    app.add_middleware(CrossSiteGuard)
    app.add_middleware(HttpCycle)
    app.add_middleware(CountResponses, counts=ops.http)  # outside the refusals, to count them
    app.add_middleware(RoomWire)  # outermost: it must see the server's own send
    app.include_router(ops_router)
    app.include_router(accounts_router)
    app.include_router(catalog_router)
    app.include_router(shows_router)
    app.include_router(licensing_router)
    app.include_router(discovery_router)
    app.include_router(discovery_pages)
    app.include_router(hashtags_router)
    app.include_router(rooms_router)
    app.include_router(studio_router)
    app.include_router(cluster_router)
    app.include_router(source_router)
    app.include_router(stage_router)
    app.include_router(requests_router)
    app.include_router(moderation_router)
    app.include_router(moderation_pages)
    app.include_router(follows_router)
    app.include_router(follows_pages)
    app.include_router(royalties_router)
    app.include_router(analytics_pages)
    app.include_router(restream_router)
    app.include_router(replays_router)
    app.include_router(replay_files)
    app.include_router(calendar_feeds)  # before the pages' /shows/{id}, which would take .ics
    app.include_router(webrtc_router(onair.stations.webrtc, onair.stations.media, authorize_voice))
    app.mount("/listen", stream_routes(onair.stations.feed))
    mount_integrations(app)  # before the pages: /embed/{id} is framable, the rest is not
    mount_web(app)
    return app
