"""Coding.system values that are web pages, not code system URIs.

A Coding.system is the URI of a code system (FHIR Coding.system: "the identification of the code
system that defines the meaning of the symbol in the code"). Payloads often carry the address of
the page that lists the codes instead, above all the DICOM part 16 chapter pages, which are the
canonicals of the DICOM *value sets* (fhir.dicom), not of a code system. A receiver matching on the
system then finds nothing. The URI to use is named where it is known.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from validator import rule_ids as R
from validator.dicom.registry import DCM
from validator.rule_ids import implements

# An http(s) URL whose path ends in a document: a page (.html, .htm) or a file (.pdf, .doc, .docx).
_DOCUMENT = re.compile(r"https?://[^\s#?]+\.(?:html?|pdf|docx?)(?:[?#]\S*)?", re.IGNORECASE)
_DICOM = r"https?://dicom\.nema\.org/medical/dicom/[^/]+/output/[a-z]+/"
# (page pattern, the code system URI to use instead, why)
_KNOWN = (
    (re.compile(_DICOM + r"part16/", re.IGNORECASE), DCM,
     "DICOM codes (PS3.16) have the code system http://dicom.nema.org/resources/ontology/DCM"),
    (re.compile(_DICOM + r"part0[46]/", re.IGNORECASE), "urn:ietf:rfc:3986",
     "a DICOM UID is coded as urn:ietf:rfc:3986 with the code urn:oid:<UID>"),
    (re.compile(r"https?://(?:[a-z]+\.)?loinc\.org/", re.IGNORECASE), "http://loinc.org", "LOINC's URI is http://loinc.org"),
    (re.compile(r"https?://(?:[a-z]+\.)?snomed\.(?:org|info)/", re.IGNORECASE), "http://snomed.info/sct",
     "SNOMED CT's URI is http://snomed.info/sct"),
)  # fmt: skip


# A text in which no value ends like a document address holds no such Coding.system: checked on
# the source text at C speed, so that a resource is walked for this rule only when it may be.
_DOCUMENT_END = re.compile(r"\.(?:html?|pdf|docx?)\b", re.IGNORECASE)
# A \u escape of an ASCII character could spell such an ending differently ("\u002ehtml"); the
# escapes of other characters (an accented name, written by json.dumps as "R\u00e9f") cannot.
_ASCII_ESCAPE = re.compile(r"\\u00[0-7]")
_CANDIDATE = re.compile(r"\.[hHpPdD][tTdDoO][mMfFcC]")


def may_hold_pages(text: str | None) -> bool:
    """Whether a source text may hold a document address (always, when the text is not known or
    escapes ASCII characters, which could spell the address differently)."""
    if text is None:
        return True
    if "\\u00" in text and _ASCII_ESCAPE.search(text) is not None:
        return True
    # A dot and the first three letters of an ending in any case, as classes (a literal first
    # character lets the engine skip ahead; IGNORECASE made it try every position); then the exact
    # pattern from there.
    hit = _CANDIDATE.search(text)
    return hit is not None and _DOCUMENT_END.search(text, hit.start()) is not None


def page_advice(system: str) -> str | None:
    """What to say about a Coding.system that is a document address, or None when it is not one."""
    if not _DOCUMENT.fullmatch(system):
        return None
    for pattern, uri, why in _KNOWN:
        if pattern.match(system):
            return f"use the code system URI {uri} ({why})"
    return "use the code system's URI (its canonical), not the address of a page that lists its codes"


@implements(R.CODE_SYSTEM_PAGE)
def web_page_systems(resource: dict) -> Iterator[tuple[tuple, str]]:
    """(pointer of the Coding, message) for every coded value whose system is a document address.
    Iterative: the depth of a payload cannot drive recursion."""
    stack: list[tuple[object, tuple]] = [(resource, ())]
    while stack:
        node, ptr = stack.pop()
        if isinstance(node, dict):
            system = node.get("system")
            if type(system) is str and "code" in node and (advice := page_advice(system)) is not None:
                yield ptr, f"system {system!r} is a web page, not a code system: {advice}"
            stack.extend((v, (*ptr, k)) for k, v in node.items() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend((v, (*ptr, i)) for i, v in enumerate(node) if isinstance(v, (dict, list)))
