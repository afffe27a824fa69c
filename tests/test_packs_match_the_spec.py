"""The R4 packs say what the R4 specification says: every element, cardinality, type, reference
target, binding and invariant, compared with the reference element tables."""

from __future__ import annotations

import json

import pytest

SD = "http://hl7.org/fhir/StructureDefinition/"
SYSTEM = "http://hl7.org/fhirpath/System."
# Medplum's redistribution of the R4 definitions adds these to Meta; they are not FHIR R4.
NOT_R4 = {"Meta.project", "Meta.author", "Meta.onBehalfOf", "Meta.account", "Meta.accounts", "Meta.compartment"}


def _spec_elements(shared):
    rows = json.loads((shared / "elements-r4.json").read_text())["elements"][1:]
    types = json.loads((shared / "types-r4.json").read_text())["types"]
    for t in types.values():
        if t["kind"] == "complex-type":
            rows.extend(e for e in t["elements"][1:] if e["path"] not in NOT_R4)
    return rows


def _element_index(plan):
    index = {}

    def walk(struct):
        for el in struct.elements:
            index[el.path] = el
            if el.children is not None:
                walk(el.children)

    for struct in plan.structures.values():
        walk(struct)
    return index


@pytest.fixture(scope="module")
def spec(shared):
    return _spec_elements(shared)


def test_every_element_of_imagingstudy_and_its_datatypes_is_in_the_pack(validator, spec) -> None:
    index = _element_index(validator.plan)
    missing = sorted(
        p["path"].replace("[x]", "")
        for p in spec
        if p["path"].split(".")[0] in validator.plan.structures
        and p["path"].replace("[x]", "") not in {k.replace("[x]", "") for k in index}
    )
    assert not missing, f"elements missing from the packs: {missing}"
    assert {"ImagingStudy", "Extension", "Reference", "Identifier", "Coding", "Timing"} <= set(
        validator.plan.structures
    )


def _pairs(plan, spec):
    """(spec row, pack element) for every spec element the packs declare."""
    index = {k.replace("[x]", ""): v for k, v in _element_index(plan).items()}
    for e in spec:
        el = index.get(e["path"].replace("[x]", ""))
        if el is not None:
            yield e, el


def test_cardinalities_match_the_spec(validator, spec) -> None:
    wrong = []
    for e, el in _pairs(validator.plan, spec):
        if el.card != f"{e['min']}..{e['max']}":
            wrong.append(f"{e['path']}: pack {el.card}, spec {e['min']}..{e['max']}")
    assert not wrong, wrong


def test_types_and_reference_targets_match_the_spec(validator, spec) -> None:
    wrong = []
    for e, el in _pairs(validator.plan, spec):
        spec_types = [t["code"] for t in e.get("types") or []]
        if not any(t.startswith(SYSTEM) for t in spec_types) and list(el.types) != spec_types:
            wrong.append(f"{e['path']}: pack {el.types}, spec {spec_types}")
        targets = {
            tp[len(SD) :]
            for t in e.get("types") or []
            for tp in t.get("targetProfile") or []
            if t["code"] == "Reference" and tp[len(SD) :] != "Resource"
        }
        if targets != set(el.targets or ()):
            wrong.append(f"{e['path']}: targets pack {sorted(el.targets or ())}, spec {sorted(targets)}")
    assert not wrong, wrong


def test_required_and_extensible_bindings_match_the_spec(validator, spec) -> None:
    wrong = []
    for e, el in _pairs(validator.plan, spec):
        b = e.get("binding") or {}
        if b.get("strength") not in ("required", "extensible"):
            continue
        if el.binding is None or el.binding.strength != b["strength"] or el.binding.url != b["valueSet"].split("|")[0]:
            wrong.append(f"{e['path']}: spec {b['strength']} {b['valueSet']}")
    assert not wrong, wrong


def test_every_invariant_of_the_spec_is_declared_with_its_expression(validator, shared) -> None:
    spec_invariants = {}
    for e in json.loads((shared / "elements-r4.json").read_text())["elements"]:
        for c in e.get("constraints") or []:
            spec_invariants[c["key"]] = c["expression"]
    for t in json.loads((shared / "types-r4.json").read_text())["types"].values():
        if t["kind"] == "complex-type" and t["url"][len(SD) :] in validator.plan.structures:
            for e in t["elements"]:
                for c in e.get("constraints") or []:
                    spec_invariants[c["key"]] = c["expression"]
    declared = {}
    for struct in validator.plan.structures.values():
        for inv in struct.invariants:
            declared[inv.key] = inv.expression
    for inv in validator.plan.element_invariants:
        declared[inv.key] = inv.expression

    def element_invariants(struct):
        for el in struct.elements:
            for inv in el.invariants:
                declared[inv.key] = inv.expression
            if el.children is not None:
                element_invariants(el.children)

    for struct in validator.plan.structures.values():
        element_invariants(struct)
    missing = sorted(set(spec_invariants) - set(declared))
    assert not missing, f"invariants not declared: {missing}"
    changed = sorted(k for k in spec_invariants if declared[k] != spec_invariants[k])
    assert not changed, f"invariants whose FHIRPath differs from the spec: {changed}"


def test_the_status_code_list_is_the_r4_one(validator, shared) -> None:
    vs = json.loads((shared / "valuesets.json").read_text())["valueSets"]["imagingstudy-status"]["r4"]
    bundled = validator.plan.value_sets["http://hl7.org/fhir/ValueSet/imagingstudy-status"]
    assert bundled.codes == {c["code"] for c in vs["concepts"]}


def test_the_sop_class_list_holds_every_registry_entry(validator, shared) -> None:
    entries = json.loads((shared / "valuesets.json").read_text())["sopClassUids"]["entries"]
    url = "http://dicom.nema.org/medical/dicom/current/output/chtml/part04/sect_B.5.html#table_B.5-1"
    bundled = validator.plan.value_sets[url]
    assert {"urn:oid:" + e["uid"] for e in entries} == bundled.codes


# R6 is compared with its own two texts, the build page and the ballot page (test_r6_texts_match_their_pages.py);
# elements-r6.json is a third, a 6.0.0 StructureDefinition of the source tree, of which only the
# ist invariants are used (below).
@pytest.mark.parametrize(("version", "table"), [("R5", "elements-r5.json")])
def test_the_r5_imagingstudy_elements_match_their_table(shared, version, table) -> None:
    from validator import Validator

    plan = Validator(fhir_version=version).plan
    index = {k.replace("[x]", ""): v for k, v in _element_index(plan).items()}
    rows = json.loads((shared / table).read_text())["elements"][1:]
    wrong = []
    for e in rows:
        el = index.get(e["path"])
        if el is None:
            wrong.append(f"{e['path']}: missing")
            continue
        if el.card != f"{e['min']}..{e['max']}":
            wrong.append(f"{e['path']}: card {el.card} vs {e['min']}..{e['max']}")
        spec_types = [t["code"] for t in e.get("types") or []]
        if spec_types and not spec_types[0].startswith(SYSTEM) and list(el.types) != spec_types:
            wrong.append(f"{e['path']}: types {el.types} vs {spec_types}")
    assert not wrong, wrong


def test_the_r6_pack_has_the_seven_ist_invariants_with_the_spec_fhirpath(shared) -> None:
    from validator import Validator

    spec = {
        c["key"]: c["expression"]
        for c in json.loads((shared / "elements-r6.json").read_text())["imagingStudySpecificConstraints"]
    }
    declared = {i.key: i.expression for i in Validator(fhir_version="R6").plan.structures["ImagingStudy"].invariants}
    assert {k: declared.get(k) for k in spec} == spec
