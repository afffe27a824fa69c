"""The DICOM pack: each defect of the issue is reported with a message naming the DICOM rule; the
official examples stay free of errors; the pack can be turned off and its severities changed;
--dicom cross-checks a study built from real DICOM headers; the UID syntax of PS3.5 9.1."""

from __future__ import annotations

import copy
import json

import pytest
from fixture_cases import CT_STUDY_UID, dicom_folder, study_from_dicom
from typer.testing import CliRunner

from validator import Severity, Validator
from validator.cli import app
from validator.dicom.registry import sop_classes_by_keyword
from validator.dicom.uids import uid_problem

runner = CliRunner()
DCM = "http://dicom.nema.org/resources/ontology/DCM"
CT = {"system": "urn:ietf:rfc:3986", "code": "urn:oid:1.2.840.10008.5.1.4.1.1.2"}
STUDY = {
    "resourceType": "ImagingStudy",
    "id": "why",
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
    "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.3"}],
    "status": "available",
    "subject": {"reference": "Patient/p"},
    "series": [
        {
            "uid": "1.2.3.1",
            "modality": {"system": DCM, "code": "CT"},
            "instance": [
                {"uid": "1.2.3.1.1", "sopClass": CT},
                {"uid": "1.2.3.1.2", "sopClass": CT},
                {"uid": "1.2.3.1.3", "sopClass": CT},
            ],
        }
    ],
}


def _issues(validator: Validator, study: dict) -> list[tuple[str, str, str]]:
    return [(i.rule, i.expression, i.message) for i in validator.validate_resource(study).issues
            if i.severity >= Severity.WARNING]  # fmt: skip


def _with(change) -> dict:
    study = copy.deepcopy(STUDY)
    change(study)
    return study


WHY = [
    (
        "a UID component with a leading zero",
        lambda s: s["series"][0].update(uid="1.2.03.4"),
        "dicom:uid-syntax",
        "PS3.5 9.1",
    ),
    (
        "a UID with letters",
        lambda s: s["series"][0]["instance"][0].update(uid="1.2.abc"),
        "dicom:uid-syntax",
        "PS3.5 9.1",
    ),
    (
        "a Study UID without urn:oid",
        lambda s: s["identifier"][0].update(value="1.2.3"),
        "dicom:study-uid-urn",
        "urn:oid",
    ),
    (
        "a series that claims 2 instances and lists 3",
        lambda s: s["series"][0].update(numberOfInstances=2),
        "dicom:series-number-of-instances",
        "claims 2 instance(s) but lists 3",
    ),
    (
        "the same SOP Instance UID twice",
        lambda s: s["series"][0]["instance"][1].update(uid="1.2.3.1.1"),
        "dicom:instance-uid-unique",
        "PS3.3 C.12.1",
    ),
    (
        "a CT Image Storage instance in an MR series",
        lambda s: s["series"][0]["modality"].update(code="MR"),
        "dicom:sop-class-modality",
        "CT Image Storage",
    ),
]


@pytest.mark.parametrize(("defect", "change", "rule", "named"), WHY, ids=[w[0] for w in WHY])
def test_each_defect_of_the_issue_is_reported_naming_the_dicom_rule(validator, defect, change, rule, named) -> None:
    found = _issues(validator, _with(change))
    hits = [m for r, _, m in found if r == rule]
    assert hits, f"{defect}: {found}"
    assert named in hits[0]


def test_a_wado_rs_endpoint_pointing_at_another_study_is_an_error(validator) -> None:
    endpoint = {
        "resourceType": "Endpoint",
        "id": "e",
        "status": "active",
        "payloadType": [{"text": "DICOM"}],
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">e</div>'},
        "connectionType": {
            "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
            "code": "dicom-wado-rs",
        },
        "address": "https://pacs.example.org/dicom-web/studies/9.8.7",
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "https://x.org/fhir/ImagingStudy/why",
                "resource": _with(lambda s: s.update(endpoint=[{"reference": "Endpoint/e"}])),
            },
            {"fullUrl": "https://x.org/fhir/Endpoint/e", "resource": endpoint},
        ],
    }
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "b.json"
        path.write_text(json.dumps(bundle))
        study_result = validator.validate_file(path)[0]
    hits = [i for i in study_result.issues if i.rule == "dicom:wado-study"]
    assert hits and "PS3.18" in hits[0].message and hits[0].expression == "ImagingStudy.endpoint[0].reference"


def test_the_official_and_imr_examples_have_no_dicom_error(validator, shared) -> None:
    run = validator.validate_paths([str(shared / "examples" / "r4"), str(shared / "examples" / "imr")])
    errors = [(r.label, i.rule) for r in run.results for i in r.issues if i.severity >= Severity.ERROR]
    assert errors == []


def test_the_dicom_rules_can_be_turned_off() -> None:
    study = _with(lambda s: s["series"][0].update(uid="1.2.03.4"))
    assert not any(r.startswith("dicom:") for r, _, _ in _issues(Validator(dicom=False), study))


