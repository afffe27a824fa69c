"""Client-side matching: does a returned resource meet a search criterion, by the spec's rules?

Each function answers True (it matches), False (it does not) or None (the spec leaves it to the
server: `ap` dates, a date-only value compared with a time near midnight when the server's time
zone is unknown). The harness reports False as a defect and None as "not judged", never as a pass.

Tokens (search.html#token): `code`, `system|code`, `|code` (no system), `system|`. Codes are
compared case-insensitively: the spec lets servers match that way when the code system's case
rules are unknown, so a stricter client would accuse correct servers.
References (#reference): `ID`, `Type/ID` and absolute URLs ending in `Type/ID` are the same target.
Dates (#date): a value is a range by its precision; eq means the search range contains the target
range, ne its negation, gt/lt/ge/le/sa/eb compare ends.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

# A value without a time zone may be read in any zone from UTC-12 to UTC+14.
_ZONE_SPREAD = timedelta(hours=14)
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
_DATE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?"
    r"(?P<z>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def values_at(resource: dict, path: str) -> list:
    """Every value at a dotted path (arrays flattened at each step)."""
    current: list = [resource]
    for step in path.split("."):
        following: list = []
        for item in current:
            if isinstance(item, dict) and step in item:
                value = item[step]
                following.extend(value if isinstance(value, list) else [value])
        current = following
    return current


def references(resource: dict, path: str) -> list[str]:
    """The literal references at a path (anything else there, as a hostile server may send, skipped)."""
    return [v["reference"] for v in values_at(resource, path)
            if isinstance(v, dict) and isinstance(v.get("reference"), str)]  # fmt: skip


# -- tokens ---------------------------------------------------------------------------------------
def _pairs(value: object) -> Iterator[tuple[str | None, str]]:
    """(system, code) pairs of a Coding, CodeableConcept, Identifier or plain code."""
    if isinstance(value, str):
        yield None, value
    elif isinstance(value, dict):
        if "coding" in value:
            for c in value.get("coding") or []:
                yield from _pairs(c)
        if "code" in value and isinstance(value["code"], str):
            yield value.get("system"), value["code"]
        if "value" in value and isinstance(value["value"], str):  # Identifier
            yield value.get("system"), value["value"]


def token_matches(values: list, criterion: str) -> bool:
    system, bar, code = criterion.rpartition("|") if "|" in criterion else (None, "", criterion)
    for s, c in (pair for v in values for pair in _pairs(v)):
        if bar and system == "" and s:  # |code: only values without a system
            continue
        if bar and system and s != system:
            continue
        if code == "" or c.lower() == code.lower():
            return True
    return False


# -- references -----------------------------------------------------------------------------------
def reference_matches(values: list, criterion: str, targets: tuple[str, ...]) -> bool:
    wanted = criterion.rstrip("/").split("/")
    want_type, want_id = (wanted[-2], wanted[-1]) if len(wanted) >= 2 else (None, wanted[-1])
    for v in values:
        ref = v.get("reference") if isinstance(v, dict) else None
        if not isinstance(ref, str):
            continue
        parts = ref.split("/_history/")[0].rstrip("/").split("/")
        ref_type, ref_id = (parts[-2], parts[-1]) if len(parts) >= 2 else (None, parts[-1])
        if ref_id != want_id:
            continue
        if want_type is None or ref_type is None or ref_type == want_type:
            if want_type is None and targets and ref_type is not None and ref_type not in targets:
                continue
            return True
    return False


# -- dates ----------------------------------------------------------------------------------------
class Range:
    """[low, high) in UTC, and whether the text had no zone (so its place on the clock is unknown)."""

    def __init__(self, low: datetime, high: datetime, zoned: bool) -> None:
        self.low, self.high, self.zoned = low, high, zoned


def parse_range(text: str) -> Range | None:
    m = _DATE.match(text.strip())
    if not m:
        return None
    y, mo, d = int(m["y"]), int(m["m"] or 1), int(m["d"] or 1)
    zone = m["z"]
    offset = timedelta(0)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    if m["H"] is None:
        low = datetime(y, mo, d, tzinfo=UTC)
        if m["m"] is None:
            high = datetime(y + 1, 1, 1, tzinfo=UTC)
        elif m["d"] is None:
            high = datetime(y + (mo == 12), mo % 12 + 1, 1, tzinfo=UTC)
        else:
            high = low + timedelta(days=1)
        return Range(low, high, zoned=False)
    frac = m["f"] or ""
    low = datetime(y, mo, d, int(m["H"]), int(m["M"]), int(m["S"] or 0), int((frac + "000000")[:6]), tzinfo=UTC)
    low -= offset
    step = (timedelta(minutes=1) if m["S"] is None else
            timedelta(seconds=1) if not frac else timedelta(microseconds=max(1, 10 ** (6 - min(len(frac), 6)))))
    return Range(low, low + step, zoned=zone is not None)


def split_prefix(criterion: str) -> tuple[str, str]:
    if criterion[:2] in PREFIXES and not criterion[:2].isdigit():
        return criterion[:2], criterion[2:]
    return "eq", criterion


def _compare(prefix: str, p: Range, t: Range) -> bool | None:
    contains = p.low <= t.low and t.high <= p.high
    return {
        "eq": contains,
        "ne": not contains,
        "gt": t.high > p.high,
        "lt": t.low < p.low,
        "ge": t.high > p.high or contains,
        "le": t.low < p.low or contains,
        "sa": t.low >= p.high,
        "eb": t.high <= p.low,
    }.get(prefix)


def parse_zone(text: str) -> timedelta:
    """`Z`, `+01:00` or `-05:00` as an offset from UTC; ValueError otherwise."""
    if text in ("Z", "UTC", "+00:00", "-00:00"):
        return timedelta(0)
    m = re.fullmatch(r"([+-])(\d{2}):(\d{2})", text)
    if not m:
        raise ValueError(f"not a time zone offset: {text!r} (expected Z or +HH:MM / -HH:MM)")
    sign = 1 if m[1] == "+" else -1
    return sign * timedelta(hours=int(m[2]), minutes=int(m[3]))


def _shift(r: Range, by: timedelta) -> Range:
    return Range(r.low + by, r.high + by, True)


def date_matches(values: list, criterion: str, server_zone: timedelta | None = None) -> bool | None:
    """`server_zone`: the zone the server reads values without one in, when the user knows it;
    None: unknown, so a verdict that depends on it is None."""
    prefix, text = split_prefix(criterion)
    p = parse_range(text)
    if p is None or prefix == "ap":
        return None  # ap's tolerance is the server's choice (search.html#prefix)
    if server_zone is not None and not p.zoned:
        p = _shift(p, -server_zone)
    undecided = False
    for v in values:
        t = parse_range(v) if isinstance(v, str) else None
        if t is None:
            continue
        if server_zone is not None and not t.zoned:
            t = _shift(t, -server_zone)
        if p.zoned == t.zoned:
            verdict = _compare(prefix, p, t)
        else:
            # One side has no zone: judge it in the extreme zones; if they disagree the answer
            # depends on the server's zone, which the spec leaves to it.
            def read(r: Range, by: timedelta) -> Range:
                return r if r.zoned else _shift(r, by)

            seen = {_compare(prefix, read(p, d), read(t, d)) for d in (_ZONE_SPREAD, timedelta(0), -_ZONE_SPREAD)}
            verdict = seen.pop() if len(seen) == 1 else None
        if verdict:
            return True
        if verdict is None:
            undecided = True
    return None if undecided else False


def string_matches(values: list, criterion: str) -> bool:
    wanted = criterion.casefold()
    return any(isinstance(v, str) and v.casefold().startswith(wanted) for v in values)


def uri_matches(values: list, criterion: str) -> bool:
    return any(isinstance(v, str) and v == criterion for v in values)
