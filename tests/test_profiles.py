"""Profile packs: layering on a base pack, refusal of packs that loosen their base, selection by
--profile (short name, canonical URL, pack path) or meta.profile, and the IMR examples."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from validator import Severity, Validator
from validator.api import UnknownProfile
from validator.cli import app
from validator.compile.packs import PackError
from validator.resources import profiles_dir

IMR = "https://profiles.ihe.net/RAD/IMR/StructureDefinition/imr-imagingstudy"
runner = CliRunner()


def test_the_imr_examples_have_no_error_against_imr(shared) -> None:
    run = Validator().validate_paths([str(shared / "examples" / "imr")])
    assert len(run.results) == 5
    for result in run.results:
        assert result.profiles, f"{result.label}: meta.profile did not select a profile"
        errors = [i for i in result.issues if i.severity >= Severity.ERROR]
        assert errors == [], f"{result.label}: {errors}"


def test_the_imr_study_refers_to_an_endpoint_in_another_file_of_the_run(shared, tmp_path) -> None:
    study = json.loads((shared / "examples/imr/ImagingStudy-ex-ImagingStudy.json").read_text())
    endpoint = json.loads((shared / "examples/imr/Endpoint-ex-ImagingStudyEndpoint-Study.json").read_text())
    endpoint["connectionType"]["code"] = "hl7-fhir-rest"
    (tmp_path / "a-study.json").write_text(json.dumps(study))
    (tmp_path / "b-endpoint.json").write_text(json.dumps(endpoint))
    run = Validator().validate_paths([str(tmp_path)])
    study_rules = {i.rule for i in run.results[0].issues}
    assert "imr:ImagingStudy.endpoint:target-profile" in study_rules
    issue = next(i for i in run.results[0].issues if i.rule == "imr:ImagingStudy.endpoint:target-profile")
    assert issue.line is not None and "connectionType" in issue.message


@pytest.mark.parametrize("key", ["imr", IMR, f"{IMR}|1.1.0"])
def test_a_profile_is_found_by_short_name_or_canonical_url(key) -> None:
    (profile,) = Validator(profiles=[key]).requested
    assert profile.url == IMR


def test_an_unknown_profile_is_a_usage_error() -> None:
    with pytest.raises(UnknownProfile, match="imr"):
        Validator(profiles=["imr-typo"])
    result = runner.invoke(app, ["validate", "x.json", "--profile", "imr-typo"])
    assert result.exit_code == 2 and "unknown profile" in result.output


def test_the_cli_applies_a_profile_given_by_name(shared) -> None:
    path = shared / "examples" / "r4" / "ImagingStudy-example.json"
    plain = runner.invoke(app, ["validate", str(path)])
    imr = runner.invoke(app, ["validate", str(path), "--profile", "imr"])
    assert plain.exit_code == 0
    assert imr.exit_code == 1 and "imr:ImagingStudy.endpoint:card" in imr.output


def test_profiles_list_shows_the_imr_profiles() -> None:
    result = runner.invoke(app, ["profiles", "list"])
    assert "imr\tImagingStudy" in result.output and "imr-endpoint\tEndpoint" in result.output


def test_must_support_information_can_be_turned_off(tmp_path) -> None:
    pack = tmp_path / "ms.yaml"
    pack.write_text(
        "pack: test-ms\nruleset: mstest\nfhirVersion: 4.0.1\ntitle: t\nsource: s\n"
        "profile: {url: 'http://example.org/ms', name: ms, title: MS, type: ImagingStudy}\n"
        "constraints:\n  description: {mustSupport: true}\n"
    )
    study = {
        "resourceType": "ImagingStudy",
        "status": "available",
        "subject": {"reference": "Patient/p"},
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
    }
    with_ms = Validator(profiles=[str(pack)]).validate_resource(study)
    assert [(i.severity, i.rule) for i in with_ms.issues] == [
        (Severity.INFORMATION, "mstest:ImagingStudy.description:must-support")
    ]
    assert Validator(profiles=[str(pack)], must_support=False).validate_resource(study).issues == ()


LOOSENING = [
    (
        "a lower minimum than the base",
        "  started:\n    card: 1..1",
        "  status:\n    card: 0..1",
        "loosens the base minimum",
    ),
    (
        "a higher maximum than the base",
        "  started:\n    card: 1..1",
        "  started:\n    card: 1..*",
        "loosens the base maximum",
    ),
    (
        "a target the base does not allow",
        "    targets: [Patient]",
        "    targets: [Patient, Observation]",
        "Observation not allowed by the base",
    ),
    (
        "an element the base does not have",
        "  modality:\n    card: 1..*",
        "  modalities:\n    card: 1..*",
        "'modalities' is not an element of ImagingStudy",
    ),
]


@pytest.mark.parametrize(("defect", "old", "new", "message"), LOOSENING, ids=[x[0] for x in LOOSENING])
def test_a_profile_that_loosens_its_base_is_refused(tmp_path, defect, old, new, message) -> None:
    source = profiles_dir() / "ihe-imr" / "imr-imagingstudy.yaml"
    text = source.read_text()
    assert old in text
    broken = tmp_path / "imr-broken.yaml"
    broken.write_text(
        text.replace(old, new, 1)
        .replace("pack: ihe-imr-imagingstudy", "pack: imr-broken")
        .replace("name: imr\n", "name: imr-broken\n")
        .replace("imr-imagingstudy\n", "imr-broken\n")
        .replace("ruleset: imr", "ruleset: imrbroken")
    )
    with pytest.raises(PackError) as caught:
        Validator(profiles=[str(broken)])
    assert message in str(caught.value) and "imr-broken.yaml" in str(caught.value)


def test_a_weaker_binding_than_a_required_base_binding_is_refused(tmp_path) -> None:
    pack = tmp_path / "weak.yaml"
    pack.write_text(
        "pack: test-weak\nruleset: weak\nfhirVersion: 4.0.1\ntitle: t\nsource: s\n"
        "profile: {url: 'http://example.org/weak', name: weak, title: Weak, type: ImagingStudy}\n"
        "constraints:\n  status: {binding: {strength: extensible, valueSet: 'http://hl7.org/fhir/ValueSet/imagingstudy-status'}}\n"
    )
    with pytest.raises(PackError, match="weakens the base's required binding"):
        Validator(profiles=[str(pack)])
