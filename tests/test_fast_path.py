"""The fast path says "nothing to report" only when the engine's walk finds nothing.

A wrong "yes" would hide findings, so it is checked on every payload of the fixture corpus (each
rule has failing fixtures), on the official examples, and on random mutations of valid studies in
R4, R5 and R6. A wrong "no" only costs time; the corpus shows it is rare.
"""

from __future__ import annotations

import copy
import json
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
from validator.evaluate.walk import ResourceWalk
from validator.fhir.jsontext import PositionIndex
from validator.fhirpath.expressions import EvalContext
from validator.load.sources import _split
from validator.select.version import markers
from validator.versions import VERSIONS

VALIDATORS = {v: Validator(fhir_version=v) for v in ("R4", "R5", "R6")}


def _inputs(payload: dict) -> list[tuple[dict, dict]]:
    """(resource, Bundle index) as the loader hands them to the engine."""
    items = _split("x.json", payload, PositionIndex(json.dumps(payload)), [])
    return [(i.resource, i.bundle) for i in items if i.problem is None and isinstance(i.resource, dict)]


def _walk_findings(version: str, resource: dict, bundle: dict) -> list[str]:
    walk = ResourceWalk(plan_for(VERSIONS[version]), EvalContext(root=resource, bundle=bundle))
    return [f"{i.rule.id} {i.message}" for i in walk.run(resource)]


def _fast(version: str, resource: object, bundle: dict) -> bool:
    v = VALIDATORS[version]
    return v.pipeline.fast(v.pipeline.selector.initial()).is_clean(resource, bundle)


def _has_companions(node: object) -> bool:
    if isinstance(node, dict):
        return any(k.startswith("_") for k in node) or any(_has_companions(v) for v in node.values())
    return isinstance(node, list) and any(_has_companions(v) for v in node)


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


def test_the_fast_path_never_passes_a_resource_the_engine_finds_something_in() -> None:
    passed = failed = 0
    for version, resource, bundle in corpus():
        findings = _walk_findings(version, resource, bundle)
        if _fast(version, resource, bundle):
            assert not findings, f"fast path passed a resource with findings: {findings[:3]} in {resource}"
            passed += 1
        elif findings:
            failed += 1
    assert passed >= 50 and failed >= 200, (passed, failed)


def test_the_fast_path_passes_every_clean_resource_without_primitive_extensions() -> None:
    missed = [
        resource
        for version, resource, bundle in corpus()
        if not _has_companions(resource)
        and not _walk_findings(version, resource, bundle)
        and not _fast(version, resource, bundle)
    ]
    assert not missed, f"{len(missed)} clean resources took the slow path, e.g. {missed[0]}"


# -- mutations -------------------------------------------------------------------------------------
def _valid_studies() -> list[tuple[str, dict]]:
    studies = []
    for version in ("R4", "R5", "R6"):
        study = _reshape(copy.deepcopy(BASES["study"]), version)
        study["identifier"] = [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.3.4"}]
        study["numberOfSeries"] = 1
        study["series"][0]["number"] = 1
        assert not _walk_findings(version, study, {}), version
        studies.append((version, study))
    return studies


VALID = _valid_studies()
ODD_VALUES = st.sampled_from(
    [None, "", " ", "x", "urn:oid:1.2.3", "#c", "Patient/p", "2024-13-01", 0, -1, 7, 10**30, True, Decimal("1.5"),
     [], {}, [None], [{}], {"id": "i"}, {"extension": []}, {"text": "t"}, {"system": "s", "code": "c"},
     {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "MR"}]}, ["a"], "inactive",
     [{"url": "http://e.org/x", "valueString": "a"}], [{"url": "http://e.org/x", "valueString": "a", "valueCode": "b"}],
     {"reference": "#p"}, [{"resourceType": "Patient", "id": "p"}], "1.2.3", "01.2"]
)  # fmt: skip
NAMES = st.sampled_from(["id", "status", "extension", "modifierExtension", "text", "contained", "identifier",
                         "uid", "number", "modality", "sopClass", "reference", "system", "code", "display",
                         "coding", "series", "instance", "_status", "value", "valueString", "resourceType",
                         "numberOfSeries", "numberOfInstances", "endpoint", "bogus", "div", "title"])  # fmt: skip


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


