"""FHIR XML input (http://hl7.org/fhir/R4/xml.html), turned into the JSON form the engine walks.

Parsed with expat and no document type declarations at all (so no external entity and no entity
expansion bomb can exist); every element keeps its line and column, so every finding on an XML
payload points into the XML. The rules of the format:
- a primitive is an element whose `value` attribute holds the value; its `id` attribute and
  `extension` children become the JSON `_name` companion;
- an element that can repeat (by the rule pack) becomes a JSON array, whatever its count;
- `extension/@url` is the extension's url; other `id` attributes are element ids;
- a resource inside `contained` or `Bundle.entry.resource` is the element named by its type;
- `Narrative.div` is XHTML, kept as its markup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from xml.parsers import expat

from validator import rule_ids as R
from validator.compile.plan import Plan, Structure
from validator.rule_ids import implements

FHIR_NS = "http://hl7.org/fhir"
XHTML_NS = "http://www.w3.org/1999/xhtml"


class XmlInputError(ValueError):
    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


@dataclass(eq=False)
class _Node:
    ns: str
    name: str
    attrs: dict[str, str]
    line: int
    column: int
    start: int  # byte offsets, for the XHTML of a narrative
    end: int = 0
    children: list[_Node] = field(default_factory=list)


def _parse(data: bytes, max_depth: int) -> _Node:
    parser = expat.ParserCreate(namespace_separator=" ")
    stack: list[_Node] = []
    root: list[_Node] = []

    def forbid(*_args: object) -> None:
        raise XmlInputError("a document type declaration (DOCTYPE or ENTITY) is not allowed in FHIR XML",
                            parser.CurrentLineNumber, parser.CurrentColumnNumber + 1)  # fmt: skip

    def start(tag: str, attrs: dict[str, str]) -> None:
        ns, _, name = tag.rpartition(" ")
        node = _Node(ns, name, attrs, parser.CurrentLineNumber, parser.CurrentColumnNumber + 1, parser.CurrentByteIndex)
        if stack:
            stack[-1].children.append(node)
        else:
            root.append(node)
        stack.append(node)
        if len(stack) > max_depth:
            raise XmlInputError(f"the XML nests deeper than the limit of {max_depth} levels (--max-depth)",
                                node.line, node.column)  # fmt: skip

    def end(_tag: str) -> None:
        node = stack.pop()
        node.end = parser.CurrentByteIndex

    parser.StartDoctypeDeclHandler = forbid
    parser.EntityDeclHandler = forbid
    parser.ExternalEntityRefHandler = forbid
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise XmlInputError(f"malformed XML: {expat.errors.messages[exc.code]}", exc.lineno, exc.offset + 1) from None
    if not root:
        raise XmlInputError("the XML document has no root element")
    return root[0]


class XmlPositions:
    """Positions of the converted JSON form's pointers in the XML text (same interface as
    jsontext.PositionIndex)."""

    def __init__(self, text: str, positions: dict[tuple, tuple[int, int]]) -> None:
        self._text = text
        self._positions = positions
        self._lines: list[str] | None = None  # split on the first snippet only

    @property
    def text(self) -> str:
        """The source text the positions are in."""
        return self._text

    def locate(self, pointer: tuple, duplicate: bool = False) -> tuple[int, int] | None:
        ptr = tuple(pointer)
        while True:
            if ptr in self._positions:
                return self._positions[ptr]
            if not ptr:
                return None
            ptr = ptr[:-1]

    def lines(self, line: int, column: int, radius: int = 2, width: int = 160) -> tuple[tuple[int, str], ...]:
        if self._lines is None:
            self._lines = self._text.split("\n")
        all_lines = self._lines
        return tuple(
            (n, all_lines[n - 1][:width]) for n in range(max(1, line - radius), min(len(all_lines), line + radius) + 1)
        )


@dataclass(frozen=True, slots=True)
class XmlProblem:
    """Something FHIR XML does not allow that the JSON form cannot show: the engine never sees it,
    so it is reported from here, for the resource at `pointer` (or the Bundle entry it is in)."""

    rule: str
    message: str
    line: int
    column: int
    pointer: tuple


# The only attributes FHIR XML has (http://hl7.org/fhir/R4/xml.html): value on a primitive, id on
# an element (not on a resource: its id is an element), url on an extension.
_EXTENSIONS = ("extension", "modifierExtension")


class _Converter:
    def __init__(self, plan: Plan, data: bytes) -> None:
        self.plan = plan
        self.data = data
        self.positions: dict[tuple, tuple[int, int]] = {}
        self.problems: list[XmlProblem] = []

    @implements(R.XML_UNKNOWN_ATTRIBUTE)
    def attributes(self, node: _Node, allowed: tuple[str, ...], ptr: tuple) -> None:
        for name in node.attrs:
            if name not in allowed:
                shown = name.replace(" ", ":", 1) if " " in name else name
                where = " or ".join(allowed) if allowed else "none"
                self.problems.append(XmlProblem(
                    R.XML_UNKNOWN_ATTRIBUTE, f"attribute {shown!r} on <{node.name}> is not part of FHIR XML "
                    f"(allowed here: {where}); it was not read", node.line, node.column, ptr))  # fmt: skip

    @implements(R.XML_UNKNOWN_ELEMENT)
    def foreign(self, node: _Node, ptr: tuple, why: str) -> None:
        self.problems.append(XmlProblem(R.XML_UNKNOWN_ELEMENT, f"element <{node.name}> {why}; it was not read",
                                        node.line, node.column, ptr))  # fmt: skip

    @implements(R.XML_REPEATED_ELEMENT)
    def repeated(self, nodes: list[_Node], ptr: tuple, path: str) -> None:
        for extra in nodes[1:]:
            self.problems.append(XmlProblem(
                R.XML_REPEATED_ELEMENT, f"element <{extra.name}> is written {len(nodes)} times, but {path} holds "
                "one value (at most 1): only the first was read", extra.line, extra.column, ptr))  # fmt: skip

    @implements(R.XML_EMPTY_ELEMENT)
    def empty(self, node: _Node, ptr: tuple) -> None:
        self.problems.append(XmlProblem(
            R.XML_EMPTY_ELEMENT, f"element <{node.name}> has neither a value nor child elements (ele-1): it was not "
            "read", node.line, node.column, ptr))  # fmt: skip

    def resource(self, node: _Node, ptr: tuple) -> dict:
        out: dict = {"resourceType": node.name}
        self.positions[ptr] = (node.line, node.column)
        struct = self.plan.structures.get(node.name)
        if node.name == "Bundle":
            self.attributes(node, (), ptr)
            self.bundle(node, out, ptr)
        else:
            self.children(node, struct, out, ptr, ())
        return out

    def bundle(self, node: _Node, out: dict, ptr: tuple) -> None:
        # Bundle itself has no rule pack: only what splitting it into resources needs.
        entries = []
        for child in node.children:
            if child.name == "type" or child.name == "id":
                out[child.name] = child.attrs.get("value")
            elif child.name == "entry":
                entry: dict = {}
                eptr = (*ptr, "entry", len(entries))
                self.positions[eptr] = (child.line, child.column)
                for part in child.children:
                    if part.name == "fullUrl":
                        entry["fullUrl"] = part.attrs.get("value")
                    elif part.name == "resource" and part.children:
                        entry["resource"] = self.resource(part.children[0], (*eptr, "resource"))
                entries.append(entry)
        if entries:
            out["entry"] = entries

    def children(self, node: _Node, struct: Structure | None, out: dict, ptr: tuple,
                 allowed: tuple[str, ...] = ("id",)) -> None:  # fmt: skip
        """The child elements of a resource or complex element (and the attributes `allowed` on it)."""
        for name in allowed:
            if name in node.attrs:
                out[name] = node.attrs[name]
        self.attributes(node, allowed, ptr)
        groups: dict[str, list[_Node]] = {}
        for child in node.children:
            if child.name == "resourceType":
                self.foreign(child, ptr, "is not part of FHIR XML: a resource's type is the name of its element")
            elif child.name.startswith("_"):
                self.foreign(child, ptr, "is not part of FHIR XML (a JSON _element companion is written as the "
                             "id and extensions of the element itself)")  # fmt: skip
            elif child.ns != FHIR_NS and not (child.ns == XHTML_NS and child.name == "div"):
                self.foreign(child, ptr, f"is not in the FHIR namespace {FHIR_NS}")
            else:
                groups.setdefault(child.name, []).append(child)
        for name, nodes in groups.items():
            entry = struct.props.get(name) if struct is not None else None
            repeats = entry[0].repeats if entry is not None else len(nodes) > 1
            tcode = entry[1] if entry is not None else None
            if not repeats and len(nodes) > 1:
                self.repeated(nodes, ptr, entry[0].path if entry is not None else name)
                nodes = nodes[:1]
            # (a narrative's div is XHTML: its text is its content)
            empty = [n for n in nodes if not n.children and not n.attrs and n.ns != XHTML_NS]
            for n in empty:
                self.empty(n, ptr)
            nodes = [n for n in nodes if n not in empty]
            if not nodes:
                continue
            if tcode in self.plan.primitives or (entry is None and "value" in nodes[0].attrs and not nodes[0].children):
                self.primitive(name, nodes, tcode, repeats, out, ptr)
                continue
            values = []
            for k, child in enumerate(nodes):
                cptr = (*ptr, name, k) if repeats else (*ptr, name)
                self.positions[cptr] = (child.line, child.column)
                if tcode == "Resource" and child.children:
                    self.attributes(child, (), cptr)
                    for extra in child.children[1:]:
                        self.foreign(extra, cptr, f"is a second resource in one <{name}>, which holds one")
                    values.append(self.resource(child.children[0], cptr))
                    continue
                sub_struct = (entry[0].children or self.plan.structures.get(tcode)) if entry is not None else None
                obj: dict = {}
                self.children(child, sub_struct, obj, cptr, ("id", "url") if name in _EXTENSIONS else ("id",))
                values.append(obj)
            out[name] = values if repeats else values[0]

    def primitive(self, name: str, nodes: list[_Node], tcode: str | None, repeats: bool, out: dict, ptr: tuple) -> None:
        values, companions = [], []
        for k, node in enumerate(nodes):
            vptr = (*ptr, name, k) if repeats else (*ptr, name)
            self.positions[vptr] = (node.line, node.column)
            if tcode == "xhtml" or (node.name == "div" and node.ns == XHTML_NS):
                values.append(self.xhtml(node))
                companions.append(None)
                continue
            values.append(self.typed(node.attrs["value"], tcode) if "value" in node.attrs else None)
            self.attributes(node, ("value", "id"), vptr)
            companion: dict = {}
            if "id" in node.attrs:
                companion["id"] = node.attrs["id"]
            ext = [c for c in node.children if c.name == "extension" and c.ns == FHIR_NS]
            for other in node.children:
                if not (other.name == "extension" and other.ns == FHIR_NS):
                    self.foreign(other, vptr, f"is not part of FHIR XML inside the primitive <{name}>, which holds "
                                 "only extensions")  # fmt: skip
            if ext:
                cptr = (*ptr, "_" + name, k) if repeats else (*ptr, "_" + name)
                companion["extension"] = []
                for j, e in enumerate(ext):
                    eobj: dict = {}
                    eptr = (*cptr, "extension", j)
                    self.positions[eptr] = (e.line, e.column)
                    self.children(e, self.plan.structures.get("Extension"), eobj, eptr, ("id", "url"))
                    companion["extension"].append(eobj)
            companions.append(companion or None)
        out[name] = values if repeats else values[0]
        if any(c is not None for c in companions):
            out["_" + name] = companions if repeats else companions[0]
        if not repeats and out[name] is None:
            del out[name]

    def xhtml(self, node: _Node) -> str:
        """The narrative's markup as written: expat reports the end at the start of the end tag."""
        raw = self.data[node.start : node.end].decode("utf-8", "replace")
        return raw if raw.rstrip().endswith("/>") and node.end == node.start else raw + "</div>"

    def typed(self, value: str, tcode: str | None) -> object:
        """The JSON value of a primitive's value attribute: a number or boolean only when the text
        has the lexical form FHIR gives the type (http://hl7.org/fhir/R4/datatypes.html); any
        other text stays a string, which the type rule of the element then reports ('007', '+1',
        '1_000', Arabic-Indic digits, 'NaN' and 'Infinity' are no FHIR numbers, though Python's
        int() and Decimal() read them)."""
        ptype = self.plan.primitives.get(tcode or "")
        if ptype is None or ptype.json == "string":
            return value
        if ptype.json == "boolean":
            return {"true": True, "false": False}.get(value, value)
        if ptype.json == "integer":
            try:
                return int(value) if _INTEGER.fullmatch(value) else value
            except ValueError:  # beyond Python's integer conversion limit: kept as text, a type problem
                return value
        # NaN and Infinity never match: kept as text, the type check reports them as in JSON.
        return Decimal(value) if _DECIMAL.fullmatch(value) else value


# The lexical forms of FHIR's integer and decimal (ASCII digits only).
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def load_xml(data: bytes, plan: Plan, max_depth: int) -> tuple[dict, XmlPositions, list[XmlProblem]]:
    """The JSON form of a FHIR XML document, the positions of its elements, and what it holds that
    FHIR XML does not allow."""
    root = _parse(data, max_depth)
    if root.ns != FHIR_NS:
        raise XmlInputError(
            f"the root element <{root.name}> is not in the FHIR namespace {FHIR_NS}", root.line, root.column
        )
    converter = _Converter(plan, data)
    doc = converter.resource(root, ())
    text = data.decode("utf-8", "replace")
    return doc, XmlPositions(text, converter.positions), converter.problems
