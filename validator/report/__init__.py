"""Stage 6, report: a RunResult in, text or bytes out.

One module per format (text, JSON, OperationOutcome, JUnit, HTML, SARIF), each a pure function of
the result model that declares its REPORTER; they never print or write files (files.py writes
atomically for the command line). The command line offers an option per format registered here.
"""

from __future__ import annotations

from validator.report import html_report, json_report, junit, operation_outcome, sarif, text
from validator.report.reporter import Reporter

# Every format, in the order the command line lists their options. A new format is a module that
# declares its REPORTER, named here.
REPORTERS: dict[str, Reporter] = {
    m.REPORTER.name: m.REPORTER for m in (text, json_report, operation_outcome, junit, html_report, sarif)
}

__all__ = ["REPORTERS", "Reporter"]
