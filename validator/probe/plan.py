"""The searches of a probe run, built from values harvested from the server's own studies.

Starting from the anchor search (`patient=ID` or `identifier=...`), each parameter the server
declares gets searches with the variants its type calls for: tokens as `system|code` and `code`
(and a comma-separated OR), references as `ID` and `Type/ID`, `patient.identifier` chained, dates
with every prefix around the study's start. Each search carries its criteria, which the checks
match client-side, and the source study, which must be among the matches whenever it meets them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from validator.probe.matchers import parse_range, values_at
from validator.probe.params import Param


@dataclass(frozen=True)
class Criterion:
    name: str  # as sent: modality, status:not, patient.identifier
    value: str
    param: Param | None  # the table's parameter (None for a chain)


@dataclass
class Search:
    label: str  # what the search tests, for reports
    query: list[tuple[str, str]]  # sent as the query string (anchor included)
    criteria: list[Criterion]  # judged client-side against every match
    source: dict | None = None  # the study the values came from
    includes: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)


def _token_variants(value: object) -> list[tuple[str, str]]:
    """(variant label, search value) for one element value."""
    if isinstance(value, str):
        return [("code", value)]
    if not isinstance(value, dict):
        return []
    if "coding" in value:
        out: list[tuple[str, str]] = []
        for c in value.get("coding") or []:
            out.extend(_token_variants(c))
        return out[:2]
    code = value.get("code") if "code" in value else value.get("value")
    if not isinstance(code, str):
        return []
    system = value.get("system")
    if isinstance(system, str):
        return [("system|code", f"{system}|{code}"), ("code", code)]
    return [("|code (no system)", f"|{code}"), ("code", code)]


def _reference_variants(value: object) -> list[tuple[str, str]]:
    ref = value.get("reference") if isinstance(value, dict) else None
    if not isinstance(ref, str) or "/" not in ref or ref.startswith("#"):
        return []
    type_id = "/".join(ref.split("/_history/")[0].split("/")[-2:])
    return [("Type/ID", type_id), ("ID", type_id.split("/")[1])]


def _date_variants(value: object) -> list[tuple[str, str]]:
    if not isinstance(value, str) or parse_range(value) is None:
        return []
    out = [("eq, as stored", value)]
    r = parse_range(value)
    assert r is not None
    year = value[:4]
    out += [(f"{p}, year", f"{p}{y}") for p, y in (("eq", year), ("ne", str(int(year) + 1)), ("sa", str(int(year) - 1)),
                                                 ("eb", str(int(year) + 1)), ("gt", str(int(year) - 1)),
                                                 ("lt", str(int(year) + 1)))]  # fmt: skip
    if len(value) >= 10:
        day = value[:10]
        out += [("eq, day", day), ("ge, day", f"ge{day}"), ("le, day", f"le{day}")]
    if len(value) > 10:
        # A zoned instant: the same moment the day before and after, in UTC, brackets it exactly.
        before = (r.low - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        after = (r.high + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        out += [("gt, an hour before", f"gt{before}"), ("lt, an hour after", f"lt{after}"),
                ("ge, an hour after (excludes)", f"ge{after}")]  # fmt: skip
    return out


def variants(param: Param, study: dict) -> list[tuple[str, str]]:
    values = [v for path in param.paths for v in values_at(study, path)]
    if not values:
        return []
    first = values[0]
    if param.type == "token":
        # The first two values: a study's identifiers are its Study Instance UID and its
        # accession number (an identifier with a type), and both must find it.
        out: list[tuple[str, str]] = []
        for n, value in enumerate(values[:2]):
            for label, v in _token_variants(value):
                if v not in {x for _, x in out}:
                    out.append((label if n == 0 else f"{label}, 2nd value", v))
        return out
    if param.type == "reference":
        return _reference_variants(first)
    if param.type == "date":
        return _date_variants(first)
    if param.type in ("string", "uri") and isinstance(first, str):
        return [("exact", first)]
    return []


def study_with(param: Param, studies: list[dict]) -> dict | None:
    for s in studies:
        if any(values_at(s, p) for p in param.paths):
            return s
    return None


def other_code(param: Param, study: dict, studies: list[dict]) -> str | None:
    """A code of the same parameter from another study, for a comma-separated OR."""
    mine = {v for _, v in variants(param, study)}
    for s in studies:
        for label, v in variants(param, s):
            if label == "code" and v not in mine:
                return v
    return None
