"""parse_checked proves a text has no repeated key by counting colons (the text's and those of the
tree orjson writes) instead of having jiter check every object's keys: it must refuse exactly
what jiter's own check refuses, return the same tree, and say truly whether the numbers are
plain ints (the native gate's schema depends on it)."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import jiter
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from validator.fhir import jsontext
from validator.fhir.jsontext import REFUSED, parse_checked

pytestmark = pytest.mark.skipif(jsontext._jiter is None or jsontext._dumps is None, reason="jiter or orjson missing")


def _reference(data: bytes) -> object:
    """What jiter with its own repeated-key check gives (REFUSED when it refuses)."""
    try:
        return jiter.from_json(data, allow_inf_nan=False, catch_duplicate_keys=True, float_mode="decimal")
    except ValueError:
        return REFUSED


def _plain(tree: object) -> bool:
    """Whether every number of a tree is an int of at most 64 bits (signed or unsigned)."""
    if isinstance(tree, dict):
        return all(_plain(v) for v in tree.values())
    if isinstance(tree, list):
        return all(_plain(v) for v in tree)
    if isinstance(tree, bool) or not isinstance(tree, int | Decimal):
        return True
    return isinstance(tree, int) and -(2**63) <= tree < 2**64


def _same(data: bytes) -> None:
    tree, numbers = parse_checked(data)
    expected = _reference(data)
    assert (tree is REFUSED) == (expected is REFUSED), data
    if tree is REFUSED:
        return
    assert json.dumps(tree, default=repr) == json.dumps(expected, default=repr), data
    assert list(_keys(tree)) == list(_keys(expected)), data
    if numbers is not None:
        assert numbers == _plain(tree), data


def _keys(node: object) -> object:
    if isinstance(node, dict):
        for k, v in node.items():
            yield k
            yield from _keys(v)
    elif isinstance(node, list):
        for v in node:
            yield from _keys(v)


# Keys and strings rich in what the proof counts: colons, quotes, escapes of both.
_TEXT = st.sampled_from(["a", "b", "a:", ":", "::", '"', '":', "\\", "x\\u003ay", "é", "😀", "system", "a b", ""])
_RAW_STRING = _TEXT.map(lambda s: s if "\\u" in s else json.dumps(s)[1:-1]).map(lambda s: f'"{s}"')
_NUMBER = st.sampled_from(
    ["0", "1", "-1", "1.0", "1e2", "18446744073709551615", "18446744073709551616", "-9223372036854775809"]
)
_SPACE = st.sampled_from(["", " ", "\n", "\t ", "\r\n"])


@st.composite
def _json(draw: st.DrawFn, depth: int = 0) -> str:
    """A JSON text, its objects made of drawn members, which may repeat a key."""
    kind = draw(st.sampled_from(["object", "object", "array", "string", "number", "literal"] if depth < 4 else
                                ["string", "number", "literal"]))  # fmt: skip
    if kind == "object":
        members = []
        for _ in range(draw(st.integers(0, 4))):
            key = draw(_RAW_STRING)
            members.append(f"{key}{draw(_SPACE)}:{draw(_SPACE)}{draw(_json(depth + 1))}")
        if members and draw(st.booleans()):  # repeat one of the members' keys
            repeated = draw(st.sampled_from(members)).split(":")[0]
            if repeated.endswith('"') and repeated.count('"') >= 2:
                members.insert(draw(st.integers(0, len(members))), f"{repeated}:{draw(_json(depth + 1))}")
        return "{" + ",".join(members) + "}"
    if kind == "array":
        return "[" + ",".join(draw(st.lists(_json(depth + 1), max_size=3))) + "]"
    if kind == "string":
        return draw(_RAW_STRING)
    if kind == "number":
        return draw(_NUMBER)
    return draw(st.sampled_from(["true", "false", "null"]))


@settings(max_examples=3000, deadline=None)
@given(_json())
def test_the_colon_count_refuses_what_jiter_refuses_and_keeps_what_it_keeps(text: str) -> None:
    _same(text.encode("utf-8"))


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "a": 2}',
        '{"a": {"b": "x:y", "b": "x:y"}}',
        '{"a": [{"k": 1}, {"k": 1, "k": 1}]}',
        '{"a": 1, "b": {"a": 1}}',  # the same key at two levels: not repeated
        '{"a:": 1, "a": 2}',
        '{"a": ":", "a" : ":"}',
        '{"a\\u003a": 1, "a\\u003a": 1}',  # an escaped colon: jiter decides
        '{"x": "\\u003A", "a": 1, "a": 1}',
        '{"a": 1.5, "a": 1.5}',  # a decimal: orjson cannot write it, jiter decides
        '{"a": 18446744073709551616, "b": 1}',
        '{"a": "\\ud800"}',
    ],
)
def test_repeated_keys_are_refused_and_others_kept_whatever_the_colons(text: str) -> None:
    _same(text.encode("utf-8"))


def test_a_realistic_study_is_proven_without_jiters_repeated_key_check(monkeypatch: pytest.MonkeyPatch) -> None:
    from fixture_cases import BASES

    study = json.dumps(BASES["study"] | {"referrer": {"display": "Dr. Réf: ok"}}).encode()
    calls = []
    monkeypatch.setattr(jsontext, "_jiter_parse", lambda data: calls.append(data))
    tree, numbers = parse_checked(study)
    assert tree == json.loads(study) and numbers is True
    assert calls == []  # the proof held: no second parse


def test_random_studies_with_a_repeated_key_somewhere_are_refused() -> None:
    from fixture_cases import BASES

    rng = random.Random(11)
    base = json.dumps(BASES["study"])
    keys = [i for i in range(len(base)) if base.startswith('":', i)]
    for _ in range(300):
        at = rng.choice(keys)
        start = base.rindex('"', 0, at)  # the key's opening quote
        member = base[start : at + 2] + ' "x:y", '  # the same key again, just before it
        text = base[:start] + member + base[start:]
        assert parse_checked(text.encode())[0] is REFUSED, text
