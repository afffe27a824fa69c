"""Source positions of a JSON text: where a JSON pointer (a tuple of keys and indices) is written.

The first few findings of a resource are placed by walking the text along their pointer only
(pointer_walk.py): most resources have one or two (an information note), and a walk skips most
of the text. Past that many, the full index below is built, by one scan of the text. The scan costs a few
regular-expression matches per token, never per character: a string body is skipped by one
possessive match (which keeps no backtracking state, so a 30 MB string costs nothing extra), and
the index is a handful of flat integer arrays, 17 bytes per JSON value, with nothing else
kept per character. Keys are not stored: they are read back from the text when a lookup passes
through an object, and an object with many members gets a name table on its first lookup.
Line numbers come from a newline count per 4 KiB block, so no table of line starts is kept.
"""

from __future__ import annotations

import json
import re
from array import array
from bisect import bisect_right

from validator.fhir.pointer_walk import NotJson, PointerWalk

Pointer = tuple[str | int, ...]

# A JSON string, with possessive repeats: the engine does not record a state per character.
STRING = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.S)
_TOKEN = re.compile(r'[ \t\r\n]*+(?:("[^"\\]*+(?:\\.[^"\\]*+)*+")|([{}\[\],:])|([^ \t\r\n{}\[\],:"]++))', re.S)

_SCALAR, _OBJECT, _ARRAY = 0, 1, 2
# Objects with more members than this get a name -> members table when first looked into,
# so placing a finding on each of 100,000 members stays linear.
_NAME_TABLE_FROM = 16
_BLOCK = 1 << 12  # characters per line-count checkpoint: what placing one finding may scan
# Lookups answered by walking along the pointer before the full index is built. A walk passes
# over at most the whole text once per pointer step, at the C speed of json's scanner, so a few cost
# less than the full scan (which matches every token); many of them would cost more.
TARGETED_LOOKUPS = 8


