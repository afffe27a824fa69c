"""The targeted locator (walking the text along one pointer) against the full position index.

Every pointer of a document, a missing child of every object and array, and the repeated
occurrence of every key must be placed at the same line and column with the same snippet by
both, on the fixtures, the examples, the official examples, hand-written corner cases (non-ASCII,
escaped and repeated keys, NDJSON line offsets) and generated payloads.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixture_cases import load_cases
from hypothesis import given, settings
from hypothesis import strategies as st

from validator.fhir.positions import TARGETED_LOOKUPS, PositionIndex
from validator.load.sources import load_source

ROOT = Path(__file__).parent.parent
REFERENCE = ROOT.parent / "shared" / "reference" / "examples"


class _Pairs(list):
    """An object as its members, repeated keys included."""


def _pointers(node: object, ptr: tuple = ()) -> set[tuple]:
    """Every pointer of a document, plus a missing child of each object and array."""
    out = {ptr}
    if isinstance(node, _Pairs):
        out.add((*ptr, "no-such-key"))
        for key, value in node:
            out |= _pointers(value, (*ptr, key))
    elif isinstance(node, list):
        out |= {(*ptr, len(node)), (*ptr, -1), (*ptr, "0")}
        for i, value in enumerate(node):
            out |= _pointers(value, (*ptr, i))
    return out


def assert_same_places(text: str, line_offset: int = 0) -> int:
    """Compares both locators on every pointer of `text`; returns how many were compared."""
    doc = json.loads(text, object_pairs_hook=_Pairs)
    full = PositionIndex(text, line_offset, targeted_lookups=0)
    targeted = PositionIndex(text, line_offset, targeted_lookups=10**9)
    pointers = sorted(_pointers(doc), key=repr)
    places = set()
    for ptr in pointers:
        for duplicate in (False, True):
            place = full.locate(ptr, duplicate)
            assert targeted.locate(ptr, duplicate) == place, (ptr, duplicate)
            places.add(place)
    for place in places - {None}:
        assert targeted.lines(*place) == full.lines(*place), place
    assert full.tokens > 0 and targeted.tokens == 0  # each did its own work
    return len(pointers)


def _texts_of(path: Path) -> list[tuple[str, int]]:
    """A file's JSON texts with their line offsets: the whole file, or each NDJSON line."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ndjson":
        return [(line, n) for n, line in enumerate(text.split("\n")) if line.strip()]
    return [(text, 0)]


def _files() -> list[Path]:
    found = sorted((ROOT / "examples").rglob("*.json")) + sorted((ROOT / "examples").rglob("*.ndjson"))
    return found + sorted(REFERENCE.rglob("*.json"))


@pytest.mark.parametrize("path", _files(), ids=lambda p: p.name)
def test_examples_and_official_examples_are_placed_alike(path: Path) -> None:
    for text, offset in _texts_of(path):
        assert assert_same_places(text, offset) > 10


def test_every_fixture_payload_is_placed_alike() -> None:
    texts: dict[tuple[str, int], None] = {}  # many cases share a payload: each text once
    for case in load_cases():
        if case.payload is not None:
            texts[(json.dumps(case.payload, indent=2, ensure_ascii=False), 0)] = None
        elif case.text is not None and case.suffix in (".json", ".ndjson") and not case.invalid_utf8:
            for n, line in enumerate(case.text.split("\n") if case.suffix == ".ndjson" else [case.text]):
                try:
                    json.loads(line)
                except (ValueError, RecursionError):
                    continue  # malformed on purpose: no position index is built for it
                texts[(line, n)] = None
    assert sum(assert_same_places(text, offset) for text, offset in texts) > 10_000


CORNERS = [
    '{"a": 1, "a": {"b": [1, {"a": 2}]}, "a": {"b": [3, {"a": 4, "a": 5}]}}',  # repeated keys
    '{"k\\u00e9y": {"x\\"y": [" ] } { \\" ", {"\\\\": null}]}, "kéy": 2, "\\ud83d\\ude00": "😀"}',
    '{\n  "résumé" : "naïve 東京 😀",\n\t"n": [ 1.5e3 , -0 , true , false , null ],\r\n  "e": {}, "l": []\n}\n',
    '[{"a": "}"}, ["[", "]"], {"b": {"c": "{{"}}]',
    '  "just a string"  ',
    "42",
    '{"a": ' + "[" * 20 + '{"b": "]}"}' + "]" * 20 + ', "z": [' + "{}," * 3 + "[]]}",  # deeper than one skip match
]


