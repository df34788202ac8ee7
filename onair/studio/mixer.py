"""The mixing desk: music ducked under the voices, the voices on top, the limiter last.

    program           = limit(duck(music, by=on-air bus) + on-air bus)
    return(voice)     = limit(bed_gain * (program bed - the voice if on air) + its private line)

Each voice on air gets a mix-minus return: the program without their own voice, so nobody hears
themselves come back late. The return shares the program's ducking: a host talking over an intro
hears the music dip exactly as listeners do, which is what lets them judge the balance; a caller
hears the host and the ducked music. Each return has its own limiter (without the voice taken
out, its peaks differ from the program's) with the same look-ahead, so returns and program stay
sample-aligned.

A ``Routing`` says which voices are on air and who talks to whom off air: a caller being
screened is connected to the studio but not in the program; their return is the program turned
down plus their screener's voice, and the screener's return carries the caller's voice. Without
a routing every voice is on air.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from onair.studio.ducker import Ducker
from onair.studio.frames import CHANNELS, FRAME_SAMPLES, Samples
from onair.studio.limiter import DEFAULT_CEILING_DB, DEFAULT_LOOKAHEAD_S, Limiter

__all__ = ["Mixer", "Routing"]


@dataclass(frozen=True)
class Routing:
    """Where each voice goes: ``on_air`` names the voices in the program (None: all of them);
    any other voice is heard only by those whose ``hears`` names it."""

    on_air: frozenset[str] | None = None
    hears: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Voice → the other voices added to its return (a private line, such as screening)."""
    bed_gain: Mapping[str, float] = field(default_factory=dict)
    """Voice → gain on the program in its return (1 when absent): a caller being screened hears
    the show quietly under the screener's voice."""

    def is_on_air(self, voice_id: str) -> bool:
        return self.on_air is None or voice_id in self.on_air


ALL_ON_AIR = Routing()


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

    def mix(
        self, music: Samples, voices: Mapping[str, Samples], routing: Routing = ALL_ON_AIR
    ) -> Samples:
        """Mix one frame and return the program; ``music`` is ducked in place.

        ``voices`` holds this frame of every connected voice, by voice id; ``routing`` says
        which of them are on air. Each gets a return, read with ``mixminus`` until the next call.
        """
        on_air = (
            voices
            if routing.on_air is None
            else {v: f for v, f in voices.items() if v in routing.on_air}
        )
        bus = next(iter(on_air.values())) if len(on_air) == 1 else _sum(on_air.values())
        self.ducker.apply(music, bus)
        bed = music if bus is None else music + bus
        program = self._program_limiter.process(bed)
        self._program = program

        limiters = self._return_limiters
        if limiters.keys() != voices.keys():
            for gone in limiters.keys() - voices.keys():
                # Back on air later, a voice starts a fresh limiter rather than hearing the
                # 5 ms of program that was in its look-ahead when it left.
                del limiters[gone]
        returns: dict[str, Samples] = {}
        plain = routing.on_air is None and not routing.hears and not routing.bed_gain
        for voice_id, voice in voices.items():
            limiter = limiters.get(voice_id)
            if limiter is None:
                limiter = limiters[voice_id] = self._new_limiter()
            if plain and len(voices) == 1:
                return_bed = music  # the usual show, one voice: it hears the ducked music
            else:
                return_bed = _return_bed(voice_id, voice, music, bed, on_air, voices, routing)
            returns[voice_id] = limiter.process(return_bed)
        self._returns = returns
        return program

    def mixminus(self, voice_id: str) -> Samples:
        """The last frame's return for ``voice_id``: the program without that voice.

        A voice that was not on air in that frame hears the whole program.
        """
        return self._returns.get(voice_id, self._program)

    def _new_limiter(self) -> Limiter:
        return Limiter(ceiling_db=self._ceiling_db, lookahead_s=self._lookahead_s)


def _return_bed(
    voice_id: str,
    voice: Samples,
    music: Samples,
    bed: Samples,
    on_air: Mapping[str, Samples],
    voices: Mapping[str, Samples],
    routing: Routing,
) -> Samples:
    """What ``voice_id`` hears before its limiter: the program bed without itself, at its bed
    gain, plus its private line."""
    if voice_id not in on_air:
        without = bed
    elif len(on_air) == 1:
        without = music  # a lone voice on air: the bed without it is the ducked music, exactly
    else:
        without = bed - voice
    if not routing.hears and not routing.bed_gain:
        return without  # everyone on air, no private lines: the usual show
    gain = routing.bed_gain.get(voice_id, 1.0)
    line = [voices[u] for u in routing.hears.get(voice_id, ()) if u in voices and u != voice_id]
    if gain == 1.0 and not line:
        return without
    out = without * np.float32(gain)
    for other in line:
        out += other
    return out


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
