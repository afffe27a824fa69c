"""The member shortcut of a resource the native gate refuses (native_gate.MemberVerdicts).

The base rules walk a refused resource but for the members the gate's schema judges clean, which
they only count and give their binding notes (BaseRules.check's `clean`). That must never change
a finding: the same rule, pointer, message and severity, in the same order, as the whole walk.
Compared here on parser trees (the only trees the pipeline judges so) of mutated studies, every
example, fixture and official example, hand-made cases where a note's place depends on the walk
order, and whole runs with and without the shortcut.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path

import pytest
from test_native_gate import _documents, _mutate, _resources, _study, without_value_set

from validator import Validator
from validator.compile.catalog import plan_for
from validator.evaluate.base_rules import BaseRules
from validator.evaluate.native_gate import NativeGate
from validator.fhir.jsontext import REFUSED, parse_checked
from validator.versions import VERSIONS

pytestmark = pytest.mark.skipif(not NativeGate.available(), reason="jsonschema-rs is not installed")


def _findings(issues: list) -> list[tuple]:
    return [(r.rule.id, r.pointer, r.message, r.severity, r.duplicate) for r in issues]


def _plain(node: object) -> object:
    """A tree json.dumps can write, numbers kept as numbers (a Decimal written as its digits)."""
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return float(node) if isinstance(node, Decimal) else node


def _parsed(resource: object) -> tuple[object, bool | None]:
    """The resource as the pipeline's parser gives it (jiter: no repeated key, decimals exact),
    with what it found of its numbers; REFUSED when that parser leaves it to the json path."""
    return parse_checked(json.dumps(_plain(resource), ensure_ascii=False).encode("utf-8", "surrogatepass"))


class Judge:
    """One version's gate and base rules; counts of the resources compared."""

    def __init__(self, version: str, unbundled: str | None = None) -> None:
        plan = plan_for(VERSIONS[version])
        if unbundled is not None:
            plan = without_value_set(plan, unbundled)
        self.gate = NativeGate(plan, 64)
        self.base = BaseRules(plan, 64)
        self.compared = self.shortened = self.refused = 0

    def compare(self, resource: object, numbers: bool | None = None, parse: bool = True) -> None:
        if parse:
            resource, numbers = _parsed(resource)
        if resource is REFUSED or not isinstance(resource, dict):
            return
        whole = _findings(self.base.check(resource, {}))
        if not self.gate.passes(resource, numbers):  # as the pipeline asks it first (it builds the type's schema)
            self.refused += 1
        clean = self.gate.clean_members(resource, numbers)
        self.compared += 1
        if clean is None:
            return
        self.shortened += 1
        shortened = _findings(self.base.check(resource, {}, clean))
        assert shortened == whole, (sorted(clean), json.dumps(resource, default=str)[:3000])


@pytest.mark.parametrize("seed", range(4))
def test_a_defective_study_gets_the_same_findings_with_the_member_shortcut(seed: int) -> None:
    rng = random.Random(20261127 + 100 * seed)
    judge = Judge("R4")
    for _ in range(2500):
        doc = _study(rng)
        if rng.random() < 0.9:
            _mutate(doc, rng)
        judge.compare(doc)
    # Most mutants are refused by the gate, and most of those have members judged clean.
    assert judge.refused > 800 and judge.shortened > 800, (judge.compared, judge.refused, judge.shortened)


@pytest.mark.parametrize("version", ["R5", "R6"])
def test_a_defective_study_of_a_later_version_gets_the_same_findings_with_the_member_shortcut(version: str) -> None:
    rng = random.Random(11)
    judge = Judge(version)
    for _ in range(1200):
        doc = _study(rng)
        doc["modality"] = [{"coding": [m]} for m in doc["modality"]]
        doc.pop("procedureCode")
        for s in doc["series"]:
            s["modality"] = {"coding": [s["modality"]]}
            s.pop("bodySite")
            for i in s["instance"]:
                if version == "R6":
                    i["sopClass"] = i["sopClass"]["code"]
        if rng.random() < 0.9:
            _mutate(doc, rng)
        judge.compare(doc)
    assert judge.compared == 1200


@pytest.mark.parametrize("version", ["R4", "R5", "R6"])
def test_every_example_and_fixture_gets_the_same_findings_with_the_member_shortcut(version: str) -> None:
    judge = Judge(version)
    for doc in _documents():
        for resource in _resources(doc):
            judge.compare(resource)
    assert judge.compared > 100


