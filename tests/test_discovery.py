"""Safe discovery: a directory walk skips what is never a payload (hidden folders, virtual
environments, node_modules, .gitignore'd and --exclude'd paths, JSON that is not FHIR); a file
named explicitly is still read; the pre-commit hook's files match what the validator reads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from validator.cli import app

ROOT = Path(__file__).resolve().parent.parent
STUDY = (ROOT / "examples" / "payloads" / "ct-chest.json").read_text()
runner = CliRunner()


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """A repository whose only payload is payloads/ct.json, among everything a repository holds."""
    (tmp_path / ".git" / "objects").mkdir(parents=True)
    for folder in ("payloads", ".venv/lib", "venv-any-name", "node_modules/pkg", ".tox/x", "build", "vendor/skip",
                   "payloads/generated"):  # fmt: skip
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    (tmp_path / "payloads" / "ct.json").write_text(STUDY)
    (tmp_path / "venv-any-name" / "pyvenv.cfg").write_text("home = /usr\n")
    for stray in (".git/objects/x.json", ".venv/lib/x.json", "venv-any-name/x.json", "node_modules/pkg/package.json",
                  ".tox/x/x.json", "build/x.json", "vendor/skip/x.json", "payloads/generated/x.json",
                  "payloads/.hidden.json"):  # fmt: skip
        (tmp_path / stray).write_text(STUDY.replace("ct-1", "stray"))
    (tmp_path / ".gitignore").write_text("build/\n")
    (tmp_path / "payloads" / ".gitignore").write_text("generated/\n")
    (tmp_path / "package.json").write_text('{"name": "web", "version": "1.0.0"}')
    (tmp_path / "tsconfig.json").write_text('{"compilerOptions": {}}')
    (tmp_path / "pom.xml").write_text("<project><modelVersion>4.0.0</modelVersion></project>")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _sources(result) -> list[str]:
    return sorted({r["source"] for r in json.loads(result.stdout)["results"]})


def test_a_walk_reads_only_the_payloads_of_a_repository(repo) -> None:
    result = runner.invoke(app, ["validate", ".", "--exclude", "vendor/", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert _sources(result) == ["payloads/ct.json"]


def test_files_that_are_not_fhir_are_skipped_with_one_note_each(repo) -> None:
    result = runner.invoke(app, ["validate", ".", "--exclude", "vendor/"])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stdout.splitlines() if line.startswith("note:")]
    assert notes == ["note: package.json: no resourceType, not a FHIR payload, skipped",
                     "note: pom.xml: no FHIR namespace, not FHIR XML, skipped",
                     "note: tsconfig.json: no resourceType, not a FHIR payload, skipped"]  # fmt: skip


def test_without_exclude_the_unignored_folder_is_walked(repo) -> None:
    result = runner.invoke(app, ["validate", ".", "--format", "json"])
    assert _sources(result) == ["payloads/ct.json", "vendor/skip/x.json"]


def test_a_file_named_explicitly_still_gets_its_error(repo) -> None:
    result = runner.invoke(app, ["validate", "package.json", "build/x.json", "--format", "json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert _sources(result) == ["build/x.json", "package.json"]
    (package,) = [r for r in report["results"] if r["source"] == "package.json"]
    assert [i["rule"] for i in package["issues"]] == ["json:missing-resourceType"]


def test_as_discovered_skips_named_files_that_are_not_fhir_or_are_ignored(repo) -> None:
    result = runner.invoke(app, ["validate", "--as-discovered", "package.json", "build/x.json", "payloads/ct.json"])
    assert result.exit_code == 0, result.output
    assert "note: package.json: no resourceType" in result.stdout and "note: build/x.json: excluded" in result.stdout


def test_exclude_can_be_set_in_the_configuration(repo) -> None:
    (repo / "imaging-validator.toml").write_text('exclude = ["vendor/"]\n')
    assert _sources(runner.invoke(app, ["validate", ".", "--format", "json"])) == ["payloads/ct.json"]


def test_the_pre_commit_hook_matches_json_ndjson_and_xml_and_skips_what_is_not_fhir() -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    for name in ("payloads/ct.json", "a/b.ndjson", "c.jsonl", "study.xml"):
        assert re.search(hook["files"], name), name
    assert not re.search(hook["files"], "README.md")
    assert "--as-discovered" in hook["entry"].split()


def test_pathspec_is_a_declared_dependency() -> None:
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.startswith("pathspec") for d in deps)
