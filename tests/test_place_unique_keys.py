"""Placing findings in texts whose parser refused repeated keys, and the shortcuts of placing.

With `unique_keys` the walk takes a member's first plain occurrence after its object's brace
(pointer_walk.PointerWalk._unique): the differential tests of test_targeted_locator.py and
test_locator_shortcuts.py run here on texts without repeated keys, with the flag set. The one
line of a text without newline is cut without counting lines (PositionIndex._flat_line), which
both locators share: it is compared with the general cut. Expressions are kept once rendered.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_locator_shortcuts import CASES, _documents, _dump, _study
from test_targeted_locator import CORNERS, _files, _Pairs, _pointers, _texts_of

from validator.evaluate import walk as walk_module
from validator.evaluate.walk import render_expression
from validator.fhir import pointer_walk
from validator.fhir.positions import PositionIndex


def _repeats_a_key(text: str) -> bool:
    repeated = False

    def pairs(members: list) -> dict:
        nonlocal repeated
        repeated = repeated or len({k for k, _ in members}) < len(members)
        return dict(members)

    json.loads(text, object_pairs_hook=pairs)
    return repeated


def _unique(node: object) -> object:
    """The document with each object's repeated keys left out (the first member of a name kept)."""
    if isinstance(node, _Pairs):
        seen: set[str] = set()
        kept = _Pairs()
        for key, value in node:
            if key not in seen:
                seen.add(key)
                kept.append((key, _unique(value)))
        return kept
    if isinstance(node, list):
        return [_unique(v) for v in node]
    return node


def assert_same_places_unique(text: str, line_offset: int = 0) -> int:
    """Both locators on every pointer of a text without repeated keys, the walk told so."""
    assert not _repeats_a_key(text)
    doc = json.loads(text, object_pairs_hook=_Pairs)
    full = PositionIndex(text, line_offset, targeted_lookups=0)
    targeted = PositionIndex(text, line_offset, targeted_lookups=10**9, unique_keys=True)
    pointers = sorted(_pointers(doc), key=repr)
    for ptr in pointers:
        for duplicate in (False, True):
            place = full.locate(ptr, duplicate)
            assert targeted.locate(ptr, duplicate) == place, (ptr, duplicate)
            if place is not None:
                assert targeted.lines(*place) == full.lines(*place), place
    assert full.tokens > 0 and targeted.tokens == 0
    return len(pointers)


def test_examples_without_repeated_keys_are_placed_alike_when_the_walk_is_told_so() -> None:
    compared = 0
    for path in _files():
        for text, offset in _texts_of(path):
            if not _repeats_a_key(text):
                compared += assert_same_places_unique(text, offset)
    assert compared > 1000


@pytest.mark.parametrize("text", [t for t in CORNERS + CASES if not _repeats_a_key(t)])
def test_written_cases_without_repeated_keys_are_placed_alike_when_the_walk_is_told_so(text: str) -> None:
    assert_same_places_unique(text)
    with mock.patch.object(pointer_walk, "_LARGE", 8), mock.patch.object(pointer_walk, "_SIDE_DECODED", 24):
        assert_same_places_unique(text, line_offset=3)


@settings(max_examples=300, deadline=None)
@given(_documents(), st.randoms(use_true_random=False), st.sampled_from([None, "", "  "]))
def test_generated_keys_escaped_or_written_as_values_are_placed_alike_when_none_repeats(
    doc: _Pairs, rng: random.Random, indent: str | None
) -> None:
    assert_same_places_unique(_dump(_unique(doc), rng, indent))


@settings(max_examples=100, deadline=None)
@given(_documents(), st.randoms(use_true_random=False))
def test_past_the_side_limit_of_the_root_keys_that_do_not_repeat_are_placed_alike(
    doc: _Pairs, rng: random.Random
) -> None:
    with mock.patch.object(pointer_walk, "_SIDE_DECODED", 24):
        assert_same_places_unique(_dump(_unique(doc), rng, None))


def test_a_realistic_line_told_it_has_no_repeated_key_is_placed_reading_a_few_values_only() -> None:
    doc = _study(random.Random(7), 2, 5)
    doc["identifier"].append({"use": "usual", "type": {"coding": [{"code": "ACSN"}]}, "value": "A1"})
    doc["procedureCode"] = [{"coding": [{"system": "http://loinc.org", "code": "24627-2"}]}]
    line = json.dumps(doc)
    full = PositionIndex(line, 6, targeted_lookups=0)
    deep = ("series", 1, "instance", 4, "sopClass", "code")
    for ptr, most in [(("identifier", 1, "type"), 3), (("procedureCode", 0), 1), (deep, 9)]:
        index = PositionIndex(line, 6, unique_keys=True)
        assert index.locate(ptr) == full.locate(ptr)
        # One decode per key (the members before it), one skip per array item before the one
        # wanted: the series between identifier and procedureCode are not read.
        assert index.walk.steps <= most, (ptr, index.walk.steps)


