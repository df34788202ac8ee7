"""Territories: where the service runs and where a listener is (ISO 3166-1 alpha-2 codes)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import iso3166

TerritorySource = Literal["header", "account", "default"]


def territory_code(raw: str | None) -> str | None:
    """`raw` as an assigned ISO 3166-1 alpha-2 code ("us" -> "US"), or None if it is not one.

    CDNs send placeholders for addresses they cannot place (Cloudflare's "XX", and "T1" for
    Tor); those are not countries, so they say nothing about where the listener is."""
    if raw is None:
        return None
    code = raw.strip().upper()
    if len(code) != 2 or code not in iso3166.countries_by_alpha2:
        return None
    return code


def parse_territories(text: str) -> tuple[str, ...]:
    """A comma-separated list of codes, in order, each once; ValueError naming a bad one."""
    out: list[str] = []
    for raw in text.split(","):
        if not raw.strip():
            continue
        code = territory_code(raw)
        if code is None:
            raise ValueError(f"{raw.strip()!r} is not an ISO 3166-1 alpha-2 country code")
        if code not in out:
            out.append(code)
    if not out:
        raise ValueError("name at least one territory (e.g. US)")
    return tuple(out)


def territory_name(code: str) -> str:
    country = iso3166.countries_by_alpha2.get(code)
    return country.name if country else code


@dataclass(frozen=True)
class ListenerTerritory:
    code: str
    source: TerritorySource

    def allowed(self, territories: Iterable[str]) -> bool:
        return self.code in territories


def listener_territory(
    *, header: str | None, account: str | None, territories: tuple[str, ...]
) -> ListenerTerritory:
    """Where a listener is: the trusted CDN header, else their account, else the default (the
    first of the service's territories)."""
    code = territory_code(header)
    if code is not None:
        return ListenerTerritory(code, "header")
    code = territory_code(account)
    if code is not None:
        return ListenerTerritory(code, "account")
    return ListenerTerritory(territories[0], "default")


@dataclass
class AccountTerritories:
    """The territory of the account each session cookie signs in, as the guard last read it.

    A player asks for an HLS segment every few seconds; without this each one was a database
    query. An entry lives `ttl_s` (a sign-out is noticed that late), and `forget` drops a
    user's entries as soon as they set their territory, on this node; other nodes notice
    within `ttl_s`. At most `size` sessions are kept, the oldest dropped first."""

    ttl_s: float = 60.0
    size: int = 10_000
    _entries: dict[str, tuple[float, int | None, str | None]] = field(default_factory=dict)

    def get(self, token: str) -> tuple[bool, str | None]:
        """(whether the token's account territory is known, that territory)."""
        entry = self._entries.get(token)
        if entry is None or entry[0] <= time.monotonic():
            return False, None
        return True, entry[2]

    def put(self, token: str, user_id: int | None, territory: str | None) -> None:
        self._entries.pop(token, None)
        while len(self._entries) >= self.size:
            del self._entries[next(iter(self._entries))]
        self._entries[token] = (time.monotonic() + self.ttl_s, user_id, territory)

    def forget(self, user_id: int) -> None:
        for token in [t for t, (_, u, _) in self._entries.items() if u == user_id]:
            del self._entries[token]
