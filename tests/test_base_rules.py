"""The base rules are one pass written once (validator/evaluate/base_rules.py): a resource conforms
when that pass reports nothing, and the findings of any other are what it reported. These tests
check what the design relies on: the pass keeps nothing from one resource to the next, each
resource is checked once (information notes included, with no second walk), the shortcuts of the
generated code only ever pass what the one definition of their check passes, and the binding
check is the same one for the base rules and the profiles.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import replace
from decimal import Decimal
from functools import cache
from unittest import mock

import pytest
from fixture_cases import BASES, _reshape, json_paths, load_cases
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from validator import Validator
from validator.api import plan_for
from validator.evaluate import check_source
from validator.evaluate.base_rules import BaseRules
from validator.evaluate.walk import ResourceWalk
from validator.fhir.jsontext import PositionIndex
from validator.fhir.primitives import JSON_KIND_TESTS, format_problem
from validator.fhirpath.expressions import EvalContext
from validator.limits import DEFAULT as DEFAULT_LIMITS
from validator.load import sources
from validator.load.sources import _split
from validator.select.version import markers
from validator.versions import VERSIONS

VALIDATORS = {v: Validator(fhir_version=v) for v in ("R4", "R5", "R6")}
BASE_RULES = {v: BaseRules(plan_for(VERSIONS[v]), DEFAULT_LIMITS.max_depth) for v in VALIDATORS}


def _base(version: str) -> BaseRules:
    return BASE_RULES[version]


def _findings(version: str, resource: dict, bundle: dict | None = None) -> list[tuple]:
    return [(i.rule.id, i.pointer, i.message) for i in _base(version).check(resource, bundle or {})]


def _inputs(payload: dict) -> list[tuple[dict, dict]]:
    """(resource, Bundle index) as the loader hands them to the checks."""
    items = _split("x.json", payload, PositionIndex(json.dumps(payload)), [])
    return [(i.resource, i.bundle) for i in items if i.problem is None and isinstance(i.resource, dict)]


@cache
def corpus() -> list[tuple[str, dict, dict]]:
    from conftest import require_shared

    out = []
    for case in load_cases():
        if isinstance(case.payload, dict) and not case.limits:
            version = case.version if case.version in VALIDATORS else "R4"
            out.extend((version, r, b) for r, b in _inputs(case.payload))
    examples = require_shared() / "examples"
    for version, folder in (("R4", "r4"), ("R5", "r5"), ("R4", "imr")):
        for path in sorted((examples / folder).glob("*.json")):
            out.extend((version, r, b) for r, b in _inputs(json.loads(path.read_text(encoding="utf-8"))))
    return out


def _valid_studies() -> list[tuple[str, dict]]:
    studies = []
    for version in ("R4", "R5", "R6"):
        study = _reshape(copy.deepcopy(BASES["study"]), version)
        study["identifier"] = [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.3.4"}]
        study["numberOfSeries"] = 1
        study["series"][0]["number"] = 1
        assert not _findings(version, study), version
        studies.append((version, study))
    return studies


VALID = _valid_studies()
ODD_VALUES = st.sampled_from(
    [None, "", " ", "x", "urn:oid:1.2.3", "#c", "Patient/p", "2024-13-01", 0, -1, 7, 10**30, True, Decimal("1.5"),
     [], {}, [None], [{}], {"id": "i"}, {"extension": []}, {"text": "t"}, {"system": "s", "code": "c"}, [None, "a"],
     {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "MR"}]}, ["a"], "inactive",
     [{"url": "http://e.org/x", "valueString": "a"}], [{"url": "http://e.org/x", "valueString": "a", "valueCode": "b"}],
     {"reference": "#p"}, [{"resourceType": "Patient", "id": "p"}], "1.2.3", "01.2", [{"id": "x"}, None]]
)  # fmt: skip
NAMES = st.sampled_from(["id", "status", "extension", "modifierExtension", "text", "contained", "identifier",
                         "uid", "number", "modality", "sopClass", "reference", "system", "code", "display",
                         "coding", "series", "instance", "_status", "value", "valueString", "resourceType",
                         "numberOfSeries", "numberOfInstances", "endpoint", "bogus", "div", "title", "_uid",
                         "_code", "_id", "valueBogus", "_subject", "type", "procedureCode"])  # fmt: skip


def _at(node: object, ptr: tuple) -> object:
    for step in ptr:
        node = node[step]  # type: ignore[index]
    return node


@st.composite
def mutated(draw) -> tuple[str, dict]:
    """A valid study, or any resource of the corpus (with contained resources, extensions, IMR
    shapes, R5 and R6 forms), with one to three random changes."""
    version, study = draw(st.one_of(st.sampled_from(VALID), st.sampled_from([(v, r) for v, r, _b in corpus()])))
    study = copy.deepcopy(study)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        ptr = draw(st.sampled_from(json_paths(study)))
        target = _at(study, ptr)
        action = draw(st.sampled_from(["set", "add", "delete", "wrap", "unwrap", "duplicate"]))
        if isinstance(target, dict) and action in ("set", "add"):
            target[draw(NAMES)] = copy.deepcopy(draw(ODD_VALUES))
        elif ptr and action == "delete":
            parent = _at(study, ptr[:-1])
            del parent[ptr[-1]]
        elif ptr and action == "wrap":
            _at(study, ptr[:-1])[ptr[-1]] = [target]
        elif ptr and action == "unwrap" and isinstance(target, list) and target:
            _at(study, ptr[:-1])[ptr[-1]] = target[0]
        elif isinstance(target, list) and target and action == "duplicate":
            target.append(copy.deepcopy(target[0]))
        elif ptr:
            _at(study, ptr[:-1])[ptr[-1]] = copy.deepcopy(draw(ODD_VALUES))
    return version, study


# -- one pass, no state kept between resources ---------------------------------------------------------
def test_the_corpus_has_conformant_resources_and_resources_with_findings() -> None:
    found = [bool(_findings(version, r, b)) for version, r, b in corpus()]
    assert found.count(False) >= 50 and found.count(True) >= 200, (found.count(False), found.count(True))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), mutated())
def test_the_findings_on_a_resource_do_not_depend_on_the_resource_checked_before(case, other) -> None:
    """The pass keeps per-resource state (notes given once, the depth limit reported once, the
    keys counted): none of it may leak into the next resource."""
    version, study = case
    alone = _findings(version, study)
    _base(version).check(other[1], {})
    assert _findings(version, study) == alone


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_every_finding_points_into_the_payload_or_at_a_missing_child_of_it(case) -> None:
    version, study = case
    for rule_id, pointer, _message in _findings(version, study):
        parent = study
        for n, step in enumerate(pointer):
            listed = isinstance(parent, list) and isinstance(step, int) and step < len(parent)
            if listed or (isinstance(parent, dict) and step in parent):
                parent = parent[step]
            else:
                assert n == len(pointer) - 1, (rule_id, pointer)  # only the last step may be missing


def test_a_study_is_checked_once_even_when_its_only_findings_are_information_notes(tmp_path) -> None:
    """A binding to a value set that is not bundled (meta.security, procedureCode) is noted from
    the one pass: the study is not walked again, nor parsed again."""
    study = copy.deepcopy(VALID[0][1])
    study["meta"] = {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"}]}
    # An accession identifier's type is checked against the bundled Identifier Type Codes: no note.
    study["identifier"][0]["type"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                  "code": "ACSN"}]}  # fmt: skip
    study["procedureCode"] = [{"text": "CT chest"}]
    path = tmp_path / "s.json"
    path.write_text(json.dumps(study, indent=1))
    validator = Validator(fhir_version="R4")
    checks = []
    original = BaseRules.check

    def counted(self: BaseRules, r: dict, b: dict, *clean: object) -> list:
        return checks.append(r) or original(self, r, b, *clean)  # type: ignore[func-returns-value]

    with mock.patch.object(BaseRules, "check", counted), \
         mock.patch("validator.load.sources.parse", wraps=sources.parse) as parse, \
         mock.patch("validator.load.sources.parse_checked", wraps=sources.parse_checked) as parse_exact:  # fmt: skip
        issues = validator.validate_paths([str(path)]).results[0].issues
    assert [(i.rule, i.severity.label, i.line is not None) for i in issues] == [
        ("engine:binding-not-checked", "information", True),
        ("engine:binding-not-checked", "information", True),
    ]
    assert len(checks) == 1 and parse.call_count + parse_exact.call_count == 1


# -- versions ----------------------------------------------------------------------------------------
SHAPES = {
    "present": {"text": "x"},
    "coding": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"},
    "codeableConcept": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"}]},
    "codeableReference": {"concept": {"text": "x"}},
    "string": "urn:oid:1.2.840.10008.5.1.4.1.1.2",
}


def _with_marker(study: dict, element: str, shape: str) -> dict:
    study = copy.deepcopy(study)
    steps = element.split(".")[1:]
    node = study
    for step in steps[:-1]:
        node = node[step][0] if isinstance(node[step], list) else node[step]
    value = shape[6:] if shape.startswith("value:") else SHAPES[shape]
    node[steps[-1]] = value
    return study


MARKER_CASES = [
    (m.element, m.shape, version)
    for m in markers()
    for version in ("R4", "R5", "R6")
    if version not in m.versions and not (version == "R4" and "R4B" in m.versions)
]


@pytest.mark.parametrize(("element", "shape", "version"), MARKER_CASES)
def test_a_payload_with_another_versions_shape_breaks_some_rule_of_the_requested_version(
    element, shape, version
) -> None:
    """The API looks for version markers only in a payload the base rules find something in:
    sound only if every marker of another version breaks some rule."""
    study = next(s for v, s in VALID if v == version)
    assert _findings(version, _with_marker(study, element, shape)), f"{element} as {shape} breaks no {version} rule"


# -- the shortcuts of the generated checks ------------------------------------------------------------
SAMPLES = ["", " ", "a", "a b", " a", "1", "01", "1.2", "1.2.840.10008.5.1.4.1.1.2", "urn:oid:1.2.3", "2024",
           "2024-02-30", "2024-03-14T09:30:00+01:00", "2024-03-14T09:30", "09:30:00", "http://e.org/x",
           "x" * 70, "x" * 1_048_577, "QUJD", "QUJ", "#p", "Patient/p", "-5", "\u00e9", "a\u0000b", 0, -1, 1,
           2**31, -(2**31) - 1, Decimal("1.5"), Decimal("-0"), Decimal("1E+3"), True, False]  # fmt: skip


@pytest.mark.parametrize("version", ["R4", "R5", "R6"])
def test_the_format_shortcut_passes_exactly_the_values_format_problem_passes(version) -> None:
    plan = plan_for(VERSIONS[version])
    source = check_source.CheckSource(None, plan, 10, [0])
    checked = 0
    for ptype in plan.primitives.values():
        shortcut = source._format_shortcut(ptype)
        if shortcut is None:
            continue
        test = eval(f"lambda x: {shortcut}", source._ns)  # the namespace the generated code runs in
        kind = eval(f"lambda x: {JSON_KIND_TESTS[ptype.json]}", source._ns)
        for value in SAMPLES:
            if kind(value):
                assert test(value) == (format_problem(ptype, value) is None), (ptype.name, value)
                checked += 1
    assert checked > 100


# -- one binding check for the base rules and the profiles --------------------------------------------
def test_the_base_rules_and_the_profiles_report_a_binding_alike() -> None:
    plan = plan_for(VERSIONS["R4"])
    struct = plan.structures["ImagingStudy"]
    el, tcode = struct.props["status"]
    study = copy.deepcopy(VALID[0][1])
    study["status"] = "done"
    [base] = [i for i in _base("R4").check(study, {}) if i.rule is el.binding.rule]
    walk = ResourceWalk(plan, EvalContext(root=study))
    walk.check_binding(el.binding, "done", tcode, ("status",), el.path)
    [profiled] = walk.issues
    assert (profiled.rule, profiled.pointer, profiled.message) == (base.rule, base.pointer, base.message)


# -- end to end ------------------------------------------------------------------------------------------
def _never_trusted(text: str) -> int:
    return -1  # no key count matches: every plain parse is parsed again, precisely


def test_every_fixture_gives_the_same_report_whether_the_plain_parse_is_trusted_or_not(tmp_path) -> None:
    """With profiles, version detection, DICOM rules, limits and --dicom folders: trusting the
    plain parse when the base rules counted every key changes no finding, message or position."""
    from fixture_cases import dicom_folder, write_case

    from validator.limits import Limits

    def run_all() -> list:
        out = []
        for n, case in enumerate(load_cases()):
            folder = dicom_folder(case.dicom_files) if case.dicom_files else None
            v = Validator(fhir_version=case.version, profiles=case.profiles, dicom_files=folder,
                          limits=Limits(**dict(case.limits)))  # fmt: skip
            (tmp_path / str(n)).mkdir(exist_ok=True)
            path = write_case(case, tmp_path / str(n))
            out.append([replace(r, duration=0.0) for r in v.validate_paths([str(path)]).results])
        return out

    trusted = run_all()
    with mock.patch("validator.run.pipeline.key_tokens", _never_trusted):
        assert run_all() == trusted


AUTO, IMR = Validator(), Validator(profiles=["imr"])


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(mutated(), st.sampled_from(["requested", "auto", "imr"]), st.sampled_from([None, 1]), st.data())
def test_on_mutated_files_the_report_is_the_same_whether_the_plain_parse_is_trusted_or_not(
    tmp_path, case, mode, indent, data
) -> None:
    """On files with repeated keys too: a key written twice is one key fewer in the parsed tree."""
    version, study = case
    validator = {"requested": VALIDATORS[version], "auto": AUTO, "imr": IMR}[mode]
    text = json.dumps(study, indent=indent, default=str)
    if data.draw(st.booleans()):
        keys = list(re.finditer(r'"[A-Za-z_]+": [^{\[]*?(?=[,}\n])', text))
        if keys:
            m = data.draw(st.sampled_from(keys))
            text = text[: m.end()] + ", " + m.group(0) + text[m.end() :]
    path = tmp_path / f"{data.draw(st.integers(0, 10**9))}.json"
    path.write_text(text)

    def report() -> list:
        return [replace(r, duration=0.0) for r in validator.validate_paths([str(path)]).results]

    trusted = report()
    with mock.patch("validator.run.pipeline.key_tokens", _never_trusted):
        assert report() == trusted
