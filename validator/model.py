"""The result of a validation run: issues, per-resource results and the run as a whole.

Everything here is a plain frozen value, so reporters can be pure functions of a RunResult: what
a report shows (rule descriptions, conformance-suite cases, the tool's version) travels in it.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import IntEnum

from validator.rule_ids import INTERNAL_ERROR

VERSION = "0.1.0"  # of imaging-validator (validator.__version__); reports name the tool that made them


class Severity(IntEnum):
    """FHIR OperationOutcome.issue.severity, ordered so that a larger value is worse."""

    INFORMATION = 1
    WARNING = 2
    ERROR = 3
    FATAL = 4

    @property
    def label(self) -> str:
        return _LABELS[self]

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {text!r} (expected one of: {names})") from None


# Severity.label, looked up: an enum's name is a descriptor that costs more than the lookup, and
# every finding of a run is counted by its label (Tally.add).
_LABELS = {s: s.name.lower() for s in Severity}


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding. `expression` is a FHIRPath with indices; for a missing element it is the
    path where the element should be. `line`/`column` are 1-based positions in the source text."""

    severity: Severity
    code: str  # FHIR issue-type code (structure, required, value, invariant, code-invalid, ...)
    rule: str  # id of the rule that produced it
    expression: str
    message: str
    line: int | None = None
    column: int | None = None
    # Source lines around the finding, (line number, text), for reports that show them.
    snippet: tuple[tuple[int, str], ...] = ()

    def __init__(self, severity: Severity, code: str, rule: str, expression: str, message: str,
                 line: int | None = None, column: int | None = None,
                 snippet: tuple[tuple[int, str], ...] = ()) -> None:  # fmt: skip
        # What the dataclass would write, at about half the cost: each field is set through its
        # slot's own setter, not object.__setattr__ (which looks the name up each time). Every
        # finding of a run is made here, most of them a note of a resource that passed.
        s0, s1, s2, s3, s4, s5, s6, s7 = _ISSUE_SETTERS
        s0(self, severity)
        s1(self, code)
        s2(self, rule)
        s3(self, expression)
        s4(self, message)
        s5(self, line)
        s6(self, column)
        s7(self, snippet)

    def __reduce__(self) -> tuple:
        # Pickled as its fields, rebuilt by __init__: the dataclass's own way calls a Python
        # __getstate__ and __setstate__ per finding, and every result past the first thousands of
        # a run is pickled once (run/store.py, --jobs workers) and read back for the reports.
        return (Issue, (self.severity, self.code, self.rule, self.expression, self.message, self.line, self.column,
                        self.snippet))  # fmt: skip

    def as_dict(self) -> dict:
        return {
            "severity": self.severity.label,
            "code": self.code,
            "rule": self.rule,
            "expression": self.expression,
            "line": self.line,
            "column": self.column,
            "message": self.message,
        }


# The slots' setters of Issue's fields, in the order of its __init__ (which the dataclass keeps).
_ISSUE_SETTERS = tuple(vars(Issue)[f.name].__set__ for f in fields(Issue))


@dataclass(frozen=True, slots=True)
class ResourceResult:
    """The issues of one resource (or of one input that could not be read as a resource)."""

    source: str  # file name, or "-" for standard input
    entry: int | None  # Bundle entry index or NDJSON line number, else None
    resource_type: str | None
    id: str | None
    fhir_version: str | None
    profiles: tuple[str, ...]
    issues: tuple[Issue, ...]
    version_reason: str | None = None
    duration: float = 0.0  # seconds spent validating this resource
    # Why no rule pack applied to this resource (a Patient in a Bundle), or None: it was validated.
    # Not validated is not passed: every report gives such a resource its own status.
    not_validated: str | None = None

    def __reduce__(self) -> tuple:
        # As Issue.__reduce__: its fields, in the order of __init__.
        return (ResourceResult, tuple(getattr(self, f) for f in _RESULT_FIELDS))

    @property
    def worst(self) -> Severity | None:
        return max((i.severity for i in self.issues), default=None)

    def fails(self, threshold: Severity | None) -> bool:
        """True when an issue is at or above `threshold` (None = never fail)."""
        return threshold is not None and any(i.severity >= threshold for i in self.issues)

    def status(self, threshold: Severity | None) -> str:
        """fail, not-validated (no rules for its type, and nothing else fails it) or pass."""
        if self.fails(threshold):
            return "fail"
        return "not-validated" if self.not_validated is not None else "pass"

    @property
    def label(self) -> str:
        name = f"{self.resource_type or '?'}/{self.id or '?'}"
        return name if self.entry is None else f"{name} (entry {self.entry})"


