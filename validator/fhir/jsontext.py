"""JSON text as FHIR needs it: duplicate keys kept visible, decimals exact, positions on demand.

Parsing uses the C-accelerated `json` decoder (fast); source positions are computed only when a
resource has issues to report, by one linear scan of its text (`PositionIndex`).
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from decimal import Decimal

Pointer = tuple[str | int, ...]


def items_of(value: object) -> list:
    """The items of a JSON property as FHIRPath sees them: an array's items, a single value as one
    item, nothing for null or absent. Malformed payloads reach the invariants too, so code that
    iterates a property uses this rather than trusting it to be an array."""
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


class DupDict(dict):
    """A JSON object that had repeated keys. The last value wins (as in most parsers), and the
    repeated names are kept so the engine can report them (FHIR JSON forbids duplicates)."""

    __slots__ = ("duplicate_keys",)

    def __init__(self, pairs: list[tuple[str, object]]) -> None:
        super().__init__(pairs)
        seen: set[str] = set()
        dups: list[str] = []
        for key, _ in pairs:
            if key in seen and key not in dups:
                dups.append(key)
            seen.add(key)
        self.duplicate_keys = tuple(dups)


def _object_hook(pairs: list[tuple[str, object]]) -> dict:
    obj = dict(pairs)
    return obj if len(obj) == len(pairs) else DupDict(pairs)


def _reject_constant(name: str) -> object:
    # NaN, Infinity and -Infinity are accepted by Python's json but are not JSON (RFC 8259).
    raise ValueError(f"{name} is not a valid JSON number")


_DECODER = json.JSONDecoder(object_pairs_hook=_object_hook, parse_float=Decimal, parse_constant=_reject_constant)


class JsonSyntaxError(ValueError):
    def __init__(self, message: str, line: int | None, column: int | None, too_deep: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.too_deep = too_deep


_PLAIN = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)
# A key is a string followed by a colon, with or without whitespace between. Inside a string a
# quote is escaped, so string content can only add to the count ('\\":'), never hide a key.
_KEY_END_SPACED = re.compile(r'"[ \t\r\n]+:')


def key_tokens(text: str) -> int:
    """At least the number of object keys written in the text (exactly that in practice)."""
    # Those written '":' are counted without a regex match (and a string) per key; then the
    # few with whitespace before the colon.
    return text.count('":') + len(_KEY_END_SPACED.findall(text))


def parse(text: str, plain: bool = False) -> object:
    """Parse one JSON document; raise JsonSyntaxError with a position on failure.

    plain=True skips keeping repeated keys (DupDict), the one costly part of the precise parse:
    the tree is then exact only if it has as many keys as the text (see key_tokens), which the
    caller must check (the base rules count the keys they visit) before trusting it."""
    try:
        return (_PLAIN if plain else _DECODER).decode(text)
    except json.JSONDecodeError as exc:
        if not text.strip():  # the decoder would only say "Expecting value"
            raise JsonSyntaxError("the input is empty (no JSON value at all)", None, None) from None
        raise JsonSyntaxError(exc.msg, exc.lineno, exc.colno) from None
    except RecursionError:
        raise JsonSyntaxError("the JSON nests too deep to parse", None, None, too_deep=True) from None
    except ValueError as exc:
        raise JsonSyntaxError(_readable(exc), None, None) from None


_INT_DIGITS = re.compile(r"\(([0-9]+) digits\).*value has ([0-9]+) digits")


def _readable(exc: ValueError) -> str:
    """A number beyond Python's integer conversion limit, said without Python's internals."""
    m = _INT_DIGITS.search(str(exc))
    if m is None:
        return str(exc)
    return f"a number of {m[2]} digits is too large to read (at most {m[1]})"


_TOKEN = re.compile(r'[ \t\r\n]*(?:("(?:[^"\\]|\\.)*")|([{}\[\],:])|([^ \t\r\n{}\[\],:"]+))', re.S)


class PositionIndex:
    """Maps JSON pointers (tuples of keys and indices) to 1-based (line, column).

    For an object property the position is that of its key; for an array item, that of the item.
    `line_offset` shifts lines for text that is one line of a larger file (NDJSON)."""

    def __init__(self, text: str, line_offset: int = 0) -> None:
        self._text = text
        self._line_offset = line_offset
        self._positions: dict[Pointer, int] | None = None
        self._duplicates: dict[Pointer, int] = {}
        self._line_starts: list[int] | None = None

    def _build(self) -> dict[Pointer, int]:
        positions: dict[Pointer, int] = {}
        dups = self._duplicates
        # Each frame: [is_object, pointer, pending_key, array_index]
        stack: list[list] = []
        expecting_key = False
        pos = 0
        text = self._text
        end = len(text)
        first = True
        match = _TOKEN.match
        while pos < end:
            m = match(text, pos)
            if m is None:
                break
            pos = m.end()
            kind = m.lastindex  # the one group that matched: 1 a string, 2 punctuation, 3 anything else
            start = m.start(kind)
            punct = m.group(2) if kind == 2 else None
            if first:
                positions[()] = start
                first = False
            if punct == "{" or punct == "[" or punct is None:
                is_key = bool(stack) and stack[-1][0] and expecting_key
                if is_key:
                    if kind == 1:
                        token = m.group(1)
                        # Nothing escaped: the key is the text between the quotes, as json reads it.
                        key = json.loads(token) if "\\" in token else token[1:-1]
                    else:
                        key = m.group(3)
                    frame = stack[-1]
                    frame[2] = key
                    ptr = (*frame[1], key)
                    if ptr in positions:
                        dups.setdefault(ptr, start)
                    # The last occurrence of a repeated key is the value the parse keeps and the
                    # rules judge, so its position (and its children's below) is the one reported.
                    positions[ptr] = start
                    expecting_key = False
                    continue
                if stack and not stack[-1][0]:
                    frame = stack[-1]
                    ptr = (*frame[1], frame[3])
                    positions[ptr] = start
                elif stack:
                    ptr = (*stack[-1][1], stack[-1][2])
                else:
                    ptr = ()
                if punct == "{":
                    stack.append([True, ptr, None, 0])
                    expecting_key = True
                elif punct == "[":
                    stack.append([False, ptr, None, 0])
            elif punct in "}]":
                if stack:
                    stack.pop()
                expecting_key = False
            elif punct == "," and stack:
                if stack[-1][0]:
                    expecting_key = True
                else:
                    stack[-1][3] += 1
        return positions

    def _line_col(self, offset: int) -> tuple[int, int]:
        if self._line_starts is None:
            self._line_starts = [0] + [m.end() for m in re.finditer("\n", self._text)]
        line = bisect_right(self._line_starts, offset)
        return line + self._line_offset, offset - self._line_starts[line - 1] + 1

    def lines(self, line: int, column: int, radius: int = 2, width: int = 160) -> tuple[tuple[int, str], ...]:
        """The source lines around (line, column), each cut to `width` characters around the column
        when longer (an NDJSON line or a minified file is one very long line)."""
        if self._line_starts is None:
            self._line_starts = [0] + [m.end() for m in re.finditer("\n", self._text)]
        starts = self._line_starts
        local = line - self._line_offset
        out = []
        for n in range(max(1, local - radius), min(len(starts), local + radius) + 1):
            end = starts[n] - 1 if n < len(starts) else len(self._text)
            text = self._text[starts[n - 1] : end].rstrip("\r")
            if len(text) > width:
                start = max(0, min(column - width // 2, len(text) - width)) if n == local else 0
                text = (
                    ("..." if start else "")
                    + text[start : start + width]
                    + ("..." if start + width < len(text) else "")
                )
            out.append((n + self._line_offset, text))
        return tuple(out)

    def locate(self, pointer: Pointer, duplicate: bool = False) -> tuple[int, int] | None:
        """Position of `pointer`, or of its nearest existing ancestor (for a missing element).
        With duplicate=True, the position of the repeated occurrence of a key, if any."""
        if self._positions is None:
            self._positions = self._build()
        if duplicate and pointer in self._duplicates:
            return self._line_col(self._duplicates[pointer])
        ptr = tuple(pointer)
        while True:
            offset = self._positions.get(ptr)
            if offset is not None:
                return self._line_col(offset)
            if not ptr:
                return None
            ptr = ptr[:-1]
