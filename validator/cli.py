"""imaging-validator: the command line, a thin layer over validator.api.

Exit codes: 0 = nothing at or above --fail-on; 1 = conformance failures (fatal input counts);
2 = usage errors (bad option, missing path, broken rule pack, unwritable report); 3 = the
validator itself failed on some input (an engine:internal-error finding; the run still went on
and wrote every report); 130 / 143 = interrupted by SIGINT / SIGTERM.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import signal
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from validator.limits import DEFAULT as DEFAULT_LIMITS
from validator.limits import Limits
from validator.model import RunResult, Severity
from validator.report import REPORTERS, Reporter

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_BROKEN = 0, 1, 2, 3

_EXIT_HELP = (
    "Exit codes: 0 no issue at or above --fail-on; 1 conformance failures; 2 usage error; "
    "3 the validator itself failed on some input (engine:internal-error; every other input is "
    "still validated and reported); 130/143 interrupted."
)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Conformance validator for FHIR ImagingStudy payloads (offline, deterministic).",
)
rules_app = typer.Typer(no_args_is_help=True, help="The rules the validator applies.")
profiles_app = typer.Typer(no_args_is_help=True, help="The profiles the validator knows.")
app.add_typer(rules_app, name="rules")
app.add_typer(profiles_app, name="profiles")


class FailOn(str, Enum):
    error = "error"
    warning = "warning"
    information = "information"
    never = "never"


class ListFormat(str, Enum):
    text = "text"
    json = "json"


class Interrupted(BaseException):
    """SIGINT or SIGTERM: unwinds like Ctrl-C, so temporary files are removed and workers stopped
    on the way out (a BaseException, so that no handler of errors takes it for one)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.exit_code = 128 + signum


def _interrupt(signum: int, _frame: object) -> None:
    raise Interrupted(signum)


def _usage_error(message: str) -> typer.Exit:
    from validator.report.safe_text import terminal

    typer.echo(f"imaging-validator: error: {terminal(message)}", err=True)
    return typer.Exit(EXIT_USAGE)


def _exit_code(run: RunResult, failed: bool, reports_written: bool) -> int:
    if run.validator_failed or not reports_written:
        return EXIT_BROKEN
    return EXIT_FAIL if failed else EXIT_OK


def _parse_severities(pairs: list[str] | None) -> dict[str, Severity]:
    out = {}
    for pair in pairs or []:
        rule, sep, level = pair.partition("=")
        if not sep or not rule.strip():
            raise _usage_error(f"--severity {pair!r}: expected RULE=LEVEL, e.g. dicom:uid-level-reuse=error")
        try:
            out[rule.strip()] = Severity.parse(level)
        except ValueError as exc:
            raise _usage_error(f"--severity {pair!r}: {exc}") from None
    return out


def _validator(fhir_version: str | None, fail_on: Severity | None, profiles: list[str] | None = None, **options):
    from validator.api import UnknownProfile, UnknownRule, Validator
    from validator.compile.packs import PackError
    from validator.evaluate.dicom.files import DicomFolderError
    from validator.versions import UnknownVersion

    try:
        return Validator(fhir_version=fhir_version, fail_on=fail_on, profiles=profiles or (), **options)
    except (UnknownVersion, UnknownProfile, UnknownRule, DicomFolderError) as exc:
        raise _usage_error(str(exc)) from None
    except PackError as exc:
        raise _usage_error("a rule pack is broken:\n  " + "\n  ".join(exc.problems)) from None


def _report_options(suite_run: bool = False) -> Callable[[Callable], Callable]:
    """Give a command a `--NAME FILE` option per file format of the registry (for a suite run, the
    formats that present cases), where its `reports` parameter is; `reports` then receives the
    (option, reporter, path) triples asked for. Typer reads options from the signature, hence the rewrite."""
    formats = [r for r in REPORTERS.values() if r.file_name and (r.suites or not suite_run)]
    options = [
        inspect.Parameter(
            f"{r.name.replace('-', '_')}_report",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[Path | None, typer.Option(f"--{r.name}", help=r.help)],
        )
        for r in formats
    ]

    def decorate(command: Callable) -> Callable:
        @functools.wraps(command)
        def with_reports(**kwargs):
            asked = [(r, kwargs.pop(option.name)) for r, option in zip(formats, options, strict=True)]
            return command(**kwargs, reports=[(f"--{r.name}", r, path) for r, path in asked if path is not None])

        params = inspect.signature(command, eval_str=True).parameters.values()
        with_reports.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [q for p in params for q in (options if p.name == "reports" else [p])]
        )
        return with_reports

    return decorate


Reports = list[tuple[str, Reporter, Path]]  # option, format, path ("-": standard output)


