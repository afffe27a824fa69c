"""Native implementations of FHIR invariants, used instead of evaluating their FHIRPath.

An implementation applies only to the exact (key, expression) pair it was written for: if a pack
changes the expression, the engine falls back to FHIRPath. Each exists for one of two reasons:
- fhirpathpy cannot evaluate the spec's expression (dom-3: `as()` on a collection; rng-2: Quantity
  comparison; ele-1: children() on datatype nodes; txt-1/txt-2: htmlChecks() detail), or
- the invariant runs on every element (ele-1, ext-1, ref-1) and must cost next to nothing.
tests/test_invariant_equivalence.py checks each against fhirpathpy wherever fhirpathpy can
evaluate the expression, on the fixture corpus.

A check returns None when the invariant holds, or a short detail string when it is violated, and
raises NotEvaluated when the payload leaves the invariant undecidable, or Unsupported for a payload
shape it leaves to the FHIRPath (a primitive's extensions, a value of the wrong JSON type).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from validator.fhir.jsontext import items_of
from validator.fhir.narrative import has_content, html_problems
from validator.fhirpath.subset import Unsupported


class NotEvaluated(Exception):
    """The invariant cannot be decided for this payload (the reason is the message)."""


@dataclass(frozen=True, slots=True)
class InvariantContext:
    resource: dict  # %resource: the resource the element is in (a contained one, if so)
    root: dict  # %rootResource: the outermost resource


NativeCheck = Callable[[object, InvariantContext], "str | None"]


def ele_1(node: object, _ctx: InvariantContext) -> str | None:
    # hasValue() or (children().count() > id.count()): on an object, some child other than id.
    if isinstance(node, dict) and not any(k != "id" for k in node):
        return "the element has neither a value nor children (only an id)"
    return None


def _ext_1(node: object, _ctx: InvariantContext) -> str | None:
    # extension.exists() != value.exists()
    if not isinstance(node, dict):
        return None
    has_ext = bool(node.get("extension"))
    has_value = any(k.startswith("value") and not k.startswith("_") for k in node) or any(
        k.startswith("_value") for k in node
    )
    if has_ext == has_value:
        return (
            "the extension has both extensions and a value"
            if has_ext
            else "the extension has neither extensions nor a value"
        )
    return None


def _strings(node: object) -> Iterator[str]:
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)
        elif isinstance(cur, str):
            yield cur


def _dom_3(node: object, _ctx: InvariantContext) -> str | None:
    # Every contained resource is referenced from elsewhere in the resource ('#id' in a reference,
    # canonical, uri or url), or itself refers to its container ('#'). Values are matched by text:
    # a plain string element equal to '#id' also counts, which the typed FHIRPath would not.
    if not isinstance(node, dict):
        return None
    contained = [c for c in items_of(node.get("contained")) if isinstance(c, dict)]
    if not contained:
        return None
    outside = {k: v for k, v in node.items() if k != "contained"}
    refs = {s for s in _strings(outside) if s.startswith("#")}
    for c in contained:
        refs.update(s for s in _strings(c) if s.startswith("#") and s != "#")
    unmatched = []
    for c in contained:
        cid = c.get("id")
        if isinstance(cid, str) and "#" + cid in refs:
            continue
        if any(s == "#" for s in _strings(c)):
            continue
        unmatched.append(f"{c.get('resourceType', '?')}/{cid if cid is not None else '(no id)'}")
    if unmatched:
        return "contained resource not referenced: " + ", ".join(unmatched)
    return None


def _ref_1(node: object, ctx: InvariantContext) -> str | None:
    # reference.startsWith('#').not() or (reference.substring(1) in %rootResource.contained.id)
    if not isinstance(node, dict):
        return None
    ref = node.get("reference")
    if not isinstance(ref, str) or not ref.startswith("#"):
        return None
    ids = {
        c.get("id") for c in items_of(ctx.root.get("contained")) if isinstance(c, dict) and isinstance(c.get("id"), str)
    }
    if ref[1:] in ids:
        return None
    return f"{ref} names no contained resource"


def _ref_1_r5(node: object, ctx: InvariantContext) -> str | None:
    # reference.exists() implies (reference.startsWith('#').not() or (reference.substring(1) in
    #   %rootResource.contained.id) or (reference='#' and %rootResource!=%resource)): as R4, and a
    # contained resource may refer to its container with '#'.
    if isinstance(node, dict) and node.get("reference") == "#" and ctx.root is not ctx.resource:
        return None
    return _ref_1(node, ctx)


def _quantity_value(q: object) -> tuple[Decimal, tuple] | None:
    if not isinstance(q, dict) or not isinstance(q.get("value"), (int, Decimal)) or isinstance(q.get("value"), bool):
        return None
    unit = (q.get("system"), q.get("code")) if q.get("code") is not None else (None, q.get("unit"))
    return Decimal(q["value"]), unit


def _rng_2(node: object, _ctx: InvariantContext) -> str | None:
    # low.empty() or high.empty() or (low <= high)
    if not isinstance(node, dict) or "low" not in node or "high" not in node:
        return None
    low, high = _quantity_value(node["low"]), _quantity_value(node["high"])
    if low is None or high is None:
        return None
    if low[1] != high[1]:
        raise NotEvaluated(
            "low and high use different units; comparing them needs unit conversion (UCUM), which is not bundled"
        )
    if low[0] <= high[0]:
        return None
    return f"low ({low[0]}) is greater than high ({high[0]})"


def _rng_2_r5(node: object, _ctx: InvariantContext) -> str | None:
    # low.value.empty() or high.value.empty() or low.lowBoundary().comparable(high.highBoundary()).not()
    #   or (low.lowBoundary() <= high.highBoundary()): quantities in different units are not comparable,
    # and then the invariant holds (R5 wording).
    if not isinstance(node, dict):
        return None
    low, high = _quantity_value(node.get("low")), _quantity_value(node.get("high"))
    if low is None or high is None or low[1] != high[1] or low[0] <= high[0]:
        return None
    return f"low ({low[0]}) is greater than high ({high[0]})"


_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?)?)?")


def _boundaries(value: str) -> tuple[datetime, datetime] | None:
    """lowBoundary() and highBoundary() of a date or dateTime (as naive wall-clock times)."""
    m = _DATE.match(value)
    if not m:
        return None
    y, mo, d, h, mi, s, frac = m.groups()
    try:
        low = datetime(int(y), int(mo or 1), int(d or 1), int(h or 0), int(mi or 0), int(s or 0))
    except ValueError:
        return None
    if mo is None:
        high = datetime(int(y), 12, 31, 23, 59, 59, 999999)
    elif d is None:
        high = datetime(int(y), int(mo), calendar.monthrange(int(y), int(mo))[1], 23, 59, 59, 999999)
    elif h is None:
        high = low.replace(hour=23, minute=59, second=59, microsecond=999999)
    elif s is None:
        high = low.replace(second=59, microsecond=999999)
    else:
        high = low.replace(microsecond=999999 if frac is None else int((frac + "000000")[:6]))
        low = low.replace(microsecond=0 if frac is None else int((frac + "000000")[:6]))
    return low, high


def _per_1_r5(node: object, _ctx: InvariantContext) -> str | None:
    # start.hasValue().not() or end.hasValue().not() or (start.lowBoundary() <= end.highBoundary())
    if not isinstance(node, dict) or not isinstance(node.get("start"), str) or not isinstance(node.get("end"), str):
        return None
    start, end = _boundaries(node["start"]), _boundaries(node["end"])
    if start is None or end is None:
        return None  # an unreadable date is the format rule's finding
    if start[0] > end[1]:
        return f"start {node['start']} is after end {node['end']}"
    return None


def _ratrng_2(node: object, _ctx: InvariantContext) -> str | None:
    # lowNumerator.hasValue().not() or highNumerator.hasValue().not() or
    #   (lowNumerator.lowBoundary() <= highNumerator.highBoundary()); fhirpathpy lacks lowBoundary().
    if not isinstance(node, dict):
        return None
    low, high = _quantity_value(node.get("lowNumerator")), _quantity_value(node.get("highNumerator"))
    if low is None or high is None:
        return None
    if low[1] != high[1]:
        raise NotEvaluated("the numerators use different units; comparing them needs unit conversion (UCUM)")
    if low[0] <= high[0]:
        return None
    return f"lowNumerator ({low[0]}) is greater than highNumerator ({high[0]})"


def _txt_1(node: object, _ctx: InvariantContext) -> str | None:
    if not isinstance(node, str):
        return None
    problems = html_problems(node)
    return "; ".join(problems[:5]) if problems else None


def _txt_2(node: object, _ctx: InvariantContext) -> str | None:
    if isinstance(node, str) and not has_content(node):
        return "the narrative has no text content"
    return None


def _ist_5(node: object, _ctx: InvariantContext) -> str | None:
    # numberOfInstances.exists() and series.numberOfInstances.exists() implies numberOfInstances =
    #   series.numberOfInstances.aggregate($total + $this.toInteger(), 0): the study's count is the sum
    # of the series' counts. Integers only; any other shape is left to the FHIRPath.
    if not isinstance(node, dict) or "_numberOfInstances" in node:
        raise Unsupported("not a plain study")
    counts = []
    for s in items_of(node.get("series")):
        if not isinstance(s, dict) or "_numberOfInstances" in s:
            raise Unsupported("not a plain series")
        count = s.get("numberOfInstances")
        if count is not None:
            if type(count) is not int:
                raise Unsupported("a count that is not an integer")
            counts.append(count)
    total = node.get("numberOfInstances")
    if total is None or not counts:
        return None
    if type(total) is not int:
        raise Unsupported("a count that is not an integer")
    return None if total == sum(counts) else f"numberOfInstances is {total}, the series add up to {sum(counts)}"


def _coded(values: list) -> tuple[set[str], set[str]]:
    """system|code of every coding, and every text, of CodeableConcepts (as ist-7 compares them)."""
    codes, texts = set(), set()
    for cc in values:
        if not isinstance(cc, dict):
            continue
        for c in items_of(cc.get("coding")):
            if isinstance(c, dict):
                codes.add(f"{c.get('system') or ''}|{c.get('code') or ''}")
        if isinstance(cc.get("text"), str):
            texts.add(cc["text"])
    return codes, texts


def _ist_7(node: object, _ctx: InvariantContext) -> str | None:
    # modality.exists() implies the study's modality codings and texts equal the distinct ones of
    # series.modality (both ways). fhirpathpy evaluates exclude()'s argument with the $this left
    # by the preceding select(), so it cannot evaluate the spec's expression.
    if not isinstance(node, dict) or not node.get("modality"):
        return None
    study_codes, study_texts = _coded(items_of(node["modality"]))
    series = [s.get("modality") for s in items_of(node.get("series")) if isinstance(s, dict)]
    series_codes, series_texts = _coded([m for m in series if m is not None])
    problems = []
    if study_codes - series_codes:
        problems.append(f"study modality {', '.join(sorted(study_codes - series_codes))} is in no series")
    if series_codes - study_codes:
        problems.append(f"series modality {', '.join(sorted(series_codes - study_codes))} is missing from the study")
    if study_texts ^ series_texts:
        problems.append("modality texts differ between the study and its series")
    return "; ".join(problems) or None


_NATIVE: dict[tuple[str, str], NativeCheck] = {
    ("ele-1", "hasValue() or (children().count() > id.count())"): ele_1,
    ("ext-1", "extension.exists() != value.exists()"): _ext_1,
    (
        "ref-1",
        "reference.startsWith('#').not() or "
        "(reference.substring(1).trace('url') in %rootResource.contained.id.trace('ids'))",
    ): _ref_1,
    ("rng-2", "low.empty() or high.empty() or (low <= high)"): _rng_2,
    (
        "rng-2",
        "low.value.empty() or high.value.empty() or low.lowBoundary().comparable(high.highBoundary()).not() or "
        "(low.lowBoundary() <= high.highBoundary())",
    ): _rng_2_r5,
    (
        "per-1",
        "start.hasValue().not() or end.hasValue().not() or (start.lowBoundary() <= end.highBoundary())",
    ): _per_1_r5,
    (
        "ratrng-2",
        "lowNumerator.hasValue().not() or highNumerator.hasValue().not()  or "
        "(lowNumerator.lowBoundary() <= highNumerator.highBoundary())",
    ): _ratrng_2,
    ("txt-1", "htmlChecks()"): _txt_1,
    ("txt-2", "htmlChecks()"): _txt_2,
    (
        "dom-3",
        "contained.where((('#'+id in (%resource.descendants().reference | %resource.descendants().as(canonical) | "
        "%resource.descendants().as(uri) | %resource.descendants().as(url))) or "
        "descendants().where(reference = '#').exists() or descendants().where(as(canonical) = '#').exists() or "
        "descendants().where(as(canonical) = '#').exists()).not()).trace('unmatched', id).empty()",
    ): _dom_3,
    (
        "dom-3",
        "contained.where((('#'+id in (%resource.descendants().reference | %resource.descendants().ofType(canonical) | "
        "%resource.descendants().ofType(uri) | %resource.descendants().ofType(url))) or "
        "descendants().where(reference = '#').exists() or descendants().where(ofType(canonical) = '#').exists() or "
        "descendants().where(ofType(canonical) = '#').exists()).not()).trace('unmatched', id).empty()",
    ): _dom_3,
    (
        "ref-1",
        "reference.exists()  implies (reference.startsWith('#').not() or (reference.substring(1).trace('url') in "
        "%rootResource.contained.id.trace('ids')) or (reference='#' and %rootResource!=%resource))",
    ): _ref_1_r5,
    (
        "ist-5",
        "numberOfInstances.exists() and series.numberOfInstances.exists() implies numberOfInstances = "
        "series.numberOfInstances.aggregate($total + $this.toInteger(), 0)",
    ): _ist_5,
    (
        "ist-7",
        "modality.exists() implies modality.coding.select(system&'|'&code).trace('r').exclude(series.modality.coding"
        ".select(system&'|'&code).trace('c')).empty() and modality.text.exclude(series.modality.text).empty() and "
        "series.modality.coding.select(system&'|'&code).trace('r').exclude(modality.coding.select(system&'|'&code)"
        ".trace('c')).empty() and series.modality.text.exclude(modality.text).empty()",
    ): _ist_7,
}


def lookup(key: str, expression: str) -> NativeCheck | None:
    return _NATIVE.get((key, expression))


def native_pairs() -> list[tuple[str, str]]:
    return list(_NATIVE)
