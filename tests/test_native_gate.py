"""The native gate (evaluate/native_gate.py) against the base rules it stands in for.

The gate may refuse a resource the base rules pass (it then goes through them), but a resource it
passes must get from it exactly the findings the base rules give: the not-bundled binding notes,
same rule, pointer, message and severity, in the same order. Checked on every fixture payload,
every example and official example, the IG examples, and tens of thousands of mutated studies
(types swapped, keys dropped and added, whitespace and non-ASCII strings, calendar edges, codes
in and out of value sets, references of every form, extensions of every value type).
"""

from __future__ import annotations

import copy
import json
import random
import re
from decimal import Decimal
from pathlib import Path

import pytest
from fixture_cases import load_cases

from validator.compile.catalog import plan_for
from validator.compile.plan import Plan
from validator.evaluate import native_gate
from validator.evaluate.base_rules import BaseRules
from validator.evaluate.native_gate import NativeGate, translate
from validator.fhir.jsontext import DupDict, parse
from validator.versions import VERSIONS

ROOT = Path(__file__).parent.parent
SHARED = ROOT.parent / "shared" / "reference"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
pytestmark = pytest.mark.skipif(not NativeGate.available(), reason="jsonschema-rs is not installed")


def _findings(issues: list) -> list[tuple]:
    return [(r.rule.id, r.pointer, r.message, r.severity, r.duplicate) for r in issues]


class Judge:
    """One version's gate and base rules, and what was compared."""

    def __init__(self, version: str, unbundled: str | None = None) -> None:
        plan = plan_for(VERSIONS[version])
        if unbundled is not None:
            plan = without_value_set(plan, unbundled)
        self.gate = NativeGate(plan, 64)
        self.base = BaseRules(plan, 64)
        self.passed = self.refused = 0

    def compare(self, resource: object) -> None:
        if not isinstance(resource, dict) or _has_repeated_keys(resource):
            return  # the pipeline gives the gate only trees without repeated keys
        expected = _findings(self.base.check(resource, {}))
        residual = self.gate.residual_needed(resource) and self.base.check_members(resource, {}, self.gate.residual)
        if not self.gate.passes(resource) or residual:
            self.refused += 1
            return
        self.passed += 1
        assert _findings(self.gate.notes(resource)) == expected, json.dumps(resource, default=str)[:2000]
        # Given its text, as the pipeline does (the same notes whatever the text).
        for text in (json.dumps(resource, default=str), json.dumps(resource, default=str, ensure_ascii=False)):
            assert _findings(self.gate.notes(resource, text)) == expected, text[:2000]


def without_value_set(plan: Plan, url: str) -> Plan:
    """A copy of `plan` in which the value set `url` is not bundled: its bindings are noted, as an
    IG's binding to a value set the product does not have is."""
    plan = copy.deepcopy(plan)
    found = 0
    for struct in plan.structures.values():
        for binding in [struct.binding, *(el.binding for el in struct.elements)]:
            if binding is not None and binding.url == url:
                binding.value_set = binding.extension = None
                found += 1
    assert found, f"no binding to {url}"
    return plan


