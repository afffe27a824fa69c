"""Bundled value sets and code look-ups: offline and deterministic, no terminology server."""

from __future__ import annotations

import re
from dataclasses import dataclass

# RFC 6838 media type (type/subtype) with optional RFC 2045 parameters: the grammar of BCP 13,
# which the mimetypes value set includes in full.
_TOKEN = r"[A-Za-z0-9!#$&^_.+-]+"
_GRAMMARS = {
    "mime-type": re.compile(rf"{_TOKEN}/{_TOKEN}(?:\s*;\s*{_TOKEN}=(?:{_TOKEN}|\"[^\"]*\"))*"),
}


@dataclass(frozen=True, slots=True)
class ValueSet:
    url: str
    title: str
    source: str
    codings: frozenset[tuple[str | None, str]]  # (system or None, code)
    codes: frozenset[str]
    grammar: re.Pattern | None = None

    @classmethod
    def from_pack(cls, entry: dict) -> ValueSet:
        codings: set[tuple[str | None, str]] = set()
        for inc in entry.get("include") or []:
            system = inc.get("system")
            for code in inc.get("codes") or inc.get("concepts") or {}:
                codings.add((system, str(code)))
        return cls(
            url=entry["url"],
            title=entry["title"],
            source=entry["source"],
            codings=frozenset(codings),
            codes=frozenset(c for _, c in codings),
            grammar=_GRAMMARS[entry["grammar"]] if "grammar" in entry else None,
        )

    def has_code(self, code: str) -> bool:
        """Membership of a bare `code` (the system is implied by the element)."""
        if self.grammar is not None:
            return self.grammar.fullmatch(code) is not None
        return code in self.codes

    def has_coding(self, system: str | None, code: str | None) -> bool:
        if code is None:
            return False
        if self.grammar is not None:
            return self.grammar.fullmatch(code) is not None
        return (system, code) in self.codings or (None, code) in self.codings

    def describe(self, limit: int = 12) -> str:
        if self.grammar is not None:
            return "any media type written type/subtype (BCP 13)"
        codes = sorted(self.codes)
        shown = ", ".join(codes[:limit])
        return shown + (f", ... ({len(codes)} codes)" if len(codes) > limit else "")


def canonical(url: str) -> str:
    """A value set canonical without its |version suffix."""
    return url.split("|", 1)[0]
