"""Territories: where the service runs and where a listener is (ISO 3166-1 alpha-2 codes)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
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