def _has_repeated_keys(node: object) -> bool:
    if isinstance(node, DupDict):
        return True
    if isinstance(node, dict):
        return any(_has_repeated_keys(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_repeated_keys(v) for v in node)
    return False


def _resources(doc: object) -> list[dict]:
    """A document's resources: itself, or a Bundle's entries."""
    if not isinstance(doc, dict):
        return []
    if doc.get("resourceType") == "Bundle":
        return [
            e["resource"] for e in doc.get("entry") or [] if isinstance(e, dict) and isinstance(e.get("resource"), dict)
        ]
    return [doc]


def _documents() -> list[object]:
    docs: list[object] = []
    paths = [*(ROOT / "examples").rglob("*.json"), *SHARED.rglob("*.json")]
    for path in sorted(paths):
        try:
            docs.append(parse(path.read_text(encoding="utf-8")))
        except Exception:  # not JSON, or not meant to be: nothing to compare
            continue
    for path in sorted((ROOT / "examples").rglob("*.ndjson")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                docs.append(parse(line))
            except Exception:  # a line malformed on purpose
                continue
    for case in load_cases():
        if case.payload is not None:
            docs.append(parse(json.dumps(case.payload)))
    return docs


@pytest.mark.parametrize("version", ["R4", "R5", "R6"])
def test_every_example_and_fixture_the_gate_passes_gets_the_base_rules_findings(version: str) -> None:
    judge = Judge(version)
    for doc in _documents():
        for resource in _resources(doc):
            judge.compare(resource)
    assert judge.passed + judge.refused > 100


def test_the_gate_passes_most_published_r4_imaging_studies() -> None:
    """Not a correctness test: the gate must be worth having on real payloads."""
    judge = Judge("R4")
    for doc in _documents():
        for resource in _resources(doc):
            if resource.get("resourceType") == "ImagingStudy" and "meta" not in resource:
                judge.compare(resource)
    assert judge.passed > 20


def _study(rng: random.Random) -> dict:
    root = f"1.2.826.0.1.3680043.10.{rng.randint(1, 10**6)}"
    modality = rng.choice(["CT", "MR", "US"])
    series = []
    for n in range(1, rng.randint(1, 3) + 1):
        instances = [{"uid": f"{root}.{n}.{k}", "number": k,
                      "sopClass": {"system": "urn:ietf:rfc:3986", "code": "urn:oid:1.2.840.10008.5.1.4.1.1.2"}}
                     for k in range(1, rng.randint(1, 3) + 1)]  # fmt: skip
        series.append({
            "uid": f"{root}.{n}", "number": n, "modality": {"system": DCM, "code": modality},
            "numberOfInstances": len(instances), "instance": instances,
            "bodySite": {"system": "http://snomed.info/sct", "code": "51185008", "display": "Thoracic structure"},
            "performer": [{"function": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                                     "code": "PRF"}]}, "actor": {"reference": "Practitioner/t1"}}],
        })  # fmt: skip
    return {
        "resourceType": "ImagingStudy", "id": f"s{rng.randint(1, 10**6)}",
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">study</div>'},
        "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{root}"},
                       {"use": "usual", "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                             "code": "ACSN"}]},
                        "system": "http://hospital.example.org/accession", "value": "A1"}],
        "status": "available", "modality": [{"system": DCM, "code": modality}],
        "subject": {"reference": "Patient/p1"}, "started": "2024-03-14T09:30:00+01:00",
        "referrer": {"reference": "Practitioner/r1", "display": "Dr. Référent"},
        "basedOn": [{"identifier": {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                         "code": "ACSN"}]}, "value": "A1"}}],
        "procedureCode": [{"coding": [{"system": "http://loinc.org", "code": "24627-2", "display": "CT Chest"}]}],
        "numberOfSeries": len(series), "numberOfInstances": sum(len(s["instance"]) for s in series),
        "note": [{"text": "no contrast"}], "description": "CT chest", "series": series,
    }  # fmt: skip


# Values the mutations put in place of others: every JSON type, and the strings and numbers the
# formats and bindings are touchy about.
ODD_VALUES: list[object] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2**31,
    2**31 - 1,
    Decimal("1.0"),
    Decimal("1.5"),
    Decimal("-0"),
    "",
    " ",
    "x",
    " x",
    "x ",
    "a  b",
    "a\x1cb",
    "a\x1c\x1cb",
    "a\u00a0b",
    "a\u2028b",
    "\t",
    "é",
    "😀",
    "東京",
    "x" * 65,
    "urn:oid:1.2.3",
    "urn:oid:1.02.3",
    "1.2.3",
    "1.2.03",
    "urn:uuid:0e0e0e0e-0000-0000-0000-000000000000",
    "2024-02-29",
    "2023-02-29",
    "2024-02-30",
    "2024-04-31",
    "2024-12-31",
    "2024-13-01",
    "2024-03-14T09:30:00",
    "2024-03-14T09:30:00Z",
    "2024-03-14T09:30:00+14:00",
    "2024-03-14T24:00:00Z",
    "2024",
    "2024-03",
    "0000",
    "available",
    "done",
    "inactive",
    "CT",
    "ZZ",
    "ACSN",
    "Patient/p1",
    "Patient/p 1",
    "#p1",
    "Observation/o1",
    "http://x.org/fhir/Patient/p1",
    "http://x.org/fhir/Patient/p1/_history/2",
    "http://x.org/Patient/a/Observation/b",
    "Practitioner/r1",
    "urn:ietf:rfc:3986",
    DCM,
    "http://loinc.org",
    "Patient",
    "Device",
    {},
    [],
    [{}],
    {"x": 1},
    {"id": "a"},
    {"reference": "Patient/p1"},
    {"text": "t"},
    {"coding": []},
    {"system": DCM, "code": "CT"},
    {"system": DCM},
    {"code": "CT"},
    {"start": "2024", "end": "2023"},
    {"start": "2024"},
]
EXTENSION_VALUES = [
    ("valueString", "x"),
    ("valueCode", "a b"),
    ("valueCode", "a  b"),
    ("valueBoolean", True),
    ("valueInteger", 1),
    ("valueInteger", Decimal("1.0")),
    ("valueDecimal", Decimal("1.5")),
    ("valueDecimal", 2),
    ("valueDate", "2024-02-30"),
    ("valueDateTime", "2024-03-14T09:30"),
    ("valueUri", "a b"),
    ("valueCoding", {"system": DCM, "code": "CT"}),
    ("valueCodeableConcept", {"text": "t"}),
    ("valueIdentifier", {"type": {"text": "t"}, "value": "1"}),
    ("valueReference", {"reference": "Patient/p1"}),
    ("valuePeriod", {"start": "2024", "end": "2023"}),
    ("valueQuantity", {"value": 1, "code": "mm"}),
    ("valueAttachment", {"data": "AAAA"}),
    ("valueBase64Binary", "AAAA"),
    ("valueMarkdown", "x\x0by"),
    ("valueInstant", "2024-03-14T09:30:00Z"),
    ("valueUnsignedInt", -1),
]