def test_the_flag_is_a_property_of_the_index_that_the_walk_follows() -> None:
    index = PositionIndex('{"a": 1}')
    assert not index.unique_keys and not index.walk.unique_keys
    index.unique_keys = True
    assert index.walk.unique_keys and index.locate(("a",)) == (1, 2)


LONG = '{"a": "' + "x" * 400 + '", "b": [1, 2], "c": "' + "y" * 400 + '"}'


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1}',
        '{"a": 1}\r',
        '{"a": 1}\r\r\r',
        LONG,
        LONG + "\r",
        LONG + "\r" * 700,  # returns past the cut's reach: the line is taken to go on
        '{"a": 1}' + " " * 700 + "\r",
        "x" * 160,
        "x" * 161,
        "x" * 160 + "\r",
    ],
)
def test_the_only_line_of_a_text_without_newline_is_cut_as_lines_cuts_any_line(text: str) -> None:
    for column in sorted({1, 2, 79, 80, 81, 160, 300, 400, 422, len(text) // 2, len(text)}):
        if column > len(text):
            continue
        for offset in (0, 41):
            general = PositionIndex(text, offset)
            general._flat = False  # the path that counts lines and looks for the line's end
            assert PositionIndex(text, offset).lines(offset + 1, column) == general.lines(offset + 1, column), column
            assert PositionIndex(text, offset).lines(offset + 1, column, 2, 20) == general.lines(
                offset + 1, column, 2, 20
            ), column


def test_an_expression_is_rendered_alike_from_the_cache_and_kept_within_its_bound() -> None:
    pointers = [(), ("identifier", 1, "type"), ("_birthDate", "extension", 0), ("a", 10, "_b")]
    first = [render_expression("ImagingStudy", p) for p in pointers]
    assert first == ["ImagingStudy", "ImagingStudy.identifier[1].type", "ImagingStudy.birthDate.extension[0]",
                     "ImagingStudy.a[10].b"]  # fmt: skip
    assert [render_expression("ImagingStudy", p) for p in pointers] == first
    assert render_expression("Patient", ("a", 10, "_b")) == "Patient.a[10].b"
    assert render_expression("Patient", ["a", 1]) == "Patient.a[1]"  # not hashable: rendered all the same
    with mock.patch.object(walk_module, "_EXPRESSIONS_KEPT", 3):
        walk_module._EXPRESSIONS.clear()
        for n in range(10):
            assert render_expression("X", ("a", n)) == f"X.a[{n}]"
        assert len(walk_module._EXPRESSIONS) <= 3


def test_the_pipeline_places_findings_alike_with_and_without_the_flag(tmp_path: Path) -> None:
    from validator.api import Validator
    from validator.run import pipeline

    lines = []
    rng = random.Random(11)
    for _ in range(3):
        doc = _study(rng, 2, 3)
        doc["identifier"].append({"use": "usual", "type": {"coding": [{"code": "ACSN"}]}, "value": "A1"})
        doc["procedureCode"] = [{"coding": [{"system": "http://loinc.org", "code": "24627-2"}]}]
        doc["series"][1]["uid"] = "1.2.03.4"
        lines.append(json.dumps(doc))
    path = tmp_path / "studies.ndjson"
    path.write_text("\n".join(lines) + "\n")

    def issues(unique: bool) -> list:
        stamp = pipeline.Pipeline._stamp

        def told(self: object, r: object, base: str, positions: object, at: tuple, unique_keys: bool = False):
            return stamp(self, r, base, positions, at, unique)  # type: ignore[arg-type]

        with mock.patch.object(pipeline.Pipeline, "_stamp", told):
            results = Validator(fhir_version=None).validate_file(path)
        return [(i.rule, i.expression, i.line, i.column, i.snippet) for r in results for i in r.issues]

    told_so, not_told = issues(True), issues(False)
    assert told_so == not_told
    assert sum(1 for i in told_so if i[2] is not None) >= 6


def test_a_key_written_first_deeper_in_its_object_is_read_member_by_member_not_walked_again() -> None:
    line = json.dumps({"resourceType": "ImagingStudy", "identifier": [
        {"type": {"coding": [{"system": "deep", "code": "ACSN"}]}, "system": "own", "value": "A1"}]})
    full = PositionIndex(line, targeted_lookups=0)
    index = PositionIndex(line, unique_keys=True)
    assert index.locate(("identifier", 0, "system")) == full.locate(("identifier", 0, "system"))
    assert line[index.locate(("identifier", 0, "system"))[1] - 1 :].startswith('"system": "own"')
    with mock.patch.object(PositionIndex, "_build", side_effect=AssertionError("the full index was built")):
        index = PositionIndex(line, unique_keys=True)
        with mock.patch.object(pointer_walk.PointerWalk, "_deepest", side_effect=AssertionError("walked again")):
            assert index.locate(("identifier", 0, "system")) == full.locate(("identifier", 0, "system"))
            assert index.locate(("identifier", 0, "nothing")) == full.locate(("identifier", 0, "nothing"))