def test_a_rule_severity_can_be_changed() -> None:
    study = _with(lambda s: s["identifier"].append({"system": "urn:dicom:uid", "value": "urn:oid:1.2.3.1"}))
    default = Validator().validate_resource(study).issues
    raised = Validator(severity={"dicom:uid-level-reuse": Severity.ERROR}).validate_resource(study).issues
    assert [i.severity for i in default if i.rule == "dicom:uid-level-reuse"] == [Severity.WARNING]
    assert [i.severity for i in raised if i.rule == "dicom:uid-level-reuse"] == [Severity.ERROR]


def test_the_cli_changes_a_severity_and_refuses_an_unknown_rule(tmp_path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(_with(lambda s: s["series"][0].update(numberOfInstances=2))))
    assert runner.invoke(app, ["validate", str(path)]).exit_code == 0
    assert (
        runner.invoke(app, ["validate", str(path), "--severity", "dicom:series-number-of-instances=error"]).exit_code
        == 1
    )
    bad = runner.invoke(app, ["validate", str(path), "--severity", "dicom:nothing=error"])
    assert bad.exit_code == 2 and "dicom:nothing" in bad.output
    assert runner.invoke(app, ["validate", str(path), "--severity", "no-equals-sign"]).exit_code == 2


def test_every_sop_class_in_the_modality_table_is_in_the_dicom_registry(validator) -> None:
    registry = sop_classes_by_keyword()
    missing = sorted(k for k in validator.plan.sop_class_modalities if k not in registry)
    assert missing == []


@pytest.mark.parametrize(
    ("uid", "problem"),
    [
        ("1.2.840.10008.5.1.4.1.1.2", None),
        ("0", None),
        ("1.0.2", None),
        ("1.2.03.4", "leading zero"),
        ("1.2.abc", "digits"),
        ("1..2", "empty component"),
        ("1.2.", "empty component"),
        ("1" * 65, "65 characters"),
        ("", "empty"),
        ("1.２", "digits"),
    ],
)
def test_uid_syntax_follows_ps3_5_section_9_1(uid, problem) -> None:
    found = uid_problem(uid)
    assert (found is None) if problem is None else (problem in found)


# -- --dicom DIR: a study built from real DICOM headers, then altered ------------------------------


def _cross(change=None, folder: str = "ct-study") -> list[tuple[str, str]]:
    study = copy.deepcopy(study_from_dicom())
    if change:
        change(study)
    v = Validator(dicom_files=dicom_folder(folder))
    return sorted(
        (i.rule, i.expression) for i in v.validate_resource(study).issues if i.rule.startswith("dicom-files:")
    )


def test_a_study_built_from_real_headers_matches_its_files() -> None:
    assert study_from_dicom()["identifier"][0]["value"] == f"urn:oid:{CT_STUDY_UID}"
    assert _cross() == []


def test_dicom_finds_a_removed_instance() -> None:
    assert ("dicom-files:instance-missing", "ImagingStudy.series[0].instance") in _cross(
        lambda s: s["series"][0]["instance"].pop()
    )


def test_dicom_finds_a_changed_uid() -> None:
    def change(s):
        s["series"][1]["instance"][2]["uid"] = "1.2.3.4.5.6"

    found = _cross(change)
    assert ("dicom-files:instance-extra", "ImagingStudy.series[1].instance[2].uid") in found
    assert ("dicom-files:instance-missing", "ImagingStudy.series[1].instance") in found


def test_dicom_finds_a_wrong_modality() -> None:
    assert _cross(lambda s: s["series"][1]["modality"].update(code="MR")) == [
        ("dicom-files:modality", "ImagingStudy.series[1].modality")
    ]


def test_the_cli_cross_checks_and_reports_unreadable_files(tmp_path) -> None:
    path = tmp_path / "study.json"
    path.write_text(json.dumps(study_from_dicom()))
    ok = runner.invoke(app, ["validate", str(path), "--dicom", str(dicom_folder("ct-study"))])
    assert ok.exit_code == 0, ok.output
    junk = runner.invoke(app, ["validate", str(path), "--dicom", str(dicom_folder("ct-study-with-junk"))])
    assert junk.exit_code == 0 and "dicom-files:unreadable" in junk.output and "notes.txt" in junk.output
    missing = runner.invoke(app, ["validate", str(path), "--dicom", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "nowhere" in missing.output


def test_a_wado_rs_endpoint_in_another_file_of_the_run_is_checked(tmp_path) -> None:
    endpoint = {"resourceType": "Endpoint", "id": "e", "status": "active", "payloadType": [{"text": "DICOM"}],
                "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">e</div>'},
                "connectionType": {"system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                                   "code": "dicom-wado-rs"},
                "address": "https://pacs.example.org/dicom-web/studies/9.8.7"}  # fmt: skip
    (tmp_path / "a-study.json").write_text(
        json.dumps(_with(lambda s: s.update(endpoint=[{"reference": "Endpoint/e"}])))
    )
    (tmp_path / "b-endpoint.json").write_text(json.dumps(endpoint))
    run = Validator().validate_paths([str(tmp_path)])
    hits = [i for i in run.results[0].issues if i.rule == "dicom:wado-study"]
    assert len(hits) == 1 and hits[0].line is not None and "9.8.7" in hits[0].message
    alone = Validator().validate_paths([str(tmp_path / "a-study.json")])
    assert not any(i.rule.startswith("dicom:wado") for i in alone.results[0].issues)
