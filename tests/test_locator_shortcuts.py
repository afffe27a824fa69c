"""The targeted locator's shortcuts against the full position index.

The walk (pointer_walk.py) searches the text for a key written plainly, decodes the root's
members on one side of it, and reads a small object whole; each holds only when no key that
could mean the same is written with an escape, when the key's text is not a string value, when
no bracket inside a string misleads. These tests write documents that try each of those: keys
written once and many times, plainly and with escapes (`"\\u0061"` for `a`), key names as string
values and inside them, brackets and backslashes in strings, the key wanted near the start or the
end of the text, and the size limits of the shortcuts lowered so small documents cross them.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_targeted_locator import _Pairs, assert_same_places

from validator.fhir import pointer_walk
from validator.fhir.positions import PositionIndex

# Key names (some hold another's text: `x"a` is written `"x\\"a"`, where `"a"` is followed by a colon)
# and string values (key names, key texts, brackets, backslashes).
KEYS = ["a", "b", "procedureCode", "type", "ré", "😀", "/", "a b", ":x", "}", 'x"a', "x\\"]
STRINGS = ["a", "procedureCode", '"a": 1', '"type":', "[{", "}]", "\\", 'a\\"', 'x"a', "\\u0061", "ré", ""]


def _key_text(key: str, escapes: list[bool]) -> str:
    """The JSON text of a key with the characters flagged in `escapes` written as escapes."""
    out = []
    for n, ch in enumerate(key):
        if escapes[n % len(escapes)]:
            out.append(json.dumps(ch)[1:-1] if ord(ch) > 0xFFFF else f"\\u{ord(ch):04x}")
        elif ch == "/" and escapes[0]:
            out.append("\\/")
        else:
            out.append(json.dumps(ch, ensure_ascii=False)[1:-1])
    return '"' + "".join(out) + '"'


def _dump(node: object, rng: random.Random, indent: str | None) -> str:
    """JSON text of a generated document: repeated keys as they are, some keys escaped."""
    if isinstance(node, _Pairs):
        if not node:
            return "{}"
        sep = "\n" + indent if indent is not None else " "
        members = []
        for key, value in node:
            escapes = [rng.random() < 0.2 for _ in range(3)]
            members.append(f"{_key_text(key, escapes)}{rng.choice([':', ': ', ' : '])}{_dump(value, rng, indent)}")
        return "{" + sep + f",{sep}".join(members) + sep + "}"
    if isinstance(node, list):
        return "[" + ", ".join(_dump(v, rng, indent) for v in node) + "]"
    return json.dumps(node, ensure_ascii=rng.random() < 0.5)


def _documents() -> st.SearchStrategy:
    scalars = st.none() | st.integers() | st.sampled_from(STRINGS) | st.text(max_size=4)

    def members(children: st.SearchStrategy) -> st.SearchStrategy:
        return st.lists(st.tuples(st.sampled_from(KEYS), children), max_size=5).map(_Pairs)

    tree = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | members(c), max_leaves=25)
    return members(tree)


@settings(max_examples=300, deadline=None)
@given(_documents(), st.randoms(use_true_random=False), st.sampled_from([None, "", "  "]))
def test_keys_escaped_repeated_or_written_as_values_are_placed_alike(
    doc: _Pairs, rng: random.Random, indent: str | None
) -> None:
    assert_same_places(_dump(doc, rng, indent))


@settings(max_examples=150, deadline=None)
@given(_documents(), st.randoms(use_true_random=False))
def test_past_the_size_limits_of_the_shortcuts_keys_are_placed_alike(doc: _Pairs, rng: random.Random) -> None:
    # Below the root, objects are bounded by the key's last occurrence in large texts only; the
    # root's members on one side of a key are decoded up to a size: both lowered to a few
    # characters, small documents take the paths of large ones.
    with mock.patch.object(pointer_walk, "_LARGE", 8), mock.patch.object(pointer_walk, "_SIDE_DECODED", 24):
        assert_same_places(_dump(doc, rng, None))


CASES = [
    '{"a": 1, "\\u0061": {"b": 2}}',  # the last member of a name written with an escape
    '{"\\u0061": {"b": 2}, "x": [1, 2, 3, 4, 5, 6, 7, 8, 9], "a": 1}',  # the first one
    '{"x": "\\"a\\": {", "a": {"b": 1}}',  # a key's text inside a string, escaped quotes
    '{"x": "a", "y": ["a", {"z": "a"}], "a": [0]}',  # the key's name as string values
    '{"x": "a\\\\", "a": 1}',  # a string ending in an escaped backslash before the key
    '{"x": "[{", "a": {"y": "}]}", "b": [1]}, "z": "]"}',  # brackets in strings around it
    '{"z": {"a": 1}, "y": 2}',  # written once, but not at the root
    '{"y": 2, "z": {"q": 0, "a": {"b": 1}}}',  # the same, nearer the end
    # The path in the first member of a name, the last one near the end of the text or its start.
    '{"a": {"b": 1}, "pad": "' + "x" * 200 + '", "a": {"c": 2}}',
    '{"a": {"b": 1}, "a": {"c": 2}, "pad": "' + "x" * 200 + '"}',
    '{"a": {"b": 1}, "\\u0061": {"c": 2}, "pad": "' + "x" * 200 + '"}',
    '{"a": {"c": 2}, "pad": "' + "x" * 200 + '", "a": {"b": 1}}',
    '{"a": {"b": 1}, "x\\"a": 2}',  # the key's text, followed by a colon, inside another key
    '{"x\\"a": {"b": 1}, "a": 2, "pad": "' + "x" * 200 + '"}',
    '{"pad": "' + "x" * 200 + '", "a": {"t": 1, "u": {"t": 2}, "t": 3}}',  # repeated below the root
    '{"a": [{"t": {"u": 1}}, {"v": 2, "t": 3}], "s": {"t": 4}}',
    '{"a":{"b":[{"c":1},{"c":{"d":[]}}]},"e":{}}',  # minified
    '{\r\n\t"a" :\t{ "b" : [ ] } ,\n "c" : "\\/" }',  # whitespace everywhere
    '{"k\\u00e9y": 1, "kéy": {"x": 2}}',  # non-ASCII written both ways
]


@pytest.mark.parametrize("text", CASES)
def test_written_cases_that_could_mislead_a_shortcut_are_placed_alike(text: str) -> None:
    assert_same_places(text)
    with mock.patch.object(pointer_walk, "_LARGE", 8), mock.patch.object(pointer_walk, "_SIDE_DECODED", 24):
        assert_same_places(text, line_offset=3)


def _study(rng: random.Random, series: int, instances: int) -> dict:
    sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))
    try:
        from benchmark import study  # the benchmark's generator, not a package
    finally:
        sys.path.pop(0)
    return study(rng, series, instances)  # type: ignore[no-any-return]


def test_a_large_pretty_printed_study_is_placed_alike_deep_in_its_last_series() -> None:
    doc = _study(random.Random(3), 4, 300)
    doc["procedureCode"] = [{"coding": [{"system": "http://loinc.org", "code": "24627-2"}]}]
    text = json.dumps(doc, indent=2)
    assert len(text) > pointer_walk._LARGE  # the bound below the root is used
    full = PositionIndex(text, targeted_lookups=0)
    last = ("series", 3, "instance", 299)
    pointers = [
        (*last, "sopClass", "code"), (*last, "uid"), (*last, "no-such"), ("series", 3, "modality", "code"),
        ("series", 0, "instance", 0), ("series", 3, "instance", 300), ("procedureCode", 0, "coding", 0),
        ("status",), ("identifier", 1, "type"), ("text", "div"), ("no-such",), (),
    ]  # fmt: skip
    for ptr in pointers:
        index = PositionIndex(text)
        assert index.locate(ptr) == full.locate(ptr), ptr
        assert index.tokens == 0


def test_a_realistic_line_is_placed_reading_a_few_values_only() -> None:
    rng = random.Random(5)
    doc = _study(rng, 2, 5)
    doc["identifier"].append({"use": "usual", "type": {"coding": [{"code": "ACSN"}]}, "value": "A1"})
    doc["procedureCode"] = [{"coding": [{"system": "http://loinc.org", "code": "24627-2"}]}]
    doc["referrer"] = {"display": "Dr. Référent"}
    line = json.dumps(doc)
    full = PositionIndex(line, 6, targeted_lookups=0)
    for ptr, most in [(("identifier", 1, "type"), 4), (("procedureCode", 0), 2)]:
        index = PositionIndex(line, 6)
        assert index.locate(ptr) == full.locate(ptr)
        # The members before identifier and after procedureCode are decoded at once, and the
        # series between them are not read: a member-by-member walk reads a dozen values.
        assert index.walk.steps <= most, (ptr, index.walk.steps)


def test_a_one_line_text_is_placed_on_its_line_offset_at_the_key_s_column() -> None:
    line = '{"a": 1, "b": {"c": [10, 20]}}'
    for index in (PositionIndex(line, 41), PositionIndex(line, 41, targeted_lookups=0)):
        assert index.locate(("b", "c", 1)) == (42, 26)
        assert index.locate(("b",)) == (42, 10)
        assert index.lines(42, 26) == ((42, line),)
    text = line.replace(", ", ",\n")  # the same on three lines
    assert PositionIndex(text, 41).locate(("b", "c", 1)) == (44, 1)
    assert PositionIndex(text, 41).locate(("b", "c")) == (43, 7)
    assert PositionIndex(text, 41).lines(44, 1) == ((42, '{"a": 1,'), (43, '"b": {"c": [10,'), (44, "20]}}"))
