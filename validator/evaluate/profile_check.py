"""Applying a profile to a resource the engine has walked: top-down over the constrained
elements only (cardinality, must-support, pattern/fixed, binding, targets, target profiles,
slicing), reporting through the same walk so every finding has its path and position."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from validator import rule_ids as R
from validator.compile.plan import Binding, Rule
from validator.compile.profiles import Constraint, Profile, Slicing
from validator.evaluate.slicing import classify, matches_fixed, matches_pattern
from validator.fhir.jsontext import Pointer
from validator.fhir.primitives import shorten
from validator.rule_ids import implements


@dataclass(slots=True)
class PendingTarget:
    """A reference whose target profile could not be checked yet (target not in this file)."""

    pointer: Pointer
    reference: str
    profiles: tuple[str, ...]
    rule: Rule
    path: str


class Walk(Protocol):
    """What a profile check asks of the walk it reports through (evaluate/walk.py ResourceWalk)."""

    pending: list[PendingTarget]
    noted: set[str]  # profiles whose not-checked notes were given for this resource

    def add(self, rule_id_or_rule: str | Rule, pointer: Pointer, message: str, duplicate: bool = False) -> None: ...
    def check_binding(self, binding: Binding, value: object, tcode: str, p: Pointer, path: str) -> None: ...
    def reference_kind(self, ref: dict, root: dict | None = None) -> str | None: ...
    def resolve(self, literal: str, root: dict | None = None) -> dict | None: ...
    def resolve_any(self, node: object) -> dict | None: ...
    def conforms(self, resource: dict, profile_url: str) -> bool: ...
    def report_target(self, rule: Rule, p: Pointer, path: str, literal: str, target: dict,
                      profiles: tuple[str, ...]) -> None: ...  # fmt: skip


class ProfileCheck:
    def __init__(self, walk: Walk, profile: Profile, must_support: bool) -> None:
        self.walk = walk
        self.profile = profile
        self.must_support = must_support

    def run(self, resource: dict) -> None:
        self.not_checked(self.profile)
        for c in self.profile.root.children.values():
            self.constraint(c, resource, ())

    @implements(R.PROFILE_NOT_CHECKED)
    def not_checked(self, profile: Profile) -> None:
        """What the profile says but the validator cannot check: one note per construct, once per
        resource (a datatype or extension profile applied to many values is noted once)."""
        if profile.not_checked_rule is None or profile.url in self.walk.noted:
            return
        self.walk.noted.add(profile.url)
        for element, reason in profile.not_checked:
            self.walk.add(profile.not_checked_rule, (),
                          f"{profile.title}: {element}: {reason} ({profile.url}; the rest of the profile was applied)")

    # -- one constrained element of one parent object --------------------------------------------
    def constraint(self, c: Constraint, parent: dict, ptr: Pointer) -> None:
        name = c.name
        if c.choices is not None:  # value[x]: whichever typed key the value has
            name = next((k for k in c.choices if k in parent or "_" + k in parent), name)
            if c.type_rule is not None and name in c.choices and c.choices[name] not in (c.types or ()):
                self.walk.add(c.type_rule, ptr + (name,), f"{c.path} must be {' or '.join(sorted(c.types or ()))} "
                              f"in {self.profile.title}, found {name}")  # fmt: skip
                return
        raw = parent.get(name)
        listy = isinstance(raw, list)
        items = [x for x in (raw if listy else [raw]) if x is not None] if raw is not None else []
        if raw is None and isinstance(parent.get("_" + name), (dict, list)):
            items = [None]  # a primitive present only through its extensions still counts
        p = ptr + (name,)
        n = len(items)
        lo = c.min if c.min is not None else 0
        if c.card_rule is not None:
            if n < lo:
                self.walk.add(
                    c.card_rule,
                    p,
                    f"{c.path} is required by {self.profile.title} ({c.card}) but "
                    + ("missing" if n == 0 else f"occurs {n} time(s)"),
                )
            elif c.max_set and c.max is not None and n > c.max:
                self.walk.add(
                    c.card_rule,
                    p,
                    f"{c.path} occurs {n} times but {self.profile.title} allows at most {c.max} ({c.card})",
                )
        if n == 0:
            if c.must_support_rule is not None and self.must_support:
                self.walk.add(
                    c.must_support_rule,
                    p,
                    f"{c.path} is must-support in {self.profile.title} and absent: "
                    "receivers expect it when the data exist",
                )
            if c.slicing is not None and not (c.card_rule is not None and lo > 0):
                self.slicing(c, [], listy, p)
            return
        for i, item in enumerate(items):
            ip = p + (i,) if listy else p
            self.item(c, item, ip)
        if c.slicing is not None:
            self.slicing(c, items, listy, p)

    def item(self, c: Constraint, item: object, ip: Pointer) -> None:
        if item is None:
            return
        if c.value_rule is None:
            pass  # a slice's selecting value: the item matched it
        elif c.fixed is not None and not matches_fixed(item, c.fixed):
            self.walk.add(
                c.value_rule, ip, f"{c.path} must be exactly {c.fixed!r} in {self.profile.title}, found {_show(item)}"
            )
        elif c.pattern is not None and not matches_pattern(item, c.pattern):
            self.walk.add(
                c.value_rule, ip, f"{c.path} must match {c.pattern!r} in {self.profile.title}, found {_show(item)}"
            )
        if c.binding is not None:
            self.walk.check_binding(c.binding, item, c.type_code or "", ip, c.path)
        if isinstance(item, dict):
            if c.targets is not None:
                self.targets(c, item, ip)
            if c.target_profiles:
                self.target_profiles(c, item, ip)
            for child in c.children.values():
                self.constraint(child, item, ip)
            for prof in c.profile_refs or ():
                self.conform(prof, item, ip)

    def conform(self, prof: Profile, value: dict, ip: Pointer) -> None:
        """A datatype or extension profile applied to one value (and the profiles it is layered on)."""
        for layer in prof.chain():
            inner = ProfileCheck(self.walk, layer, self.must_support)
            inner.not_checked(layer)
            for child in layer.root.children.values():
                inner.constraint(child, value, ip)

    def conforms_datatype(self, value: object, prof: Profile) -> bool:
        """Whether a value conforms to a datatype profile, without reporting (profile discriminators)."""
        if not isinstance(value, dict):
            return False
        recorder = _Recorder(self.walk)
        ProfileCheck(recorder, prof, False).conform(prof, value, ())
        return not recorder.errors

    # -- references ------------------------------------------------------------------------------
    def targets(self, c: Constraint, ref: dict, ip: Pointer) -> None:
        kind = self.walk.reference_kind(ref)
        allowed = ", ".join(sorted(c.targets or ()))
        if kind is not None and kind not in (c.targets or ()):
            self.walk.add(
                c.target_rule,
                ip + ("reference",) if "reference" in ref else ip,
                f"{c.path} refers to {kind} but {self.profile.title} allows only {allowed}",
            )

    def target_profiles(self, c: Constraint, ref: dict, ip: Pointer) -> None:
        literal = ref.get("reference")
        if not isinstance(literal, str):
            return
        target = self.walk.resolve(literal)
        if target is None:
            if c.target_profile_rule is not None:
                self.walk.pending.append(
                    PendingTarget(ip + ("reference",), literal, c.target_profiles, c.target_profile_rule, c.path)
                )
            return
        self.walk.report_target(c.target_profile_rule, ip + ("reference",), c.path, literal, target, c.target_profiles)

    # -- slicing ---------------------------------------------------------------------------------
    @implements(R.TARGET_NOT_CHECKED)
    def slicing(self, c: Constraint, items: list, listy: bool, p: Pointer) -> None:
        slicing: Slicing = c.slicing  # type: ignore[assignment]
        assigned = classify(slicing, items, self.walk.resolve_any, self.walk.conforms, self.conforms_datatype,
                            c.type_code)  # fmt: skip
        # Slices told apart by the resolved target: a reference this run cannot resolve may be in
        # any of them, so a slice short of its minimum is not an error then, only not checked.
        unresolved = 0
        if any("resolve()" in path for _t, path in slicing.discriminators):
            unresolved = sum(1 for item in items if self.walk.resolve_any(item) is None)
        if slicing.rule is not None:
            self._slicing_rule(c, slicing, slicing.rule, assigned, listy, p)
        name = c.name
        for sl in slicing.slices:
            where = [i for i, m in enumerate(assigned) if sl in m]
            count = len(where)
            spots = " and ".join(f"{name}[{i}]" for i in where) if listy else name
            label = f"{name}: slice {sl.name} ({slicing.describe(sl)})"
            card = f"{sl.min}..{'*' if sl.max is None else sl.max}"
            if count < sl.min and unresolved:
                self.walk.add(
                    R.TARGET_NOT_CHECKED,
                    p,
                    f"{label} requires at least {sl.min} entr{'y' if sl.min == 1 else 'ies'}; found {count}, and "
                    f"{unresolved} reference(s) are not in this run, so the slice count was not checked",
                )
            elif count < sl.min:
                self.walk.add(
                    sl.card_rule,
                    p,
                    f"{label} requires {'at least ' if sl.max != sl.min else ''}{sl.min} "
                    f"entr{'y' if sl.min == 1 else 'ies'} ({card}), found "
                    + ("none" if not count else f"{count} at {spots}")
                    + self._why_targets_fail(slicing, sl, items, assigned),
                )
            elif sl.max is not None and count > sl.max:
                self.walk.add(
                    sl.card_rule,
                    p,
                    f"{label} allows at most {sl.max} entr{'y' if sl.max == 1 else 'ies'} "
                    f"({card}), found {count} at {spots}",
                )
            for i in where:
                ip = p + (i,) if listy else p
                self.item(sl.constraint, items[i], ip)


    def _why_targets_fail(self, slicing: object, sl: object, items: list, assigned: list) -> str:
        """For a slice told apart by the profile its references resolve to: why the references that
        do resolve are not in it (the first problem of the first such target), else ''."""
        checker = getattr(self.walk, "target_checker", None)  # a recorder of a nested check has none
        urls = tuple(getattr(sl, "profiles", None) or ())
        by_profile = any(t == "profile" and "resolve()" in path for t, path in slicing.discriminators)  # type: ignore[attr-defined]
        if checker is None or not urls or not by_profile:
            return ""
        targets = [t for i, item in enumerate(items) if sl not in assigned[i]
                   and (t := self.walk.resolve_any(item)) is not None]  # fmt: skip
        for target in targets:
            problems = checker(target, urls)
            if problems:
                return (f"; {len(targets)} reference(s) resolve, but not to a resource conforming to it: "
                        f"{target.get('resourceType')}/{target.get('id')}: {problems[0]}")
        return ""
    def _slicing_rule(self, c: Constraint, slicing: Slicing, rule: Rule, assigned: list, listy: bool,
                      p: Pointer) -> None:  # fmt: skip
        """Items in several slices, unmatched items of closed or openAtEnd slicing, order."""
        name = c.name
        last_order = -1
        seen_unmatched = False
        for i, matches in enumerate(assigned):
            ip = p + (i,) if listy else p
            if len(matches) > 1:
                names = ", ".join(s.name for s in matches)
                self.walk.add(rule, ip, f"{name}[{i}] matches several slices ({names}) of {c.path}")
            if not matches:
                seen_unmatched = True
                if slicing.rules == "closed":
                    self.walk.add(rule, ip, f"{name}[{i}] matches no slice of {c.path}, and the slicing is closed "
                                  f"({self._all_slices(slicing)})")  # fmt: skip
                continue
            if slicing.rules == "openAtEnd" and seen_unmatched:
                self.walk.add(rule, ip, f"{name}[{i}] is in slice {matches[0].name} after an item that matches no "
                              "slice: unmatched items must come last (openAtEnd)")  # fmt: skip
            order = slicing.slices.index(matches[0])
            if slicing.ordered and order < last_order:
                self.walk.add(rule, ip, f"{name}[{i}] (slice {matches[0].name}) is out of order: the slicing of "
                              f"{c.path} is ordered ({', '.join(s.name for s in slicing.slices)})")  # fmt: skip
            last_order = max(last_order, order)

    @staticmethod
    def _all_slices(slicing: Slicing) -> str:
        return "; ".join(f"{s.name}: {slicing.describe(s)}" for s in slicing.slices)


class _Recorder:
    """A walk that keeps the errors a check would report instead of reporting them."""

    def __init__(self, walk: Walk) -> None:
        self._walk = walk
        self.pending: list[PendingTarget] = []
        self.noted: set[str] = set()  # no notes while only asking whether a value conforms
        self.errors = 0

    def add(self, rule_id_or_rule: str | Rule, pointer: Pointer, message: str, duplicate: bool = False) -> None:
        if isinstance(rule_id_or_rule, Rule) and rule_id_or_rule.severity.name in ("ERROR", "FATAL"):
            self.errors += 1

    def check_binding(self, binding: Binding, value: object, tcode: str, p: Pointer, path: str) -> None:
        from validator.evaluate.bindings import binding_problem

        problem = binding_problem(binding, value, tcode, path)
        if problem is not None and isinstance(problem[0], Rule):
            self.add(problem[0], p, problem[1])

    def reference_kind(self, ref: dict, root: dict | None = None) -> str | None:
        return self._walk.reference_kind(ref)

    def resolve(self, literal: str, root: dict | None = None) -> dict | None:
        return self._walk.resolve(literal)

    def resolve_any(self, node: object) -> dict | None:
        return self._walk.resolve_any(node)

    def conforms(self, resource: dict, profile_url: str) -> bool:
        return self._walk.conforms(resource, profile_url)

    def report_target(self, rule: Rule, p: Pointer, path: str, literal: str, target: dict,
                      profiles: tuple[str, ...]) -> None:  # fmt: skip
        pass  # a target's conformance does not decide a datatype's


def _show(value: object) -> str:
    if isinstance(value, str):
        return shorten(value)
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
