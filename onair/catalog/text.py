"""Text folding shared by import and search: accents and case folded, mojibake repaired."""

from __future__ import annotations

import re
import unicodedata

_MOJIBAKE_HINT = re.compile(
    "[ÃÂâ][\u0080-\u00bf\u2018-\u203a\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc]"
)


def repair_mojibake(text: str) -> str:
    """Undo UTF-8 that was decoded as Latin-1/CP1252 once (``SeÃ±or`` → ``Señor``)."""
    if not _MOJIBAKE_HINT.search(text):
        return text
    for codec in ("cp1252", "latin-1"):
        try:
            return text.encode(codec).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
    return text


def fold(text: str) -> str:
    """Lower-case, accent-free form used for matching (``Björk`` → ``bjork``)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", fold(text)).strip("-") or "x"
