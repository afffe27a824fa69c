"""A native yes/no pass of the base rules: the plan written as a JSON Schema, run by jsonschema-rs.

Most real resources break no base rule; what they get is information notes that a binding's value
set is not bundled (an accession identifier's `type`, a `procedureCode`), given wherever such an
element is present. For them the generated Python checks (base_rules.py) cost far more than the
answer: the gate answers "nothing but those notes" in native code, and the notes are then found
by following the few paths where they can be (`NoteFinder`), in the order the base rules give them.

The gate is a pre-check, never a judge: it may refuse a resource the base rules would pass (the
resource then goes through them, as before), but it must never pass one they would report on.
So it is stricter than the plan wherever the plan is hard to write as a schema:
- contained resources, `_x` companions and repeated keys are refused (the caller gives the gate
  only trees parsed without repeated keys);
- an invariant is written as a schema only where the schema is exact (dom-6, ext-1, ref-1, ...);
  a structure with any other invariant is refused where it occurs;
- a primitive's regex is translated to the regex dialect of jsonschema-rs with Python's own
  classes spelled out (Python's `\\s` is wider than Rust's); dates are also held to a calendar
  regex that refuses February 29 and the 31st of short months (the base rules decide those);
- integers must be Python ints (JSON Schema's `integer` takes 1.0): a small custom keyword, in
  the schema used for trees that hold a Decimal; a tree without one (the common case, proved by
  orjson, which refuses to write a Decimal) holds only ints, where `integer` is exact, and uses a
  copy of the schema without the keyword (a call back into Python per number otherwise);
- a reference with allowed targets must be written Type/id (or an absolute URL ending so) with
  an allowed Type; anything the base rules resolve (#id, urn:uuid:) is refused;
- an element whose binding is not bundled is allowed only where its path is known to the note
  finder (not inside extension values, not below a recursion);
- the narrative's XHTML is not written as a schema: the caller checks `text` with the base rules'
  own code (`residual`), and falls back to the full check when that finds anything.
Differential tests (tests/test_native_gate.py) run both on every fixture, example and thousands
of mutated payloads and fail on any resource the gate passes with different findings.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
import unicodedata
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, lru_cache

from validator.compile.plan import Binding, ElementDef, Plan, Rule, Structure
from validator.compile.terminology import ValueSet
from validator.evaluate.bindings import binding_problem, report_binding
from validator.evaluate.walk import RawIssue
from validator.fhir.primitives import PrimitiveType

# jsonschema-rs has binary wheels for the common platforms; without it the base rules decide
# alone. Imported when the first gate is built, not at start-up.
_AVAILABLE = importlib.util.find_spec("jsonschema_rs") is not None
# orjson serialises every JSON value but a Decimal (or an int past 64 bits) in one C walk: the
# proof that a tree holds only ints as numbers. Without it every tree takes the strict schema.
_ORJSON = importlib.util.find_spec("orjson") is not None

# IMAGING_VALIDATOR_NATIVE=0 turns the gate off: every resource goes through the base rules (the
# differential tests compare both ways; a user can rule the gate out when in doubt).
_ENABLED = os.environ.get("IMAGING_VALIDATOR_NATIVE", "1") != "0"


def enabled() -> bool:
    return _ENABLED and _AVAILABLE


# Extensions nest (a complex extension holds extensions): this many levels are passed natively.
EXTENSION_LEVELS = 3
# Invariants written as schemas, exactly: what the schema of an object of their structure gets.
# dom-2 to dom-5 are about contained resources, which the gate refuses: true here.
_INVARIANTS: dict[str, dict] = {
    "dom-2": {},
    "dom-3": {},
    "dom-4": {},
    "dom-5": {},
    "dom-6": {"required": ["text"], "properties": {"text": {"required": ["div"]}}},
    "ref-1": {"properties": {"reference": {"not": {"pattern": "^#"}}}},
    "per-1": {"not": {"required": ["start", "end"]}},
    "qty-3": {"dependentRequired": {"code": ["system"]}},
    "att-1": {"dependentRequired": {"data": ["contentType"]}},
    "cpt-2": {"dependentRequired": {"value": ["system"]}},
    "exp-1": {"anyOf": [{"required": ["expression"]}, {"required": ["reference"]}]},
    "ext-1": {},  # written by _extension: exactly one of a value or extensions
}

# Python's \s for str patterns is str.isspace(); Rust's is Unicode White_Space, which lacks
# \x1c-\x1f. Character classes are therefore written out as the code points Python's class
# matches (surrogates left out: a string holding one never reaches the native check).
_MAX = sys.maxunicode


@cache
def _python_spaces() -> list[int]:
    """The code points Python's \\s matches, read off every code point at C speed (a loop over
    1.1 million characters in Python would cost a fifth of a second at each start)."""
    every = array("I", range(_MAX + 1)).tobytes().decode("utf-32-le" if sys.byteorder == "little" else "utf-32-be",
                                                        "surrogatepass")  # fmt: skip
    return [ord(c) for c in re.findall(r"\s", every)]


_SIMPLE_ESCAPES = {"r": "\r", "n": "\n", "t": "\t", "f": "\f", "v": "\v"}
_PLAIN_ESCAPES = set(".-+*?()[]{}|^$\\/=:#&~ ")


def _ranges(points: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for c in sorted(set(points)):
        if out and out[-1][1] == c - 1:
            out[-1] = (out[-1][0], c)
        else:
            out.append((c, c))
    return out


def _complement(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, start = [], 0
    for lo, hi in sorted(ranges):
        if lo > start:
            out.append((start, lo - 1))
        start = max(start, hi + 1)
    if start <= _MAX:
        out.append((start, _MAX))
    return out


def _items(ranges: list[tuple[int, int]]) -> list[str]:
    parts = []
    for lo, hi in ranges:
        for a, b in ((lo, min(hi, 0xD7FF)), (max(lo, 0xE000), hi)):  # surrogates are no scalar values
            if a <= b:
                parts.append(f"\\x{{{a:x}}}" + (f"-\\x{{{b:x}}}" if b > a else ""))
    return parts


def _class(ranges: list[tuple[int, int]]) -> str:
    """A Rust class of exactly these code points, written the shorter way (a negated class is
    also much faster to match than one listing most of Unicode)."""
    listed, others = _items(ranges), _items(_complement(ranges))
    if not listed:
        return "[^\\x{0}-\\x{10ffff}]"
    if not others:
        return "[\\x{0}-\\x{10ffff}]"
    return "[" + "".join(listed) + "]" if len(listed) <= len(others) else "[^" + "".join(others) + "]"


# Python's whitespace by the version of the Unicode database it was built with: read off every
# code point once (tests/test_native_gate.py checks the entry of the running Python); another
# version's set is read off at first use.
_KNOWN_SPACES = {
    "14.0.0": [(9, 13), (28, 32), (133, 133), (160, 160), (5760, 5760), (8192, 8202), (8232, 8233), (8239, 8239),
               (8287, 8287), (12288, 12288)],
}  # fmt: skip


@cache
def _space_ranges() -> list[tuple[int, int]]:
    known = _KNOWN_SPACES.get(unicodedata.unidata_version)
    return list(known) if known is not None else _ranges(_python_spaces())




def _escaped(ch: str) -> list[tuple[int, int]] | None:
    """The code points of an escape inside or outside a class, or None when not known."""
    if ch == "s":
        return _space_ranges()
    if ch == "S":
        return _complement(_space_ranges())
    if ch in _SIMPLE_ESCAPES:
        c = ord(_SIMPLE_ESCAPES[ch].encode().decode("unicode_escape"))
        return [(c, c)]
    if ch in _PLAIN_ESCAPES:
        return [(ord(ch), ord(ch))]
    return None  # \d, \w, \b, \u...: Unicode semantics differ or unknown


def _read_class(pattern: str, i: int) -> tuple[str, int] | None:
    """The class starting at pattern[i] == '[' as a Rust class, and the index after it."""
    i += 1
    negated = pattern[i : i + 1] == "^"
    i += negated
    ranges: list[tuple[int, int]] = []
    first = True
    while i < len(pattern) and (pattern[i] != "]" or first):
        first = False
        if pattern[i] == "\\":
            got = _escaped(pattern[i + 1 : i + 2])
            if got is None:
                return None
            i += 2
            if pattern[i : i + 1] == "-" and pattern[i + 1 : i + 2] not in ("]", ""):
                return None  # a range from an escape: not needed by the packs, not reasoned about
            ranges += got
            continue
        if pattern[i] == "[":
            return None  # nested classes and set operations differ between dialects
        lo = ord(pattern[i])
        if pattern[i + 1 : i + 2] == "-" and pattern[i + 2 : i + 3] not in ("]", ""):
            if pattern[i + 2] == "\\":
                return None
            ranges.append((lo, ord(pattern[i + 2])))
            i += 3
        else:
            ranges.append((lo, lo))
            i += 1
    if i >= len(pattern):
        return None
    return _class(_complement(ranges) if negated else ranges), i + 1


@cache
def translate(pattern: str) -> str | None:
    """A Python regex as an anchored jsonschema-rs pattern with the same language (fullmatch), or
    None when it uses something this translation does not know to be the same in both dialects."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            got = _escaped(pattern[i + 1 : i + 2])
            if got is None:
                return None
            out.append(_class(got))
            i += 2
            continue
        if c == "[":
            read = _read_class(pattern, i)
            if read is None:
                return None
            out.append(read[0])
            i = read[1]
            continue
        if c == "(" and pattern[i + 1 : i + 2] == "?" and pattern[i + 2 : i + 3] != ":":
            return None  # named groups, lookarounds, flags
        if c == "." or (c == "$" and i != len(pattern) - 1) or c == "^":
            return None  # '.' and anchors: not used by the packs' regexes; kept out rather than reasoned about
        out.append(c)
        i += 1
    return f"^(?:{''.join(out)})$"


