"""Fault isolation: whatever goes wrong inside the validator while reading or validating one input
becomes a fatal `engine:internal-error` finding for that input, and the run goes on.

A defect of the validator must neither stop the other inputs from being validated and reported
nor pass for a verdict on the payload: the finding says the input was not (completely) validated,
and the command line exits 3 for it. The guards are the pipeline's (serial runs and `--jobs`
workers go through the same ones); this module says what such a finding holds.
"""

from __future__ import annotations

import traceback

from validator.model import Issue, ResourceResult

SHORT = 200  # characters of an exception's message kept without --debug: enough to recognise it


def describe(exc: BaseException, debug: bool) -> str:
    """The exception type and a short message; the whole traceback only when debugging (it names
    the validator's files and lines, of no use to whoever sends the payload)."""
    text = " ".join(str(exc).split())
    short = f"{type(exc).__name__}: {text[:SHORT]}{'...' if len(text) > SHORT else ''}" if text else type(exc).__name__
    if not debug:
        return short
    return short + "\n" + "".join(traceback.format_exception(exc)).rstrip()


def failure_message(what: str, exc: BaseException, debug: bool) -> str:
    return f"the validator failed {what}, so it is not (completely) validated: {describe(exc, debug)}"


def unvalidated(source: str, entry: int | None, resource: object, finding: Issue) -> ResourceResult:
    """The result of an input the validator failed on: the finding, and the resource's name when
    it can be told."""
    res = resource if isinstance(resource, dict) else {}
    rtype, rid = res.get("resourceType"), res.get("id")
    return ResourceResult(source=source, entry=entry, resource_type=rtype if isinstance(rtype, str) else None,
                          id=rid if isinstance(rid, str) else None, fhir_version=None, profiles=(),
                          issues=(finding,))  # fmt: skip
