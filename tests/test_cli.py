"""The command line: exit codes, reports and their schemas, rule listings, a real subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft6Validator, Draft202012Validator
from typer.testing import CliRunner

from validator.cli import app
from validator.resources import package_file

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "payloads"
runner = CliRunner()


@pytest.fixture
def valid_file(shared) -> str:
    return str(shared / "examples" / "r4" / "ImagingStudy-example.json")


@pytest.fixture
def broken_file() -> str:
    return str(EXAMPLES / "broken-study.json")


def test_a_conformant_file_exits_0(valid_file) -> None:
    result = runner.invoke(app, ["validate", valid_file])
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output


def test_a_non_conformant_file_exits_1_and_shows_the_issue(broken_file) -> None:
    result = runner.invoke(app, ["validate", broken_file])
    assert result.exit_code == 1
    assert "r4:ImagingStudy.status:binding" in result.output
    assert "broken-study.json" in result.output


def test_a_malformed_file_exits_1_and_the_other_files_are_still_validated(tmp_path, valid_file) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"resourceType": ')
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["validate", str(bad), valid_file, "--json", str(out)])
    assert result.exit_code == 1
    report = json.loads(out.read_text())
    assert [r["status"] for r in report["results"]] == ["fail", "pass"]
    assert report["results"][0]["issues"][0]["severity"] == "fatal"


@pytest.mark.parametrize("fail_on,code", [("error", 0), ("information", 1), ("never", 0)])
def test_fail_on_sets_the_threshold(shared, fail_on, code) -> None:
    # the XR example carries information issues only (bindings to value sets not bundled)
    path = str(shared / "examples" / "r4" / "ImagingStudy-example-xr.json")
    assert runner.invoke(app, ["validate", path, "--fail-on", fail_on]).exit_code == code


def test_never_fail_exits_0_even_with_errors(broken_file) -> None:
    assert runner.invoke(app, ["validate", broken_file, "--fail-on", "never"]).exit_code == 0


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "does-not-exist.json"],
        ["validate", "nothing-matches-*.json"],
        ["validate", "x.json", "--fail-on", "sometimes"],
        ["validate", "x.json", "--fhir-version", "R9"],
        ["validate", "x.json", "--fhir-version", "R5"],
        ["validate", "x.json", "--profile", "no-such-profile"],
        ["validate", "--bogus-option", "x.json"],
        ["rules", "show", "no-such-rule"],
    ],
    ids=[
        "missing file",
        "empty glob",
        "bad fail-on",
        "unknown version",
        "version without packs",
        "unknown profile",
        "unknown option",
        "unknown rule",
    ],
)
def test_usage_errors_exit_2_with_a_message(args) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.output.strip()


def test_the_json_report_validates_against_its_schema(tmp_path) -> None:
    out = tmp_path / "report.json"
    runner.invoke(app, ["validate", str(EXAMPLES), "--json", str(out)])
    report = json.loads(out.read_text())
    schema = json.loads(package_file("schemas", "report.schema.json").read_text())
    errors = list(Draft202012Validator(schema).iter_errors(report))
    assert not errors, errors[:3]
    assert report["summary"]["resources"] == len(report["results"]) >= 7
    issue = next(i for r in report["results"] for i in r["issues"] if i["rule"] == "json:unknown-property")
    assert issue["expression"] == "ImagingStudy.accession" and issue["line"] and issue["column"]


def test_the_operation_outcome_bundle_is_valid_fhir_r4(tmp_path, shared) -> None:
    out = tmp_path / "oo.json"
    runner.invoke(app, ["validate", str(EXAMPLES), "--operation-outcome", str(out)])
    bundle = json.loads(out.read_text())
    schema = json.loads((shared / "schemas" / "fhir-r4.schema.json").read_text())
    errors = list(Draft6Validator(schema).iter_errors(bundle))
    assert not errors, [e.message for e in errors[:3]]
    outcomes = [e["resource"] for e in bundle["entry"]]
    assert all(o["resourceType"] == "OperationOutcome" for o in outcomes)
    codes = {c["code"] for o in outcomes for i in o["issue"] for c in i.get("details", {}).get("coding", [])}
    assert "r4:ImagingStudy.series.uid:card" in codes


def test_an_unwritable_report_path_is_a_usage_error(tmp_path, valid_file) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(app, ["validate", valid_file, "--json", str(blocker / "sub" / "r.json")])
    assert result.exit_code == 2
    assert "cannot write report" in result.output


def test_quiet_prints_only_failing_resources(broken_file, valid_file) -> None:
    result = runner.invoke(app, ["validate", broken_file, valid_file, "--quiet"])
    assert "broken-study.json" in result.output
    assert "ImagingStudy-example.json" not in result.output


def test_stdin_is_read_with_a_dash(valid_file) -> None:
    result = runner.invoke(app, ["validate", "-"], input=Path(valid_file).read_text())
    assert result.exit_code == 0, result.output


def test_rules_list_names_every_rule_with_path_severity_kind_and_description() -> None:
    result = runner.invoke(app, ["rules", "list", "--format", "json"])
    rules = json.loads(result.output)
    by_id = {r["id"]: r for r in rules}
    assert by_id["r4:ImagingStudy.series.uid:card"]["path"] == "ImagingStudy.series.uid"
    assert by_id["r4:dom-6"]["severity"] == "warning" and by_id["r4:dom-6"]["kind"] == "invariant"
    assert all(r["description"] and r["source"] for r in rules)
    text = runner.invoke(app, ["rules", "list"]).output
    assert "r4:ext-1" in text


def test_rules_show_describes_one_rule() -> None:
    result = runner.invoke(app, ["rules", "show", "r4:ImagingStudy.status:binding"])
    assert result.exit_code == 0
    assert "imagingstudy-status" in result.output and "required" in result.output


def test_profiles_list_says_what_is_installed() -> None:
    result = runner.invoke(app, ["profiles", "list"])
    assert result.exit_code == 0 and "profile" in result.output.lower()


def test_the_installed_entry_point_runs_as_a_subprocess(valid_file, broken_file) -> None:
    exe = shutil.which("imaging-validator", path=str(Path(sys.executable).parent)) or shutil.which("imaging-validator")
    assert exe, "the imaging-validator entry point is not installed"
    env = {k: v for k, v in os.environ.items() if k != "IMAGING_VALIDATOR_RULES"}
    ok = subprocess.run([exe, "validate", valid_file], capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([exe, "validate", broken_file, "-q"], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 1 and "json:duplicate-key" in bad.stdout


def test_the_validate_command_alone_gives_what_the_whole_application_gives(tmp_path) -> None:
    """main() builds only the validate command for `imaging-validator validate ...` (start-up):
    the same output, exit codes and errors as the whole application."""
    import subprocess
    import sys

    good = tmp_path / "s.json"
    good.write_text('{"resourceType": "ImagingStudy", "status": "done", "subject": {"reference": "Patient/p"}}')
    for args in (["validate", str(good)], ["validate", "--bogus"], ["validate", str(tmp_path / "missing.json")],
                 ["validate", str(good), "--format", "json"]):  # fmt: skip
        fast = subprocess.run([sys.executable, "-c", "from validator.cli import main; main()", *args],
                              capture_output=True, text=True)  # fmt: skip
        whole = subprocess.run([sys.executable, "-c", "from validator.cli import app; app()", *args],
                               capture_output=True, text=True)  # fmt: skip
        assert (fast.returncode, fast.stdout, fast.stderr) == (whole.returncode, whole.stdout, whole.stderr), args
