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
from dataclasses import dataclass
from decimal import Decimal

from .engine import _LITERAL_REF, invariant_holds
from .fhirpath import EvalContext, FhirPathError, resolve_reference
from .fhirpath_subset import passes_or_none
from .invariants import InvariantContext, NotEvaluated
from .invariants import ele_1 as native_ele_1
from .plan import Binding, ElementDef, Invariant, Plan, Structure
from .primitives import PrimitiveType, format_problem


@dataclass(slots=True)
class _Prop:
    el: ElementDef
    tcode: str
    primitive: PrimitiveType | None
    kind: type | tuple[type, ...] | None  # the Python type(s) of a primitive's JSON value
    regex_only: bool  # the primitive's whole format is its regex (no other format check)
    struct: Structure | None  # the structure of a complex value (None: a contained resource)
    repeats: bool
    counted: bool  # the element's count must be checked: a choice, or a max other than 1 and *
    table: _Table | None = None  # of `struct`, linked on first use


@dataclass(slots=True)
class _Table:
    props: dict[str, _Prop]
    required: tuple[tuple[ElementDef, tuple[str, ...]], ...]  # element, the JSON names it may have
    counted: bool
    invariants: tuple[Invariant, ...]
    binding: Binding | None


_KINDS: dict[str, type | tuple[type, ...]] = {"string": str, "integer": int, "boolean": bool, "decimal": (int, Decimal)}


