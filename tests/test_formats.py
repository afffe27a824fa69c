"""Output formats from the registry (--format, --output, github, gitlab), the command's manners
(--version, --color, help in a pipe, exit codes in --help) and faithful reports (SARIF
%SRCROOT%, JUnit classname/file/line, OperationOutcome file extension, repeated keys)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import junit_schema
from jsonschema import Draft202012Validator
from lxml import etree
from typer.testing import CliRunner

from validator.cli import app
from validator.report import REPORTERS
from validator.report.github import escape_data, escape_property

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "payloads"
runner = CliRunner()


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """A repository with the examples in payloads/, the current folder a subfolder of it (so
    paths relative to the run differ from paths relative to the repository)."""
    (tmp_path / ".git").mkdir()
    shutil.copytree(EXAMPLES, tmp_path / "payloads")
    (tmp_path / "ci").mkdir()
    monkeypatch.chdir(tmp_path / "ci")
    return tmp_path


def _sarif_schema(shared) -> Draft202012Validator:
    return Draft202012Validator(json.loads((shared / "schemas" / "sarif-schema-2.1.0.json").read_text()))


@pytest.mark.parametrize("fmt", [name for name in REPORTERS if name != "text"])
def test_every_registered_format_can_be_the_console_format(repo, fmt) -> None:
    result = runner.invoke(app, ["validate", "../payloads/broken-study.json", "--format", fmt])
    assert result.exit_code == 1, result.output
    assert result.stdout_bytes == REPORTERS[fmt].file_bytes(_run(repo)) or fmt == "junit"  # JUnit holds timings
    assert "json:duplicate-key" in result.stdout


def _run(repo: Path):
    from validator import Validator

    return Validator(root=repo).validate_paths(["../payloads/broken-study.json"])


def test_output_writes_any_format_to_a_file_and_dash_to_stdout(repo) -> None:
    result = runner.invoke(app, ["validate", "../payloads/broken-study.json", "--output", "gitlab=out/cq.json",
                                 "--output", "github=-", "-o", "sarif=out/v.sarif"])  # fmt: skip
    assert result.exit_code == 1, result.output
    assert json.loads((repo / "ci" / "out" / "cq.json").read_text())[0]["check_name"] == "json:duplicate-key"
    assert json.loads((repo / "ci" / "out" / "v.sarif").read_text())["version"] == "2.1.0"
    first = "::error file=payloads/broken-study.json,line=20,col=3,title=json%3Aduplicate-key::"
    assert result.stdout.startswith(first)
    assert "FAIL ImagingStudy/ct-4" in result.stderr  # the console moved to stderr


@pytest.mark.parametrize("pair", ["nonsense=x.txt", "sarif", "sarif="])
def test_a_bad_output_is_a_usage_error_naming_it(repo, pair) -> None:
    result = runner.invoke(app, ["validate", "../payloads/ct-chest.json", "--output", pair])
    assert result.exit_code == 2 and pair in result.output


def test_a_console_format_and_a_report_cannot_both_take_stdout(repo) -> None:
    result = runner.invoke(app, ["validate", "../payloads/ct-chest.json", "--format", "json", "--sarif", "-"])
    assert result.exit_code == 2 and "standard output" in result.output


def test_github_commands_escape_data_and_properties_as_the_runner_reads_them() -> None:
    assert escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


def test_github_format_gives_one_annotation_per_finding_with_file_line_col_and_rule(repo) -> None:
    result = runner.invoke(app, ["validate", "../payloads", "--format", "github"])
    assert result.exit_code == 1
    commands = [line for line in result.stdout.splitlines() if line.startswith("::")]
    assert len(commands) == 13
    assert all(line.split(" ", 1)[0] in ("::error", "::warning", "::notice") for line in commands)
    assert "::warning file=payloads/broken-study.json,line=45,col=7,title=dicom%3Aseries-number-of-instances::" in (
        result.stdout)  # fmt: skip
    assert result.stdout.splitlines()[-1].endswith("Result: FAIL (fail on error)")


def test_a_newline_in_a_payload_cannot_start_a_workflow_command(repo) -> None:
    study = json.loads((EXAMPLES / "ct-chest.json").read_text())
    study["status"] = "x\n::error file=evil::injected"
    (repo / "payloads" / "evil.json").write_text(json.dumps(study))
    result = runner.invoke(app, ["validate", "../payloads/evil.json", "--format", "github"])
    assert result.exit_code == 1
    assert not any(line.startswith("::error file=evil") for line in result.stdout.splitlines())


def test_gitlab_fingerprints_are_stable_across_runs_and_line_moves(repo) -> None:
    def fingerprints() -> dict[str, str]:
        result = runner.invoke(app, ["validate", "../payloads/broken-study.json", "--format", "gitlab"])
        assert result.exit_code == 1
        report = json.loads(result.stdout)
        assert {i["location"]["path"] for i in report} == {"payloads/broken-study.json"}
        assert {i["severity"] for i in report} <= {"info", "minor", "major", "critical", "blocker"}
        return {f"{i['check_name']} {i['description']}": i["fingerprint"] for i in report}

    first = fingerprints()
    assert len(set(first.values())) == len(first)  # one per finding
    assert fingerprints() == first
    path = repo / "payloads" / "broken-study.json"
    path.write_text("\n\n\n" + path.read_text())  # every line moves
    assert fingerprints() == first


def test_version_prints_the_version_and_exits_0() -> None:
    from validator import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"imaging-validator {__version__}\n"


def test_color_always_paints_the_console_and_never_or_no_color_do_not(repo, monkeypatch) -> None:
    args = ["validate", "../payloads/broken-study.json"]
    assert "\x1b[1;31mFAIL\x1b[0m" in runner.invoke(app, [*args, "--color", "always"]).stdout
    assert "\x1b[" not in runner.invoke(app, [*args, "--color", "never"]).stdout
    assert "\x1b[" not in runner.invoke(app, args).stdout  # auto: not a terminal
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    assert "\x1b[" not in runner.invoke(app, args).stdout


def test_help_in_a_pipe_shows_every_option_name_whole_and_the_exit_codes() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("TERMINAL_WIDTH", "COLUMNS")}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-m", "validator.cli", "validate", "--help"], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=120).stdout  # fmt: skip
    for option in ("--operation-outcome", "--must-support", "--no-must-support", "--write-baseline", "--as-discovered"):
        assert option in out, option
    assert "…" not in out
    assert "Exit codes: 0" in out and "2 usage error" in out


def test_sarif_names_files_from_srcroot_and_is_valid(repo, shared) -> None:
    result = runner.invoke(app, ["validate", "../payloads", "--sarif", "out.sarif"])
    assert result.exit_code == 1
    doc = json.loads((repo / "ci" / "out.sarif").read_text())
    errors = list(_sarif_schema(shared).iter_errors(doc))
    assert not errors, errors[0].message
    (sarif_run,) = doc["runs"]
    assert sarif_run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": repo.resolve().as_uri() + "/"}}
    locations = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in sarif_run["results"]}
    assert "payloads/broken-study.json" in locations
    assert all(r["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
               for r in sarif_run["results"])  # fmt: skip


def test_root_option_sets_srcroot(repo) -> None:
    result = runner.invoke(app, ["validate", "../payloads/broken-study.json", "--root", "..", "--format", "sarif"])
    assert result.exit_code == 1
    uri = json.loads(result.stdout)["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert uri == {"uri": "payloads/broken-study.json", "uriBaseId": "%SRCROOT%"}


def test_junit_classnames_group_by_folder_and_file_and_testcases_carry_file_and_line(repo) -> None:
    result = runner.invoke(app, ["validate", "../payloads", "--junit", "j.xml"])
    assert result.exit_code == 1
    doc = etree.parse(str(repo / "ci" / "j.xml"))
    schema = junit_schema()
    assert schema.validate(doc), schema.error_log
    cases = {c.get("name"): c for c in doc.iter("testcase")}
    broken = cases["ImagingStudy/ct-4"]
    assert broken.get("classname") == "payloads.broken-study_json"
    assert (broken.get("file"), broken.get("line")) == ("payloads/broken-study.json", "20")
    assert cases["ImagingStudy/ct-11 (entry 2)"].get("line") == "2"
    assert all("." not in c.get("classname").rsplit(".", 1)[-1] for c in cases.values())


def test_operation_outcomes_carry_the_hl7_file_line_and_col_extensions(repo) -> None:
    result = runner.invoke(app, ["validate", "../payloads/broken-study.json", "--format", "operation-outcome"])
    assert result.exit_code == 1
    (entry,) = json.loads(result.stdout)["entry"]
    outcome = entry["resource"]
    assert outcome["extension"] == [{"url": "http://hl7.org/fhir/StructureDefinition/operationoutcome-file",
                                     "valueString": "payloads/broken-study.json"}]  # fmt: skip
    first = outcome["issue"][0]["extension"]
    assert first == [{"url": "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-line", "valueInteger": 20},
                     {"url": "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-col", "valueInteger": 3}]


def test_a_repeated_key_is_judged_and_reported_at_its_last_occurrence(repo) -> None:
    (repo / "payloads" / "dup.json").write_text(
        '{\n  "resourceType": "ImagingStudy",\n  "id": "d",\n  "status": "available",\n'
        '  "subject": {"reference": "Patient/1"},\n  "status": "done"\n}\n'
    )
    result = runner.invoke(app, ["validate", "../payloads/dup.json", "--format", "json"])
    assert result.exit_code == 1
    issues = {i["rule"]: (i["line"], i["column"]) for i in json.loads(result.stdout)["results"][0]["issues"]}
    assert issues["json:duplicate-key"] == (6, 3)
    assert issues["r4:ImagingStudy.status:binding"] == (6, 3)  # 'done', the value kept and judged
