"""The pre-check of the web-page code system rule (code_systems.may_hold_pages) never says "no"
where the exact patterns would find something: checked against them on generated texts."""

from __future__ import annotations

import random

from validator.evaluate import code_systems as C


def _exact(text: str) -> bool:
    return C._ASCII_ESCAPE.search(text) is not None or C._DOCUMENT_END.search(text) is not None


def test_the_page_pre_check_agrees_with_the_exact_patterns_on_generated_texts() -> None:
    rng = random.Random(5)
    pieces = [".htm", ".HTML", ".pdf", ".Doc", ".docx", ".docs", "\\u002e", "\\u00e9", "a", ".", "h", "l", " ",
              "x", "\\u0", "K", "ſ", "İ", ".ht", ".DOCX", ".hTm", "é"]  # fmt: skip
    hits = 0
    for _ in range(100_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        assert C.may_hold_pages(text) == _exact(text), text
        hits += _exact(text)
    assert hits > 1000