# Day and month together, as the calendar allows them (February 29 refused: the base rules decide).
_CALENDAR = (
    r"^[0-9]{4}(-(0[1-9]|1[0-2])|-(0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|-(0[469]|11)-(0[1-9]|[12][0-9]|30)"
    r"|-02-(0[1-9]|1[0-9]|2[0-8]))?(T.*(Z|[+-][0-9]{2}:[0-9]{2}))?$"
)
_REFERENCE = r"(?:(?:https?|ftp)://{s}*?/)?({types})/[A-Za-z0-9\-.]{{1,64}}(?:/_history/[A-Za-z0-9\-.]{{1,64}})?"


# A narrative div of plain text. Its characters are XML character data that needs no escape:
# no markup or entity ('<', '&'), no ']' (']]>' may not appear), none of the code points XML 1.0
# refuses; and one letter or digit, so it has content (txt-2) by any reading of whitespace.
_PLAIN_CHAR = "[^<&\\]\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]"
_PLAIN_DIV = re.compile(
    f'<div xmlns="http://www.w3.org/1999/xhtml">{_PLAIN_CHAR}*[A-Za-z0-9]{_PLAIN_CHAR}*</div>'
)


class _IsInt:
    """Custom keyword `pyint`: the value is a Python int (not bool, not a Decimal 1.0)."""

    def __init__(self, parent_schema: dict, value: object, schema_path: list) -> None:
        pass

    def validate(self, instance: object) -> None:
        if type(instance) is not int:
            raise ValueError("not an integer")


