"""Conformance suites: `imaging-validator test` passes a case exactly when its expected issues
occur and nothing else reaches the fail level; a broken suite file is a usage error naming the
file and the key; reports as for validate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import junit_schema
from lxml import etree
from typer.testing import CliRunner

from validator.cli import app
from validator.suites import SuiteError, load_suite

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "payloads"
runner = CliRunner()


@pytest.fixture
def folder(tmp_path) -> Path:
    (tmp_path / "payloads").mkdir()
    for name in ("broken-study.json", "ct-chest.json", "studies.ndjson"):
        shutil.copy(EXAMPLES / name, tmp_path / "payloads" / name)
    return tmp_path


def _suite(folder: Path, body: str) -> Path:
    path = folder / "s.fhir-suite.yaml"
    path.write_text("suite: test\ncases:\n" + body)
    return path


def test_the_example_suite_passes() -> None:
    result = runner.invoke(app, ["test", str(ROOT / "examples" / "conformance.fhir-suite.yaml")])
    assert result.exit_code == 0, result.output
    assert "5 passed, 0 failed" in result.output


def test_a_valid_payload_expected_valid_passes(folder) -> None:
    path = _suite(folder, "  - title: ok\n    payloads: [payloads/ct-chest.json]\n    expect: valid\n")
    assert runner.invoke(app, ["test", str(path)]).exit_code == 0


def test_an_unexpected_issue_fails_the_case(folder) -> None:
    path = _suite(folder, "  - title: claims valid\n    payloads: [payloads/studies.ndjson]\n    expect: valid\n")
    result = runner.invoke(app, ["test", str(path)])
    assert result.exit_code == 1
    assert "unexpected error" in result.output and "r4:ImagingStudy.series.uid:card" in result.output


def test_an_expected_issue_that_did_not_occur_fails_the_case(folder) -> None:
    path = _suite(folder, "  - title: expects a problem\n    payloads: [payloads/ct-chest.json]\n"
                          "    expect: [{rule: json:duplicate-key}]\n")  # fmt: skip
    result = runner.invoke(app, ["test", str(path)])
    assert result.exit_code == 1 and "expected issue did not occur: rule=json:duplicate-key" in result.output


def test_rule_and_expression_match_as_regular_expressions_and_message_as_text(folder) -> None:
    path = _suite(
        folder,
        "  - title: pinned\n    payloads: [payloads/studies.ndjson]\n    expect:\n"
        "      - {rule: 'r4:ImagingStudy\\.series\\..*:card', severity: error,\n"
        "         expression: 'ImagingStudy\\.series\\[\\d\\]\\.uid', message: required}\n",
    )
    assert runner.invoke(app, ["test", str(path)]).exit_code == 0
    wrong = _suite(folder, "  - title: pinned\n    payloads: [payloads/studies.ndjson]\n    expect:\n"
                           "      - {rule: 'r4:ImagingStudy.series.uid:card', message: 'no such words'}\n")  # fmt: skip
    assert runner.invoke(app, ["test", str(wrong)]).exit_code == 1


def test_warnings_below_the_fail_level_do_not_fail_a_case(folder) -> None:
    path = _suite(folder, "  - title: warnings allowed\n    payloads: [payloads/broken-study.json]\n"
                          "    expect: [{rule: '.*', severity: error}]\n")  # fmt: skip
    assert runner.invoke(app, ["test", str(path)]).exit_code == 0
    strict = _suite(
        folder,
        "  - title: warnings fail\n    payloads: [payloads/broken-study.json]\n    failOn: warning\n"
        "    expect: [{rule: '.*', severity: error}]\n",
    )
    result = runner.invoke(app, ["test", str(strict)])
    assert result.exit_code == 1 and "unexpected warning" in result.output


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("  - title: x\n    payloads: [payloads/ct-chest.json]\n    expect: fine\n", "key cases[0].expect"),
        ("  - title: x\n    payloads: [payloads/ct-chest.json]\n    expect: valid\n    colour: red\n", "key cases[0]"),
        ("  - title: x\n    payloads: [payloads/none-*.json]\n    expect: valid\n", "key cases[0].payloads[0]"),
        (
            "  - title: x\n    payloads: [payloads/ct-chest.json]\n    expect: [{rule: '('}]\n",
            "key cases[0].expect[0].rule",
        ),
        (
            "  - title: x\n    payloads: [payloads/ct-chest.json]\n    profiles: [nope]\n    expect: valid\n",
            "key cases[0].profiles",
        ),
    ],
    ids=["expect neither valid nor a list", "unknown key", "glob matches nothing", "bad regex", "unknown profile"],
)
def test_a_bad_suite_file_exits_2_naming_the_file_and_key(folder, body, named) -> None:
    path = _suite(folder, body)
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    assert str(path) in str(caught.value) and named in str(caught.value)
    result = runner.invoke(app, ["test", str(path)])
    assert result.exit_code == 2 and named in result.output


def test_suite_reports_are_written_and_the_junit_one_is_valid(folder, shared) -> None:
    path = _suite(
        folder,
        "  - title: ok\n    payloads: [payloads/ct-chest.json]\n    expect: valid\n"
        "  - title: not ok\n    payloads: [payloads/studies.ndjson]\n    expect: valid\n",
    )
    out = folder / "out"
    result = runner.invoke(app, ["test", str(path), "--junit", str(out / "j.xml"), "--json", str(out / "r.json"),
                                 "--html", str(out / "r.html")])  # fmt: skip
    assert result.exit_code == 1
    schema = junit_schema()
    doc = etree.parse(str(out / "j.xml"))
    assert schema.validate(doc), schema.error_log
    assert [c.get("name") for c in doc.iter("testcase")] == ["ok", "not ok"]
    report = json.loads((out / "r.json").read_text())
    assert report["summary"] == {"cases": 2, "passed": 1, "failed": 1}
    assert "Conformance cases" in (out / "r.html").read_text()
