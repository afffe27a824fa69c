"""The Python source of the base-rule checks, generated per structure of a plan (base_rules.py).

Every check is written here once, as the source that tests it, and reports through the reporter
`W` where it fails: one function per structure (`o`), one per primitive property for a single
value (`v`), one per complex property for a single object (`i`). A conformant object runs only
the tests; pointers and messages are made by the reporter, only for what it reports.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from validator.compile.plan import Binding, ElementDef, Plan, Structure
from validator.evaluate.bindings import binding_problem
from validator.evaluate.code_cache import compiled
from validator.fhir.primitives import JSON_KIND_TESTS, PrimitiveType
from validator.fhirpath.natives import ele_1 as native_ele_1

# Structures with at most this many JSON property names get their checks inline in one function,
# chosen by comparing the key; larger ones (resources, Extension with its value[x] names) look
# up a function per property in a dict.
INLINE_PROPERTIES = 16

ObjectCheck = Callable[[dict, tuple, dict], None]  # (object, pointer, resource it is in)


class CheckSource:
    """The generated checks of one plan, reporting to `reporter` (a BaseRules), counting the keys
    of the objects they visit in `keys[0]`."""

    def __init__(self, reporter: object, plan: Plan, max_depth: int, keys: list[int]) -> None:
        self.plan = plan
        invs = tuple(plan.element_invariants)
        # ele-1 (hasValue() or children().count() > id.count()) can fail only on an object whose
        # one key is id: the check is run only there, not on every element.
        self.ele_1_only = len(invs) == 1 and invs[0].native is native_ele_1
        self._numbers: dict[tuple[int, bool], int] = {}  # (id(structure), companion) -> n of o{n}
        self._consts: dict[int, str] = {}  # id(object) -> its name in the generated namespace
        self._ns: dict[str, object] = {
            "W": reporter, "MAXD": max_depth, "KEYS": keys, "DEC": Decimal, "BIND": binding_problem,
            "ELEMENT_INVS": invs,
        }  # fmt: skip

    def object_check(self, struct: Structure, companion: bool = False) -> ObjectCheck:
        """The check of an object of a structure (a companion: the id and extensions of a primitive)."""
        return self._ns[self._function(struct, companion)]  # type: ignore[return-value]

    # -- namespace -------------------------------------------------------------------------------------
    def _const(self, obj: object) -> str:
        name = self._consts.get(id(obj))
        if name is None:
            name = self._consts[id(obj)] = f"K{len(self._consts)}"
            self._ns[name] = obj
        return name

    def _function(self, struct: Structure, companion: bool = False) -> str:
        """The name of the object function of a structure; generated (compiled) on first call."""
        n = self._numbers.get((id(struct), companion))
        if n is None:
            n = self._numbers[(id(struct), companion)] = len(self._numbers)
            self._const(struct)  # keep it alive while its id names a function

            def first_call(obj: dict, ptr: tuple, resource: dict, *clean: dict, _n: int = n,
                           _s: Structure = struct) -> None:  # fmt: skip
                code = self._generate(_n, _s, companion)
                exec(compiled(code, f"<base rules: {_s.name}>"), self._ns)  # source generated here only
                self._ns[f"o{_n}"](obj, ptr, resource, *clean)  # type: ignore[operator]

            self._ns[f"o{n}"] = first_call
        return f"o{n}"

    # -- one structure ---------------------------------------------------------------------------------
    def _generate(self, n: int, struct: Structure, companion: bool) -> str:
        props = list(struct.props.items())
        inline = len(props) <= INLINE_PROPERTIES
        counter = {el: (f"c{j}" if inline else f"c[{j}]") for j, el in enumerate(struct.elements)}
        out: list[str] = []
        for i, (_key, (el, tcode)) in enumerate(props):
            if tcode in self.plan.primitives:
                out += [f"def v{n}_{i}(x, p, resource):", *_indent(self._value_checks(el, tcode, "p"), 1)]
            else:
                out += [f"def i{n}_{i}(x, p, resource):", *_indent(self._item_checks(el, tcode), 1)]
        if not inline:
            table = []
            for i, (key, (el, tcode)) in enumerate(props):
                out += [f"def p{n}_{i}(value, ptr, resource, obj):", "    n = 0",
                        *_indent(self._property(n, i, key, el, tcode, "n", False), 1), "    return n"]  # fmt: skip
                table.append(f"{key!r}: (p{n}_{i}, {struct.elements.index(el)})")
                if tcode in self.plan.primitives:
                    out += [f"def q{n}_{i}(value, ptr, resource, obj):", "    n = 0",
                            *_indent(self._orphan(n, i, key, el, "n", False), 1), "    return n"]  # fmt: skip
                    table.append(f"{'_' + key!r}: (q{n}_{i}, {struct.elements.index(el)})")
            out.append(f"P{n} = {{{', '.join(table)}}}")
        # A resource's function may be told members already judged clean (`clean`: key -> the
        # finder of their notes, native_gate.MemberVerdicts), which it counts and notes through
        # W.clean_member without walking them.
        members = not inline and struct.kind == "resource"
        out += [
            f"def o{n}(obj, ptr, resource{', clean=None' if members else ''}):",
            "    if len(ptr) >= MAXD:",
            "        W.too_deep(ptr)",
            "        return",
            "    KEYS[0] += len(obj)",
            "    if type(obj) is not dict:",
            "        W.duplicates(obj, ptr)",
            "    if not obj:",
            "        W.empty_object(ptr)",
            "        return",
        ]
        if inline:
            out.append("    " + " = ".join([*(counter[el] for el in struct.elements), "over"]) + " = 0")
            out.append("    for key, value in obj.items():")
            branches = [(f"key == {key!r}", self._property(n, i, key, el, tcode, counter[el], True))
                        for i, (key, (el, tcode)) in enumerate(props)]  # fmt: skip
            # Companions last: a conformant payload seldom has them.
            branches += [(f"key == {'_' + key!r}", self._orphan(n, i, key, el, counter[el], True))
                         for i, (key, (el, tcode)) in enumerate(props) if tcode in self.plan.primitives]  # fmt: skip
            if struct.kind == "resource":
                branches.append(("key == 'resourceType'", ["pass"]))
            for b, (test, body) in enumerate(branches):
                out += [f"        {'if' if b == 0 else 'elif'} {test}:", *_indent(body, 3)]
            unknown = f"W.unknown_key({self._const(struct)}, key, ptr)"
            out += ["        else:", "            " + unknown] if branches else ["        " + unknown]
        else:
            out += [f"    c = [0] * {len(struct.elements)}", "    for key, value in obj.items():",
                    f"        f = P{n}.get(key)", "        if f is not None:"]  # fmt: skip
            if members:
                out += ["            if clean is None or key not in clean:",
                        "                c[f[1]] += f[0](value, ptr, resource, obj)",
                        "            else:",
                        "                c[f[1]] += W.clean_member(value, clean[key])"]  # fmt: skip
            else:
                out.append("            c[f[1]] += f[0](value, ptr, resource, obj)")
            if struct.kind == "resource":
                out += ["        elif key == 'resourceType':", "            pass"]
            out += ["        else:", f"            W.unknown_key({self._const(struct)}, key, ptr)"]
        out += ["    " + line for line in self._structure_checks(struct, companion, counter, inline)]
        return "\n".join(out) + "\n"

    def _structure_checks(self, struct: Structure, companion: bool, counter: dict[ElementDef, str],
                          inline: bool) -> list[str]:  # fmt: skip
        """Once the keys are read: cardinality, then the invariants and binding of the object."""
        out = []
        for el in struct.required:
            out += [f"if {counter[el]} < {el.min}:", f"    W.too_few({self._const(el)}, {counter[el]}, ptr)"]
        bounded = [el for el in struct.elements if el.max is not None]
        if bounded:
            # A single-valued element exceeds its max only through the general paths, which set
            # `over` (see _general); the others are counted here.
            tests = [f"{counter[el]} > {el.max}" for el in bounded if not (inline and _single(el))]
            if inline and any(_single(el) for el in bounded):
                tests.insert(0, "over")
            pairs = "".join(f"({self._const(el)}, {counter[el]}), " for el in bounded)
            out += [f"if {' or '.join(tests)}:", f"    W.too_many({self._const(struct)}, obj, ptr, ({pairs}))"]
        # ele-1 is about elements; a companion is the id/extensions of a primitive, whose ele-1
        # (value or extension) is checked with the primitive itself.
        if struct.kind != "resource" and not companion:
            check = f"W.invariants(ELEMENT_INVS, obj, {struct.name!r}, ptr, resource)"
            out += ["if len(obj) == 1 and 'id' in obj:", "    " + check] if self.ele_1_only else [check]
        if struct.invariants:
            out.append(f"W.invariants({self._const(tuple(struct.invariants))}, obj, {struct.name!r}, ptr, resource)")
        if struct.binding is not None:
            out += ["x = obj", *self._binding_checks(struct.binding, "Quantity", struct.name, "ptr")]
        return out

    def _binding_checks(self, binding: Binding, tcode: str, path: str, p: str) -> list[str]:
        """Statements that check the code, Coding, CodeableConcept or Quantity `x` against its
        binding (bindings.py). A code or coding the value set has passes without more ado."""
        b = self._const(binding)
        check = [f"b = BIND({b}, x, {tcode!r}, {path!r})", "if b is not None:", f"    W.binding({b}, b, {p})"]
        vs = binding.value_set
        if vs is None or tcode == "CodeableConcept":
            return check
        member = f"{self._const(vs)}.has_code(x)" if tcode in self.plan.primitives else (
            f"{self._const(vs)}.has_coding(x.get('system'), x.get('code'))")  # fmt: skip
        return [f"if not {member}:", *_indent(check, 1)]

    # -- one property of an object (`value` under `key` of `obj`, at `ptr`) -------------------------------
    def _property(self, n: int, i: int, key: str, el: ElementDef, tcode: str, count: str, inline: bool) -> list[str]:
        """Statements that check the property and add how many values it holds to `count`."""
        e = self._const(el)
        tally = [f"{count} += 1"] if self._tallied(el, inline) else []
        if tcode in self.plan.primitives:
            general = f"W.primitive({e}, {key!r}, value, obj.get({'_' + key!r}), ptr, resource, v{n}_{i})"
            if el.repeats:
                return self._general(count, general, el, inline)
            kind = JSON_KIND_TESTS[self.plan.primitives[tcode].json]
            return [
                "x = value",
                f"if {kind} and {'_' + key!r} not in obj:",
                *_indent(tally + self._value_checks(el, tcode, f"ptr + ({key!r},)", kind_known=True) or ["pass"], 1),
                "else:",
                *_indent(self._general(count, general, el, inline), 1),
            ]
        general = f"W.complex({e}, {tcode!r}, {key!r}, value, ptr, resource, i{n}_{i})"
        if el.repeats:
            return [
                "if type(value) is list and value:",
                *([f"    {count} += len(value)"] if self._tallied(el, inline) else []),
                "    for j, x in enumerate(value):",
                f"        p = ptr + ({key!r}, j)",
                "        if type(x) is dict:",
                *_indent(self._item_checks(el, tcode), 3),
                "        else:",
                f"            W.complex_item({e}, {tcode!r}, x, p, resource, i{n}_{i})",
                "else:",
                *_indent(self._general(count, general, el, inline), 1),
            ]
        return [
            "if type(value) is dict:",
            *_indent(tally, 1),
            "    x = value",
            f"    p = ptr + ({key!r},)",
            *_indent(self._item_checks(el, tcode), 1),
            "else:",
            *_indent(self._general(count, general, el, inline), 1),
        ]

    def _orphan(self, n: int, i: int, key: str, el: ElementDef, count: str, inline: bool) -> list[str]:
        """The `_key` companion of a primitive: checked with its value, or alone when there is none."""
        call = f"W.primitive({self._const(el)}, {key!r}, None, value, ptr, resource, v{n}_{i}, True)"
        return [f"if {key!r} not in obj:", *_indent(self._general(count, call, el, inline), 1)]

    @staticmethod
    def _tallied(el: ElementDef, inline: bool) -> bool:
        """Whether the conformant shape of a property must be counted: for a minimum, or for a
        maximum that several values or names can pass (a single-valued one: see _general)."""
        return not inline or el.min > 0 or (el.max is not None and not _single(el))

    @staticmethod
    def _general(count: str, call: str, el: ElementDef, inline: bool) -> list[str]:
        """Adding what a general path counted; it alone can take a single-valued element past its
        max (an array, an array of companions), which `over` then tells the cardinality check."""
        out = [f"{count} += {call}"]
        if inline and _single(el):
            out += [f"if {count} > 1:", "    over = 1"]
        return out

    def _item_checks(self, el: ElementDef, tcode: str) -> list[str]:
        """Statements that check the object `x` at `p`: its structure, binding, target and invariants."""
        if tcode == "Resource":
            return ["W.resource(x, p)"]
        out = [f"{self._function(el.children or self.plan.structures[tcode])}(x, p, resource)"]
        if el.binding is not None:
            out += self._binding_checks(el.binding, tcode, el.path, "p")
        if el.targets is not None and tcode == "Reference":
            out.append(f"W.target({self._const(el)}, x, p)")
        if el.invariants:
            out.append(f"W.invariants({self._const(tuple(el.invariants))}, x, {el.path!r}, p, resource)")
        return out

    def _value_checks(self, el: ElementDef, tcode: str, p: str, kind_known: bool = False) -> list[str]:
        """Statements that check the primitive value `x` (not null); `p` is the source of its
        pointer, evaluated only where something is reported. `kind_known`: x passed its JSON
        kind test already."""
        pt = self.plan.primitives[tcode]
        e, t = self._const(el), self._const(pt)
        out = [] if kind_known else [f"if not ({JSON_KIND_TESTS[pt.json]}):", f"    W.wrong_kind({e}, {t}, x, {p})"]
        if pt.json == "string":
            out += [f"{'elif' if out else 'if'} not x:", f"    W.empty_string({e}, {p})"]
        rest: list[str] = []
        binding: list[str] = []
        if el.binding is not None and pt.json == "string":
            binding = self._binding_checks(el.binding, tcode, el.path, p)
        surely_right = self._format_shortcut(pt)
        if surely_right == "True":
            rest += binding
        elif binding:
            guard = f"{surely_right} or " if surely_right else ""
            rest += [f"if {guard}not W.bad_format({e}, {t}, x, {p}):", *_indent(binding, 1)]
        elif surely_right:
            rest += [f"if not ({surely_right}):", f"    W.bad_format({e}, {t}, x, {p})"]
        else:
            rest.append(f"W.bad_format({e}, {t}, x, {p})")
        if el.invariants:
            rest.append(f"W.invariants({self._const(tuple(el.invariants))}, x, {el.path!r}, {p}, resource)")
        if not out:
            return rest
        return out + (["else:", *_indent(rest, 1)] if rest else [])

    def _format_shortcut(self, pt: PrimitiveType) -> str | None:
        """A test of `x` (of the right JSON type) that passes only when format_problem finds
        nothing, for the types whose format is a length, a regex or a range: format_problem is
        asked (and explains) only when it fails. None: always ask format_problem."""
        if pt.json == "boolean":
            return "True"  # true and false are the whole format
        terms = []
        if pt.json == "string" and pt.check is None:
            if pt.max_length is not None:
                terms.append(f"len(x) <= {pt.max_length}")
            if pt.regex is not None:
                terms.append(f"{self._const(pt.regex.fullmatch)}(x) is not None")
        elif pt.json == "integer":
            if pt.min_value is not None:
                terms.append(f"x >= {pt.min_value}")
            if pt.max_value is not None:
                terms.append(f"x <= {pt.max_value}")
        else:
            return None
        return " and ".join(terms) or "True"


def _single(el: ElementDef) -> bool:
    """One JSON name, one value: the checks of a conformant object count it at most once."""
    return el.max == 1 and not el.choice


def _indent(lines: list[str], levels: int) -> list[str]:
    return ["    " * levels + line for line in lines]