def test_a_study_with_a_decimal_is_judged_by_the_strict_schema_with_the_same_findings() -> None:
    judge = Judge("R4")
    doc = _study(random.Random(3))
    doc["status"] = "done"  # refused
    doc["series"][0]["extension"] = [{"url": "http://example.org/x", "valueDecimal": 1.5}]
    doc["series"][1]["number"] = 1.0  # a decimal where an integer belongs: that series member is walked
    resource, numbers = _parsed(doc)
    assert numbers is False
    judge.compare(resource, numbers, parse=False)
    clean = judge.gate.clean_members(resource, numbers)
    assert clean is not None and "series" not in clean and "identifier" in clean


def test_a_note_met_first_in_a_walked_member_is_not_given_again_by_a_clean_one() -> None:
    """A binding is noted once, where the walk first meets it: in a walked identifier member
    before the referrer's identifier, which is judged clean. Identifier Type Codes is left out of
    the plan here, as an IG's unbundled binding met under several members would be."""
    judge = Judge("R4", "http://hl7.org/fhir/ValueSet/identifier-type")
    doc = _study(random.Random(5))
    acsn = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}]}
    doc["identifier"] = [{"type": acsn, "system": "urn:x", "value": "A1", "period": {"start": "2024-02-30"}}]
    doc["referrer"] = {"identifier": {"type": acsn, "value": "R1"}}
    resource, numbers = _parsed(doc)
    judge.compare(resource, numbers, parse=False)
    clean = judge.gate.clean_members(resource, numbers)
    assert clean is not None and "identifier" not in clean and "referrer" in clean
    notes = [r.pointer for r in judge.base.check(resource, {}, clean) if r.rule.id == "engine:binding-not-checked"]
    assert ("identifier", 0, "type") in notes and ("referrer", "identifier", "type") not in notes
    # ... and given by the clean one when the walked member comes after it.
    moved = {k: v for k, v in resource.items() if k != "identifier"}
    moved["identifier"] = resource["identifier"]
    judge.compare(moved, numbers, parse=False)
    notes = [r.pointer for r in judge.base.check(moved, {}, judge.gate.clean_members(moved, numbers))
             if r.rule.id == "engine:binding-not-checked"]  # fmt: skip
    assert ("referrer", "identifier", "type") in notes and ("identifier", 0, "type") not in notes


def test_a_member_with_a_finding_is_walked_and_the_others_are_not() -> None:
    judge = Judge("R4")
    doc = _study(random.Random(9))
    doc["series"][0]["started"] = "2024-02-30T09:30:00Z"
    doc["accessionNumber"] = "A1"  # an unknown key: the root's own check
    resource, numbers = _parsed(doc)
    assert not judge.gate.passes(resource, numbers)
    clean = judge.gate.clean_members(resource, numbers)
    assert clean is not None and "series" not in clean and {"identifier", "modality", "subject"} <= set(clean)
    judge.compare(resource, numbers, parse=False)


def _corpus(tmp_path: Path) -> Path:
    """Studies as NDJSON lines, most of them with a defect (mutated), some clean."""
    rng = random.Random(42)
    lines = []
    for _ in range(400):
        doc = _study(rng)
        if rng.random() < 0.8:
            _mutate(doc, rng)
        lines.append(json.dumps(_plain(doc), ensure_ascii=False))
    path = tmp_path / "studies.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_whole_runs_give_the_same_results_with_and_without_the_member_shortcut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _corpus(tmp_path)
    asked = []
    original = NativeGate.clean_members

    def counted(self: NativeGate, resource: dict, plain_numbers: bool | None = None) -> object:
        found = original(self, resource, plain_numbers)
        asked.append(found is not None)
        return found

    monkeypatch.setattr(NativeGate, "clean_members", counted)
    shortened = [(r.entry, r.fhir_version, r.issues) for r in Validator(fhir_version=None).validate_file(str(path))]
    assert sum(asked) > 100  # the shortcut was taken, many times
    monkeypatch.setattr(NativeGate, "clean_members", lambda self, resource, plain_numbers=None: None)
    whole = [(r.entry, r.fhir_version, r.issues) for r in Validator(fhir_version=None).validate_file(str(path))]
    assert shortened == whole