def _places(node: object, ptr: tuple = ()) -> list[tuple]:
    out = [ptr]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _places(v, (*ptr, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _places(v, (*ptr, i))
    return out


def _at(doc: object, ptr: tuple) -> object:
    for step in ptr:
        doc = doc[step]  # type: ignore[index]
    return doc


def _mutate(doc: dict, rng: random.Random) -> None:
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        try:
            _mutate_once(doc, rng, rng.choice(_places(doc)[1:]))
        except (KeyError, IndexError, TypeError):
            continue  # a place an earlier mutation changed the shape of


def _mutate_once(doc: dict, rng: random.Random, ptr: tuple) -> None:
    parent = _at(doc, ptr[:-1])
    key = ptr[-1]
    how = rng.randrange(7)
    if how == 0 and isinstance(parent, dict):
        parent.pop(key, None)
    elif how == 1:
        parent[key] = copy.deepcopy(rng.choice(ODD_VALUES))
    elif how == 2 and isinstance(parent, dict):
        parent[rng.choice(["extra", "_status", "modifierExtension", "contained", "id", "valueString", "coding",
                               "uid", "system", "code", "reference", "type", "identifier", "div"])] = copy.deepcopy(
                rng.choice(ODD_VALUES))  # fmt: skip
    elif how == 3:
        name, value = rng.choice(EXTENSION_VALUES)
        extension = {"url": "http://example.org/x", name: copy.deepcopy(value)}
        if rng.random() < 0.2:
            extension = {"url": "http://example.org/y", "extension": [extension]}
        target = _at(doc, ptr) if isinstance(_at(doc, ptr), dict) else parent
        if isinstance(target, dict):
            target.setdefault("extension", []).append(extension)
    elif how == 4 and isinstance(parent[key], list) and parent[key]:
        parent[key].append(copy.deepcopy(parent[key][0]))
    elif how == 5 and isinstance(parent[key], (list, dict)):
        parent[key] = [parent[key]] if isinstance(parent[key], dict) else parent[key][0]
    elif how == 6 and isinstance(parent[key], str):
        parent[key] = rng.choice([parent[key] + " ", parent[key].upper(), parent[key] + "\u00a0", parent[key][:1]])


@pytest.mark.parametrize("seed", range(4))
def test_mutated_studies_the_gate_passes_get_the_base_rules_findings(seed: int) -> None:
    rng = random.Random(20261127 + seed)
    judge = Judge("R4")
    for _ in range(2500):
        doc = _study(rng)
        if rng.random() < 0.85:
            _mutate(doc, rng)
        judge.compare(doc)
    # Both sides exercised: many mutants are passed (and compared), many refused.
    assert judge.passed > 300 and judge.refused > 300, (judge.passed, judge.refused)


@pytest.mark.parametrize("version", ["R5", "R6"])
def test_mutated_studies_of_later_versions_the_gate_passes_get_the_base_rules_findings(version: str) -> None:
    rng = random.Random(7)
    judge = Judge(version)
    for _ in range(1500):
        doc = _study(rng)
        # The later versions' shapes: modality a CodeableConcept, sopClass an oid (R6).
        doc["modality"] = [{"coding": [m]} for m in doc["modality"]]
        doc.pop("procedureCode")
        for s in doc["series"]:
            s["modality"] = {"coding": [s["modality"]]}
            s.pop("bodySite")
            for i in s["instance"]:
                if version == "R6":
                    i["sopClass"] = i["sopClass"]["code"]
        if rng.random() < 0.85:
            _mutate(doc, rng)
        judge.compare(doc)
    assert judge.passed + judge.refused == 1500


def test_a_plain_realistic_study_is_passed_with_its_procedure_code_note() -> None:
    # Its accession identifier's type (v2-0203#ACSN) is checked against the bundled Identifier
    # Type Codes: no note; its procedureCode's value set (RadLex) is not bundled: a note.
    judge = Judge("R4")
    doc = _study(random.Random(1))
    judge.compare(doc)
    assert judge.passed == 1
    notes = [(r.rule.id, r.pointer) for r in judge.gate.notes(doc)]
    assert notes == [("engine:binding-not-checked", ("procedureCode", 0))]


@pytest.mark.parametrize(
    ("mutation", "why"),
    [
        ({"numberOfSeries": Decimal("1.0")}, "JSON Schema's integer takes 1.0; FHIR's does not"),
        ({"started": "2024-02-30T09:30:00+01:00"}, "no such day"),
        ({"description": "a\x0bb"}, "a string with a vertical tab"),
        ({"subject": {"reference": "Observation/o1"}}, "not an allowed target"),
        ({"subject": {"reference": "#p1"}}, "a contained reference the gate does not resolve"),
        ({"modality": [{"code": "CT"}]}, "a Coding without system must not match a system-specific code"),
        ({"text": {"status": "generated", "div": "<p>not a div</p>"}}, "narrative XHTML"),
    ],
)
def test_the_gate_refuses_what_it_cannot_judge_exactly(mutation: dict, why: str) -> None:
    judge = Judge("R4")
    doc = _study(random.Random(2))
    doc.update(copy.deepcopy(mutation))
    judge.compare(doc)  # equal findings if passed: but these must not be passed at all
    residual = judge.base.check_members(doc, {}, judge.gate.residual)
    assert not judge.gate.passes(doc) or residual, why


def test_a_tree_of_ints_takes_the_schema_without_callbacks_and_one_with_a_decimal_the_strict_one() -> None:
    judge = Judge("R4")
    doc = _study(random.Random(3))
    assert judge.gate.passes(doc)
    compiled = judge.gate._compiled["ImagingStudy"]
    assert compiled.plain is not None and compiled.strict is None  # ints only: no callback schema built
    # A Decimal anywhere (here a valid one, in a decimal element) sends the tree to the strict
    # schema, which alone tells 1 from 1.0; the plain one would take numberOfSeries 1.0.
    doc["series"][0]["extension"] = [{"url": "http://example.org/x", "valueDecimal": Decimal("1.5")}]
    judge.compare(doc)
    assert compiled.strict is not None
    doc["numberOfSeries"] = Decimal("2.0")
    assert compiled.plain.is_valid(doc) and not compiled.strict.is_valid(doc)
    assert not judge.gate.passes(doc)


def test_a_number_past_64_bits_is_judged_by_the_strict_schema() -> None:
    judge = Judge("R4")
    doc = _study(random.Random(4))
    doc["numberOfSeries"] = 2**70
    judge.compare(doc)
    assert not judge.gate.passes(doc)


@pytest.mark.parametrize(
    "pattern",
    [
        r"[ \r\n\t\S]+",
        r"[^\s]+(\s[^\s]+)*",
        r"\S*",
        r"[A-Za-z0-9\-\.]{1,64}",
        r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+",
        r"-?([0]|([1-9][0-9]*))",
        r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?",
    ],
)
def test_a_translated_regex_accepts_exactly_what_python_accepts(pattern: str) -> None:
    import jsonschema_rs

    translated = translate(pattern)
    assert translated is not None
    native = jsonschema_rs.validator_for({"type": "string", "pattern": translated},
                                         pattern_options=jsonschema_rs.RegexOptions())  # fmt: skip
    python = re.compile(pattern)
    rng = random.Random(pattern)
    alphabet = [chr(c) for c in [*range(0, 0x80), 0x85, 0xA0, 0x1680, 0x2000, 0x2028, 0x202F, 0x3000, 0xE9, 0x1F600]]
    samples = ["", "a", "1.2.3", "urn:oid:1.2.3", "09:30:00", "a b", "a  b", "-0", "10"]
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(4000)]
    for s in samples:
        assert native.is_valid(s) == (python.fullmatch(s) is not None), (pattern, s)


def test_the_gate_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native_gate, "_ENABLED", False)
    assert not native_gate.enabled()


