"""The slicing engine: every discriminator type (value, pattern, exists, type, profile) and every
slicing rule (open, closed, openAtEnd, ordered, per-slice cardinality and element constraints),
through a test profile pack, with messages that name the slice and its discriminator."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from validator import Severity, Validator
from validator.evaluate.slicing import matches_fixed, matches_pattern

PACK = Path(__file__).parent / "fixtures" / "profiles" / "slicing-test.yaml"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
EP = {
    "resourceType": "Endpoint",
    "id": "ep",
    "status": "active",
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">ep</div>'},
    "connectionType": {
        "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
        "code": "dicom-wado-rs",
    },
    "payloadType": [{"coding": [{"system": DCM, "code": "113014"}]}],
    "address": "https://pacs.example.org/rs",
}
STUDY = {
    "resourceType": "ImagingStudy",
    "id": "s",
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">s</div>'},
    "contained": [EP, {"resourceType": "ServiceRequest", "id": "sr"}],
    "identifier": [
        {"system": "urn:dicom:uid", "value": "urn:oid:1.2.3"},
        {"system": "http://example.org/accession", "value": "A1"},
    ],
    "status": "available",
    "modality": [{"system": DCM, "code": "CT"}, {"system": DCM, "code": "MR"}, {"system": DCM, "code": "US"}],
    "subject": {"reference": "Patient/p"},
    "basedOn": [{"reference": "#sr"}],
    "endpoint": [{"reference": "#ep"}],
    "note": [{"time": "2024-01-01T10:00:00Z", "text": "a"}, {"text": "b"}],
}


@pytest.fixture(scope="module")
def sliced() -> Validator:
    return Validator(profiles=[str(PACK)])


def _found(validator: Validator, study: dict) -> list[tuple[str, str, str]]:
    result = validator.validate_resource(study)
    return sorted((i.rule, i.expression, i.message) for i in result.issues if i.severity >= Severity.WARNING)


def _rules(validator: Validator, study: dict) -> list[tuple[str, str]]:
    return [(r, e) for r, e, _ in _found(validator, study)]


def test_a_study_that_fills_every_slice_correctly_passes(sliced) -> None:
    assert _found(sliced, STUDY) == []


def test_the_profile_pack_is_applied_and_listed(sliced) -> None:
    assert sliced.validate_resource(STUDY).profiles == ("http://example.org/StructureDefinition/slicing-test",)


def test_a_value_discriminator_selects_by_fixed_value_and_a_missing_slice_is_named(sliced) -> None:
    study = copy.deepcopy(STUDY)
    study["identifier"] = [{"system": "http://example.org/accession", "value": "A1"}]
    (found,) = _found(sliced, study)
    assert found[:2] == ("slicetest:ImagingStudy.identifier:dicomUid:card", "ImagingStudy.identifier")
    assert "slice dicomUid (system = urn:dicom:uid) requires 1 entry (1..1), found none" in found[2]


def test_too_many_items_in_a_slice_are_reported_with_their_places(sliced) -> None:
    study = copy.deepcopy(STUDY)
    study["identifier"] = [
        {"system": "urn:dicom:uid", "value": "urn:oid:1.2.3"},
        {"system": "urn:dicom:uid", "value": "urn:oid:1.2.4"},
    ]
    (found,) = _found(sliced, study)
    assert "found 2 at identifier[0] and identifier[1]" in found[2]


def test_closed_slicing_refuses_an_item_that_matches_no_slice(sliced) -> None:
    study = copy.deepcopy(STUDY)
    study["identifier"].append({"system": "http://example.org/other", "value": "x"})
    assert _rules(sliced, study) == [("slicetest:ImagingStudy.identifier:slicing", "ImagingStudy.identifier[2]")]


def test_ordered_slicing_refuses_slices_out_of_order(sliced) -> None:
    study = copy.deepcopy(STUDY)
    study["identifier"].reverse()
    found = _found(sliced, study)
    assert [(r, e) for r, e, _ in found] == [
        ("slicetest:ImagingStudy.identifier:slicing", "ImagingStudy.identifier[1]")
    ]
    assert "out of order" in found[0][2]


def test_per_slice_element_constraints_apply_to_the_items_of_the_slice(sliced) -> None:
    study = copy.deepcopy(STUDY)
    del study["identifier"][0]["value"]
    assert _rules(sliced, study) == [
        ("slicetest:ImagingStudy.identifier:dicomUid.value:card", "ImagingStudy.identifier[0].value")
    ]


def test_a_pattern_discriminator_on_this_matches_partially(sliced) -> None:
    study = copy.deepcopy(STUDY)
    study["modality"] = [{"system": DCM, "code": "CT", "display": "Computed Tomography"}, {"system": DCM, "code": "CT"}]
    assert _rules(sliced, study) == [("slicetest:ImagingStudy.modality:ct:card", "ImagingStudy.modality")]


def test_open_at_end_slicing_refuses_a_sliced_item_after_an_unmatched_one(sliced) -> None:
    study = copy.deepcopy(STUDY)
    study["modality"] = [{"system": DCM, "code": "US"}, {"system": DCM, "code": "CT"}]
    assert _rules(sliced, study) == [("slicetest:ImagingStudy.modality:slicing", "ImagingStudy.modality[1]")]


def test_an_exists_discriminator_tells_items_apart_by_presence(sliced) -> None:
    study = copy.deepcopy(STUDY)
    study["note"] = [{"time": "2024-01-01T10:00:00Z", "text": "a"}, {"time": "2024-01-02T10:00:00Z", "text": "b"}]
    assert _rules(sliced, study) == [("slicetest:ImagingStudy.note:timed:card", "ImagingStudy.note")]


def test_a_type_discriminator_uses_the_type_of_the_resolved_target(sliced) -> None:
    study = copy.deepcopy(STUDY)
    study["contained"].append({"resourceType": "CarePlan", "id": "cp"})
    study["basedOn"].append({"reference": "#cp"})
    assert _rules(sliced, study) == [("slicetest:ImagingStudy.basedOn:slicing", "ImagingStudy.basedOn[1]")]


def test_a_profile_discriminator_checks_the_resolved_target_against_the_profile(sliced) -> None:
    study = copy.deepcopy(STUDY)
    study["contained"][0]["connectionType"]["code"] = "hl7-fhir-rest"
    found = _found(sliced, study)
    assert [(r, e) for r, e, _ in found] == [("slicetest:ImagingStudy.endpoint:imr:card", "ImagingStudy.endpoint")]
    assert "endpoint: slice imr (resolve() conforms to https://profiles.ihe.net" in found[0][2]


def test_an_item_matching_several_slices_is_an_error(sliced) -> None:
    study = copy.deepcopy(STUDY)
    study["reasonCode"] = [{"text": "urgent"}]
    found = _found(sliced, study)
    assert [(r, e) for r, e, _ in found] == [
        ("slicetest:ImagingStudy.reasonCode:slicing", "ImagingStudy.reasonCode[0]")
    ]
    assert "matches several slices (first, second)" in found[0][2]


@pytest.mark.parametrize(
    ("value", "pattern", "matches"),
    [
        ({"system": "a", "code": "b", "display": "c"}, {"system": "a", "code": "b"}, True),
        ({"system": "a"}, {"system": "a", "code": "b"}, False),
        ({"coding": [{"system": "x", "code": "1"}, {"system": "y", "code": "2"}]}, {"coding": [{"code": "2"}]}, True),
        ({"coding": [{"system": "x", "code": "1"}]}, {"coding": [{"code": "2"}]}, False),
        (1, 1.0, True),
        (True, 1, False),
    ],
)
def test_pattern_matching_follows_fhir_pattern_semantics(value, pattern, matches) -> None:
    assert matches_pattern(value, pattern) is matches


def test_fixed_matching_requires_exact_equality() -> None:
    assert matches_fixed({"system": "a"}, {"system": "a"})
    assert not matches_fixed({"system": "a", "code": "b"}, {"system": "a"})
