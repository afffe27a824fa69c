"""The fast paths of placing a finding, against the general ones they stand for.

* A key is proven to be at its object's level by decoding the members before or after it with
  jiter when it is there (pointer_walk._parsed_whole), with json's scanner otherwise
  (_scanned_whole): both must decide alike, and the walk must place alike with either.
* Root keys are searched from the side of the text where they were last found (_FROM_END, a hint
  kept across texts) and a few occurrences near the root are tried: any order must place alike.
* Small objects whose members before the key are scalars are matched, not decoded (_FLAT_MEMBERS).
* The snippet of the line just placed finds its neighbours from that line's start, and a small
  text's line is counted from its start, not from checkpoints: both against the general ways.
"""

from __future__ import annotations

import json
import random
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_locator_shortcuts import CASES, _documents, _dump, _study
from test_place_unique_keys import _repeats_a_key, _unique, assert_same_places_unique
from test_targeted_locator import CORNERS, _Pairs

from validator.fhir import pointer_walk
from validator.fhir.positions import PositionIndex

# Texts without repeated keys that try the new paths: a key written first deeper in the root (a
# narrative's status before the root's), as a value, in a string with brackets or escapes before
# the root's, flat members of every scalar kind before a key, and non-flat ones that must decode.
WRITTEN = [
    '{"text": {"status": "x"}, "id": "status", "status": 1}',
    '{"a": {"status": {"status": 2}}, "b": "\\"status\\": 3", "status": {"c": 4}}',
    '{"x": "[{\\"k\\": ", "k": [1, {"k": 2}], "z": "}]"}',
    '{"o": [{"n": -1.5e3, "t": true, "f": false, "z": null, "s": "[]{}", "k": {"q": 1}}, {"k": 2}]}',
    '{"o": {"s": "a\\"b", "k": 1}, "p": {"a": [1], "k": 2}, "q": {"a": {"k": 0}, "k": 3}}',
    '{"o": {"k" : 1 , "s":"k", "t" :\t"u"}, "p":{"s":"x","k":{"k":"k"}}}',
    '{\n  "o": {\n    "a": "b",\n    "k": [\n      1\n    ]\n  },\n  "k": "\\u006b"\n}\n',
    '{"\\u006b": 1, "o": {"\\u006b": {"k": 2}}, "k2": 3}',
    '{"a": 1, "b": {"k": 2}, "c": [' + ", ".join(f'{{"k": {n}}}' for n in range(40)) + '], "k": 4}',
]


def _fixtures() -> list[str]:
    return [t for t in CORNERS + CASES + WRITTEN if not _repeats_a_key(t)]


class _Always(dict):
    """A hint table that says `value` of every key, whatever is stored in it."""

    def __init__(self, value: bool | None) -> None:
        super().__init__()
        self.value = value

    def get(self, key: object, default: object = None) -> object:
        return self.value


@pytest.mark.parametrize("text", WRITTEN)
def test_written_texts_that_try_the_fast_paths_are_placed_alike(text: str) -> None:
    assert not _repeats_a_key(text)
    assert_same_places_unique(text)
    assert_same_places_unique(text, line_offset=7)


@pytest.mark.parametrize("hint", [True, False, None])
def test_root_keys_are_placed_alike_whichever_side_they_are_looked_for_from(hint: bool | None) -> None:
    with mock.patch.object(pointer_walk, "_FROM_END", _Always(hint)):
        for text in _fixtures():
            assert_same_places_unique(text)
    # The occurrences tried from the root on: only the first, and all of them in a short reach.
    with mock.patch.object(pointer_walk, "_FORWARD_PROBES", 1):
        for text in _fixtures():
            assert_same_places_unique(text)
    with mock.patch.object(pointer_walk, "_PROBED_NEAR_ROOT", 8), mock.patch.object(pointer_walk, "_FORWARD_PROBES", 9):
        for text in _fixtures():
            assert_same_places_unique(text)


def test_json_s_scanner_decides_as_jiter_does_and_places_alike() -> None:
    parts = ['{"a": 1}', '{"a": 1}  \r\n\t', '{"a": 1}, "b": 2}', '{"a": [1, {"b": "}"}]}', '{"a": [1}']
    parts += ['{"a": "\\"}"}']
    parts += ['{"a": 1}\x0c', '{"a": "x', '{"a": 1} x', "{}", '{"a": 1e999}', '{"a": NaN}', '{"a": "\\ud83d\\ude00"}']
    for part in parts:
        assert pointer_walk._parsed_whole(part) == pointer_walk._scanned_whole(part), part
    # What jiter refuses and json reads (no text told to have no repeated key holds them: jiter
    # parsed it) only sends the walk back to its general path.
    for part in ['{"a": "\\ud800"}', '{"a": "\ud800"}']:
        assert not pointer_walk._parsed_whole(part) and pointer_walk._scanned_whole(part), part
    with mock.patch.object(pointer_walk, "_decodes_whole", pointer_walk._scanned_whole):
        for text in _fixtures():
            assert_same_places_unique(text)