class PositionIndex:
    """Maps JSON pointers (tuples of keys and indices) to 1-based (line, column).

    For an object property the position is that of its key; for an array item, that of the item.
    A repeated key is found at its last occurrence (the value judged), or at its second with
    duplicate=True (the repetition).
    `line_offset` shifts lines for text that is one line of a larger file (NDJSON);
    `targeted_lookups` is how many lookups walk along their pointer before the full index is built
    (tests set it to compare the two); `unique_keys` says the text's parser refused repeated keys
    (jiter's trees), which lets the walk stop at the first member of a name (see PointerWalk)."""

    _start: array
    _kind: array
    _first: array
    _count: array
    _children: array
    _last_newline: array
    # What the full index and the line counts set, on the class until they do: most texts (a
    # resource with one or two notes) are placed by a walk or two and never need them.
    _built = False
    tokens = 0  # tokens scanned to build the index (tests count work with it)
    _names: dict[int, dict[str, list[int]]]  # set by _build
    _newlines_before: array | None = None  # see _checkpoints, which sets _last_newline
    _line_count = 0
    _flat: bool | None = None  # whether the text has no newline, once asked
    # The line last placed and the offset where it starts: the snippet asked for next (lines())
    # is of that line, whose neighbours are then found from it rather than counted from the start.
    _placed_line: tuple[int, int] = (0, 0)

    def __init__(self, text: str, line_offset: int = 0, targeted_lookups: int = TARGETED_LOOKUPS,
                 unique_keys: bool = False) -> None:  # fmt: skip
        self._text = text
        self._line_offset = line_offset
        self._targeted_left = targeted_lookups
        self.walk = PointerWalk(text, unique_keys)  # its `steps` count the work of targeted lookups
        # The index's arrays are made by _build: most texts (a resource with one or two notes)
        # never need them, and an NDJSON line is placed in a few microseconds.

    def _new_arrays(self) -> None:
        # Per value, in the order values start: where it is written (its key for an object
        # member), its kind, and its children as a slice of _children. Values are fewer than
        # characters, so 4-byte numbers hold them but in texts of 2 GiB and more.
        wide = "i" if len(self._text) < 2**31 else "q"
        self._start = array(wide)
        self._kind = array("b")
        self._first = array(wide)
        self._count = array(wide)
        self._children = array(wide)

    # -- building ----------------------------------------------------------------------------------
    def _new(self, start: int) -> int:
        self._start.append(start)
        self._kind.append(_SCALAR)
        self._first.append(0)
        self._count.append(0)
        return len(self._start) - 1

    def _build(self) -> None:
        self._built = True
        self._names = {}
        self._new_arrays()
        text, end = self._text, len(self._text)
        # Each open container: its value number, whether it is an object, its children so far.
        stack: list[tuple[int, bool, list[int]]] = []
        expecting_key = False
        member = -1  # the object member whose key was read last: its value comes next
        pos = 0
        while pos < end:
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                break
            self.tokens += 1
            pos = m.end()
            punct = m.group(2)
            if punct is None or punct == "{" or punct == "[":
                # Offsets only: group(1) would copy the string out of the text.
                start = m.start(1) if m.start(1) >= 0 else (m.start(2) if punct else m.start(3))
                if stack and stack[-1][1] and expecting_key:
                    member = self._new(start)
                    stack[-1][2].append(member)
                    expecting_key = False
                    continue
                if stack and stack[-1][1]:
                    value = member
                elif stack:
                    value = self._new(start)
                    stack[-1][2].append(value)
                elif not self._start:
                    value = self._new(start)
                else:
                    break  # text after the document: nothing to index
                if punct == "{" or punct == "[":
                    self._kind[value] = _OBJECT if punct == "{" else _ARRAY
                    stack.append((value, punct == "{", []))
                    expecting_key = punct == "{"
            elif punct == "}" or punct == "]":
                if stack:
                    value, _, children = stack.pop()
                    self._first[value] = len(self._children)
                    self._count[value] = len(children)
                    self._children.extend(children)
                expecting_key = False
            elif punct == "," and stack and stack[-1][1]:
                expecting_key = True

    # -- looking up ---------------------------------------------------------------------------------
    def _key(self, value: int) -> str:
        """The key of an object member, read back from the text."""
        m = STRING.match(self._text, self._start[value])
        raw = m.group() if m else '""'
        return raw[1:-1] if "\\" not in raw else json.loads(raw)

    def _members(self, obj: int, key: str) -> list[int]:
        first, count = self._first[obj], self._count[obj]
        if count <= _NAME_TABLE_FROM:
            return [c for c in self._children[first : first + count] if self._key(c) == key]
        table = self._names.get(obj)
        if table is None:
            table = {}
            for c in self._children[first : first + count]:
                table.setdefault(self._key(c), []).append(c)
            self._names[obj] = table
        return table.get(key, [])

    def _matches(self, value: int, pointer: Pointer, depth: int, out: list[int], wanted: int,
                 last: bool = False) -> None:  # fmt: skip
        """The values at `pointer` below `value`, in document order (a repeated key can make
        several; with last, from the last occurrence back), until `wanted` are found."""
        if depth == len(pointer):
            out.append(value)
            return
        step, kind = pointer[depth], self._kind[value]
        if kind == _OBJECT and isinstance(step, str):
            members = self._members(value, step)
            for member in reversed(members) if last else members:
                self._matches(member, pointer, depth + 1, out, wanted, last)
                if len(out) >= wanted:
                    return
        elif kind == _ARRAY and isinstance(step, int) and 0 <= step < self._count[value]:
            self._matches(self._children[self._first[value] + step], pointer, depth + 1, out, wanted, last)

    @property
    def unique_keys(self) -> bool:
        """Whether the text is known to repeat no key in any object (its parser refused them)."""
        return self.walk.unique_keys

    @unique_keys.setter
    def unique_keys(self, value: bool) -> None:
        # Set by whoever knows the parser (the pipeline, from ResourceInput.unique_keys); only the
        # walk uses it: the full index answers the same either way.
        self.walk.unique_keys = value

    @property
    def root_only(self) -> frozenset[str]:
        """Names of members the tree has at its root only (see PointerWalk.root_only)."""
        return self.walk.root_only

    @root_only.setter
    def root_only(self, names: frozenset[str]) -> None:
        # Set by the pipeline for a resource the native gate passed; only the walk uses it.
        self.walk.root_only = names

    @property
    def text(self) -> str:
        """The source text the positions are in."""
        return self._text

    def locate(self, pointer: Pointer, duplicate: bool = False) -> tuple[int, int] | None:
        """Position of `pointer`, or of its nearest existing ancestor (for a missing element).
        With duplicate=True, the position of the repeated occurrence of a key, if any."""
        if not self._built and self._targeted_left > 0:
            self._targeted_left -= 1
            try:
                offset = self.walk.find(tuple(pointer), duplicate)
            except NotJson:
                self._targeted_left = 0  # not the JSON expected: the full index decides
            else:
                if offset is None:
                    return None
                flat = self._flat
                if flat is None:
                    flat = self._flat = "\n" not in self._text
                # One line (an NDJSON line, a minified file): no newline to count.
                return (1 + self._line_offset, offset + 1) if flat else self._line_col(offset)
        if not self._built:
            self._build()
        if not self._start:
            return None
        ptr = tuple(pointer)
        found: list[int] = []
        if duplicate and ptr and isinstance(ptr[-1], str):
            self._matches(0, ptr, 0, found, 2)
            if len(found) == 2:
                return self._line_col(self._start[found[1]])
        while True:
            found.clear()
            # The last occurrence of a repeated key is the value the parse keeps and the rules
            # judge, so its position (and its children's) is the one reported.
            self._matches(0, ptr, 0, found, 1, last=True)
            if found:
                return self._line_col(self._start[found[0]])
            if not ptr:
                return None
            ptr = ptr[:-1]

    # -- lines --------------------------------------------------------------------------------------
    def _checkpoints(self) -> tuple[array, array]:
        """Per _BLOCK-th character: the newlines before it, and the offset of the last of them."""
        if self._newlines_before is None:
            text, counts, last, seen, latest = self._text, array("q", [0]), array("q", [-1]), 0, -1
            if len(text) <= _BLOCK and "\n" not in text:  # an NDJSON line, a minified resource
                self._newlines_before, self._last_newline, self._line_count = counts, last, 1
                return counts, last
            for block in range(_BLOCK, len(text) + 1, _BLOCK):
                seen += text.count("\n", block - _BLOCK, block)
                found = text.rfind("\n", block - _BLOCK, block)
                latest = found if found >= 0 else latest
                counts.append(seen)
                last.append(latest)
            self._newlines_before, self._last_newline = counts, last
            self._line_count = seen + text.count("\n", (len(counts) - 1) * _BLOCK) + 1
        return self._newlines_before, self._last_newline

    def _line_col(self, offset: int) -> tuple[int, int]:
        if self._flat is None:
            self._flat = "\n" not in self._text
        if self._flat:  # one line (an NDJSON line, a minified file): no newline to count
            return 1 + self._line_offset, offset + 1
        text = self._text
        if self._newlines_before is None and len(text) <= 2 * _BLOCK:
            # A small text (a pretty-printed resource): counting up to the offset costs less than
            # the checkpoints, which count all of it.
            line = text.count("\n", 0, offset) + 1
            start = text.rfind("\n", 0, offset) + 1
        else:
            counts, last = self._checkpoints()
            block = offset // _BLOCK
            line = counts[block] + text.count("\n", block * _BLOCK, offset) + 1
            newline = text.rfind("\n", block * _BLOCK, offset)
            start = (newline if newline >= 0 else last[block]) + 1
        self._placed_line = (line, start)
        return line + self._line_offset, offset - start + 1

    def _line_start(self, line: int) -> int:
        """Offset of the first character of a 1-based line of the text (which must exist)."""
        if line == 1:
            return 0  # the text's start (an NDJSON line's only line): nothing to count
        counts, last = self._checkpoints()
        block = bisect_right(counts, line - 1) - 1
        pos = last[block] + 1
        for _ in range(line - 1 - counts[block]):
            pos = self._text.index("\n", max(pos, block * _BLOCK)) + 1
        return pos

    def lines(self, line: int, column: int, radius: int = 2, width: int = 160) -> tuple[tuple[int, str], ...]:
        """The source lines around (line, column), each cut to `width` characters around the column
        when longer (an NDJSON line or a minified file is one very long line)."""
        flat = self._flat
        if flat is None:
            flat = self._flat = "\n" not in self._text
        local = line - self._line_offset
        if flat and local == 1:
            text = self._text
            if len(text) > (column if column > 1 else 1) + 2 * width + 2:  # _flat_line's usual case
                cut = column - width // 2
                return ((line, text[:width] + "..." if cut <= 0 else f"...{text[cut : cut + width]}..."),)
            return ((line, self._flat_line(column, width)),)
        placed, start = self._placed_line
        if placed != local or placed < 1:
            self._checkpoints()
            first, last = max(1, local - radius), min(self._line_count, local + radius)
            starts = [self._line_start(n) for n in range(first, last + 1)]
        else:
            # The line just placed (the usual call, after locate()): its neighbours start after the
            # newlines next to it, found in a few searches instead of counting lines from the start.
            text, starts = self._text, [start]
            for _ in range(min(radius, local - 1)):
                starts.append(text.rfind("\n", 0, starts[-1] - 1) + 1)
            starts.reverse()
            first = local - len(starts) + 1
            for _ in range(radius):  # a line follows as long as a newline ends the one before
                newline = text.find("\n", starts[-1])
                if newline < 0:
                    break
                starts.append(newline + 1)
        return tuple(self._line_text(n + self._line_offset, start, n == local, column, width)
                     for n, start in enumerate(starts, first))  # fmt: skip

    def _line_text(self, line: int, start: int, here: bool, column: int, width: int) -> tuple[int, str]:
        """A line of lines(), which starts at `start`; `here`: the line of the finding."""
        # Only the part of a line that is shown is copied, and its end is looked for only as
        # far as the cut can reach: a minified file is one long line with every finding on it.
        # The line of the finding has no newline before its column.
        limit = start + (max(column, 1) if here else 0) + 2 * width + 2
        end = self._text.find("\n", start + max(column - 1, 0) if here else start, limit)
        if end < 0 and limit >= len(self._text):
            end = len(self._text)
        if end >= 0:
            while end > start and self._text[end - 1] == "\r":
                end -= 1
        length = end - start if end >= 0 else limit - start  # at least, when the end is further
        if length <= width:
            text = self._text[start : start + length]
        else:
            cut = max(0, min(column - width // 2, length - width)) if here else 0
            text = self._text[start + cut : start + cut + width]
            text = ("..." if cut else "") + text + ("..." if cut + width < length or end < 0 else "")
        return line, text

    def _flat_line(self, column: int, width: int) -> str:
        """lines()' text for the only line of a text with no newline (an NDJSON line, a minified
        file), without counting lines: the same cut, from the text's length. As there, trailing
        carriage returns are left out only when the text ends within reach of the cut."""
        text = self._text
        length = len(text)
        if length > (column if column > 1 else 1) + 2 * width + 2:
            # The cut ends well before the text does (below), so it is column - width // 2 unless
            # that is before the start, and it is followed by "...".
            cut = column - width // 2
            return text[:width] + "..." if cut <= 0 else f"...{text[cut : cut + width]}..."
        if length <= max(column, 1) + 2 * width + 2:
            while length and text[length - 1] == "\r":
                length -= 1
            if length <= width:
                return text[:length]
        # Past that reach lines() assumes the line goes on (it does not look for its end): its cut
        # and its closing "..." are the same as those from the whole length.
        cut = max(0, min(column - width // 2, length - width))
        return ("..." if cut else "") + text[cut : cut + width] + ("..." if cut + width < length else "")
