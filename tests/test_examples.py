"""The official R4 examples validate without error; the bundled examples do what they say."""

from __future__ import annotations

from pathlib import Path

import pytest

from validator import Severity

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "payloads"


def _official(shared):
    return sorted((shared / "examples" / "r4").glob("*.json"))


def test_the_official_r4_examples_have_no_error(validator, shared) -> None:
    files = _official(shared)
    assert len(files) == 2
    for path in files:
        for result in validator.validate_file(path):
            bad = [i for i in result.issues if i.severity >= Severity.ERROR]
            assert bad == [], f"{path.name}: {bad}"


def test_the_only_warnings_on_the_official_examples_are_real_dicom_findings(validator, shared) -> None:
    # The XR example lists CT Image Storage instances in a DX series: the DICOM pack says so.
    warnings = {(p.name, i.rule) for p in _official(shared) for r in validator.validate_file(p) for i in r.issues
                if i.severity is Severity.WARNING}  # fmt: skip
    assert warnings == {("ImagingStudy-example-xr.json", "dicom:sop-class-modality")}


@pytest.mark.parametrize("name", ["ct-chest.json", "searchset-bundle.json", "imr-study-bundle.json"])
def test_the_bundled_conformant_examples_pass(validator, name) -> None:
    results = validator.validate_file(EXAMPLES / name)
    assert results and not any(r.fails(Severity.WARNING) for r in results)


def test_the_bundled_broken_example_shows_one_finding_per_planted_defect(validator) -> None:
    (result,) = validator.validate_file(EXAMPLES / "broken-study.json")
    rules = {i.rule for i in result.issues}
    assert {
        "json:duplicate-key",
        "r4:ImagingStudy.status:binding",
        "r4:ImagingStudy.numberOfSeries:type",
        "json:array-expected",
        "r4:dateTime:format",
        "json:unknown-property",
        "r4:ImagingStudy.subject:target",
        "json:empty-array",
        "dicom:uid-syntax",
        "dicom:sop-class-modality",
        "dicom:series-number-of-instances",
    } == rules


def test_the_bundled_ndjson_fails_only_its_broken_line(validator) -> None:
    results = validator.validate_file(EXAMPLES / "studies.ndjson")
    assert [r.fails(Severity.ERROR) for r in results] == [False, True, False]
