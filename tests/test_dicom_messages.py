"""Every DICOM message says what is true of the payload it describes: exact messages, asserted on
realistic studies (a CT study with key object, dose report, presentation state and segmentation
series; each SOP Class coding form)."""

from __future__ import annotations

import copy
import json

from validator import Validator

DCM = "http://dicom.nema.org/resources/ontology/DCM"
ROOT = "1.2.826.0.1.3680043.8.498.7"
RFC3986 = "urn:ietf:rfc:3986"
CT_FHIR_FORM = "urn:ietf:rfc:3986#urn:oid:1.2.840.10008.5.1.4.1.1.2"
TW = "https://twcore.mohw.gov.tw/ig/emr/CodeSystem/DicomsopClass"


def _series(n: int, modality: str, sop_class: str) -> dict:
    return {
        "uid": f"{ROOT}.{n}",
        "number": n,
        "modality": {"system": DCM, "code": modality},
        "instance": [{"uid": f"{ROOT}.{n}.1", "sopClass": {"system": RFC3986, "code": f"urn:oid:{sop_class}"}}],
    }


STUDY = {
    "resourceType": "ImagingStudy",
    "id": "ct-with-ko",
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">CT chest, key images</div>'},
    "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{ROOT}"}],
    "status": "available",
    "modality": [{"system": DCM, "code": "CT"}],
    "subject": {"reference": "Patient/p1"},
    "series": [_series(1, "CT", "1.2.840.10008.5.1.4.1.1.2"), _series(2, "KO", "1.2.840.10008.5.1.4.1.1.88.59")],
}


def _findings(study: dict, version: str = "R4") -> list[tuple[str, str, str]]:
    result = Validator(fhir_version=version).validate_resource(copy.deepcopy(study))
    return [(i.rule, i.expression, i.message) for i in result.issues]


def test_a_ct_study_whose_second_series_is_ko_has_no_finding() -> None:
    assert _findings(STUDY) == []


def test_listing_ko_in_r4s_study_modalities_is_told_it_is_not_an_acquisition_modality() -> None:
    study = copy.deepcopy(STUDY)
    study["modality"].append({"system": DCM, "code": "KO"})
    assert _findings(study) == [
        ("dicom:modality-code", "ImagingStudy.modality[1]", "modality[1] KO (Key Object Selection) is not an "
         "acquisition modality (DICOM CID 29): in R4, ImagingStudy.modality lists the series modalities that are "
         "acquisition modalities"),
    ]  # fmt: skip


def test_a_listed_modality_no_series_has_names_the_series_modalities() -> None:
    study = copy.deepcopy(STUDY)
    study["modality"] = [{"system": DCM, "code": "CT"}, {"system": DCM, "code": "MR"}]
    assert _findings(study) == [
        ("dicom:modality-consistency", "ImagingStudy.modality[1]",
         "the study lists modality MR, but no listed series has it (series modalities: CT, KO)"),
    ]  # fmt: skip


def test_r5_lists_ko_among_the_study_modalities_and_says_so_when_it_is_missing() -> None:
    study = copy.deepcopy(STUDY)
    study["modality"] = [{"coding": [{"system": DCM, "code": "CT"}]}]
    for s in study["series"]:
        s["modality"] = {"coding": [s["modality"]]}
    assert _findings(study, "R5") == [
        ("dicom:modality-consistency", "ImagingStudy.modality",
         "the study modality list lacks KO, the modality of series[1]"),
    ]  # fmt: skip


def test_each_sop_class_coding_form_gets_one_message_naming_the_fhir_form() -> None:
    forms = {
        ("urn:ietf:rfc:3986", "1.2.840.10008.5.1.4.1.1.2"):
            "series[0].instance[0].sopClass code '1.2.840.10008.5.1.4.1.1.2' is a bare UID, which is not a URI "
            "(RFC 3986 needs a scheme): write urn:ietf:rfc:3986#urn:oid:1.2.840.10008.5.1.4.1.1.2",
        ("urn:oid:1.2.840.10008.2.6.1", "1.2.840.10008.5.1.4.1.1.2"):
            "series[0].instance[0].sopClass uses the DICOM UID Registry coding scheme urn:oid:1.2.840.10008.2.6.1 "
            f"(DCMUID, PS3.16 Table 8-1); FHIR codes a SOP Class as {CT_FHIR_FORM}, which receivers match",
        (TW, "urn:oid:1.2.840.10008.5.1.4.1.1.2"):
            f"series[0].instance[0].sopClass has the system {TW!r}: FHIR codes a SOP Class as {CT_FHIR_FORM}, "
            "which receivers match",
    }  # fmt: skip
    for (system, code), message in forms.items():
        study = copy.deepcopy(STUDY)
        study["series"][0]["instance"][0]["sopClass"] = {"system": system, "code": code}
        assert _findings(study) == [
            ("dicom:sop-class-coding", "ImagingStudy.series[0].instance[0].sopClass", message)
        ], system


