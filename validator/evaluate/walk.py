"""The evaluation engine: one walk over a resource, guided by the compiled plan.

Every check of an element happens when the walk reaches it: JSON form, datatype, format,
binding, reference target, cardinality of its children, and the invariants whose context it is.
The engine only returns findings; it never prints and never exits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from validator import rule_ids as R
from validator.compile.plan import Binding, ElementDef, Invariant, Plan, Rule, Structure
from validator.compile.profiles import Profile
from validator.evaluate.profile_check import PendingTarget, ProfileCheck
from validator.fhir.jsontext import DupDict
from validator.fhir.primitives import describe_json, format_problem, json_kind_problem, shorten
from validator.fhirpath import expressions as fhirpath
from validator.fhirpath.natives import InvariantContext, NotEvaluated
from validator.fhirpath.subset import Unsupported, passes
from validator.limits import DEFAULT as DEFAULT_LIMITS
from validator.model import Severity

Pointer = tuple[str | int, ...]

# Literal reference: [base/]Type/id[/_history/vid] (http://hl7.org/fhir/R4/references.html#literal)
_LITERAL_REF = re.compile(
    r"(?:(?:https?|ftp)://\S*?/)?([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?"
)


@dataclass(slots=True)
class RawIssue:
    rule: Rule
    pointer: Pointer
    message: str
    severity: Severity
    duplicate: bool = False  # position of the repeated key, not the first one


def render_expression(resource_type: str, pointer: Pointer) -> str:
    """FHIRPath with indices for a JSON pointer inside a resource. `_x` companions are the
    primitive x itself in FHIRPath (its id and extensions)."""
    parts = [resource_type]
    for step in pointer:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        else:
            parts.append("." + (step[1:] if step.startswith("_") else step))
    return "".join(parts)


def invariant_detail(
    inv: Invariant, node: object, type_path: str, resource: dict, root: dict, ctx: fhirpath.EvalContext
) -> str | None:
    """None when the invariant holds, else a detail ('' when there is none to add). Its native check
    when it has one, else its compiled subset form; either may leave a payload shape it does not
    handle (Unsupported) to fhirpathpy. Raises NotEvaluated or FhirPathError when it cannot be
    decided."""
    try:
        if inv.native is not None:
            return inv.native(node, InvariantContext(resource, root))
        if inv.subset is not None:
            return None if passes(inv.subset, node, resource, root) else ""
    except Unsupported:
        pass
    return None if fhirpath.truthy(fhirpath.evaluate(inv.compiled, node, type_path, resource, root, ctx)) else ""


def reference_kind(ref: dict, ctx: fhirpath.EvalContext) -> str | None:
    """The resource type a literal reference points at, when it can be told: from the reference
    itself (Type/id), or from its target inside the resource or the Bundle (#id, urn:uuid:)."""
    literal = ref.get("reference")
    if not isinstance(literal, str):
        return None
    if literal.startswith(("#", "urn:uuid:", "urn:oid:")):
        target = fhirpath.resolve_reference(literal, ctx)
        kind = target.get("resourceType") if target else None
        return kind if isinstance(kind, str) else None  # a malformed target is its own finding
    m = _LITERAL_REF.fullmatch(literal)
    return m.group(1) if m else None


# Checks a resolved reference target against profiles; returns the problems found (empty = conforms).
TargetChecker = Callable[[dict, tuple[str, ...]], list[str]]


class ResourceWalk:
    """Validates one resource (with its contained resources) against a plan, and the profiles
    given, which are applied to the resource after the walk over their constrained elements."""

    def __init__(
        self,
        plan: Plan,
        eval_ctx: fhirpath.EvalContext,
        profiles: Sequence[Profile] = (),
        must_support: bool = True,
        target_checker: TargetChecker | None = None,
        max_depth: int = DEFAULT_LIMITS.max_depth,
    ) -> None:
        self.plan = plan
        self.max_depth = max_depth
        self.eval_ctx = eval_ctx
        self.profiles = profiles
        self.must_support = must_support
        self.target_checker = target_checker
        self.issues: list[RawIssue] = []
        self.pending: list[PendingTarget] = []  # target profiles to check once the whole run is read
        self._once: set[tuple[str, str]] = set()
        self._element = plan.structures.get("Element")

    # -- recording -----------------------------------------------------------------------------
    def add(self, rule_id_or_rule: str | Rule, pointer: Pointer, message: str, duplicate: bool = False) -> None:
        rule = rule_id_or_rule if isinstance(rule_id_or_rule, Rule) else self.plan.rules[rule_id_or_rule]
        self.issues.append(RawIssue(rule, pointer, message, rule.severity, duplicate))

    # -- resources -----------------------------------------------------------------------------
    def run(self, resource: dict, base_clean: bool = False) -> list[RawIssue]:
        """The findings of the base rules and the profiles. `base_clean`: the fast path found the
        base rules silent (fast_path.py), so only the profiles are walked."""
        if not base_clean:
            self.visit_resource(resource, (), resource)
        for profile in self.profiles:
            ProfileCheck(self, profile, self.must_support).run(resource)
        return self.issues

    def visit_resource(self, res: dict, ptr: Pointer, root: dict) -> None:
        rt = res.get("resourceType")
        if not isinstance(rt, str) or not rt:
            found = "is missing" if rt is None else f"is {describe_json(rt)}, not a resource type name"
            self.add(
                R.MISSING_RESOURCE_TYPE,
                ptr + ("resourceType",) if rt is not None else ptr,
                f"resourceType {found}: every resource must name its type",
            )
            return
        struct = self.plan.structures.get(rt)
        if struct is None or struct.kind != "resource":
            # Without a bundled resource list (R5, R6) an unknown name cannot be told from a real
            # type without rules: both are reported as not validated, not as errors.
            if rt in self.plan.resource_types or not self.plan.resource_types:
                self.add(
                    R.UNSUPPORTED_RESOURCE_TYPE,
                    ptr,
                    f"{rt} is not validated: no rule pack for {rt} (only ImagingStudy and the resources "
                    f"its profiles need are covered)",
                )
            else:
                self.add(
                    R.UNKNOWN_RESOURCE_TYPE,
                    ptr + ("resourceType",),
                    f"resourceType {rt!r} is not a FHIR {self.plan.fhir_version} resource type",
                )
            return
        self.visit_object(res, struct, ptr, res, root, is_resource=True)

    # -- objects -------------------------------------------------------------------------------
    def visit_object(
        self,
        obj: dict,
        struct: Structure,
        ptr: Pointer,
        resource: dict,
        root: dict,
        is_resource: bool = False,
        companion: bool = False,
    ) -> None:
        if len(ptr) >= self.max_depth:
            # The walk recurses with the payload: refuse to follow it past the limit (and so past
            # Python's stack), reporting it once at the first place it is reached.
            if not any(i.rule.id == R.TOO_DEEP for i in self.issues):
                self.add(R.TOO_DEEP, ptr, f"the payload nests deeper than the limit of {self.max_depth} levels "
                         "(--max-depth); nothing below this point was validated")  # fmt: skip
            return
        if type(obj) is DupDict:
            for key in obj.duplicate_keys:
                self.add(
                    R.DUPLICATE_KEY,
                    ptr + (key,),
                    f"property {key!r} appears more than once in the object; only the last value was validated",
                    duplicate=True,
                )
        if not obj:
            self.add(R.EMPTY_OBJECT, ptr, "empty object: an element must have a value or children")
            return
        props = struct.props
        primitives = self.plan.primitives
        counts: dict[ElementDef, int] = {}
        for key, value in obj.items():
            if key == "resourceType" and is_resource:
                continue
            if key[:1] == "_":
                base = key[1:]
                entry = props.get(base)
                if entry is None or entry[1] not in primitives:
                    if entry is None:
                        self._unknown(struct, key, ptr)
                    else:
                        self.add(
                            R.COMPANION,
                            ptr + (key,),
                            f"{key!r} is not allowed: {entry[0].path} is a {entry[1]}, not a primitive",
                        )
                    continue
                if base in obj:
                    continue  # checked together with its value
                el = entry[0]
                counts[el] = counts.get(el, 0) + self.primitive_prop(
                    entry, base, None, value, ptr, resource, root, orphan=True
                )
                continue
            entry = props.get(key)
            if entry is None:
                self._unknown(struct, key, ptr)
                continue
            el, tcode = entry
            if tcode in primitives:
                n = self.primitive_prop(entry, key, value, obj.get("_" + key), ptr, resource, root)
            else:
                n = self.complex_prop(entry, key, value, ptr, resource, root)
            counts[el] = counts.get(el, 0) + n
        for el in struct.required:
            if counts.get(el, 0) < el.min:
                name = el.name + ("[x]" if el.choice else "")
                found = counts.get(el, 0)
                self.add(
                    el.card_rule,
                    ptr + (name,),
                    f"{el.path} is required ({el.card}) but {'missing' if not found else f'occurs {found} time(s)'}",
                )
        for el, n in counts.items():
            if el.max is not None and n > el.max:
                self.add(
                    el.card_rule,
                    ptr + (el.name,),
                    f"{el.path} occurs {n} times but at most {el.max} "
                    f"{'is' if el.max == 1 else 'are'} allowed ({el.card})",
                )
        # ele-1 is about elements; a companion is the id/extensions of a primitive, whose ele-1
        # (value or extension) is checked with the primitive itself.
        if not is_resource and not companion:
            for inv in self.plan.element_invariants:
                self.invariant(inv, obj, struct.name, ptr, resource, root)
        for inv in struct.invariants:
            self.invariant(inv, obj, struct.name, ptr, resource, root)
        if struct.binding is not None:
            self.check_binding(struct.binding, obj, "Quantity", ptr, struct.name)

    def _unknown(self, struct: Structure, key: str, ptr: Pointer) -> None:
        # A choice element with a type suffix it does not allow gets the element's type rule,
        # which says what is allowed, instead of a bare "unknown property".
        for el in struct.elements:
            if el.choice and key.startswith(el.name) and key[len(el.name) :][:1].isupper():
                allowed = ", ".join(el.name + t[0].upper() + t[1:] for t in el.types)
                self.add(
                    el.type_rule,
                    ptr + (key,),
                    f"{key!r}: type {key[len(el.name) :]} is not allowed for {el.path}; use one of {allowed}",
                )
                return
        where = struct.name
        self.add(R.UNKNOWN_PROPERTY, ptr + (key,), f"{key!r} is not an element of {where}")

    def _items(self, el: ElementDef, key: str, value: object, p: Pointer) -> tuple[list, bool]:
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

    # -- primitives ----------------------------------------------------------------------------
    def primitive_prop(
        self,
        entry: tuple[ElementDef, str],
        key: str,
        value: object,
        companion: object,
        ptr: Pointer,
        resource: dict,
        root: dict,
        orphan: bool = False,
    ) -> int:
        el, tcode = entry
        ptype = self.plan.primitives[tcode]
        p = ptr + (key,)
        cp = ptr + ("_" + key,)
        if orphan:
            values: list = []
            listy = isinstance(companion, list)
        else:
            values, listy = self._items(el, key, value, p)
        comps: list | None = None
        if companion is not None:
            if isinstance(companion, list):
                if not listy:
                    self.add(R.COMPANION, cp, f"'_{key}' must be an object, like {key!r} is a single value")
                elif not orphan and len(companion) != len(values):
                    self.add(
                        R.COMPANION,
                        cp,
                        f"'_{key}' has {len(companion)} items but {key!r} has {len(values)}: "
                        "the two arrays must line up",
                    )
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
                self.add(
                    R.COMPANION,
                    cp,
                    f"'_{key}' must be an object with id and/or extension, found {describe_json(companion)}",
                )
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
                        self.add(
                            R.NULL,
                            ip,
                            f"{el.path} is null: null is only allowed in a primitive array "
                            f"where '_{key}' carries the id or extensions at the same position",
                        )
                    continue
                if not listy and not orphan:
                    self.add(R.NULL, ip, f"{el.path} is null: leave it out and keep only '_{key}'")
            else:
                problem = json_kind_problem(ptype, v)
                if problem is not None:
                    self.add(
                        el.type_rule,
                        ip,
                        f"{el.path} is {tcode}: {problem.split(' must be ', 1)[1]}"
                        if " must be " in problem
                        else problem,
                    )
                elif v == "" and ptype.json == "string":
                    self.add(R.EMPTY_STRING, ip, f"{el.path} is an empty string: leave the property out instead")
                else:
                    fmt = format_problem(ptype, v)
                    if fmt is not None:
                        self.add(ptype.rule, ip, f"{el.path}: {fmt}")
                    elif el.binding is not None and isinstance(v, str):
                        self.check_binding(el.binding, v, tcode, ip, el.path)
                    for inv in el.invariants:
                        self.invariant(inv, v, el.path, ip, resource, root)
            count += 1
            if c is not None:
                if not isinstance(c, dict):
                    self.add(
                        R.COMPANION,
                        icp,
                        f"'_{key}' items must be objects with id and/or extension, found {describe_json(c)}",
                    )
                elif self._element is not None:
                    self.visit_object(c, self._element, icp, resource, root, companion=True)
                    if v is None and c and not c.get("extension"):
                        for inv in self.plan.element_invariants:
                            self.add(inv.rule, icp, f"{inv.key}: {inv.human} ({el.path} has no value and no extension)")
        return count

    # -- complex types -------------------------------------------------------------------------
    def complex_prop(
        self, entry: tuple[ElementDef, str], key: str, value: object, ptr: Pointer, resource: dict, root: dict
    ) -> int:
        el, tcode = entry
        p = ptr + (key,)
        items, listy = self._items(el, key, value, p)
        count = 0
        for i, item in enumerate(items):
            ip = p + (i,) if listy else p
            count += 1  # present, even when malformed: the malformation is the one finding
            if item is None:
                self.add(R.NULL, ip, f"{el.path} is null: null is not a FHIR value; leave the property out")
                continue
            if not isinstance(item, dict):
                self.add(el.type_rule, ip, f"{el.path} is {tcode}: expected a JSON object, found {describe_json(item)}")
                continue
            if tcode == "Resource":
                self.visit_resource(item, ip, root)
                continue
            struct = el.children or self.plan.structures[tcode]
            self.visit_object(item, struct, ip, resource, root)
            if el.binding is not None:
                self.check_binding(el.binding, item, tcode, ip, el.path)
            if el.targets is not None and tcode == "Reference":
                self.check_target(el, item, ip, root)
            for inv in el.invariants:
                self.invariant(inv, item, el.path, ip, resource, root)
        return count

    # -- bindings ------------------------------------------------------------------------------
    def check_binding(self, binding: Binding, value: object, tcode: str, p: Pointer, path: str) -> None:
        vs = binding.value_set
        if vs is None:
            marker = (binding.rule.id, "")
            if marker not in self._once:
                self._once.add(marker)
                self.add(
                    R.BINDING_NOT_CHECKED,
                    p,
                    f"{path} is bound ({binding.strength}) to {binding.url}, "
                    "which is not bundled: its codes were not checked",
                )
            return
        strength = binding.strength
        if isinstance(value, str):
            if not vs.has_code(value):
                self.add(
                    binding.rule,
                    p,
                    f"{path}: {shorten(value)} is not in the {strength} value set {vs.title} "
                    f"({binding.url}); allowed: {vs.describe()}",
                )
            return
        if not isinstance(value, dict):
            return
        if tcode == "CodeableConcept":
            raw_codings = value.get("coding")
            codings = [c for c in raw_codings if isinstance(c, dict)] if isinstance(raw_codings, list) else []
            if any(vs.has_coding(c.get("system"), c.get("code")) for c in codings):
                return
            if not codings:
                if strength == "required":
                    self.add(
                        binding.rule,
                        p,
                        f"{path} has no coding, but its required binding to {vs.title} "
                        f"({binding.url}) needs a code from it",
                    )
                return  # extensible: text alone is allowed when no code fits
            shown = ", ".join(f"{c.get('system')}#{c.get('code')}" for c in codings[:3])
            self.add(
                binding.rule,
                p,
                f"{path}: no coding is from the {strength} value set {vs.title} ({binding.url}); found {shown}",
            )
            return
        system, code = value.get("system"), value.get("code")
        if not isinstance(code, str) or not (system is None or isinstance(system, str)):
            return  # absent or malformed: nothing to look up (a malformed value is the type rule's finding)
        if not vs.has_coding(system, code):
            self.add(
                binding.rule,
                p,
                f"{path}: {system}#{code} is not in the {strength} value set {vs.title} ({binding.url})",
            )

    # -- references ----------------------------------------------------------------------------
    def check_target(self, el: ElementDef, ref: dict, p: Pointer, root: dict) -> None:
        targets = el.targets or frozenset()
        allowed = ", ".join(sorted(targets))
        rtype = ref.get("type")
        if isinstance(rtype, str) and "/" not in rtype and rtype not in targets:
            self.add(
                el.target_rule, p + ("type",), f"{el.path}.type is {rtype!r} but {el.path} may only refer to {allowed}"
            )
        kind = self.reference_kind(ref, root)
        if kind is not None and kind not in targets:
            self.add(
                el.target_rule,
                p + ("reference",),
                f"{el.path} refers to {kind} ({shorten(ref['reference'])}), but its allowed targets are {allowed}",
            )

    def reference_kind(self, ref: dict, root: dict | None = None) -> str | None:
        """The resource type a literal reference points at, when it can be told."""
        ctx = self.eval_ctx if root is None else fhirpath.EvalContext(root=root, bundle=self.eval_ctx.bundle)
        return reference_kind(ref, ctx)

    def resolve(self, literal: str, root: dict | None = None) -> dict | None:
        """The target of a literal reference inside the resource (#id) or its Bundle, else None."""
        ctx = self.eval_ctx if root is None else fhirpath.EvalContext(root=root, bundle=self.eval_ctx.bundle)
        return fhirpath.resolve_reference(literal, ctx)

    def resolve_any(self, node: object) -> dict | None:
        if isinstance(node, dict) and isinstance(node.get("reference"), str):
            return self.resolve(node["reference"])
        return self.resolve(node) if isinstance(node, str) else None

    def conforms(self, resource: dict, profile_url: str) -> bool:
        return self.target_checker is not None and not self.target_checker(resource, (profile_url,))

    def report_target(
        self, rule: Rule, p: Pointer, path: str, literal: str, target: dict, profiles: tuple[str, ...]
    ) -> None:
        if self.target_checker is None:
            return
        problems = self.target_checker(target, profiles)
        if problems:
            shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
            self.add(
                rule,
                p,
                f"{path} refers to {shorten(literal)}, which does not conform to {' or '.join(profiles)}: {shown}",
            )

    # -- invariants ----------------------------------------------------------------------------
    def invariant(self, inv: Invariant, node: object, type_path: str, p: Pointer, resource: dict, root: dict) -> None:
        try:
            detail = invariant_detail(inv, node, type_path, resource, root, self.eval_ctx)
        except (NotEvaluated, fhirpath.FhirPathError) as exc:
            self.add(R.INVARIANT_NOT_EVALUATED, p, f"{inv.key} ({inv.human}) could not be evaluated: {exc}")
            return
        if detail is not None:
            self.add(inv.rule, p, f"{inv.key}: {inv.human}" + (f" ({detail})" if detail else ""))
