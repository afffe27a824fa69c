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
from itertools import groupby

from junit_xml import TestCase, TestSuite

from validator.model import CaseResult, Issue, ResourceResult, RunResult, Severity
from validator.report.reporter import Reporter
from validator.report.safe_text import xml_text


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


def _suites(run: RunResult) -> list[TestSuite]:
    suites = []
    for source, group in groupby(run.results, key=lambda r: r.source):
        results = list(group)
        profiles = sorted({p for r in results for p in r.profiles})
        keys = [None] if len(profiles) <= 1 else [*profiles, None]
        for key in keys:
            if key is None:
                members = results if len(profiles) <= 1 else [r for r in results if not r.profiles]
                name, suffix = source, ""
            else:
                members = [r for r in results if key in r.profiles]
                short = key.rsplit("/", 1)[-1]
                name, suffix = f"{source} [{short}]", f".{classname(short)}"
            if members:
                suites.append(TestSuite(name, [_case(r, run, suffix) for r in members], file=source))
    return suites


def _suite_cases(cases: tuple[CaseResult, ...]) -> list[TestSuite]:
    """A suite run: a testsuite per suite file, a testcase per case, a failure listing its problems."""
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


def render(run: RunResult) -> str:
    if run.cases is None:
        name, suites = "imaging-validator", _suites(run)
    else:
        name, suites = "imaging-validator test", _suite_cases(run.cases)
    root = ET.Element("testsuites", name=name)
    totals = {"tests": 0, "failures": 0, "errors": 0, "time": 0.0}
    for suite in suites:
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


REPORTER = Reporter(
    "junit", render, "Write a JUnit XML report to FILE.", "application/xml", file_name="junit.xml", suites=True
)
