"""JUnit XML for CI dashboards: one testsuite per input file (and per profile when several are
applied), one testcase per resource, a failure when the resource fails the run's threshold. For a
suite run: one testsuite per suite file, one testcase per case.

CI servers split `classname` at its last dot into package and class (Jenkins shows a file
`ct.json` as class "json" of package "ct"), so it is built from the file's path relative to the
repository: folders joined by dots, the dots inside each name made underscores
(`examples/payloads/ct.json` -> `examples.payloads.ct_json`). Each testcase carries `file` and
`line` (as pytest and GitLab write them): the file and the first failing finding's line."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import groupby
from typing import TYPE_CHECKING

from validator.model import CaseResult, Issue, ResourceResult, RunResult, Severity
from validator.report.reporter import Reporter
from validator.report.safe_text import xml_text

if TYPE_CHECKING:
    from junit_xml import TestCase, TestSuite


def _line(i: Issue) -> str:
    where = f"{i.line}:{i.column}" if i.line is not None else "-"
    return f"{i.severity.label:<11} {i.rule}  {i.expression or '(input)'}  {where}  {i.message}"


def classname(path: str) -> str:
    return ".".join(part.replace(".", "_") for part in path.split("/") if part not in ("", "."))


def _first_line(r: ResourceResult, fail_on: Severity | None) -> int | None:
    """Where a reader should look first: the first failing finding with a position, else the
    first finding with one; for an NDJSON line without either, its line."""
    failing = [i.line for i in r.issues if i.line is not None and fail_on is not None and i.severity >= fail_on]
    placed = failing or [i.line for i in r.issues if i.line is not None]
    return placed[0] if placed else r.entry if r.source.endswith((".ndjson", ".jsonl")) else None


def _case(r: ResourceResult, run: RunResult, suite: str) -> TestCase:
    from junit_xml import TestCase  # imported when a JUnit report is written, not at every start-up

    # Findings below the threshold (warnings, information) go to system-out, where CI shows them
    # without failing the test; the failure itself lists every finding of the resource.
    below = [i for i in r.issues if run.fail_on is None or i.severity < run.fail_on]
    stdout = "\n".join(_line(i) for i in below) or None
    path = run.repo_path(r.source)
    case = TestCase(r.label, classname=classname(path) + suite, elapsed_sec=round(r.duration, 6), stdout=stdout,
                    file=path, line=_first_line(r, run.fail_on))  # fmt: skip
    if r.status(run.fail_on) == "not-validated":
        case.add_skipped_info(message=f"not validated: {r.not_validated}")
    if r.fails(run.fail_on):
        failing = [i for i in r.issues if run.fail_on is not None and i.severity >= run.fail_on]
        worst = max(i.severity for i in failing)
        counts = ", ".join(
            f"{n} {s.label}" for s in sorted(Severity, reverse=True) if (n := sum(i.severity is s for i in failing))
        )
        case.add_failure_info(
            message=f"{counts} (fail on {run.fail_on.label if run.fail_on else 'never'}); first: {failing[0].message}",
            output="\n".join(_line(i) for i in r.issues),
            failure_type=worst.label,
        )
    return case


@dataclass(slots=True)
class _Suite:
    """One testsuite of a plain run: the resources of one file, or of one of its profiles."""

    source: str
    profile: str | None  # None: every resource of the file, or those without a profile
    tests: int = 0
    failures: int = 0
    skipped: int = 0
    time: float = 0.0

    @property
    def name(self) -> str:
        return self.source if self.profile is None else f"{self.source} [{self.profile.rsplit('/', 1)[-1]}]"

    @property
    def suffix(self) -> str:
        return "" if self.profile is None else f".{classname(self.profile.rsplit('/', 1)[-1])}"

    def count(self, r: ResourceResult, fail_on: Severity | None) -> None:
        self.tests += 1
        self.failures += r.fails(fail_on)
        self.skipped += r.status(fail_on) == "not-validated"
        self.time += round(r.duration, 6)


def _file_suites(source: str, results: Iterable[ResourceResult], fail_on: Severity | None) -> list[_Suite]:
    """The testsuites of one file, counted: one, or one per profile when several are applied (and
    one for the resources without a profile), each only when it has resources."""
    whole, bare = _Suite(source, None), _Suite(source, None)
    by_profile: dict[str, _Suite] = {}
    for r in results:
        whole.count(r, fail_on)
        if not r.profiles:
            bare.count(r, fail_on)
        for p in dict.fromkeys(r.profiles):
            by_profile.setdefault(p, _Suite(source, p)).count(r, fail_on)
    if len(by_profile) <= 1:
        return [whole]
    return [by_profile[p] for p in sorted(by_profile)] + ([bare] if bare.tests else [])


def _open_tag(suite: _Suite) -> str:
    from junit_xml import TestSuite

    # The attributes junit-xml gives a suite, with this suite's counts (written before its cases).
    element = TestSuite(suite.name, [], file=suite.source).build_xml_doc()
    element.attrib.pop("disabled", None)  # not allowed by the JUnit schema CI servers read
    element.attrib.update(errors="0", failures=str(suite.failures), skipped=str(suite.skipped),
                          tests=str(suite.tests), time=f"{suite.time:.3f}")  # fmt: skip
    return ET.tostring(element, encoding="unicode").removesuffix(" />") + ">"


def _case_xml(r: ResourceResult, run: RunResult, suffix: str) -> str:
    from junit_xml import TestSuite

    element = TestSuite("", [_case(r, run, suffix)]).build_xml_doc().find("testcase")
    assert element is not None
    ET.indent(element, level=2)
    return "    " + ET.tostring(element, encoding="unicode") + "\n"


def _plain_chunks(run: RunResult) -> Iterator[str]:
    """The testsuites of a plain run, read twice from the results: once to count each suite
    (its counts come before its cases), once to write the cases, a resource at a time."""
    per_file = [_file_suites(source, group, run.fail_on) for source, group in groupby(run.results, key=_source)]
    suites = [s for file_suites in per_file for s in file_suites]
    seconds = sum(s.time for s in suites)
    yield (f'<?xml version="1.0" encoding="utf-8"?>\n<testsuites name="imaging-validator" '
           f'tests="{sum(s.tests for s in suites)}" failures="{sum(s.failures for s in suites)}" errors="0" '
           f'time="{seconds:.3f}"')  # fmt: skip
    if not suites:
        yield " />\n"
        return
    yield ">\n"
    for file_suites, (_, group) in zip(per_file, groupby(run.results, key=_source), strict=True):
        if len(file_suites) == 1:
            yield "  " + xml_text(_open_tag(file_suites[0])) + "\n"
            yield from (xml_text(_case_xml(r, run, "")) for r in group)
            yield "  </testsuite>\n"
            continue
        members = list(group)  # several profiles in one file: its resources are read once per suite
        for suite in file_suites:
            yield "  " + xml_text(_open_tag(suite)) + "\n"
            for r in members:
                if suite.profile in r.profiles if suite.profile else not r.profiles:
                    yield xml_text(_case_xml(r, run, suite.suffix))
            yield "  </testsuite>\n"
    yield "</testsuites>\n"


def _source(r: ResourceResult) -> str:
    return r.source


def _suite_cases(cases: tuple[CaseResult, ...]) -> list[TestSuite]:
    """A suite run: a testsuite per suite file, a testcase per case, a failure listing its problems."""
    from junit_xml import TestCase, TestSuite

    suites = []
    for suite, group in groupby(cases, key=lambda c: c.suite):
        tests = []
        for c in group:
            tc = TestCase(
                c.title,
                classname=classname(suite),
                file=suite,
                elapsed_sec=round(c.duration, 6),
                stdout="\n".join(f"{x.label} ({x.source}): {len(x.issues)} issue(s)" for x in c.results) or None,
            )
            if not c.passed:
                tc.add_failure_info(message=c.problems[0], output="\n".join(c.problems), failure_type="conformance")
            tests.append(tc)
        suites.append(TestSuite(suite, tests, file=suite))
    return suites


def _suite_run(run: RunResult) -> str:
    root = ET.Element("testsuites", name="imaging-validator test")
    totals = {"tests": 0, "failures": 0, "errors": 0, "time": 0.0}
    for suite in _suite_cases(run.cases or ()):
        element = suite.build_xml_doc()
        # junit-xml writes a `disabled` attribute that the JUnit schema CI servers read does not allow.
        element.attrib.pop("disabled", None)
        root.append(element)
        totals["tests"] += int(element.get("tests", "0"))
        totals["failures"] += int(element.get("failures", "0"))
        totals["errors"] += int(element.get("errors", "0"))
        seconds = float(element.get("time", "0") or 0)
        element.set("time", f"{seconds:.3f}")  # the schema's SUREFIRE_TIME allows milliseconds at most
        totals["time"] += seconds
    for key, value in totals.items():
        root.set(key, f"{value:.3f}" if key == "time" else str(value))
    ET.indent(root)
    return xml_text('<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n")


def chunks(run: RunResult) -> Iterable[str]:
    return [_suite_run(run)] if run.cases is not None else _plain_chunks(run)


def render(run: RunResult) -> str:
    return "".join(chunks(run))


REPORTER = Reporter(
    "junit", render, "Write a JUnit XML report to FILE.", "application/xml", file_name="junit.xml", suites=True,
    chunks=chunks,
)
