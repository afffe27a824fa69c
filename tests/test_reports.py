"""Reports: JUnit against the JUnit XSD, SARIF against the SARIF 2.1.0 schema, OperationOutcome
details, the HTML report's content and escaping, atomic writing, and all formats from one run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import junit_schema as junit_xsd
from hostile_payloads import HOSTILE
from jsonschema import Draft4Validator
from lxml import etree
from typer.testing import CliRunner

from validator import Validator
from validator.cli import app
from validator.report import html_report, junit, operation_outcome, sarif

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "payloads"
runner = CliRunner()


@pytest.fixture(scope="module")
def run():
    return Validator().validate_paths([str(EXAMPLES)])


@pytest.fixture(scope="module")
def junit_schema():
    return junit_xsd()


def test_the_junit_report_is_valid_against_the_junit_schema(run, junit_schema) -> None:
    doc = etree.fromstring(junit.render(run).encode())
    assert junit_schema.validate(doc), junit_schema.error_log


def test_junit_has_a_suite_per_file_and_a_case_per_resource(run) -> None:
    doc = etree.fromstring(junit.render(run).encode())
    names = [s.get("name") for s in doc.findall("testsuite")]
    assert sum(n.endswith("studies.ndjson") for n in names) == 1
    cases = doc.findall(".//testcase")
    assert len(cases) == len(run.results)
    assert any(c.get("name") == "ImagingStudy/ct-11 (entry 2)" for c in cases)


def test_a_failing_resource_is_a_junit_failure_listing_every_issue(run) -> None:
    doc = etree.fromstring(junit.render(run).encode())
    case = next(c for c in doc.findall(".//testcase") if c.get("name") == "ImagingStudy/ct-4")
    failure = case.find("failure")
    assert failure is not None and failure.get("type") == "error"
    broken = next(r for r in run.results if r.id == "ct-4")
    for issue in broken.issues:
        assert issue.rule in failure.text and f"{issue.line}:{issue.column}" in failure.text
    assert "warning" in case.find("system-out").text  # the sopClass binding warning
    assert float(case.get("time")) >= 0


def test_a_passing_resource_with_information_has_it_in_system_out(run) -> None:
    doc = etree.fromstring(junit.render(run).encode())
    case = next(c for c in doc.findall(".//testcase") if c.get("name") == "Patient/p2 (entry 2)")
    assert case.find("failure") is None
    assert "engine:unsupported-resource-type" in case.find("system-out").text


def test_junit_makes_a_suite_per_profile_when_a_file_applies_several(run) -> None:
    doc = etree.fromstring(junit.render(run).encode())
    names = [s.get("name") for s in doc.findall("testsuite") if "imr-study-bundle" in s.get("name")]
    assert sorted(n.rsplit(" ", 1)[-1] for n in names) == ["[imaging-study-endpoint]", "[imr-imagingstudy]"]


def test_the_sarif_report_is_valid_sarif_2_1_0(run, shared) -> None:
    doc = json.loads(sarif.render(run))
    schema = json.loads((shared / "schemas" / "sarif-schema-2.1.0.json").read_text())
    errors = list(Draft4Validator(schema).iter_errors(doc))
    assert not errors, [e.message for e in errors[:3]]


def test_sarif_has_one_rule_per_rule_id_and_one_result_per_issue_with_a_region(run) -> None:
    doc = json.loads(sarif.render(run))
    (sarif_run,) = doc["runs"]
    rules = sarif_run["tool"]["driver"]["rules"]
    assert len({r["id"] for r in rules}) == len(rules)
    assert all(r["fullDescription"]["text"] for r in rules)
    issues = [i for r in run.results for i in r.issues]
    assert len(sarif_run["results"]) == len(issues)
    dup = next(r for r in sarif_run["results"] if r["ruleId"] == "json:duplicate-key")
    location = dup["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"].endswith("examples/payloads/broken-study.json")
    assert location["region"] == {"startLine": 20, "startColumn": 3}
    assert rules[dup["ruleIndex"]]["id"] == "json:duplicate-key"


def test_operation_outcome_issues_carry_details_diagnostics_expression_and_position(run) -> None:
    bundle = json.loads(operation_outcome.render(run))
    outcome = next(e["resource"] for e in bundle["entry"] if "ct-4" in e["resource"]["text"]["div"])
    issue = next(i for i in outcome["issue"] if i["details"]["coding"][0]["code"] == "json:duplicate-key")
    assert issue["severity"] == "error" and issue["code"] == "structure"
    assert issue["expression"] == ["ImagingStudy.status"]
    assert issue["diagnostics"] == "json:duplicate-key at line 20, column 3"
    ext = {e["url"].rsplit("-", 1)[-1]: e["valueInteger"] for e in issue["extension"]}
    assert ext == {"line": 20, "col": 3}


def test_the_html_report_escapes_all_payload_text(tmp_path) -> None:
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(HOSTILE, indent=1))
    page = html_report.render(Validator().validate_paths([str(path)]))
    assert "<script>window.__pwned" not in page and "<img src=x" not in page
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page


def test_the_html_report_is_self_contained(run) -> None:
    page = html_report.render(run)
    assert "default-src 'none'" in page
    for tag in ("<link", "<script src", '<img src="http', "@import"):
        assert tag not in page
    assert page.count('<section class="resource') == len(run.results)


def test_one_run_writes_every_format_and_creates_missing_folders(tmp_path) -> None:
    out = tmp_path / "deep" / "reports"
    args = [
        "validate",
        str(EXAMPLES),
        "--json",
        str(out / "r.json"),
        "--operation-outcome",
        str(out / "oo.json"),
        "--junit",
        str(out / "junit.xml"),
        "--html",
        str(out / "r.html"),
        "--sarif",
        str(out / "r.sarif"),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert sorted(p.name for p in out.iterdir()) == ["junit.xml", "oo.json", "r.html", "r.json", "r.sarif"]
    json.loads((out / "r.sarif").read_text())
    etree.fromstring((out / "junit.xml").read_bytes())


def test_a_report_is_replaced_whole_and_no_temporary_file_is_left(tmp_path) -> None:
    target = tmp_path / "r.json"
    target.write_text("old content that is longer than nothing" * 1000)
    runner.invoke(app, ["validate", str(EXAMPLES / "ct-chest.json"), "--json", str(target)])
    assert json.loads(target.read_text())["summary"]["resources"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_an_unwritable_report_names_the_path_and_exits_2(tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = runner.invoke(app, ["validate", str(EXAMPLES / "ct-chest.json"), "--sarif", str(blocker / "r.sarif")])
    assert result.exit_code == 2 and str(blocker / "r.sarif") in result.output


def test_the_pre_commit_hook_runs_the_validator_on_payload_files() -> None:
    import re

    import yaml

    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["entry"].split()[:2] == ["imaging-validator", "validate"]
    assert hook["language"] == "python"
    assert re.search(hook["files"], "payloads/ct.json") and not re.search(hook["files"], "README.md")


class _Terminal:
    """A stand-in stderr that says it is a terminal and keeps what is written."""

    def __init__(self) -> None:
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass


def test_the_progress_display_appears_only_for_long_runs_on_a_terminal(monkeypatch) -> None:
    from validator.progress import SHOW_AFTER, Progress

    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with Progress(enabled=True) as progress:
        progress(SHOW_AFTER - 1)
        assert progress._bar is None
        progress(SHOW_AFTER)
        assert progress._bar is not None
    with Progress(enabled=False) as quiet:
        quiet(SHOW_AFTER * 10)
        assert quiet._bar is None


def test_no_progress_display_when_stderr_is_not_a_terminal() -> None:
    from validator.progress import SHOW_AFTER, Progress

    with Progress(enabled=True) as progress:  # pytest captures stderr: not a terminal
        progress(SHOW_AFTER * 10)
        assert progress._bar is None
