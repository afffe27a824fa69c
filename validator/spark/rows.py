"""One ResourceResult as one row of the results table, and back.

The table has a row per resource (or per input that could not be read as one): file, NDJSON line,
resource type, id, FHIR version, profiles, status, and its issues as a list of structs with
severity, code, rule, expression, line, column, message and the source lines around the finding.
Rows are plain tuples in the order of RESULT_FIELDS, so executors build them without Spark types.
"""

from __future__ import annotations

from validator.model import Issue, ResourceResult, Severity

# (name, Spark SQL type) of each column, in the order of the row tuples.
SNIPPET_TYPE = "array<struct<line:int,text:string>>"
ISSUE_TYPE = ("struct<severity:string,code:string,rule:string,expression:string,line:int,column:int,"
              f"message:string,snippet:{SNIPPET_TYPE}>")  # fmt: skip
RESULT_FIELDS: tuple[tuple[str, str], ...] = (
    ("source", "string"),
    ("line", "bigint"),  # NDJSON line number; null for a finding about a whole file
    ("resource_type", "string"),
    ("id", "string"),
    ("status", "string"),  # fail, pass or not-validated, at the run's --fail-on
    ("fhir_version", "string"),
    ("fhir_version_reason", "string"),
    ("profiles", "array<string>"),
    ("not_validated", "string"),
    ("seconds", "double"),
    ("issues", f"array<{ISSUE_TYPE}>"),
)
RESULT_SCHEMA = ", ".join(f"`{name}` {kind}" for name, kind in RESULT_FIELDS)
RESULT_COLUMNS = tuple(name for name, _ in RESULT_FIELDS)


def result_row(r: ResourceResult, fail_on: Severity | None) -> tuple:
    issues = [(i.severity.label, i.code, i.rule, i.expression, i.line, i.column, i.message, list(i.snippet))
              for i in r.issues]  # fmt: skip
    return (r.source, r.entry, r.resource_type, r.id, r.status(fail_on), r.fhir_version, r.version_reason,
            list(r.profiles), r.not_validated, r.duration, issues)  # fmt: skip


def row_result(row) -> ResourceResult:
    """A row (a Spark Row, or a tuple in RESULT_FIELDS order) as the ResourceResult it was made from."""
    (source, line, rtype, rid, _status, version, reason, profiles, not_validated, seconds, issues) = tuple(row)
    return ResourceResult(
        source=source, entry=line, resource_type=rtype, id=rid, fhir_version=version, version_reason=reason,
        profiles=tuple(profiles or ()), not_validated=not_validated, duration=seconds or 0.0,
        issues=tuple(Issue(Severity.parse(s), code, rule, expr, msg, ln, col, tuple((a, b) for a, b in snip or ()))
                     for s, code, rule, expr, ln, col, msg, snip in issues or ()),
    )  # fmt: skip
