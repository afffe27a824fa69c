"""The JSON report (its schema: validator/schemas/report.schema.json); for a suite run, the cases
with their problems and resources."""

from __future__ import annotations

from collections.abc import Iterator

from validator.model import CaseResult, ResourceResult, RunResult, Severity
from validator.report.json_stream import document_chunks, dumps
from validator.report.reporter import Reporter


def result_dict(r: ResourceResult, fail_on: Severity | None) -> dict:
    return {
        "source": r.source,
        "entry": r.entry,
        "resourceType": r.resource_type,
        "id": r.id,
        "fhirVersion": r.fhir_version,
        "fhirVersionReason": r.version_reason,
        "profiles": list(r.profiles),
        "status": r.status(fail_on),
        "issues": [i.as_dict() for i in r.issues],
    }


def report_dict(run: RunResult) -> dict:
    return {"summary": run.summary(), "results": [result_dict(r, run.fail_on) for r in run.results]}


def _suite_dict(cases: tuple[CaseResult, ...]) -> dict:
    return {
        "summary": {"cases": len(cases), "passed": sum(c.passed for c in cases),
                    "failed": sum(not c.passed for c in cases)},
        "cases": [
            {"suite": c.suite, "title": c.title, "status": "pass" if c.passed else "fail",
             "problems": list(c.problems),
             "results": [result_dict(x, c.fail_on) for x in c.results]}
            for c in cases
        ],
    }  # fmt: skip


def chunks(run: RunResult) -> Iterator[str]:
    """The report, one resource at a time (report/json_stream.py)."""
    if run.cases is not None:
        yield dumps(_suite_dict(run.cases)) + "\n"
        return
    results = (result_dict(r, run.fail_on) for r in run.results)
    yield from document_chunks({"summary": run.summary()}, "results", results)


def render(run: RunResult) -> str:
    return "".join(chunks(run))


REPORTER = Reporter(
    "json", render, "Write the JSON report to FILE.", "application/json", file_name="report.json", suites=True,
    chunks=chunks,
)
