"""Checks that need the whole run: a reference to a resource in another input of the run.

Two kinds wait for the end of a run: a target profile (IMR's study must point at an Imaging Study
Endpoint) whose target was not in the same file, and a WADO-RS endpoint whose address must name
the study that refers to it (evaluate/dicom). Neither keeps texts or parsed trees until the end:
- a resource that such a check may need is reduced, when it is read, to what the checks ask of
  it (`Remembered`: its conformance to each target profile the profiles use, and the three
  Endpoint fields that the WADO-RS check reads);
- a waiting check keeps its reference, and where to report (`Place`: the expression and the
  source position, located while the text was at hand).
`--jobs` workers make both and the parent calls `finish_waiting`, exactly as a serial run does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from validator.compile.plan import Rule

# Endpoint fields the WADO-RS address check reads (evaluate/dicom/study.py endpoint_problems).
ENDPOINT_FIELDS = ("resourceType", "connectionType", "address")


@dataclass(frozen=True, slots=True)
class Place:
    """Where a finding about a pointer of a resource is shown."""

    expression: str
    line: int | None = None
    column: int | None = None
    snippet: tuple[tuple[int, str], ...] = ()


@dataclass(slots=True)
class WaitingTarget:
    """A reference whose target must conform to profiles, target not read yet."""

    place: Place
    reference: str
    profiles: tuple[str, ...]
    rule: Rule
    path: str


@dataclass(slots=True)
class WaitingEndpoint:
    """A WADO-RS endpoint reference of a study or series, endpoint not read yet."""

    place: Place
    reference: str
    study_uid: str | None
    series_uid: str | None


@dataclass(slots=True)
class Waiting:
    """The checks of one resource result that wait for the rest of the run."""

    index: int  # position of the referencing result in the run
    targets: list[WaitingTarget] = field(default_factory=list)
    endpoints: list[WaitingEndpoint] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Remembered:
    """What the waiting checks may ask of a resource of the run."""

    conformance: dict[tuple[str, ...], list[str]]  # target profiles -> problems (empty: conforms)
    endpoint: dict | None  # the ENDPOINT_FIELDS of an Endpoint


def remember_endpoint(res: dict) -> dict:
    return {k: res[k] for k in ENDPOINT_FIELDS if k in res}


def lookup(index: dict[str, Remembered], reference: str) -> Remembered | None:
    """A resource of the run by its fullUrl or by the Type/id its reference ends with."""
    return index.get(reference) or index.get("/".join(reference.split("/")[-2:]))


# (rule id, Place, message) -> a finding on the referencing resource
Report = Callable[[Rule | str, Place, str], None]
EndpointProblems = Callable[[dict, str, str | None, str | None], list[tuple[str, str]]]
# (reference, study UID, series UID) -> findings about an endpoint nowhere in the run (--dicomweb says so)
EndpointMissing = Callable[[str, str | None, str | None], list[tuple[str, str]]]


def finish_waiting(waiting: Waiting, index: dict[str, Remembered], report: Report, not_checked: Rule,
                   endpoint_problems: EndpointProblems,
                   endpoint_missing: EndpointMissing | None = None) -> None:  # fmt: skip
    """Run the waiting checks of one resource against what the run remembered."""
    for e in waiting.endpoints:
        target = lookup(index, e.reference)
        if target is None and endpoint_missing is not None:
            for rule_id, message in endpoint_missing(e.reference, e.study_uid, e.series_uid):
                report(rule_id, e.place, message)
        if target is None or target.endpoint is None:
            continue  # an endpoint nowhere in the run: where it points cannot be told
        for rule_id, message in endpoint_problems(target.endpoint, e.reference, e.study_uid, e.series_uid):
            report(rule_id, e.place, message)
    for t in waiting.targets:
        target = lookup(index, t.reference)
        if target is None:
            report(not_checked, t.place, f"{t.path}: {t.reference} is not in this run (not contained, not in the "
                                         f"Bundle, not another input), so its conformance to "
                                         f"{' or '.join(t.profiles)} was not checked")  # fmt: skip
            continue
        problems = target.conformance.get(t.profiles, [])
        if problems:
            shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
            report(t.rule, t.place, f"{t.path} refers to {t.reference}, which does not conform to "
                                    f"{' or '.join(t.profiles)}: {shown}")  # fmt: skip


def merge_remembered(index: dict[str, Remembered], pairs: Iterable[tuple[str, Remembered]]) -> None:
    for key, facts in pairs:
        index.setdefault(key, facts)
