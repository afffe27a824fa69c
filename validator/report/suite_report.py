"""Reports of a conformance-suite run: JUnit (a testsuite per suite file, a testcase per case),
JSON, and a self-contained HTML page. Pure functions of the case results."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html import escape
from itertools import groupby

from junit_xml import TestCase, TestSuite

from validator.compile.plan import Rule
from validator.model import RunResult
from validator.report import html_report, json_report
from validator.suites import CaseResult


def render_junit(results: list[CaseResult]) -> str:
    root = ET.Element("testsuites", name="imaging-validator test")
    tests = failures = 0
    seconds = 0.0
    for suite, group in groupby(results, key=lambda r: r.case.suite):
        cases = []
        for r in group:
            tc = TestCase(
                r.case.title,
                classname=suite,
                elapsed_sec=round(r.duration, 6),
                stdout="\n".join(f"{x.label} ({x.source}): {len(x.issues)} issue(s)" for x in r.results) or None,
            )
            if not r.passed:
                tc.add_failure_info(message=r.problems[0], output="\n".join(r.problems), failure_type="conformance")
            cases.append(tc)
        element = TestSuite(suite, cases, file=suite).build_xml_doc()
        element.attrib.pop("disabled", None)  # not in the JUnit schema CI servers read
        duration = float(element.get("time", "0") or 0)
        element.set("time", f"{duration:.3f}")
        root.append(element)
        tests += len(cases)
        failures += sum(1 for c in cases if c.is_failure())
        seconds += duration
    root.set("tests", str(tests))
    root.set("failures", str(failures))
    root.set("errors", "0")
    root.set("time", f"{seconds:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def render_json(results: list[CaseResult]) -> str:
    doc = {
        "summary": {"cases": len(results), "passed": sum(r.passed for r in results),
                    "failed": sum(not r.passed for r in results)},
        "cases": [
            {"suite": r.case.suite, "title": r.case.title, "status": "pass" if r.passed else "fail",
             "problems": r.problems,
             "results": [json_report.result_dict(x, r.case.fail_on) for x in r.results]}
            for r in results
        ],
    }  # fmt: skip
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def render_html(results: list[CaseResult], rules: dict[str, Rule], version: str) -> str:
    """The HTML report of every validated resource, headed by a table of the cases."""
    rows = "".join(
        f"<tr><td>{escape(r.case.suite)}</td><td>{escape(r.case.title)}</td>"
        f'<td><span class="status {"pass" if r.passed else "fail"}">{"PASS" if r.passed else "FAIL"}</span></td>'
        f"<td>{'<br>'.join(escape(p) for p in r.problems) or '-'}</td></tr>"
        for r in results
    )
    cases_table = ('<h2>Conformance cases</h2><table><thead><tr><th>Suite</th><th>Case</th><th>Status</th>'
                   f"<th>Problems</th></tr></thead><tbody>{rows}</tbody></table>")  # fmt: skip
    run = RunResult(results=tuple(x for r in results for x in r.results))
    page = html_report.render(run, rules, version)
    return page.replace("<h2>Top rules</h2>", cases_table + "\n<h2>Top rules</h2>", 1)
