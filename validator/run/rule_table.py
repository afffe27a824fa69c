"""The rule table: every rule id, what declares it and what implements it, in one place.

A rule is declared once, in a pack (id, severity, issue code, description, source), and
implemented in one of three ways:
- an element table of a pack (cardinality, type, format, binding, target), checked by the walk's
  check of that kind;
- a FHIRPath invariant, run by the evaluator its pack names (see Invariant.evaluator);
- a Python check, a function registered for the rule with `@implements` (rule_ids.py);
and a profile's constraints are implemented by the profile check (evaluate/profile_check.py).
`rules list`, `rules show` and the reports read this table. A pack that declares a Python rule
nobody implements, or a check registered for a rule no pack declares, is a broken pack.
"""

from __future__ import annotations

from dataclasses import dataclass

# The modules that hold Python checks: imported so that their @implements have run.
import validator.evaluate.dicom.compare
import validator.evaluate.dicom.dicomweb
import validator.evaluate.dicom.files
import validator.evaluate.dicom.study
import validator.evaluate.walk
import validator.load.sources
import validator.load.xml
import validator.run.pipeline
import validator.select.selection  # noqa: F401
from validator.compile.packs import PackError
from validator.compile.plan import Invariant, Plan, Rule
from validator.rule_ids import IMPLEMENTED_BY

_ELEMENT_KINDS = {
    "card": "cardinality",
    "type": "JSON type and datatype",
    "format": "primitive format",
    "binding": "terminology binding",
    "target": "reference target type",
}


@dataclass(frozen=True, slots=True)
class RuleEntry:
    rule: Rule  # the declaration
    implementation: str  # what evaluates it, in words


def rule_table(plan: Plan, profile_rules: dict[str, Rule] | None = None) -> dict[str, RuleEntry]:
    """Every rule of a plan (and of the profiles given), with its implementation."""
    invariants = _invariants(plan)
    table = {rid: RuleEntry(rule, _implementation(rule, invariants.get(rid))) for rid, rule in plan.rules.items()}
    for rid, rule in (profile_rules or {}).items():
        where = "FHIRPath of a profile invariant (evaluate/walk.py)" if rule.kind == "invariant" else \
            f"profile constraint: {rule.kind} of {rule.path} (evaluate/profile_check.py)"
        table[rid] = RuleEntry(rule, where)
    return table


def check_implementations(plan: Plan) -> None:
    """Raise PackError when a declared Python rule has no check, or a check no declaration."""
    declared = {rid for rid, r in plan.rules.items() if r.kind == "native"}
    problems = [f"rule {rid}: declared as implemented in Python, but no check is registered for it"
                for rid in sorted(declared - set(IMPLEMENTED_BY))]  # fmt: skip
    problems += [f"rule {rid}: {', '.join(IMPLEMENTED_BY[rid])} implements it but no pack declares it"
                 for rid in sorted(set(IMPLEMENTED_BY) - declared)]  # fmt: skip
    if problems:
        raise PackError(problems)


def _implementation(rule: Rule, invariant: Invariant | None) -> str:
    if rule.kind in _ELEMENT_KINDS:
        return f"element table: {_ELEMENT_KINDS[rule.kind]} of {rule.path} (evaluate/check_source.py)"
    if rule.kind == "invariant":
        return f"invariant: {invariant.evaluator}" if invariant else "invariant"
    if rule.kind == "native":
        return "Python check: " + ", ".join(IMPLEMENTED_BY.get(rule.id, ["none registered"]))
    return rule.kind


def _invariants(plan: Plan) -> dict[str, Invariant]:
    found = {i.rule.id: i for i in plan.element_invariants}
    for struct in plan.structures.values():
        found.update((i.rule.id, i) for i in struct.invariants)
        for el in struct.elements:
            found.update((i.rule.id, i) for i in el.invariants)
    return found
