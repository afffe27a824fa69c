"""JSON text as FHIR needs it: duplicate keys kept visible, decimals exact, positions on demand.

Parsing tries jiter first (`parse_exact`): one pass that refuses repeated keys itself and keeps
decimals exact, so a tree it returns is exact as it stands. Whatever it refuses (a repeated key, a
syntax error, nesting deeper than its limit, a lone surrogate escape, ...) goes through the
C-accelerated `json` decoder (`parse`), whose messages, positions and repeated-key reporting are
the reference; jiter never decides a result, it only skips work. Source positions are computed only
when a resource has issues to report: by walking its text along each pointer for the first few,
by one linear scan of it past that (`PositionIndex`, positions.py).
"""

from __future__ import annotations

import gc
import json
import os
import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import TypeVar

# Where findings are placed; importers of this module find the index here too.
from validator.fhir.positions import Pointer as Pointer
from validator.fhir.positions import PositionIndex as PositionIndex

try:
    import jiter as _jiter
except ImportError:  # an optional speed-up: the json path gives the same results
    _jiter = None
try:  # writes a tree in C: how parse_checked proves it has no repeated key (optional too)
    from orjson import dumps as _dumps
except ImportError:  # pragma: no cover - orjson is a dependency
    _dumps = None

# Whether parse_exact uses jiter. Tests set it to False to compare results with the json path
# alone; IMAGING_VALIDATOR_NO_JITER=1 does the same for a whole run (and its --jobs workers).
JITER: bool = _jiter is not None and not os.environ.get("IMAGING_VALIDATOR_NO_JITER")


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
        self.duplicate_keys = repeated(key for key, _ in pairs)


def repeated(keys: Iterable[str]) -> tuple[str, ...]:
    """The keys written more than once, each once, in the order they first repeat. Sets, not
    lists, so an object of 100,000 repeated keys costs 100,000 lookups, not their square."""
    seen: set[str] = set()
    found: dict[str, None] = {}
    for key in keys:
        if key in seen:
            found[key] = None
        seen.add(key)
    return tuple(found)


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
# Counted as '":' plus the keys spaced from their colon (rare), so no list of matches is built.
_SPACED_KEY_END = re.compile(r'"[ \t\r\n]++:')


def key_tokens(text: str) -> int:
    """At least the number of object keys written in the text (exactly that in practice)."""
    return text.count('":') + sum(1 for _ in _SPACED_KEY_END.finditer(text))


def parse(text: str, plain: bool = False) -> object:
    """Parse one JSON document; raise JsonSyntaxError with a position on failure.

    plain=True skips keeping repeated keys (DupDict), the one costly part of the precise parse:
    the tree is then exact only if it has as many keys as the text (see key_tokens), which the
    caller must check (the base rules count the keys they visit) before trusting it."""
    decode = (_PLAIN if plain else _DECODER).decode
    try:
        return decode(text) if len(text) < _PAUSE_GC_FROM else _gc_paused(decode, text)
    except json.JSONDecodeError as exc:
        if not text.strip():  # the decoder would only say "Expecting value"
            raise JsonSyntaxError("the input is empty (no JSON value at all)", None, None) from None
        raise JsonSyntaxError(exc.msg, exc.lineno, exc.colno) from None
    except RecursionError:
        raise JsonSyntaxError("the JSON nests too deep to parse", None, None, too_deep=True) from None
    except ValueError as exc:
        raise JsonSyntaxError(_readable(exc), None, None) from None
    except ArithmeticError:  # decimal.InvalidOperation: an exponent beyond what Decimal can hold
        raise JsonSyntaxError("a number's exponent is too large to read", None, None) from None


# A parse makes one object per JSON value and no reference cycle, so the cyclic garbage collector,
# which runs as objects accumulate, only scans the growing tree again and again: a 62 MB study
# parsed in 1.4 s with it, 0.5 s without (either parser). Paused for texts this large (for an
# NDJSON line of a few KB it makes no difference; for 1.5 MB, 10%).
_PAUSE_GC_FROM = 1 << 20


_T = TypeVar("_T", str, bytes)


