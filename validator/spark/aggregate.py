"""The run's summary and its results in run order from the results table, without holding the
results on the driver: the summary is a Spark aggregation (one row comes back), and the results
stream in one partition at a time, for the reports (command.write_reports)."""

from __future__ import annotations

from collections.abc import Iterable

from validator.model import ResourceResult, Severity
from validator.rule_ids import INTERNAL_ERROR
from validator.spark.rows import RESULT_COLUMNS, row_result


def summarize(results, fail_on: Severity | None) -> dict:
    """RunResult.summary() of the results table, key for key; and `internalErrors`, the findings
    that make the exit code 3."""
    from pyspark.sql import functions as F

    def issues_where(field: str, value: str) -> object:
        # a one-argument lambda: F.filter passes (element, index) to a function of two
        return F.coalesce(F.sum(F.size(F.filter("issues", lambda i: i[field] == value))), F.lit(0))

    severities = sorted(Severity, reverse=True)
    row = results.agg(
        F.countDistinct("source"), F.count(F.lit(1)),
        F.coalesce(F.sum((F.col("status") == "fail").cast("long")), F.lit(0)),
        F.coalesce(F.sum((F.col("status") == "not-validated").cast("long")), F.lit(0)),
        *(issues_where("severity", s.label) for s in severities),
        issues_where("rule", INTERNAL_ERROR),
    ).first()  # fmt: skip
    files, resources, failed, not_validated, *counts, internal = row
    return {
        "files": files,
        "resources": resources,
        "failedResources": failed,
        "notValidatedResources": not_validated,
        "failOn": fail_on.label if fail_on else "never",
        "issues": {s.label: n for s, n in zip(severities, counts, strict=True)},
        "status": "fail" if failed else "pass",
        "internalErrors": internal,
    }


def in_run_order(results) -> Iterable[ResourceResult]:
    """The results, sorted by file then line, fetched one partition at a time."""
    from pyspark.sql import functions as F

    ordered = results.orderBy(F.col("file_index").asc(), F.col("line").asc_nulls_first()).select(*RESULT_COLUMNS)
    for row in ordered.toLocalIterator():
        yield row_result(row)
