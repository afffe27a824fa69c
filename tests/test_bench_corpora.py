"""The benchmark's corpora (bench/corpora.py) hold what they claim: realistic studies carry the
optional elements real senders fill in and nothing the validator objects to, and each seeded
defect is one the validator reports, at a line and column. A corpus whose 'defects' were legal
would time the wrong thing."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from validator import Severity, Validator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from benchmark import study
from corpora import DEFECTS, realistic, with_findings, write_corpora


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator(fhir_version=None)


def problems(validator: Validator, doc: dict, tmp_path: Path) -> list:
    path = tmp_path / "study.json"
    path.write_text(json.dumps(doc))
    return [i for r in validator.validate_file(path) for i in r.issues if i.severity >= Severity.WARNING]


def test_realistic_study_has_the_optional_elements_and_no_problem(validator: Validator, tmp_path: Path) -> None:
    doc = realistic(random.Random(1), study)
    assert {"procedureCode", "referrer", "note", "description"} <= doc.keys()
    assert any(i.get("type") for i in doc["identifier"])  # the accession number, with its type
    assert all("bodySite" in s and "performer" in s for s in doc["series"])
    assert problems(validator, doc, tmp_path) == []


@pytest.mark.parametrize("defect", DEFECTS, ids=lambda d: d.__name__)
def test_each_defect_is_reported_and_placed(defect, validator: Validator, tmp_path: Path) -> None:
    doc = realistic(random.Random(2), study)
    defect(doc)
    found = problems(validator, doc, tmp_path)
    assert found, defect.__name__
    assert all(i.line and i.column for i in found)


def test_large_study_with_findings_has_an_error(validator: Validator, tmp_path: Path) -> None:
    found = problems(validator, with_findings(random.Random(3), study, 2, 20), tmp_path)
    assert any(i.severity >= Severity.ERROR for i in found)


def test_defect_corpus_is_one_in_ten(tmp_path: Path) -> None:
    corpora = write_corpora(random.Random(4), tmp_path, study, size=60)
    (clean, _), (broken, _) = corpora.values()
    pairs = zip(clean.read_text().splitlines(), broken.read_text().splitlines(), strict=True)
    assert sum(a != b for a, b in pairs) == 6
