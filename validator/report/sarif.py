"""SARIF 2.1.0 for code-scanning annotations: one run, one rule entry per rule id that occurs,
one result per finding with the file URI and the line/column region."""

from __future__ import annotations

import json
from pathlib import PurePath
from urllib.parse import quote

from validator.model import VERSION, RunResult, Severity
from validator.report.reporter import Reporter

_LEVELS = {Severity.FATAL: "error", Severity.ERROR: "error", Severity.WARNING: "warning",
           Severity.INFORMATION: "note"}  # fmt: skip


def _uri(source: str) -> str:
    if source == "-":
        return "stdin"
    # A file name that is not UTF-8 holds its bytes as lone surrogates: back to those bytes, which
    # the URI then names exactly (%FF).
    return quote(PurePath(source).as_posix().encode("utf-8", "surrogateescape"), safe="/:")


def render(run: RunResult) -> str:
    used = sorted({i.rule for r in run.results for i in r.issues})
    index = {rid: n for n, rid in enumerate(used)}
    descriptors = []
    for rid in used:
        rule = run.rules.get(rid)
        descriptor: dict = {"id": rid}
        if rule is not None:
            descriptor["shortDescription"] = {"text": rule.description.split(". ")[0][:250]}
            descriptor["fullDescription"] = {"text": rule.description}
            descriptor["defaultConfiguration"] = {"level": _LEVELS[rule.severity]}
            descriptor["properties"] = {"kind": rule.kind, "issueCode": rule.code, "source": rule.source}
            if rule.source.startswith(("http://", "https://")):
                descriptor["helpUri"] = rule.source.split(" ")[0]
        descriptors.append(descriptor)
    results = []
    for r in run.results:
        for i in r.issues:
            location: dict = {"physicalLocation": {"artifactLocation": {"uri": _uri(r.source)}}}
            if i.line is not None:
                region = {"startLine": i.line}
                if i.column is not None:
                    region["startColumn"] = i.column
                location["physicalLocation"]["region"] = region
            if i.expression:
                location["logicalLocations"] = [{"fullyQualifiedName": i.expression, "kind": "element"}]
            result = {
                "ruleId": i.rule,
                "ruleIndex": index[i.rule],
                "level": _LEVELS[i.severity],
                "message": {"text": i.message},
                "locations": [location],
                "properties": {"severity": i.severity.label, "issueCode": i.code, "resource": r.label},
            }
            results.append(result)
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "imaging-validator", "version": VERSION, "rules": descriptors}},
            "results": results,
            "columnKind": "unicodeCodePoints",
        }],
    }  # fmt: skip
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


REPORTER = Reporter(
    "sarif", render, "Write a SARIF 2.1.0 report to FILE.", "application/sarif+json", file_name="report.sarif"
)