class _IsDecimal:
    """Custom keyword `pydecimal`: an int or a finite Decimal, as the parser gives JSON numbers."""

    def __init__(self, parent_schema: dict, value: object, schema_path: list) -> None:
        pass

    def validate(self, instance: object) -> None:
        if not (type(instance) is int or (type(instance) is Decimal and instance.is_finite())):
            raise ValueError("not a decimal")


@dataclass(frozen=True, slots=True)
class NotePath:
    """Where an element with a binding to a value set that is not bundled can be: JSON keys from
    the root, each with whether its value is an array."""

    binding: Binding
    tcode: str
    path: str  # the element's definition path, as the note says it
    steps: tuple[tuple[str, bool], ...]


# What every document address code_systems.page_advice() reports holds (it fullmatches a URL
# ending .htm, .html, .pdf, .doc or .docx, in any case): ASCII classes, since Python's ignore-case
# matches no other character for these letters.
_DOCUMENT_ENDING = r"\.(?:[hH][tT][mM]|[pP][dD][fF]|[dD][oO][cC])"


# Code systems most Codings of imaging payloads name. A system among them is accepted by a list
# lookup before its two patterns are matched (a pattern costs jsonschema-rs ~850 instructions per
# string whatever it is): 19k of 182k instructions per realistic study. Only those the full schema
# accepts are listed (_common_systems_first), so the schema accepts exactly what it did.
_COMMON_SYSTEMS = (
    "urn:ietf:rfc:3986",
    "http://dicom.nema.org/resources/ontology/DCM",
    "http://snomed.info/sct",
    "http://loinc.org",
    "http://terminology.hl7.org/CodeSystem/v2-0203",
    "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
    "http://www.radlex.org",
    "http://unitsofmeasure.org",
)


def _common_systems_first(schema: dict) -> dict:
    """`schema` (a Coding.system's), with the common systems it accepts accepted first."""
    accepted = _accepted_systems(json.dumps(schema, sort_keys=True))
    return {"anyOf": [{"enum": list(accepted)}, schema]} if accepted else schema


@lru_cache(maxsize=64)  # one per kind of system schema (most Codings share one)
def _accepted_systems(schema: str) -> tuple[str, ...]:
    import jsonschema_rs

    full = jsonschema_rs.validator_for(json.loads(schema), pattern_options=jsonschema_rs.RegexOptions())
    return tuple(s for s in _COMMON_SYSTEMS if full.is_valid(s))


class _Refused(Exception):
    """This structure cannot be written as an exact (or stricter) schema here."""


