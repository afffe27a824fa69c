"""SARIF 2.1.0 for code-scanning annotations: one run, one rule entry per rule id that occurs,
one result per finding with the file URI and the line/column region.

When the run knows its repository root, a file inside it is named relative to `%SRCROOT%`
(declared in `originalUriBaseIds` as the root's file URI): GitHub code scanning places an alert
only on a path relative to the repository, whatever folder the run started in."""

from __future__ import annotations

import json
from pathlib import PurePath
from urllib.parse import quote

from validator.model import VERSION, RunResult, Severity
from validator.report.reporter import Reporter

_LEVELS = {Severity.FATAL: "error", Severity.ERROR: "error", Severity.WARNING: "warning",
           Severity.INFORMATION: "note"}  # fmt: skip


SRCROOT = "%SRCROOT%"


def _quote(path: str) -> str:
    # A file name that is not UTF-8 holds its bytes as lone surrogates: back to those bytes, which
    # the URI then names exactly (%FF).
    return quote(PurePath(path).as_posix().encode("utf-8", "surrogateescape"), safe="/:")


def _artifact(run: RunResult, source: str) -> dict:
    if source == "-":
        return {"uri": "stdin"}
    rel = run.repo_relative(source)
    return {"uri": _quote(source)} if rel is None else {"uri": _quote(rel), "uriBaseId": SRCROOT}


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
            location: dict = {"physicalLocation": {"artifactLocation": _artifact(run, r.source)}}
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
    sarif_run: dict = {
        "tool": {"driver": {"name": "imaging-validator", "version": VERSION, "rules": descriptors}},
        "results": results,
        "columnKind": "unicodeCodePoints",
    }
    if run.root is not None:
        # A base URI must end with a slash (SARIF 3.14.14), or the file names would replace its last part.
        sarif_run["originalUriBaseIds"] = {SRCROOT: {"uri": "file://" + _quote(run.root).rstrip("/") + "/"}}
    doc = {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0", "runs": [sarif_run]}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


REPORTER = Reporter(
    "sarif", render, "Write a SARIF 2.1.0 report to FILE.", "application/sarif+json", file_name="report.sarif"
)
