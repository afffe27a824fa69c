"""Where one JSON pointer is written, found by walking the text along the pointer only.

A resource with one or two findings (an information note is enough) does not need a position
for every value: walking from the root along the pointer, reading the keys of the objects on the
way and skipping every other value, finds it. Keys are read and values skipped by the C scanner of
the `json` module (`scan_once`, `scanstring`, one simple regular expression per key): it builds
each value it skips and throws it away, still several times cheaper than matching the value with
nested regular expressions in Python's engine. Searches for a key's text (`str.rfind`, faster
still) spare most of the reading:

* A key written plainly (`"procedureCode"` followed by a colon) can be looked for in the text.
  Its last such occurrence bounds the members of that name: once a scan of an object passes it,
  no later member can have the name; when it occurs nowhere, no object has such a member.
* At the root, that last occurrence is tried first: it is the root's member when the root's
  members on its shorter side, before or after it, decode as an object of their own (the
  brackets between balance), and the other side is not read. On an NDJSON study that skips the
  series, the bulk of the text, for a key before them (identifier) and for one after them
  (procedureCode).
* Below the root, a small object is decoded whole: it has the member or not, and its key is found
  by str.find when written once in it, with no escape in it.

These hold only when no key that means the same is written with an escape (`"proc\\u0065dureCode"`):
the keys written with one are listed once per text, from the first backslash after the place
that matters; when unsure, the members are read one by one.

The answers are those of the full index (positions.PositionIndex), which differential tests
check: an object member is at its key, an array item and the root at their first character, a
repeated key is searched in every occurrence, the last first, and a missing pointer is placed at
its nearest existing ancestor (in the same walk).

Where the caller knows that no object below the root can have a member of some name (`root_only`:
a resource the native gate passed, whose schema has such names at its root only, and which
contains no resource), the last plain occurrence of such a key is the root's member, with no proof.

A text whose parser refused repeated keys (`unique_keys`: jiter's) has at most one member of a
name per object, so the first one found is the one: an object's member is the first place after
its brace where the key is written plainly, when the members before that place decode as an
object of their own (the brackets between balance: it is at the object's level, not deeper nor
after it). Nothing after it is read, and no escaped key is looked for but when the key is
written nowhere after the brace. The root keeps the search from its shorter side (above), less
the checks for a repetition, and starts from the end for a key last found near the end of a text
(procedureCode, note: a hint kept across texts, which only orders the candidates). The members
on a key's shorter side are decoded by jiter when it is installed (faster than json's scanner,
and no looser: both only tell whether they are an object's members), and members of scalars and
plain strings (an identifier's "use" before its "type") are matched by one regular expression.
Anything unsure goes to the walk above.

The text must be a JSON document that parsed (with `json`); anything else raises NotJson and the
caller falls back to the full index.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from json.decoder import scanstring

Pointer = tuple[str | int, ...]

_WS = re.compile(r"[ \t\r\n]*+")
_WS_CHARS = frozenset(" \t\r\n")
_COLON = re.compile(r"[ \t\r\n]*+:")
# From an object's opening brace, or from the end of a member's value: the next key up to its
# value, when the key has no escape (then it is read piece by piece), or the object's end. One
# match per member.
_FIRST_KEY = re.compile(r'[ \t\r\n]*+(?:"([^"\\]*+)"[ \t\r\n]*+:[ \t\r\n]*+|(\}))')
_NEXT_KEY = re.compile(r'[ \t\r\n]*+(?:,[ \t\r\n]*+"([^"\\]*+)"[ \t\r\n]*+:[ \t\r\n]*+|(\}))')
# The scanner the text was parsed with, with plain dicts: skipping a value builds it, and a dict
# is the cheapest thing to build.
_SCAN = json.JSONDecoder().scan_once
# The same, giving an object as its (name, value) pairs: repeated names are seen.
_SCAN_PAIRS = json.JSONDecoder(object_pairs_hook=list).scan_once
# The end of every key written with an escape: its last escape, the rest of it (no backslash and
# so no quote), the closing quote and the colon. It can also match elsewhere (a string value
# ending in an escaped backslash, followed by a key starting with a colon), which only costs a
# look at that string.
_ESCAPED_KEY = re.compile(r'\\.[^"\\]*+"[ \t\r\n]*+:', re.S)
# A key that is looked for literally: no quote, backslash or control character in it (so its
# text is `"key"`), and a first character that cannot follow a closing quote in JSON (so a
# quote before it that is not escaped opens the string).
_LITERAL_KEY = re.compile(r'[^"\\\x00-\x1f \t\r\n,:\]}][^"\\\x00-\x1f]*')
# Occurrences of a key's text that are not a key (a string value equal to it) passed over before
# giving up the literal search for that key; and strings holding an escaped key listed before
# giving up literal searches altogether.
_MAX_PROBES = 32
_MAX_ESCAPED_KEYS = 64
# From this many characters of text, the members of an object below the root are bounded by the
# last occurrence of the key too: a member after the one wanted can be large (a series with its
# instances after the modality wanted), and the search costs little next to the text.
_LARGE = 1 << 16
# At most this many characters before or after a key are decoded to tell whether it is the root's.
_SIDE_DECODED = 1 << 16
# The members of an object before a key, when they are all scalars or strings without an escape
# (an identifier's "use" before its "type"): the key is at the object's level without decoding
# them. Matched from the brace to the comma before the key.
_FLAT_MEMBERS = re.compile(
    r'(?:[ \t\r\n]*+"[^"\\]*+"[ \t\r\n]*+:[ \t\r\n]*+(?:"[^"\\]*+"|[^"\\\[\]{},: \t\r\n]++)[ \t\r\n]*+,)++'
)
# Further occurrences of a root key's text looked at from the root on (the first can be deeper:
# a narrative's "status" before the root's) before searching from the end.
_FORWARD_PROBES = 3
_PROBED_NEAR_ROOT = 1 << 12
# Root keys last found near the end of a text (procedureCode, note), which the next text's search
# starts from: searching from the root first would pass over most of the text in vain. A hint only
# (any order of candidates finds the same member); bounded, as keys come from the findings.
_FROM_END: dict[str, bool] = {}
_FROM_END_KEPT = 1024

try:  # jiter reads a part of the text 1.5-2 times faster than json's scanner (it is optional)
    from jiter import from_json as _jiter_from_json
except ImportError:  # pragma: no cover - jiter is a dependency
    _jiter_from_json = None


def _scanned_whole(part: str) -> bool:
    """Whether `part` (which starts with a brace) is one JSON object and blanks, by json's scanner."""
    try:
        end = _SCAN(part, 0)[1]
    except (ValueError, StopIteration, RecursionError):
        return False
    return end == len(part) or _WS.match(part, end).end() == len(part)  # type: ignore[union-attr]


