"""FHIR version handling: explicit choice, detection from meta.profile and from the payload's shape,
one clear error for contradictory shapes, and the R5 and R6 packs on real payloads."""

from __future__ import annotations

import copy
import json
import time

import pytest
from typer.testing import CliRunner

from validator import Severity, Validator
from validator.cli import app

runner = CliRunner()
DCM = "http://dicom.nema.org/resources/ontology/DCM"


def _load(shared, folder: str, name: str) -> dict:
    return json.loads((shared / "examples" / folder / name).read_text())


@pytest.mark.parametrize(
    ("folder", "name", "version"),
    [
        ("r4", "ImagingStudy-example.json", "4.0.1"),
        ("r4", "ImagingStudy-example-xr.json", "4.0.1"),
        ("r5", "ImagingStudy-example.json", "5.0.0"),
        ("r5", "ImagingStudy-example-xr.json", "5.0.0"),
        ("imr", "ImagingStudy-ex-ImagingStudy.json", "4.0.1"),
    ],
)
def test_the_version_is_detected_without_a_flag(shared, folder, name, version) -> None:
    result = Validator().validate_resource(_load(shared, folder, name))
    assert result.fhir_version == version
    assert result.version_reason and "--fhir-version" not in result.version_reason
    assert not [i for i in result.issues if i.severity >= Severity.ERROR]


def test_meta_profile_tells_the_version(shared) -> None:
    result = Validator().validate_resource(_load(shared, "imr", "ImagingStudy-ex-ImagingStudy.json"))
    assert result.version_reason.startswith("meta.profile")


def test_the_official_r5_examples_are_clean_as_r5(shared) -> None:
    run = Validator(fhir_version="R5").validate_paths([str(shared / "examples" / "r5")])
    assert [(r.label, i.rule) for r in run.results for i in r.issues if i.severity >= Severity.ERROR] == []


def test_an_oid_sop_class_is_read_as_r6(shared) -> None:
    study = _load(shared, "r5", "ImagingStudy-example.json")
    for s in study["series"]:
        for inst in s.get("instance", []):
            inst["sopClass"] = inst["sopClass"]["code"]
    result = Validator().validate_resource(study)
    assert result.fhir_version == "6.0.0-cibuild" and "sopClass" in result.version_reason


def test_mixed_shapes_are_one_error_naming_the_versions(shared) -> None:
    study = _load(shared, "r4", "ImagingStudy-example-xr.json")
    study["reason"] = [{"concept": {"text": "pain"}}]  # R5 and R6 next to R4's procedureCode
    result = Validator().validate_resource(study)
    errors = [i for i in result.issues if i.severity >= Severity.ERROR]
    assert [i.rule for i in errors] == ["engine:version-mismatch"]
    assert "reason (R5/R6)" in errors[0].message
    assert not any(i.rule == "json:unknown-property" for i in result.issues)


def test_an_explicit_version_that_the_payload_contradicts_gives_hints(shared) -> None:
    result = Validator(fhir_version="R5").validate_resource(_load(shared, "r4", "ImagingStudy-example-xr.json"))
    rules = [i.rule for i in result.issues]
    assert rules.count("engine:version-mismatch") == 1 and "json:unknown-property" not in rules
    hints = [i.message for i in result.issues if i.rule == "engine:migration-hint"]
    assert "R4 procedureCode: in R5 use procedure.concept (CodeableReference)" in hints


def test_the_cli_reports_each_ist_invariant_with_its_key_and_text(tmp_path) -> None:
    study = {
        "resourceType": "ImagingStudy",
        "id": "r6",
        "status": "inactive",
        "subject": {"reference": "Patient/p"},
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
        "numberOfSeries": 3,
        "series": [
            {
                "uid": "1.2.3.1",
                "modality": {"coding": [{"system": DCM, "code": "CT"}]},
                "instance": [{"uid": "1.2.3.1.1", "sopClass": "urn:oid:1.2.840.10008.5.1.4.1.1.2"}],
            }
        ],
    }
    path = tmp_path / "r6.json"
    path.write_text(json.dumps(study))
    result = runner.invoke(app, ["validate", str(path), "--fhir-version", "R6"])
    assert result.exit_code == 1
    assert "[r6:ist-1]" in result.output and "series SHALL only be present if an identifier" in result.output
    assert "[r6:ist-3]" in result.output and "numberOfSeries value SHALL match" in result.output
    assert "inactive" not in result.output  # R6 allows status inactive


def _large_r6_study(series: int, per_series: int) -> dict:
    return {
        "resourceType": "ImagingStudy", "id": "large", "status": "available", "subject": {"reference": "Patient/p"},
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
        "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.3"}],
        "modality": [{"coding": [{"system": DCM, "code": "CT"}]}],
        "numberOfSeries": series, "numberOfInstances": series * per_series,
        "series": [{"uid": f"1.2.3.{n}", "numberOfInstances": per_series,
                    "modality": {"coding": [{"system": DCM, "code": "CT"}]},
                    "instance": [{"uid": f"1.2.3.{n}.{k}", "sopClass": "urn:oid:1.2.840.10008.5.1.4.1.1.2"}
                                 for k in range(per_series)]} for n in range(series)],
    }  # fmt: skip


