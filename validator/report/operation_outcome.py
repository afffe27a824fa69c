"""A FHIR Bundle (type collection) of OperationOutcome resources, one per validated resource,
with the extensions the HL7 validator writes: operationoutcome-file on each OperationOutcome (the
file, relative to the repository when the run knows it), operationoutcome-issue-line and -col on
each issue."""

from __future__ import annotations

from collections.abc import Iterator
from html import escape

from validator.model import Issue, ResourceResult, RunResult
from validator.report.json_stream import document_chunks
from validator.report.reporter import Reporter

RULE_SYSTEM = "urn:imaging-validator:rule"
LINE_EXT = "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-line"
COL_EXT = "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-col"
FILE_EXT = "http://hl7.org/fhir/StructureDefinition/operationoutcome-file"


def _issue(i: Issue) -> dict:
    out: dict = {}
    ext = []
    if i.line is not None:
        ext.append({"url": LINE_EXT, "valueInteger": i.line})
    if i.column is not None:
        ext.append({"url": COL_EXT, "valueInteger": i.column})
    if ext:
        out["extension"] = ext
    out["severity"] = i.severity.label
    out["code"] = i.code
    out["details"] = {"coding": [{"system": RULE_SYSTEM, "code": i.rule}], "text": i.message}
    where = f" at line {i.line}, column {i.column}" if i.line is not None else ""
    out["diagnostics"] = f"{i.rule}{where}"
    if i.expression:
        out["expression"] = [i.expression]
    return out


def outcome(r: ResourceResult, index: int, path: str | None = None) -> dict:
    """The OperationOutcome of one validated resource; its narrative names the resource and file."""
    issues = [_issue(i) for i in r.issues] or [
        {"severity": "information", "code": "informational", "details": {"text": "No issues found"}}
    ]
    what = escape(f"{r.label} in {r.source}" if r.resource_type else f"{r.source} (not validated as a resource)")
    out: dict = {
        "resourceType": "OperationOutcome",
        "id": f"result-{index}",
        "text": {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">Validation of {what}</div>'},
    }
    if r.source != "-":
        out["extension"] = [{"url": FILE_EXT, "valueString": path or r.source}]
    out["issue"] = issues
    return out


def chunks(run: RunResult) -> Iterator[str]:
    """The Bundle, one OperationOutcome at a time (report/json_stream.py)."""
    entries = (
        {"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{i:012d}", "resource": outcome(r, i, run.repo_path(r.source))}
        for i, r in enumerate(run.results)
    )
    yield from document_chunks({"resourceType": "Bundle", "type": "collection"}, "entry", entries)


def render(run: RunResult) -> str:
    return "".join(chunks(run))


REPORTER = Reporter(
    "operation-outcome",
    render,
    "Write a Bundle of OperationOutcomes to FILE.",
    "application/fhir+json",
    file_name="operation-outcome.json",
    chunks=chunks,
)
