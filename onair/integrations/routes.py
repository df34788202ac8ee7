"""Everything of `onair.integrations` an app serves: the Alexa skill, the embeddable player and
oEmbed."""

from __future__ import annotations

from fastapi import FastAPI

from onair.context import OnAir
from onair.integrations.alexa.router import AlexaEndpoint, alexa_router
from onair.integrations.embed.router import oembed_router, pages

__all__ = ["mount_integrations"]


def mount_integrations(app: FastAPI) -> None:
    """Adds the integrations' routes; `app.state.alexa` is the skill's endpoint (its
    verifiers and its listeners)."""
    onair: OnAir = app.state.onair
    alexa = AlexaEndpoint(onair)
    app.state.alexa = alexa
    app.include_router(alexa_router(alexa))
    app.include_router(oembed_router)
    app.include_router(pages)