TRICKY = {
    "two choice types": {"extension": [{"url": "http://e.org/x", "valueString": "a", "valueCode": "b"}]},
    "extension without value": {"extension": [{"url": "http://e.org/x"}]},
    "modifier extension": {"modifierExtension": [{"url": "http://e.org/x", "valueBoolean": True}]},
    "two DICOM study UIDs": {"identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.3"},
                                            {"system": "urn:dicom:uid", "value": "urn:oid:1.2.4"}]},
    "nested contained": {"contained": [{"resourceType": "Patient", "id": "p",
                                        "contained": [{"resourceType": "Patient", "id": "q"}]}],
                         "subject": {"reference": "#p"}},
    "contained not referenced": {"contained": [{"resourceType": "Patient", "id": "p"}]},
    "local reference to nothing": {"subject": {"reference": "#nothing"}},
    "reference to a wrong type": {"subject": {"reference": "Observation/o"}},
    "reference with a wrong type": {"subject": {"reference": "Patient/p", "type": "Observation"}},
    "narrative without div": {"text": {"status": "generated"}},
    "narrative with script": {"text": {"status": "generated",
                                       "div": '<div xmlns="http://www.w3.org/1999/xhtml"><script>x</script></div>'}},
    "meta with a version in contained": {"contained": [{"resourceType": "Patient", "id": "p",
                                                        "meta": {"versionId": "1"}}], "subject": {"reference": "#p"}},
    "status outside its value set": {"status": "done"},
    "negative count": {"numberOfSeries": -1},
    "empty identifier": {"identifier": [{}]},
    "only an id": {"subject": {"id": "x"}},
    "a float count": {"numberOfSeries": Decimal("1.0")},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(TRICKY))
@pytest.mark.parametrize("version", ["R4", "R5", "R6"])
def test_on_tricky_payloads_the_fast_path_and_the_engine_agree(name, version) -> None:
    study = copy.deepcopy(next(s for v, s in VALID if v == version))
    study.update(copy.deepcopy(TRICKY[name]))
    assert _fast(version, study, {}) == (not _walk_findings(version, study, {}))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_on_mutated_studies_the_fast_path_and_the_engine_agree(case) -> None:
    version, study = case
    findings = _walk_findings(version, study, {})
    fast = _fast(version, study, {})
    if fast:
        assert not findings, f"fast path passed a study with findings: {findings[:3]}"
    elif not findings:
        assert _has_companions(study), f"a clean study took the slow path: {study}"


# -- version markers -------------------------------------------------------------------------------
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
def test_a_payload_with_another_versions_shape_never_takes_the_fast_path(element, shape, version) -> None:
    """The API skips looking for version markers when a payload passes the fast path under the
    requested version: sound only if every marker of another version breaks some rule."""
    study = next(s for v, s in VALID if v == version)
    payload = _with_marker(study, element, shape)
    assert _walk_findings(version, payload, {}), f"{element} as {shape} breaks no {version} rule"
    assert not _fast(version, payload, {})


def test_every_fixture_gives_the_same_report_with_and_without_the_fast_path(tmp_path) -> None:
    """End to end, with profiles, version detection, DICOM rules, limits and --dicom folders: the
    fast path changes no finding, no message and no position."""
    from fixture_cases import dicom_folder, write_case

    from validator.evaluate.fast_path import FastPath
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

    fast = run_all()
    with mock.patch.object(FastPath, "is_clean", lambda self, resource, bundle: False):
        slow = run_all()
    assert fast == slow


AUTO, IMR = Validator(), Validator(profiles=["imr"])


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(mutated(), st.sampled_from(["requested", "auto", "imr"]), st.sampled_from([None, 1]), st.data())
def test_on_mutated_files_the_whole_report_is_the_same_with_and_without_the_fast_path(
    tmp_path, case, mode, indent, data
) -> None:
    """End to end on files: plain parsing, version detection, profiles, DICOM rules."""
    version, study = case
    validator = {"requested": VALIDATORS[version], "auto": AUTO, "imr": IMR}[mode]
    path = tmp_path / f"{data.draw(st.integers(0, 10**9))}.json"
    path.write_text(json.dumps(study, indent=indent, default=str))

    def report() -> list:
        return [replace(r, duration=0.0) for r in validator.validate_paths([str(path)]).results]

    fast = report()
    from validator.evaluate.fast_path import FastPath

    with mock.patch.object(FastPath, "is_clean", lambda self, resource, bundle: False):
        assert report() == fast