_RESULT_FIELDS = tuple(f.name for f in fields(ResourceResult))  # in the order of its __init__


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """What reports say about a rule (SARIF rule entries, the HTML list of rules): the rule as its
    pack declares it, before any --severity change."""

    id: str
    kind: str  # card | type | binding | target | format | invariant | native
    severity: Severity
    code: str  # FHIR issue-type code
    description: str
    source: str  # where the rule comes from: a spec URL (and section), or a pack


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One case of a conformance suite: it passes when nothing is left in `problems`."""

    suite: str  # the suite file
    title: str
    fail_on: Severity  # the case's own threshold, which the status of its resources uses
    results: tuple[ResourceResult, ...]
    problems: tuple[str, ...]
    duration: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class RunResult:
    # In run order: a tuple, or a store that keeps a long run's results on disk (run/store.py).
    results: Sequence[ResourceResult]
    fail_on: Severity | None = Severity.ERROR
    notes: tuple[str, ...] = field(default=())  # run-level remarks (e.g. checks not performed)
    # Every rule the run applied, by id (no hash: a run stays hashable with its mapping).
    rules: Mapping[str, RuleInfo] = field(default_factory=dict, hash=False)
    # A run of conformance suites: its cases, which reports then present (None: a plain run).
    cases: tuple[CaseResult, ...] | None = None
    # Where the run's relative sources are (the working folder) and the repository they belong
    # to, both absolute: reports name files relative to the repository (SARIF %SRCROOT%, GitLab,
    # baselines), so they read the same from any checkout and any folder the run started in.
    cwd: str | None = None
    root: str | None = None
    waived: int = 0  # findings left out because a baseline recorded them (--baseline)

    def repo_relative(self, source: str) -> str | None:
        """`source` relative to the repository root; None for standard input, a file outside the
        root, or a run that knows no root."""
        if source == "-" or self.root is None:
            return None
        absolute = posixpath.normpath(posixpath.join(self.cwd or self.root, source))
        rel = posixpath.relpath(absolute, self.root)
        return None if rel == ".." or rel.startswith("../") else rel

    def repo_path(self, source: str) -> str:
        """`source` relative to the repository root when it is inside it, else as given."""
        return self.repo_relative(source) or source

    def fingerprinted(self) -> Iterator[tuple[ResourceResult, Issue, str]]:
        """Every finding with its fingerprint (see `fingerprint`), numbered apart when the same
        finding occurs twice in one resource."""
        seen: Counter[str] = Counter()
        for r in self.results:
            for i in r.issues:
                base = fingerprint(self.repo_path(r.source), r, i)
                seen[base] += 1
                yield r, i, base if seen[base] == 1 else f"{base}-{seen[base]}"

    @property
    def tally(self) -> Tally:
        """The counts of the summary: kept by a result store as it filled (a run of a million
        resources is not read back to be counted), else counted here."""
        kept = getattr(self.results, "tally", None)
        return kept if isinstance(kept, Tally) else Tally.of(self.results)

    @property
    def failed(self) -> bool:
        return self.tally.failing(self.fail_on) > 0

    @property
    def validator_failed(self) -> bool:
        """The validator itself failed on some input (exit code 3): a defect of the tool, which must
        not pass for a verdict on the payload either way."""
        return self.tally.internal_errors > 0

    def summary(self) -> dict:
        tally = self.tally
        failed = tally.failing(self.fail_on)
        return {
            "files": len(tally.sources),
            "resources": tally.resources,
            "failedResources": failed,
            "notValidatedResources": tally.not_validated(self.fail_on),
            "failOn": self.fail_on.label if self.fail_on else "never",
            "issues": {s.label: tally.issues.get(s.label, 0) for s in sorted(Severity, reverse=True)},
            "status": "fail" if failed else "pass",
        }


@dataclass(slots=True)
class Tally:
    """What a run's summary counts, updated one result at a time (`add`, and `remove` when a
    result is replaced by one with more findings)."""

    sources: set[str] = field(default_factory=set)
    resources: int = 0
    # (worst severity, 0 for none; not validated) -> resources: enough to count failures and
    # not-validated resources at any --fail-on threshold.
    kinds: Counter[tuple[int, bool]] = field(default_factory=Counter)
    issues: Counter[str] = field(default_factory=Counter)  # findings by severity label
    internal_errors: int = 0

    @classmethod
    def of(cls, results: Iterable[ResourceResult]) -> Tally:
        tally = cls()
        for r in results:
            tally.add(r)
        return tally

    def add(self, r: ResourceResult, sign: int = 1) -> None:
        if sign > 0:
            self.sources.add(r.source)
        self.resources += sign
        worst = 0
        counts = self.issues
        for i in r.issues:
            severity = i.severity
            if severity > worst:
                worst = severity
            counts[_LABELS[severity]] += sign
            if i.rule == INTERNAL_ERROR:
                self.internal_errors += sign
        self.kinds[(int(worst), r.not_validated is not None)] += sign

    def merge(self, other: Tally) -> None:
        """Add the counts of another tally (a --jobs worker's, for the results it sent)."""
        self.sources |= other.sources
        self.resources += other.resources
        self.kinds.update(other.kinds)
        self.issues.update(other.issues)
        self.internal_errors += other.internal_errors

    def remove(self, r: ResourceResult) -> None:
        """Take back a result's counts (its source stays: the replacing result has the same one)."""
        self.add(r, -1)

    def failing(self, threshold: Severity | None) -> int:
        if threshold is None:
            return 0
        return sum(n for (worst, _), n in self.kinds.items() if worst >= threshold)

    def not_validated(self, threshold: Severity | None) -> int:
        return sum(n for (worst, unchecked), n in self.kinds.items()
                   if unchecked and (threshold is None or worst < threshold))  # fmt: skip


def fingerprint(path: str, result: ResourceResult, issue: Issue) -> str:
    """A finding's identity across runs: file (relative to the repository), resource, rule,
    element and message; never its line, column or NDJSON line, so moving text does not change it.
    A resource without an id is known by its place in the file (Bundle entry, NDJSON line)."""
    who = f"{result.resource_type}/{result.id}" if result.id else f"entry {result.entry}"
    key = "\0".join((path, who, issue.rule, issue.expression, issue.message))
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
