"""Bundled value sets and code look-ups: offline and deterministic, no terminology server.

A value set's codes are listed in its pack, defined by a grammar (media types), or read from
the DICOM tables of the pydicom package (context groups, the SOP Class registry); the last are
read on first use only, so a run that never checks such a code never loads them.
"""

from __future__ import annotations

import re

# RFC 6838 media type (type/subtype) with optional RFC 2045 parameters: the grammar of BCP 13,
# which the mimetypes value set includes in full.
_TOKEN = r"[A-Za-z0-9!#$&^_.+-]+"
_GRAMMARS = {
    "mime-type": re.compile(rf"{_TOKEN}/{_TOKEN}(?:\s*;\s*{_TOKEN}=(?:{_TOKEN}|\"[^\"]*\"))*"),
}


def _pydicom_codes(source: str) -> set[str]:
    from validator.dicom import registry

    if source == "sop-classes":
        return {"urn:oid:" + uid for uid in registry.sop_classes()}
    kind, _, number = source.partition(":")
    if kind == "cid":
        return set(registry.cid_codes(int(number)))
    raise ValueError(f"unknown pydicom table {source!r}")


class ValueSet:
    __slots__ = ("_codes", "_codings", "_lazy", "grammar", "source", "title", "url")

    def __init__(self, url: str, title: str, source: str, codings: set[tuple[str | None, str]],
                 lazy: tuple[tuple[str | None, str], ...] = (), grammar: re.Pattern | None = None) -> None:  # fmt: skip
        self.url = url
        self.title = title
        self.source = source
        self.grammar = grammar
        self._codings = codings
        self._lazy = lazy  # (system, pydicom table) pairs not read yet
        self._codes: frozenset[str] | None = None

    @classmethod
    def from_pack(cls, entry: dict) -> ValueSet:
        codings: set[tuple[str | None, str]] = set()
        lazy = []
        for inc in entry.get("include") or []:
            system = inc.get("system")
            if "pydicom" in inc:
                lazy.append((system, inc["pydicom"]))
            for code in inc.get("codes") or inc.get("concepts") or {}:
                codings.add((system, str(code)))
        grammar = _GRAMMARS[entry["grammar"]] if "grammar" in entry else None
        return cls(entry["url"], entry["title"], entry["source"], codings, tuple(lazy), grammar)

    @property
    def codings(self) -> set[tuple[str | None, str]]:
        if self._lazy:
            for system, table in self._lazy:
                self._codings.update((system, code) for code in _pydicom_codes(table))
            self._lazy = ()
        return self._codings

    @property
    def codes(self) -> frozenset[str]:
        if self._codes is None:
            self._codes = frozenset(c for _, c in self.codings)
        return self._codes

    def has_code(self, code: str) -> bool:
        """Membership of a bare `code` (the system is implied by the element)."""
        if self.grammar is not None:
            return self.grammar.fullmatch(code) is not None
        return code in self.codes

    def has_coding(self, system: object, code: object) -> bool:
        if not isinstance(code, str) or not (system is None or isinstance(system, str)):
            return False  # a malformed system or code is the type rule's finding
        if self.grammar is not None:
            return self.grammar.fullmatch(code) is not None
        codings = self.codings
        return (system, code) in codings or (None, code) in codings

    def describe(self, limit: int = 12) -> str:
        if self.grammar is not None:
            return "any media type written type/subtype (BCP 13)"
        codes = sorted(self.codes)
        shown = ", ".join(codes[:limit])
        return shown + (f", ... ({len(codes)} codes)" if len(codes) > limit else "")


def canonical(url: str) -> str:
    """A value set canonical without its |version suffix."""
    return url.split("|", 1)[0]
