"""The fast path: does a resource pass every rule of the plan? Yes or no, nothing explained.

Most payloads of a CI run or a bulk export conform. For them the engine's walk (engine.py), which
keeps pointers, counts and messages ready for every finding it might make, does work that is
thrown away. This path evaluates the same checks, in the same walk order, with the same helpers
(formats, value sets, invariants), and answers only "nothing to report". Whenever it cannot say
so (any doubt, any rule that would speak, even an informational one) the engine walks the
resource and explains; the findings always come from the engine.

So a wrong "no" costs only time, and a wrong "yes" would hide findings:
tests/test_fast_path.py checks on every fixture and on mutated payloads that "yes" comes only
when the engine finds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from validator.compile.plan import Binding, ElementDef, Invariant, Plan, Structure
from validator.evaluate.walk import invariant_detail, reference_kind
from validator.fhir.primitives import PrimitiveType, format_problem
from validator.fhirpath.expressions import EvalContext, FhirPathError
from validator.fhirpath.natives import NotEvaluated
from validator.fhirpath.natives import ele_1 as native_ele_1

# Structures with at most this many JSON property names get their checks inline in one function;
# larger ones (resources, Extension with its value[x] names) dispatch through a dict.
INLINE_PROPERTIES = 16


class FastPath:
    """Per plan: Python source generated for each structure on first use (a function per object
    type and per property), so the checks run without interpreting the plan at every value."""

    def __init__(self, plan: Plan, max_depth: int) -> None:
        self.plan = plan
        invs = tuple(plan.element_invariants)
        # ele-1 as the engine checks it natively: an object whose only key is id. Inlined in the
        # generated code (the same test); any other element invariant is called like the others.
        self.ele_1_inline = len(invs) == 1 and invs[0].native is native_ele_1
        self._root: dict = {}
        self._bundle: dict[str, dict] = {}
        self._keys = [0]  # object keys visited by the last is_clean (all of them when it passed)
        self._numbers: dict[int, int] = {}  # id(structure) -> n of its function o{n}
        self._consts: dict[int, str] = {}  # id(object) -> its name in the generated namespace
        self._ns: dict[str, object] = {
            "MAXD": max_depth, "DEC": Decimal, "FMT": format_problem, "ALL": self._all_hold,
            "CODING_IN": self._coding_in, "TARGET_OK": self._target_ok, "RES": self._resource,
            "ELEMENT_INVS": invs, "_n": _n, "KEYS": self._keys,
        }  # fmt: skip

    # -- entry ------------------------------------------------------------------------------------
    def is_clean(self, resource: object, bundle: dict[str, dict]) -> bool:
        """True only when the engine would report nothing about this resource (without profiles)."""
        if type(resource) is not dict:
            return False
        self._root = resource
        self._bundle = bundle
        self._keys[0] = 0
        try:
            return self._resource(resource, 0)
        except (NotEvaluated, FhirPathError, RecursionError):
            return False
        finally:  # not kept: a resource held here would outlive its file, into the next one's
            self._root, self._bundle = {}, {}

    @property
    def keys_seen(self) -> int:
        """How many object keys the last resource passed to is_clean had (when it passed)."""
        return self._keys[0]

    def _resource(self, res: dict, depth: int) -> bool:
        rt = res.get("resourceType")
        struct = self.plan.structures.get(rt) if type(rt) is str else None
        if struct is None or struct.kind != "resource":
            return False
        return self._ns[self._function(struct)](res, depth, res)  # type: ignore[operator]

    # -- code generation ------------------------------------------------------------------------------
    def _const(self, obj: object) -> str:
        name = self._consts.get(id(obj))
        if name is None:
            name = self._consts[id(obj)] = f"K{len(self._consts)}"
            self._ns[name] = obj
        return name

    def _function(self, struct: Structure) -> str:
        """The name of the object function of a structure; generated (compiled) on first call."""
        n = self._numbers.get(id(struct))
        if n is None:
            n = self._numbers[id(struct)] = len(self._numbers)
            self._const(struct)  # keep it alive while its id names a function

            def first_call(obj: object, depth: int, resource: dict, _n: int = n, _s: Structure = struct) -> bool:
                code = self._generate(_n, _s)
                exec(compile(code, f"<fast path: {_s.name}>", "exec"), self._ns)  # source generated here only
                return self._ns[f"o{_n}"](obj, depth, resource)  # type: ignore[operator]

            self._ns[f"o{n}"] = first_call
        return f"o{n}"

    def _generate(self, n: int, struct: Structure) -> str:
        out: list[str] = []
        table: dict[str, str] = {}
        if len(struct.props) > INLINE_PROPERTIES:
            for i, (key, (el, tcode)) in enumerate(struct.props.items()):
                name = f"p{n}_{i}"
                out.extend(self._property(name, el, tcode))
                table[key] = name
            out.append(f"P{n} = {{{', '.join(f'{k!r}: {v}' for k, v in table.items())}}}")
        out.append(f"def o{n}(obj, depth, resource):")
        out.append("    if depth >= MAXD or not obj or type(obj) is not dict:")
        out.append("        return False")
        out.append("    KEYS[0] += len(obj)")
        out.append("    for key, value in obj.items():")
        if len(struct.props) <= INLINE_PROPERTIES:
            # Few properties: their checks inline, chosen by comparing the key (no call per value).
            for i, (key, (el, tcode)) in enumerate(struct.props.items()):
                out.append(f"        {'if' if i == 0 else 'elif'} key == {key!r}:")
                out += ["            " + line for line in self._property_body(el, tcode)]
            if struct.kind == "resource":
                out.append("        elif key == 'resourceType':")
                out.append("            continue")
            out.append("        else:" if struct.props else "        if True:")
            out.append("            return False")
        else:
            out.append(f"        f = P{n}.get(key)")
            out.append("        if f is None:")
            if struct.kind == "resource":
                out.append("            if key == 'resourceType':")
                out.append("                continue")
            out.append("            return False")
            out.append("        if not f(value, depth, resource):")
            out.append("            return False")
        for el in struct.elements:
            names = tuple(k for k, (e, _t) in struct.props.items() if e is el)
            if el.max is not None and (el.choice or el.max != 1):
                out.append(f"    if {_count(names)} > {el.max}:")
                out.append("        return False")
            if el.min > 0:
                if len(names) == 1 and el.min == 1:
                    out.append(f"    if {names[0]!r} not in obj:")
                else:
                    out.append(f"    if {_count(names)} < {el.min}:")
                out.append("        return False")
        if struct.kind != "resource":
            if self.ele_1_inline:
                out.append("    if len(obj) == 1 and 'id' in obj:")
            else:
                out.append(f"    if not ALL(ELEMENT_INVS, obj, {struct.name!r}, resource):")
            out.append("        return False")
        if struct.invariants:
            out.append(f"    if not ALL({self._const(tuple(struct.invariants))}, obj, {struct.name!r}, resource):")
            out.append("        return False")
        if struct.binding is not None:
            out.append(f"    return CODING_IN({self._const(struct.binding)}, obj, 'Quantity')")
        else:
            out.append("    return True")
        return "\n".join(out) + "\n"

    def _property(self, name: str, el: ElementDef, tcode: str) -> list[str]:
        body = self._property_body(el, tcode, "v")
        return [f"def {name}(v, depth, resource):", *("    " + line for line in body), "    return True"]

    def _property_body(self, el: ElementDef, tcode: str, value: str = "value") -> list[str]:
        """Statements that return False unless the property's JSON value (named `value`) conforms."""
        pt = self.plan.primitives.get(tcode)
        if pt is not None:
            checks = self._primitive_checks(pt, el)
        else:
            checks = self._complex_checks(el, tcode, 2 if el.repeats else 1)
        if el.repeats:
            out = [f"if type({value}) is not list or not {value}:", "    return False", f"for x in {value}:"]
            return out + ["    " + line for line in checks]
        return [f"x = {value}", *checks]

    def _complex_checks(self, el: ElementDef, tcode: str, step: int) -> list[str]:
        """Statements that return False unless the object x conforms (with its binding, target
        and invariants)."""
        if tcode == "Resource":
            return [f"if type(x) is not dict or not RES(x, depth + {step}):", "    return False"]
        fn = self._function(el.children or self.plan.structures[tcode])
        out = [f"if type(x) is not dict or not {fn}(x, depth + {step}, resource):", "    return False"]
        binding = el.binding
        if binding is not None:
            if binding.value_set is None or tcode == "CodeableConcept":
                out += [f"if not CODING_IN({self._const(binding)}, x, {tcode!r}):", "    return False"]
            else:  # a Coding (or Quantity): as CODING_IN, inline for the common case
                out += [
                    "code = x.get('code')",
                    "if type(code) is str:",
                    "    system = x.get('system')",
                    f"    if (system is None or type(system) is str) and not {self._const(binding.value_set)}"
                    ".has_coding(system, code):",
                    "        return False",
                    "elif code is not None and not CODING_IN(" + self._const(binding) + f", x, {tcode!r}):",
                    "    return False",
                ]
        if el.targets is not None and tcode == "Reference":
            out += [f"if not TARGET_OK({self._const(el)}, x):", "    return False"]
        if el.invariants:
            out += [f"if not ALL({self._const(tuple(el.invariants))}, x, {el.path!r}, resource):", "    return False"]
        return out

    def _primitive_checks(self, pt: PrimitiveType, el: ElementDef) -> list[str]:
        """Statements that return False unless the value x is right for the primitive type: the
        engine's json_kind_problem and format_problem, inline where they are a type test, a length,
        a range or a regex."""
        kind = {
            "string": "type(x) is not str or not x",  # an empty string is a finding too
            "integer": "type(x) is not int",  # bool is not int here, as in the engine
            "boolean": "type(x) is not bool",
            "decimal": "type(x) is not int and type(x) is not DEC",
        }[pt.json]
        out = [f"if {kind}:", "    return False"]
        if pt.json == "string" and pt.check is None:
            if pt.max_length is not None:
                out += [f"if len(x) > {pt.max_length}:", "    return False"]
            if pt.regex is not None:
                out += [f"if {self._const(pt.regex.fullmatch)}(x) is None:", "    return False"]
        elif pt.json == "integer":
            if pt.min_value is not None:
                out += [f"if x < {pt.min_value}:", "    return False"]
            if pt.max_value is not None:
                out += [f"if x > {pt.max_value}:", "    return False"]
        elif pt.json != "boolean":
            out += [f"if FMT({self._const(pt)}, x) is not None:", "    return False"]
        if el.binding is not None and pt.json == "string":
            vs = el.binding.value_set
            out += ["return False"] if vs is None else [f"if not {self._const(vs)}.has_code(x):", "    return False"]
        if el.invariants:
            out += [f"if not ALL({self._const(tuple(el.invariants))}, x, {el.path!r}, resource):", "    return False"]
        return out

    # -- the engine's checks, answered yes or no ------------------------------------------------------
    def _all_hold(self, invariants: Sequence[Invariant], node: object, type_path: str, resource: dict) -> bool:
        ctx = EvalContext(self._root, self._bundle)
        return all(invariant_detail(inv, node, type_path, resource, self._root, ctx) is None for inv in invariants)

    @staticmethod
    def _coding_in(binding: Binding, value: dict, tcode: str) -> bool:
        vs = binding.value_set
        if vs is None:
            return False  # the engine notes a binding it could not check
        if tcode == "CodeableConcept":
            raw = value.get("coding")
            codings = [c for c in raw if isinstance(c, dict)] if isinstance(raw, list) else []
            if any(vs.has_coding(c.get("system"), c.get("code")) for c in codings):
                return True
            return not codings and binding.strength != "required"
        system, code = value.get("system"), value.get("code")
        if not isinstance(code, str) or not (system is None or isinstance(system, str)):
            return True
        return vs.has_coding(system, code)

    def _target_ok(self, el: ElementDef, ref: dict) -> bool:
        targets = el.targets or frozenset()
        rtype = ref.get("type")
        if isinstance(rtype, str) and "/" not in rtype and rtype not in targets:
            return False
        kind = reference_kind(ref, EvalContext(self._root, self._bundle))
        return kind is None or kind in targets


def _count(names: tuple[str, ...]) -> str:
    """Source for how many values the JSON names of one element hold in `obj`."""
    terms = [f"_n(obj.get({k!r}))" for k in names]
    return " + ".join(terms) if terms else "0"


def _n(value: object) -> int:
    return 0 if value is None else len(value) if type(value) is list else 1