class FastPath:
    def __init__(self, plan: Plan, max_depth: int) -> None:
        self.plan = plan
        self.max_depth = max_depth
        invs = tuple(plan.element_invariants)
        # ele-1 as the engine checks it natively: an object whose only key is id. Inlined here,
        # the same test (tests/test_fast_path.py); any other element invariant goes the long way.
        self.ele_1_inline = len(invs) == 1 and invs[0].native is native_ele_1
        self.element_invariants = () if self.ele_1_inline else invs
        self._tables: dict[int, _Table] = {}
        self._root: dict = {}
        self._bundle: dict[str, dict] = {}

    def table(self, struct: Structure) -> _Table:
        t = self._tables.get(id(struct))
        if t is None:
            t = self._tables[id(struct)] = self._build(struct)
        return t

    def _build(self, struct: Structure) -> _Table:
        primitives = self.plan.primitives
        props = {}
        for key, (el, tcode) in struct.props.items():
            pt = primitives.get(tcode)
            sub = None if pt is not None or tcode == "Resource" else el.children or self.plan.structures[tcode]
            props[key] = _Prop(
                el=el,
                tcode=tcode,
                primitive=pt,
                kind=_KINDS[pt.json] if pt is not None else None,
                regex_only=pt is not None and pt.check is None and pt.max_length is None and pt.json == "string",
                struct=sub,
                repeats=el.repeats,
                counted=el.choice or (el.max is not None and el.max != 1),  # max 0 (prohibited) included
            )
        required = tuple((el, tuple(k for k, (e, _t) in struct.props.items() if e is el)) for el in struct.required)
        return _Table(props, required, any(p.counted for p in props.values()), tuple(struct.invariants), struct.binding)

    # -- entry ------------------------------------------------------------------------------------
    def is_clean(self, resource: object, bundle: dict[str, dict]) -> bool:
        """True only when the engine would report nothing about this resource (without profiles)."""
        if type(resource) is not dict:
            return False
        self._root = resource
        self._bundle = bundle
        try:
            return self._resource(resource, 0)
        except (NotEvaluated, FhirPathError, RecursionError):
            return False

    def _resource(self, res: dict, depth: int) -> bool:
        rt = res.get("resourceType")
        struct = self.plan.structures.get(rt) if type(rt) is str else None
        if struct is None or struct.kind != "resource":
            return False
        return self._object(res, self.table(struct), struct.name, depth, res, True)

    # -- objects ------------------------------------------------------------------------------------
    def _object(self, obj: dict, table: _Table, type_path: str, depth: int, resource: dict, is_resource: bool) -> bool:
        if depth >= self.max_depth or not obj or type(obj) is not dict:
            return False  # too deep, empty, or with repeated keys (a DupDict)
        props = table.props
        counts: dict[int, int] | None = {} if table.counted else None
        for key, value in obj.items():
            p = props.get(key)
            if p is None:
                if key == "resourceType" and is_resource:
                    continue
                return False  # unknown, or a primitive's '_' companion: the engine explains
            listed = type(value) is list
            if listed:
                if not p.repeats or not value:
                    return False
                items = value
            elif p.repeats:
                return False
            else:
                items = (value,)
            if p.primitive is not None:
                kind = p.kind
                for v in items:
                    if type(v) is not kind and not (type(kind) is tuple and type(v) in kind):
                        return False  # null, or the wrong JSON type (bool is not int here)
                    if p.regex_only:
                        if not v or (p.primitive.regex is not None and p.primitive.regex.fullmatch(v) is None):
                            return False
                    elif not self._primitive_format(p, v):
                        return False
                    el = p.el
                    if el.binding is not None and type(v) is str:
                        vs = el.binding.value_set
                        if vs is None or not vs.has_code(v):
                            return False
                    if el.invariants and not self._all_hold(el.invariants, v, el.path, resource):
                        return False
            else:
                step = depth + 2 if listed else depth + 1
                for item in items:
                    if type(item) is not dict or not self._complex(p, item, step, resource):
                        return False  # null, not an object, an object with repeated keys, or a finding
            if counts is not None and p.counted:
                k = id(p.el)
                n = counts.get(k, 0) + len(items)
                if p.el.max is not None and n > p.el.max:
                    return False
                counts[k] = n
        for el, names in table.required:
            n = 0
            for name in names:
                v = obj.get(name)
                if v is not None:
                    n += len(v) if type(v) is list else 1
            if n < el.min:
                return False
        if not is_resource:
            if self.ele_1_inline:
                if len(obj) == 1 and "id" in obj:
                    return False
            elif not self._all_hold(self.element_invariants, obj, type_path, resource):
                return False
        if table.invariants and not self._all_hold(table.invariants, obj, type_path, resource):
            return False
        return table.binding is None or self._coding_in(table.binding, obj, "Quantity")

    @staticmethod
    def _primitive_format(p: _Prop, v: object) -> bool:
        if type(v) is str and not v:
            return False  # an empty string
        return format_problem(p.primitive, v) is None  # type: ignore[arg-type]

    def _complex(self, p: _Prop, item: dict, depth: int, resource: dict) -> bool:
        if p.struct is None:
            return self._resource(item, depth)
        table = p.table
        if table is None:
            table = p.table = self.table(p.struct)
        el = p.el
        if not self._object(item, table, p.struct.name, depth, resource, False):
            return False
        if el.binding is not None and not self._coding_in(el.binding, item, p.tcode):
            return False
        if el.targets is not None and p.tcode == "Reference" and not self._target_ok(el, item):
            return False
        return not el.invariants or self._all_hold(el.invariants, item, el.path, resource)

    def _all_hold(self, invariants: Sequence[Invariant], node: object, type_path: str, resource: dict) -> bool:
        ctx = None
        for inv in invariants:
            if inv.native is not None:
                if inv.native(node, InvariantContext(resource, self._root)) is not None:
                    return False
            elif inv.subset is not None and passes_or_none(inv.subset, node, resource, self._root) is True:
                continue
            else:
                ctx = ctx or EvalContext(self._root, self._bundle)
                if not invariant_holds(inv, node, type_path, resource, self._root, ctx):
                    return False
        return True

    # -- the engine's checks, answered yes or no ------------------------------------------------------
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
        literal = ref.get("reference")
        if not isinstance(literal, str):
            return True
        if literal.startswith(("#", "urn:uuid:", "urn:oid:")):
            target = resolve_reference(literal, EvalContext(self._root, self._bundle))
            kind = target.get("resourceType") if target else None
        else:
            m = _LITERAL_REF.fullmatch(literal)
            kind = m.group(1) if m else None
        return kind is None or kind in targets
