"""The mixing desk: music ducked under the voices, the voices on top, the limiter last.

    program           = limit(duck(music, by=voice bus) + voice bus)
    mix-minus(voice)  = limit(duck(music, by=voice bus) + voice bus - voice)

Each voice on air gets a mix-minus return: the program without their own voice, so nobody hears
themselves come back late. The return shares the program's ducking: a host talking over an intro
hears the music dip exactly as listeners do, which is what lets them judge the balance; a caller
hears the host and the ducked music. Each return has its own limiter (without the voice taken
out, its peaks differ from the program's) with the same look-ahead, so returns and program stay
sample-aligned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from onair.studio.ducker import Ducker
from onair.studio.frames import CHANNELS, FRAME_SAMPLES, Samples
from onair.studio.limiter import DEFAULT_CEILING_DB, DEFAULT_LOOKAHEAD_S, Limiter

__all__ = ["Mixer"]


class Mixer:
    """Mixes one frame at a time; keeps the ducker's and the limiters' state across frames."""

    def __init__(
        self,
        *,
        ducker: Ducker | None = None,
        ceiling_db: float = DEFAULT_CEILING_DB,
        lookahead_s: float = DEFAULT_LOOKAHEAD_S,
    ) -> None:
        self.ducker = ducker if ducker is not None else Ducker()
        self._ceiling_db = ceiling_db
        self._lookahead_s = lookahead_s
        self._program_limiter = self._new_limiter()
        self._return_limiters: dict[str, Limiter] = {}
        self._returns: dict[str, Samples] = {}
        self._program: Samples = np.zeros((CHANNELS, FRAME_SAMPLES), dtype=np.float32)

    @property
    def latency(self) -> int:
        """Samples by which program and returns lag the inputs (the limiter's look-ahead)."""
        return self._program_limiter.latency

    @property
    def limiter(self) -> Limiter:
        return self._program_limiter

    def mix(self, music: Samples, voices: Mapping[str, Samples]) -> Samples:
        """Mix one frame and return the program; ``music`` is ducked in place.

        ``voices`` holds this frame of every voice on air, by voice id; each of them gets a
        return, read with ``mixminus`` until the next call.
        """
        bus = _sum(voices.values())
        self.ducker.apply(music, bus)
        bed = music if bus is None else music + bus
        program = self._program_limiter.process(bed)
        self._program = program

        for gone in self._return_limiters.keys() - voices.keys():
            # Back on air later, a voice starts a fresh limiter rather than hearing the 5 ms
            # of program that was in its look-ahead when it left.
            del self._return_limiters[gone]
        self._returns = {}
        for voice_id, voice in voices.items():
            limiter = self._return_limiters.get(voice_id)
            if limiter is None:
                limiter = self._return_limiters[voice_id] = self._new_limiter()
            # With a single voice the bed without it is just the ducked music, exactly.
            without = music if len(voices) == 1 else bed - voice
            self._returns[voice_id] = limiter.process(without)
        return program

    def mixminus(self, voice_id: str) -> Samples:
        """The last frame's return for ``voice_id``: the program without that voice.

        A voice that was not on air in that frame hears the whole program.
        """
        return self._returns.get(voice_id, self._program)

    def _new_limiter(self) -> Limiter:
        return Limiter(ceiling_db=self._ceiling_db, lookahead_s=self._lookahead_s)


def _sum(frames: Iterable[Samples]) -> Samples | None:
    """The voice bus; a lone voice is its own bus, with no copy."""
    parts = list(frames)
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    total = parts[0] + parts[1]
    for frame in parts[2:]:
        total += frame
    return total
