"""Readable console summary, grouped by file; for a suite run, one line per case. No payload text
reaches the terminal raw (report/safe_text.py)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from itertools import islice

from validator.model import ResourceResult, RunResult, Severity
from validator.report.reporter import Reporter
from validator.report.safe_text import terminal, terminal_lines

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


def result_text(result: ResourceResult, fail_on: Severity | None, fails: bool | None = None) -> str:
    """The lines of one resource in the listing (its status, then each finding), escaped: what a
    --jobs worker renders for the parent to print (TextStream). `fails`: result.fails(fail_on)."""
    if fails is None:
        fails = result.fails(fail_on)
    # As result.status(fail_on), from `fails`.
    status = "FAIL" if fails else "ok" if result.not_validated is None else "NOT VALIDATED"
    version = f"FHIR {result.fhir_version}" if result.fhir_version else ""
    profiles = f"  profiles: {', '.join(p.rsplit('/', 1)[-1] for p in result.profiles)}" if result.profiles else ""
    # Each line is escaped whole: payload text (values, ids, file names) is in most of them.
    return terminal_lines([f"  {status:<4} {result.label}  {version}{profiles}".rstrip(), *_issue_lines(result)])


# A resource as the listing needs it: its source (a block per file), whether it fails (--quiet
# lists only those) and its lines (result_text). Made where the result is, so that a --jobs
# worker can make it and the parent need not read the result back to print it.
Listed = tuple[str, bool, str]


def listed(result: ResourceResult, fail_on: Severity | None) -> Listed:
    fails = result.fails(fail_on)
    return result.source, fails, result_text(result, fail_on, fails)


_NO_SOURCE = object()  # the source before the first resource: any source starts a block


class _Listing:
    """The listing, a resource at a time and in run order: a block per file (consecutive
    resources of one source), its name first and a blank line after it; with quiet, only the
    resources that fail, and only the blocks that list one."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.source: object = _NO_SOURCE
        self.header = False  # whether the block of `source` was started
        self.pieces: list[str] = []
        self.lines = 0  # resources in pieces (a chunk is cut every _CHUNK_RESOURCES)

    def add(self, source: str, fails: bool, text: str) -> None:
        if source != self.source:
            if self.header:
                self.pieces.append("\n")
            self.source, self.header = source, False
        if self.quiet and not fails:
            return
        if not self.header:
            self.pieces.append(terminal(source) + "\n")
            self.header = True
        self.pieces.append(text)
        self.lines += 1

    def full(self) -> bool:
        return self.lines >= _CHUNK_RESOURCES

    def take(self) -> str:
        out = "".join(self.pieces)
        self.pieces, self.lines = [], 0
        return out

    def end(self, run: RunResult) -> str:
        """What follows the last resource: the blank line closing its block, the notes, the summary."""
        if self.header:
            self.pieces.append("\n")
            self.header = False
        self.pieces.extend(terminal(line) + "\n" for line in [*(f"note: {note}" for note in run.notes),
                                                                summary_line(run)])  # fmt: skip
        return self.take()


def _chunks(run: RunResult, quiet: bool) -> Iterator[str]:
    """One block per file (a line per case for a suite run); with quiet, only what fails, and the
    summary line. In pieces, a few hundred resources at a time, so a run of a million resources
    is printed without its whole text in memory."""
    if run.cases is not None:
        yield _cases(run, quiet)
        return
    listing = _Listing(quiet)
    yield from _listed(listing, run.results, run.fail_on)
    yield listing.end(run)


def _listed(listing: _Listing, results: Iterable[ResourceResult], fail_on: Severity | None) -> Iterator[str]:
    for r in results:
        if listing.quiet and r.source == listing.source and not r.fails(fail_on):
            continue  # not listed, and starts no block: not rendered either
        listing.add(*listed(r, fail_on))
        if listing.full():
            yield listing.take()


# Resources per chunk printed: about 2,000 lines of a realistic run (a resource and its notes).
_CHUNK_RESOURCES = 400


class TextStream:
    """The text report printed while the run goes on, as its results arrive in run order (the
    same text `chunks` gives after the run, in other pieces): a --jobs run then prints as its
    workers validate, instead of reading every result back and printing them once they are done.

    `render` makes a resource's Listed (a --jobs worker calls it, in the worker); `add` takes it,
    in run order, with `final` False for a result that the end of the run may still change (a
    check that waits for other inputs): from that one on, nothing more is printed during the run,
    and `end` prints the rest from the run's results, then the notes and the summary.

    Nothing that goes wrong while printing stops the run: a result the text cannot be made of (a
    defect) or a write that fails (standard output closed) hold the printing there, the run goes
    on and its report files are written, and `end` meets the same failure where the text was
    printed before it was streamed."""

    def __init__(self, fail_on: Severity | None, quiet: bool, write: Callable[[str], None]) -> None:
        self.fail_on = fail_on
        self.write = write
        self.listing = _Listing(quiet)
        self.printed = 0  # results taken (listed or not) before the first that may change
        self.held = False
        self.unwritten = ""  # the text a write failed on, written again first by `end`

    def render(self, result: ResourceResult) -> Listed | None:
        try:
            return listed(result, self.fail_on)
        except Exception:  # a defect: `end` renders it again, after the run, and fails there
            return None

    def add(self, item: Listed | None, final: bool = True) -> None:
        if self.held:
            return
        if item is None or not final:
            self.held = True
            return
        self.listing.add(*item)
        self.printed += 1
        if self.listing.full():
            text = self.listing.take()
            try:
                self.write(text)
            except OSError:
                self.unwritten, self.held = text, True

    def end(self, run: RunResult) -> None:
        """Print what is left: the results not printed yet (as the run has them), then the notes
        and the summary line."""
        if self.unwritten:
            self.write(self.unwritten)
            self.unwritten = ""
        results = run.results
        # A store (run/store.py) reads from there on; else they are in memory.
        start = getattr(results, "iter_from", None)
        rest = start(self.printed) if start is not None else islice(results, self.printed, None)
        for chunk in _listed(self.listing, rest, self.fail_on):
            self.write(chunk)
        self.write(self.listing.end(run))


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
