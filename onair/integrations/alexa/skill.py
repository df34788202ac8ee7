"""The OnAir skill: what Alexa hears and plays, built with the Alexa Skills Kit SDK.

"Alexa, open OnAir" tells what is live (the most listened first); "play <show, host or genre>"
plays the best live match with an `AudioPlayer.Play` directive (REPLACE_ALL) at the show's
HTTPS stream, its token `show:<id>` (`show:<id>:<n>` for the n-th reconnection). Pause, resume,
stop, cancel and next (the next live show) work by voice and by the device's buttons
(PlaybackController). AudioPlayer's PlaybackStarted and PlaybackStopped are counted as smart
speaker listening (`listening.py`).

A live stream never runs out, but it may end (the show ends, the connection drops); answering
PlaybackNearlyFinished with the same stream ENQUEUEd (expectedPreviousToken the current one)
makes the device reconnect by itself then, while the show is still live. Once it has ended,
the answer is empty and playback stops.

Handlers run in a worker thread (the SDK is synchronous); everything they need of OnAir comes
through `Shows`, which the router implements over the database.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol
from xml.sax.saxutils import escape

from ask_sdk_core.dispatch_components.exception_components import AbstractExceptionHandler
from ask_sdk_core.dispatch_components.request_components import AbstractRequestHandler
from ask_sdk_core.handler_input import HandlerInput
from ask_sdk_core.skill import CustomSkill
from ask_sdk_core.skill_builder import SkillBuilder
from ask_sdk_core.utils.predicate import is_intent_name, is_request_type
from ask_sdk_core.utils.request_util import get_slot
from ask_sdk_model.interfaces.audioplayer.audio_item import AudioItem
from ask_sdk_model.interfaces.audioplayer.audio_item_metadata import AudioItemMetadata
from ask_sdk_model.interfaces.audioplayer.clear_behavior import ClearBehavior
from ask_sdk_model.interfaces.audioplayer.clear_queue_directive import ClearQueueDirective
from ask_sdk_model.interfaces.audioplayer.play_behavior import PlayBehavior
from ask_sdk_model.interfaces.audioplayer.play_directive import PlayDirective
from ask_sdk_model.interfaces.audioplayer.stop_directive import StopDirective
from ask_sdk_model.interfaces.audioplayer.stream import Stream
from ask_sdk_model.response import Response

from onair.integrations.alexa.listening import SpeakerPlayback

__all__ = ["LiveShow", "Shows", "build_skill", "show_token", "token_show"]

log = logging.getLogger("onair.integrations.alexa")

PLAY_INTENT = "PlayShowIntent"
QUERY_SLOT = "query"
LAUNCH_SHOWS = 3
_TOKEN = re.compile(r"^show:(\d{1,18})(?::(\d{1,9}))?$")

HELP = (
    "OnAir plays live radio shows. Say play and the name of a show, a host or a genre, "
    "like play jazz. Say next for the next live show. What would you like?"
)
REPROMPT = "Say play and a show, a host or a genre."
NOT_HTTPS = (
    "This OnAir server is not set up for Alexa yet: Alexa only plays streams from an "
    "address starting with https. Ask its operator to set the public address."
)
LIVE_ONLY = "That doesn't work with live radio."


@dataclass(frozen=True)
class LiveShow:
    id: int
    title: str
    host: str
    genre: str | None
    listeners: int
    live: bool


class Shows(Protocol):
    """What the skill asks of OnAir (synchronously: handlers run in a worker thread)."""

    def live(self, limit: int) -> list[LiveShow]:
        """Live shows, the most listened first."""
        ...

    def best_match(self, query: str) -> LiveShow | None:
        """The show that best matches a show title, a host or a genre; live ones first."""
        ...

    def get(self, show_id: int) -> LiveShow | None: ...


StreamUrl = Callable[[int], str]
"""Show id → the absolute URL of the stream Alexa is to play."""


def show_token(show_id: int, reconnect: int = 0) -> str:
    return f"show:{show_id}" if not reconnect else f"show:{show_id}:{reconnect}"


def token_show(token: str | None) -> tuple[int, int] | None:
    """(show id, reconnection number) of one of our tokens, else None."""
    match = _TOKEN.match(token or "")
    if match is None:
        return None
    return int(match[1]), int(match[2] or 0)


def _say(text: str) -> str:
    """User text (show titles, names) as SSML: the SDK wraps speech in <speak> unescaped."""
    return escape(text)


def _listeners(n: int) -> str:
    if n <= 0:
        return ""
    return ", 1 listener" if n == 1 else f", {n} listeners"


def _describe(show: LiveShow) -> str:
    return f"{show.title}, with {show.host}"


class _Handler(AbstractRequestHandler):
    def __init__(
        self,
        can_handle: Callable[[HandlerInput], bool],
        handle: Callable[[HandlerInput], Response],
    ) -> None:
        self._can_handle = can_handle
        self._handle = handle

    def can_handle(self, handler_input: HandlerInput) -> bool:
        return self._can_handle(handler_input)

    def handle(self, handler_input: HandlerInput) -> Response:
        return self._handle(handler_input)


class _Apology(AbstractExceptionHandler):
    """Any failure in a handler: say sorry (or, for AudioPlayer events, answer nothing)."""

    def can_handle(self, handler_input: HandlerInput, exception: Exception) -> bool:
        return True

    def handle(self, handler_input: HandlerInput, exception: Exception) -> Response:
        log.exception("alexa handler failed", exc_info=exception)
        if _is_playback_event(handler_input):
            return handler_input.response_builder.response
        builder = handler_input.response_builder
        return builder.speak("Sorry, OnAir could not do that just now.").response


def _request_type(handler_input: HandlerInput) -> str:
    request = handler_input.request_envelope.request
    return str(getattr(request, "object_type", "") or "")


def _is_playback_event(handler_input: HandlerInput) -> bool:
    kind = _request_type(handler_input)
    return kind.startswith(("AudioPlayer.", "PlaybackController."))


def _device(handler_input: HandlerInput) -> str:
    context = handler_input.request_envelope.context
    system = context.system if context is not None else None
    device = getattr(getattr(system, "device", None), "device_id", None)
    user = getattr(getattr(system, "user", None), "user_id", None)
    return str(device or user or "unknown")


def _current_token(handler_input: HandlerInput) -> str | None:
    request = handler_input.request_envelope.request
    token = getattr(request, "token", None)
    if token:
        return str(token)
    context = handler_input.request_envelope.context
    player = context.audio_player if context is not None else None
    return str(player.token) if player is not None and player.token else None


class _Skill:
    def __init__(self, shows: Shows, stream_url: StreamUrl, playback: SpeakerPlayback) -> None:
        self.shows = shows
        self.stream_url = stream_url
        self.playback = playback

    # --- answers

    def _play(
        self,
        handler_input: HandlerInput,
        show: LiveShow,
        speech: str | None,
        *,
        behavior: PlayBehavior = PlayBehavior.REPLACE_ALL,
        reconnect: int = 0,
        previous: str | None = None,
    ) -> Response:
        builder = handler_input.response_builder
        url = self.stream_url(show.id)
        if not url.startswith("https://"):
            log.warning("alexa: refusing to send a non-HTTPS stream URL (%s)", url)
            if _is_playback_event(handler_input):
                return builder.response
            return builder.speak(NOT_HTTPS).set_should_end_session(True).response
        stream = Stream(
            token=show_token(show.id, reconnect),
            url=url,
            offset_in_milliseconds=0,
            expected_previous_token=previous,
        )
        metadata = AudioItemMetadata(title=show.title, subtitle=f"{show.host} · OnAir")
        builder.add_directive(
            PlayDirective(
                play_behavior=behavior,
                audio_item=AudioItem(stream=stream, metadata=metadata),
            )
        )
        if speech is not None:
            builder.speak(speech)
        if not _is_playback_event(handler_input):
            builder.set_should_end_session(True)
        return builder.response

    def _stop(self, handler_input: HandlerInput, *, clear: bool) -> Response:
        builder = handler_input.response_builder
        if clear:  # stops the stream too, and forgets a queued reconnection
            builder.add_directive(ClearQueueDirective(clear_behavior=ClearBehavior.CLEAR_ALL))
        else:
            builder.add_directive(StopDirective())
        if not _is_playback_event(handler_input):
            builder.set_should_end_session(True)
        return builder.response

    def _tell(self, handler_input: HandlerInput, speech: str, *, listen: bool = False) -> Response:
        builder = handler_input.response_builder
        if _is_playback_event(handler_input):
            return builder.response  # no speech may answer a button or a player event
        builder.speak(speech)
        if listen:
            builder.ask(REPROMPT)
        else:
            builder.set_should_end_session(True)
        return builder.response

    # --- requests

    def launch(self, handler_input: HandlerInput) -> Response:
        live = self.shows.live(LAUNCH_SHOWS)
        if not live:
            return self._tell(
                handler_input,
                "Nothing is live on OnAir right now. Try again later.",
            )
        parts = [f"{_say(_describe(s))}{_listeners(s.listeners)}" for s in live]
        lead = "One show is live" if len(live) == 1 else f"Live on OnAir: {len(live)} shows"
        speech = f"{lead}. {'; '.join(parts)}. Which would you like? Say play and its name."
        return self._tell(handler_input, speech, listen=True)

    def play(self, handler_input: HandlerInput) -> Response:
        slot = get_slot(handler_input, QUERY_SLOT)
        query = str(getattr(slot, "value", None) or "").strip()
        if not query:
            return self._tell(handler_input, "What should I play? " + REPROMPT, listen=True)
        show = self.shows.best_match(query[:200])
        if show is None:
            return self._tell(
                handler_input, f"I found nothing on OnAir for {_say(query)}.", listen=True
            )
        if not show.live:
            return self._tell(
                handler_input,
                f"{_say(_describe(show))} is not live right now. Say open OnAir to hear what is.",
                listen=True,
            )
        return self._play(handler_input, show, f"Playing {_say(_describe(show))}.")

    def resume(self, handler_input: HandlerInput) -> Response:
        found = token_show(_current_token(handler_input))
        show = self.shows.get(found[0]) if found else None
        if show is None:
            return self._tell(handler_input, "There's nothing to resume. " + REPROMPT, listen=True)
        if not show.live:
            return self._tell(handler_input, f"{_say(show.title)} has ended.")
        return self._play(handler_input, show, None)

    def next(self, handler_input: HandlerInput) -> Response:
        found = token_show(_current_token(handler_input))
        current = found[0] if found else None
        live = self.shows.live(50)
        if not live:
            return self._tell(handler_input, "Nothing is live on OnAir right now.")
        ids = [s.id for s in live]
        after = (ids.index(current) + 1) % len(ids) if current in ids else 0
        show = live[after]
        if show.id == current:
            return self._tell(handler_input, "This is the only show live right now.")
        speech = None if _is_playback_event(handler_input) else f"Next: {_say(_describe(show))}."
        return self._play(handler_input, show, speech)

    def previous(self, handler_input: HandlerInput) -> Response:
        return self._tell(handler_input, LIVE_ONLY + " Say next for another live show.")

    def help(self, handler_input: HandlerInput) -> Response:
        return self._tell(handler_input, HELP, listen=True)

    def fallback(self, handler_input: HandlerInput) -> Response:
        return self._tell(handler_input, "OnAir can't help with that. " + REPROMPT, listen=True)

    def unsupported(self, handler_input: HandlerInput) -> Response:
        return self._tell(handler_input, LIVE_ONLY)

    def home(self, handler_input: HandlerInput) -> Response:
        """Leaving the skill (NavigateHome): the session ends, the music plays on."""
        return handler_input.response_builder.set_should_end_session(True).response

    def session_ended(self, handler_input: HandlerInput) -> Response:
        return handler_input.response_builder.response

    # --- AudioPlayer events: no speech, few directives allowed

    def started(self, handler_input: HandlerInput) -> Response:
        found = token_show(_current_token(handler_input))
        if found is not None:
            self.playback.started(_device(handler_input), found[0])
        return handler_input.response_builder.response

    def stopped(self, handler_input: HandlerInput) -> Response:
        self.playback.stopped(_device(handler_input))
        return handler_input.response_builder.response

    def failed(self, handler_input: HandlerInput) -> Response:
        request = handler_input.request_envelope.request
        error = getattr(request, "error", None)
        log.warning(
            "alexa playback failed token=%s error=%s",
            getattr(request, "token", None),
            getattr(error, "message", None),
        )
        self.playback.stopped(_device(handler_input))
        return handler_input.response_builder.response

    def nearly_finished(self, handler_input: HandlerInput) -> Response:
        token = _current_token(handler_input)
        found = token_show(token)
        show = self.shows.get(found[0]) if found else None
        if found is None or show is None or not show.live:
            return handler_input.response_builder.response
        return self._play(
            handler_input,
            show,
            None,
            behavior=PlayBehavior.ENQUEUE,
            reconnect=found[1] + 1,
            previous=token,
        )


# Built-in intents an AudioPlayer skill must answer; these have no meaning for live radio.
_UNSUPPORTED = (
    "AMAZON.LoopOffIntent",
    "AMAZON.LoopOnIntent",
    "AMAZON.RepeatIntent",
    "AMAZON.ShuffleOffIntent",
    "AMAZON.ShuffleOnIntent",
    "AMAZON.StartOverIntent",
)


def _any(*predicates: Callable[[HandlerInput], bool]) -> Callable[[HandlerInput], bool]:
    return lambda handler_input: any(p(handler_input) for p in predicates)


def _intents(names: Sequence[str]) -> Callable[[HandlerInput], bool]:
    return _any(*(is_intent_name(n) for n in names))


def build_skill(
    shows: Shows, stream_url: StreamUrl, playback: SpeakerPlayback, *, skill_id: str | None
) -> CustomSkill:
    skill = _Skill(shows, stream_url, playback)
    routes: list[tuple[Callable[[HandlerInput], bool], Callable[[HandlerInput], Response]]] = [
        (is_request_type("LaunchRequest"), skill.launch),
        (is_intent_name(PLAY_INTENT), skill.play),
        (
            _any(
                is_intent_name("AMAZON.ResumeIntent"),
                is_request_type("PlaybackController.PlayCommandIssued"),
            ),
            skill.resume,
        ),
        (
            _any(
                is_intent_name("AMAZON.PauseIntent"),
                is_request_type("PlaybackController.PauseCommandIssued"),
            ),
            lambda hi: skill._stop(hi, clear=False),
        ),
        (
            _intents(("AMAZON.StopIntent", "AMAZON.CancelIntent")),
            lambda hi: skill._stop(hi, clear=True),
        ),
        (
            _any(
                is_intent_name("AMAZON.NextIntent"),
                is_request_type("PlaybackController.NextCommandIssued"),
            ),
            skill.next,
        ),
        (
            _any(
                is_intent_name("AMAZON.PreviousIntent"),
                is_request_type("PlaybackController.PreviousCommandIssued"),
            ),
            skill.previous,
        ),
        (is_intent_name("AMAZON.HelpIntent"), skill.help),
        (is_intent_name("AMAZON.NavigateHomeIntent"), skill.home),
        (_intents(_UNSUPPORTED), skill.unsupported),
        (is_request_type("AudioPlayer.PlaybackStarted"), skill.started),
        (
            _any(
                is_request_type("AudioPlayer.PlaybackStopped"),
                is_request_type("AudioPlayer.PlaybackFinished"),
            ),
            skill.stopped,
        ),
        (is_request_type("AudioPlayer.PlaybackNearlyFinished"), skill.nearly_finished),
        (is_request_type("AudioPlayer.PlaybackFailed"), skill.failed),
        (is_request_type("SessionEndedRequest"), skill.session_ended),
        (is_request_type("System.ExceptionEncountered"), skill.session_ended),
        # Last: FallbackIntent, and any intent the model has that we do not know.
        (is_request_type("IntentRequest"), skill.fallback),
    ]
    builder = SkillBuilder()
    builder.skill_id = skill_id or None  # type: ignore[assignment]
    for can_handle, handle in routes:
        builder.add_request_handler(_Handler(can_handle, handle))
    builder.add_exception_handler(_Apology())
    built: CustomSkill = builder.create()
    return built
