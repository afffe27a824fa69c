"""Placing a finding at a member the tree has at its root only (PointerWalk.root_only).

For a resource the native gate passed that contains no resource, a name that only the root's
structure has (procedureCode, note, series in R4) is the name of one member in the whole tree:
the last plain occurrence of such a key in the text is that member, and the walk takes it with no
proof by decoding around it. These tests place every pointer of studies the gate passes, written
with their keys shuffled, some keys escaped, fake keys inside string values, compact and pretty,
both with the hint and by the full index, and check the hint's claim on the trees themselves.
"""

from __future__ import annotations

import json
import random
from unittest import mock

import jiter
import pytest
from test_locator_shortcuts import _key_text
from test_native_gate import _study
from test_targeted_locator import _Pairs, _pointers

from validator import Validator
from validator.compile.catalog import plan_for
from validator.evaluate.native_gate import NativeGate
from validator.fhir import pointer_walk
from validator.fhir.positions import PositionIndex
from validator.versions import VERSIONS

pytestmark = pytest.mark.skipif(not NativeGate.available(), reason="jsonschema-rs is not installed")


def _pairs(node: object) -> object:
    if isinstance(node, dict):
        return _Pairs((k, _pairs(v)) for k, v in node.items())
    if isinstance(node, list):
        return [_pairs(v) for v in node]
    return node


def _text(node: object, rng: random.Random, indent: str | None, escaped: float) -> str:
    """JSON text of a tree, keys in its order, some of their characters written as escapes."""
    if isinstance(node, dict):
        if not node:
            return "{}"
        sep = "\n" + indent if indent is not None else " "
        members = [
            f"{_key_text(k, [rng.random() < escaped for _ in range(3)])}{rng.choice([':', ': ', ' : '])}"
            f"{_text(v, rng, indent, escaped)}"
            for k, v in node.items()
        ]
        return "{" + sep + f",{sep}".join(members) + sep + "}"
    if isinstance(node, list):
        return "[" + ", ".join(_text(v, rng, indent, escaped) for v in node) + "]"
    return json.dumps(node, ensure_ascii=rng.random() < 0.5)


def _shuffled(node: object, rng: random.Random) -> object:
    if isinstance(node, dict):
        keys = list(node)
        rng.shuffle(keys)
        return {k: _shuffled(node[k], rng) for k in keys}
    if isinstance(node, list):
        return [_shuffled(v, rng) for v in node]
    return node


def _names_below_root(node: object, top: bool = True) -> set[str]:
    names: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if not top:
                names.add(k)
            names |= _names_below_root(v, False)
    elif isinstance(node, list):
        for v in node:
            names |= _names_below_root(v, False)
    return names


def _studies(seed: int, count: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        doc = _study(rng)
        # Root-only names as string values, and as keys written inside a string value.
        doc["description"] = rng.choice(["procedureCode", "note", "series", '"procedureCode": [', "x"])
        doc["note"] = [{"text": rng.choice(['"procedureCode": [{}]', 'a "note": b', "plain"])}]
        out.append(_shuffled(doc, rng))
    return out


@pytest.mark.parametrize("seed", range(3))
def test_every_pointer_of_a_study_the_gate_passes_is_placed_with_the_hint_as_by_the_full_index(seed: int) -> None:
    gate = NativeGate(plan_for(VERSIONS["R4"]), 64)
    names = gate.root_only("ImagingStudy")
    assert {"procedureCode", "note", "series"} <= names
    rng = random.Random(seed)
    compared = hinted = 0
    for doc in _studies(seed, 40):
        indent = rng.choice([None, "", "  "])
        text = _text(doc, rng, indent, rng.choice([0.0, 0.1, 0.3]))
        tree = jiter.from_json(text.encode())
        assert tree == doc and gate.passes(tree), text[:300]
        assert not names & _names_below_root(tree)  # the hint's claim, on the tree itself
        full = PositionIndex(text, 4, targeted_lookups=0)
        for ptr in sorted(_pointers(_pairs(doc)), key=repr):
            index = PositionIndex(text, 4, targeted_lookups=10**9, unique_keys=True)
            index.root_only = names
            with mock.patch.object(pointer_walk, "_decodes_whole", wraps=pointer_walk._decodes_whole) as decoded:
                place = index.locate(ptr)
            assert place == full.locate(ptr), (ptr, text[:300])
            if place is not None:
                assert index.lines(*place) == full.lines(*place)
            compared += 1
            if ptr and ptr[0] in names and not decoded.called:
                hinted += 1
    assert compared > 5000 and hinted > 500, (compared, hinted)


def test_a_root_only_key_is_taken_at_its_last_plain_place_without_decoding() -> None:
    doc = _study(random.Random(5))
    doc["description"] = "procedureCode"  # a value, not a key
    line = json.dumps(doc)
    index = PositionIndex(line, 0, unique_keys=True)
    index.root_only = frozenset({"procedureCode"})
    with mock.patch.object(pointer_walk, "_decodes_whole") as decoded:
        place = index.locate(("procedureCode", 0))
    assert place == PositionIndex(line, 0, targeted_lookups=0).locate(("procedureCode", 0))
    decoded.assert_not_called()


def test_a_root_only_key_written_with_an_escape_is_found_by_the_searches_that_prove_it() -> None:
    doc = _study(random.Random(6))
    line = json.dumps(doc).replace('"procedureCode"', '"proc\\u0065dureCode"')
    index = PositionIndex(line, 0, unique_keys=True)
    index.root_only = frozenset({"procedureCode"})
    full = PositionIndex(line, 0, targeted_lookups=0)
    assert index.locate(("procedureCode", 0)) == full.locate(("procedureCode", 0)) is not None


def test_the_root_only_names_are_those_no_other_structure_of_the_plan_has() -> None:
    for version in ("R4", "R5", "R6"):
        plan = plan_for(VERSIONS[version])
        names = NativeGate(plan, 64).root_only("ImagingStudy")
        assert "series" in names and "note" in names
        # Names of datatypes and backbone elements are never in it.
        assert not names & {"identifier", "status", "modality", "endpoint", "text", "code", "uid", "started"}


def test_the_pipeline_tells_the_walk_of_a_passed_line_and_not_of_one_with_contained_resources(tmp_path) -> None:
    study = _study(random.Random(8))
    contained = dict(study, contained=[{"resourceType": "Patient", "id": "p"}])
    path = tmp_path / "s.ndjson"
    path.write_text(json.dumps(study) + "\n" + json.dumps(contained) + "\n")
    seen = []
    original = PositionIndex.root_only.fset

    def record(self: PositionIndex, names: frozenset[str]) -> None:
        seen.append(self.text)
        original(self, names)

    validator = Validator(fhir_version="R4")
    with mock.patch("validator.run.pipeline.GATE_AFTER", 0), \
         mock.patch.object(PositionIndex, "root_only", property(PositionIndex.root_only.fget, record)):  # fmt: skip
        results = validator.validate_paths([str(path)]).results
    assert "engine:binding-not-checked" in [i.rule for i in results[0].issues]  # the procedureCode note
    assert seen == [json.dumps(study)]  # the second line is not passed (contained), nor hinted