class _Builder:
    def __init__(self, plan: Plan, strict_numbers: bool = True) -> None:
        self.plan = plan
        # True: numbers are held to the custom keywords (a tree with Decimals); False: JSON
        # Schema's integer and number, exact for a tree whose numbers are all ints.
        self.strict_numbers = strict_numbers
        self._primitives: dict[str, dict] = {}
        self.defs: dict[str, object] = {}
        self.notes: list[NotePath] = []
        self.depth = 0  # the deepest pointer a passing resource can have
        self._extension_level = 0  # the level of an extension met where the builder is
        self._extension_depths: dict[str, int] = {}  # Extension{level} -> its deepest pointer, from itself

    # -- structures -------------------------------------------------------------------------------
    def resource(self, struct: Structure) -> dict:
        schema = self.structure(struct, (), 0, (), inline=True)
        schema["properties"]["resourceType"] = {"const": struct.name}
        schema["required"] = sorted({*schema.get("required", []), "resourceType"})
        # The narrative is checked by the base rules' own code (residual): any object here.
        if "text" in schema["properties"]:
            schema["properties"]["text"] = {"type": "object", "required": ["div"]}
        return schema

    def structure(self, struct: Structure, steps: tuple, depth: int, stack: tuple, inline: bool) -> dict:
        """The schema of an object of `struct` at pointer depth `depth`; `steps` is the path of
        keys from the root while it is known (inline), for the notes found below."""
        if struct.name in stack and struct.name != "Extension":
            raise _Refused(f"{struct.name} within itself")
        self.depth = max(self.depth, depth)
        stack = (*stack, struct.name)
        props: dict[str, object] = {}
        required: list[str] = []
        fragments: list[dict] = []
        for inv in struct.invariants:
            if inv.key not in _INVARIANTS:
                raise _Refused(f"invariant {inv.key}")
            fragments.append(_INVARIANTS[inv.key])
        for key, (el, tcode) in struct.props.items():
            props[key] = self.property(el, tcode, key, steps, depth, stack, inline)
        for el in struct.required:
            names = [k for k, (e, _) in struct.props.items() if e is el]
            required += names if len(names) == 1 else []
            if len(names) > 1:
                fragments.append({"anyOf": [{"required": [n]} for n in names]})
        for el in struct.elements:  # a choice element holds one value: one of its names at most
            names = [k for k, (e, _) in struct.props.items() if e is el]
            if len(names) > 1 and el.max == 1 and struct.name != "Extension":
                fragments.append({"not": {"anyOf": [{"required": [a, b]} for a in names for b in names if a < b]}})
        if "system" in props and "code" in props and props["system"] is not False:
            # A system that may be a document address (code_systems.web_page_systems): refused,
            # so that a resource the gate passes has none and that check is skipped for it.
            system = {"allOf": [props["system"], {"not": {"pattern": _DOCUMENT_ENDING}}]}
            props["system"] = _common_systems_first(system)
        schema: dict = {"type": "object", "minProperties": 1, "properties": props, "additionalProperties": False}
        if required:
            schema["required"] = required
        if struct.kind != "resource":
            schema["not"] = {"required": ["id"], "maxProperties": 1}  # ele-1: not an id alone
        if struct.name == "Extension":
            names = [k for k in struct.props if k.startswith("value")]
            fragments.append({"oneOf": [{"required": ["extension"]}, *({"required": [n]} for n in names)]})
        if struct.binding is not None:
            fragments.append(self.binding(struct.binding, "Quantity", struct.name, steps, inline))
        if fragments:
            schema["allOf"] = fragments
        return schema

    def property(self, el: ElementDef, tcode: str, key: str, steps: tuple, depth: int, stack: tuple,
                 inline: bool) -> object:  # fmt: skip
        try:
            if el.invariants and any(inv.key not in _INVARIANTS for inv in el.invariants):
                raise _Refused(f"invariant of {el.path}")
            here = (*steps, (key, el.repeats))
            item_depth = depth + 1 + (1 if el.repeats else 0)
            item = self.value(el, tcode, here, item_depth, stack, inline)
            fragments = [_INVARIANTS[inv.key] for inv in el.invariants]
            if fragments:
                item = {"allOf": [item, *fragments]}
            if not el.repeats:
                return item
            array: dict = {"type": "array", "minItems": max(1, el.min), "items": item}
            if el.max is not None:
                array["maxItems"] = el.max
            return array
        except _Refused:
            return False  # present: refused; absent: nothing to say

    def value(self, el: ElementDef, tcode: str, here: tuple, depth: int, stack: tuple, inline: bool) -> object:
        self.depth = max(self.depth, depth)
        if tcode == "Resource":
            raise _Refused("a resource inside")
        if tcode in self.plan.primitives:
            schema = self.primitive(self.plan.primitives[tcode])
            if el.binding is not None and self.plan.primitives[tcode].json == "string":
                schema = {"allOf": [schema, self.binding(el.binding, tcode, el.path, here, inline)]}
            return schema
        if tcode == "Extension":
            return {"$ref": f"#/$defs/{self.extension(self._extension_level, depth)}"}
        struct = el.children or self.plan.structures.get(tcode)
        if struct is None:
            raise _Refused(f"no structure {tcode}")
        schema = self.structure(struct, here, depth, stack, inline)
        fragments = []
        if el.binding is not None:
            fragments.append(self.binding(el.binding, tcode, el.path, here, inline))
        if el.targets is not None and tcode == "Reference":
            fragments.append(self.targets(el.targets))
        return {"allOf": [schema, *fragments]} if fragments else schema

    def extension(self, level: int, depth: int) -> str:
        """The $defs name of an Extension at nesting `level` (an extension in an extension, or in
        an extension's value, is one level deeper), used at pointer depth `depth`; its values are
        types the gate can judge without a path (no note can be inside them). Past
        EXTENSION_LEVELS the schema is false: the nesting of a passing resource is bounded, so
        --max-depth can be checked against it."""
        name = f"Extension{level}"
        if level >= EXTENSION_LEVELS:
            self.defs[name] = False
            return name
        if name not in self.defs:
            self.defs[name] = True  # placeholder while it is built (it refers to the next level)
            outer_depth, outer_level = self.depth, self._extension_level
            self.depth, self._extension_level = 0, level + 1  # depths inside, from this extension
            struct = self.plan.structures["Extension"]
            props: dict[str, object] = {}
            for key, (el, tcode) in struct.props.items():
                if key == "extension":
                    nested = {"$ref": f"#/$defs/{self.extension(level + 1, 2)}"}
                    props[key] = {"type": "array", "minItems": 1, "items": nested}
                    continue
                before = len(self.notes)
                props[key] = self.property(el, tcode, key, (), 0, ("Extension",), inline=False)
                if len(self.notes) != before:
                    raise AssertionError("a note path inside an extension")  # inline=False never records
            names = [k for k in struct.props if k.startswith("value")]
            self.defs[name] = {
                "type": "object", "properties": props, "additionalProperties": False, "required": ["url"],
                "not": {"required": ["id"], "maxProperties": 1},
                "oneOf": [{"required": ["extension"]}, *({"required": [n]} for n in names)],
            }  # fmt: skip
            self._extension_depths[name] = self.depth
            self.depth, self._extension_level = outer_depth, outer_level
        self.depth = max(self.depth, depth + self._extension_depths[name])
        return name

    # -- values -----------------------------------------------------------------------------------
    def primitive(self, pt: PrimitiveType) -> dict:
        """The schema of a primitive type, made once per type and written wherever it is used
        (inline: a $ref costs jsonschema-rs a quarter more time per resource)."""
        schema = self._primitives.get(pt.name)
        if schema is None:
            schema = self._primitives[pt.name] = self._primitive(pt, self.strict_numbers)
        return schema

    @staticmethod
    def _primitive(pt: PrimitiveType, strict_numbers: bool) -> dict:
        if pt.json == "boolean":
            return {"type": "boolean"}
        if pt.json == "integer":
            schema: dict = {"pyint": True} if strict_numbers else {"type": "integer"}
            if pt.min_value is not None:
                schema["minimum"] = pt.min_value
            if pt.max_value is not None:
                schema["maximum"] = pt.max_value
            return schema
        if pt.json == "decimal":
            return {"pydecimal": True} if strict_numbers else {"type": "number"}
        if pt.check not in (None, "date", "dateTime", "instant"):
            raise _Refused(f"{pt.name} is checked in Python ({pt.check})")
        schema = {"type": "string", "minLength": 1}
        if pt.max_length is not None:
            schema["maxLength"] = pt.max_length
        patterns = []
        if pt.regex is not None:
            translated = translate(pt.regex.pattern)
            if translated is None:
                raise _Refused(f"the regex of {pt.name}")
            patterns.append(translated)
        if pt.check is not None:
            patterns.append(_CALENDAR)
        if len(patterns) == 1:
            schema["pattern"] = patterns[0]
        elif patterns:
            schema["allOf"] = [{"pattern": p} for p in patterns]
        return schema

    def binding(self, binding: Binding, tcode: str, path: str, here: tuple, inline: bool) -> dict:
        vs = binding.value_set
        if vs is None:
            if not inline:
                raise _Refused(f"a binding of {path} that is not bundled, where notes are not followed")
            self.notes.append(NotePath(binding, tcode, path, here))
            return {}
        if tcode in self.plan.primitives:
            return self.codes(vs)
        ext = binding.extension
        if tcode == "CodeableConcept":
            member = {"anyOf": [self.coding_in(vs), *([self.coding_in(ext)] if ext is not None else [])]}
            options: list[dict] = [{"required": ["coding"], "properties": {"coding": {"contains": member}}}]
            if binding.strength != "required":
                options.append({"not": {"required": ["coding"]}})
            return {"anyOf": options}
        # A Coding or Quantity: without a code there is nothing to look up.
        return {"anyOf": [{"not": {"required": ["code"]}}, self.coding_in(vs),
                          *([self.coding_in(ext)] if ext is not None else [])]}  # fmt: skip

    @staticmethod
    def codes(vs: ValueSet) -> dict:
        if vs.grammar is not None:
            translated = translate(vs.grammar.pattern)
            if translated is None:
                raise _Refused(f"the grammar of {vs.url}")
            return {"pattern": translated}
        return _one_of_codes(vs.codes)

    def coding_in(self, vs: ValueSet) -> dict:
        """A Coding whose (system, code) the value set has: per system, that system's codes; codes
        listed without a system, with any system or none."""
        if vs.grammar is not None:
            return {"required": ["code"], "properties": {"code": self.codes(vs)}}
        by_system: dict[str | None, list[str]] = {}
        for system, code in vs.codings:
            by_system.setdefault(system, []).append(code)
        options = []
        for system, codes in sorted(by_system.items(), key=lambda kv: kv[0] or ""):
            props: dict = {"code": _one_of_codes(codes)}
            if system is None:
                options.append({"required": ["code"], "properties": props})
            else:
                props["system"] = {"const": system}
                options.append({"required": ["system", "code"], "properties": props})
        return {"anyOf": options} if options else {"not": {}}

    @staticmethod
    def targets(targets: frozenset[str]) -> dict:
        types = "|".join(sorted(re.escape(t) for t in targets))
        return {
            "properties": {
                "reference": {"pattern": f"^{_REFERENCE.format(s=_class(_complement(_space_ranges())), types=types)}$"},
                "type": {"enum": sorted(targets)},
            }
        }


