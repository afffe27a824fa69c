"""The shortcuts in finding and placing the binding notes of a resource the native gate passed.

The notes (native_gate.NativeGate.notes) must be those the base rules give, in their order,
whatever the order of the keys; their placing (Pipeline._stamp) must be what the full index of
positions gives, on every kind of text.

The bundled R4 packs leave few bindings unchecked (procedureCode, meta.security), each at one
place in a study. The finder must follow a binding met at many places, as an IG's binding to a
value set that is not bundled is: these tests leave Identifier Type Codes out of the R4 plan, so
that every Identifier.type (the study's, and every reference's) carries a note.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
import random

import pytest
from test_native_gate import Judge, _study

from validator.evaluate.native_gate import NativeGate
from validator.model import Issue, Severity

pytestmark = pytest.mark.skipif(not NativeGate.available(), reason="jsonschema-rs is not installed")

IDENTIFIER_TYPE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}]}
UNBUNDLED = "http://hl7.org/fhir/ValueSet/identifier-type"


def _reordered(doc: dict, first: list[str]) -> dict:
    """The same resource with the keys `first` written first, in that order."""
    return {**{k: doc[k] for k in first if k in doc}, **{k: v for k, v in doc.items() if k not in first}}


def _pointers(judge: Judge, doc: dict) -> list[tuple]:
    judge.compare(doc)  # the same findings as the base rules, in their order
    assert judge.passed == 1, "the gate must pass the study for its notes to be compared"
    return [r.pointer for r in judge.gate.notes(doc)]


def test_two_notes_come_in_the_order_the_base_rules_give_them() -> None:
    doc = _study(random.Random(1))
    doc.pop("basedOn")
    assert _pointers(Judge("R4", UNBUNDLED), doc) == [("identifier", 1, "type"), ("procedureCode", 0)]


def test_a_procedure_code_written_before_the_identifier_is_noted_first() -> None:
    doc = _reordered(_study(random.Random(1)), ["resourceType", "procedureCode"])
    doc.pop("basedOn")
    assert _pointers(Judge("R4", UNBUNDLED), doc) == [("procedureCode", 0), ("identifier", 1, "type")]


def test_a_reference_identifier_written_before_the_study_identifier_is_the_one_noted() -> None:
    # The base rules meet basedOn's identifier first: the study's own (later) is not noted.
    doc = _reordered(_study(random.Random(1)), ["resourceType", "basedOn"])
    assert _pointers(Judge("R4", UNBUNDLED), doc)[0] == ("basedOn", 0, "identifier", "type")


def test_without_a_typed_study_identifier_the_first_typed_reference_identifier_is_noted() -> None:
    doc = _study(random.Random(1))
    doc.pop("basedOn")
    doc["identifier"] = doc["identifier"][:1]  # the DICOM uid only: no type
    doc["note"] = [{"authorReference": {"identifier": {"type": IDENTIFIER_TYPE, "value": "x"}}, "text": "t"}]
    doc["subject"] = {"identifier": {"type": IDENTIFIER_TYPE, "value": "p"}}  # before note
    assert _pointers(Judge("R4", UNBUNDLED), doc)[0] == ("subject", "identifier", "type")


def test_of_several_paths_through_the_series_the_one_met_first_is_noted() -> None:
    doc = _study(random.Random(2))
    doc.pop("basedOn")
    doc["identifier"] = doc["identifier"][:1]
    series = [copy.deepcopy(doc["series"][0]) for _ in range(3)]
    for n, s in enumerate(series):
        s["uid"], s["number"] = f"{s['uid']}.{n}", n + 1
    # The second series has a typed identifier at its performer's actor, and at its endpoint,
    # written after the performer: the performer's is met first; the third's endpoint comes later.
    series[1]["performer"][0]["actor"] = {"identifier": {"type": IDENTIFIER_TYPE, "value": "a"}}
    series[1]["endpoint"] = [{"identifier": {"type": IDENTIFIER_TYPE, "value": "e"}}]
    series[2]["endpoint"] = [{"identifier": {"type": IDENTIFIER_TYPE, "value": "e"}}]
    doc["series"] = series
    doc["numberOfSeries"] = 3
    doc["numberOfInstances"] = sum(len(s["instance"]) for s in series)
    assert _pointers(Judge("R4", UNBUNDLED), doc)[-1] == ("series", 1, "performer", 0, "actor", "identifier", "type")
    series[1] = _reordered(series[1], ["endpoint"])  # now the endpoint is met first
    assert _pointers(Judge("R4", UNBUNDLED), doc)[-1] == ("series", 1, "endpoint", 0, "identifier", "type")


@pytest.mark.parametrize("seed", range(3))
def test_notes_of_studies_with_their_keys_shuffled_are_those_of_the_base_rules(seed: int) -> None:
    rng = random.Random(seed)
    judge = Judge("R4", UNBUNDLED)
    for _ in range(300):
        doc = _study(rng)
        for key in rng.sample(["basedOn", "identifier", "procedureCode", "referrer", "note"], 2):
            if rng.random() < 0.5:
                doc.pop(key, None)
        if rng.random() < 0.5:
            doc["subject"] = {"identifier": {"type": IDENTIFIER_TYPE, "value": "p"}}
        for n, s in enumerate(doc["series"]):
            if rng.random() < 0.3:
                s["performer"][0]["actor"] = {"identifier": {"type": IDENTIFIER_TYPE, "value": "a"}}
            if rng.random() < 0.3:
                s["endpoint"] = [{"identifier": {"type": IDENTIFIER_TYPE, "value": "e"}}]
            keys = list(s)
            rng.shuffle(keys)
            doc["series"][n] = {k: s[k] for k in keys}
        keys = list(doc)
        rng.shuffle(keys)
        shuffled = {k: doc[k] for k in keys}
        judge.compare(shuffled)  # a study it passes gets the base rules' notes, in their order
    assert judge.passed > 100, judge.passed


def test_an_issue_is_made_with_the_fields_and_defaults_its_dataclass_declares() -> None:
    # Issue writes its own __init__ (through the slots' setters): it must take the fields in
    # their order, with their defaults, and set each one, as the generated one would.
    declared = dataclasses.fields(Issue)
    parameters = list(inspect.signature(Issue.__init__).parameters.values())[1:]
    assert [p.name for p in parameters] == [f.name for f in declared]
    assert [p.default for p in parameters] == [
        inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default for f in declared
    ]
    values = (Severity.WARNING, "code", "rule", "Expr.x", "message", 3, 7, ((3, "line"),))
    made = Issue(*values)
    assert dataclasses.astuple(made) == values
    assert Issue(**{f.name: v for f, v in zip(declared, values, strict=True)}) == made
    assert dataclasses.astuple(Issue(*values[:5])) == (*values[:5], None, None, ())
    assert pickle.loads(pickle.dumps(made)) == made and hash(made) == hash(Issue(*values))
    assert dataclasses.replace(made, line=4).line == 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.line = 5  # type: ignore[misc]


def test_a_result_and_its_findings_come_back_equal_from_pickling() -> None:
    from validator.model import ResourceResult

    issue = Issue(Severity.WARNING, "code", "rule", "Expr.x", "message", 3, 7, ((3, "line"),))
    result = ResourceResult("f.ndjson", 4, "ImagingStudy", "s1", "4.0.1", ("http://p",), (issue, issue),
                            "shape: procedureCode (R4)", 0.25, "why not")  # fmt: skip
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        back = pickle.loads(pickle.dumps(result, protocol))
        assert back == result and dataclasses.astuple(back) == dataclasses.astuple(result)
        assert type(back.issues[0].severity) is Severity
