"""The base rules of a plan, written once: cardinality, JSON form and type, formats, bindings,
reference targets and invariants, checked by Python source generated for each structure.

Each structure (resource, datatype, backbone element) gets a function, generated on first use
(check_source.py), that tests every property of an object inline and calls the reporter (`W`,
the BaseRules) only where a check fails, with what the finding needs: pointers and messages are
built only then. A
conformant resource is one for which the reporter was never called; the findings of any other
are what it was called with, in the same single pass (as python-jsonschema's is_valid is the
first error of the iter_errors that explains). There is no second, yes/no implementation.

The shapes a conformant payload never has (a primitive with its `_x` companion, null, an array
where one value belongs, repeated keys, an unknown property) leave the generated code for the
general methods of BaseRules, which call back into the generated value and item checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from validator import rule_ids as R
from validator.compile.plan import Binding, ElementDef, Invariant, Plan, Rule, Structure
from validator.evaluate.bindings import Problem, binding_problem, report_binding
from validator.evaluate.check_source import INLINE_PROPERTIES, CheckSource
from validator.evaluate.walk import Pointer, RawIssue, invariant_detail, reference_kind
from validator.fhir.jsontext import DupDict
from validator.fhir.primitives import PrimitiveType, describe_json, format_problem, shorten, wrong_json_kind
from validator.fhirpath.expressions import EvalContext, FhirPathError
from validator.fhirpath.natives import NotEvaluated
from validator.rule_ids import implements

ValueCheck = Callable[[object, Pointer, dict], None]  # generated: one primitive value, or one object


class BaseRules:
    """The base rules of one plan. `check` returns the findings of a resource (empty: it conforms);
    `keys_seen` is how many object keys that pass visited (every key, unless a part of the
    resource could not be walked)."""

    def __init__(self, plan: Plan, max_depth: int) -> None:
        self.plan = plan
        self.max_depth = max_depth
        self._keys = [0]
        self._element = plan.structures.get("Element")
        self._generated = CheckSource(self, plan, max_depth, self._keys)
        # The state of the resource being checked.
        self.issues: list[RawIssue] = []
        self.root: dict = {}
        self.bundle: dict[str, dict] = {}
        self._ctx: EvalContext | None = None
        self._noted: set[str] = set()  # binding rules whose not-bundled note was given
        self._too_deep = False

    def check(self, resource: dict, bundle: dict[str, dict], clean: dict[str, Callable | None] | None = None
              ) -> list[RawIssue]:  # fmt: skip
        """The findings of the base rules on a resource and its contained resources (none: it conforms).
        `clean`: members of the resource judged clean already (NativeGate.clean_members), each
        with the finder of its binding notes: they are counted and noted, not walked, and their
        keys are not counted in keys_seen (asked only of trees parsed plain, never judged so)."""
        self.issues, self.root, self.bundle = [], resource, bundle
        self._ctx, self._noted, self._too_deep = None, set(), False
        self._keys[0] = 0
        try:
            self.resource(resource, (), clean)
            return self.issues
        finally:  # not kept: a resource held here would outlive its file, into the next one's
            self.root, self.bundle, self._ctx = {}, {}, None

    def check_members(self, resource: dict, bundle: dict[str, dict], members: Sequence[tuple[str, Structure]]
                      ) -> list[RawIssue]:  # fmt: skip
        """The findings of the base rules on some object members of a resource only: what the
        native gate (native_gate.py) leaves to them, e.g. the narrative's XHTML."""
        self.issues, self.root, self.bundle = [], resource, bundle
        self._ctx, self._noted, self._too_deep = None, set(), False
        try:
            for key, struct in members:
                value = resource.get(key)
                if type(value) is dict:
                    self._generated.object_check(struct)(value, (key,), resource)
            return self.issues
        finally:
            self.root, self.bundle, self._ctx = {}, {}, None

    @property
    def keys_seen(self) -> int:
        return self._keys[0]

    @property
    def ctx(self) -> EvalContext:
        if self._ctx is None:
            self._ctx = EvalContext(root=self.root, bundle=self.bundle)
        return self._ctx

    # -- the reporter ----------------------------------------------------------------------------
    def add(self, rule: str | Rule, ptr: Pointer, message: str, duplicate: bool = False) -> None:
        found = rule if isinstance(rule, Rule) else self.plan.rules[rule]
        self.issues.append(RawIssue(found, ptr, message, found.severity, duplicate))

    @implements(R.TOO_DEEP)
    def too_deep(self, ptr: Pointer) -> None:
        # The checks recurse with the payload: they refuse to follow it past the limit (and so
        # past Python's stack), reported once at the first place it is reached.
        if not self._too_deep:
            self._too_deep = True
            self.add(R.TOO_DEEP, ptr, f"the payload nests deeper than the limit of {self.max_depth} levels "
                     "(--max-depth); nothing below this point was validated")  # fmt: skip

    @implements(R.DUPLICATE_KEY)
    def duplicates(self, obj: DupDict, ptr: Pointer) -> None:
        for key in obj.duplicate_keys:
            self.add(R.DUPLICATE_KEY, ptr + (key,),
                     f"property {key!r} appears more than once in the object; only the last value was validated",
                     duplicate=True)  # fmt: skip

    @implements(R.EMPTY_OBJECT)
    def empty_object(self, ptr: Pointer) -> None:
        self.add(R.EMPTY_OBJECT, ptr, "empty object: an element must have a value or children")

    def wrong_kind(self, el: ElementDef, ptype: PrimitiveType, value: object, p: Pointer) -> None:
        self.add(el.type_rule, p, f"{el.path} is {ptype.name}: {wrong_json_kind(ptype, value)}")

    @implements(R.EMPTY_STRING)
    def empty_string(self, el: ElementDef, p: Pointer) -> None:
        self.add(R.EMPTY_STRING, p, f"{el.path} is an empty string: leave the property out instead")

    def bad_format(self, el: ElementDef, ptype: PrimitiveType, value: object, p: Pointer) -> bool:
        """Report the value's format problem, if it has one (format_problem decides)."""
        problem = format_problem(ptype, value)
        if problem is not None:
            self.add(ptype.rule, p, f"{el.path}: {problem}")
        return problem is not None

    def binding(self, binding: Binding, problem: Problem, p: Pointer) -> None:
        report_binding(problem, binding, p, self.add, self._noted)

    def too_few(self, el: ElementDef, found: int, ptr: Pointer) -> None:
        name = el.name + ("[x]" if el.choice else "")
        how = "missing" if not found else f"occurs {found} time(s)"
        self.add(el.card_rule, ptr + (name,), f"{el.path} is required ({el.card}) but {how}")

    def too_many(self, struct: Structure, obj: dict, ptr: Pointer, counted: Sequence[tuple[ElementDef, int]]) -> None:
        over = {el: n for el, n in counted if el.max is not None and n > el.max}
        # In the order the elements first appear among the keys, as their values were reported.
        for el in _first_seen(struct, obj, self.plan.primitives):
            n = over.get(el)
            if n is not None:
                self.add(el.card_rule, ptr + (el.name,),
                         f"{el.path} occurs {n} times but at most {el.max} "
                         f"{'is' if el.max == 1 else 'are'} allowed ({el.card})")  # fmt: skip

    @implements(R.COMPANION, R.UNKNOWN_PROPERTY)
    def unknown_key(self, struct: Structure, key: str, ptr: Pointer) -> None:
        entry = struct.props.get(key[1:]) if key[:1] == "_" else None
        if entry is not None:  # the companion of a complex element (those of primitives are generated)
            self.add(R.COMPANION, ptr + (key,),
                     f"{key!r} is not allowed: {entry[0].path} is a {entry[1]}, not a primitive")  # fmt: skip
            return
        # A choice element with a type suffix it does not allow gets the element's type rule,
        # which says what is allowed, instead of a bare "unknown property".
        for el in struct.elements:
            if el.choice and key.startswith(el.name) and key[len(el.name) :][:1].isupper():
                allowed = ", ".join(el.name + t[0].upper() + t[1:] for t in el.types)
                suffix = key[len(el.name) :]
                self.add(el.type_rule, ptr + (key,),
                         f"{key!r}: type {suffix} is not allowed for {el.path}; use one of {allowed}")  # fmt: skip
                return
        self.add(R.UNKNOWN_PROPERTY, ptr + (key,), f"{key!r} is not an element of {struct.name}")

    # -- resources -------------------------------------------------------------------------------
    @implements(R.MISSING_RESOURCE_TYPE, R.UNKNOWN_RESOURCE_TYPE, R.UNSUPPORTED_RESOURCE_TYPE)
    def resource(self, res: dict, ptr: Pointer, clean: dict[str, Callable | None] | None = None) -> None:
        rt = res.get("resourceType")
        if not isinstance(rt, str) or not rt:
            found = "is missing" if rt is None else f"is {describe_json(rt)}, not a resource type name"
            self.add(R.MISSING_RESOURCE_TYPE, ptr + ("resourceType",) if rt is not None else ptr,
                     f"resourceType {found}: every resource must name its type")  # fmt: skip
            return
        struct = self.plan.structures.get(rt)
        if struct is None or struct.kind != "resource":
            # Without a bundled resource list (R5, R6) an unknown name cannot be told from a real
            # type without rules: both are reported as not validated, not as errors.
            if rt in self.plan.resource_types or not self.plan.resource_types:
                self.add(R.UNSUPPORTED_RESOURCE_TYPE, ptr, f"{rt} is not validated: no rule pack for {rt} (only "
                         "ImagingStudy and the resources its profiles need are covered)")  # fmt: skip
            else:
                self.add(R.UNKNOWN_RESOURCE_TYPE, ptr + ("resourceType",),
                         f"resourceType {rt!r} is not a FHIR {self.plan.fhir_version} resource type")  # fmt: skip
            return
        if clean is not None and not ptr and len(struct.props) > INLINE_PROPERTIES:
            self._generated.object_check(struct)(res, ptr, res, clean)  # type: ignore[call-arg]
            return
        self._generated.object_check(struct)(res, ptr, res)

    def clean_member(self, value: object, finder: Callable | None) -> int:
        """A member of the root judged clean (check's `clean`): its binding notes, as the walk
        would give them there, each binding once per resource where the walk first meets it
        (key by key, item by item, as NativeGate.notes); returns how many values it holds (for
        cardinality: a complex member the schema passes is an object, or a non-empty array
        where its element repeats)."""
        if finder is not None:
            for pointer, found, note in finder(self.root):  # in the order the walk meets them
                problem = binding_problem(note.binding, found, note.tcode, note.path)
                if problem is not None:
                    report_binding(problem, note.binding, pointer, self.add, self._noted)
        return len(value) if type(value) is list else 1

    # -- the general paths: shapes a conformant payload does not have ---------------------------------
    @implements(R.ARRAY_EXPECTED, R.ARRAY_UNEXPECTED, R.EMPTY_ARRAY)
    def items(self, el: ElementDef, key: str, value: object, p: Pointer) -> tuple[list, bool]:
        """The items of a property and whether they came as a JSON array; reports array-form problems."""
        if isinstance(value, list):
            if not el.repeats:
                self.add(R.ARRAY_UNEXPECTED, p, f"{el.path} has max {el.max}: it must be a single value, not an array")
            if not value:
                self.add(R.EMPTY_ARRAY, p, f"{key!r} is an empty array: leave the property out instead")
            return value, True
        if el.repeats and value is not None:  # a null is reported as null only
            self.add(R.ARRAY_EXPECTED, p, f"{el.path} can repeat ({el.card}): it must be an array, even with one item")
        return [value], False

    def complex(self, el: ElementDef, tcode: str, key: str, value: object, ptr: Pointer, resource: dict,
                check: ValueCheck) -> int:  # fmt: skip
        """A complex property in any shape; returns how many values it holds (for cardinality)."""
        p = ptr + (key,)
        items, listy = self.items(el, key, value, p)
        for i, item in enumerate(items):
            self.complex_item(el, tcode, item, p + (i,) if listy else p, resource, check)
        return len(items)  # present, even when malformed: the malformation is the one finding

    @implements(R.NULL)
    def complex_item(self, el: ElementDef, tcode: str, item: object, ip: Pointer, resource: dict,
                     check: ValueCheck) -> None:  # fmt: skip
        if item is None:
            self.add(R.NULL, ip, f"{el.path} is null: null is not a FHIR value; leave the property out")
        elif not isinstance(item, dict):
            self.add(el.type_rule, ip, f"{el.path} is {tcode}: expected a JSON object, found {describe_json(item)}")
        else:
            check(item, ip, resource)

    @implements(R.COMPANION, R.EMPTY_ARRAY, R.NULL)
    def primitive(self, el: ElementDef, key: str, value: object, companion: object, ptr: Pointer, resource: dict,
                  check: ValueCheck, orphan: bool = False) -> int:  # fmt: skip
        """A primitive property with its `_key` companion (id and extensions), in any shape, or the
        companion alone (`orphan`); returns how many values it holds (for cardinality)."""
        p = ptr + (key,)
        cp = ptr + ("_" + key,)
        if orphan:
            values: list = []
            listy = isinstance(companion, list)
        else:
            values, listy = self.items(el, key, value, p)
        comps: list | None = None
        if companion is not None:
            if isinstance(companion, list):
                if not listy:
                    self.add(R.COMPANION, cp, f"'_{key}' must be an object, like {key!r} is a single value")
                elif not orphan and len(companion) != len(values):
                    self.add(R.COMPANION, cp, f"'_{key}' has {len(companion)} items but {key!r} has {len(values)}: "
                             "the two arrays must line up")  # fmt: skip
                else:
                    comps = companion
                if not companion:
                    self.add(R.EMPTY_ARRAY, cp, f"'_{key}' is an empty array: leave the property out instead")
            elif isinstance(companion, dict):
                if listy and not orphan:
                    self.add(R.COMPANION, cp, f"'_{key}' must be an array lined up with the {key!r} array")
                else:
                    comps = [companion]
            else:
                found = describe_json(companion)
                self.add(R.COMPANION, cp, f"'_{key}' must be an object with id and/or extension, found {found}")
        if orphan:
            if comps is None:
                return 0
            values = [None] * len(comps)
        count = 0
        for i in range(max(len(values), len(comps or ()))):
            v = values[i] if i < len(values) else None
            c = comps[i] if comps is not None and i < len(comps) else None
            ip = p + (i,) if listy else p
            icp = cp + (i,) if listy else cp
            if v is None:
                if c is None:
                    if not orphan:
                        count += 1  # present as null: reported once, as null, not also as missing
                        self.add(R.NULL, ip, f"{el.path} is null: null is only allowed in a primitive array "
                                 f"where '_{key}' carries the id or extensions at the same position")  # fmt: skip
                    continue
                if not listy and not orphan:
                    self.add(R.NULL, ip, f"{el.path} is null: leave it out and keep only '_{key}'")
            else:
                check(v, ip, resource)
            count += 1
            if c is not None:
                self.companion(el, key, c, v, icp, resource)
        return count

    @implements(R.COMPANION)
    def companion(self, el: ElementDef, key: str, c: object, value: object, icp: Pointer, resource: dict) -> None:
        """The id and extensions of one primitive value: an Element, whose ele-1 (a value or an
        extension) is checked here with the value, not on the companion alone."""
        if not isinstance(c, dict):
            self.add(R.COMPANION, icp,
                     f"'_{key}' items must be objects with id and/or extension, found {describe_json(c)}")  # fmt: skip
        elif self._element is not None:
            self._generated.object_check(self._element, companion=True)(c, icp, resource)
            if value is None and c and not c.get("extension"):
                for inv in self.plan.element_invariants:
                    self.add(inv.rule, icp, f"{inv.key}: {inv.human} ({el.path} has no value and no extension)")

    # -- references and invariants ---------------------------------------------------------------
    def target(self, el: ElementDef, ref: dict, p: Pointer) -> None:
        """A Reference whose type, or the type of what it points at, is not a target of its element."""
        targets = el.targets or frozenset()
        allowed = ", ".join(sorted(targets))
        rtype = ref.get("type")
        if isinstance(rtype, str) and "/" not in rtype and rtype not in targets:
            self.add(el.target_rule, p + ("type",),
                     f"{el.path}.type is {rtype!r} but {el.path} may only refer to {allowed}")  # fmt: skip
        kind = reference_kind(ref, self.ctx)
        if kind is not None and kind not in targets:
            shown = shorten(ref["reference"])
            self.add(el.target_rule, p + ("reference",),
                     f"{el.path} refers to {kind} ({shown}), but its allowed targets are {allowed}")  # fmt: skip

    def invariants(self, invs: Sequence[Invariant], node: object, type_path: str, p: Pointer, resource: dict) -> None:
        for inv in invs:
            self.invariant(inv, node, type_path, p, resource)

    @implements(R.INVARIANT_NOT_EVALUATED)
    def invariant(self, inv: Invariant, node: object, type_path: str, p: Pointer, resource: dict) -> None:
        try:
            detail = invariant_detail(inv, node, type_path, resource, self.root, self.ctx)
        except (NotEvaluated, FhirPathError) as exc:
            self.add(R.INVARIANT_NOT_EVALUATED, p, f"{inv.key} ({inv.human}) could not be evaluated: {exc}")
            return
        if detail is not None:
            self.add(inv.rule, p, f"{inv.key}: {inv.human}" + (f" ({detail})" if detail else ""))


def _first_seen(struct: Structure, obj: dict, primitives: dict[str, PrimitiveType]) -> Iterator[ElementDef]:
    """The elements of an object in the order their first value comes among its keys (a `_x`
    companion counts as a value of x when x itself is absent)."""
    seen: set[int] = set()
    for key in obj:
        if key[:1] == "_":
            entry = struct.props.get(key[1:])
            if entry is None or entry[1] not in primitives or key[1:] in obj:
                continue
        else:
            entry = struct.props.get(key)
            if entry is None:
                continue
        if id(entry[0]) not in seen:
            seen.add(id(entry[0]))
            yield entry[0]