def _one_of_codes(codes: object) -> dict:
    """A code from a set, as an enum whatever its size: jsonschema-rs matches a string against an
    enum of 1,000 in 230-350 ns, against the same codes as one regex alternation in 240-410 ns,
    and compiles the enum faster (the R4 ImagingStudy gate: 30-40 ms instead of 42-45, and
    23.5 us per realistic study instead of 25.6, with the SOP Class, resource type and modality
    lists as enums); nor does it need the alternation written and escaped, code by code."""
    return {"enum": sorted(codes)}  # type: ignore[call-overload]


@dataclass
class _Compiled:
    struct: Structure
    plain: object  # the validator for trees holding only ints as numbers (None without orjson)
    notes: tuple[NotePath, ...]
    finder: Callable[..., list]
    strict: object = None  # with the custom keywords: built when a tree first holds a Decimal
    members: MemberVerdicts | None = None  # built when a resource of the type is first refused


class NativeGate:
    """The gate of one plan: `passes(resource)` is True only when the base rules would report
    nothing on it but the notes `notes(resource)` gives (and what `residual` checks)."""

    def __init__(self, plan: Plan, max_depth: int) -> None:
        self.plan = plan
        self._max_depth = max_depth
        self._compiled: dict[str, _Compiled | None] = {}
        self._notes: dict[int, RawIssue] = {}  # the finding of each note path (by id), at no pointer
        self._root_only: dict[str, frozenset[str]] = {}
        # Checked by the base rules' own code after the gate passed: the narrative (its XHTML),
        # unless it is the plain kind `residual_needed` can tell is right at once.
        narrative = plan.structures.get("Narrative")
        self.residual: tuple[tuple[str, Structure], ...] = (("text", narrative),) if narrative is not None else ()
        status = narrative.props.get("status") if narrative is not None else None
        binding = status[0].binding if status is not None else None
        self._statuses = (
            binding.value_set.codes if binding is not None and binding.value_set is not None else frozenset()
        )

    @staticmethod
    def available() -> bool:
        return _AVAILABLE

    def _for(self, rtype: str) -> _Compiled | None:
        if rtype in self._compiled:
            return self._compiled[rtype]
        compiled = None
        struct = self.plan.structures.get(rtype)
        invs = self.plan.element_invariants
        ele_1_only = len(invs) == 1 and invs[0].key == "ele-1"
        if _AVAILABLE and struct is not None and struct.kind == "resource" and ele_1_only:
            built = self._build(struct, strict_numbers=not _ORJSON)
            if built is not None:
                schema, notes = built
                validator = _compile(schema)
                compiled = _Compiled(struct, validator if _ORJSON else None, notes, _finder(notes),
                                     None if _ORJSON else validator)  # fmt: skip
        self._compiled[rtype] = compiled
        return compiled

    def _build(self, struct: Structure, strict_numbers: bool) -> tuple[dict, tuple[NotePath, ...]] | None:
        """The schema of a resource type and its note paths; None when refused."""
        builder = _Builder(self.plan, strict_numbers)
        try:
            schema = builder.resource(struct)
        except _Refused:
            return None
        # A passing resource must not be one the base rules find too deep (--max-depth).
        if builder.depth + 2 >= self._max_depth:
            return None
        schema["$defs"] = builder.defs
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        return schema, tuple(builder.notes)

    def schema_for(self, rtype: str) -> dict | None:
        """The schema (for tests and for reading)."""
        struct = self.plan.structures.get(rtype)
        if struct is None:
            return None
        builder = _Builder(self.plan)
        try:
            schema = builder.resource(struct)
        except _Refused:
            return None
        schema["$defs"] = builder.defs
        return schema

    def root_only(self, rtype: str) -> frozenset[str]:
        """The member names that, in a resource of `rtype` the gate passed and that contains no
        resource (`contained`, whose resources could be of any type), are at its root only: its
        structure has them, and no other structure of the plan (a datatype, a backbone element,
        another resource type) does. The gate lets no unknown member through anywhere."""
        names = self._root_only.get(rtype)
        if names is None:
            struct = self.plan.structures.get(rtype)
            below: set[str] = set()
            todo = [s for s in self.plan.structures.values() if s is not struct]
            if struct is not None:
                todo += [el.children for el in struct.elements if el.children is not None]
            seen: set[int] = set()
            while todo:
                s = todo.pop()
                if id(s) in seen:
                    continue
                seen.add(id(s))
                below.update(s.props)
                todo += [el.children for el in s.elements if el.children is not None]
            names = self._root_only[rtype] = frozenset(struct.props).difference(below) if struct else frozenset()
        return names

    def residual_needed(self, resource: dict) -> bool:
        """Whether the narrative of a resource the gate passed must go through the base rules:
        not when it is a status from the value set and a div of plain text (no markup, no
        entity, no character XML refuses, some letter or digit), which is well-formed XHTML with
        content (txt-1, txt-2) and nothing else to check."""
        text = resource.get("text")
        if type(text) is not dict or len(text) != 2:
            return True
        div, status = text.get("div"), text.get("status")
        plain = type(div) is str and type(status) is str and status in self._statuses
        return not (plain and _PLAIN_DIV.fullmatch(div) is not None)

    def passes(self, resource: dict, plain_numbers: bool | None = None) -> bool:
        """Whether the base rules report nothing on `resource` but the notes (and what `residual`
        checks); then no Coding (any object with a system and a code) has a system that
        code_systems.web_page_systems() reports either. `plain_numbers`: whether its numbers are
        all ints of at most 64 bits, when its parser found out (jsontext.parse_checked)."""
        rtype = resource.get("resourceType")
        compiled = self._for(rtype) if isinstance(rtype, str) else None
        if compiled is None:
            return False
        if plain_numbers is None:
            plain_numbers = _only_ints(resource)
        validator = compiled.plain if compiled.plain is not None and plain_numbers else compiled.strict
        if validator is None:  # the same schema but for numbers: same refusal, same notes
            validator = compiled.strict = _compile(self._build(compiled.struct, strict_numbers=True)[0])  # type: ignore[index]
        try:
            return validator.is_valid(resource)  # type: ignore[attr-defined]
        except Exception:  # a value it cannot read (a lone surrogate, a foreign type): not passed
            return False

    def clean_members(self, resource: dict, plain_numbers: bool | None = None) -> dict[str, Callable | None] | None:
        """Of a resource this gate refused (or whose narrative the base rules reported on), the
        members whose base-rule checks find nothing but binding notes: key -> the finder of the
        notes under it (None: no note path starts there); None when no member is (the whole
        resource is then walked). See MemberVerdicts."""
        rtype = resource.get("resourceType")
        compiled = self._for(rtype) if isinstance(rtype, str) else None
        if compiled is None:
            return None
        if compiled.members is None:
            compiled.members = MemberVerdicts(self, compiled)
        if plain_numbers is None:
            plain_numbers = _only_ints(resource)
        return compiled.members.clean(resource, plain_numbers)

    def notes(self, resource: dict, text: str | None = None) -> list[RawIssue]:
        """The binding notes of a resource that passed, in the order the base rules give them.
        `text` (the source text, which the pipeline passes) is not needed: the finder follows the
        paths below the root only for a binding not already met before them (see _finder)."""
        compiled = self._compiled.get(resource.get("resourceType"))  # type: ignore[arg-type]
        if compiled is None or not compiled.notes:
            return []
        out = []
        cache = self._notes
        # _note's cache looked up here: a call per note costs more than the rest of the work.
        for pointer, value, note in compiled.finder(resource):
            cached = cache.get(id(note))
            if cached is None:
                cached = self._note(note, pointer, value)
            out.append(RawIssue(cached.rule, pointer, cached.message, cached.severity))
        return out

    def _note(self, note: NotePath, pointer: tuple, value: object) -> RawIssue:
        """The finding the base rules give for the first value of a binding's rule (report_binding):
        for a value set not bundled, the same rule and message whatever the value."""
        cached = self._notes.get(id(note))  # note paths live as long as the gate
        if cached is None:
            out: list[RawIssue] = []

            def add(rule: str | Rule, ptr: tuple, message: str) -> None:  # as BaseRules.add
                found = rule if isinstance(rule, Rule) else self.plan.rules[rule]
                out.append(RawIssue(found, ptr, message, found.severity))

            problem = binding_problem(note.binding, value, note.tcode, note.path)
            assert problem is not None, "a binding to a value set that is not bundled is always noted"
            report_binding(problem, note.binding, (), add, set())
            cached = self._notes[id(note)] = out[0]
        return RawIssue(cached.rule, pointer, cached.message, cached.severity)


