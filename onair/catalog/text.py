"""Text folding shared by import and search: accents and case folded, mojibake repaired."""

from __future__ import annotations

import re
import unicodedata

# A UTF-8 sequence whose bytes were read as CP1252 (or Latin-1): a lead byte (Ã, Ð, â...) and
# its continuation bytes, each shown as a Latin-1 character or as what CP1252 puts at 0x80-0x9F.
_CP1252_HIGH = bytes(range(0x80, 0xA0)).decode("cp1252", errors="ignore")
_CONT = f"[\u0080-\u00bf{_CP1252_HIGH}]"
_MOJIBAKE = re.compile(
    f"[\u00c2-\u00df]{_CONT}|[\u00e0-\u00ef]{_CONT}{{2}}|[\u00f0-\u00f4]{_CONT}{{3}}"
)


def _byte(ch: str) -> int:
    return ch.encode("cp1252")[0] if ch in _CP1252_HIGH else ord(ch)


def _repair_sequence(match: re.Match[str]) -> str:
    try:
        return bytes(_byte(ch) for ch in match.group()).decode("utf-8")
    except UnicodeDecodeError:
        return match.group()


def repair_mojibake(text: str) -> str:
    """Undo UTF-8 that was decoded as CP1252/Latin-1 (``SeÃ±or`` → ``Señor``), sequence by
    sequence so correct characters around it are kept, and twice for text mangled twice."""
    for _ in range(2):
        repaired = _MOJIBAKE.sub(_repair_sequence, text)
        if repaired == text:
            break
        text = repaired
    return text


def fold(text: str) -> str:
    """Lower-case, accent-free form used for matching (``Björk`` → ``bjork``)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", fold(text)).strip("-") or "x"