@pytest.mark.parametrize("text", CORNERS)
def test_corner_cases_are_placed_alike(text: str) -> None:
    assert_same_places(text)
    assert_same_places(text, line_offset=41)  # an NDJSON line further down a file


def test_a_repeated_key_is_placed_at_the_value_judged_and_its_repetition_at_the_second() -> None:
    index = PositionIndex('{"a": 1,\n "a": 2,\n "a": {"b": 3}}')
    assert index.locate(("a",), duplicate=True) == (2, 2)
    assert index.locate(("a",)) == (3, 2)  # the last occurrence: the value the parse keeps
    assert index.locate(("a", "b")) == (3, 8)
    assert index.tokens == 0  # walked, not indexed


def test_a_finding_far_into_a_large_study_is_placed_without_the_full_index() -> None:
    instances = [{"uid": f"1.2.{n}", "sopClass": {"code": "x"}, "number": n} for n in range(2000)]
    text = json.dumps({"resourceType": "ImagingStudy", "series": [{"instance": instances}] * 3, "status": 1})
    index, full = PositionIndex(text), PositionIndex(text, targeted_lookups=0)
    assert index.locate(("status",)) == full.locate(("status",))
    assert index.tokens == 0
    assert index.walk.steps < full.tokens // 4  # a match per bracket skipped, not one per token


def test_past_a_few_lookups_the_full_index_is_built_once() -> None:
    text = json.dumps({f"k{n}": [n] for n in range(100)})
    index, full = PositionIndex(text), PositionIndex(text, targeted_lookups=0)
    for n in range(TARGETED_LOOKUPS):
        assert index.locate((f"k{n}", 0)) == full.locate((f"k{n}", 0))
    assert index.tokens == 0
    for n in range(TARGETED_LOOKUPS, 100):
        assert index.locate((f"k{n}", 0)) == full.locate((f"k{n}", 0))
    assert index.tokens == full.tokens  # built once, when the walks would cost more


def test_a_resource_with_one_note_is_placed_without_the_full_index(tmp_path: Path) -> None:
    path = tmp_path / "study.json"
    study = json.loads((ROOT / "examples" / "payloads" / "ct-chest.json").read_text())
    study["procedureCode"] = [{"coding": [{"system": "http://loinc.org", "code": "24627-2"}]}]
    path.write_text(json.dumps(study, indent=2))
    (item,) = load_source(str(path))
    assert item.positions is not None and item.positions.locate(("procedureCode",)) is not None
    assert item.positions.tokens == 0


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_generated_documents_are_placed_alike(data: st.DataObject) -> None:
    keys = st.sampled_from(["a", "b", "ré", 'k"q', "\\", "😀", "[", "{}", ""]) | st.text(max_size=4)
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6)

    def members(children: st.SearchStrategy) -> st.SearchStrategy:
        return st.lists(st.tuples(keys, children), max_size=5).map(_Pairs)  # repeated keys allowed

    doc = data.draw(st.recursive(scalars, lambda c: st.lists(c, max_size=5) | members(c), max_leaves=30))
    indent = data.draw(st.sampled_from([None, 0, 2, "\t"]))
    ensure_ascii = data.draw(st.booleans())
    text = _dump(doc, indent, ensure_ascii)
    assert_same_places(text, data.draw(st.integers(0, 5)))


def _dump(node: object, indent: int | str | None, ensure_ascii: bool) -> str:
    """JSON text of a generated document, writing repeated keys as they are."""
    if isinstance(node, _Pairs):
        sep = "\n" + (" " * indent if isinstance(indent, int) else indent or "") if indent is not None else " "
        body = f",{sep}".join(f"{json.dumps(k, ensure_ascii=ensure_ascii)}: {_dump(v, indent, ensure_ascii)}"
                              for k, v in node)  # fmt: skip
        return "{" + sep + body + sep + "}" if node else "{}"
    if isinstance(node, list):
        return "[" + ", ".join(_dump(v, indent, ensure_ascii) for v in node) + "]"
    return json.dumps(node, ensure_ascii=ensure_ascii)
