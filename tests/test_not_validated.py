"""Not validated is not passed: a resource type without rules (a Patient in a Bundle) has its own
status in every report, is counted apart in the summary, and is a skipped JUnit test case."""

from __future__ import annotations

import json

from validator import Validator
from validator.report import html_report, json_report, junit, text

PATIENT = "urn:uuid:6c8e1f0a-1b2c-4d3e-8f90-a1b2c3d4e5f6"
BUNDLE = {
    "resourceType": "Bundle",
    "type": "collection",
    "entry": [
        {"fullUrl": PATIENT, "resource": {"resourceType": "Patient", "id": "p1", "name": [{"family": "Muster"}]}},
        {
            "fullUrl": "urn:uuid:0f9e8d7c-6b5a-4493-8271-605f4e3d2c1b",
            "resource": {
                "resourceType": "ImagingStudy",
                "id": "s1",
                "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">CT</div>'},
                "status": "available",
                "subject": {"reference": PATIENT},
            },
        },
    ],
}


def _run(tmp_path):
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(BUNDLE))
    return Validator().validate_paths([str(path)])


def test_a_patient_in_a_bundle_is_not_validated_and_counted_apart(tmp_path) -> None:
    run = _run(tmp_path)
    assert [r.status(run.fail_on) for r in run.results] == ["not-validated", "pass"]
    assert run.results[0].not_validated == "no rule pack for Patient (FHIR R4): it was read, not validated"
    summary = run.summary()
    assert (summary["failedResources"], summary["notValidatedResources"], summary["status"]) == (0, 1, "pass")


def test_every_report_shows_the_not_validated_status(tmp_path) -> None:
    run = _run(tmp_path)
    console = text.render(run)
    assert "  NOT VALIDATED Patient/p1 (entry 0)" in console and "0 failed, 1 not validated" in console
    assert [r["status"] for r in json.loads(json_report.render(run))["results"]] == ["not-validated", "pass"]
    xml = junit.render(run)
    xml = xml.decode() if isinstance(xml, bytes) else xml
    assert 'skipped="1"' in xml and "not validated: no rule pack for Patient" in xml
    page = html_report.render(run)
    assert '<span class="status not-validated">NOT-VALIDATED</span> Patient/p1' in page


def test_an_unreadable_patient_fails_rather_than_not_validated(tmp_path) -> None:
    path = tmp_path / "patient.json"
    path.write_text('{"resourceType": "Patient", "id": ')
    run = Validator().validate_paths([str(path)])
    assert [r.status(run.fail_on) for r in run.results] == ["fail"]
