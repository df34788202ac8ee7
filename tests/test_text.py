from __future__ import annotations

import pytest

from onair.catalog.text import fold, repair_mojibake, slugify


@pytest.mark.parametrize(
    ("mangled", "meant"),
    [
        ("SeÃ±or", "Señor"),
        ("Ã€ bientôt", "À bientôt"),  # a mangled sequence next to a correct one
        ("Ð¡ÐµÑ€Ð³ÐµÐ¹", "Сергей"),  # CP1252's € stands for byte 0x80
        ("SeÃƒÂ±or", "Señor"),  # mangled twice
        ("Â¿QuÃ©?", "¿Qué?"),
        ("It\u2019s".encode().decode("cp1252"), "It\u2019s"),  # the apostrophe, mangled
    ],
)
def test_double_encoded_utf8_is_repaired(mangled: str, meant: str) -> None:
    assert repair_mojibake(mangled) == meant


@pytest.mark.parametrize("text", ["Café", "naïve", "Björk", "It\u2019s", "plain", "Søren", "東京"])
def test_correct_text_is_left_alone(text: str) -> None:
    assert repair_mojibake(text) == text


def test_fold_and_slugify() -> None:
    assert fold("Björk CAFÉ") == "bjork cafe"
    assert slugify("Drum & Bass") == "drum-bass"
    assert slugify("!!!") == "x"
