"""Mutations of a full, valid ImagingStudy derived from the R4 element table: every defect class
of the core issue is reported as an error at the broken element, and nothing else is reported."""

from __future__ import annotations

import copy
import json

import pytest

from validator import Severity

DCM = "http://dicom.nema.org/resources/ontology/DCM"
FULL = {
    "resourceType": "ImagingStudy",
    "id": "full",
    "meta": {"versionId": "3", "lastUpdated": "2024-01-02T03:04:05Z"},
    "implicitRules": "http://example.org/rules",
    "language": "en",
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">CT chest</div>'},
    "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.3.4"}],
    "status": "available",
    "modality": [{"system": DCM, "code": "CT"}],
    "subject": {"reference": "Patient/p"},
    "encounter": {"reference": "Encounter/e"},
    "started": "2024-01-02T03:04:05+01:00",
    "basedOn": [{"reference": "ServiceRequest/s"}],
    "referrer": {"reference": "Practitioner/r"},
    "interpreter": [{"reference": "Practitioner/i"}],
    "endpoint": [{"reference": "Endpoint/w"}],
    "numberOfSeries": 1,
    "numberOfInstances": 1,
    "procedureReference": {"reference": "Procedure/p"},
    "procedureCode": [{"text": "CT chest"}],
    "location": {"reference": "Location/l"},
    "reasonCode": [{"text": "cough"}],
    "reasonReference": [{"reference": "Condition/c"}],
    "note": [{"text": "none"}],
    "description": "CT chest",
    "series": [
        {
            "uid": "1.2.3.4.1",
            "number": 1,
            "modality": {"system": DCM, "code": "CT"},
            "description": "axial",
            "numberOfInstances": 1,
            "endpoint": [{"reference": "Endpoint/w"}],
            "bodySite": {"system": "http://snomed.info/sct", "code": "51185008"},
            "laterality": {"system": "http://snomed.info/sct", "code": "51440002"},
            "specimen": [{"reference": "Specimen/s"}],
            "started": "2024-01-02T03:04:05+01:00",
            "performer": [
                {
                    "function": {
                        "coding": [
                            {"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRF"}
                        ]
                    },
                    "actor": {"reference": "Practitioner/t"},
                }
            ],
            "instance": [
                {
                    "uid": "1.2.3.4.1.1",
                    "sopClass": {"system": "urn:ietf:rfc:3986", "code": "urn:oid:1.2.840.10008.5.1.4.1.1.2"},
                    "number": 1,
                    "title": "image 1",
                }
            ],
        }
    ],
}


def _spec(shared):
    return [
        e
        for e in json.loads((shared / "elements-r4.json").read_text())["elements"][1:]
        if not e["path"].endswith((".id", ".extension", ".modifierExtension"))
        and e["path"] not in ("ImagingStudy.contained",)
    ]


def _locate(resource, path):
    """(parent object, key, expression) of the first occurrence of a definition path in FULL."""
    parts = path.split(".")[1:]
    node, expr = resource, "ImagingStudy"
    for part in parts[:-1]:
        node = node[part]
        expr += f".{part}"
        if isinstance(node, list):
            node, expr = node[0], expr + "[0]"
    return node, parts[-1], f"{expr}.{parts[-1]}"


def _errors(validator, resource):
    result = validator.validate_resource(resource)
    return sorted((i.rule, i.expression) for i in result.issues if i.severity >= Severity.WARNING)


def test_the_full_study_is_valid(validator) -> None:
    assert _errors(validator, FULL) == []


def test_the_full_study_holds_every_element_of_the_spec(shared) -> None:
    for e in _spec(shared):
        parent, key, _ = _locate(FULL, e["path"])
        assert key in parent, f"{e['path']} missing from the mutation base"


def _cases(shared, kind):
    wanted = {
        "required": lambda e: e["min"] >= 1,
        "single": lambda e: e["max"] == "1",
        "repeating": lambda e: e["max"] == "*",
        "primitive": lambda e: bool(e["types"]) and e["types"][0]["code"][0].islower(),
    }[kind]
    return [e for e in _spec(shared) if wanted(e)]


def _ids(cases):
    return [c["path"] for c in cases]


def pytest_generate_tests(metafunc):
    from conftest import require_shared

    for kind in ("required", "single", "repeating", "primitive"):
        if f"{kind}_element" in metafunc.fixturenames:
            cases = _cases(require_shared(), kind)
            metafunc.parametrize(f"{kind}_element", cases, ids=_ids(cases))


def test_a_missing_required_element_is_an_error_at_its_place(validator, required_element) -> None:
    study = copy.deepcopy(FULL)
    parent, key, expr = _locate(study, required_element["path"])
    del parent[key]
    assert _errors(validator, study) == [(f"r4:{required_element['path']}:card", expr)]


def test_a_single_valued_element_written_as_an_array_is_an_error(validator, single_element) -> None:
    study = copy.deepcopy(FULL)
    parent, key, expr = _locate(study, single_element["path"])
    parent[key] = [parent[key]]
    assert _errors(validator, study) == [("json:array-unexpected", expr)]


def test_a_repeating_element_written_as_a_single_value_is_an_error(validator, repeating_element) -> None:
    study = copy.deepcopy(FULL)
    parent, key, expr = _locate(study, repeating_element["path"])
    parent[key] = parent[key][0]
    assert _errors(validator, study) == [("json:array-expected", expr)]


def test_a_primitive_with_the_wrong_json_type_is_an_error(validator, primitive_element) -> None:
    study = copy.deepcopy(FULL)
    parent, key, expr = _locate(study, primitive_element["path"])
    value = parent[key]
    parent[key] = "7" if isinstance(value, int) and not isinstance(value, bool) else 7
    assert _errors(validator, study) == [(f"r4:{primitive_element['path']}:type", expr)]


@pytest.mark.parametrize("path", ["ImagingStudy.subject", "ImagingStudy.series.modality", "ImagingStudy.note"])
def test_a_null_element_is_one_error_not_a_cascade(validator, path) -> None:
    study = copy.deepcopy(FULL)
    parent, key, expr = _locate(study, path)
    parent[key] = None
    assert _errors(validator, study) == [("json:null", expr)]
