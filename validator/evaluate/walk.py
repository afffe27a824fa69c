"""The findings on one resource: the base rules' (base_rules.py), then the profiles', with the
pieces both need (findings, FHIRPath expressions of pointers, references, invariants).
The engine only returns findings; it never prints and never exits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from validator import rule_ids as R
from validator.compile.plan import Binding, Invariant, Plan, Rule
from validator.compile.profiles import Profile
from validator.evaluate.bindings import binding_problem, report_binding
from validator.evaluate.profile_check import PendingTarget, ProfileCheck
from validator.fhir.primitives import shorten
from validator.fhirpath import expressions as fhirpath
from validator.fhirpath.natives import InvariantContext
from validator.fhirpath.subset import Unsupported, passes
from validator.model import Severity
from validator.rule_ids import implements

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


# Expressions rendered, by (resource type, pointer): every resource of a corpus tends to have its
# findings at the same few pointers, and a lookup costs less than joining the steps again. Cleared
# when full, so a payload with findings at a million pointers keeps it bounded.
_EXPRESSIONS: dict[tuple[str, Pointer] | None, str] = {}
_EXPRESSIONS_KEPT = 4096


def render_expression(resource_type: str, pointer: Pointer) -> str:
    """FHIRPath with indices for a JSON pointer inside a resource. `_x` companions are the
    primitive x itself in FHIRPath (its id and extensions)."""
    key = (resource_type, pointer)
    # A pointer's steps are keys (str) and indices (int), never bools, which would equal 0 and 1.
    try:
        found = _EXPRESSIONS.get(key)
    except TypeError:  # a pointer given as a list: rendered, not kept
        key, found = None, None
    if found is not None:
        return found
    parts = [resource_type]
    for step in pointer:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        else:
            parts.append("." + (step[1:] if step.startswith("_") else step))
    found = "".join(parts)
    if key is not None:
        if len(_EXPRESSIONS) >= _EXPRESSIONS_KEPT:
            _EXPRESSIONS.clear()
        _EXPRESSIONS[key] = found
    return found


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
    """The findings on one resource: those of the base rules (base_rules.py), then those of the
    profiles given, which are applied to the resource over their constrained elements."""

    def __init__(
        self,
        plan: Plan,
        eval_ctx: fhirpath.EvalContext,
        profiles: Sequence[Profile] = (),
        must_support: bool = True,
        target_checker: TargetChecker | None = None,
    ) -> None:
        self.plan = plan
        self.eval_ctx = eval_ctx
        self.profiles = profiles
        self.must_support = must_support
        self.target_checker = target_checker
        self.issues: list[RawIssue] = []
        self.pending: list[PendingTarget] = []  # target profiles to check once the whole run is read
        # Profile binding rules whose not-bundled note was given (a profile's rules are its own,
        # never the base's: the base rules keep their own notes).
        self._noted: set[str] = set()
        self.noted: set[str] = set()  # profiles whose not-checked constructs were noted

    # -- recording -----------------------------------------------------------------------------
    def add(self, rule_id_or_rule: str | Rule, pointer: Pointer, message: str, duplicate: bool = False) -> None:
        rule = rule_id_or_rule if isinstance(rule_id_or_rule, Rule) else self.plan.rules[rule_id_or_rule]
        self.issues.append(RawIssue(rule, pointer, message, rule.severity, duplicate))

    # -- resources -----------------------------------------------------------------------------
    def run(self, resource: dict, base: list[RawIssue]) -> list[RawIssue]:
        """The findings of the base rules (`base`: BaseRules.check of this resource) and the profiles."""
        self.issues.extend(base)
        applied: set[str] = set()
        for asked in self.profiles:
            for profile in asked.chain():  # a profile on a profile: its bases apply too, once
                if profile.url in applied:
                    continue
                applied.add(profile.url)
                ProfileCheck(self, profile, self.must_support).run(resource)
                self.profile_invariants(profile, resource)
        extensions = {url: ext for asked in self.profiles for url, ext in asked.extensions.items()}
        if extensions:
            self.extension_contexts(resource, extensions)
        return self.issues

    def extension_contexts(self, resource: dict, extensions: dict[str, Profile]) -> None:
        """An extension an IG defines, used where its definition does not allow it (its element
        contexts): wherever it is in the resource, sliced in by a profile or not."""
        rtype = resource.get("resourceType")
        stack: list[tuple[object, tuple, str]] = [(resource, (), rtype if isinstance(rtype, str) else "")]
        while stack:
            node, ptr, path = stack.pop()
            if isinstance(node, list):
                stack.extend((v, (*ptr, i), path) for i, v in enumerate(node))
                continue
            if not isinstance(node, dict):
                continue
            for key, value in node.items():
                if key in ("extension", "modifierExtension") and isinstance(value, list):
                    for i, item in enumerate(value):
                        url = item.get("url") if isinstance(item, dict) else None
                        ext = extensions.get(url) if isinstance(url, str) else None  # a malformed url: the type rule's
                        if ext is not None and ext.context_rule is not None and not self._allowed(ext, path):
                            self.add(ext.context_rule, (*ptr, key, i),
                                     f"{ext.title} ({ext.url}) is used on {path}, but may only be used on "
                                     f"{', '.join(ext.contexts)}")  # fmt: skip
                    continue  # an extension's own content is not where an IG's resource extension goes
                if key == "contained" and isinstance(value, list):
                    for i, res in enumerate(value):
                        kind = res.get("resourceType") if isinstance(res, dict) else None
                        stack.append((res, (*ptr, key, i), kind if isinstance(kind, str) else ""))
                    continue
                name = key[1:] if key.startswith("_") else key
                stack.append((value, (*ptr, key), f"{path}.{name}"))

    def _allowed(self, ext: Profile, path: str) -> bool:
        """Whether an element path is among an extension's contexts. A context that is a type
        other than a resource (Identifier, Element) is not told here: allowed."""
        for context in ext.contexts:
            if path == context or (context.endswith("[x]") and path.startswith(context[:-3])):
                return True
            if context in ("Element", "Base") or (context in ("Resource", "DomainResource") and "." not in path):
                return True
            if "." not in context and context not in self.plan.resource_types and context != path.split(".")[0]:
                return True  # a datatype or Element context: its type is not known here
        return False

    @implements(R.INVARIANT_NOT_EVALUATED)
    def profile_invariants(self, profile: Profile, resource: dict) -> None:
        """The invariants a profile adds, on the resource or on each value at their context."""
        for inv in profile.invariants:
            parts = inv.context.split(".")[1:]
            nodes: list[tuple[object, Pointer]] = [(resource, ())]
            for part in parts:
                nxt: list[tuple[object, Pointer]] = []
                for node, ptr in nodes:
                    value = node.get(part) if isinstance(node, dict) else None
                    if isinstance(value, list):
                        nxt.extend((v, (*ptr, part, i)) for i, v in enumerate(value))
                    elif value is not None:
                        nxt.append((value, (*ptr, part)))
                nodes = nxt
            for node, ptr in nodes:
                try:
                    detail = invariant_detail(inv, node, inv.context, resource, self.eval_ctx.root or resource,
                                              self.eval_ctx)  # fmt: skip
                except Exception as exc:  # an expression fhirpathpy cannot evaluate on this payload
                    self.add(R.INVARIANT_NOT_EVALUATED, ptr, f"{inv.key} of {profile.title} could not be evaluated: "
                             f"{exc}")  # fmt: skip
                    continue
                if detail is not None:
                    message = f"{inv.key}: {inv.human} ({profile.title})" + (f": {detail}" if detail else "")
                    self.add(inv.rule, ptr, message)

    # -- bindings ------------------------------------------------------------------------------
    def check_binding(self, binding: Binding, value: object, tcode: str, p: Pointer, path: str) -> None:
        problem = binding_problem(binding, value, tcode, path)
        if problem is not None:
            report_binding(problem, binding, p, self.add, self._noted)

    # -- references ----------------------------------------------------------------------------
    def reference_kind(self, ref: dict) -> str | None:
        """The resource type a literal reference points at, when it can be told."""
        return reference_kind(ref, self.eval_ctx)

    def resolve(self, literal: str) -> dict | None:
        """The target of a literal reference inside the resource (#id) or its Bundle, else None."""
        return fhirpath.resolve_reference(literal, self.eval_ctx)

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