class MemberVerdicts:
    """Which members of a resource the gate refused are clean, judged by the gate's own schema.

    The schema of a resource is an object schema whose `properties` give each member's schema; a
    resource passes it only when the base rules find nothing in it but notes. The checks the base
    rules run on a complex member (its value under its key: generated per property, check_source.py)
    read nothing of the rest of the resource that the schema lets through: references are
    Type/id or URLs (never resolved against contained resources or the Bundle), no invariant
    reads outside its element, and the tree has no repeated key (the caller's condition for the
    gate). So a complex member that passes its property's schema gets from the base rules what
    it would get in a resource the gate passes, whatever the rest holds: the binding notes along
    the note paths under its key (each binding noted once per resource, where the walk first
    meets it), nothing else. The walk of a refused resource (BaseRules.check) takes such members
    as judged: it counts them for cardinality and gives their notes in its own order; the root's
    own checks (cardinality, invariants, unknown keys), its primitives and every other member are
    checked as before. The narrative's schema says nothing of its XHTML: it is clean only in the
    plain form residual_needed() passes.

    The members are judged in one pass of a schema holding only the complex members' property
    schemas (none of the root's own keywords, which the walk checks itself): every error of that
    pass is inside a member, at an instance path starting with its key, and a member's schema
    fails only where its errors are (jsonschema-rs iterates every error: each failing member has
    one). tests/test_member_verdicts.py compares the findings both ways on thousands of mutated
    studies."""

    def __init__(self, gate: NativeGate, compiled: _Compiled) -> None:
        self._gate = gate
        self._struct = compiled.struct
        primitives = gate.plan.primitives
        # The complex members (the narrative apart); those whose schema is `false` are always walked.
        self._candidates = frozenset(
            key for key, (_, tcode) in self._struct.props.items() if tcode not in primitives and key != "text"
        )  # fmt: skip
        self._narrative = "text" in self._struct.props
        self._validators: dict[bool, object] = {}
        self._schemas: dict[bool, dict | None] = {}  # built once each (the first is compiled next)
        built = self._schema(strict_numbers=not _ORJSON)
        self.keys: frozenset[str] = frozenset(built["properties"]) if built is not None else frozenset()
        self._finders: dict[str, Callable | None] = {}
        for key in {note.steps[0][0] for note in compiled.notes}:
            self._finders[key] = _finder(tuple(n for n in compiled.notes if n.steps[0][0] == key))

    def _schema(self, strict_numbers: bool) -> dict | None:
        """The gate's schema of the resource type cut to the properties of the complex members."""
        if strict_numbers in self._schemas:
            return self._schemas[strict_numbers]
        built = self._gate._build(self._struct, strict_numbers)
        cut = None
        if built is not None:
            schema, _ = built
            props = {k: sub for k, sub in schema["properties"].items() if k in self._candidates and sub is not False}
            cut = {"$schema": schema["$schema"], "$defs": schema["$defs"], "properties": props}
        self._schemas[strict_numbers] = cut
        return cut

    def _validator(self, plain_numbers: bool) -> object:
        """The members' schema for a tree of ints only (JSON Schema's integer, exact there) or
        with the custom number keywords, as NativeGate.passes chooses (compiled on first use)."""
        strict = not (plain_numbers and _ORJSON)
        validator = self._validators.get(strict)
        if validator is None:
            validator = self._validators[strict] = _compile(self._schema(strict_numbers=strict))  # type: ignore[arg-type]
        return validator

    def clean(self, resource: dict, plain_numbers: bool) -> dict[str, Callable | None] | None:
        """The clean members of `resource` and the finders of their notes (clean_members)."""
        present = self.keys.intersection(resource)  # a frozenset
        dirty: set[str] = set()
        if present:
            validator = self._validator(plain_numbers)
            try:
                # Most refused resources break a rule of the root (a status code, a date, a
                # missing subject, an unknown key) and no member: a yes/no pass says so at less
                # cost than collecting errors (each an object with a message).
                if not validator.is_valid(resource):  # type: ignore[attr-defined]
                    for error in validator.iter_errors(resource):  # type: ignore[attr-defined]
                        path = error.instance_path
                        if not path or path[0] not in present:  # not the members' schema: trust none
                            return None
                        dirty.add(path[0])
                        if len(dirty) == len(present):  # all refused: no need to read further errors
                            break
                    if not dirty:  # refused without an error to say where: trust none
                        return None
            except Exception:  # a value it cannot read (as NativeGate.passes): every member walked
                return None
        clean = set(present) - dirty
        if self._narrative and "text" in resource and not self._gate.residual_needed(resource):
            clean.add("text")
        if not clean:
            return None
        return {key: self._finders.get(key) for key in clean}