@settings(max_examples=200, deadline=None)
@given(_documents(), st.randoms(use_true_random=False), st.sampled_from([None, "", "  "]), st.booleans())
def test_generated_texts_are_placed_alike_from_either_side_and_with_either_decoder(
    doc: _Pairs, rng: random.Random, indent: str | None, from_end: bool
) -> None:
    text = _dump(_unique(doc), rng, indent)
    with mock.patch.object(pointer_walk, "_FROM_END", _Always(from_end)):
        assert_same_places_unique(text)
        with mock.patch.object(pointer_walk, "_decodes_whole", pointer_walk._scanned_whole):
            assert_same_places_unique(text, line_offset=2)


def test_a_realistic_line_is_placed_alike_when_its_keys_were_found_elsewhere_in_other_texts() -> None:
    doc = _study(random.Random(9), 2, 5)
    doc["identifier"].append({"use": "usual", "type": {"coding": [{"code": "ACSN"}]}, "value": "A1"})
    doc["procedureCode"] = [{"coding": [{"system": "http://loinc.org", "code": "24627-2"}]}]
    doc["note"] = [{"text": 'a "status": [1] {'}]
    for text in (json.dumps(doc), json.dumps(doc, indent=2)):
        for hint in (True, False):
            with mock.patch.object(pointer_walk, "_FROM_END", _Always(hint)):
                assert_same_places_unique(text)


def test_the_hint_is_learnt_from_a_key_found_near_the_end_and_kept_bounded() -> None:
    line = json.dumps({"a": "x" * 100, "z": [1]})
    with mock.patch.object(pointer_walk, "_FROM_END", {}) as hints:
        assert PositionIndex(line, unique_keys=True).locate(("z", 0)) == (1, len(line) - 2)
        assert hints == {"z": True}
        assert PositionIndex(line, unique_keys=True).locate(("a",)) == (1, 2)
        assert hints == {"z": True}  # found from the root on: nothing to remember
        moved = json.dumps({"z": [1], "a": "x" * 100})
        assert PositionIndex(moved, unique_keys=True).locate(("z", 0)) == (1, 8)
        assert hints == {"z": False}  # looked for from the end first, found from the root on
    kept = mock.patch.object(pointer_walk, "_FROM_END_KEPT", 3)
    with mock.patch.object(pointer_walk, "_FROM_END", {}) as hints, kept:
        for n in range(10):
            PositionIndex(json.dumps({"a": "x" * 100, f"k{n}": 1}), unique_keys=True).locate((f"k{n}",))
        assert 0 < len(hints) <= 3


def _pretty_texts() -> list[str]:
    doc = _study(random.Random(4), 2, 3)
    doc["note"] = [{"text": "x" * 400}]  # a line longer than the cut
    texts = [json.dumps(doc, indent=2), json.dumps(doc, indent=1) + "\n", json.dumps(doc, indent="\t")]
    texts.append(texts[0].replace("\n", "\r\n"))
    texts.append("\n\n" + texts[0] + "\n\n\n")
    texts.append('{"a":\n\n\n1,\n"b": [\n2]}')
    return texts


@pytest.mark.parametrize("text", _pretty_texts(), ids=range(len(_pretty_texts())))
def test_the_snippet_of_the_line_just_placed_is_that_of_lines_counted_from_the_start(text: str) -> None:
    doc = json.loads(text, object_pairs_hook=_Pairs)
    from test_targeted_locator import _pointers

    for offset in (0, 5):
        placed = PositionIndex(text, offset, unique_keys=True)
        for ptr in sorted(_pointers(doc), key=repr):
            line, column = placed.locate(ptr)  # type: ignore[misc]
            for radius, width in ((2, 160), (0, 160), (5, 20), (1, 1)):
                counted = PositionIndex(text, offset)  # nothing placed: lines counted from the start
                assert placed.lines(line, column, radius, width) == counted.lines(line, column, radius, width), ptr
            # Another line than the one placed is counted too.
            assert placed.lines(line + 1, 1) == PositionIndex(text, offset).lines(line + 1, 1)


@pytest.mark.parametrize("text", _pretty_texts()[:1] + ["a\nb", "\n", "\n\n\r\n"], ids=range(4))
def test_a_small_text_s_lines_are_counted_as_from_checkpoints(text: str) -> None:
    for offset in range(len(text) + 1):
        counted = PositionIndex(text)
        checkpoints = PositionIndex(text)
        checkpoints._checkpoints()
        assert counted._line_col(offset) == checkpoints._line_col(offset), offset
        assert counted._newlines_before is None  # the small text's way was the one tried


def test_the_members_before_a_key_are_matched_only_when_they_are_scalars_or_plain_strings() -> None:
    flat = pointer_walk._FLAT_MEMBERS
    for head, matched in [
        ('"a": 1,', True),
        ('\n "a" : "x" ,', True),
        ('"a": true, "b": null, "c": -1e+3,', True),
        ('"a": "[{",', True),  # brackets in a string, no escape
        ('"a": "\\"",', False),  # an escape: decoded instead
        ('"a": [1],', False),
        ('"a": {},', False),
        ('"a": 1', False),  # no comma: the key is not a member's start
        ('"a": "x", "b"', False),
    ]:
        assert bool(flat.fullmatch(head)) == matched, head
