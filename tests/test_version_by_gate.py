"""A resource the R4 native gate passes is read as R4 without the search for every version
marker (select/version.py choose_r4_shaped; run/pipeline.py): the gate must refuse every shape
of another version, and the reason given must be the one the full search gives."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import pytest
from test_native_gate import _documents, _mutate, _resources, _study

from validator import Validator
from validator.compile.catalog import plan_for
from validator.evaluate.base_rules import BaseRules
from validator.evaluate.native_gate import NativeGate
from validator.run import pipeline
from validator.select import selection as selection_module
from validator.select.version import Marker, choose, choose_r4_shaped, find, markers
from validator.versions import VERSIONS

pytestmark = pytest.mark.skipif(not NativeGate.available(), reason="jsonschema-rs is not installed")

DCM = "http://dicom.nema.org/resources/ontology/DCM"
# A value of each shape a marker names, as another version writes it.
SHAPED: dict[str, object] = {
    "codeableConcept": {"coding": [{"system": DCM, "code": "CT"}]},
    "codeableReference": {"concept": {"coding": [{"system": "http://snomed.info/sct", "code": "51185008"}]}},
    "string": "urn:oid:1.2.840.10008.5.1.4.1.1.2",
    "coding": {"system": DCM, "code": "CT"},
}
ENDPOINT = {
    "resourceType": "Endpoint", "id": "e1", "status": "active",
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">PACS</div>'},
    "connectionType": {"system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                       "code": "dicom-wado-rs"},
    "payloadType": [{"text": "DICOM"}], "address": "https://pacs.example.org/wado-rs",
}  # fmt: skip


def _excluding_r4() -> list[Marker]:
    return [m for m in markers() if "R4" not in m.versions]


def _holding(marker: Marker) -> dict:
    """A valid R4 resource (as the gate sees it) with the marker made to hold."""
    rtype, *steps = marker.element.split(".")
    doc = _study(random.Random(1)) if rtype == "ImagingStudy" else copy.deepcopy(ENDPOINT)
    if marker.shape.startswith("value:"):
        value: object = marker.shape[6:]
    elif marker.shape == "present":
        value = [SHAPED["codeableReference"]]
    else:
        value = SHAPED[marker.shape]
    node = doc
    for step in steps[:-1]:
        node = node[step][0] if isinstance(node[step], list) else node[step]
    node[steps[-1]] = value
    return doc


@pytest.mark.parametrize("marker", _excluding_r4(), ids=lambda m: f"{m.element}-{m.shape}")
def test_every_shape_of_another_version_is_refused_by_the_r4_gate(marker: Marker) -> None:
    doc = _holding(marker)
    assert find(doc, marker) is not None  # the marker does hold in it
    assert choose(doc, None).version != "R4" or choose(doc, None).conflicts
    assert not NativeGate(plan_for(VERSIONS["R4"]), 64).passes(doc)


def test_the_gate_passes_the_study_the_refusals_are_made_from() -> None:
    """The refusals above are of the marker, not of a study the gate would refuse anyway."""
    gate = NativeGate(plan_for(VERSIONS["R4"]), 64)
    assert gate.passes(_study(random.Random(1)))
    assert gate.passes(copy.deepcopy(ENDPOINT))


def _r4_shaped(resource: dict) -> bool:
    return not any(find(resource, m) for m in _excluding_r4())


def _variants(rng: random.Random) -> list[dict]:
    """Studies holding some of the R4 markers and not others, in lists, nested lists, nulls."""
    out = []
    for _ in range(400):
        doc = _study(rng)
        for key in ("procedureCode", "modality", "referrer", "series"):
            if rng.random() < 0.3:
                doc.pop(key, None)
        for key, value in (("procedureReference", {"reference": "Procedure/p"}), ("reasonCode", [{"text": "x"}]),
                           ("reasonReference", [{"reference": "Condition/c"}]), ("interpreter", [{"display": "x"}]),
                           ("procedureCode", []), ("procedureCode", None), ("modality", [{"display": "CT"}]),
                           ("modality", [[{"system": DCM, "code": "CT"}]])):  # fmt: skip
            if rng.random() < 0.15:
                doc[key] = copy.deepcopy(value)
        for s in doc.get("series") or []:
            nested = [[{"uid": "1.2", "sopClass": {"code": "x"}}]]
            for key, value in (("modality", None), ("modality", {"display": "x"}), ("bodySite", None),
                               ("laterality", {"system": "http://snomed.info/sct", "code": "7771000"}),
                               ("instance", []), ("instance", nested)):  # fmt: skip
                if rng.random() < 0.2:
                    s[key] = copy.deepcopy(value)
        if rng.random() < 0.3:
            _mutate(doc, rng)
        out.append(doc)
    return out


def test_the_reason_read_from_an_r4_shaped_resource_is_the_one_the_full_search_gives() -> None:
    compared = 0
    docs = [r for d in _documents() for r in _resources(d)] + _variants(random.Random(5))
    for doc in docs:
        if isinstance(doc.get("resourceType"), str) and _r4_shaped(doc):
            assert choose_r4_shaped(doc) == choose(doc, None), json.dumps(doc, default=str)[:1500]
            compared += 1
    assert compared > 300


def test_a_resource_the_r4_gate_passes_is_one_the_full_search_reads_as_r4_with_that_reason() -> None:
    plan = plan_for(VERSIONS["R4"])
    gate, base = NativeGate(plan, 64), BaseRules(plan, 64)
    passed = 0
    for doc in [r for d in _documents() for r in _resources(d)] + _variants(random.Random(6)):
        residual = gate.residual_needed(doc) and base.check_members(doc, {}, gate.residual)
        if gate.passes(doc) and not residual:
            passed += 1
            assert choose(doc, None) == choose_r4_shaped(doc), json.dumps(doc, default=str)[:1500]
    assert passed > 100


def _ndjson(tmp_path: Path, docs: list[dict]) -> Path:
    path = tmp_path / "studies.ndjson"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    return path


def test_a_run_reads_r4_studies_the_gate_passes_without_the_full_marker_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(7)
    path = _ndjson(tmp_path, [_study(rng) for _ in range(20)])
    calls: list[dict] = []
    real = selection_module.choose

    def counted(res: dict, requested: str | None) -> object:
        calls.append(res)
        return real(res, requested)

    monkeypatch.setattr(selection_module, "choose", counted)
    monkeypatch.setattr(pipeline, "GATE_AFTER", 0)
    report = Validator(fhir_version=None).validate_paths([str(path)])
    assert [r.fhir_version for r in report.results] == ["4.0.1"] * 20
    assert all(r.version_reason.startswith("shape: procedureCode") for r in report.results)
    assert calls == []


def test_a_study_of_another_version_is_still_read_as_that_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = _study(random.Random(8))
    doc["modality"] = [{"coding": [{"system": DCM, "code": "CT"}]}]
    for s in doc["series"]:
        s["modality"] = {"coding": [{"system": DCM, "code": "CT"}]}
        s["bodySite"] = {"concept": {"coding": [{"system": "http://snomed.info/sct", "code": "51185008"}]}}
    doc.pop("procedureCode")
    monkeypatch.setattr(pipeline, "GATE_AFTER", 0)
    report = Validator(fhir_version=None).validate_paths([str(_ndjson(tmp_path, [doc]))])
    assert report.results[0].fhir_version == "5.0.0"


def test_a_study_that_declares_a_profile_takes_its_version_from_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = _study(random.Random(9))
    doc["meta"] = {"profile": ["https://profiles.ihe.net/RAD/IMR/StructureDefinition/imr-imagingstudy"]}
    monkeypatch.setattr(pipeline, "GATE_AFTER", 0)
    report = Validator(fhir_version=None).validate_paths([str(_ndjson(tmp_path, [doc]))])
    assert report.results[0].version_reason.startswith("meta.profile")


def test_with_r4_asked_for_a_study_the_gate_passes_is_not_searched_for_other_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    passed = _study(random.Random(1))  # one the gate passes (test above)
    r5 = copy.deepcopy(passed)
    r5["modality"] = [{"coding": [{"system": DCM, "code": "CT"}]}]
    path = _ndjson(tmp_path, [passed] * 5 + [r5])
    calls: list[dict] = []
    real = selection_module.choose
    monkeypatch.setattr(selection_module, "choose", lambda res, requested: calls.append(res) or real(res, requested))
    monkeypatch.setattr(pipeline, "GATE_AFTER", 0)
    report = Validator(fhir_version="R4").validate_paths([str(path)])
    assert all("engine:version-mismatch" not in {i.rule for i in r.issues} for r in report.results[:5])
    assert calls == [r5]  # only the study the gate refused was searched, and its R5 shape is reported
    assert "engine:version-mismatch" in {i.rule for i in report.results[5].issues}
