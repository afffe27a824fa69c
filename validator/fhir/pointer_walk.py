"""Where one JSON pointer is written, found by walking the text along the pointer only.

A resource with one or two findings (an information note is enough) does not need a position
for every value: walking from the root along the pointer, reading the keys of the objects on the
way and skipping every other value, costs a few regular-expression matches per sibling passed and
one per bracket inside a skipped container (a run of strings, numbers, commas and colons between
two brackets is one match). Nothing is built or kept. The answers are those of the full index
(positions.PositionIndex), which a differential test checks: an object member is at its key, an
array item and the root at their first character, and a repeated key is searched in every
occurrence, in document order.

The text must be a JSON document that parsed; anything else raises NotJson and the caller falls
back to the full index.
"""

from __future__ import annotations

import json
import re

Pointer = tuple[str | int, ...]

_WS = re.compile(r"[ \t\r\n]*+")
_STRING = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.S)
_SCALAR = re.compile(r'[^ \t\r\n{}\[\],:"]++')
_STRING_BODY = r'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
# Everything up to the next bracket that is not inside a string: strings are matched whole, so a
# bracket in a string is passed over.
_TO_BRACKET = re.compile(rf'(?:[^"\[\]{{}}]++|{_STRING_BODY})*+', re.S)


def _nested(levels: int) -> str:
    """A container holding containers up to `levels` deep, as one pattern. The text is JSON that
    parsed, so brackets pair up and one class serves both kinds. Possessive throughout: a deeper
    container makes the match fail at once, without backtracking."""
    inner = ""
    for _ in range(levels):
        inner = rf'[\[{{](?:[^"\[\]{{}}]++|{_STRING_BODY}{"|" + inner if inner else ""})*+[\]}}]'
    return inner


# Skipping a sibling (a series with its instances) in one match rather than a match per bracket.
_CONTAINER = re.compile(_nested(8), re.S)
_VALUE = rf'(?:{_STRING_BODY}|[^ \t\r\n{{}}\[\],:"]++|{_nested(8)})'
# One object member or one array item, with the whitespace around it and the separator after it,
# in one match (a match per member rather than six); a value nested deeper than the pattern does
# not match, and the member is read piece by piece instead.
_MEMBER = re.compile(
    rf'[ \t\r\n]*+(?P<key>{_STRING_BODY})[ \t\r\n]*+:[ \t\r\n]*+(?P<value>{_VALUE})[ \t\r\n]*+(?P<sep>[,}}])', re.S
)
_ITEM = re.compile(rf'[ \t\r\n]*+{_VALUE}[ \t\r\n]*+(?P<sep>[,\]])', re.S)


class NotJson(ValueError):
    """The text is not the JSON it should be at this point (the caller uses the full index)."""


class PointerWalk:
    """Finds pointers in one JSON text; `steps` counts the matches made (tests count work)."""

    def __init__(self, text: str) -> None:
        self._text = text
        self.steps = 0

    def matches(self, pointer: Pointer, wanted: int, last: bool = False) -> list[int]:
        """Offsets where `pointer` is written, in document order (with last, from the last
        occurrence of a repeated key back), until `wanted` are found (a repeated key can make
        several)."""
        root = self._skip_ws(0)
        if root >= len(self._text):
            return []
        out: list[int] = []
        self._walk(root, root, pointer, 0, out, wanted, last)
        return out

    def _walk(self, value: int, place: int, pointer: Pointer, depth: int, out: list[int], wanted: int,
              last: bool) -> None:  # fmt: skip
        if depth == len(pointer):
            out.append(place)
            return
        step, opener = pointer[depth], self._text[value]
        if opener == "{" and isinstance(step, str):
            members = self._members(value, step)
            for key_at, value_at in reversed(members) if last else members:
                self._walk(value_at, key_at, pointer, depth + 1, out, wanted, last)
                if len(out) >= wanted:
                    return
        elif opener == "[" and isinstance(step, int) and step >= 0:
            item = self._item(value, step)
            if item is not None:
                self._walk(item, item, pointer, depth + 1, out, wanted, last)

    def _members(self, obj: int, key: str) -> list[tuple[int, int]]:
        """(key offset, value offset) of each member named `key` of the object at `obj`."""
        text, found = self._text, []
        quoted = f'"{key}"'
        pos = self._skip_ws(obj + 1)
        if self._char(pos) == "}":
            return found
        while True:
            whole = _MEMBER.match(text, pos)
            if whole is not None:
                self.steps += 1
                raw = whole.group("key")
                if raw == quoted or ("\\" in raw and json.loads(raw) == key):
                    found.append((whole.start("key"), whole.start("value")))
                if whole.group("sep") == "}":
                    return found
                pos = self._skip_ws(whole.end())
                continue
            m = _STRING.match(text, pos)
            if m is None:
                raise NotJson(f"no key at {pos}")
            self.steps += 1
            raw = m.group()
            value = self._skip_ws(m.end())
            if self._char(value) != ":":
                raise NotJson(f"no colon at {value}")
            value = self._skip_ws(value + 1)
            if raw == quoted or ("\\" in raw and json.loads(raw) == key):
                found.append((pos, value))
            pos = self._skip_ws(self._end_of(value))
            sep = self._char(pos)
            if sep == "}":
                return found
            if sep != ",":
                raise NotJson(f"no comma at {pos}")
            pos = self._skip_ws(pos + 1)

    def _item(self, array: int, index: int) -> int | None:
        """Offset of item `index` of the array at `array`, None when it has fewer items."""
        pos = self._skip_ws(array + 1)
        if self._char(pos) == "]":
            return None
        for _ in range(index):
            whole = _ITEM.match(self._text, pos)
            if whole is not None:
                self.steps += 1
                if whole.group("sep") == "]":
                    return None
                pos = self._skip_ws(whole.end())
                continue
            pos = self._skip_ws(self._end_of(pos))
            sep = self._char(pos)
            if sep == "]":
                return None
            if sep != ",":
                raise NotJson(f"no comma at {pos}")
            pos = self._skip_ws(pos + 1)
        return pos

    def _end_of(self, value: int) -> int:
        """The offset just after the value starting at `value`."""
        text = self._text
        first = self._char(value)
        self.steps += 1
        if first == '"':
            m = _STRING.match(text, value)
            if m is None:
                raise NotJson(f"unterminated string at {value}")
            return m.end()
        if first not in "{[":
            m = _SCALAR.match(text, value)
            if m is None:
                raise NotJson(f"no value at {value}")
            return m.end()
        m = _CONTAINER.match(text, value)
        if m is not None:
            return m.end()
        # Nested deeper than the pattern: count brackets; what lies between two is one match.
        depth, pos = 0, value
        while True:
            bracket = self._char(pos)
            depth += 1 if bracket in "{[" else -1
            pos += 1
            if depth == 0:
                return pos
            pos = _TO_BRACKET.match(text, pos).end()  # type: ignore[union-attr]  # matches empty too
            self.steps += 1

    def _skip_ws(self, pos: int) -> int:
        return _WS.match(self._text, pos).end()  # type: ignore[union-attr]  # matches empty too

    def _char(self, pos: int) -> str:
        if pos >= len(self._text):
            raise NotJson("the text ends early")
        return self._text[pos]