def _gc_paused(fn: Callable[[_T], object], text: _T) -> object:
    """fn(text) with the cyclic collector paused (unless it was off already: then left off). The
    pause is process-wide: cycles another thread makes meanwhile are collected after it, not lost."""
    if not gc.isenabled():
        return fn(text)
    gc.disable()
    try:
        return fn(text)
    finally:
        gc.enable()


_INT_DIGITS = re.compile(r"\(([0-9]+) digits\).*value has ([0-9]+) digits")


def _readable(exc: ValueError) -> str:
    """A number beyond Python's integer conversion limit, said without Python's internals."""
    m = _INT_DIGITS.search(str(exc))
    if m is None:
        return str(exc)
    return f"a number of {m[2]} digits is too large to read (at most {m[1]})"


class _Refused:
    """What parse_exact returns for a text it leaves to the json path (JSON null is None)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "REFUSED"


REFUSED = _Refused()


def parse_exact(data: bytes) -> object:
    """The tree of a UTF-8 JSON text (already checked to be UTF-8) without any repeated key, parsed
    by jiter in one pass; REFUSED when jiter is off or unavailable or refuses the text, for any
    reason: the caller then parses it with `parse`, which reports exactly as without jiter.

    A tree returned here equals the precise parse's (`parse(text)`): same values and types
    (decimals as Decimal with their written digits, so 1.0 stays a decimal; integers as int), same
    key order, and no DupDict since no object repeats a key. tests/test_parse_jiter.py checks
    that jiter accepts nothing the json path would reject or read otherwise."""
    return parse_checked(data)[0]


def parse_checked(data: bytes) -> tuple[object, bool | None]:
    """parse_exact's tree, and whether its numbers are all ints of at most 64 bits (True), not
    all (False), or not known (None): the native gate's choice of schema (see native_gate)."""
    if not JITER:
        return REFUSED, None
    try:
        if len(data) < _PAUSE_GC_FROM:
            return _jiter_checked(data)
        return _gc_paused(_jiter_checked, data)  # type: ignore[return-value]
    except Exception:  # any refusal (ValueError, or even a defect): the json path decides
        return REFUSED, None


# A colon written as an escape, or anything starting like one. Searched by the regex engine, which
# looks for the backslash first (memchr): 1.3 us on a 3.4 KB line, where `in` took 2.4 (its skip
# table meets the digits of every UID).
_COLON_ESCAPE = re.compile(rb"\\u003").search


def _jiter_checked(data: bytes) -> tuple[object, bool | None]:
    """The tree and its numbers (parse_checked). jiter's own check for repeated keys costs a third
    of its parse; it is replaced by a proof that costs less, when it holds. orjson writes the tree
    (which also proves its numbers plain: it refuses a Decimal and an int past 64 bits). Outside
    strings a colon only ends a key, and orjson writes a string's colons as they are: so the
    written tree has as many colons as the text when no member was lost to a repeated key, and
    fewer when one was (with its colon, and any in its value), provided the text writes no colon
    as an escape (\\u003a; anything starting \\u003 is taken as one). Else jiter checks."""
    if _dumps is not None and _COLON_ESCAPE(data) is None:
        tree = _jiter.from_json(  # type: ignore[union-attr]
            data, allow_inf_nan=False, float_mode="decimal", cache_mode="keys"
        )
        try:
            written = _dumps(tree)
        except TypeError:  # a Decimal, a long int, a lone surrogate, deep nesting: not proven
            plain = False
        else:
            if written.count(b":") == data.count(b":"):
                return tree, True
            plain = True
        return _jiter_parse(data), plain
    return _jiter_parse(data), None


def _jiter_parse(data: bytes) -> object:
    # cache_mode="keys": the few dozen FHIR element names recur in every resource, values rarely
    # do (measured: "keys" 26.6 us, "all" 28.8 us per 3 KB ImagingStudy line).
    return _jiter.from_json(  # type: ignore[union-attr]
        data, allow_inf_nan=False, catch_duplicate_keys=True, float_mode="decimal", cache_mode="keys"
    )
