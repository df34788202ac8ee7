"""Which once-a-second readings of a live show's audience are stored, and who is a smart speaker."""

from __future__ import annotations

import pytest

from onair.media.audience import Audience, is_smart_speaker
from onair.royalties.analytics import AudienceSampler

T0 = 1_800_000_000.0


def _kept(
    sampler: AudienceSampler, readings: list[tuple[float, Audience, int]]
) -> list[tuple[float, int, int]]:
    kept = []
    for at, audience, reactions in readings:
        sample = sampler.due(T0 + at, audience, reactions)
        if sample is not None:
            kept.append((sample.at.timestamp() - T0, sample.total, sample.reactions))
    return kept


def test_changes_are_kept_at_a_modest_rate_and_peaks_at_once() -> None:
    sampler = AudienceSampler(min_interval_s=5, heartbeat_s=60)
    readings = [(float(t), Audience(stream=1), 0) for t in range(0, 4)]
    readings += [(4.0, Audience(stream=2), 0)]  # a new peak: kept though 4 s after the last
    readings += [(5.0, Audience(stream=1), 0), (6.0, Audience(stream=1), 0)]  # a drop waits
    readings += [(float(t), Audience(stream=1), 0) for t in range(7, 10)]
    kept = _kept(sampler, readings)
    assert kept == [(0.0, 1, 0), (4.0, 2, 0), (9.0, 1, 0)]


def test_a_steady_audience_is_kept_once_a_heartbeat() -> None:
    sampler = AudienceSampler(min_interval_s=5, heartbeat_s=60)
    kept = _kept(sampler, [(float(t), Audience(webrtc=3), 0) for t in range(0, 181)])
    assert [at for at, _, _ in kept] == [0.0, 60.0, 120.0, 180.0]


def test_reactions_are_carried_by_the_next_sample_and_the_last() -> None:
    sampler = AudienceSampler(min_interval_s=5, heartbeat_s=60)
    kept = _kept(
        sampler,
        [(0.0, Audience(hls=1), 10), (1.0, Audience(hls=1), 12), (5.0, Audience(hls=1), 13)],
    )
    # The room had 10 before the studio started: those are not this show's samples'.
    assert kept == [(0.0, 1, 0), (5.0, 1, 3)]
    last = sampler.final(T0 + 7, 15)
    assert (last.total, last.reactions) == (0, 2)


def test_the_counts_per_transport_are_kept_apart() -> None:
    sample = AudienceSampler().due(T0, Audience(webrtc=1, hls=2, stream=3, smart_speaker=4), 0)
    assert sample is not None
    assert (sample.webrtc, sample.hls, sample.stream, sample.smart_speaker) == (1, 2, 3, 4)


@pytest.mark.parametrize(
    ("agent", "speaker"),
    [
        ("AlexaMediaPlayer/2.1.4676.0 (Linux;Android 5.1.1) ExoPlayerLib/1.5.9", True),
        ("Sonos/70.3-35220 (ZPS22)", True),
        ("Mozilla/5.0 (X11; Linux armv7l) AppleWebKit/537.36 CrKey/1.56.500000", True),
        ("AppleCoreMedia/1.0.0.20L498 (HomePod; U; CPU OS 16_4 like Mac OS X)", True),
        ("VLC/3.0.18 LibVLC/3.0.18", False),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1", False),
        ("", False),
    ],
)
def test_smart_speakers_are_told_by_their_user_agent(agent: str, speaker: bool) -> None:
    assert is_smart_speaker(agent) is speaker