def test_the_whitespace_table_of_this_python_is_what_its_str_isspace_says() -> None:
    import unicodedata

    from validator.evaluate.native_gate import _KNOWN_SPACES, _python_spaces, _ranges

    assert _ranges(_python_spaces()) == _ranges([c for c in range(0x110000) if chr(c).isspace()])
    if unicodedata.unidata_version in _KNOWN_SPACES:
        assert _KNOWN_SPACES[unicodedata.unidata_version] == _ranges(_python_spaces())


def _whole_run_inputs(tmp_path: Path) -> list[str]:
    """Every example and official example file, and an NDJSON of mutated studies."""
    rng = random.Random(99)
    lines = []
    for _ in range(600):
        doc = _study(rng)
        if rng.random() < 0.7:
            _mutate(doc, rng)
        lines.append(json.dumps(doc, default=str))
    mutated = tmp_path / "mutated.ndjson"
    mutated.write_text("\n".join(lines) + "\n", encoding="utf-8")
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps(_study(rng), indent=2, ensure_ascii=False), encoding="utf-8")
    files = [
        *(ROOT / "examples").rglob("*.json"),
        *(ROOT / "examples").rglob("*.ndjson"),
        *SHARED.joinpath("examples").rglob("*.json"),
    ]
    return [str(p) for p in sorted(files)] + [str(mutated), str(pretty)]