def _compile(schema: dict) -> object:
    import jsonschema_rs

    return jsonschema_rs.validator_for(
        schema, keywords={"pyint": _IsInt, "pydecimal": _IsDecimal}, pattern_options=jsonschema_rs.RegexOptions()
    )


def _only_ints(tree: dict) -> bool:
    """Whether every number of a parsed tree is a Python int: the parsers give a JSON number
    written with a fraction or an exponent as a Decimal, which orjson refuses to write (as it
    does an int past 64 bits, which the strict schema then reads)."""
    try:
        _dumps(tree)
    except TypeError:
        return False
    return True


def _dumps(tree: object) -> bytes:  # replaced by orjson.dumps when the first gate is built
    import orjson

    globals()["_dumps"] = orjson.dumps
    return orjson.dumps(tree)


def _order(resource: dict, pointer: tuple) -> tuple:
    """Where a pointer comes in the order the base rules visit a resource: key by key (in the
    order of the object's keys), item by item."""
    node: object = resource
    out = []
    for step in pointer:
        out.append(list(node).index(step) if type(step) is str else step)  # type: ignore[arg-type]
        node = node[step]  # type: ignore[index]
    return tuple(out)


def _first(resource: dict, hits: list) -> tuple:
    """The hit the base rules meet first of several (pointer, value, note)."""
    return min(hits, key=lambda h: _order(resource, h[0]))


