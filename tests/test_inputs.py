"""Inputs: files, directories, globs, stdin, Bundles (every entry), NDJSON (every line);
positions of issues in the source text; a bad input never stops the others."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from validator import Severity, Validator
from validator.load.sources import InputError, expand_paths

STUDY = {
    "resourceType": "ImagingStudy",
    "id": "s1",
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
    "status": "available",
    "subject": {"reference": "Patient/p"},
}


def _write(path: Path, data) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
    return path


def test_every_entry_of_a_searchset_bundle_is_validated_with_its_index(validator, tmp_path) -> None:
    bad = dict(STUDY, id="s2", status="bogus")
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 2,
        "entry": [
            {"fullUrl": "https://x/ImagingStudy/s1", "resource": STUDY, "search": {"mode": "match"}},
            {"fullUrl": "https://x/ImagingStudy/s2", "resource": bad, "search": {"mode": "match"}},
        ],
    }
    results = validator.validate_file(_write(tmp_path / "b.json", bundle))
    assert [(r.entry, r.id) for r in results] == [(0, "s1"), (1, "s2")]
    assert results[0].issues == ()
    issue = results[1].issues[0]
    assert issue.rule == "r4:ImagingStudy.status:binding" and issue.expression == "ImagingStudy.status"
    text = (tmp_path / "b.json").read_text().splitlines()
    assert '"bogus"' in text[issue.line - 1]


def test_a_bundle_entry_reference_by_urn_uuid_is_resolved_for_target_checks(validator, tmp_path) -> None:
    study = dict(STUDY, subject={"reference": "urn:uuid:2f1d7d52-8e0a-4a44-9c3b-0c6f5f5e8b11"})
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "urn:uuid:2f1d7d52-8e0a-4a44-9c3b-0c6f5f5e8b11",
                "resource": {"resourceType": "Observation", "id": "o"},
            },
            {"resource": study},
        ],
    }
    results = validator.validate_file(_write(tmp_path / "b.json", bundle))
    assert any(i.rule == "r4:ImagingStudy.subject:target" for i in results[1].issues)


def test_every_ndjson_line_is_a_resource_and_a_bad_line_does_not_stop_the_others(validator, tmp_path) -> None:
    lines = [json.dumps(STUDY), "{not json", json.dumps(dict(STUDY, id="s3", started="2020-01-01T10:00"))]
    results = validator.validate_file(_write(tmp_path / "x.ndjson", "\n".join(lines) + "\n"))
    assert [r.entry for r in results] == [1, 2, 3]
    assert results[0].issues == ()
    assert results[1].issues[0].severity is Severity.FATAL and results[1].issues[0].line == 2
    assert results[2].issues[0].rule == "r4:dateTime:format" and results[2].issues[0].line == 3


def test_a_directory_is_searched_recursively_in_a_stable_order(tmp_path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("z.json", "a/y.ndjson", "a/b/x.json", "a/readme.txt"):
        (tmp_path / name).write_text("{}")
    found = [Path(p).relative_to(tmp_path).as_posix() for p in expand_paths([str(tmp_path)])]
    assert found == ["a/b/x.json", "a/y.ndjson", "z.json"]


def test_a_glob_expands_and_an_empty_glob_is_a_usage_error(tmp_path) -> None:
    _write(tmp_path / "one.json", STUDY)
    assert expand_paths([str(tmp_path / "*.json")]) == [str(tmp_path / "one.json")]
    with pytest.raises(InputError, match="no file matches"):
        expand_paths([str(tmp_path / "*.xml")])


def test_a_missing_path_is_a_usage_error() -> None:
    with pytest.raises(InputError, match="no such file"):
        expand_paths(["/nonexistent/study.json"])


def test_an_unreadable_file_is_fatal_and_the_next_file_is_still_validated(validator, tmp_path) -> None:
    bad = _write(tmp_path / "bad.json", "x")
    bad.write_bytes(b'{"resourceType": "ImagingStudy", "id": "\xff"}')
    good = _write(tmp_path / "good.json", STUDY)
    run = validator.validate_paths([str(bad), str(good)])
    assert run.results[0].issues[0].rule == "input:unreadable"
    assert run.results[1].issues == ()


def test_issue_positions_point_at_the_offending_key(validator, tmp_path) -> None:
    text = json.dumps(
        dict(STUDY, series=[{"uid": "1.2", "modality": {"code": "CT"}, "numberOfInstances": "3"}]), indent=2
    )
    results = validator.validate_file(_write(tmp_path / "p.json", text))
    issue = next(i for i in results[0].issues if i.rule == "r4:ImagingStudy.series.numberOfInstances:type")
    line = text.splitlines()[issue.line - 1]
    assert line[issue.column - 1 :].startswith('"numberOfInstances"')
    assert issue.expression == "ImagingStudy.series[0].numberOfInstances"


def test_a_key_written_with_escapes_is_located_like_any_other(validator, tmp_path) -> None:
    text = json.dumps(dict(STUDY, series=[{"uid": "1.2", "modality": {"code": "CT"}, "numberOfInstances": "3"}]),
                      indent=2).replace('"numberOfInstances"', '"numberOf\\u0049nstances"')  # fmt: skip
    results = validator.validate_file(_write(tmp_path / "p.json", text))
    issue = next(i for i in results[0].issues if i.rule == "r4:ImagingStudy.series.numberOfInstances:type")
    line = text.splitlines()[issue.line - 1]
    assert line[issue.column - 1 :].startswith('"numberOf\\u0049nstances"')


def test_a_missing_element_is_reported_where_it_should_be(validator, tmp_path) -> None:
    text = json.dumps(dict(STUDY, series=[{"modality": {"code": "CT"}}]), indent=2)
    results = validator.validate_file(_write(tmp_path / "p.json", text))
    issue = next(i for i in results[0].issues if i.rule == "r4:ImagingStudy.series.uid:card")
    assert issue.expression == "ImagingStudy.series[0].uid"
    assert text.splitlines()[issue.line - 1].strip().startswith("{")  # the series object that lacks it


def test_a_duplicate_key_points_at_the_repeated_occurrence(validator, tmp_path) -> None:
    text = '{\n "resourceType": "ImagingStudy",\n "status": "available",\n "status": "available"\n}'
    results = validator.validate_file(_write(tmp_path / "d.json", text))
    issue = next(i for i in results[0].issues if i.rule == "json:duplicate-key")
    assert (issue.line, issue.column) == (4, 2)


def test_a_resource_type_without_rules_gets_one_information_issue(validator) -> None:
    result = validator.validate_resource({"resourceType": "Patient", "id": "p"})
    assert [(i.severity, i.rule) for i in result.issues] == [(Severity.INFORMATION, "engine:unsupported-resource-type")]


def test_the_api_validates_a_dict_and_reports_the_version_and_why(validator) -> None:
    result = validator.validate_resource(dict(STUDY))
    assert result.issues == () and result.fhir_version == "4.0.1"
    assert result.version_reason.startswith("R4; no version marker decides")
    assert Validator(fhir_version="R4B").validate_resource(dict(STUDY)).version_reason == "--fhir-version"