def _parsed_whole(part: str) -> bool:
    """_scanned_whole by jiter, which refuses anything after the object but blanks. Only keys go
    to its string cache, as the parser's do; its other options are left as they are, which costs
    less than reading them (and NaN is read, as json's scanner reads it)."""
    try:
        _jiter_from_json(part.encode(), cache_mode="keys")  # type: ignore[misc]
    except (ValueError, RecursionError):  # UnicodeEncodeError (a lone surrogate) is a ValueError too
        return False
    return True


# Whether a part of the text, made into an object of its own, decodes as one: how a key is proven
# to be at its object's level (tests set the scanner's, which is the one used without jiter).
_decodes_whole = _scanned_whole if _jiter_from_json is None else _parsed_whole


@lru_cache(maxsize=4096)
def _quoted(key: str) -> str | None:
    """How `key` is written plainly, if it can be looked for literally."""
    return f'"{key}"' if _LITERAL_KEY.fullmatch(key) else None


class NotJson(ValueError):
    """The text is not the JSON it should be at this point (the caller uses the full index)."""


class PointerWalk:
    """Finds pointers in one JSON text; `steps` counts the values and keys read (tests count
    work with it)."""

    # The state of the searches for keys written with an escape, on the class until a search
    # sets it: most texts are placed by a walk or two that never need it (see _list_escaped).
    _escaped: list[tuple[int, str]]  # set by the first listing (_escaped_from is None until then)
    _escaped_from: int | None = None
    _escaped_probes = 0
    _escaped_unsure = False

    def __init__(self, text: str, unique_keys: bool = False) -> None:
        self._text = text
        self.steps = 0
        self.unique_keys = unique_keys  # no object repeats a key (see the module's notes)
        # Names no object below the root has (with unique_keys): the last place such a key is
        # written plainly is the root's member, without decoding around it. Set by whoever knows
        # the tree's shape (the pipeline, for a resource the native gate passed).
        self.root_only: frozenset[str] = frozenset()
        # Per key name: the offset of its last plain occurrence as a key, -1 when none, None when
        # it cannot be searched for literally.
        self._last_plain: dict[str, int | None] = {}
        # Per key name: the root's member found by _unique_root, () when it has none (the next
        # finding under the same member starts there).
        self._roots: dict[str, tuple[int, int] | tuple[()]] = {}

    # -- the searches -------------------------------------------------------------------------------
    def find(self, pointer: Pointer, duplicate: bool = False) -> int | None:
        """Offset where `pointer` is written (its last occurrence, for a repeated key), or that of
        its nearest existing ancestor; with duplicate, that of the second occurrence of a repeated
        last key when there is one. None for an empty text."""
        unique = self.unique_keys
        if duplicate and pointer and isinstance(pointer[-1], str) and not unique:  # else no repetition
            found = self.matches(pointer, 2)
            if len(found) == 2:
                return found[1]
        text = self._text
        root = 0 if text[:1] not in _WS_CHARS else self._skip_ws(0)  # ('' is not in it)
        if root >= len(text):
            return None
        try:
            if unique:
                found_at = self._unique(root, pointer)
                if found_at is not None:
                    return found_at
            return self._deepest(root, root, pointer, 0)[1]
        except (IndexError, StopIteration, ValueError, RecursionError) as exc:
            raise NotJson(str(exc)) from None

    def matches(self, pointer: Pointer, wanted: int) -> list[int]:
        """Offsets where `pointer` is written, in document order, until `wanted` are found (a
        repeated key can make several)."""
        root = self._skip_ws(0)
        if root >= len(self._text):
            return []
        out: list[int] = []
        try:
            self._in_order(root, root, pointer, 0, out, wanted)
        except (IndexError, StopIteration, ValueError, RecursionError) as exc:
            raise NotJson(str(exc)) from None
        return out

    def _in_order(self, value: int, place: int, pointer: Pointer, depth: int, out: list[int], wanted: int) -> None:
        if depth == len(pointer):
            out.append(place)
            return
        step, opener = pointer[depth], self._text[value]
        if opener == "{" and isinstance(step, str):
            for key_at, value_at in self._named(value, step, self._bound(step, value)):
                self._in_order(value_at, key_at, pointer, depth + 1, out, wanted)
                if len(out) >= wanted:
                    return
        elif opener == "[" and isinstance(step, int) and step >= 0:
            item = self._item(value, step)
            if item is not None:
                self._in_order(item, item, pointer, depth + 1, out, wanted)

    # -- texts without repeated keys ----------------------------------------------------------------
    def _unique(self, root: int, pointer: Pointer) -> int | None:
        """find() in a text with no repeated key: each prefix of the pointer is written once at
        most, so the walk goes down and stops at the first step missing. None when unsure (the
        general walk decides)."""
        if not pointer:
            return root
        text = self._text
        step = pointer[0]
        if text[root] == "{" and isinstance(step, str):
            got = self._roots.get(step)
            if got is None:
                got = self._unique_root(root, step)
                if got is None:
                    return None
                self._roots[step] = got
            if not got:
                return root  # no such member: the root is the nearest ancestor
            place, value = got
        elif text[root] == "[" and isinstance(step, int) and step >= 0:
            item = self._item(root, step)
            if item is None:
                return root
            place = value = item
        else:
            return root
        for step in pointer[1:]:
            opener = text[value]
            if opener == "{" and isinstance(step, str):
                got = self._first_member(value, step)
                if got is None:
                    # The key is written first deeper in this object (a "system" inside its
                    # "type" before its own): its members are read, not the walk started over.
                    members = self._named(value, step, self._bound(step, value))
                    got = members[0] if members else ()
                if not got:
                    return place  # no such member: its object is the nearest ancestor
                place, value = got
            elif opener == "[" and isinstance(step, int) and step >= 0:
                item = self._item(value, step)
                if item is None:
                    return place
                place = value = item
            else:
                return place
        return place

    def _unique_root(self, root: int, key: str) -> tuple[int, int] | tuple[()] | None:
        """(key offset, value offset) of the root's member `key`, () when it has none, None when
        unsure. The key's plain occurrences are tried from the side of the text where it is likely
        to be, each proven the root's by the root's members on its shorter side, before or after
        it; any order finds the same member, the only one of that name at the root's level."""
        quoted = _quoted(key)
        if quoted is None:
            return None
        if key in self.root_only:
            # Its only member in the whole tree is the root's: a key written plainly with its name
            # (a string opening there, followed by a colon) is that member's key. When none is,
            # it is written with an escape (or absent), which the searches below tell.
            last = self._last_plain_key(key)
            if last is not None and last >= root:
                return last, self._value_of_key(last + len(quoted))
        from_end = _FROM_END.get(key)
        if from_end:
            got = self._root_from_end(root, key, quoted)
            if got is not None:
                return got
        # A key in the first half of the text (identifier, status, ...) is looked for from the
        # root on, as far as the middle: the members before it are the shorter side, and the
        # search does not pass over the rest of the text backwards.
        text = self._text
        stop = min((root + len(text)) // 2, root + _SIDE_DECODED) + len(quoted)
        at = text.find(quoted, root + 1, stop)
        probe = 1
        while at >= 0:
            value = self._value_of_key(at + len(quoted))
            if value >= 0 and self._member_after_brace(root, at, False):
                if from_end:
                    _FROM_END[key] = False
                return at, value
            if probe == _FORWARD_PROBES:
                break
            probe += 1
            # Further occurrences only near the root: a failed proof can decode all of the text
            # before the key.
            at = text.find(quoted, at + 1, min(stop, root + _PROBED_NEAR_ROOT))
        # Past the middle, the last occurrence is the one tried, from the end.
        return None if from_end else self._root_from_end(root, key, quoted)

    def _root_from_end(self, root: int, key: str, quoted: str) -> tuple[int, int] | tuple[()] | None:
        """_unique_root from the key's last plain occurrence as a key."""
        text = self._text
        last = self._last_plain_key(key)
        if last is None:
            return None
        if last < root:  # written nowhere plainly as a key
            return None if self._escaped_after(key, root) else ()
        if len(text) - last <= last - root:
            # The members after it, decoded as an object of their own, end with the text when they
            # are the root's.
            if len(text) - last > _SIDE_DECODED:
                return None
            self.steps += 1
            if not _decodes_whole("{" + text[last:]):
                return None
            if not _FROM_END.get(key):
                if len(_FROM_END) >= _FROM_END_KEPT:
                    _FROM_END.clear()
                _FROM_END[key] = True
        elif last - root > _SIDE_DECODED or not self._member_after_brace(root, last, False):
            return None
        elif _FROM_END.get(key):
            _FROM_END[key] = False  # nearer the root: the search from there is the shorter
        return last, self._value_of_key(last + len(quoted))  # a plain key: its colon follows

    def _first_member(self, obj: int, key: str) -> tuple[int, int] | tuple[()] | None:
        """(key offset, value offset) of the member `key` of the object at `obj` below the root, ()
        when it has none, None when unsure: the first place after the brace where the key is
        written plainly, if the members before it decode as an object of their own."""
        quoted = _quoted(key)
        if quoted is None:
            return None
        at = self._text.find(quoted, obj + 1)
        if at < 0:  # written nowhere after the brace plainly (as a key or a value)
            return None if self._escaped_after(key, obj) else ()
        value = self._value_of_key(at + len(quoted))
        if value < 0 or not self._member_after_brace(obj, at, True):
            return None  # a string value, a key deeper or after the object: the walk decides
        return at, value

    def _value_of_key(self, pos: int) -> int:
        """Offset of the value of a key whose string ends at `pos` when a colon follows (it is a
        key, if its opening quote is not escaped), else -1: what _FIRST_KEY matches, read a
        character at a time for the usual blanks (none before the colon, one space after)."""
        text = self._text
        if text[pos] != ":":
            pos = self._skip_ws(pos)
            if text[pos] != ":":
                return -1
        pos += 1
        if text[pos] in _WS_CHARS:
            pos += 1
            if text[pos] in _WS_CHARS:
                pos = self._skip_ws(pos)
        return pos

    def _member_after_brace(self, obj: int, at: int, flat: bool) -> bool:
        """Whether the key at `at` is a member of the object whose brace is at `obj`: the text
        between them, less its last comma, decodes as an object's members (its brackets balance,
        and its strings close) when the key is at the object's level, neither deeper nor after it.
        With `flat`, members of scalars and strings without escape (an identifier's "use" before
        its "type") are first matched, which costs less than decoding them."""
        text = self._text
        before = at - 1
        while text[before] in _WS_CHARS:
            before -= 1
        if before == obj:
            return True  # the first member
        if text[before] != ",":
            return False  # the first key of an object inside
        if flat and _FLAT_MEMBERS.fullmatch(text, obj + 1, before + 1):
            return True
        self.steps += 1
        return _decodes_whole("{" + text[obj + 1 : before] + "}")

    def _deepest(self, value: int, place: int, pointer: Pointer, depth: int) -> tuple[int, int]:
        """(depth, offset) of the deepest prefix of `pointer` found below `value` (at `place`),
        at its last occurrence: the whole pointer when it exists. Repeated keys are tried from
        the last: the first whole match is the last one; otherwise every branch is read, and of
        the deepest prefixes the one written last wins (what trying shorter and shorter
        prefixes, each at its last occurrence, finds)."""
        text, length = self._text, len(pointer)
        best = (depth, place)
        while depth < length:
            step, opener = pointer[depth], text[value]
            if opener == "[" and isinstance(step, int) and step >= 0:
                item = self._item(value, step)
                if item is None:
                    return best
                value = place = item
            elif opener == "{" and isinstance(step, str):
                if depth == 0:
                    members, best = self._root_members(value, step, pointer, best)
                    if best[0] == length:
                        return best
                elif len(text) >= _LARGE:
                    members = self._named(value, step, self._bound(step, value))
                else:
                    # Below the root of a small text, an object is decoded whole, which costs less
                    # than reading it member by member or searching the text for the key.
                    members = self._named_small(value, step)
                if members is None:
                    members = self._named(value, step, None)
                if len(members) != 1 or depth == 0:
                    for key_at, value_at in reversed(members):
                        found = self._deepest(value_at, key_at, pointer, depth + 1)
                        if found[0] == length:
                            return found
                        best = max(best, found)
                    return best
                place, value = members[0]
            else:
                return best
            depth += 1
            best = (depth, place)
        return best

    def _root_members(self, root: int, key: str, pointer: Pointer, best: tuple[int, int]
                      ) -> tuple[list[tuple[int, int]] | None, tuple[int, int]]:  # fmt: skip
        """The root's members named `key` left to try (None: all, read one by one), and the best
        place found so far (the whole pointer when the last member named `key` has it).

        The last place `key` is written plainly as a key is tried first: whether it is the root's
        member is told by decoding the root's members on its shorter side, before or after it
        (_members_before, _members_after); the other side is not read."""
        text = self._text
        last = self._last_plain_key(key)
        if last is None:
            return None, best
        if last < root:  # written nowhere plainly as a key
            return (None if self._escaped_after(key, root) else []), best
        earlier: bool | None  # whether a member before it has the name (None: not known yet)
        if len(text) - last <= last - root:
            after = self._members_after(last) if len(text) - last <= _SIDE_DECODED else None
            if after is None:  # not the root's (or too far to decode): the root's are before it
                return self._named(root, key, self._bound(key, root)), best
            if key in after:  # written with an escape after it
                return None, best
            earlier = None
        else:
            before = None
            if last - root <= _SIDE_DECODED and not self._escaped_after(key, last):
                before = self._members_before(root, last)
            if before is None:
                return self._named(root, key, self._bound(key, root)), best
            earlier = key in before
        value = _FIRST_KEY.match(text, last).end()  # type: ignore[union-attr]  # a plain key
        best = max(best, self._deepest(value, last, pointer, 1))
        if best[0] == len(pointer):
            return [], best
        if earlier is None:
            earlier = not self._only_member(key, root, last)
        return ([m for m in self._named(root, key, last) if m[0] < last] if earlier else []), best

    def _members_after(self, at: int) -> list[str] | None:
        """The names of the members after the key at `at` (itself left out) when its object is
        the root, else None: they are decoded as an object of their own, which ends where their
        object does, with the text when that is the root."""
        text = self._text
        self.steps += 1
        pairs, end = _SCAN_PAIRS("{" + text[at:], 0)
        if self._skip_ws(at + end - 1) != len(text):
            return None
        return [name for name, _ in pairs[1:]]

    def _members_before(self, root: int, at: int) -> dict[str, object] | None:
        """The root's members before the key at `at`, decoded, when it is one of them, else
        None: the text between the root's brace and the key, less its last comma, decodes as an
        object when its brackets balance, so that the key is at the root's level."""
        head = self._text[root + 1 : at].rstrip(" \t\r\n")
        if not head:
            return {}
        if head[-1] != ",":
            return None  # the first key of an object inside
        self.steps += 1
        try:
            decoded, end = _SCAN("{" + head[:-1] + "}", 0)
        except ValueError:
            return None  # brackets left open: the key is deeper
        return decoded if end == len(head) + 1 else None  # a dict: its names are what is asked

    # -- objects ------------------------------------------------------------------------------------
    def _named(self, obj: int, key: str, bound: int | None) -> list[tuple[int, int]]:
        """(key offset, value offset) of each member named `key` of the object at `obj`, in order.
        No member whose key is after `bound` has that name (see _bound)."""
        text, found, scan, read = self._text, [], _SCAN, 0
        if bound is not None and bound < obj:
            return found
        pos, member = obj + 1, _FIRST_KEY
        try:
            while True:
                m = member.match(text, pos)
                if m is None:  # a key with an escape (or no JSON)
                    got = self._member(pos, member is _FIRST_KEY)
                    if got is None:
                        return found
                    key_at, name, value = got
                elif m.lastindex == 2:
                    return found
                else:
                    name, value = m.group(1), m.end()
                    key_at = m.start(1) - 1
                if name == key:
                    found.append((key_at, value))
                if bound is not None and key_at >= bound:
                    return found  # its value is not read
                pos, member = scan(text, value)[1], _NEXT_KEY
                read += 1
        finally:
            self.steps += read

    def _named_small(self, obj: int, key: str) -> list[tuple[int, int]] | None:
        """_named, from the object decoded whole: it has a member `key` or not, and when it has,
        that member is where `"key"` is written if it is written once in the object and nothing
        in the object is escaped. None when unsure."""
        text = self._text
        self.steps += 1
        decoded, end = _SCAN(text, obj)
        if key not in decoded:
            return []
        quoted = f'"{key}"'
        at = text.find(quoted, obj, end)
        if at < 0 or text.find(quoted, at + 1, end) >= 0 or text.find("\\", obj, end) >= 0:
            return None
        colon = at + len(quoted)
        if text[colon] in _WS_CHARS:
            colon = self._skip_ws(colon)
        if text[colon] != ":":
            return None
        value = colon + 1
        if text[value] in _WS_CHARS:
            value = self._skip_ws(value)
        return [(at, value)]

    def _member(self, pos: int, first: bool) -> tuple[int, str, int] | None:
        """(key offset, decoded key, value offset) of the member after `pos` (an object's opening
        brace or a member's value), None at the object's end; read piece by piece."""
        text = self._text
        pos = self._skip_ws(pos)
        if text[pos] == "}":
            return None
        if not first:
            if text[pos] != ",":
                raise NotJson(f"no comma at {pos}")
            pos = self._skip_ws(pos + 1)
        if text[pos] != '"':
            raise NotJson(f"no key at {pos}")
        name, end = self._string(pos)
        colon = self._skip_ws(end)
        if text[colon] != ":":
            raise NotJson(f"no colon at {colon}")
        return pos, name, self._skip_ws(colon + 1)

    def _only_member(self, key: str, obj: int, last: int) -> bool:
        """Whether `key` is written as a key nowhere between `obj` and `last` (plainly or with an
        escape that could make it `key`)."""
        return self._text.rfind(f'"{key}"', obj, last) < 0 and not self._escaped_after(key, obj)

    # -- keys written plainly -----------------------------------------------------------------------
    def _bound(self, key: str, obj: int) -> int | None:
        """An offset after which no member of the object at `obj` is named `key` (before `obj`: no
        member is), or None: the last place `key` is written plainly as a key, if no key after
        there (or after `obj`) is written with an escape that could make it `key`."""
        last = self._last_plain_key(key)
        if last is None or self._escaped_after(key, max(last, obj)):
            return None
        return last

    def _last_plain_key(self, key: str) -> int | None:
        """Offset of the last occurrence of `key` written plainly as a key (a string followed by a
        colon), -1 when there is none, None when it cannot be looked for literally."""
        if key in self._last_plain:
            return self._last_plain[key]
        found: int | None = None
        quoted = _quoted(key)
        if quoted is not None:
            text = self._text
            end = len(text)
            for _ in range(_MAX_PROBES):
                at = text.rfind(quoted, 0, end)
                if at < 0:
                    found = -1
                    break
                # A quote after an odd number of backslashes is inside a string; one after an even
                # number opens a string (the key's first character cannot follow a closing quote),
                # which the key's text closes (it holds no quote or backslash).
                after = at + len(quoted)
                if (text[at - 1] != "\\" or self._backslashes_before(at) % 2 == 0) and (
                    text[after : after + 1] == ":" or _COLON.match(text, after)
                ):
                    found = at
                    break
                end = after - 1
        self._last_plain[key] = found
        return found

    def _escaped_after(self, key: str, pos: int) -> bool:
        """Whether a key written with an escape at or after `pos` could be `key` (True when unsure)."""
        first = self._text.find("\\", pos)
        if first < 0:
            return False
        if self._escaped_from is None or first < self._escaped_from:
            self._list_escaped(first)
        if self._escaped_unsure:
            return True
        return bool(self._escaped) and any(name == key and at >= pos for at, name in self._escaped)

    def _list_escaped(self, start: int) -> None:
        """Lists the keys written with an escape from `start` (a backslash) to _escaped_from."""
        text, pos, stop = self._text, start, self._escaped_from
        if stop is None:  # the first listing of this text
            stop, self._escaped = len(text), []
        while not self._escaped_unsure:
            m = _ESCAPED_KEY.search(text, pos)
            if m is None or m.start() >= stop:
                break
            self._escaped_probes += 1
            self._escaped_unsure = self._escaped_probes > _MAX_ESCAPED_KEYS
            # The backslash is in a string; the last quote before it that is not escaped opens it.
            at = m.start()
            while True:
                at = text.rfind('"', 0, at)
                if at < 0:
                    raise NotJson(f"a backslash outside a string at {m.start()}")
                if self._backslashes_before(at) % 2 == 0:
                    break
            name, end = self._string(at)
            if _COLON.match(text, end):
                self._escaped.append((at, name))
            pos = max(end, m.start() + 1)
        self._escaped_from = start

    # -- values -------------------------------------------------------------------------------------
    def _item(self, array: int, index: int) -> int | None:
        """Offset of item `index` of the array at `array`, None when it has fewer items."""
        text, scan = self._text, _SCAN
        pos = array + 1
        if text[pos] in _WS_CHARS:
            pos = self._skip_ws(pos)
        if text[pos] == "]":
            return None
        self.steps += index
        for _ in range(index):
            pos = scan(text, pos)[1]
            if text[pos] in _WS_CHARS:
                pos = self._skip_ws(pos)
            if text[pos] != ",":
                if text[pos] == "]":
                    return None
                raise NotJson(f"no comma at {pos}")
            pos += 1
            if text[pos] in _WS_CHARS:  # mostly the one space after the comma
                pos += 1
                if text[pos] in _WS_CHARS:
                    pos = self._skip_ws(pos)
        return pos

    def _string(self, quote: int) -> tuple[str, int]:
        """The decoded string opening at `quote`, and the offset after its closing quote."""
        self.steps += 1
        try:
            return scanstring(self._text, quote + 1)  # type: ignore[no-any-return]
        except ValueError as exc:
            raise NotJson(f"no string at {quote}: {exc}") from None

    def _backslashes_before(self, pos: int) -> int:
        text, n = self._text, 0
        while pos > n and text[pos - n - 1] == "\\":
            n += 1
        return n

    def _skip_ws(self, pos: int) -> int:
        return _WS.match(self._text, pos).end()  # type: ignore[union-attr]  # matches empty too