def test_the_dicom_terminology_by_its_oid_is_named_with_the_uri_to_use() -> None:
    study = copy.deepcopy(STUDY)
    study["series"][1]["modality"]["system"] = "urn:oid:1.2.840.10008.2.16.4"
    assert _findings(study) == [
        ("dicom:modality-system", "ImagingStudy.series[1].modality", "series[1].modality code 'KO' names the DICOM "
         f"terminology by its OID urn:oid:1.2.840.10008.2.16.4: FHIR requires its URI {DCM} "
         "(terminologies-systems.html: where a URI is defined, it SHALL be used)"),
    ]  # fmt: skip


def test_a_part_16_page_as_the_system_names_the_dcm_uri() -> None:
    page = "http://dicom.nema.org/medical/dicom/current/output/chtml/part16/sect_CID_29.html"
    study = copy.deepcopy(STUDY)
    study["series"][0]["modality"]["system"] = page
    assert _findings(study) == [
        ("coding:system-is-a-page", "ImagingStudy.series[0].modality", f"system {page!r} is a web page, not a code "
         f"system: use the code system URI {DCM} (DICOM codes (PS3.16) have the code system {DCM})"),
    ]  # fmt: skip


def test_a_study_whose_text_names_no_document_is_not_walked_for_page_systems(tmp_path, monkeypatch) -> None:
    import validator.run.pipeline as pipeline

    walked: list[object] = []
    real = pipeline.web_page_systems
    monkeypatch.setattr(pipeline, "web_page_systems", lambda res: walked.append(res) or real(res))
    plain, page = tmp_path / "plain.json", tmp_path / "page.json"
    study = {"resourceType": "ImagingStudy", "status": "available", "subject": {"reference": "Patient/p"},
             "procedureCode": [{"coding": [{"system": "http://loinc.org", "code": "24627-2"}]}]}  # fmt: skip
    plain.write_text(json.dumps(study))
    study["procedureCode"][0]["coding"][0]["system"] = "https://loinc.org/24627-2.html"
    page.write_text(json.dumps(study))
    run = Validator(fhir_version="R4").validate_paths([str(plain), str(page)])
    assert len(walked) == 1
    found = {r.source.rsplit("/", 1)[-1]: [i.rule for i in r.issues] for r in run.results}
    assert "coding:system-is-a-page" in found["page.json"] and "coding:system-is-a-page" not in found["plain.json"]


def test_an_accented_name_does_not_make_a_study_walked_but_an_escaped_page_ending_is_still_found(tmp_path, monkeypatch):
    import validator.run.pipeline as pipeline

    walked: list[object] = []
    real = pipeline.web_page_systems
    monkeypatch.setattr(pipeline, "web_page_systems", lambda res: walked.append(res) or real(res))
    study = {"resourceType": "ImagingStudy", "status": "available", "subject": {"reference": "Patient/p"},
             "referrer": {"display": "Dr. Réf Érent"},
             "procedureCode": [{"coding": [{"system": "http://loinc.org", "code": "24627-2"}]}]}  # fmt: skip
    accented = tmp_path / "accented.json"
    accented.write_text(json.dumps(study))  # ensure_ascii: "R\u00e9f"
    assert "\\u00e9" in accented.read_text()
    # ".html" spelled with an escape of the dot: the same system once parsed.
    escaped = tmp_path / "escaped.json"
    escaped.write_text(json.dumps(study).replace("http://loinc.org", "https://loinc.org/24627-2\\u002ehtml"))
    run = Validator(fhir_version="R4").validate_paths([str(accented), str(escaped)])
    assert len(walked) == 1
    found = {r.source.rsplit("/", 1)[-1]: [i.rule for i in r.issues] for r in run.results}
    assert "coding:system-is-a-page" in found["escaped.json"]
    assert "coding:system-is-a-page" not in found["accented.json"]


def test_a_profiles_required_binding_is_not_hidden_behind_a_dicom_warning_on_the_same_coding(shared) -> None:
    # JP Core binds series.modality (required) to its DICOM modality value set; the DICOM rule's
    # warning on a non-DCM system replaces only findings no more severe than itself.
    study = {"resourceType": "ImagingStudy", "id": "x", "status": "available", "subject": {"reference": "Patient/p"},
             "series": [{"uid": "1.2.3", "modality": {"system": "http://example.org/x", "code": "CT"}}]}  # fmt: skip
    url = "http://jpfhir.jp/fhir/core/StructureDefinition/JP_ImagingStudy_Radiology"
    v = Validator(fhir_version="R4", profiles=[url], igs=[str(shared / "igs" / "jp-core")])
    found = {(i.rule, i.severity.label) for i in v.validate_resource(study).issues if i.expression.endswith("modality")}
    assert ("jp-imagingstudy-radiology:ImagingStudy.series.modality:binding", "error") in found
    assert ("dicom:modality-system", "warning") in found
