"""Native implementations of FHIR invariants, used instead of evaluating their FHIRPath.

An implementation applies only to the exact (key, expression) pair it was written for: if a pack
changes the expression, the engine falls back to FHIRPath. Each exists for one of two reasons:
- fhirpathpy cannot evaluate the spec's expression (dom-3: `as()` on a collection; rng-2: Quantity
  comparison; ele-1: children() on datatype nodes; txt-1/txt-2: htmlChecks() detail), or
- the invariant runs on every element (ele-1, ext-1, ref-1) and must cost next to nothing.
tests/test_invariant_equivalence.py checks each against fhirpathpy wherever fhirpathpy can
evaluate the expression, on the fixture corpus.

A check returns None when the invariant holds, or a short detail string when it is violated, and
raises NotEvaluated when the payload leaves the invariant undecidable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from .narrative import has_content, html_problems


class NotEvaluated(Exception):
    """The invariant cannot be decided for this payload (the reason is the message)."""


@dataclass(frozen=True, slots=True)
class InvariantContext:
    resource: dict  # %resource: the resource the element is in (a contained one, if so)
    root: dict  # %rootResource: the outermost resource


NativeCheck = Callable[[object, InvariantContext], "str | None"]


def _ele_1(node: object, _ctx: InvariantContext) -> str | None:
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
    contained = [c for c in node.get("contained") or [] if isinstance(c, dict)]
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
    ids = {c.get("id") for c in ctx.root.get("contained") or [] if isinstance(c, dict)}
    if ref[1:] in ids:
        return None
    return f"{ref} names no contained resource"


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


def _txt_1(node: object, _ctx: InvariantContext) -> str | None:
    if not isinstance(node, str):
        return None
    problems = html_problems(node)
    return "; ".join(problems[:5]) if problems else None


def _txt_2(node: object, _ctx: InvariantContext) -> str | None:
    if isinstance(node, str) and not has_content(node):
        return "the narrative has no text content"
    return None


_NATIVE: dict[tuple[str, str], NativeCheck] = {
    ("ele-1", "hasValue() or (children().count() > id.count())"): _ele_1,
    ("ext-1", "extension.exists() != value.exists()"): _ext_1,
    (
        "ref-1",
        "reference.startsWith('#').not() or "
        "(reference.substring(1).trace('url') in %rootResource.contained.id.trace('ids'))",
    ): _ref_1,
    ("rng-2", "low.empty() or high.empty() or (low <= high)"): _rng_2,
    ("txt-1", "htmlChecks()"): _txt_1,
    ("txt-2", "htmlChecks()"): _txt_2,
    (
        "dom-3",
        "contained.where((('#'+id in (%resource.descendants().reference | %resource.descendants().as(canonical) | "
        "%resource.descendants().as(uri) | %resource.descendants().as(url))) or "
        "descendants().where(reference = '#').exists() or descendants().where(as(canonical) = '#').exists() or "
        "descendants().where(as(canonical) = '#').exists()).not()).trace('unmatched', id).empty()",
    ): _dom_3,
}


def lookup(key: str, expression: str) -> NativeCheck | None:
    return _NATIVE.get((key, expression))


def native_pairs() -> list[tuple[str, str]]:
    return list(_NATIVE)
