"""Narrative XHTML checks (R4 Narrative.div, invariants txt-1 and txt-2).

txt-1: only the basic HTML formatting elements and attributes (HTML 4.0 chapters 7-11 and 15, <a>
with name or href, images, internal style attributes); no scripts, forms or event attributes.
txt-2: the narrative has some non-whitespace content.
The text is parsed as XML with DTDs refused, so no entity can expand or be fetched.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from functools import lru_cache, wraps
from typing import TypeVar

XHTML = "{http://www.w3.org/1999/xhtml}"

ALLOWED_ELEMENTS = frozenset(
    [
        "a",
        "abbr",
        "acronym",
        "b",
        "big",
        "blockquote",
        "br",
        "caption",
        "cite",
        "code",
        "col",
        "colgroup",
        "dd",
        "dfn",
        "div",
        "dl",
        "dt",
        "em",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "li",
        "ol",
        "p",
        "pre",
        "q",
        "samp",
        "small",
        "span",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "tt",
        "ul",
        "var",
    ]
)
ALLOWED_ATTRIBUTES = frozenset(
    [
        "title",
        "style",
        "class",
        "id",
        "lang",
        "xml:lang",
        "dir",
        "accesskey",
        "tabindex",
        "rowspan",
        "colspan",
        "abbr",
        "align",
        "valign",
        "width",
        "height",
        "border",
        "cellpadding",
        "cellspacing",
        "frame",
        "rules",
        "summary",
        "scope",
        "headers",
        "char",
        "charoff",
        "span",
        "href",
        "name",
        "src",
        "alt",
        "start",
        "type",
        "value",
        "compact",
        "nowrap",
    ]
)
_DOCTYPE = re.compile(r"<!DOCTYPE|<!ENTITY", re.IGNORECASE)


T = TypeVar("T")
# A narrative is checked by three rules (xhtml format, txt-1, txt-2) that share one parse. Short
# ones (nearly all) are remembered across resources, at most 256 x 4 KiB of text; of the long ones
# only the latest, so what one file leaves behind never grows with the number of files.
_SHORT = 4096


def _recent(func: Callable[[str], T]) -> Callable[[str], T]:
    """`func` with its results remembered as said above."""
    short = lru_cache(maxsize=256)(func)
    last: list[tuple[str, T]] = []

    @wraps(func)
    def cached(div: str) -> T:
        if len(div) <= _SHORT:
            return short(div)
        if not last or last[0][0] != div:
            last[:] = [(div, func(div))]
        return last[0][1]

    return cached


def _attr_name(name: str) -> str:
    if name == "{http://www.w3.org/XML/1998/namespace}lang":
        return "xml:lang"
    return name.split("}", 1)[-1]


@_recent  # one parse serves the xhtml format, txt-1 and txt-2 (never mutated)
def _parse(div: str) -> ET.Element | str:
    if _DOCTYPE.search(div):
        return "a DOCTYPE or ENTITY declaration is not allowed in XHTML content"
    try:
        return ET.fromstring(div)
    except ET.ParseError as exc:
        return f"not well-formed XHTML: {exc}"


@_recent
def xhtml_problem(div: str) -> str | None:
    """The xhtml datatype: well-formed XML whose root is a <div> in the XHTML namespace."""
    root = _parse(div)
    if isinstance(root, str):
        return root
    if root.tag != XHTML + "div":
        return "the root must be a <div> in the XHTML namespace (http://www.w3.org/1999/xhtml)"
    return None


@_recent
def html_problems(div: str) -> tuple[str, ...]:
    """Every txt-1 problem of well-formed narrative XHTML (the xhtml format is checked apart)."""
    root = _parse(div)
    if isinstance(root, str) or xhtml_problem(div) is not None:
        return ()  # not xhtml at all: reported once, by the xhtml format rule
    problems: list[str] = []
    for el in root.iter():
        tag = el.tag if isinstance(el.tag, str) else ""
        if not tag.startswith(XHTML):
            problems.append(f"element <{tag}> is not in the XHTML namespace")
            continue
        name = tag[len(XHTML) :]
        if name not in ALLOWED_ELEMENTS:
            problems.append(f"element <{name}> is not allowed in a narrative")
        for attr, value in el.attrib.items():
            aname = _attr_name(attr)
            if aname.lower().startswith("on"):
                problems.append(f"event attribute {aname} on <{name}> is not allowed")
            elif aname not in ALLOWED_ATTRIBUTES:
                problems.append(f"attribute {aname} on <{name}> is not allowed")
            elif aname in ("href", "src") and value.strip().lower().startswith(("javascript:", "vbscript:")):
                problems.append(f"{aname} on <{name}> must not run script")
            elif name == "img" and aname == "src" and not value.strip().startswith(("#", "data:")):
                # An external image would be fetched by every viewer that renders the narrative.
                problems.append(f"<img> must show a contained image (#id) or data: URI, not {value.strip()[:60]!r}")
    return tuple(dict.fromkeys(problems))


@_recent
def has_content(div: str) -> bool:
    """txt-2: some non-whitespace text, or an image."""
    root = _parse(div)
    if isinstance(root, str):
        return bool(re.sub(r"<[^>]*>", "", div).strip())
    if "".join(root.itertext()).strip():
        return True
    return any(isinstance(el.tag, str) and el.tag == XHTML + "img" for el in root.iter())
