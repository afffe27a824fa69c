"""imaging-validator: the command line, a thin layer over validator.api.

Exit codes: 0 = nothing at or above --fail-on; 1 = conformance failures (fatal input counts);
2 = usage errors (bad option, missing path, broken rule pack, unwritable report); 3 = the
validator itself failed on some input (an engine:internal-error finding; the run still went on
and wrote every report); 130 / 143 = interrupted by SIGINT / SIGTERM.
"""

from __future__ import annotations

import functools
import gc
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

from validator.evaluate.code_cache import classes_code_cached
from validator.limits import DEFAULT as DEFAULT_LIMITS
from validator.limits import Limits
from validator.model import RunResult, Severity

with classes_code_cached("cli"):  # the reporters' dataclasses, as validator/__init__.py does for the rest
    from validator.report import REPORTERS, Reporter
    from validator.report.text import TextStream

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_BROKEN = 0, 1, 2, 3

_EXIT_HELP = (
    "Exit codes: 0 no issue at or above --fail-on; 1 conformance failures; 2 usage error; "
    "3 the validator itself failed on some input (engine:internal-error; every other input is "
    "still validated and reported); 130/143 interrupted."
)

# Help printed into a pipe or a CI log would be laid out for 80 columns, and rich then cuts long
# option names ("--operation-out..."): without a terminal, lay it out wide enough for every name.
# Set through the variable typer's help formatter reads when it is imported, rather than by
# importing it here: that import (rich, markdown) is a fifth of a validation run's start-up.
if not sys.stdout.isatty() and not os.environ.get("TERMINAL_WIDTH"):
    os.environ["TERMINAL_WIDTH"] = "160"

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Conformance validator for FHIR ImagingStudy payloads (offline, deterministic).",
    epilog=_EXIT_HELP,
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


class Color(str, Enum):
    auto = "auto"
    always = "always"
    never = "never"


# The console formats: every registered reporter (suite runs: those that present cases).
Format = Enum("Format", {name: name for name in REPORTERS}, type=str)  # type: ignore[misc]
SuiteFormat = Enum("SuiteFormat", {n: n for n, r in REPORTERS.items() if r.suites}, type=str)  # type: ignore[misc]


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


def _parse_severities(pairs: list[str] | None) -> dict[str, Severity | None]:
    """RULE=LEVEL pairs; RULE may be a glob (dicom:*), LEVEL `off` switches the rule off (None)."""
    out: dict[str, Severity | None] = {}
    for pair in pairs or []:
        rule, sep, level = pair.partition("=")
        if not sep or not rule.strip():
            raise _usage_error(f"--severity {pair!r}: expected RULE=LEVEL, e.g. dicom:uid-level-reuse=error")
        if level.strip().lower() == "off":
            out[rule.strip()] = None
            continue
        try:
            out[rule.strip()] = Severity.parse(level)
        except ValueError as exc:
            raise _usage_error(f"--severity {pair!r}: {exc} or off") from None
    return out


def _parse_outputs(pairs: list[str] | None, suite_run: bool = False) -> Reports:
    """--output FORMAT=PATH pairs: any registered format (for a suite run, those that present
    cases) to a file, or to standard output with `-`."""
    offered = {name: r for name, r in REPORTERS.items() if r.suites or not suite_run}
    out: Reports = []
    for pair in pairs or []:
        name, sep, path = pair.partition("=")
        reporter = offered.get(name.strip())
        if not sep or not path:
            raise _usage_error(f"--output {pair!r}: expected FORMAT=PATH, e.g. sarif=reports/validator.sarif")
        if reporter is None:
            raise _usage_error(f"--output {pair!r}: unknown format {name.strip()!r}; formats: {', '.join(offered)}")
        out.append((f"--output {name.strip()}", reporter, Path(path)))
    return out


def _use_color(choice: Color, err: bool) -> bool:
    """--color auto colours a terminal unless NO_COLOR is set (https://no-color.org); always and
    never are explicit, so they win over NO_COLOR."""
    if choice is not Color.auto:
        return choice is Color.always
    stream = sys.stderr if err else sys.stdout
    return not os.environ.get("NO_COLOR") and stream.isatty()


def _dicomweb_options(url: str | None, token_env: str | None, user_env: str | None, password_env: str | None,
                      insecure: bool, timeout: int, budget: int, max_bytes: int) -> dict:  # fmt: skip
    """The Validator arguments of the --dicomweb options (none without --dicomweb)."""
    if url is None:
        return {}
    from validator.net.client import ClientSettings

    settings = ClientSettings(timeout=float(timeout), budget=budget, max_bytes=max_bytes, verify_tls=not insecure,
                              token_env=token_env, user_env=user_env, password_env=password_env)  # fmt: skip
    return {"dicomweb": url, "dicomweb_settings": settings}


