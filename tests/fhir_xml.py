"""Rendering FHIR JSON as FHIR XML (http://hl7.org/fhir/R4/xml.html), for tests of the XML input."""

from __future__ import annotations

from decimal import Decimal
from xml.sax.saxutils import quoteattr


def _value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v) if isinstance(v, (int, Decimal)) else v  # type: ignore[return-value]


def _element(name: str, value: object, companion: object, out: list[str], indent: str) -> None:
    if isinstance(value, dict):
        if "resourceType" in value:
            out.append(f"{indent}<{name}>")
            _resource(value, out, indent + "  ")
            out.append(f"{indent}</{name}>")
            return
        attrs = "".join(f" {k}={quoteattr(value[k])}" for k in ("id", "url") if isinstance(value.get(k), str))
        out.append(f"{indent}<{name}{attrs}>")
        _children(value, out, indent + "  ", skip={"id", "url"})
        out.append(f"{indent}</{name}>")
        return
    if name == "div" and isinstance(value, str):
        out.append(indent + value)
        return
    comp = companion if isinstance(companion, dict) else {}
    attrs = (f" id={quoteattr(comp['id'])}" if "id" in comp else "") + (
        f" value={quoteattr(_value(value))}" if value is not None else ""
    )
    exts = comp.get("extension") or []
    if not exts:
        out.append(f"{indent}<{name}{attrs}/>")
        return
    out.append(f"{indent}<{name}{attrs}>")
    for e in exts:
        _element("extension", e, None, out, indent + "  ")
    out.append(f"{indent}</{name}>")


def _children(obj: dict, out: list[str], indent: str, skip: set[str]) -> None:
    for key, value in obj.items():
        if key in skip or (key.startswith("_") and key[1:] in obj):
            continue
        name = key[1:] if key.startswith("_") else key
        companion = obj.get("_" + name)
        if key.startswith("_"):
            value = None if not isinstance(companion, list) else [None] * len(companion)
        if isinstance(value, list):
            comps = companion if isinstance(companion, list) else [None] * len(value)
            for v, c in zip(value, comps, strict=False):
                _element(name, v, c, out, indent)
        else:
            _element(name, value, companion, out, indent)


def _resource(res: dict, out: list[str], indent: str) -> None:
    # Every resource element, contained ones too, sits in the FHIR namespace.
    out.append(f'{indent}<{res["resourceType"]} xmlns="http://hl7.org/fhir">')
    _children(res, out, indent + "  ", skip={"resourceType"})
    out.append(f"{indent}</{res['resourceType']}>")


def to_xml(resource: dict) -> str:
    out = ['<?xml version="1.0" encoding="UTF-8"?>']
    _resource(resource, out, "")
    return "\n".join(out) + "\n"
