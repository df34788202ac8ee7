"""`POST /integrations/alexa`: the skill's endpoint, for Alexa's HTTPS requests.

Every request is verified before the skill sees it (signature and certificate chain,
timestamp, skill id: `verification.py`); a refusal is a JSON error, 400 (403 for another
skill's request), never a 500. `ONAIR_ALEXA_VERIFY=false` turns the checks off for local
development only, and says so in the log at start.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar

import anyio.from_thread
import anyio.to_thread
from ask_sdk_core.skill import CustomSkill
from ask_sdk_model.request_envelope import RequestEnvelope
from ask_sdk_runtime.exceptions import AskSdkException
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from onair.context import OnAir
from onair.errors import error_body
from onair.integrations.alexa.listening import SpeakerPlayback
from onair.integrations.alexa.skill import LiveShow, build_skill
from onair.integrations.alexa.verification import (
    AbstractVerifier,
    SignatureVerifier,
    SkillIdVerifier,
    TimestampVerifier,
    VerificationException,
    WebserviceSkillHandler,
    WrongSkill,
)
from onair.integrations.links import public_base
from onair.shows import service as shows_service
from onair.shows.discovery import search as discovery
from onair.shows.models import Show, ShowStatus

__all__ = ["AlexaEndpoint", "alexa_router"]

log = logging.getLogger("onair.integrations.alexa")

T = TypeVar("T")

_PUBLIC_BASE: ContextVar[str] = ContextVar("alexa_public_base", default="")
"""This request's public base URL, for the skill's worker thread (anyio copies the context)."""


def _live_show(show: Show) -> LiveShow:
    return LiveShow(
        id=show.id,
        title=show.title,
        host=show.host.display_name,
        genre=show.genre.name if show.genre else None,
        listeners=show.listeners_now,
        live=show.status == ShowStatus.live,
    )


class DatabaseShows:
    """The skill's `Shows`, read from the database from the skill's worker thread."""

    def __init__(self, onair: OnAir) -> None:
        self._onair = onair

    def _run(self, read: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async def run() -> T:
            async with self._onair.sessions() as db:
                return await read(db)

        return anyio.from_thread.run(run)

    def live(self, limit: int) -> list[LiveShow]:
        async def read(db: AsyncSession) -> list[LiveShow]:
            found = await shows_service.list_shows(db, status="live", sort="listeners", limit=limit)
            return [_live_show(s) for s in found]

        return self._run(read)

    def get(self, show_id: int) -> LiveShow | None:
        async def read(db: AsyncSession) -> LiveShow | None:
            show = await db.get(Show, show_id)
            return _live_show(show) if show is not None else None

        return self._run(read)

    def best_match(self, query: str) -> LiveShow | None:
        return self._run(lambda db: self._best_match(db, query))

    async def _best_match(self, db: AsyncSession, query: str) -> LiveShow | None:
        # A show's title, hashtags or host (live ones first), then a genre, then a host's
        # live show, then whoever plays that song or artist now: discovery's own searches.
        titled = await discovery.search_shows(db, query)
        live = [s for s in titled if s.status == ShowStatus.live]
        if live:
            return _live_show(live[0])
        by_genre = await shows_service.list_shows(
            db, status="live", genre=query, sort="listeners", limit=1
        )
        if by_genre:
            return _live_show(by_genre[0])
        for host in await discovery.search_hosts(db, query, limit=3):
            hosted = await shows_service.list_shows(
                db, status="live", host=host.username, sort="listeners", limit=1
            )
            if hosted:
                return _live_show(hosted[0])
        found = await discovery.discover(db, query, now=self._onair.clock.now())
        if found.playing_now:
            return _live_show(found.playing_now[0].show)
        return _live_show(titled[0]) if titled else None


class _SignatureSlot(AbstractVerifier):
    """The signature verifier in use; tests swap in one that trusts their own CA."""

    def __init__(self, verifier: AbstractVerifier) -> None:
        self.verifier = verifier

    def verify(
        self,
        headers: dict[str, Any],
        serialized_request_env: str,
        deserialized_request_env: RequestEnvelope,
    ) -> None:
        self.verifier.verify(headers, serialized_request_env, deserialized_request_env)


class AlexaEndpoint:
    """The skill, its verifiers and its listeners, for one app."""

    def __init__(self, onair: OnAir) -> None:
        settings = onair.settings
        self.verify = settings.alexa_verify
        self.playback = SpeakerPlayback(onair.stations.feed)
        self._public_url = settings.public_url
        self._stream = settings.alexa_stream
        self.skill: CustomSkill = build_skill(
            DatabaseShows(onair),
            self.stream_url,
            self.playback,
            skill_id=(settings.alexa_skill_id or None) if self.verify else None,
        )
        self._signature = _SignatureSlot(SignatureVerifier())
        verifiers: list[AbstractVerifier] = []
        if self.verify:
            verifiers = [
                self._signature,
                TimestampVerifier(),
                SkillIdVerifier(settings.alexa_skill_id),
            ]
        else:
            log.warning(
                "ALEXA REQUEST VERIFICATION IS OFF (ONAIR_ALEXA_VERIFY=false): anyone can "
                "send this server Alexa requests. Never run a public server like this."
            )
        self._handler = WebserviceSkillHandler(
            self.skill, verify_signature=False, verify_timestamp=False, verifiers=verifiers
        )

    @property
    def signature(self) -> AbstractVerifier:
        return self._signature.verifier

    @signature.setter
    def signature(self, verifier: AbstractVerifier) -> None:
        self._signature.verifier = verifier

    def stream_url(self, show_id: int) -> str:
        extension = "m3u8" if self._stream == "hls" else "aac"
        return f"{_PUBLIC_BASE.get()}/listen/{show_id}.{extension}"

    async def answer(self, request: Request) -> JSONResponse:
        raw = await request.body()
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            return _refusal(400, "invalid", "the request body is not UTF-8")
        headers = dict(request.headers.items())
        _PUBLIC_BASE.set(public_base(request, self._public_url))
        try:
            answer = await anyio.to_thread.run_sync(
                self._handler.verify_request_and_dispatch, headers, body
            )
        except WrongSkill as exc:
            log.warning("alexa request refused: %s", _brief(exc))
            return _refusal(403, "wrong_skill", _brief(exc))
        except VerificationException as exc:
            log.warning("alexa request refused: %s", _brief(exc))
            reason = f"not a verified Alexa request: {_brief(exc)}"
            return _refusal(400, "alexa_verification", reason)
        except (AskSdkException, ValueError, TypeError, AttributeError) as exc:
            # The SDK's message quotes the body: an anonymous caller's text, kept short.
            log.warning("alexa request unreadable: %s", _brief(exc))
            return _refusal(400, "invalid", "not an Alexa request")
        return JSONResponse(answer)


def _refusal(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status)


def alexa_router(endpoint: AlexaEndpoint) -> APIRouter:
    router = APIRouter(prefix="/integrations", tags=["integrations"])

    @router.post(
        "/alexa",
        summary="The Alexa skill's endpoint (requests signed by Alexa)",
        description="Alexa Skills Kit requests (LaunchRequest, IntentRequest, AudioPlayer "
        "events), verified as Amazon requires: SignatureCertChainUrl and Signature-256 "
        "headers over the raw body, a timestamp within 150 s, and ONAIR_ALEXA_SKILL_ID. "
        "Answers an Alexa response envelope.",
        response_model=None,
    )
    async def alexa(request: Request) -> JSONResponse:
        return await endpoint.answer(request)

    return router


def _brief(exc: Exception, limit: int = 200) -> str:
    """An exception's message cut to `limit` characters, on one line."""
    message = " ".join(str(exc).split())
    return message if len(message) <= limit else message[: limit - 1] + "…"