def _validator(fhir_version: str | None, fail_on: Severity | None, profiles: list[str] | None = None, **options):
    from validator.api import IgError, UnknownProfile, UnknownRule, Validator
    from validator.compile.packs import PackError
    from validator.evaluate.dicom.dicomweb import DicomWebError
    from validator.evaluate.dicom.files import DicomFolderError
    from validator.versions import UnknownVersion

    try:
        validator = Validator(fhir_version=fhir_version, fail_on=fail_on, profiles=profiles or (), **options)
    except (UnknownVersion, UnknownProfile, UnknownRule, DicomFolderError, DicomWebError, IgError) as exc:
        raise _usage_error(str(exc)) from None
    except PackError as exc:
        raise _usage_error("a rule pack is broken:\n  " + "\n  ".join(exc.problems)) from None
    _started()
    return validator


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
        # The annotations as evaluated above, not their source text (copied by functools.wraps):
        # typer reads them with typing.get_type_hints, which would compile each of ~40 strings
        # again at every start (~4 million instructions).
        with_reports.__annotations__ = {q.name: q.annotation for q in with_reports.__signature__.parameters.values()}
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
            # A format that lists every resource is written as it is rendered (a long run's report
            # is never whole in memory); the others are rendered first, so a defect writes nothing.
            write_report(path, reporter.file_chunks(run) if reporter.chunks else reporter.file_bytes(run))
        except ReportWriteError as exc:
            raise _usage_error(str(exc)) from None
        except Exception as exc:  # a defect of one reporter must not cost the others
            typer.echo(f"imaging-validator: internal error: {option} {terminal(str(path))} not written: "
                       f"{terminal(describe(exc, False))}", err=True)  # fmt: skip
            if debug:
                typer.echo(describe(exc, True), err=True)
            written = False
    return written


def _check_console(fmt: str, reports: Reports) -> None:
    """A console format other than text cannot share standard output with a report."""
    to_stdout = [option for option, _, path in reports if str(path) == "-"]
    if fmt != "text" and to_stdout:
        raise _usage_error(f"--format {fmt} and {to_stdout[0]} - both write to standard output")


def _text_writer(color: Color, reports: Reports) -> Callable[[str], None]:
    """How the text report is printed: on stderr when a report is written to stdout, coloured
    for a terminal."""
    reporter = REPORTERS["text"]
    to_stderr = any(str(path) == "-" for _, _, path in reports)
    paint = reporter.colorize if reporter.colorize is not None and _use_color(color, to_stderr) else None

    def write(out: str) -> None:
        typer.echo(paint(out) if paint else out, nl=False, err=to_stderr, color=True)

    return write


def _console(run: RunResult, fmt: str, quiet: bool, color: Color, reports: Reports,
             stream: TextStream | None = None) -> None:  # fmt: skip
    """The console: the text summary (on stderr when a report is written to stdout), or the
    format --format names, on stdout. `stream`: the text report printed while the run went on,
    which prints the rest."""
    reporter = REPORTERS[fmt]
    if fmt != "text":
        for piece in reporter.file_chunks(run):  # write(), not writelines(): wrappers of stdout see only write
            sys.stdout.buffer.write(piece)
        sys.stdout.flush()
        return
    if stream is not None:
        stream.end(run)
        return
    write = _text_writer(color, reports)
    for out in reporter.text_chunks(run, quiet):  # printed as rendered: a long run is never whole in memory
        write(out)


def _version(value: bool) -> None:
    if value:
        from validator.model import VERSION

        typer.echo(f"imaging-validator {VERSION}")
        raise typer.Exit(EXIT_OK)


def _config_keys(command) -> dict:
    """The configuration keys of a command: its long option names, and `paths` for its argument,
    with the type each takes (read from the options themselves, so a new option is a key too)."""
    from validator.config import Key

    keys = {}
    for param in command.params:
        longs = [o for o in getattr(param, "opts", []) if o.startswith("--")]
        if param.param_type_name == "argument":
            keys[param.name] = Key(param.name, "list", path=True)
            continue
        if not longs:
            continue
        type_name = type(param.type).__name__
        if param.name in ("severity", "output"):
            kind = "pairs"
        elif param.is_flag:
            kind = "bool"
        elif param.multiple:
            kind = "list"
        elif type_name in ("IntRange", "IntParamType"):
            kind = "int"
        else:
            kind = "str"
        keys[longs[0][2:]] = Key(param.name, kind, path=type_name == "TyperPath" or param.name == "output",
                                 choices=tuple(getattr(param.type, "choices", ()) or ()))  # fmt: skip
    return keys


