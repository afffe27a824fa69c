"""The JSON report (its schema: validator/schemas/report.schema.json)."""

from __future__ import annotations

import json

from validator.model import ResourceResult, RunResult, Severity


def result_dict(r: ResourceResult, fail_on: Severity | None) -> dict:
    return {
        "source": r.source,
        "entry": r.entry,
        "resourceType": r.resource_type,
        "id": r.id,
        "fhirVersion": r.fhir_version,
        "fhirVersionReason": r.version_reason,
        "profiles": list(r.profiles),
        "status": "fail" if r.fails(fail_on) else "pass",
        "issues": [i.as_dict() for i in r.issues],
    }


def report_dict(run: RunResult) -> dict:
    return {"summary": run.summary(), "results": [result_dict(r, run.fail_on) for r in run.results]}


def render(run: RunResult) -> str:
    return json.dumps(report_dict(run), indent=2, ensure_ascii=False) + "\n"
