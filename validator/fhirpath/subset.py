"""A compiler of the plain FHIRPath that most invariants use into Python closures.

fhirpathpy evaluates an expression through generic node wrappers and costs tens of microseconds
per call; an invariant like dom-2 runs on every resource and cod-1 on every Coding. This module
compiles the subset those invariants are written in (member paths, exists/empty/not/count/where/
hasValue/startsWith, = != < <= > >=, and/or/xor/implies, string and integer literals, $this,
%resource, %rootResource) straight to closures over the JSON.

It stays on the safe side twice:
- an expression with anything outside the subset is not compiled (fhirpathpy evaluates it);
- at run time, a payload shape where plain JSON navigation could differ from the FHIRPath model
  (a primitive's `_x` extensions, mixed-type comparisons, a non-boolean operand, a choice element)
  raises Unsupported, and that one evaluation goes to fhirpathpy.
tests/test_fhirpath_subset.py compares every compiled invariant with fhirpathpy on the fixture
corpus and on generated nodes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

Collection = list
# (input collection, $this, %resource, %rootResource) -> output collection
Compiled = Callable[[Collection, object, dict, dict], Collection]


class Unsupported(Exception):
    """This payload needs the full FHIRPath model: evaluate the expression with fhirpathpy."""


class _NotInSubset(Exception):
    pass


_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<str>'(?:[^'\\]|\\.)*')|(?P<bt>`[^`]*`)|(?P<var>[$%][A-Za-z]+)"
    r"|(?P<id>[A-Za-z_][A-Za-z0-9_]*)|(?P<op><=|>=|!=|[=<>().,]))"
)
_KEYWORDS = {"and", "or", "xor", "implies"}
_ESCAPES = {"'": "'", "\\": "\\", "/": "/", '"': '"', "`": "`", "n": "\n", "t": "\t", "r": "\r", "f": "\f"}


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None:
            raise _NotInSubset(f"cannot read {text[pos : pos + 10]!r}")
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "id" and value in _KEYWORDS:
            kind = "kw"
        out.append((kind, value))
        pos = m.end()
    out.append(("end", ""))
    return out


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            if nxt not in _ESCAPES:
                raise _NotInSubset("unicode escapes are not in the subset")
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


# -- runtime helpers -----------------------------------------------------------------------------
def _boolean(c: Collection) -> bool | None:
    if not c:
        return None
    if len(c) == 1 and type(c[0]) is bool:
        return c[0]
    raise Unsupported("an operand of a boolean operator is not a single boolean")


def _category(v: object) -> str:
    if type(v) is bool:
        return "bool"
    if type(v) is str:
        return "str"
    if type(v) is int or type(v) is Decimal:
        return "num"
    raise Unsupported("comparison of a non-primitive value")


def _member(name: str, choice: bool) -> Compiled:
    companion = "_" + name

    def member(c: Collection, _this: object, _res: dict, _root: dict) -> Collection:
        out: Collection = []
        for item in c:
            if type(item) is not dict:
                if isinstance(item, (dict, list)):
                    raise Unsupported("unexpected JSON shape")
                continue  # a primitive has no children
            if companion in item:
                raise Unsupported(f"{name} has primitive extensions")
            if choice and any(k.startswith(name) for k in item):
                # valueString for value[x] (or a bare 'value', which FHIRPath does not see)
                raise Unsupported(f"{name} is a choice element")
            v = item.get(name)
            if v is None:
                continue
            if type(v) is list:
                for x in v:
                    if x is None or type(x) is list:
                        raise Unsupported("null or nested array")
                    out.append(x)
            else:
                out.append(v)
        return out

    return member


def _chain(first: Compiled, second: Compiled) -> Compiled:
    def chained(c: Collection, this: object, res: dict, root: dict) -> Collection:
        return second(first(c, this, res, root), this, res, root)

    return chained


def _function(name: str, args: list[Compiled]) -> Compiled:
    if name in ("exists", "empty", "not", "count", "hasValue") and args:
        raise _NotInSubset(f"{name}() with arguments")
    if name == "exists":
        return lambda c, _t, _r, _o: [bool(c)]
    if name == "empty":
        return lambda c, _t, _r, _o: [not c]
    if name == "count":
        return lambda c, _t, _r, _o: [len(c)]
    if name == "hasValue":
        return lambda c, _t, _r, _o: [len(c) == 1 and not isinstance(c[0], (dict, list))]
    if name == "not":

        def not_(c: Collection, _t: object, _r: dict, _o: dict) -> Collection:
            b = _boolean(c)
            return [] if b is None else [not b]

        return not_
    if name == "where" and len(args) == 1:
        criteria = args[0]

        def where(c: Collection, _t: object, res: dict, root: dict) -> Collection:
            return [item for item in c if _boolean(criteria([item], item, res, root)) is True]

        return where
    if name == "startsWith" and len(args) == 1:
        prefix_of = args[0]

        def starts_with(c: Collection, this: object, res: dict, root: dict) -> Collection:
            if not c:
                return []
            prefix = prefix_of([this], this, res, root)
            if len(c) != 1 or type(c[0]) is not str or len(prefix) != 1 or type(prefix[0]) is not str:
                raise Unsupported("startsWith() on a non-string")
            return [c[0].startswith(prefix[0])]

        return starts_with
    raise _NotInSubset(f"function {name}()")


def _equality(op: str, left: Compiled, right: Compiled) -> Compiled:
    def equal(c: Collection, this: object, res: dict, root: dict) -> Collection:
        a, b = left(c, this, res, root), right(c, this, res, root)
        if not a or not b:
            return []
        if len(a) != len(b):
            same = False
        else:
            same = True
            for x, y in zip(a, b, strict=True):
                if _category(x) != _category(y):
                    raise Unsupported("equality across types")
                if x != y:
                    same = False
        return [same if op == "=" else not same]

    return equal


_ORDER = {"<": lambda x, y: x < y, "<=": lambda x, y: x <= y, ">": lambda x, y: x > y, ">=": lambda x, y: x >= y}


def _comparison(op: str, left: Compiled, right: Compiled) -> Compiled:
    compare = _ORDER[op]

    def ordered(c: Collection, this: object, res: dict, root: dict) -> Collection:
        a, b = left(c, this, res, root), right(c, this, res, root)
        if not a or not b:
            return []
        if len(a) != 1 or len(b) != 1 or _category(a[0]) != "num" or _category(b[0]) != "num":
            # Strings may be dates or times, which FHIRPath compares as such: not in the subset.
            raise Unsupported("ordering of anything but numbers")
        return [compare(a[0], b[0])]

    return ordered


def _logic(op: str, left: Compiled, right: Compiled) -> Compiled:
    def logic(c: Collection, this: object, res: dict, root: dict) -> Collection:
        a = _boolean(left(c, this, res, root))
        if op == "and" and a is False:
            return [False]
        if op == "or" and a is True:
            return [True]
        if op == "implies" and a is False:
            return [True]
        b = _boolean(right(c, this, res, root))
        if op == "and":
            if b is False:
                return [False]
            return [True] if a is True and b is True else []
        if op == "or":
            if b is True:
                return [True]
            return [False] if a is False and b is False else []
        if op == "xor":
            return [] if a is None or b is None else [a != b]
        # implies with a true or empty left side
        if a is True:
            return [] if b is None else [b]
        return [True] if b is True else []

    return logic


# -- parser --------------------------------------------------------------------------------------
# Binary operators of the subset by precedence, loosest first, with what builds each.
_LEVELS: list[tuple[frozenset[str], Callable[[str, Compiled, Compiled], Compiled]]] = [
    (frozenset({"implies"}), _logic),
    (frozenset({"or", "xor"}), _logic),
    (frozenset({"and"}), _logic),
    (frozenset({"=", "!="}), _equality),
    (frozenset(_ORDER), _comparison),
]


class _Parser:
    def __init__(self, text: str, choice_names: frozenset[str]) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.choice_names = choice_names
        # What the expression reads of its focus: member names (over-approximated: members read
        # inside function arguments count too), or the whole node ($this, a variable, a function
        # applied to the focus, a choice element).
        self.reads: set[str] = set()
        self.whole_node = False

    def peek(self) -> tuple[str, str]:
        return self.toks[self.i]

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.toks[self.i]
        if value is not None and tok[1] != value:
            raise _NotInSubset(f"expected {value!r}, found {tok[1]!r}")
        self.i += 1
        return tok

    def parse(self) -> Compiled:
        fn = self.expression()
        if self.peek()[0] != "end":
            raise _NotInSubset(f"unexpected {self.peek()[1]!r}")
        return fn

    def expression(self, level: int = 0) -> Compiled:
        """Left-associative binary operators by precedence, loosest first (FHIRPath section 6)."""
        if level == len(_LEVELS):
            return self.term()
        operators, build = _LEVELS[level]
        fn = self.expression(level + 1)
        while self.peek()[1] in operators and self.peek()[0] in ("kw", "op"):
            op = self.take()[1]
            fn = build(op, fn, self.expression(level + 1))
        return fn

    def term(self) -> Compiled:
        kind, value = self.peek()
        if kind == "op" and value == "(":
            self.take()
            fn = self.expression()
            self.take(")")
        elif kind == "str":
            self.take()
            text = _unquote(value)
            fn = lambda _c, _t, _r, _o: [text]  # noqa: E731 - a constant
        elif kind == "num":
            self.take()
            if "." in value:
                raise _NotInSubset("decimal literals")
            number = int(value)
            fn = lambda _c, _t, _r, _o: [number]  # noqa: E731
        elif kind == "var":
            self.take()
            self.whole_node = True
            fn = self.variable(value)
        else:
            fn = self.invocation(first=True)
        while self.peek() == ("op", "."):
            self.take()
            fn = _chain(fn, self.invocation())
        return fn

    @staticmethod
    def variable(name: str) -> Compiled:
        if name == "$this":
            return lambda _c, this, _r, _o: [this]
        if name == "%resource":
            return lambda _c, _t, res, _o: [res]
        if name == "%rootResource":
            return lambda _c, _t, _r, root: [root]
        raise _NotInSubset(f"variable {name}")

    def invocation(self, first: bool = False) -> Compiled:
        """A member or function; `first`: at the start of a term, so applied to the focus (or,
        inside a function's argument, to what the function iterates over)."""
        kind, value = self.take()
        if kind == "bt":
            value, kind = value[1:-1], "id"
        if kind != "id":
            raise _NotInSubset(f"unexpected {value!r}")
        if self.peek() == ("op", "("):
            self.take()
            args: list[Compiled] = []
            while self.peek() != ("op", ")"):
                args.append(self.expression())
                if self.peek() == ("op", ","):
                    self.take()
            self.take(")")
            self.whole_node = self.whole_node or first
            return _function(value, args)
        if value[:1].isupper():
            raise _NotInSubset("type names")
        if first:
            self.reads.add(value)
            self.whole_node = self.whole_node or value in self.choice_names
        return _member(value, value in self.choice_names)


def compile_subset(expression: str, choice_names: frozenset[str] = frozenset()) -> Compiled | None:
    """The expression as a closure, or None when it uses anything outside the subset.
    `choice_names`: names of choice elements ([x]) in the model, which plain JSON navigation
    cannot follow; an absent one means "ask fhirpathpy" at run time."""
    try:
        parser = _Parser(expression, choice_names)
        fn = parser.parse()
    except (_NotInSubset, IndexError):
        return None
    if parser.whole_node or not parser.reads:
        return fn
    return _guarded(fn, tuple(sorted(parser.reads)))


def _guarded(fn: Compiled, reads: tuple[str, ...]) -> Compiled:
    """The expression, answered without evaluation on an object that has none of the members it
    reads: it then gives what it gives on {} (dom-2 on a resource without contained resources)."""
    try:
        constant = fn([{}], {}, {}, {})
    except Unsupported:
        return fn
    names = reads + tuple("_" + r for r in reads)

    def guarded(c: Collection, this: object, res: dict, root: dict) -> Collection:
        if len(c) == 1 and type(c[0]) is dict:
            node = c[0]
            for name in names:
                if name in node:
                    return fn(c, this, res, root)
            return list(constant)
        return fn(c, this, res, root)

    return guarded


def passes(fn: Compiled, node: object, resource: dict, root: dict) -> bool:
    """Whether the invariant holds: only a single true passes (empty fails), as for fhirpathpy."""
    result = fn([node], node, resource, root)
    if not result:
        return False
    if len(result) == 1 and type(result[0]) is bool:
        return result[0]
    raise Unsupported("the invariant did not give a boolean")
