"""Readable console summary, grouped by file; for a suite run, one line per case. No payload text
reaches the terminal raw (report/safe_text.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import groupby

from validator.model import ResourceResult, RunResult, Severity
from validator.report.reporter import Reporter
from validator.report.safe_text import terminal

_LABELS = {Severity.FATAL: "FATAL", Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFORMATION: "info"}


def _issue_lines(result: ResourceResult) -> list[str]:
    lines = []
    for i in result.issues:
        where = f"{i.line}:{i.column}" if i.line is not None else "-"
        lines.append(f"    {_LABELS[i.severity]:<7} {where:<8} {i.expression or '(input)'}")
        lines.append(f"            {i.message}  [{i.rule}]")
    return lines


def _cases(run: RunResult, quiet: bool) -> str:
    cases = run.cases or ()
    out: list[str] = []
    for c in cases:
        if quiet and c.passed:
            continue
        out.append(f"{'PASS' if c.passed else 'FAIL'}  {c.title}  [{c.suite}]")
        out.extend(f"      {problem}" for problem in c.problems)
    failed = sum(not c.passed for c in cases)
    out.append(f"{len(cases)} case(s): {len(cases) - failed} passed, {failed} failed")
    return "\n".join(map(terminal, out)) + "\n"


def summary_line(run: RunResult) -> str:
    s = run.summary()
    counts = ", ".join(f"{n} {name}" for name, n in s["issues"].items())
    waived = f" ({run.waived} more waived by the baseline)" if run.waived else ""
    return (f"{s['files']} file(s), {s['resources']} resource(s), {s['failedResources']} failed, "
            f"{s['notValidatedResources']} not validated: {counts}{waived}. "
            f"Result: {s['status'].upper()} (fail on {s['failOn']})")  # fmt: skip


def _chunks(run: RunResult, quiet: bool) -> Iterator[str]:
    """One block per file (a line per case for a suite run); with quiet, only what fails, and the
    summary line. In pieces, one file's block or a few hundred resources at a time, so a run of a
    million resources is printed without its whole text in memory."""
    if run.cases is not None:
        yield _cases(run, quiet)
        return
    out: list[str] = []
    for source, group in groupby(run.results, key=lambda r: r.source):
        header = False
        for r in group:
            if quiet and not r.fails(run.fail_on):
                continue
            if not header:
                out.append(source)
                header = True
            status = {"fail": "FAIL", "pass": "ok", "not-validated": "NOT VALIDATED"}[r.status(run.fail_on)]
            version = f"FHIR {r.fhir_version}" if r.fhir_version else ""
            profiles = f"  profiles: {', '.join(p.rsplit('/', 1)[-1] for p in r.profiles)}" if r.profiles else ""
            out.append(f"  {status:<4} {r.label}  {version}{profiles}".rstrip())
            out.extend(_issue_lines(r))
            if len(out) >= _CHUNK_LINES:
                yield _escaped(out)
                out = []
        if header:
            out.append("")
    out.extend(f"note: {note}" for note in run.notes)
    out.append(summary_line(run))
    yield _escaped(out)


_CHUNK_LINES = 2_000


def _escaped(lines: list[str]) -> str:
    # Each line is escaped whole: payload text (values, ids, file names) is in most of them.
    return "\n".join(map(terminal, lines)) + "\n"


def chunks(run: RunResult) -> Iterator[str]:
    return _chunks(run, quiet=False)


def chunks_quiet(run: RunResult) -> Iterator[str]:
    return _chunks(run, quiet=True)


def render(run: RunResult) -> str:
    return "".join(chunks(run))


def render_quiet(run: RunResult) -> str:
    return "".join(chunks_quiet(run))


# ANSI SGR colours for the words a reader scans for; applied to the rendered (already escaped)
# text, in which no payload text can hold an escape character of its own.
_PAINT = [
    (re.compile(r"^( {4})(FATAL|error)\b", re.M), "\x1b[1;31m"),
    (re.compile(r"^( {4})(warning)\b", re.M), "\x1b[33m"),
    (re.compile(r"^( {4})(info)\b", re.M), "\x1b[36m"),
    (re.compile(r"^( {2})(FAIL)\b", re.M), "\x1b[1;31m"),
    (re.compile(r"^( {2})(ok)\b", re.M), "\x1b[32m"),
    (re.compile(r"^()(FAIL)\b", re.M), "\x1b[1;31m"),
    (re.compile(r"^()(PASS)\b", re.M), "\x1b[32m"),
    (re.compile(r"(Result: )(FAIL)"), "\x1b[1;31m"),
    (re.compile(r"(Result: )(PASS)"), "\x1b[1;32m"),
]


def colorize(text: str) -> str:
    for pattern, sgr in _PAINT:
        text = pattern.sub(lambda m, sgr=sgr: f"{m.group(1)}{sgr}{m.group(2)}\x1b[0m", text)
    return text


REPORTER = Reporter(
    "text", render, "The console summary.", "text/plain", file_name=None, suites=True, render_quiet=render_quiet,
    colorize=colorize, chunks=chunks, chunks_quiet=chunks_quiet,
)