def test_the_count_invariants_hold_and_fail_on_a_study_with_10000_instances() -> None:
    validator = Validator(fhir_version="R6")
    study = _large_r6_study(10, 1000)
    started = time.perf_counter()
    assert validator.validate_resource(study).issues == ()
    elapsed = time.perf_counter() - started  # reported, not asserted: speed is shown by the benchmark
    broken = copy.deepcopy(study)
    broken["series"][7]["instance"].pop()
    rules = {i.rule for i in validator.validate_resource(broken).issues}
    assert {"r6:ist-4", "r6:ist-6"} <= rules
    print(f"10,000-instance R6 study validated in {elapsed:.3f} s")


CONNECTION_TYPES = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"
R5_ENDPOINT = {
    "resourceType": "Endpoint",
    "id": "wado",
    "status": "active",
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">WADO-RS</div>'},
    "connectionType": [{"coding": [{"system": CONNECTION_TYPES, "code": "dicom-wado-rs"}]}],
    "payload": [
        {
            "type": [{"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "113014"}]}],
            "mimeType": ["application/dicom"],
        }
    ],
    "address": "https://pacs.example.org/dicomweb",
}


def test_an_r5_endpoint_is_detected_as_r5_without_fhir_version() -> None:
    result = Validator().validate_resource(dict(R5_ENDPOINT))
    assert result.fhir_version == "5.0.0"
    assert result.version_reason == "shape: connectionType as a CodeableConcept, payload (R5)"
    assert [i.rule for i in result.issues if i.severity >= Severity.WARNING] == []


def test_an_r5_endpoint_validated_as_r4_is_one_mismatch_with_hints() -> None:
    result = Validator(fhir_version="4.0.1").validate_resource(dict(R5_ENDPOINT))
    hint = "engine:migration-hint"
    assert [i.rule for i in result.issues] == ["engine:version-mismatch", hint, hint]


def _reference_markers(resource: dict, requested: str | None) -> list[tuple[str, tuple]]:
    """What version detection must find, marker by marker with find() (one walk per marker)."""
    from validator.select.version import find, markers

    found = [(m, p) for m in markers() if m.element.split(".", 1)[0] == resource.get("resourceType")
             and (p := find(resource, m)) is not None]  # fmt: skip
    if requested is not None:
        family = {requested, "R4", "R4B"} if requested in ("R4", "R4B") else {requested}
        found = [(m, p) for m, p in found if not m.versions & family]
    return [(f"{m.element}:{m.shape}", p) for m, p in found]


def _shape_mutants(resource: dict) -> list[dict]:
    """The payload with each version-telling element reshaped: R4, R5 and R6 shapes mixed."""
    out = []
    for change in (
        {"modality": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"}]}},
        {"modality": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"}},
        {"bodySite": {"concept": {"text": "chest"}}},
        {"instance": [{"uid": "1.2.3", "sopClass": "urn:oid:1.2.840.10008.5.1.4.1.1.2"},
                      {"uid": "1.2.4", "sopClass": {"system": "urn:ietf:rfc:3986", "code": "urn:oid:1.2"}}]},
    ):  # fmt: skip
        mutant = copy.deepcopy(resource)
        series = mutant.get("series") or [{}]
        mutant["series"] = [*series, {**copy.deepcopy(series[-1]), **copy.deepcopy(change)}]
        out.append(mutant)
    for extra in (
        {"procedureCode": [{"text": "x"}]},
        {"procedure": [{"concept": {"text": "x"}}]},
        {"modality": [{"coding": [{"code": "MR"}]}]},
        {"interpreter": [{"reference": "Practitioner/1"}]},
    ):
        out.append({**copy.deepcopy(resource), **extra})
    return out


def test_one_walk_for_all_markers_finds_what_one_walk_per_marker_finds(shared) -> None:
    from validator.select.version import _found, _tree, choose

    payloads = [json.loads(p.read_text()) for p in sorted((shared / "examples").rglob("*.json"))]
    payloads = [p for p in payloads if p.get("resourceType") in ("ImagingStudy", "Endpoint")]
    assert len(payloads) >= 5
    cases = [m for p in payloads for m in (p, *_shape_mutants(p))]
    for resource in cases:
        for requested in (None, "R4", "R4B", "R5", "R6", "R6-ballot3"):
            family = None if requested is None else frozenset(
                {requested, "R4", "R4B"} if requested in ("R4", "R4B") else {requested})  # fmt: skip
            got = [(f"{m.element}:{m.shape}", p) for m, p in _found(resource, _tree(resource["resourceType"], family))]
            assert got == _reference_markers(resource, requested), (resource.get("id"), requested)
            choice = choose(resource, requested)
            if requested is not None:
                assert [(f"{m.element}:{m.shape}", p) for m, p in choice.conflicts] == got