def _in_order(resource: dict, hits: list) -> list:
    """Hits of different bindings (one each) in the order the base rules meet them: by their root
    keys' places when those differ (one list of the keys, searched in C), else step by step."""
    roots = [h[0][0] for h in hits]
    if len(set(roots)) == len(roots):
        keys = list(resource)
        hits.sort(key=lambda h: keys.index(h[0][0]))
    else:
        hits.sort(key=lambda h: _order(resource, h[0]))
    return hits


def _finder(notes: tuple[NotePath, ...]) -> Callable[[dict], list]:
    """A function, generated once per resource type, that gives (pointer, value, note) for each
    binding the base rules note in a resource, where they first meet it, in the order they meet
    them: the base rules note a binding once per resource, and meet the places key by key (in
    the order of each object's keys), item by item.

    Per note path, straight-line code gives the first place along it that holds a value (arrays
    in item order): a dict lookup per step. Per binding, its paths' root keys present in the
    resource are tried in the resource's order, and the first that has a hit decides: the paths
    under later root keys are not followed (the identifiers of references, some through every
    series, once the study's own identifier has a type). Several paths under one root key (a
    series' endpoint, specimen and performer) give the hit met first (_first)."""
    ns: dict[str, object] = {"_first": _first, "_in_order": _in_order}
    out = []
    for n, note in enumerate(notes):
        ns[f"N{n}"] = note
        body, indent, pointer = [], "    ", []
        for d, (key, listy) in enumerate(note.steps):
            node = "r" if d == 0 else f"v{d - 1}"
            if d:
                body += [f"{indent}if type({node}) is dict:"]
                indent += "    "
            body += [f"{indent}v{d} = {node}.get({key!r})", f"{indent}if v{d} is not None:"]
            indent += "    "
            pointer.append(repr(key))
            if listy:
                body += [f"{indent}for k{d}, v{d} in enumerate(v{d}):"]
                indent += "    "
                pointer.append(f"k{d}")
        last = len(note.steps) - 1
        body.append(f"{indent}return (({', '.join(pointer)},), v{last}, N{n})")
        out += [f"def p{n}(r):", *body, "    return None"]
    # The note paths of each binding (by the rule the base rules note it under), by root key.
    bindings: dict[str, dict[str, list[int]]] = {}
    for n, note in enumerate(notes):
        bindings.setdefault(note.binding.rule.id, {}).setdefault(note.steps[0][0], []).append(n)
    find = ["def find(r):", "    hits = []"]
    for b, roots in enumerate(bindings.values()):
        table = {}  # root key -> the name of the function giving the binding's hit under it
        for i, (root, paths) in enumerate(roots.items()):
            calls = ", ".join(f"p{n}(r)" for n in paths)
            table[root] = f"p{paths[0]}" if len(paths) == 1 else f"b{b}_{i}"
            if len(paths) > 1:  # several paths under one root key (a series' endpoint, specimen, performer)
                out += [f"def b{b}_{i}(r):", f"    hits = [h for h in ({calls}) if h is not None]",
                        "    return (_first(r, hits) if len(hits) > 1 else hits[0]) if hits else None"]  # fmt: skip
        if len(roots) == 1:
            (root,) = roots
            find += [f"    if {root!r} in r:", f"        h = {table[root]}(r)", "        if h is not None:",
                     "            hits.append(h)"]  # fmt: skip
        else:
            # The binding's root keys present, in the resource's order; the first with a hit.
            ns[f"R{b}"] = frozenset(roots)
            find += [f"    c = R{b}.intersection(r)", "    if c:", "        if len(c) > 1:",
                     "            keys = list(r)", "            c = sorted(c, key=keys.index)",
                     "        for k in c:", f"            h = B{b}[k](r)", "            if h is not None:",
                     "                hits.append(h)", "                break"]  # fmt: skip
            out.append(f"B{b} = {{{', '.join(f'{root!r}: {name}' for root, name in table.items())}}}")
    # Two hits (the usual most) under different root keys are put in order here, without a call.
    find += ["    if len(hits) == 2:", "        a, b = hits[0][0][0], hits[1][0][0]", "        if a != b:",
             "            keys = list(r)", "            if keys.index(a) > keys.index(b):",
             "                hits.reverse()", "            return hits",
             "    return _in_order(r, hits) if len(hits) > 1 else hits"]  # fmt: skip
    exec(compile("\n".join(out + find) + "\n", "<note paths>", "exec"), ns)  # source generated here only
    return ns["find"]  # type: ignore[return-value]