def _check_reports(reports: Reports, inputs: list[str]) -> None:
    """Before validating: every report can be written and harms nothing (report/files.py)."""
    from validator.report.files import ReportWriteError, check_report_paths

    try:
        check_report_paths(((option, path) for option, _, path in reports), inputs)
    except ReportWriteError as exc:
        raise _usage_error(str(exc)) from None


def _write_reports(run: RunResult, reports: Reports, debug: bool = False) -> bool:
    """Write every report; False when the validator failed rendering one (a defect: said on stderr,
    and the other reports are still written)."""
    from validator.report.files import ReportWriteError, write_report
    from validator.report.safe_text import terminal
    from validator.run.faults import describe

    written = True
    for option, reporter, path in reports:
        try:
            data = reporter.file_bytes(run)
        except Exception as exc:  # a defect of one reporter must not cost the others
            typer.echo(f"imaging-validator: internal error: {option} {terminal(str(path))} not written: "
                       f"{terminal(describe(exc, False))}", err=True)  # fmt: skip
            if debug:
                typer.echo(describe(exc, True), err=True)
            written = False
            continue
        try:
            write_report(path, data)
        except ReportWriteError as exc:
            raise _usage_error(str(exc)) from None
    return written


def _console(run: RunResult, quiet: bool, reports: Reports) -> None:
    """The text summary: on stdout, or on stderr when a report is written to stdout."""
    text = REPORTERS["text"]
    to_stderr = any(str(path) == "-" for _, _, path in reports)
    typer.echo(text.render_quiet(run) if quiet and text.render_quiet else text.render(run), nl=False, err=to_stderr)


@app.command(epilog=_EXIT_HELP)
@_report_options()
def validate(
    paths: Annotated[list[str], typer.Argument(help="Files, directories (recursive), globs, or - for stdin.")],
    fhir_version: Annotated[
        str | None,
        typer.Option("--fhir-version", help="R4, R4B, R5, R6 (continuous build), 6.0.0-ballot3, or a number "
                     "4.0.1, 4.3.0, 5.0.0 (default: detected per payload)."),
    ] = None,
    profile: Annotated[
        list[str] | None, typer.Option("--profile", help="Profile to apply (short name, URL or pack path).")
    ] = None,
    fail_on: Annotated[FailOn, typer.Option("--fail-on", help="Lowest severity that fails the run.")] = FailOn.error,
    *,
    reports: Reports,  # the --NAME FILE options of _report_options
    reports_dir: Annotated[
        Path | None, typer.Option("--reports-dir", help="Write every file format to DIR under its default name.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only failing resources and the summary.")] = False,
    must_support: Annotated[
        bool, typer.Option("--must-support/--no-must-support", help="List absent must-support elements as information.")
    ] = True,
    dicom: Annotated[
        bool, typer.Option("--dicom-rules/--no-dicom", help="Apply the DICOM-level rules (on by default).")
    ] = True,
    dicom_dir: Annotated[
        Path | None, typer.Option("--dicom", help="Cross-check each ImagingStudy against the DICOM files in DIR.")
    ] = None,
    severity: Annotated[
        list[str] | None, typer.Option("--severity", help="Change a rule's severity: RULE=LEVEL (repeatable).")
    ] = None,
    max_bytes: Annotated[int, typer.Option("--max-bytes", min=1, help="Largest input file read, in bytes.")] = (
        DEFAULT_LIMITS.max_bytes
    ),
    max_depth: Annotated[int, typer.Option("--max-depth", min=2, help="Deepest JSON nesting followed.")] = (
        DEFAULT_LIMITS.max_depth
    ),
    max_string: Annotated[int, typer.Option("--max-string", min=1, help="Longest JSON string read.")] = (
        DEFAULT_LIMITS.max_string
    ),
    max_issues: Annotated[
        int, typer.Option("--max-issues", min=1, help="Findings listed per resource; the rest are counted.")
    ] = DEFAULT_LIMITS.max_issues,
    debug: Annotated[
        bool, typer.Option("--debug", help="Add the traceback to engine:internal-error findings (exit code 3).")
    ] = False,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=0, help="Worker processes (0: one per CPU). Same results, same order.")
    ] = 1,
) -> None:
    """Validate FHIR payloads (a resource, a Bundle or NDJSON per file); a report FILE of - is
    standard output."""
    from validator.load.sources import InputError, expand_paths
    from validator.progress import Progress

    threshold = None if fail_on is FailOn.never else Severity.parse(fail_on.value)
    validator = _validator(
        fhir_version,
        threshold,
        profile,
        must_support=must_support,
        dicom=dicom,
        dicom_files=dicom_dir,
        severity=_parse_severities(severity),
        limits=Limits(max_bytes=max_bytes, max_depth=max_depth, max_string=max_string, max_issues=max_issues),
        debug=debug,
    )
    try:
        inputs = expand_paths(paths)
    except InputError as exc:
        raise _usage_error(str(exc)) from None
    if reports_dir is not None:
        reports = [*reports, *(("--reports-dir", r, reports_dir / r.file_name) for r in REPORTERS.values()
                               if r.file_name)]  # fmt: skip
    _check_reports(reports, inputs)  # before validating: a usage error costs nothing then
    with Progress(enabled=not quiet) as progress:
        run: RunResult = validator.validate_paths(inputs, progress=progress, jobs=jobs or os.cpu_count() or 1)
    written = _write_reports(run, reports, debug)
    _console(run, quiet, reports)
    raise typer.Exit(_exit_code(run, run.failed, written))


