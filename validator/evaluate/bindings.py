"""The binding check, written once: the base rules (base_rules.py) and the profiles
(profile_check.py) both ask it whether a coded value is in the value set its element is bound to."""

from __future__ import annotations

from collections.abc import Callable

from validator import rule_ids as R
from validator.compile.plan import Binding, Rule
from validator.fhir.primitives import shorten
from validator.rule_ids import implements

Problem = tuple[str | Rule, str]  # (rule, message)
Add = Callable[[str | Rule, tuple, str], None]


@implements(R.BINDING_NOT_CHECKED)
def binding_problem(binding: Binding, value: object, tcode: str, path: str) -> Problem | None:
    """What is wrong with `value` (a code, Coding, CodeableConcept or Quantity) against its
    binding, or None. A binding to a value set that is not bundled cannot be checked: that is an
    information note (rule engine:binding-not-checked), whatever the value."""
    vs = binding.value_set
    strength = binding.strength
    if vs is None:
        return R.BINDING_NOT_CHECKED, (
            f"{path} is bound ({strength}) to {binding.url}, which is not bundled: its codes were not checked"
        )
    if isinstance(value, str):
        if vs.has_code(value):
            return None
        return binding.rule, (
            f"{path}: {shorten(value)} is not in the {strength} value set {vs.title} "
            f"({binding.url}); allowed: {vs.describe()}"
        )
    if not isinstance(value, dict):
        return None
    ext = binding.extension  # codes an extensible binding admits beyond its value set
    if tcode == "CodeableConcept":
        raw_codings = value.get("coding")
        codings = [c for c in raw_codings if isinstance(c, dict)] if isinstance(raw_codings, list) else []
        if any(vs.has_coding(c.get("system"), c.get("code")) for c in codings):
            return None
        if ext is not None and any(ext.has_coding(c.get("system"), c.get("code")) for c in codings):
            return None
        if not codings:
            if strength != "required":
                return None  # extensible: text alone is allowed when no code fits
            return binding.rule, (
                f"{path} has no coding, but its required binding to {vs.title} ({binding.url}) needs a code from it"
            )
        shown = ", ".join(f"{c.get('system')}#{c.get('code')}" for c in codings[:3])
        return binding.rule, (
            f"{path}: no coding is from the {strength} value set {vs.title} ({binding.url}); found {shown}"
        )
    system, code = value.get("system"), value.get("code")
    if not isinstance(code, str) or not (system is None or isinstance(system, str)):
        return None  # absent or malformed: nothing to look up (a malformed value is the type rule's finding)
    if vs.has_coding(system, code) or (ext is not None and ext.has_coding(system, code)):
        return None
    return binding.rule, f"{path}: {system}#{code} is not in the {strength} value set {vs.title} ({binding.url})"


@implements(R.BINDING_NOT_CHECKED)
def report_binding(problem: Problem, binding: Binding, p: tuple, add: Add, noted: set[str]) -> None:
    """Add a binding problem; the note that a value set is not bundled only once per binding rule
    (`noted`: the rules already noted for this resource)."""
    rule, message = problem
    if rule == R.BINDING_NOT_CHECKED:
        if binding.rule.id in noted:
            return
        noted.add(binding.rule.id)
    add(rule, p, message)
