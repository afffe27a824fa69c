"""Slicing: which slice each item of a repeating element belongs to, by its discriminators.

Discriminator types (http://hl7.org/fhir/R4/profiling.html#discriminator): value and pattern
(the item's value at the path equals / contains the slice's fixed or pattern value), exists (the
path is present or absent), type (the type of the value at the path, e.g. of a resolved
reference), profile (the value at the path conforms to a profile). Paths are simple element
paths, with $this and resolve().
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from validator.compile.profiles import Profile, Slice, Slicing

Resolver = Callable[[object], "dict | None"]
Conforms = Callable[[dict, str], bool]
ConformsDatatype = Callable[[object, Profile], bool]


def matches_pattern(value: object, pattern: object) -> bool:
    """FHIR pattern[x]: every property of the pattern is present with a matching value; each item
    of a pattern array matches some item of the value array; primitives are equal."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(k in value and matches_pattern(value[k], v) for k, v in pattern.items())
    if isinstance(pattern, list):
        items = value if isinstance(value, list) else [value]
        return all(any(matches_pattern(v, p) for v in items) for p in pattern)
    return _equal(value, pattern)


def matches_fixed(value: object, fixed: object) -> bool:
    """FHIR fixed[x]: exactly equal, no other properties."""
    if isinstance(fixed, dict):
        return (
            isinstance(value, dict)
            and value.keys() == fixed.keys()
            and all(matches_fixed(value[k], v) for k, v in fixed.items())
        )
    if isinstance(fixed, list):
        return (
            isinstance(value, list)
            and len(value) == len(fixed)
            and all(matches_fixed(a, b) for a, b in zip(value, fixed, strict=True))
        )
    return _equal(value, fixed)


def _equal(a: object, b: object) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, Decimal)) and isinstance(b, (int, float, Decimal)):
        return Decimal(str(a)) == Decimal(str(b))
    return a == b


def values_at(item: object, path: str, resolve: Resolver) -> list:
    nodes = [item]
    for part in path.split("."):
        if part == "$this":
            continue
        nxt: list = []
        for node in nodes:
            if part == "resolve()":
                target = resolve(node)
                if target is not None:
                    nxt.append(target)
            elif isinstance(node, dict) and node.get(part) is not None:
                value = node[part]
                nxt.extend(value if isinstance(value, list) else [value])
        nodes = nxt
    return nodes


def slice_matches(slicing: Slicing, sl: Slice, item: object, resolve: Resolver, conforms: Conforms,
                  datatype: ConformsDatatype | None = None, item_type: str | None = None) -> bool:  # fmt: skip
    for dtype, path in slicing.discriminators:
        found = values_at(item, path, resolve)
        target = sl.constraint.find(path)
        if dtype in ("value", "pattern"):
            want = target.match_value if target is not None else None
            if want is None and target is not None and target.binding is not None:
                # No value at the path, a required binding: membership of its value set decides.
                if not any(_in_value_set(target, v) for v in found):
                    return False
                continue
            exact = dtype == "value" and target is not None and target.fixed is not None
            test = matches_fixed if exact else matches_pattern
            if want is None or not any(test(v, want) for v in found):
                return False
        elif dtype == "exists":
            expect = target is not None and (target.min or 0) > 0
            if bool(found) != expect:
                return False
        elif dtype == "type":
            kinds = {v.get("resourceType") for v in found if isinstance(v, dict)}
            if "resolve()" not in path and item_type is not None:
                kinds.add(item_type)  # the type of the element itself ($this of a Reference, Identifier)
            if not kinds & set(sl.types):
                return False
        elif dtype == "profile":
            datatypes = sl.constraint.profile_refs or []
            if "resolve()" not in path and datatypes and datatype is not None:
                if not any(datatype(v, p) for v in found for p in datatypes):
                    return False
            elif not any(isinstance(v, dict) and any(conforms(v, p) for p in sl.profiles) for v in found):
                return False
    return True


def _in_value_set(target: object, value: object) -> bool:
    binding = target.binding  # type: ignore[attr-defined]
    vs = binding.value_set
    if vs is None:
        return False
    if isinstance(value, str):
        return vs.has_code(value)
    if isinstance(value, dict):
        if isinstance(value.get("coding"), list):
            return any(isinstance(c, dict) and vs.has_coding(c.get("system"), c.get("code")) for c in value["coding"])
        return vs.has_coding(value.get("system"), value.get("code"))
    return False


def classify(slicing: Slicing, items: list, resolve: Resolver, conforms: Conforms,
             datatype: ConformsDatatype | None = None, item_type: str | None = None) -> list[list[Slice]]:  # fmt: skip
    """For each item, the slices it matches (normally zero or one)."""
    return [[sl for sl in slicing.slices if slice_matches(slicing, sl, item, resolve, conforms, datatype, item_type)]
            for item in items]  # fmt: skip
