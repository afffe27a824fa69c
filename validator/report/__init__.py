"""Stage 6, report: a RunResult in, text or bytes out.

One module per format (text, JSON, OperationOutcome, JUnit, HTML, SARIF, GitLab Code Quality,
GitHub workflow commands), each a pure function of the result model that declares its REPORTER;
they never print or write files (files.py writes atomically for the command line). The command
line offers each format registered here for the console (--format) and for files (--output).
"""

from __future__ import annotations

from validator.report import github, gitlab, html_report, json_report, junit, operation_outcome, sarif, text
from validator.report.reporter import Reporter

# Every format, in the order the command line lists their options. A new format is a module that
# declares its REPORTER, named here.
_MODULES = (text, json_report, operation_outcome, junit, html_report, sarif, gitlab, github)
REPORTERS: dict[str, Reporter] = {m.REPORTER.name: m.REPORTER for m in _MODULES}

__all__ = ["REPORTERS", "Reporter"]