@pytest.mark.parametrize("version", [None, "R4"])
def test_whole_runs_give_the_same_results_with_and_without_the_gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     version: str | None) -> None:  # fmt: skip
    from dataclasses import replace

    from validator import Validator
    from validator.run import pipeline

    paths = _whole_run_inputs(tmp_path)
    monkeypatch.setattr(pipeline, "GATE_AFTER", 0)
    passed = []
    real_passes = NativeGate.passes

    def counted(self: NativeGate, resource: dict, plain_numbers: bool | None = None) -> bool:
        result = real_passes(self, resource, plain_numbers)
        passed.append(result)
        return result

    monkeypatch.setattr(NativeGate, "passes", counted)
    on = Validator(fhir_version=version).validate_paths(paths)
    monkeypatch.setattr(native_gate, "_ENABLED", False)
    off = Validator(fhir_version=version).validate_paths(paths)
    assert [replace(r, duration=0.0) for r in on.results] == [replace(r, duration=0.0) for r in off.results]
    assert sum(passed) > 150  # the gate did pass many of them (and the others were refused)


def test_a_narrative_the_gate_takes_as_plain_is_one_the_narrative_checks_find_nothing_in() -> None:
    from validator.evaluate.native_gate import _PLAIN_DIV
    from validator.fhir.narrative import has_content, html_problems, xhtml_problem

    rng = random.Random(3)
    alphabet = [chr(c) for c in [*range(0, 128), 0xE9, 0x85, 0xA0, 0xFFFE, 0xFFFD, 0x1F600, 0x2028]]
    taken = 0
    for _ in range(30000):
        body = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        div = f'<div xmlns="http://www.w3.org/1999/xhtml">{body}</div>'
        if _PLAIN_DIV.fullmatch(div):
            taken += 1
            assert xhtml_problem(div) is None and has_content(div) and not html_problems(div), repr(div)
    assert taken > 1000


@pytest.mark.parametrize("wrapper", ["valueCodeableConcept", "valueCoding", "valuePeriod", "valueIdentifier"])
def test_extensions_nested_through_their_values_past_the_depth_limit_are_not_passed(wrapper: str) -> None:
    """An extension inside an extension's value is one level deeper, like one inside the
    extension: the gate's nesting stays bounded, so a resource the base rules find too deep
    (--max-depth) is never passed. Found by an adversarial tester: nesting restarted at level 0."""
    judge = Judge("R4")
    for levels in (1, 2, 3, 21, 40):
        inner: dict = {"url": "http://x.org/e", "valueString": "x"}
        for _ in range(levels):
            inner = {"url": "http://x.org/e", wrapper: {"extension": [inner]}}
        doc = _study(random.Random(levels))
        doc["extension"] = [inner]
        judge.compare(doc)
        if levels >= 21:
            assert any(r.rule.id == "input:too-deep" for r in judge.base.check(doc, {}))
            assert not judge.gate.passes(doc)
    assert judge.passed >= 1  # a shallow one is still passed (and compared)


