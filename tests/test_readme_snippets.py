"""The README as a new integrator follows it: every configuration snippet is written into a
fresh project (a git repository holding the bundled examples as payloads/), in the README's
order, and every command is run there as written, so none can rot.

Which snippets: a block under `<!-- file: NAME -->` is that file of the project; in ```sh
blocks, each line that starts with `imaging-validator` or `pytest` is a command (the `make`
targets of the first block build this repository, not a user's project). Commands run against
this checkout (`python -m validator.cli`, `python -m pytest` with it on PYTHONPATH). A command
may find the bundled non-conformant examples (exit 1); a usage error (2), a validator failure
(3) or a pytest usage error (4) fails the test. CI snippets are checked for what their steps
need: the SARIF upload its `security-events: write` permission, every validator step run too.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"(?:<!-- file: (?P<file>\S+) -->\n)?```(?P<lang>\w*)\n(?P<body>.*?)```", re.S)
COMMANDS = ("imaging-validator ", "pytest ")


def _blocks() -> list[tuple[str | None, str, str]]:
    return [(m["file"], m["lang"], m["body"]) for m in BLOCK.finditer(README)]


def _argv(line: str) -> list[str]:
    words = shlex.split(line, comments=True)
    if words[0] == "imaging-validator":
        return [sys.executable, "-m", "validator.cli", *words[1:]]
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *words[1:]]


def _ci_commands(doc: object) -> list[str]:
    """The validator commands of a CI file: `run:` steps (GitHub), `script:` lines (GitLab)."""
    found: list[str] = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key in ("run", "script"):
                found += [c for c in (value if isinstance(value, list) else [value]) if c.startswith(COMMANDS)]
            else:
                found += _ci_commands(value)
    elif isinstance(doc, list):
        for item in doc:
            found += _ci_commands(item)
    return found


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("readme-project")
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    shutil.copytree(ROOT / "examples" / "payloads", folder / "payloads")
    return folder


def test_the_readme_has_the_snippets_this_test_runs() -> None:
    files = {f for f, _, _ in _blocks() if f}
    assert {"pyproject.toml", "pytest.ini", "our-pacs.fhir-suite.yaml", ".github/workflows/validate.yml",
            ".gitlab-ci.yml", ".pre-commit-config.yaml"} <= files  # fmt: skip
    commands = [line for _, lang, body in _blocks() if lang == "sh" for line in body.splitlines()
                if line.startswith(COMMANDS)]  # fmt: skip
    assert any("--write-baseline" in c for c in commands) and any("--baseline" in c for c in commands)
    assert any("--format github" in c for c in commands) and any(c.startswith("pytest") for c in commands)


def test_every_readme_snippet_works_as_written_in_a_fresh_project(project) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    ran = []
    for name, lang, body in _blocks():
        if name is not None:
            target = project / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body, encoding="utf-8")
        commands = [line for line in body.splitlines() if line.startswith(COMMANDS)] if lang == "sh" else []
        if name in (".github/workflows/validate.yml", ".gitlab-ci.yml"):
            commands = _ci_commands(yaml.safe_load(body))
        for line in commands:
            done = subprocess.run(_argv(line), cwd=project, env=env, capture_output=True, text=True, timeout=600)
            assert done.returncode in (0, 1), f"{line}\nexit {done.returncode}\n{done.stdout[-2000:]}{done.stderr}"
            ran.append(line)
    assert len(ran) >= 10
    assert (project / "validator-baseline.json").is_file() and (project / "reports" / "validator.sarif").is_file()


def test_the_readme_suite_example_passes_on_the_bundled_examples(project) -> None:
    (suite,) = [body for name, _, body in _blocks() if name == "our-pacs.fhir-suite.yaml"]
    (project / "suite-check.fhir-suite.yaml").write_text(suite)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "validator.cli", "test", "suite-check.fhir-suite.yaml"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_readme_configuration_is_valid_toml_with_the_table() -> None:
    (body,) = [body for name, _, body in _blocks() if name == "pyproject.toml"]
    assert "imaging-validator" in tomllib.loads(body)["tool"]


def test_the_github_snippet_grants_what_sarif_upload_needs() -> None:
    (body,) = [body for name, _, body in _blocks() if name == ".github/workflows/validate.yml"]
    (job,) = yaml.safe_load(body)["jobs"].values()
    assert any("upload-sarif" in step.get("uses", "") for step in job["steps"])
    assert job["permissions"]["security-events"] == "write"


def test_the_pre_commit_snippet_names_the_release_tag_and_a_hook_that_exists() -> None:
    (body,) = [body for name, _, body in _blocks() if name == ".pre-commit-config.yaml"]
    (repo,) = yaml.safe_load(body)["repos"]
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert repo["rev"] == f"v{version}"
    hooks = {h["id"] for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert {h["id"] for h in repo["hooks"]} <= hooks


def test_the_readme_python_api_example_runs_as_written_in_a_fresh_project(project) -> None:
    (body,) = [body for _, lang, body in _blocks() if lang == "python"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", body], cwd=project, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    first, *issues, last = done.stdout.splitlines()
    assert first == "True fail"  # the bundled examples include a broken study on purpose
    assert any("json:duplicate-key" in line for line in issues)
    assert last.startswith("pass [")
