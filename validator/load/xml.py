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

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from xml.parsers import expat

from validator.compile.plan import Plan, Structure

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


class _Converter:
    def __init__(self, plan: Plan, data: bytes) -> None:
        self.plan = plan
        self.data = data
        self.positions: dict[tuple, tuple[int, int]] = {}

    def resource(self, node: _Node, ptr: tuple) -> dict:
        out: dict = {"resourceType": node.name}
        self.positions[ptr] = (node.line, node.column)
        struct = self.plan.structures.get(node.name)
        if node.name == "Bundle":
            self.bundle(node, out, ptr)
        else:
            self.children(node, struct, out, ptr)
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

    def children(self, node: _Node, struct: Structure | None, out: dict, ptr: tuple) -> None:
        if "id" in node.attrs:
            out["id"] = node.attrs["id"]
        if "url" in node.attrs:
            out["url"] = node.attrs["url"]
        groups: dict[str, list[_Node]] = {}
        for child in node.children:
            groups.setdefault(child.name, []).append(child)
        for name, nodes in groups.items():
            entry = struct.props.get(name) if struct is not None else None
            repeats = entry[0].repeats if entry is not None else len(nodes) > 1
            tcode = entry[1] if entry is not None else None
            if tcode in self.plan.primitives or (entry is None and "value" in nodes[0].attrs and not nodes[0].children):
                self.primitive(name, nodes, tcode, repeats, out, ptr)
                continue
            values = []
            for k, child in enumerate(nodes):
                cptr = (*ptr, name, k) if repeats else (*ptr, name)
                self.positions[cptr] = (child.line, child.column)
                if tcode == "Resource" and child.children:
                    values.append(self.resource(child.children[0], cptr))
                    continue
                sub_struct = (entry[0].children or self.plan.structures.get(tcode)) if entry is not None else None
                obj: dict = {}
                self.children(child, sub_struct, obj, cptr)
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
            companion: dict = {}
            if "id" in node.attrs:
                companion["id"] = node.attrs["id"]
            ext = [c for c in node.children if c.name == "extension"]
            if ext:
                cptr = (*ptr, "_" + name, k) if repeats else (*ptr, "_" + name)
                companion["extension"] = []
                for j, e in enumerate(ext):
                    eobj: dict = {}
                    self.positions[(*cptr, "extension", j)] = (e.line, e.column)
                    self.children(e, self.plan.structures.get("Extension"), eobj, (*cptr, "extension", j))
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
        ptype = self.plan.primitives.get(tcode or "")
        if ptype is None or ptype.json == "string":
            return value
        if ptype.json == "boolean":
            return {"true": True, "false": False}.get(value, value)
        if ptype.json == "integer":
            try:
                return int(value) if value.strip() == value and value.lstrip("-").isdigit() else value
            except ValueError:
                return value
        try:
            number = Decimal(value) if value.strip() == value else None
        except InvalidOperation:
            return value
        # NaN and Infinity are no FHIR decimal (JSON has no such number): kept as text, the type
        # check reports them as it would in JSON.
        return number if number is not None and number.is_finite() else value


def load_xml(data: bytes, plan: Plan, max_depth: int) -> tuple[dict, XmlPositions]:
    """The JSON form of a FHIR XML document and the positions of its elements."""
    root = _parse(data, max_depth)
    if root.ns != FHIR_NS:
        raise XmlInputError(
            f"the root element <{root.name}> is not in the FHIR namespace {FHIR_NS}", root.line, root.column
        )
    converter = _Converter(plan, data)
    doc = converter.resource(root, ())
    text = data.decode("utf-8", "replace")
    return doc, XmlPositions(text, converter.positions)