@pytest.mark.parametrize("system", ["https://loinc.org/30746-2.HTML", "http://example.org/codes.pdf",
                                    "http://example.org/list.Doc?x=1"])  # fmt: skip
def test_a_coding_whose_system_is_a_document_address_is_refused_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, system: str
) -> None:
    from validator import Validator
    from validator.run import pipeline

    judge = Judge("R4")
    rng = random.Random(5)
    doc = _study(rng)
    doc["procedureCode"] = [{"coding": [{"system": system, "code": "30746-2"}]}]
    assert not judge.gate.passes(doc)  # the pipeline skips the document-address check for a passed one
    # In a run, after the gate is in use: the finding is given.
    monkeypatch.setattr(pipeline, "GATE_AFTER", 0)
    plain = [_study(rng) for _ in range(3)]
    for study in plain:
        study.pop("procedureCode", None)
    path = tmp_path / "studies.ndjson"
    path.write_text("".join(json.dumps(d, default=str) + "\n" for d in [*plain, doc]), encoding="utf-8")
    results = Validator(fhir_version="R4").validate_file(path)
    assert [i.rule for i in results[-1].issues].count("coding:system-is-a-page") == 1
    assert all("coding:system-is-a-page" not in [i.rule for i in r.issues] for r in results[:-1])


def test_the_gate_is_built_once_a_run_has_read_enough_text_however_few_resources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from validator import Validator
    from validator.run import pipeline

    calls = []
    real_passes = NativeGate.passes
    monkeypatch.setattr(NativeGate, "passes", lambda self, res, *rest: calls.append(1) or real_passes(self, res, *rest))
    study = _study(random.Random(6))
    padding = "x" * (pipeline.GATE_AFTER_BYTES // 2)  # two studies hold more text than the threshold
    study["description"] = padding
    paths = []
    for n in range(3):
        path = tmp_path / f"study{n}.json"
        path.write_text(json.dumps(study, default=str), encoding="utf-8")
        paths.append(str(path))
    Validator(fhir_version="R4").validate_paths(paths)
    assert len(calls) == 1  # the third, after 2 x 32 KB; never the first of a run
    calls.clear()
    study["description"] = "short"
    for path in paths:
        Path(path).write_text(json.dumps(study, default=str), encoding="utf-8")
    Validator(fhir_version="R4").validate_paths(paths)
    assert calls == []  # three small files: not worth building it


def test_common_code_systems_are_accepted_first_only_where_the_full_schema_accepts_them() -> None:
    from validator.evaluate.native_gate import _COMMON_SYSTEMS, _common_systems_first

    loinc_refused = {"type": "string", "not": {"pattern": "loinc"}}
    shortcut = _common_systems_first(loinc_refused)
    listed = shortcut["anyOf"][0]["enum"]
    assert "http://loinc.org" not in listed and set(listed) == set(_COMMON_SYSTEMS) - {"http://loinc.org"}
    assert _common_systems_first({"type": "integer"}) == {"type": "integer"}  # none accepted: left as it is


SYSTEMS_TRIED = ["http://loinc.org", "http://loinc.org/a.htm", "http://loinc.org ", "urn:ietf:rfc:3986",
                 "http://snomed.info/sct/page.PDF", "", "http://dicom.nema.org/resources/ontology/DCM"]  # fmt: skip


@pytest.mark.parametrize("system", SYSTEMS_TRIED)
def test_a_coding_system_is_judged_the_same_with_the_common_systems_first(system: str) -> None:
    from validator.evaluate import native_gate as ng

    doc = _study(random.Random(1))
    doc["procedureCode"][0]["coding"][0]["system"] = system
    judge = Judge("R4")
    expected = judge.gate.passes(doc)
    saved = ng._COMMON_SYSTEMS
    try:
        ng._COMMON_SYSTEMS = ()
        ng._accepted_systems.cache_clear()
        assert NativeGate(plan_for(VERSIONS["R4"]), 64).passes(doc) == expected
    finally:
        ng._COMMON_SYSTEMS = saved
        ng._accepted_systems.cache_clear()
    assert expected == (system in ("http://loinc.org", "urn:ietf:rfc:3986", "http://dicom.nema.org/resources/ontology/DCM"))
