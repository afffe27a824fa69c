"""The reporter registry: report modules see only the result model, every registered format
renders any run (with findings, empty, of suites), and the command line offers each file format."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from validator import Validator
from validator.cli import app
from validator.model import CaseResult, RunResult
from validator.report import REPORTERS, Reporter

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "payloads"
REPORT_MODULES = sorted((ROOT / "validator" / "report").glob("*.py"))
FILE_FORMATS = [r for r in REPORTERS.values() if r.file_name]
runner = CliRunner()


def _imported(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function (relative imports are report's own)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("validator.report" if node.level else node.module or "")
    return names


def _timeless(report: bytes) -> bytes:
    return re.sub(rb' time="[0-9.]+"', b"", report)  # JUnit's durations differ from run to run


@pytest.fixture(scope="module")
def run() -> RunResult:
    return Validator().validate_paths([str(EXAMPLES)])


@pytest.fixture(scope="module")
def suite_run(run) -> RunResult:
    failing = next(r for r in run.results if r.issues)
    cases = (
        CaseResult("a.fhir-suite.yaml", "case-that-passes", run.fail_on, run.results[:1], ()),
        CaseResult("a.fhir-suite.yaml", "case-that-fails", run.fail_on, (failing,), ("problem-of-the-failing-case",)),
    )
    return RunResult(run.results[:1] + (failing,), rules=run.rules, cases=cases)


def _text(reporter: Reporter, run: RunResult) -> str:
    out = reporter.render(run)
    assert isinstance(out, bytes) is reporter.binary
    return out.decode("utf-8") if isinstance(out, bytes) else out


@pytest.mark.parametrize("module", REPORT_MODULES, ids=lambda p: p.name)
def test_a_report_module_imports_nothing_of_the_validator_but_the_result_model(module) -> None:
    ours = {name for name in _imported(module) if name == "validator" or name.startswith("validator.")}
    assert all(name == "validator.model" or name.startswith("validator.report") for name in ours), ours


@pytest.mark.parametrize("reporter", REPORTERS.values(), ids=lambda r: r.name)
def test_every_reporter_renders_a_run_with_findings_and_an_empty_run(reporter, run) -> None:
    assert "json:duplicate-key" in _text(reporter, run)
    assert _text(reporter, RunResult(results=()))
    if reporter.render_quiet is not None:
        assert "json:duplicate-key" in reporter.render_quiet(run)
        assert reporter.render_quiet(RunResult(results=()))


@pytest.mark.parametrize("reporter", [r for r in REPORTERS.values() if r.suites], ids=lambda r: r.name)
def test_every_reporter_of_suite_runs_names_each_case_and_its_problems(reporter, suite_run) -> None:
    out = _text(reporter, suite_run)
    assert "case-that-passes" in out and "case-that-fails" in out and "problem-of-the-failing-case" in out


def test_the_quiet_console_shows_only_the_failing_cases(suite_run) -> None:
    quiet = REPORTERS["text"].render_quiet(suite_run)
    assert "case-that-fails" in quiet and "case-that-passes" not in quiet
    assert quiet.endswith("2 case(s): 1 passed, 1 failed\n")


def test_the_validate_command_offers_an_option_per_file_format_and_a_folder_for_all() -> None:
    command = typer.main.get_command(app).commands["validate"]
    options = {opt for param in command.params for opt in param.opts}
    assert {f"--{r.name}" for r in FILE_FORMATS} <= options
    suite_options = {opt for param in typer.main.get_command(app).commands["test"].params for opt in param.opts}
    assert {f"--{r.name}" for r in FILE_FORMATS if r.suites} <= suite_options
    assert not {f"--{r.name}" for r in FILE_FORMATS if not r.suites} & suite_options


@pytest.mark.parametrize("reporter", FILE_FORMATS, ids=lambda r: r.name)
def test_each_file_format_option_writes_what_its_reporter_renders(reporter, tmp_path) -> None:
    target = tmp_path / "out" / reporter.file_name
    result = runner.invoke(app, ["validate", str(EXAMPLES / "broken-study.json"), f"--{reporter.name}", str(target)])
    assert result.exit_code == 1, result.output
    expected = reporter.file_bytes(Validator().validate_paths([str(EXAMPLES / "broken-study.json")]))
    assert _timeless(target.read_bytes()) == _timeless(expected)


def test_reports_dir_writes_every_file_format_under_its_default_name(tmp_path) -> None:
    result = runner.invoke(app, ["validate", str(EXAMPLES / "ct-chest.json"), "--reports-dir", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == sorted(r.file_name for r in FILE_FORMATS)


def test_the_suite_html_counts_cases_in_its_header_and_its_badges_do_not_wrap(suite_run) -> None:
    page = REPORTERS["html"].render(suite_run)
    header = page[page.index("<header>") : page.index("</header>")]
    assert '<div class="card">Cases<b>2</b></div>' in header
    assert '<div class="card">Failed cases<b>1</b></div>' in header
    css = page[page.index("<style>") : page.index("</style>")]
    for rule in (".status{", ".sev{"):
        assert "white-space:nowrap" in css[css.index(rule) : css.index("}", css.index(rule))], rule