@app.command("test", epilog=_EXIT_HELP)
@_report_options(suite_run=True)
def test_suites(
    suites: Annotated[list[Path], typer.Argument(help="Conformance suite files (YAML).")],
    *,
    reports: Reports,  # the --NAME FILE options of _report_options
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only failing cases and the summary.")] = False,
) -> None:
    """Run conformance suites: each case passes when exactly its expected issues occur."""
    from validator.compile.packs import PackError
    from validator.suites import SuiteError, load_suite, run_cases

    try:
        cases = [case for path in suites for case in load_suite(path)]
    except SuiteError as exc:
        raise _usage_error(str(exc)) from None
    except PackError as exc:
        raise _usage_error("a rule pack is broken:\n  " + "\n  ".join(exc.problems)) from None
    _check_reports(reports, [str(path) for path in suites] + [p for case in cases for p in case.payloads])
    run = run_cases(cases)
    _console(run, quiet, reports)
    written = _write_reports(run, reports)
    raise typer.Exit(_exit_code(run, any(not c.passed for c in run.cases or ()), written))


@rules_app.command("list")
def rules_list(
    fhir_version: Annotated[str | None, typer.Option("--fhir-version")] = None,
    fmt: Annotated[ListFormat, typer.Option("--format")] = ListFormat.text,
) -> None:
    """Every rule: id, element path, severity, kind and description."""
    table = _validator(fhir_version, Severity.ERROR).rule_table
    rules = [table[rid].rule for rid in sorted(table)]
    if fmt is ListFormat.json:
        typer.echo(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "path": r.path,
                        "severity": r.severity.label,
                        "kind": r.kind,
                        "code": r.code,
                        "description": r.description,
                        "source": r.source,
                        "implementation": table[r.id].implementation,
                    }
                    for r in rules
                ],
                indent=2,
            )
        )
        return
    for r in rules:
        typer.echo(f"{r.id}\t{r.path or '-'}\t{r.severity.label}\t{r.kind}\t{r.description}")


@rules_app.command("show")
def rules_show(
    rule_id: Annotated[str, typer.Argument(help="A rule id, as in `rules list`.")],
    fhir_version: Annotated[str | None, typer.Option("--fhir-version")] = None,
) -> None:
    """Everything about one rule."""
    table = _validator(fhir_version, Severity.ERROR).rule_table
    entry = table.get(rule_id)
    if entry is None:
        close = [r for r in table if rule_id.lower() in r.lower()][:5]
        hint = f"; did you mean: {', '.join(close)}" if close else ""
        raise _usage_error(f"no rule {rule_id!r}{hint}")
    rule = entry.rule
    typer.echo(
        f"id:          {rule.id}\nkind:        {rule.kind}\npath:        {rule.path or '-'}\n"
        f"severity:    {rule.severity.label}\nissue code:  {rule.code}\npack:        {rule.pack}\n"
        f"description: {rule.description}\nsource:      {rule.source}\nimplemented: {entry.implementation}"
    )


@profiles_app.command("list")
def profiles_list(fhir_version: Annotated[str | None, typer.Option("--fhir-version")] = None) -> None:
    """Profiles that --profile accepts (short name, canonical URL) and that meta.profile triggers."""
    profiles = sorted(_validator(fhir_version, Severity.ERROR).profile_set.profiles.values(), key=lambda p: p.name)
    if not profiles:
        typer.echo("No profile packs are installed; base FHIR rules apply.")
    for p in profiles:
        typer.echo(f"{p.name}\t{p.resource_type}\t{p.url}\t{p.title}")


def main() -> None:
    from validator.compile.packs import PackError

    # Both signals unwind the run (Python's default for SIGTERM would end it on the spot, leaving
    # temporary report files and worker processes behind); click would turn Ctrl-C into exit 1.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        app()
    except Interrupted as exc:
        sys.exit(exc.exit_code)
    except PackError as exc:
        # A profile pack is compiled when first needed, so a broken one can surface in any
        # command: it is a usage error wherever it does (exit 2, naming file, rule and field).
        print("imaging-validator: error: a rule pack is broken:\n  " + "\n  ".join(exc.problems), file=sys.stderr)
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()
