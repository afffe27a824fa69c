"""Loading IGs (folder, package.tgz, the FHIR package cache), importing them as packs, and IMR by
import: the IMR StructureDefinitions give the same findings as the hand-written IMR packs."""

from __future__ import annotations

import io
import json
import re
import shutil
import tarfile
from pathlib import Path

import ig_payloads as P
import pytest
from conftest import require_shared
from fixture_cases import load_cases, write_case

from validator import Validator
from validator.cli import app
from validator.compile.ig.packages import IgError, read_ig


def _tgz(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return path


def _package(folder: Path, package_id: str = "ihe.rad.ira", version: str = "1.0.0") -> dict[str, bytes]:
    members = {"package/package.json": json.dumps({"name": package_id, "version": version,
                                                   "fhirVersions": ["5.0.0"]}).encode()}  # fmt: skip
    for f in folder.glob("*.json"):
        members[f"package/{f.name}"] = f.read_bytes()
    return members


def _study_without_accession() -> dict:
    study = P.ira_study()
    del study["identifier"][1]
    return study


def _rules(validator: Validator, payload: dict) -> set[str]:
    return {i.rule for i in validator.validate_resource(payload).issues}


# -- loading ----------------------------------------------------------------------------------------------
def test_an_ig_is_read_from_a_package_tgz(tmp_path) -> None:
    tgz = _tgz(tmp_path / "package.tgz", _package(require_shared() / "igs" / "ihe-ira"))
    ig = read_ig(str(tgz))
    assert (ig.package_id, ig.version, ig.label) == ("ihe.rad.ira", "1.0.0", "ihe.rad.ira#1.0.0")
    validator = Validator(igs=[str(tgz)], profiles=[P.IRA])
    assert "imagingstudycontext:ImagingStudy.identifier:accession:card" in _rules(validator, _study_without_accession())


def test_an_ig_is_found_in_the_fhir_package_cache_by_id_and_version(tmp_path, monkeypatch) -> None:
    cache = tmp_path / "packages"
    folder = cache / "ihe.rad.ira#1.0.0" / "package"
    folder.mkdir(parents=True)
    for name, data in _package(require_shared() / "igs" / "ihe-ira").items():
        (folder / name.removeprefix("package/")).write_bytes(data)
    monkeypatch.setenv("IMAGING_VALIDATOR_FHIR_PACKAGES", str(cache))
    validator = Validator(igs=["ihe.rad.ira#1.0.0"], profiles=[P.IRA])
    assert validator.requested[0].ig == "ihe.rad.ira#1.0.0"
    assert "imagingstudycontext:ImagingStudy.identifier:accession:card" in _rules(validator, _study_without_accession())
    with pytest.raises(IgError, match=r"no package ihe\.rad\.ira version 9\.9\.9 in the FHIR package cache"):
        read_ig("ihe.rad.ira#9.9.9")
    older = cache / "ihe.rad.ira#0.9.0"
    shutil.copytree(cache / "ihe.rad.ira#1.0.0", older)
    (older / "package" / "package.json").write_text(json.dumps({"name": "ihe.rad.ira", "version": "0.9.0"}))
    assert read_ig("ihe.rad.ira").version == "1.0.0"  # an id alone: its highest version in the cache


def test_a_tgz_member_outside_the_package_or_a_link_is_never_read(tmp_path) -> None:
    sd = (require_shared() / "igs" / "ihe-ira" / "StructureDefinition-imagingstudycontext.json").read_bytes()
    tgz = _tgz(tmp_path / "hostile.tgz", {"../../escape.json": sd, "/abs/escape.json": sd},
               links={"package/link.json": "/etc/passwd"})  # fmt: skip
    ig = read_ig(str(tgz))
    assert ig.resources == []
    assert not (tmp_path.parent / "escape.json").exists()


def test_a_path_that_is_not_an_ig_is_a_usage_error(tmp_path, capsys) -> None:
    (tmp_path / "s.json").write_text(json.dumps(P.ira_study()))
    (tmp_path / "broken.tgz").write_bytes(b"not a tarball")
    for source in (str(tmp_path / "missing"), str(tmp_path / "broken.tgz")):
        with pytest.raises(SystemExit) as done:
            app(["validate", "--ig", source, str(tmp_path / "s.json")], standalone_mode=True)
        assert done.value.code == 2
    err = capsys.readouterr().err
    assert "not a package.tgz, a folder or an id#version" in err and "not a readable package archive" in err


def test_a_profile_of_an_r5_ig_given_by_profile_validates_as_r5(tmp_path) -> None:
    validator = Validator(igs=[str(require_shared() / "igs" / "ihe-ira")], profiles=[P.IRA])
    result = validator.validate_resource(P.ira_study())
    assert result.fhir_version == "5.0.0" and result.profiles == (P.IRA,)


# -- constructs the pack format cannot hold are named, the rest applies --------------------------------
def test_an_unsupported_construct_is_named_with_its_element_and_the_rest_still_applies(tmp_path) -> None:
    ig = tmp_path / "ig"
    shutil.copytree(require_shared() / "igs" / "ihe-ira", ig)
    path = ig / "StructureDefinition-imagingstudycontext.json"
    sd = json.loads(path.read_text())
    sd["differential"]["element"].append({"id": "ImagingStudy.note", "path": "ImagingStudy.note",
                                          "slicing": {"discriminator": [{"type": "position", "path": "$this"}],
                                                      "rules": "open"}})  # fmt: skip
    obligation = {"url": "http://hl7.org/fhir/StructureDefinition/obligation",
                  "extension": [{"url": "code", "valueCode": "SHALL:populate-if-known"}]}
    sd["differential"]["element"].append({"id": "ImagingStudy.description", "path": "ImagingStudy.description",
                                          "extension": [obligation]})  # fmt: skip
    path.write_text(json.dumps(sd))
    issues = Validator(igs=[str(ig)], profiles=[P.IRA]).validate_resource(_study_without_accession()).issues
    notes = [i.message for i in issues if i.rule == "engine:profile-not-checked"]
    assert notes == [
        "ImagingStudy Context: ImagingStudy.note: discriminator position:$this is not supported: slices were not told "
        f"apart ({P.IRA}; the rest of the profile was applied)",
        f"ImagingStudy Context: ImagingStudy.description: 1 obligation(s) are not enforced ({P.IRA}; the rest of the "
        "profile was applied)",
    ]
    assert "imagingstudycontext:ImagingStudy.identifier:accession:card" in {i.rule for i in issues}


def test_a_profile_on_a_profile_applies_its_base_chain(tmp_path) -> None:
    ig = tmp_path / "ig"
    shutil.copytree(require_shared() / "igs" / "ihe-ira", ig)
    derived = {"resourceType": "StructureDefinition", "id": "national-study", "url": "http://example.org/national-study",
               "name": "NationalStudy", "title": "National study", "fhirVersion": "5.0.0", "kind": "resource",
               "type": "ImagingStudy", "derivation": "constraint", "baseDefinition": P.IRA + "|1.0.0",
               "differential": {"element": [{"id": "ImagingStudy.started", "path": "ImagingStudy.started", "min": 1}]}}
    (ig / "StructureDefinition-national-study.json").write_text(json.dumps(derived))
    study = _study_without_accession()
    del study["started"]
    validator = Validator(igs=[str(ig)], profiles=["http://example.org/national-study"])
    rules = _rules(validator, study)
    assert "national-study:ImagingStudy.started:card" in rules  # its own constraint
    assert "imagingstudycontext:ImagingStudy.identifier:accession:card" in rules  # its base's


def test_profiles_import_writes_packs_that_load_like_hand_written_ones(tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "packs"
    with pytest.raises(SystemExit) as done:
        app(["profiles", "import", str(require_shared() / "igs" / "ihe-mado"), "-o", str(out)], standalone_mode=True)
    assert done.value.code == 0
    assert "ihe-mado: 10 profile(s), 1 value-set pack(s); 3 construct(s) marked not checked" in capsys.readouterr().out
    assert (out / "madoimagingstudy.yaml").is_file() and (out / "ihe-mado-valuesets.yaml").is_file()
    monkeypatch.setenv("IMAGING_VALIDATOR_PROFILES", str(out))
    b = P.bundle(P.mado_study(), P.mado_wado(), P.mado_viewer())
    b["entry"][0]["resource"]["procedureCode"] = [{"coding": [{"system": "http://x.org", "code": "1"}]}]
    (tmp_path / "b.json").write_text(json.dumps(b))
    from_yaml = Validator(must_support=False).validate_paths([str(tmp_path / "b.json")])
    monkeypatch.delenv("IMAGING_VALIDATOR_PROFILES")
    from_ig = Validator(igs=[str(require_shared() / "igs" / "ihe-mado")], must_support=False).validate_paths(
        [str(tmp_path / "b.json")])  # fmt: skip
    assert [i.rule for r in from_yaml.results for i in r.issues] == [i.rule for r in from_ig.results for i in r.issues]
    assert "madoimagingstudy:mado-reqproc-1:invariant" in {i.rule for r in from_ig.results for i in r.issues}


def test_profiles_list_shows_each_profile_with_its_ig(capsys) -> None:
    with pytest.raises(SystemExit):
        app(["profiles", "list", "--ig", str(require_shared() / "igs" / "jp-core")], standalone_mode=True)
    lines = capsys.readouterr().out.splitlines()
    title = "JP Core ImagingStudy Radiology Profile"
    assert f"jp-imagingstudy-radiology\tImagingStudy\t4.0.1\tjp-core\t{P.JP_RADIOLOGY}\t{title}" in lines
    assert any(line.startswith("imr\tImagingStudy\t4.0.1\tbundled\t") for line in lines)


# -- IMR by import --------------------------------------------------------------------------------------
def _same(rule: str) -> str:
    """The rule without its ruleset (imr: for the hand-written packs, the SD id for imported ones)."""
    return rule if rule.startswith(("engine:", "r4:", "json:", "dicom:", "coding:")) else rule.split(":", 1)[1]


def _findings(validator: Validator, path: Path) -> list[tuple]:
    return [(i.severity, _same(i.rule), i.expression, re.sub(r"\[(imr|imr-imagingstudy|imaging-study-endpoint):",
                                                              "[", i.message))
            for r in validator.validate_paths([str(path)]).results for i in r.issues]  # fmt: skip


def test_imr_imported_from_its_structure_definitions_finds_what_the_hand_written_packs_find(tmp_path) -> None:
    imported = str(require_shared() / "imr-structuredefinitions")
    cases = [c for c in load_cases() if c.file == "imr.yaml"]
    examples = sorted((require_shared() / "examples" / "imr").glob("*.json"))
    assert cases and examples
    compared = 0
    for i, case in enumerate(cases):
        folder = tmp_path / str(i)
        folder.mkdir()
        path = write_case(case, folder)
        hand = _findings(Validator(fhir_version=case.version, profiles=case.profiles), path)
        by_import = _findings(Validator(fhir_version=case.version, profiles=case.profiles, igs=[imported]), path)
        assert by_import == hand, case.name
        compared += bool(hand)
    for path in examples:
        assert _findings(Validator(igs=[imported]), path) == _findings(Validator(), path), path.name
    assert compared > 10  # the cases do find something to compare


def test_rules_show_finds_a_rule_of_an_ig_profile(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        app(["rules", "show", "madoimagingstudy:mado-reqproc-1:invariant", "--ig",
             str(require_shared() / "igs" / "ihe-mado")], standalone_mode=True)  # fmt: skip
    out = capsys.readouterr().out
    assert done.value.code == 0
    assert "versions:    R4, R4B" in out and "FHIRPath of a profile invariant" in out


def test_a_structure_definition_with_a_snapshot_only_is_read_from_its_snapshot(tmp_path) -> None:
    ig = tmp_path / "ig"
    shutil.copytree(require_shared() / "igs" / "ihe-ira", ig)
    path = ig / "StructureDefinition-imagingstudycontext.json"
    sd = json.loads(path.read_text())
    elements = sd.pop("differential")["element"]
    # A snapshot restates the base too: its invariants (here ele-1, without a source) stay the base's.
    elements.insert(0, {"id": "ImagingStudy", "path": "ImagingStudy", "min": 0, "max": "*",
                        "constraint": [{"key": "ele-1", "severity": "error", "human": "All FHIR elements must have a "
                                        "@value or children", "expression": "hasValue() or (children().count() > 0)"}]})
    sd["snapshot"] = {"element": elements}
    path.write_text(json.dumps(sd))
    rules = _rules(Validator(igs=[str(ig)], profiles=[P.IRA]), _study_without_accession())
    assert "imagingstudycontext:ImagingStudy.identifier:accession:card" in rules
    assert not [r for r in rules if r.endswith("ele-1:invariant")]


def test_a_dicom_context_group_pydicom_lacks_is_not_checked_rather_than_empty() -> None:
    from validator.compile.ig.importer import dicom_value_set

    page = "http://dicom.nema.org/medical/dicom/current/output/chtml/part16/sect_CID_{}.html"
    assert dicom_value_set(page.format(244))["include"] == [{"pydicom": "cid:244"}]
    assert dicom_value_set(page.format(99999)) is None


def test_the_pytest_plugin_applies_an_ig_profile_from_its_ini(pytester: pytest.Pytester) -> None:
    shutil.copytree(require_shared() / "igs" / "ihe-ira", pytester.path / "ira")
    (pytester.path / "payloads").mkdir()
    good, bad = P.ira_study(), _study_without_accession()
    good["id"], bad["id"] = "good", "bad"
    for study in (good, bad):
        (pytester.path / "payloads" / f"{study['id']}.json").write_text(json.dumps(study))
    pytester.makeini(f"[pytest]\nfhir_payloads = payloads/*.json\nfhir_ig = ira\nfhir_profile = {P.IRA}\n")
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*imagingstudycontext:ImagingStudy.identifier:accession:card*"])


def test_a_conformance_suite_names_the_igs_its_profiles_come_from(tmp_path, capsys) -> None:
    shutil.copytree(require_shared() / "igs" / "ihe-ira", tmp_path / "ira")
    (tmp_path / "bad.json").write_text(json.dumps(_study_without_accession()))
    (tmp_path / "s.fhir-suite.yaml").write_text(f"""suite: IRA
igs: [ira]
profiles: ["{P.IRA}"]
cases:
  - title: a study without accession misses the accession slice
    payloads: [bad.json]
    expect: [{{rule: "imagingstudycontext:ImagingStudy.identifier:(card|accession:card)"}}]
""")
    with pytest.raises(SystemExit) as done:
        app(["test", str(tmp_path / "s.fhir-suite.yaml")], standalone_mode=True)
    assert done.value.code == 0, capsys.readouterr().out


def test_a_broken_part_of_a_definition_is_named_and_the_rest_of_the_profile_applies(tmp_path) -> None:
    ig = tmp_path / "ig"
    shutil.copytree(require_shared() / "igs" / "ihe-ira", ig)
    path = ig / "StructureDefinition-imagingstudycontext.json"
    sd = json.loads(path.read_text())
    sd["differential"]["element"] += [
        # a slice without the value its discriminator needs
        {"id": "ImagingStudy.note", "path": "ImagingStudy.note",
         "slicing": {"discriminator": [{"type": "value", "path": "text"}], "rules": "open"}},
        {"id": "ImagingStudy.note:first", "path": "ImagingStudy.note", "sliceName": "first", "min": 0, "max": "1"},
        # a cardinality that loosens the base (series.uid is 1..1)
        {"id": "ImagingStudy.series.uid", "path": "ImagingStudy.series.uid", "min": 0},
    ]  # fmt: skip
    broken = {"key": "ira-9", "severity": "error", "human": "broken", "expression": "identifier.where(",
              "source": sd["url"]}
    sd["differential"]["element"][0]["constraint"] = [broken]
    path.write_text(json.dumps(sd))
    issues = Validator(igs=[str(ig)], profiles=[P.IRA]).validate_resource(_study_without_accession()).issues
    notes = sorted(i.message.split(" (https://")[0] for i in issues if i.rule == "engine:profile-not-checked")
    assert notes[:2] == [
        "ImagingStudy Context: ImagingStudy.note:first: a value discriminator on text needs a fixed or pattern value "
        "at the path (not checked)",
        "ImagingStudy Context: ImagingStudy.series.uid: 0..1 loosens the base minimum 1..1 (not checked)",
    ]
    assert notes[2].startswith("ImagingStudy Context: ira-9: expression does not parse: column 18") and len(notes) == 3
    assert "imagingstudycontext:ImagingStudy.identifier:accession:card" in {i.rule for i in issues}


def test_two_igs_with_the_same_structure_definition_id_load_side_by_side() -> None:
    idr, imr = require_shared() / "igs" / "ihe-idr", require_shared() / "imr-structuredefinitions"
    validator = Validator(igs=[str(idr), str(imr)])
    found = validator.profile_set.profiles
    imr_endpoint = "https://profiles.ihe.net/RAD/IMR/StructureDefinition/imaging-study-endpoint"
    assert (found[P.IDR_ENDPOINT].ig, found[imr_endpoint].ig) == ("ihe-idr", "imr-structuredefinitions")
    r4 = set(validator.profile_set.rules_for("4.0.1"))
    r5 = set(validator.profile_set.rules_for("5.0.0"))
    assert "imaging-study-endpoint:Endpoint.payload:card" in r5 - r4  # IDR's, R5
    assert "imaging-study-endpoint-2:Endpoint.payloadType:card" in r4 - r5  # IMR's, R4, renumbered


def test_an_extension_definition_given_to_profile_is_a_usage_error() -> None:
    from validator.api import UnknownProfile

    with pytest.raises(UnknownProfile, match="constrains Extension, a datatype"):
        Validator(igs=[str(require_shared() / "igs" / "ihe-mado")], profiles=[P.MADO_SD + "MadoNumberOfFrames"])


def test_an_imposed_profile_is_named_as_not_enforced(tmp_path) -> None:
    ig = tmp_path / "ig"
    shutil.copytree(require_shared() / "igs" / "ihe-ira", ig)
    path = ig / "StructureDefinition-imagingstudycontext.json"
    sd = json.loads(path.read_text())
    sd["extension"] = [{"url": "http://hl7.org/fhir/StructureDefinition/structuredefinition-imposeProfile",
                        "valueCanonical": "http://example.org/other-profile"}]  # fmt: skip
    path.write_text(json.dumps(sd))
    issues = Validator(igs=[str(ig)], profiles=[P.IRA]).validate_resource(P.ira_study()).issues
    assert [i.message for i in issues if i.rule == "engine:profile-not-checked"] == [
        "ImagingStudy Context: ImagingStudy: structuredefinition-imposeProfile http://example.org/other-profile is "
        f"not enforced ({P.IRA}; the rest of the profile was applied)"]


def test_a_profile_is_selected_by_the_name_its_ig_gives_it_whatever_the_case() -> None:
    mado = str(require_shared() / "igs" / "ihe-mado")
    url = "https://profiles.ihe.net/RAD/MADO/StructureDefinition/MadoImagingStudy"
    for name in ("MadoImagingStudy", "madoimagingstudy", url):
        assert Validator(profiles=[name], igs=[mado]).profile_set.find(name).url == url
    with pytest.raises(Exception, match="NoSuchProfile"):
        Validator(profiles=["NoSuchProfile"], igs=[mado]).validate_resource({"resourceType": "ImagingStudy"})
