"""Every ImagingStudy and Endpoint profile of every IG in ../shared/reference/igs/ loads and is
applied (--ig folder, --profile URL or meta.profile); one failing payload per construct, each
asserting the exact findings. Payloads are written from the profiles' constraints (ig_payloads.py)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import ig_payloads as P
import pytest
from conftest import require_shared

from validator import Validator
from validator.cli import app

INFO_RULES = {"engine:profile-not-checked", "engine:binding-not-checked"}


@pytest.fixture(scope="module")
def igs(tmp_path_factory) -> Path:
    """A copy of the shared IG folders (tests never rely on the product reading ../shared)."""
    folder = tmp_path_factory.mktemp("igs")
    for ig in ("ihe-idr", "ihe-ira", "ihe-mado", "jp-core", "mii-bildgebung"):
        shutil.copytree(require_shared() / "igs" / ig, folder / ig)
    return folder


def findings(igs: Path, ig: str, payload: dict, tmp_path: Path, profiles: tuple[str, ...] = (),
             everything: bool = False) -> list[tuple[str, str, str]]:  # fmt: skip
    """(severity, rule, expression) of each finding (without the information notes unless asked)."""
    path = tmp_path / "payload.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    run = Validator(igs=[str(igs / ig)], profiles=profiles, must_support=False).validate_paths([str(path)])
    return [(i.severity.label, i.rule, i.expression) for r in run.results for i in r.issues
            if everything or i.rule not in INFO_RULES]  # fmt: skip


def messages(igs: Path, ig: str, payload: dict, tmp_path: Path) -> list[str]:
    path = tmp_path / "payload.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    run = Validator(igs=[str(igs / ig)], must_support=False).validate_paths([str(path)])
    return [i.message for r in run.results for i in r.issues if i.rule not in INFO_RULES]


# -- every profile loads, and validate --ig --profile works for each ----------------------------------
PROFILES = [
    ("ihe-idr", P.IDR, lambda: P.bundle(P.r5_study(P.IDR), P.idr_endpoint())),
    ("ihe-idr", P.IDR_COMPARISON, lambda: P.r5_study(P.IDR_COMPARISON)),
    ("ihe-idr", P.IDR_ENDPOINT, P.idr_endpoint),
    ("ihe-ira", P.IRA, P.ira_study),
    ("ihe-mado", P.MADO, lambda: P.bundle(P.mado_study(), P.mado_wado(), P.mado_viewer())),
    ("ihe-mado", P.MADO_WADO, P.mado_wado),
    ("ihe-mado", P.MADO_VIEWER, P.mado_viewer),
    ("jp-core", P.JP_RADIOLOGY, lambda: P.jp_study(P.JP_RADIOLOGY)),
    ("jp-core", P.JP_ENDOSCOPY, lambda: P.jp_study(P.JP_ENDOSCOPY)),
    ("mii-bildgebung", P.MII, P.mii_study),
]


@pytest.mark.parametrize(("ig", "url", "payload"), PROFILES, ids=[u.rsplit("/", 1)[1] for _, u, _ in PROFILES])
def test_each_ig_profile_is_applied_by_the_cli_with_ig_and_profile(igs, tmp_path, ig, url, payload,
                                                                  capsys) -> None:  # fmt: skip
    resource = payload()
    for entry in resource.get("entry", [{"resource": resource}]):
        entry["resource"].pop("meta", None)  # only --profile selects it
    path = tmp_path / "payload.json"
    path.write_text(json.dumps(resource), encoding="utf-8")
    with pytest.raises(SystemExit) as done:
        app(["validate", "--ig", str(igs / ig), "--profile", url, "--format", "json", "--no-must-support", str(path)],
            standalone_mode=True)
    report = json.loads(capsys.readouterr().out)
    applied = {p for r in report["results"] for p in r["profiles"]}
    assert url in applied
    errors = [i for r in report["results"] for i in r["issues"] if i["severity"] in ("error", "fatal")]
    assert errors == []
    assert done.value.code == 0


@pytest.mark.parametrize("ig", ["ihe-idr", "ihe-ira", "ihe-mado", "jp-core", "mii-bildgebung"])
def test_every_imagingstudy_and_endpoint_profile_of_an_ig_loads(igs, ig) -> None:
    sds = [json.loads(p.read_text()) for p in (igs / ig).glob("StructureDefinition-*.json")]
    wanted = {sd["url"] for sd in sds if sd["type"] in ("ImagingStudy", "Endpoint")}
    profile_set = Validator(igs=[str(igs / ig)]).profile_set
    loaded = {url for url, prof in profile_set.profiles.items() if prof.ig == ig}
    assert wanted and wanted <= loaded


# -- IHE IDR (R5): value slicing on system, cardinality, targets, target profile, endpoint binding -----
def idr_bundle() -> dict:
    return P.bundle(P.r5_study(P.IDR), P.idr_endpoint())


def test_an_idr_study_and_its_endpoint_conform(igs, tmp_path) -> None:
    assert findings(igs, "ihe-idr", idr_bundle(), tmp_path, everything=True) == [
        ("information", "engine:binding-not-checked", "Endpoint.status")]  # R5 endpoint-status is not bundled


def test_an_idr_study_without_a_dicom_uid_identifier_misses_the_study_uid_slice(igs, tmp_path) -> None:
    b = idr_bundle()
    b["entry"][0]["resource"]["identifier"] = [{"system": "http://hospital.example.org/accession", "value": "A1"}]
    assert findings(igs, "ihe-idr", b, tmp_path) == [
        ("error", "idr-imaging-study-in-imaging-report:ImagingStudy.identifier:studyUID:card",
         "ImagingStudy.identifier")]
    message = messages(igs, "ihe-idr", b, tmp_path)[0]
    assert message == ("identifier: slice studyUID (system = urn:dicom:uid) requires 1 entry (1..1), found none")


def test_an_idr_study_without_modality_is_an_error(igs, tmp_path) -> None:
    b = idr_bundle()
    del b["entry"][0]["resource"]["modality"]
    assert findings(igs, "ihe-idr", b, tmp_path) == [
        ("error", "idr-imaging-study-in-imaging-report:ImagingStudy.modality:card", "ImagingStudy.modality")]


def test_an_idr_study_about_a_group_breaks_the_patient_target(igs, tmp_path) -> None:
    b = idr_bundle()
    b["entry"][0]["resource"]["subject"] = {"reference": "Group/g1"}
    assert findings(igs, "ihe-idr", b, tmp_path) == [
        ("error", "idr-imaging-study-in-imaging-report:ImagingStudy.subject:target", "ImagingStudy.subject.reference")]


def test_an_idr_endpoint_outside_its_connection_types_fails_itself_and_the_study(igs, tmp_path) -> None:
    b = idr_bundle()
    b["entry"][1]["resource"]["connectionType"][0]["coding"][0]["code"] = "hl7-fhir-rest"
    assert findings(igs, "ihe-idr", b, tmp_path) == [
        ("error", "idr-imaging-study-in-imaging-report:ImagingStudy.endpoint:target-profile",
         "ImagingStudy.endpoint[0].reference"),
        ("error", "imaging-study-endpoint:Endpoint.connectionType:binding", "Endpoint.connectionType[0]"),
    ]  # fmt: skip


def test_an_idr_endpoint_without_payload_is_an_error(igs, tmp_path) -> None:
    endpoint = P.idr_endpoint()
    del endpoint["payload"]
    assert findings(igs, "ihe-idr", endpoint, tmp_path) == [
        ("error", "imaging-study-endpoint:Endpoint.payload:card", "Endpoint.payload")]


def test_an_idr_endpoint_payload_type_outside_its_value_set_is_a_warning(igs, tmp_path) -> None:
    endpoint = P.idr_endpoint()
    endpoint["payload"][0]["type"][0]["coding"][0]["code"] = "113015"
    assert findings(igs, "ihe-idr", endpoint, tmp_path) == [
        ("warning", "imaging-study-endpoint:Endpoint.payload.type:binding", "Endpoint.payload[0].type[0]")]


# -- IHE IRA (R5): value slicing on a CodeableConcept pattern, two required slices, status pattern ------
def test_an_ira_study_conforms(igs, tmp_path) -> None:
    assert findings(igs, "ihe-ira", P.ira_study(), tmp_path) == []


def test_an_ira_study_without_accession_misses_the_slice_and_the_identifier_count(igs, tmp_path) -> None:
    study = P.ira_study()
    del study["identifier"][1]
    assert findings(igs, "ihe-ira", study, tmp_path) == [
        ("error", "imagingstudycontext:ImagingStudy.identifier:card", "ImagingStudy.identifier"),
        ("error", "imagingstudycontext:ImagingStudy.identifier:accession:card", "ImagingStudy.identifier"),
    ]


def test_an_ira_accession_without_value_breaks_the_slice_constraint(igs, tmp_path) -> None:
    study = P.ira_study()
    del study["identifier"][1]["value"]
    assert findings(igs, "ihe-ira", study, tmp_path) == [
        ("warning", "r5:ident-1", "ImagingStudy.identifier[1]"),  # the base rule: an identifier with a value
        ("error", "imagingstudycontext:ImagingStudy.identifier:accession.value:card",
         "ImagingStudy.identifier[1].value"),
    ]


def test_an_ira_study_that_is_not_available_breaks_the_status_pattern(igs, tmp_path) -> None:
    study = P.ira_study()
    study["status"] = "registered"
    assert findings(igs, "ihe-ira", study, tmp_path) == [
        ("error", "imagingstudycontext:ImagingStudy.status:pattern", "ImagingStudy.status")]


# -- IHE MADO (R4): profile slicing with datatype profiles, type slicing, extensions, invariant ---------
def mado() -> dict:
    return P.bundle(P.mado_study(), P.mado_wado(), P.mado_viewer())


def mado_with(change) -> dict:
    b = mado()
    change(b["entry"][0]["resource"], b["entry"][1]["resource"], b["entry"][2]["resource"])
    return b


def test_a_mado_study_with_its_endpoints_conforms(igs, tmp_path) -> None:
    assert findings(igs, "ihe-mado", mado(), tmp_path) == []


def test_mado_says_what_it_does_not_check(igs, tmp_path) -> None:
    notes = [f for f in findings(igs, "ihe-mado", mado(), tmp_path, everything=True)
             if f[1] == "engine:profile-not-checked"]  # fmt: skip
    assert notes == [("information", "engine:profile-not-checked", "ImagingStudy"),  # subject: MadoPatient
                     ("information", "engine:profile-not-checked", "Endpoint"),  # address.extension
                     ("information", "engine:profile-not-checked", "Endpoint")]  # its data-absent-reason slice


def test_a_mado_study_identifier_without_the_study_uid_type_misses_the_profiled_slice(igs, tmp_path) -> None:
    b = mado_with(lambda s, w, v: s["identifier"][0]["type"]["coding"][0].update(code="999"))
    # DCM#999 is neither an Identifier Type Code nor a DICOM identifier concept: the base binding warns too.
    assert findings(igs, "ihe-mado", b, tmp_path) == [
        ("error", "madoimagingstudy:ImagingStudy.identifier:study-instance-uid:card", "ImagingStudy.identifier"),
        ("warning", "r4:Identifier.type:binding", "ImagingStudy.identifier[0].type")]


def test_a_mado_study_breaking_its_invariant_is_an_error(igs, tmp_path) -> None:
    b = mado_with(lambda s, w, v: s.update(procedureCode=[{"coding": [{"system": "http://x.org", "code": "1"}]}]))
    assert findings(igs, "ihe-mado", b, tmp_path) == [("error", "madoimagingstudy:mado-reqproc-1:invariant",
                                                       "ImagingStudy")]


def test_a_mado_extension_with_another_value_type_breaks_the_extension_definition(igs, tmp_path) -> None:
    b = mado_with(lambda s, w, v: s["extension"][0].update({"valueString": "chest"}) or
                  s["extension"][0].pop("valueCodeableConcept"))  # fmt: skip
    assert findings(igs, "ihe-mado", b, tmp_path) == [
        ("error", "madoanatomicalregionextension:Extension.value[x]:type", "ImagingStudy.extension[0].valueString")]


def test_a_mado_key_object_title_outside_dicom_cid_7010_is_an_error(igs, tmp_path) -> None:
    b = mado_with(lambda s, w, v: s["series"][0]["instance"][0]["extension"][1]["valueCodeableConcept"]["coding"][0]
                  .update(code="XYZ"))  # fmt: skip
    assert findings(igs, "ihe-mado", b, tmp_path) == [
        ("error", "madokeyobjectdocumenttitle:Extension.value[x]:binding",
         "ImagingStudy.series[0].instance[0].extension[1].valueCodeableConcept")]


def test_two_mado_number_of_frames_extensions_break_the_slice_maximum(igs, tmp_path) -> None:
    b = mado_with(lambda s, w, v: s["series"][0]["instance"][0]["extension"].append(
        {"url": P.MADO_SD + "MadoNumberOfFrames", "valueInteger": 2}))  # fmt: skip
    assert findings(igs, "ihe-mado", b, tmp_path) == [
        ("error", "madoimagingstudy:ImagingStudy.series.instance.extension:number-of-frames:card",
         "ImagingStudy.series[0].instance[0].extension")]


def test_a_mado_order_reference_applies_the_accession_identifier_profile_inside_the_reference_profile(
        igs, tmp_path) -> None:  # fmt: skip
    b = mado_with(lambda s, w, v: s["basedOn"][0]["identifier"]["type"]["coding"].pop(1))
    assert findings(igs, "ihe-mado", b, tmp_path) == [
        ("error", "madoaccessionnumberidentifier:Identifier.type.coding:card",
         "ImagingStudy.basedOn[0].identifier.type.coding"),
        ("error", "madoaccessionnumberidentifier:Identifier.type.coding:dcm:card",
         "ImagingStudy.basedOn[0].identifier.type.coding"),
    ]  # fmt: skip


def test_a_mado_series_endpoint_that_is_not_a_wado_endpoint_misses_the_resolved_profile_slice(igs, tmp_path) -> None:
    b = mado_with(lambda s, w, v: w.update(status="off"))
    assert findings(igs, "ihe-mado", b, tmp_path) == [
        ("error", "madoimagingstudy:ImagingStudy.series.endpoint:wado:card", "ImagingStudy.series[0].endpoint"),
        ("error", "madowadoendpoint:Endpoint.status:pattern", "Endpoint.status"),
    ]
    # The slice finding says why the reference that resolves is not in the slice.
    slice_message = next(m for m in messages(igs, "ihe-mado", b, tmp_path) if "slice wado" in m)
    assert "1 reference(s) resolve, but not to a resource conforming to it: Endpoint/" in slice_message
    assert "Endpoint.status" in slice_message


def test_a_mado_wado_endpoint_without_its_retrieve_location_extension_is_an_error(igs, tmp_path) -> None:
    endpoint = P.mado_wado()
    del endpoint["extension"]
    assert findings(igs, "ihe-mado", endpoint, tmp_path) == [
        ("error", "madowadoendpoint:Endpoint.extension:card", "Endpoint.extension")]


def test_a_mado_wado_endpoint_with_another_connection_breaks_the_fixed_code(igs, tmp_path) -> None:
    endpoint = P.mado_wado()
    endpoint["connectionType"]["code"] = "dicom-qido-rs"
    assert findings(igs, "ihe-mado", endpoint, tmp_path) == [
        ("error", "madowadoendpoint:Endpoint.connectionType.code:fixed", "Endpoint.connectionType.code")]


def test_a_mado_wado_payload_type_text_breaks_the_slice_pattern(igs, tmp_path) -> None:
    endpoint = P.mado_wado()
    endpoint["payloadType"][0]["text"] = "other"
    assert findings(igs, "ihe-mado", endpoint, tmp_path) == [
        ("error", "madowadoendpoint:Endpoint.payloadType:text-wado.text:pattern", "Endpoint.payloadType[0].text")]


def test_a_mado_web_viewer_without_the_none_payload_type_misses_its_slice(igs, tmp_path) -> None:
    endpoint = P.mado_viewer()
    endpoint["payloadType"][0]["coding"][0]["code"] = "any"
    assert findings(igs, "ihe-mado", endpoint, tmp_path) == [
        ("error", "madowebviewerendpoint:Endpoint.payloadType:type-none:card", "Endpoint.payloadType")]


# -- JP Core (R4): required binding to the IG's value set, bindings that cannot be checked --------------
@pytest.mark.parametrize(("url", "ruleset"), [(P.JP_RADIOLOGY, "jp-imagingstudy-radiology"),
                                              (P.JP_ENDOSCOPY, "jp-imagingstudy-endoscopy")])  # fmt: skip
def test_a_jp_modality_outside_jp_dicom_modality_is_an_error(igs, tmp_path, url, ruleset) -> None:
    study = P.jp_study(url)
    study["series"][0]["modality"]["code"] = "XC-NOT"
    assert (("error", f"{ruleset}:ImagingStudy.series.modality:binding", "ImagingStudy.series[0].modality")
            in findings(igs, "jp-core", study, tmp_path))  # fmt: skip


def test_jp_bindings_to_value_sets_not_in_the_ig_are_information_not_a_refusal(igs, tmp_path) -> None:
    found = findings(igs, "jp-core", P.jp_study(P.JP_RADIOLOGY), tmp_path, everything=True)
    assert ("information", "engine:binding-not-checked", "ImagingStudy.procedureCode[0]") in found
    assert ("information", "engine:binding-not-checked", "ImagingStudy.series[0].instance[0].sopClass") in found
    assert not [f for f in found if f[0] != "information"]


# -- MII Bildgebung (R4): extension slices, complex extensions, SimpleQuantity, DICOM context groups ---
def mii_with(change) -> dict:
    study = P.mii_study()
    change(study, study["series"][0])
    return study


def test_an_mii_study_with_its_extensions_conforms(igs, tmp_path) -> None:
    assert findings(igs, "mii-bildgebung", P.mii_study(), tmp_path) == []


def test_an_mii_modality_outside_dicom_cid_33_is_an_error(igs, tmp_path) -> None:
    study = mii_with(lambda s, series: series["modality"].update(code="XX"))
    assert ("error", "mii-pr-bildgebung-bildgebungsstudie:ImagingStudy.series.modality:binding",
            "ImagingStudy.series[0].modality") in findings(igs, "mii-bildgebung", study, tmp_path)  # fmt: skip


def test_an_mii_laterality_outside_dicom_cid_244_is_an_error(igs, tmp_path) -> None:
    study = mii_with(lambda s, series: series["laterality"].update(code="123"))
    assert findings(igs, "mii-bildgebung", study, tmp_path) == [
        ("error", "mii-pr-bildgebung-bildgebungsstudie:ImagingStudy.series.laterality:binding",
         "ImagingStudy.series[0].laterality")]  # fmt: skip


def test_an_mii_reason_extension_with_another_value_type_is_an_error(igs, tmp_path) -> None:
    study = mii_with(lambda s, series: s.update(extension=[{"url": s["extension"][0]["url"], "valueBoolean": True}]))
    assert findings(igs, "mii-bildgebung", study, tmp_path) == [
        ("error", "mii-ex-bildgebung-bildgebungsgrund:Extension.value[x]:type",
         "ImagingStudy.extension[0].valueBoolean")]


def test_an_mii_ct_dose_in_another_unit_breaks_the_sub_extension_pattern(igs, tmp_path) -> None:
    study = mii_with(lambda s, series: series["extension"][0]["extension"][0]["valueQuantity"].update(code="Gy"))
    assert findings(igs, "mii-bildgebung", study, tmp_path) == [
        ("error", "mii-ex-bildgebung-modalitaet-ct:Extension.extension:CTDIvol.value[x].code:pattern",
         "ImagingStudy.series[0].extension[0].extension[0].valueQuantity.code")]  # fmt: skip


def test_an_mii_contrast_extension_without_its_required_sub_extension_is_an_error(igs, tmp_path) -> None:
    study = mii_with(lambda s, series: series["extension"][1].update(
        extension=[{"url": "contrastBolusDetails", "valueReference": {"reference": "MedicationAdministration/m1"}}]))
    assert findings(igs, "mii-bildgebung", study, tmp_path) == [
        ("error", "mii-ex-bildgebung-kontrastmittel:Extension.extension:contrastBolus:card",
         "ImagingStudy.series[0].extension[1].extension")]  # fmt: skip


def test_an_mii_slice_thickness_with_a_comparator_is_not_a_simple_quantity(igs, tmp_path) -> None:
    study = mii_with(lambda s, series: series["extension"][2]["valueQuantity"].update(comparator="<"))
    assert findings(igs, "mii-bildgebung", study, tmp_path) == [
        ("error", "mii-ex-bildgebung-serie-schichtdicke:Extension.value[x].comparator:card",
         "ImagingStudy.series[0].extension[2].valueQuantity.comparator")]  # fmt: skip


def test_an_mii_instance_details_with_a_value_of_its_own_is_an_error(igs, tmp_path) -> None:
    study = mii_with(lambda s, series: series["instance"][0]["extension"][0].update(valueString="x"))
    assert findings(igs, "mii-bildgebung", study, tmp_path) == [
        ("error", "r4:ext-1", "ImagingStudy.series[0].instance[0].extension[0]"),  # base: extension or value
        ("error", "mii-ex-bildgebung-instanz-details:Extension.value[x]:card",
         "ImagingStudy.series[0].instance[0].extension[0].valueString")]  # fmt: skip


def test_two_mii_ct_extensions_on_a_series_break_the_slice_maximum(igs, tmp_path) -> None:
    study = mii_with(lambda s, series: series["extension"].append(copy.deepcopy(series["extension"][0])))
    assert findings(igs, "mii-bildgebung", study, tmp_path) == [
        ("error", "mii-pr-bildgebung-bildgebungsstudie:ImagingStudy.series.extension:modalitaetCT:card",
         "ImagingStudy.series[0].extension")]  # fmt: skip


def test_an_mii_image_type_coding_is_checked_by_the_value_set_of_its_slice(igs, tmp_path) -> None:
    # imageType's codings are sliced by value on $this, each slice bound (required) to its value set:
    # a coding from one of them is in that slice; a coding of the MII code system outside them in none
    # (open slicing: allowed).
    cs = "https://www.medizininformatik-initiative.de/fhir/ext/modul-bildgebung/CodeSystem/mii-cs-bildgebung-instance-image-type"
    study = mii_with(lambda s, series: series["instance"][0]["extension"][0]["extension"].append(
        {"url": "imageType", "valueCodeableConcept": {"coding": [{"system": cs, "code": "ORIGINAL"}]}}))
    assert findings(igs, "mii-bildgebung", study, tmp_path) == []


def test_a_mado_series_endpoint_outside_the_run_leaves_the_wado_slice_count_unchecked(igs, tmp_path) -> None:
    b = mado()
    del b["entry"][1]  # the WADO endpoint the series refers to is not in this run
    found = findings(igs, "ihe-mado", b, tmp_path)
    assert found == [("information", "engine:target-not-checked", "ImagingStudy.series[0].endpoint")]


def test_an_absent_mii_must_support_element_is_information(igs, tmp_path) -> None:
    path = tmp_path / "payload.json"
    path.write_text(json.dumps(P.mii_study()), encoding="utf-8")
    run = Validator(igs=[str(igs / "mii-bildgebung")]).validate_paths([str(path)])
    found = {(i.severity.label, i.rule, i.expression) for r in run.results for i in r.issues}
    assert ("information", "mii-pr-bildgebung-bildgebungsstudie:ImagingStudy.description:must-support",
            "ImagingStudy.description") in found  # fmt: skip
    assert not [f for f in found if f[0] != "information"]


def test_two_mado_order_references_break_the_type_slice_maximum(igs, tmp_path) -> None:
    b = mado_with(lambda s, w, v: s["basedOn"].append(copy.deepcopy(s["basedOn"][0])))
    assert findings(igs, "ihe-mado", b, tmp_path) == [
        ("error", "madoimagingstudy:ImagingStudy.basedOn:order:card", "ImagingStudy.basedOn")]
    assert messages(igs, "ihe-mado", b, tmp_path) == [
        "basedOn: slice order ($this is Reference) allows at most 1 entry (0..1), found 2 at basedOn[0] and basedOn[1]"]


def test_an_mii_series_extension_on_the_study_breaks_its_context(igs, tmp_path) -> None:
    study = mii_with(lambda s, series: s["extension"].append(series["extension"][0]))
    assert findings(igs, "mii-bildgebung", study, tmp_path) == [
        ("error", "mii-ex-bildgebung-modalitaet-ct:Extension:context", "ImagingStudy.extension[1]")]
    assert messages(igs, "mii-bildgebung", study, tmp_path) == [
        f"MII EX Bildgebung Modalität CT ({P.MII_SD}mii-ex-bildgebung-modalitaet-ct) is used on ImagingStudy, but "
        "may only be used on ImagingStudy.series"]


def test_a_mado_instance_extension_on_a_series_breaks_its_context(igs, tmp_path) -> None:
    b = mado_with(lambda s, w, v: s["series"][0].update(extension=[{"url": P.MADO_SD + "MadoNumberOfFrames",
                                                                    "valueInteger": 3}]))  # fmt: skip
    assert findings(igs, "ihe-mado", b, tmp_path) == [
        ("error", "madonumberofframes:Extension:context", "ImagingStudy.series[0].extension[0]")]


def test_a_malformed_extension_url_is_the_type_rules_finding_not_a_validator_failure(igs, tmp_path) -> None:
    study = mii_with(lambda s, series: series["extension"][1].update(url=["not", "a", "url"]))
    found = findings(igs, "mii-bildgebung", study, tmp_path)
    assert ("error", "json:array-unexpected", "ImagingStudy.series[0].extension[1].url") in found
    assert not [f for f in found if f[1] == "engine:internal-error"]
