"""A text longer than --max-string is first checked in one pass for a stretch that could hold a
string that long; only then are its strings scanned one by one. The quick check never hides one."""

from __future__ import annotations

import json

from fixture_cases import BASES
from hypothesis import given, settings
from hypothesis import strategies as st

from validator.limits import Limits
from validator.load import sources

STUDY = json.dumps(BASES["study"])


def _found(text: str, limit: int) -> tuple | None:
    problem = sources._long_string(text, Limits(max_string=limit))
    return None if problem is None else (problem.rule, problem.message, problem.line)


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet='ab"\\\nx', max_size=40), st.integers(min_value=0, max_value=8))
def test_the_quick_check_finds_every_string_the_scan_finds(text, limit) -> None:
    expected = None
    if len(text) > limit:
        original = sources._may_hold_long_string
        sources._may_hold_long_string = lambda _text, _limit: True  # the scan alone, as before
        try:
            expected = _found(text, limit)
        finally:
            sources._may_hold_long_string = original
    assert _found(text, limit) == expected


def test_the_quick_check_clears_a_resource_of_short_strings_and_catches_a_long_one() -> None:
    assert len(STUDY) > 300  # its longest string, the narrative, is under 100 characters
    assert not sources._may_hold_long_string(STUDY, 100)
    long = STUDY[:-1] + ', "description": "' + "x" * 200 + '"}'
    assert sources._may_hold_long_string(long, 199)
    assert _found(long, 199) == ("input:string-too-long", "a JSON string of 200 characters exceeds the limit of 199 "
                                 "(--max-string)", 1)  # fmt: skip


def test_escaped_quotes_do_not_cut_a_long_string_short() -> None:
    text = '{"a": "' + '\\"' * 50 + '"}'
    assert sources._may_hold_long_string(text, 99)
    assert _found(text, 99) == ("input:string-too-long", "a JSON string of 100 characters exceeds the limit of 99 "
                                "(--max-string)", 1)  # fmt: skip
