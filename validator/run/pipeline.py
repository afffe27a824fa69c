"""One resource through the stages, and a run through the checks that wait for its end.

In: a ResourceInput from the load stage. For each: select (version, profiles) -> the fast yes/no
pass of the base rules -> the explaining walk when something is to be said, or when profiles
apply -> the DICOM checks of an ImagingStudy -> findings stamped with expression, position and
the configured severity (a ResourceResult). Out of the same step: the checks that wait for other
inputs (evaluate/cross.py) and what this resource may tell them. `finish` runs those at the end.
Serial runs and `--jobs` workers (run/parallel.py) call the same two public functions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from validator import rule_ids as R
from validator.compile.catalog import plan_for
from validator.compile.plan import Plan, Rule
from validator.compile.profiles import ProfileSet
from validator.evaluate.cross import (
    Place,
    Remembered,
    Waiting,
    WaitingEndpoint,
    WaitingTarget,
    finish_waiting,
    remember_endpoint,
)
from validator.evaluate.fast_path import FastPath
from validator.evaluate.walk import RawIssue, ResourceWalk, render_expression
from validator.fhir.jsontext import PositionIndex, key_tokens
from validator.fhirpath.expressions import EvalContext, resolve_reference
from validator.limits import Limits
from validator.load.sources import ResourceInput
from validator.model import Issue, ResourceResult, Severity
from validator.select.selection import Selection, Selector, mismatch_notes


@dataclass(slots=True)
class Outcome:
    """A validated resource, the checks it leaves for the end of the run, and what it may tell them."""

    result: ResourceResult
    waiting: Waiting | None
    remembered: list[tuple[str, Remembered]]


class Pipeline:
    """The per-resource stages with a Validator's settings; stateless between resources but for
    caches of compiled code and of target checks."""

    def __init__(self, selector: Selector, profile_set: Callable[[], ProfileSet], limits: Limits,
                 must_support: bool, dicom: bool, dicom_files: object | None,
                 severity: dict[str, Severity]) -> None:  # fmt: skip
        self.selector = selector
        self._profile_set = profile_set
        self.limits = limits
        self.must_support = must_support
        self.dicom = dicom
        self.dicom_files = dicom_files
        self.severity = severity
        self.plan = plan_for(selector.initial().version)
        self._fast_paths: dict[str, FastPath] = {}
        # (id of target, profiles) -> (target, problems); the target is kept so that an id cannot
        # be recycled by another object while the entry lives. Cleared at the start of each run.
        self._target_cache: dict[tuple[int, tuple[str, ...]], tuple[dict, list[str]]] = {}
        self._target_info: _Targets | None = None

    def start(self) -> None:
        self._target_cache.clear()

    def _targets(self) -> _Targets:
        if self._target_info is None:
            self._target_info = _targets_of(self._profile_set())
        return self._target_info

    # -- one resource ---------------------------------------------------------------------------
    def validate(self, item: ResourceInput, index: int = 0) -> Outcome:
        started = time.perf_counter()
        issues: list[Issue] = []
        for w in item.warnings:
            issues.append(self._load_issue(w.rule, w.message, w.line, w.column))
        res = item.resource
        rtype = rid = None
        selection = self.selector.initial()
        waiting = None
        if item.problem is not None:
            p = item.problem
            issues.append(self._load_issue(p.rule, p.message, p.line, p.column))
        elif isinstance(res, dict):
            rtype = res.get("resourceType") if isinstance(res.get("resourceType"), str) else None
            rid = res.get("id") if isinstance(res.get("id"), str) else None
            if not self.selector.fixed:
                # Version markers read shapes and values, which a plain parse keeps exactly.
                selection = self.selector.version(res, rtype)
            del res  # a plain tree parsed again is freed before the precise one is built
            clean = self._fast_verdict(item, selection)
            res = item.resource  # parsed again, precisely, if the plain parse was not proved exact
            if self.selector.fixed and not clean:
                # Only a payload that breaks some rule can have another version's shape: every
                # version marker does (tests/test_fast_path.py), so a clean one is not searched.
                selection = self.selector.version(res, rtype)
            raw, waiting = self._evaluate(item, res, rtype, selection, clean, index)
            base = rtype or "Resource"
            issues.extend(self._stamp(r, base, item.positions, item.pointer) for r in raw)
        issues.sort(key=_by_position)
        result = ResourceResult(
            source=item.source,
            entry=item.entry,
            resource_type=rtype,
            id=rid,
            fhir_version=selection.version.number,
            profiles=tuple(p.url for p in selection.profiles),
            issues=tuple(issues),
            version_reason=selection.reason,
            duration=time.perf_counter() - started,
        )
        return Outcome(result, waiting, self.remember(item))

    def _evaluate(self, item: ResourceInput, res: dict, rtype: str | None, selection: Selection, clean: bool,
                  index: int) -> tuple[list[RawIssue], Waiting | None]:  # fmt: skip
        plan = plan_for(selection.version)
        if selection.conflicts:
            return [self._raw(*note) for note in mismatch_notes(selection)], None
        if rtype is not None and self.selector.wants_profiles(res):
            self.selector.profiles(selection, res, rtype)
        raw = [self._raw(*note) for note in selection.notes]
        bundle = item.bundle
        pending = []
        if not clean or selection.profiles:
            walk = ResourceWalk(
                plan,
                EvalContext(root=res, bundle=bundle),
                profiles=selection.profiles,
                must_support=self.must_support,
                target_checker=lambda t, urls: self.check_target(t, bundle, urls),
                max_depth=self.limits.max_depth,
            )
            raw.extend(walk.run(res, base_clean=clean))
            pending = walk.pending
        endpoints: list[tuple] = []
        if rtype == "ImagingStudy" and (self.dicom or self.dicom_files is not None):
            endpoints = self._dicom(res, EvalContext(root=res, bundle=bundle), raw, plan)
        if not (pending or endpoints):
            return raw, None
        # Where findings of the waiting checks will be shown, located now while the text is here.
        base = rtype or "Resource"

        def place(pointer: tuple) -> Place:
            return self._place(base, item.positions, item.pointer, pointer)

        waiting = Waiting(index)
        waiting.targets = [WaitingTarget(place(t.pointer), t.reference, t.profiles, t.rule, t.path) for t in pending]
        waiting.endpoints = [WaitingEndpoint(place(p), ref, study, series) for ref, p, study, series in endpoints]
        return raw, waiting

    def _fast_verdict(self, item: ResourceInput, selection: Selection) -> bool:
        """Whether the base rules of the selected version find nothing in the resource (the fast
        path). A resource parsed plain (repeated keys not kept) is exact only if the fast path
        passes it having seen as many keys as its text holds; else the input is parsed again,
        precisely, for the engine (in place)."""
        fast = self.fast(selection)
        clean = fast.is_clean(item.resource, item.bundle)
        if item.plain_text is None:
            return clean
        if clean and fast.keys_seen == key_tokens(item.plain_text):
            item.known_exact()
            return True
        item.precise()
        # A plain tree differs from the precise one only by repeated keys, which the fast path
        # refuses: if it failed on the plain tree it fails on this one too.
        return clean and fast.is_clean(item.resource, item.bundle)

    def fast(self, selection: Selection) -> FastPath:
        version = selection.version
        fast = self._fast_paths.get(version.name)
        if fast is None:
            fast = self._fast_paths[version.name] = FastPath(plan_for(version), self.limits.max_depth)
        return fast

    def _dicom(self, study: dict, ctx: EvalContext, raw: list[RawIssue], plan: Plan) -> list[tuple]:
        """DICOM checks; returns the endpoint references to check once the whole run is read."""

        def report(rule_id: str, pointer: tuple, message: str) -> None:
            raw.append(self._raw(rule_id, pointer, message))

        unresolved: list[tuple] = []
        if self.dicom:
            from validator.evaluate.dicom.study import StudyCheck

            check = StudyCheck(report, lambda literal: resolve_reference(literal, ctx), plan.fhir_version,
                               plan.sop_class_modalities)  # fmt: skip
            check.run(study)
            unresolved = check.unresolved
        if self.dicom_files is not None:
            from validator.evaluate.dicom.files import cross_check

            cross_check(study, self.dicom_files, report)
        return unresolved

    # -- target profiles --------------------------------------------------------------------------
    def check_target(self, target: dict, bundle: dict[str, dict], urls: tuple[str, ...]) -> list[str]:
        """Problems (errors) of a reference target against the profiles it must conform to."""
        key = (id(target), urls)
        cached = self._target_cache.get(key)
        if cached is not None and cached[0] is target:
            return cached[1]
        profile_set = self._profile_set()
        problems: list[str] = []
        initial = self.selector.initial()
        for url in urls:
            prof = profile_set.find(url)
            if prof is None or prof.resource_type != target.get("resourceType"):
                problems.append(f"it is a {target.get('resourceType')}, not a {url}" if prof else f"{url} is unknown")
                continue
            walk = ResourceWalk(self.plan, EvalContext(root=target, bundle=bundle), profiles=[prof],
                                must_support=False, max_depth=self.limits.max_depth)  # fmt: skip
            rtype = target.get("resourceType") or "Resource"
            clean = self.fast(initial).is_clean(target, bundle)
            problems.extend(
                f"{render_expression(rtype, r.pointer)}: {r.message} [{r.rule.id}]"
                for r in walk.run(target, base_clean=clean)
                if r.severity >= Severity.ERROR
            )
        self._target_cache[key] = (target, problems)
        return problems

    def remember(self, item: ResourceInput) -> list[tuple[str, Remembered]]:
        """What the checks waiting for the end of the run may ask of this resource, under the keys
        they find it by: only for the types that are targets of some profile, and Endpoints
        (the DICOM pack checks where an ImagingStudy's WADO-RS endpoints point)."""
        res = item.resource
        if not isinstance(res, dict):
            return []
        rtype, rid = res.get("resourceType"), res.get("id")
        if not (isinstance(rtype, str) and isinstance(rid, str)):
            return []
        targets = self._targets()
        if rtype not in targets.types and rtype != "Endpoint":
            return []
        kept = item.precise().resource  # with its repeated keys, if any
        conformance = {urls: self.check_target(kept, {}, urls) for urls in targets.profiles}
        facts = Remembered(conformance, remember_endpoint(kept) if rtype == "Endpoint" else None)
        keys = [f"{rtype}/{rid}"] + [url for url, target in item.bundle.items() if target is res]
        return [(key, facts) for key in keys]

    # -- the end of the run -----------------------------------------------------------------------
    def finish(self, outcomes: list[Outcome]) -> list[ResourceResult]:
        """Run the checks that waited for the whole run, and add what they found."""
        from validator.evaluate.dicom.study import endpoint_problems

        index: dict[str, Remembered] = {}
        for o in outcomes:
            for key, facts in o.remembered:
                index.setdefault(key, facts)
        results = [o.result for o in outcomes]
        for o in outcomes:
            if o.waiting is None:
                continue
            added: list[Issue] = []
            report = partial(self._report_at, added)
            finish_waiting(o.waiting, index, report, self.plan.rules[R.TARGET_NOT_CHECKED], endpoint_problems)
            if added:
                old = results[o.waiting.index]
                results[o.waiting.index] = replace(old, issues=tuple(sorted((*old.issues, *added), key=_by_position)))
        return results

    # -- findings -------------------------------------------------------------------------------
    def _report_at(self, out: list[Issue], rule: Rule | str, place: Place, message: str) -> None:
        rule = rule if isinstance(rule, Rule) else self.plan.rules[rule]
        sev = self.severity.get(rule.id, rule.severity)
        out.append(Issue(sev, rule.code, rule.id, place.expression, message, place.line, place.column, place.snippet))

    def _raw(self, rule_id: str, pointer: tuple, message: str) -> RawIssue:
        rule = self.plan.rules[rule_id]
        return RawIssue(rule, pointer, message, rule.severity)

    def _load_issue(self, rule_id: str, message: str, line: int | None, column: int | None) -> Issue:
        rule = self.plan.rules[rule_id]
        return Issue(self.severity.get(rule.id, rule.severity), rule.code, rule.id, "", message, line, column)

    def _place(self, base: str, positions: PositionIndex | None, at: tuple, pointer: tuple,
               duplicate: bool = False) -> Place:  # fmt: skip
        line = col = None
        snippet: tuple[tuple[int, str], ...] = ()
        if positions is not None:
            loc = positions.locate(at + pointer, duplicate)
            if loc:
                line, col = loc
                snippet = positions.lines(line, col)
        return Place(render_expression(base, pointer), line, col, snippet)

    def _stamp(self, r: RawIssue, base: str, positions: PositionIndex | None, at: tuple) -> Issue:
        place = self._place(base, positions, at, r.pointer, r.duplicate)
        severity = self.severity.get(r.rule.id, r.severity)
        return Issue(severity, r.rule.code, r.rule.id, place.expression, r.message, place.line, place.column,
                     place.snippet)  # fmt: skip


def _by_position(issue: Issue) -> tuple:
    return (issue.line is None, issue.line or 0, issue.column or 0)


@dataclass(frozen=True, slots=True)
class _Targets:
    profiles: tuple[tuple[str, ...], ...]  # every set of target profiles a constraint asks for
    types: frozenset[str]  # the resource types those profiles constrain


def _targets_of(profile_set: ProfileSet) -> _Targets:
    found = profile_set.target_profile_sets()
    types = frozenset(h["type"] for urls in found for url in urls if (h := profile_set.header(url)) is not None)
    return _Targets(found, types)
