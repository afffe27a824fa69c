"""Primitive datatypes: the JSON type each must have and the format of its value."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from decimal import Decimal

from validator.fhir.narrative import xhtml_problem


@dataclass(frozen=True, slots=True)
class PrimitiveType:
    name: str
    json: str  # string | boolean | integer | decimal
    regex: re.Pattern | None
    min_value: int | None
    max_value: int | None
    max_length: int | None
    check: str | None
    rule: str  # id of the format rule, e.g. r4:dateTime:format
    description: str


_JSON_NAMES = {
    "string": "a JSON string",
    "boolean": "a JSON boolean (true or false)",
    "integer": "a JSON number without fraction or exponent",
    "decimal": "a JSON number",
}


def json_kind_problem(ptype: PrimitiveType, value: object) -> str | None:
    """Why `value` has the wrong JSON type for `ptype`, or None when the JSON type is right."""
    kind = ptype.json
    if kind == "string":
        ok = isinstance(value, str)
    elif kind == "boolean":
        ok = isinstance(value, bool)
    elif kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        # NaN and Infinity are no JSON numbers (and no FHIR decimals): a type problem, reported
        # under the element's type rule, which every element has.
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, Decimal) and value.is_finite()
        )
    if ok:
        return None
    return f"{ptype.name} must be {_JSON_NAMES[kind]}, found {describe_json(value)}"


def describe_json(value: object) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {shown!r}"
    if isinstance(value, (int, Decimal)):
        return f"number {value}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "null" if value is None else type(value).__name__


def _valid_date(year: int, month: int | None, day: int | None) -> bool:
    if month is None or day is None:
        return True
    return 1 <= day <= calendar.monthrange(year, month)[1]


_ZONE = re.compile(r"(Z|[+-]\d\d:\d\d)$")
_DATE_PART = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
_BASE64_CHARS = re.compile(r"[A-Za-z0-9+/=]*")


def format_problem(ptype: PrimitiveType, value: object) -> str | None:
    """Why the value breaks the datatype's format, or None. The JSON type is already right."""
    if isinstance(value, str):
        if ptype.max_length is not None and len(value) > ptype.max_length:
            return f"{ptype.name} is longer than {ptype.max_length} characters ({len(value)})"
        if ptype.check == "xhtml":
            problem = xhtml_problem(value)
            return f"{ptype.name}: {problem}" if problem else None
        if ptype.check == "base64":
            # Same language as the spec regex (\s*([0-9a-zA-Z\+/=]){4}\s*)+, checked in linear time:
            # the nested quantifiers of that regex backtrack badly on long invalid input.
            compact = "".join(value.split())
            if not compact or len(compact) % 4 or not _BASE64_CHARS.fullmatch(compact):
                return f"{shorten(value)} is not valid base64Binary"
            return None
        if ptype.regex is not None and not ptype.regex.fullmatch(value):
            return f"{shorten(value)} is not a valid {ptype.name}{_hint(ptype.name, value)}"
        if ptype.check in ("dateTime", "instant") and "T" in value and not _ZONE.search(value):
            # R4 and R5: if hours and minutes are specified, a time zone SHALL be populated (the R5
            # regex alone does not say so).
            zone = "a time zone (Z or +hh:mm) is required when a time is given"
            return f"{shorten(value)} is not a valid {ptype.name}: {zone}"
        if ptype.check in ("date", "dateTime", "instant"):
            m = _DATE_PART.match(value)
            if m and not _valid_date(int(m[1]), m[2] and int(m[2]), m[3] and int(m[3])):
                return f"{shorten(value)} is not a valid {ptype.name}: no such day in the calendar"
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if ptype.min_value is not None and value < ptype.min_value:
            return f"{value} is below the minimum {ptype.min_value} of {ptype.name}"
        if ptype.max_value is not None and value > ptype.max_value:
            return f"{value} is above the maximum {ptype.max_value} of {ptype.name}"
    if isinstance(value, Decimal) and not value.is_finite():
        # The engine reports this as a type problem first (json_kind_problem); the fast path,
        # which tests only the Python type, learns here that the value is not clean.
        return f"{value} is not a finite decimal"
    return None


_TIME_WITHOUT_ZONE = re.compile(r".*T\d\d:\d\d(:\d\d(\.\d+)?)?")


def _hint(name: str, value: str) -> str:
    """A pointer to the most common mistake for the type, when the value shows it."""
    if name in ("dateTime", "instant") and _TIME_WITHOUT_ZONE.fullmatch(value):
        return ": a time zone (Z or +hh:mm) is required when a time is given"
    if name == "instant":
        return ": an instant needs a full date, a time with seconds, and a time zone"
    if name in ("id", "code", "uri", "url", "canonical") and value != value.strip():
        return ": leading or trailing whitespace is not allowed"
    if name == "id" and len(value) > 64:
        return f": at most 64 characters, found {len(value)}"
    if name == "oid" and not value.startswith("urn:oid:"):
        return ": an oid is written urn:oid: followed by the dotted number"
    return ""


def shorten(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[: limit - 3] + "...")
