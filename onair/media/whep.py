"""The WebRTC endpoints: WHEP-style listening and the host's studio line.

`POST /api/v1/shows/{id}/whep` takes an SDP offer (`application/sdp`) and answers `201 Created`
with the SDP answer and a `Location` to `DELETE` when done, as WHEP (RFC 9725) does; the answer
carries all of the server's ICE candidates, so no trickle (`PATCH`) is needed.
`POST /api/v1/shows/{id}/studio/webrtc` is the same exchange for a host's microphone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from onair.errors import ApiError
from onair.media.webrtc import (
    MAX_OFFER_BYTES,
    HubFullError,
    OfferError,
    Session,
    ShowLookup,
    ShowMedia,
    WebRtcService,
)
from onair.types import PathId

SDP = "application/sdp"

_OFFER_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "An SDP offer with an Opus audio m-line.",
        "content": {SDP: {"schema": {"type": "string"}}},
    }
}


def _answer_doc(what: str) -> dict[int | str, dict[str, Any]]:
    return {
        201: {
            "description": f"The SDP answer; Location names the {what} to DELETE.",
            "content": {SDP: {"schema": {"type": "string"}}},
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
        400: {"description": "Malformed or unusable SDP offer."},
        404: {"description": "No such show."},
        409: {"description": "The show is not live."},
        413: {"description": "The offer is too large."},
        415: {"description": "The body is not application/sdp."},
    }


_GONE_DOC: dict[int | str, dict[str, Any]] = {404: {"description": "No such session."}}


async def read_offer(request: Request) -> str:
    """The request's SDP offer, refused with the right status if it is not one."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != SDP:
        raise ApiError(415, "unsupported_media_type", f"send the SDP offer as {SDP}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_OFFER_BYTES:
        raise ApiError(413, "too_large", f"an SDP offer is at most {MAX_OFFER_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_OFFER_BYTES:
            raise ApiError(413, "too_large", f"an SDP offer is at most {MAX_OFFER_BYTES} bytes")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "bad_sdp", "the SDP offer is not UTF-8 text") from None


async def _live(lookup: ShowLookup, show_id: int) -> ShowMedia:
    media = await lookup(show_id)
    if media is None:
        raise ApiError(409, "not_live", f"show {show_id} is not live")
    return media


def _created(session: Session, location: str) -> Response:
    return Response(
        content=session.answer,
        status_code=201,
        media_type=SDP,
        headers={"Location": location},
    )


def webrtc_router(
    service: WebRtcService,
    lookup: ShowLookup,
    authorize_host: Callable[..., Any],
) -> APIRouter:
    """The WHEP and studio-line routes, to mount on the app.

    `lookup(show_id)` gives the show's media or None when it is not live (→ 409); it may raise
    `ApiError` for an unknown show (→ 404). `authorize_host` is a FastAPI dependency for the
    studio routes: it may take the path's `show_id`, must raise when the caller may not go on
    air in that show, and returns the voice id the studio knows the caller by.
    """
    router = APIRouter(prefix="/api/v1/shows", tags=["webrtc"])

    @router.post(
        "/{show_id}/whep",
        status_code=201,
        summary="Listen to a live show over WebRTC (WHEP)",
        response_class=Response,
        responses={
            **_answer_doc("listening session"),
            503: {"description": "This node has no room for another WebRTC listener."},
        },
        openapi_extra=_OFFER_BODY,
    )
    async def whep_listen(show_id: PathId, request: Request) -> Response:
        offer = await read_offer(request)
        media = await _live(lookup, show_id)
        try:
            session = await service.listen(show_id, media, offer)
        except OfferError as exc:
            raise ApiError(400, "bad_sdp", str(exc)) from None
        except HubFullError as exc:
            raise ApiError(503, "full", str(exc)) from None
        return _created(session, f"/api/v1/shows/{show_id}/whep/{session.id}")

    @router.delete(
        "/{show_id}/whep/{session_id}",
        status_code=204,
        summary="Stop listening (end a WHEP session)",
        response_class=Response,
        responses=_GONE_DOC,
    )
    async def whep_stop(show_id: PathId, session_id: str) -> Response:
        if not await service.stop_listening(show_id, session_id):
            raise ApiError(404, "not_found", "no such listening session")
        return Response(status_code=204)

    @router.post(
        "/{show_id}/studio/webrtc",
        status_code=201,
        summary="Connect the host's microphone to the studio (WebRTC, sendrecv)",
        description="The answer's audio track carries the host's mix-minus back.",
        response_class=Response,
        responses=_answer_doc("studio line"),
        openapi_extra=_OFFER_BODY,
    )
    async def studio_connect(
        show_id: PathId, request: Request, voice_id: str = Depends(authorize_host)
    ) -> Response:
        offer = await read_offer(request)
        media = await _live(lookup, show_id)
        try:
            session = await service.connect_voice(show_id, voice_id, media, offer)
        except OfferError as exc:
            raise ApiError(400, "bad_sdp", str(exc)) from None
        return _created(session, f"/api/v1/shows/{show_id}/studio/webrtc/{session.id}")

    @router.delete(
        "/{show_id}/studio/webrtc/{session_id}",
        status_code=204,
        summary="Disconnect the host's studio line",
        response_class=Response,
        responses=_GONE_DOC,
    )
    async def studio_disconnect(
        show_id: PathId, session_id: str, voice_id: str = Depends(authorize_host)
    ) -> Response:
        line = service.voice_line(show_id, session_id)
        if line is None or line.voice_id != voice_id:
            raise ApiError(404, "not_found", "no such studio line")
        await service.disconnect_voice(show_id, session_id)
        return Response(status_code=204)

    return router
