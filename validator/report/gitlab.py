"""GitLab Code Quality report (a JSON array of issues, `artifacts: reports: codequality`).

Each finding's fingerprint is the run's (model.fingerprint): the same finding keeps its
fingerprint from run to run and when lines move, which is how GitLab tells new findings in a
merge request from old ones. Paths are relative to the repository root, as GitLab requires.
"""

from __future__ import annotations

import json

from validator.model import RunResult, Severity
from validator.report.reporter import Reporter

_SEVERITIES = {Severity.FATAL: "blocker", Severity.ERROR: "major", Severity.WARNING: "minor",
               Severity.INFORMATION: "info"}  # fmt: skip


def render(run: RunResult) -> str:
    issues = []
    for r, i, fingerprint in run.fingerprinted():
        where = f"{i.expression}: " if i.expression else ""
        issues.append({
            "type": "issue",
            "check_name": i.rule,
            "description": f"{where}{i.message} ({r.label})",
            "categories": ["Bug Risk"],
            "severity": _SEVERITIES[i.severity],
            "fingerprint": fingerprint,
            "location": {"path": run.repo_path(r.source), "lines": {"begin": i.line or 1}},
        })  # fmt: skip
    return json.dumps(issues, indent=2, ensure_ascii=False) + "\n"


REPORTER = Reporter(
    "gitlab",
    render,
    "Write a GitLab Code Quality report to FILE.",
    "application/json",
    file_name="gl-code-quality-report.json",
)
