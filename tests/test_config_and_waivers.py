"""Configuration files (pyproject.toml, imaging-validator.toml), waivers (off, globs, per-path
ignores, rules of any version), baselines, and rules of every FHIR version."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from validator.cli import app

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "payloads"
runner = CliRunner()


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / "payloads").mkdir()
    for name in ("broken-study.json", "ct-chest.json"):
        shutil.copy(EXAMPLES / name, tmp_path / "payloads" / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _rules(result) -> set[str]:
    return {i["rule"] for r in json.loads(result.stdout)["results"] for i in r["issues"]}


def test_pyproject_settings_apply_and_the_command_line_overrides_them(project) -> None:
    (project / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.imaging-validator]\n'
                                            'paths = ["payloads"]\nfail-on = "never"\nformat = "json"\n')  # fmt: skip
    from_config = runner.invoke(app, ["validate"])
    assert from_config.exit_code == 0, from_config.output
    assert json.loads(from_config.stdout)["summary"]["files"] == 2
    overridden = runner.invoke(app, ["validate", "--fail-on", "error"])
    assert overridden.exit_code == 1


def test_the_nearest_configuration_is_found_from_a_subfolder_and_paths_are_relative_to_it(project, monkeypatch) -> None:
    (project / "imaging-validator.toml").write_text('paths = ["payloads/ct-chest.json"]\nformat = "json"\n')
    (project / "deep" / "er").mkdir(parents=True)
    monkeypatch.chdir(project / "deep" / "er")
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["results"][0]["source"] == "../../payloads/ct-chest.json"


def test_a_pyproject_without_the_table_is_passed_over(project, monkeypatch) -> None:
    (project / "imaging-validator.toml").write_text('fail-on = "never"\n')
    (project / "sub").mkdir()
    (project / "sub" / "pyproject.toml").write_text('[project]\nname = "x"\n')
    monkeypatch.chdir(project / "sub")
    assert runner.invoke(app, ["validate", "../payloads/broken-study.json"]).exit_code == 0


@pytest.mark.parametrize("text,named", [
    ('fail-onn = "warning"\n', "unknown key 'fail-onn' (did you mean 'fail-on'?)"),
    ('fail-on = "sometimes"\n', "fail-on = 'sometimes': expected one of error, warning, information, never"),
    ("max-issues = \"many\"\n", "max-issues = 'many': expected an integer"),
    ("[[ignore]]\nrules = [\"dicom:*\"]\n", "ignore[0] names no paths"),
    ("fail-on = \n", "not valid TOML"),
])  # fmt: skip
def test_a_bad_configuration_is_a_usage_error_naming_key_and_file(project, text, named) -> None:
    (project / "imaging-validator.toml").write_text(text)
    result = runner.invoke(app, ["validate", "payloads"])
    assert result.exit_code == 2
    assert named in result.output and str(project / "imaging-validator.toml") in result.output


def test_every_validate_option_is_a_configuration_key() -> None:
    import typer.main

    from validator.cli import _config_keys

    command = typer.main.get_command(app).commands["validate"]
    keys = _config_keys(command)
    longs = {o[2:] for p in command.params for o in getattr(p, "opts", []) if o.startswith("--") and o != "--help"}
    assert longs <= set(keys) and "paths" in keys


def test_severity_off_and_globs_switch_rules_off_or_change_them(project) -> None:
    base = ["validate", "payloads/broken-study.json", "--format", "json"]
    everything = _rules(runner.invoke(app, base))
    assert {"dicom:uid-syntax", "json:duplicate-key"} <= everything
    result = runner.invoke(app, [*base, "--severity", "dicom:*=off", "--severity", "json:duplicate-key=off"])
    assert result.exit_code == 1
    assert _rules(result) == {r for r in everything if not r.startswith("dicom:") and r != "json:duplicate-key"}
    warned = runner.invoke(app, [*base, "--severity", "dicom:*=warning"])
    levels = {i["rule"]: i["severity"] for r in json.loads(warned.stdout)["results"] for i in r["issues"]}
    assert levels["dicom:uid-syntax"] == "warning"


def test_rules_of_every_version_are_accepted_in_a_run_without_fhir_version(project) -> None:
    result = runner.invoke(app, ["validate", "payloads/ct-chest.json", "--severity",
                                 "r5:ImagingStudy.status:binding=off", "--severity", "r6:ist-1=warning"])  # fmt: skip
    assert result.exit_code == 0, result.output
    unknown = runner.invoke(app, ["validate", "payloads/ct-chest.json", "--severity", "r9:*=off"])
    assert unknown.exit_code == 2 and "'r9:*'" in unknown.output


def test_per_path_ignores_drop_the_named_rules_in_the_named_files_only(project) -> None:
    shutil.copy(project / "payloads" / "broken-study.json", project / "payloads" / "other.json")
    (project / "imaging-validator.toml").write_text(
        '[[ignore]]\npaths = ["payloads/broken-*.json"]\nrules = ["json:*", "dicom:uid-syntax"]\n'
    )
    report = json.loads(runner.invoke(app, ["validate", "payloads", "--format", "json"]).stdout)
    by_file = {r["source"]: {i["rule"] for i in r["issues"]} for r in report["results"]}
    assert not any(r.startswith("json:") or r == "dicom:uid-syntax" for r in by_file["payloads/broken-study.json"])
    assert {"json:duplicate-key", "dicom:uid-syntax"} <= by_file["payloads/other.json"]


def test_a_baseline_waives_recorded_findings_and_reports_only_new_ones(project) -> None:
    written = runner.invoke(app, ["validate", "payloads", "--write-baseline", "baseline.json"])
    assert written.exit_code == 1
    recorded = json.loads((project / "baseline.json").read_text())["findings"]
    assert len(recorded) == 11 and all(set(f) >= {"fingerprint", "file", "rule"} for f in recorded)
    # Lines move and a new finding appears: only the new one is reported.
    path = project / "payloads" / "ct-chest.json"
    study = json.loads(path.read_text())
    study["status"] = "finished"
    path.write_text("\n\n" + json.dumps(study, indent=4))
    broken = project / "payloads" / "broken-study.json"
    broken.write_text("\n\n\n" + broken.read_text())
    result = runner.invoke(app, ["validate", "payloads", "--baseline", "baseline.json"])
    assert result.exit_code == 1
    assert "11 more waived by the baseline" in result.stdout
    assert "r4:ImagingStudy.status:binding" in result.stdout and "json:duplicate-key" not in result.stdout
    clean = runner.invoke(app, ["validate", "payloads/broken-study.json", "--baseline", "baseline.json"])
    assert clean.exit_code == 0, clean.output


@pytest.mark.parametrize("content", ["not json", '{"format": 99, "findings": []}', '{"format": 1}'])
def test_a_baseline_that_is_not_one_is_a_usage_error(project, content) -> None:
    (project / "b.json").write_text(content)
    result = runner.invoke(app, ["validate", "payloads", "--baseline", "b.json"])
    assert result.exit_code == 2 and "--baseline b.json" in result.output


def test_rules_list_covers_every_version_with_a_version_column_and_a_filter() -> None:
    rows = [line.split("\t") for line in runner.invoke(app, ["rules", "list"]).stdout.splitlines()]
    versions = {row[0]: row[1] for row in rows}
    assert versions["r4:dom-6"] == "R4,R4B" and versions["r6:ist-1"] == "R6"
    assert versions["json:duplicate-key"] == "R4,R4B,R5,R6,R6-ballot3"
    only_r5 = runner.invoke(app, ["rules", "list", "--fhir-version", "5.0.0", "--format", "json"])
    assert only_r5.exit_code == 0
    assert {v for r in json.loads(only_r5.stdout) for v in r["versions"]} == {"R5"}


@pytest.mark.parametrize("rule", ["r4:dom-6", "r5:dom-6", "r6:ist-1", "dicom:uid-syntax"])
def test_rules_show_works_for_any_id_without_a_version(rule) -> None:
    result = runner.invoke(app, ["rules", "show", rule])
    assert result.exit_code == 0 and f"id:          {rule}" in result.stdout


@pytest.mark.parametrize("number,name", [("4.0.1", "4.0.1"), ("4.3.0", "4.3.0"), ("5.0.0", "5.0.0"), ("R4B", "4.3.0")])
def test_fhir_version_accepts_the_numbers_reports_print(number, name) -> None:
    result = runner.invoke(app, ["validate", str(EXAMPLES / "ct-chest.json"), "--fhir-version", number,
                                 "--format", "json"])  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    assert json.loads(result.stdout)["results"][0]["fhirVersion"] == name