@app.callback()
def main_options(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Configuration file (default: the nearest imaging-validator.toml, or "
                                      "pyproject.toml with a tool.imaging-validator table, at or above the current "
                                      "folder)."),
    ] = None,
) -> None:
    """Conformance validator for FHIR ImagingStudy payloads (offline, deterministic)."""
    with classes_code_cached("config"):
        from validator.config import ConfigError, load_config

    if ctx.resilient_parsing:
        return
    commands = ctx.command.commands  # type: ignore[attr-defined]
    # The keys are validate's options. A suite run takes only how the console looks from them:
    # the reports configured are validate's (a suite run writing them would overwrite them).
    try:
        found = load_config(Path.cwd(), _config_keys(commands["validate"]), config)
    except ConfigError as exc:
        raise _usage_error(str(exc)) from None
    suite = {k: v for k, v in found.values.items() if k in ("color", "quiet")}
    if found.values.get("fmt") in SuiteFormat.__members__:
        suite["fmt"] = found.values["fmt"]
    defaults = {"validate": found.values, "test": suite}
    ignores = found.ignores
    ctx.default_map = defaults
    ctx.obj = {"ignores": ignores}


@app.command(epilog=_EXIT_HELP)
@_report_options()
def validate(
    ctx: typer.Context,
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="Files, directories (recursive), globs, or - for stdin (configuration key: paths).",
                       show_default=False),
    ] = None,
    fhir_version: Annotated[
        str | None,
        typer.Option("--fhir-version", help="R4, R4B, R5, R6 (continuous build), 6.0.0-ballot3, or a number "
                     "4.0.1, 4.3.0, 5.0.0 (default: detected per payload)."),
    ] = None,
    profile: Annotated[
        list[str] | None, typer.Option("--profile", help="Profile to apply (short name, URL or pack path).")
    ] = None,
    fail_on: Annotated[FailOn, typer.Option("--fail-on", help="Lowest severity that fails the run.")] = FailOn.error,
    ig: Annotated[
        list[str] | None,
        typer.Option("--ig", help="An Implementation Guide whose profiles to add: package.tgz, folder, or "
                     "id#version in the FHIR package cache. Repeatable."),
    ] = None,
    *,
    reports: Reports,  # the --NAME FILE options of _report_options
    output: Annotated[
        list[str] | None,
        typer.Option("--output", "-o", help="Write a report: FORMAT=PATH (- is stdout). Repeatable."),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Console format.")] = Format.text,  # type: ignore[valid-type]
    color: Annotated[Color, typer.Option("--color", help="Colour the console (auto: a terminal, unless NO_COLOR).")] = (
        Color.auto
    ),
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
    # --dicomweb: the same cross-check against a DICOMweb server, its WADO-RS endpoints probed
    dicomweb: Annotated[
        str | None, typer.Option("--dicomweb", help="Cross-check each ImagingStudy against the DICOMweb (QIDO-RS) "
                                                    "service at URL and probe its WADO-RS endpoints.")
    ] = None,
    dicomweb_token_env: Annotated[
        str | None, typer.Option("--dicomweb-token-env", help="Environment variable holding a bearer token.")
    ] = None,
    dicomweb_user_env: Annotated[
        str | None, typer.Option("--dicomweb-user-env", help="Environment variable holding the basic-auth user.")
    ] = None,
    dicomweb_password_env: Annotated[
        str | None, typer.Option("--dicomweb-password-env", help="Environment variable holding the password.")
    ] = None,
    dicomweb_insecure: Annotated[
        bool, typer.Option("--dicomweb-insecure", help="Do not verify the server's TLS certificate.")
    ] = False,
    dicomweb_timeout: Annotated[
        int, typer.Option("--dicomweb-timeout", min=1, help="Seconds to connect, and for each read.")
    ] = 30,
    dicomweb_budget: Annotated[
        int, typer.Option("--dicomweb-budget", min=1, help="Most requests sent (retries included), per process.")
    ] = 1000,
    dicomweb_max_bytes: Annotated[
        int, typer.Option("--dicomweb-max-bytes", min=1, help="Largest answer read, in bytes.")
    ] = 64 * 1024 * 1024,
    severity: Annotated[
        list[str] | None,
        typer.Option("--severity", help="RULE=LEVEL: change a rule's severity, or off (RULE may be a glob: dicom:*). "
                                        "Rules of every FHIR version are accepted. Repeatable."),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", help="Leave matching files and folders out of directory walks (.gitignore syntax, "
                                       "relative to the root). Repeatable."),
    ] = None,
    as_discovered: Annotated[
        bool,
        typer.Option("--as-discovered", help="Treat named files as found in a walk: excluded or non-FHIR ones are "
                                             "skipped with a note (the pre-commit hook uses it)."),
    ] = False,
    root: Annotated[
        Path | None, typer.Option("--root", help="Repository root that reports name files from (default: from git).")
    ] = None,
    baseline: Annotated[
        Path | None, typer.Option("--baseline", help="Report only findings that this baseline file does not hold.")
    ] = None,
    write_baseline: Annotated[
        Path | None, typer.Option("--write-baseline", help="Record this run's findings as a baseline FILE.")
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
    standard output. Every option can be set in the configuration (the tool.imaging-validator
    table of pyproject.toml, or imaging-validator.toml); the command line overrides it."""
    from validator.load.sources import InputError
    from validator.progress import Progress
    from validator.run.waivers import BaselineError, read_baseline, render_baseline

    if not paths:
        raise _usage_error("nothing to validate: name files, folders or globs (or set `paths` in the configuration)")
    threshold = None if fail_on is FailOn.never else Severity.parse(fail_on.value)
    validator = _validator(
        fhir_version,
        threshold,
        profile,
        must_support=must_support,
        dicom=dicom,
        dicom_files=dicom_dir,
        **_dicomweb_options(dicomweb, dicomweb_token_env, dicomweb_user_env, dicomweb_password_env,
                            dicomweb_insecure, dicomweb_timeout, dicomweb_budget, dicomweb_max_bytes),
        severity=_parse_severities(severity),
        limits=Limits(max_bytes=max_bytes, max_depth=max_depth, max_string=max_string, max_issues=max_issues),
        debug=debug,
        ignores=(ctx.obj or {}).get("ignores", ()),
        exclude=exclude or (),
        root=root,
        igs=ig or (),
    )
    try:
        found = validator.discover(paths, as_discovered)
        accepted = read_baseline(baseline) if baseline is not None else None
    except (InputError, BaselineError) as exc:
        raise _usage_error(str(exc)) from None
    reports = [*reports, *_parse_outputs(output)]
    if reports_dir is not None:
        reports = [*reports, *(("--reports-dir", r, reports_dir / r.file_name) for r in REPORTERS.values()
                               if r.file_name)]  # fmt: skip
    _check_console(fmt.value, reports)
    # before validating: a usage error costs nothing then (the baseline is written like a report)
    baseline_out = [("--write-baseline", None, write_baseline)] if write_baseline is not None else []
    _check_reports([*reports, *baseline_out], found.files)  # type: ignore[list-item]
    # The text report is printed as the results come (a --jobs run prints while its workers work),
    # unless a baseline changes them after the run, or a progress bar holds the terminal.
    stream = TextStream(threshold, quiet, _text_writer(color, reports)) if fmt.value == "text" else None
    with Progress(enabled=not quiet and fmt.value == "text") as progress:
        streamed = stream if accepted is None and not progress.enabled else None
        run: RunResult = validator.validate_paths(found, progress=progress, jobs=jobs or os.cpu_count() or 1,
                                                  stream=streamed)  # fmt: skip
    if write_baseline is not None:
        _write_file("--write-baseline", write_baseline, render_baseline(run).encode("utf-8"))
    if accepted is not None:
        run = accepted.apply(run)
    written = _write_reports(run, reports, debug)
    _console(run, fmt.value, quiet, color, reports, stream)
    raise typer.Exit(_exit_code(run, run.failed, written))


def _write_file(option: str, path: Path, data: bytes) -> None:
    from validator.report.files import ReportWriteError, write_report

    try:
        write_report(path, data)
    except ReportWriteError as exc:
        raise _usage_error(f"{option}: {exc}") from None


@app.command("test", epilog=_EXIT_HELP)
@_report_options(suite_run=True)
def test_suites(
    suites: Annotated[list[Path], typer.Argument(help="Conformance suite files (YAML).")],
    *,
    reports: Reports,  # the --NAME FILE options of _report_options
    output: Annotated[
        list[str] | None,
        typer.Option("--output", "-o", help="Write a report: FORMAT=PATH (PATH - is stdout). Repeatable."),
    ] = None,
    fmt: Annotated[SuiteFormat, typer.Option("--format", help="Console format.")] = SuiteFormat.text,  # type: ignore[valid-type]
    color: Annotated[Color, typer.Option("--color", help="Colour the console (auto: a terminal, unless NO_COLOR).")] = (
        Color.auto
    ),
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
    reports = [*reports, *_parse_outputs(output, suite_run=True)]
    _check_console(fmt.value, reports)
    _check_reports(reports, [str(path) for path in suites] + [p for case in cases for p in case.payloads])
    run = run_cases(cases)
    _console(run, fmt.value, quiet, color, reports)
    written = _write_reports(run, reports)
    raise typer.Exit(_exit_code(run, any(not c.passed for c in run.cases or ()), written))


_IG_RULES = typer.Option("--ig", help="Also the rules of this IG's profiles (package.tgz, folder or id#version). "
                         "Repeatable.")


def _rules_by_version(fhir_version: str | None, igs: list[str] | None = None) -> dict[str, tuple[object, list[str]]]:
    """Every rule of every FHIR version (or of the one asked for) with the versions that have it:
    rule id -> (its rule-table entry, version names)."""
    from validator.versions import VERSIONS, UnknownVersion, parse_version

    try:
        versions = [parse_version(fhir_version)] if fhir_version else list(VERSIONS.values())
    except UnknownVersion as exc:
        raise _usage_error(str(exc)) from None
    out: dict[str, tuple[object, list[str]]] = {}
    for version in versions:
        for rid, entry in _validator(version.name, Severity.ERROR, igs=igs or ()).rule_table.items():
            out.setdefault(rid, (entry, []))[1].append(version.name)
    return dict(sorted(out.items()))


@rules_app.command("list")
def rules_list(
    fhir_version: Annotated[
        str | None, typer.Option("--fhir-version", help="Only the rules of this version (default: every version).")
    ] = None,
    fmt: Annotated[ListFormat, typer.Option("--format")] = ListFormat.text,
    ig: Annotated[list[str] | None, _IG_RULES] = None,
) -> None:
    """Every rule of every FHIR version: id, versions, element path, severity, kind and description."""
    rules = _rules_by_version(fhir_version, ig)
    if fmt is ListFormat.json:
        typer.echo(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "versions": versions,
                        "path": r.path,
                        "severity": r.severity.label,
                        "kind": r.kind,
                        "code": r.code,
                        "description": r.description,
                        "source": r.source,
                        "implementation": entry.implementation,
                    }
                    for entry, versions in rules.values()
                    for r in [entry.rule]
                ],
                indent=2,
            )
        )
        return
    for entry, versions in rules.values():
        r = entry.rule
        typer.echo(f"{r.id}\t{','.join(versions)}\t{r.path or '-'}\t{r.severity.label}\t{r.kind}\t{r.description}")


@rules_app.command("show")
def rules_show(
    rule_id: Annotated[str, typer.Argument(help="A rule id of any FHIR version, as in `rules list`.")],
    fhir_version: Annotated[str | None, typer.Option("--fhir-version", help="Look only in this version.")] = None,
    ig: Annotated[list[str] | None, _IG_RULES] = None,
) -> None:
    """Everything about one rule."""
    rules = _rules_by_version(fhir_version, ig)
    found = rules.get(rule_id)
    if found is None:
        close = [r for r in rules if rule_id.lower() in r.lower()][:5]
        hint = f"; did you mean: {', '.join(close)}" if close else ""
        raise _usage_error(f"no rule {rule_id!r}{hint}")
    entry, versions = found
    rule = entry.rule
    typer.echo(
        f"id:          {rule.id}\nversions:    {', '.join(versions)}\nkind:        {rule.kind}\n"
        f"path:        {rule.path or '-'}\nseverity:    {rule.severity.label}\nissue code:  {rule.code}\n"
        f"pack:        {rule.pack}\ndescription: {rule.description}\nsource:      {rule.source}\n"
        f"implemented: {entry.implementation}"
    )


_IG_OPTION = typer.Option("--ig", help="Also list the profiles of this IG (package.tgz, folder or id#version). "
                          "Repeatable.")


@profiles_app.command("list")
def profiles_list(fhir_version: Annotated[str | None, typer.Option("--fhir-version")] = None,
                  ig: Annotated[list[str] | None, _IG_OPTION] = None) -> None:  # fmt: skip
    """Profiles that --profile accepts (short name, canonical URL) and that meta.profile triggers,
    with the FHIR version and the IG each comes from (bundled: the packs of profiles/)."""
    profile_set = _validator(fhir_version, Severity.ERROR, igs=ig or ()).profile_set
    profiles = sorted(profile_set.profiles.values(), key=lambda p: (p.ig or "", p.resource_type, p.name))
    if not profiles:
        typer.echo("No profile packs are installed; base FHIR rules apply.")
    for p in profiles:
        typer.echo(f"{p.name}\t{p.resource_type}\t{p.fhir_version}\t{p.ig or 'bundled'}\t{p.url}\t{p.title}")


@profiles_app.command("import")
def profiles_import(
    source: Annotated[list[str], typer.Argument(help="IGs: package.tgz, folder, or id#version in the package cache.")],
    out: Annotated[Path, typer.Option("--output", "-o", help="Folder to write the YAML packs to.")],
) -> None:
    """Write the profile packs an IG's StructureDefinitions (and value sets) make, as YAML, for
    review and version control; point IMAGING_VALIDATOR_PROFILES at the folder (or give a pack
    to --profile) to use them without --ig."""
    from validator.compile.catalog import import_igs_for
    from validator.compile.ig.importer import write_packs
    from validator.compile.ig.packages import IgError
    from validator.compile.packs import PackError

    try:
        imported = import_igs_for(tuple(str(Path(s).resolve()) if Path(s).exists() else s for s in source))
        written = write_packs(imported, out)
    except IgError as exc:
        raise _usage_error(str(exc)) from None
    except PackError as exc:
        raise _usage_error("an imported pack is broken:\n  " + "\n  ".join(exc.problems)) from None
    except OSError as exc:
        raise _usage_error(f"cannot write to {out}: {exc}") from None
    for imp in imported:
        profiles = [p for p in imp.packs if p.data.get("profile")]
        not_checked = sum(len(p.data.get("notChecked") or []) for p in profiles)
        typer.echo(f"{imp.ig.label}: {len(profiles)} profile(s), {len(imp.packs) - len(profiles)} value-set pack(s); "
                   f"{not_checked} construct(s) marked not checked")  # fmt: skip
        for note in imp.notes:
            typer.echo(f"  note: {note}")
    for path in written:
        typer.echo(f"  wrote {path}")


# -- probe: a FHIR server's ImagingStudy search (validator/probe/) --------------------------------
@app.command("probe", epilog=_EXIT_HELP + " A check the server fails (an unreachable server too) is a failed case.")
@_report_options(suite_run=True)
def probe_server(
    base_url: Annotated[str, typer.Argument(help="The server's FHIR base URL (http or https).")],
    patient: Annotated[str | None, typer.Option("--patient", help="Patient id the searches start from.")] = None,
    identifier: Annotated[
        str | None, typer.Option("--identifier", help="Study identifier (system|value) to start from instead.")
    ] = None,
    server_profile: Annotated[
        str, typer.Option("--server-profile", help="What the server promises: default (the FHIR version's full "
                          "table), vendor-imaging-api, r4-parameter-table, or a YAML file.")
    ] = "default",
    fhir_version: Annotated[
        str | None, typer.Option("--fhir-version", help="Parameter table and rules (default: the server's).")
    ] = None,
    profile: Annotated[
        list[str] | None, typer.Option("--profile", help="Profile to validate returned studies against.")
    ] = None,
    fail_on: Annotated[
        FailOn, typer.Option("--fail-on", help="Lowest severity of a returned study's finding that fails its case.")
    ] = FailOn.error,
    token_env: Annotated[
        str | None, typer.Option("--token-env", help="Environment variable holding a bearer token.")
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per request.")] = 30.0,
    retries: Annotated[int, typer.Option("--retries", help="Further attempts on 429, 5xx, lost connections.")] = 2,
    budget: Annotated[int, typer.Option("--budget", help="Most requests the run may send.")] = 1000,
    interval: Annotated[float, typer.Option("--min-interval", help="Seconds between two requests.")] = 0.0,
    max_pages: Annotated[int, typer.Option("--max-pages", help="Pages followed per search.")] = 20,
    server_zone: Annotated[
        str | None, typer.Option("--server-zone", help="Zone the server reads dates without one in (Z, +01:00); "
                                 "default unknown: date matches that depend on it are not judged.")
    ] = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="Do not verify TLS certificates.")] = False,
    max_bytes: Annotated[
        int, typer.Option("--max-bytes", min=1, help="Largest answer read, in bytes (a larger one is a finding).")
    ] = 64 * 1024 * 1024,
    *,
    reports: Reports,  # the --NAME FILE options of _report_options
    output: Annotated[
        list[str] | None,
        typer.Option("--output", "-o", help="Write a report: FORMAT=PATH (- is stdout). Repeatable."),
    ] = None,
    fmt: Annotated[SuiteFormat, typer.Option("--format", help="Console format.")] = SuiteFormat.text,  # type: ignore[valid-type]
    color: Annotated[Color, typer.Option("--color", help="Colour the console (auto: a terminal, unless NO_COLOR).")] = (
        Color.auto
    ),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only failing checks and the summary.")] = False,
) -> None:
    """Test a FHIR server's ImagingStudy search: every check is a case, every returned study validated."""
    from validator.api import UnknownProfile
    from validator.net.client import ClientSettings
    from validator.probe import ProbeOptions, probe
    from validator.probe.profiles import UnknownServerProfile
    from validator.versions import UnknownVersion

    if not (patient or identifier):
        raise _usage_error("probe needs --patient ID or --identifier SYSTEM|VALUE to start its searches from")
    if not base_url.lower().startswith(("http://", "https://")):
        raise _usage_error(f"{base_url!r} is not an http or https URL")
    reports = [*reports, *_parse_outputs(output, suite_run=True)]
    _check_console(fmt.value, reports)
    _check_reports(reports, [])
    settings = ClientSettings(timeout=timeout, retries=retries, budget=budget, min_interval=interval,
                              verify_tls=not insecure, token_env=token_env, max_bytes=max_bytes)  # fmt: skip
    severity = None if fail_on is FailOn.never else Severity.parse(fail_on.value)
    options = ProbeOptions(base_url, patient=patient, identifier=identifier, server_profile=server_profile,
                           fhir_version=fhir_version, profiles=tuple(profile or ()), fail_on=severity, client=settings,
                           max_pages=max_pages, server_zone=server_zone)  # fmt: skip
    try:
        run = probe(options)
    except (UnknownServerProfile, UnknownVersion, UnknownProfile, ValueError) as exc:
        raise _usage_error(str(exc)) from None
    _console(run, fmt.value, quiet, color, reports)
    written = _write_reports(run, reports)
    raise typer.Exit(_exit_code(run, any(not c.passed for c in run.cases or ()), written))


# -- spark: the same engine over NDJSON on Apache Spark (validator/spark/) -------------------------
@app.command(epilog=_EXIT_HELP)
def spark(
    paths: Annotated[list[str], typer.Argument(help="NDJSON files, folders, globs, or URIs Spark reads (hdfs://, "
                                                    "s3a://, file:).", show_default=False)],
    output: Annotated[Path, typer.Option("--output", help="Folder for summary.json, report.json and (unless "
                                                          "--results) results.parquet.")],
    results: Annotated[str | None, typer.Option("--results", help="Where to write the Parquet results instead "
                                                                  "(any URI Spark writes, e.g. hdfs://...).")] = None,
    master: Annotated[str | None, typer.Option("--master", help="Spark master for a session made here (default: "
                                                                "the running session, e.g. under spark-submit, "
                                                                "else local[*]).")] = None,
    partitions: Annotated[int | None, typer.Option("--partitions", min=1, help="Spread the lines over N "
                                                                                "partitions (default: Spark's file "
                                                                                "splits).")] = None,
    fhir_version: Annotated[str | None, typer.Option("--fhir-version", help="As for validate.")] = None,
    profile: Annotated[list[str] | None, typer.Option("--profile", help="As for validate.")] = None,
    fail_on: Annotated[FailOn, typer.Option("--fail-on", help="Lowest severity that fails the run.")] = FailOn.error,
    must_support: Annotated[bool, typer.Option("--must-support/--no-must-support")] = True,
    dicom: Annotated[bool, typer.Option("--dicom-rules/--no-dicom")] = True,
    severity: Annotated[list[str] | None, typer.Option("--severity", help="RULE=LEVEL or off, as for validate.")] = (
        None
    ),
    max_bytes: Annotated[int, typer.Option("--max-bytes", min=1)] = DEFAULT_LIMITS.max_bytes,
    max_depth: Annotated[int, typer.Option("--max-depth", min=2)] = DEFAULT_LIMITS.max_depth,
    max_string: Annotated[int, typer.Option("--max-string", min=1)] = DEFAULT_LIMITS.max_string,
    max_issues: Annotated[int, typer.Option("--max-issues", min=1)] = DEFAULT_LIMITS.max_issues,
    debug: Annotated[bool, typer.Option("--debug")] = False,
) -> None:
    """Validate NDJSON files on Apache Spark (the spark extra): the same findings as validate, written as
    Parquet, with validate's summary and JSON report. Needs: pip install 'imaging-validator[spark]'."""
    try:
        from validator.spark.command import NOT_DONE, SparkInputError, run_spark
        from validator.spark.options import SparkOptions
        from validator.spark.session import spark_session
    except ImportError as exc:
        raise _usage_error(f"the spark command needs PySpark ({exc}): pip install 'imaging-validator[spark]'") from None
    threshold = None if fail_on is FailOn.never else Severity.parse(fail_on.value)
    limits = Limits(max_bytes=max_bytes, max_depth=max_depth, max_string=max_string, max_issues=max_issues)
    options = SparkOptions(fhir_version, threshold, tuple(profile or ()), must_support, dicom,
                           tuple(_parse_severities(severity).items()), limits, debug)  # fmt: skip
    _validator(fhir_version, threshold, profile, severity=dict(options.severity))  # usage errors, before Spark starts
    try:
        session = spark_session(master)
    except Exception as exc:  # no Java, a master that cannot be reached: said, not a traceback
        raise _usage_error(f"Spark could not start (it needs a Java 17 runtime): {exc}") from None
    try:
        run = run_spark(session, paths, output, options, results, partitions)
    except SparkInputError as exc:
        raise _usage_error(str(exc)) from None
    s = run.summary
    counts = ", ".join(f"{n} {name}" for name, n in s["issues"].items())
    typer.echo(f"Results: {run.results}\nReports: {output / 'summary.json'}, {run.report}")
    for note in NOT_DONE:
        typer.echo(f"note: {note}")
    typer.echo(f"{s['files']} file(s), {s['resources']} resource(s), {s['failedResources']} failed, "
               f"{s['notValidatedResources']} not validated: {counts}. "
               f"Result: {s['status'].upper()} (fail on {s['failOn']})")  # fmt: skip
    raise typer.Exit(EXIT_BROKEN if s["internalErrors"] else EXIT_FAIL if s["status"] == "fail" else EXIT_OK)


def _validate_only() -> typer.Typer:
    """The application with the validate command alone, for `imaging-validator validate ...`, the
    common case: typer builds every command's options from its signature at each start, and the
    other commands' cost ~15 ms of a one-file run. Same callback, same command, same messages."""
    fast = typer.Typer(add_completion=False, no_args_is_help=True, help=app.info.help, epilog=_EXIT_HELP)
    fast.callback()(main_options)
    fast.command(epilog=_EXIT_HELP)(validate)
    return fast


# --- Garbage collection at start-up and at exit (start-up only) ---------------------------------
# Start-up (the command parsed, the configuration read, the plan built) makes objects and frees
# next to none, and at exit the interpreter's last collection goes over every object still alive,
# the modules and the plan included: in a one-file run the collector found nothing and cost
# ~8% of its instructions (callgrind: ~25M during start-up, ~43M at exit, of ~830M). The
# collector is paused while `validate` starts; once the Validator is built, what start-up made is
# frozen (the collector's passes skip it: it lives as long as the run) and collection resumes, so
# a long run collects as before. What is left when `validate` ends is frozen too, so the
# interpreter's exit skips that collection (reports and temporary files are closed and removed
# before: with statements and atexit handlers, which run all the same).
_paused = False


def _pause_collector() -> None:
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def _started() -> None:
    """A Validator was built: start-up is over (a no-op unless main() paused the collector)."""
    global _paused
    if _paused:
        gc.freeze()
        gc.enable()
        _paused = False


def main() -> None:
    from validator.compile.packs import PackError

    # Both signals unwind the run (Python's default for SIGTERM would end it on the spot, leaving
    # temporary report files and worker processes behind); click would turn Ctrl-C into exit 1.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    args = sys.argv[1:]
    only_validate = args[:1] == ["validate"] and not any(a in ("--help", "-h") for a in args[1:])
    if only_validate:
        _pause_collector()
    try:
        (_validate_only() if only_validate else app)()
    except Interrupted as exc:
        sys.exit(exc.exit_code)
    except PackError as exc:
        # A profile pack is compiled when first needed, so a broken one can surface in any
        # command: it is a usage error wherever it does (exit 2, naming file, rule and field).
        print("imaging-validator: error: a rule pack is broken:\n  " + "\n  ".join(exc.problems), file=sys.stderr)
        sys.exit(EXIT_USAGE)
    finally:
        if only_validate:
            _started()  # a run that stopped before its Validator was built (a usage error)
            gc.freeze()  # the process ends: see _pause_collector


if __name__ == "__main__":
    main()
