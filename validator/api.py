"""The Python API; the CLI and the pytest plugin are thin layers over it.

from validator import Validator
result = Validator(fhir_version="R4", profiles=["imr"]).validate_paths(["payloads/"])
result.failed, result.summary(), result.results[0].issues
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

from validator import rule_ids as R
from validator.compile.packs import PackError, load_pack
from validator.compile.plan import Plan, Rule, compile_plan, pack_files
from validator.compile.profiles import Profile, ProfileSet, compile_profiles
from validator.evaluate.base_rules import BaseRules
from validator.evaluate.profile_check import PendingTarget
from validator.evaluate.walk import RawIssue, ResourceWalk, render_expression
from validator.fhir.jsontext import key_tokens
from validator.fhirpath.expressions import EvalContext, resolve_reference
from validator.limits import DEFAULT as DEFAULT_LIMITS
from validator.limits import Limits
from validator.load.sources import PositionIndex, ResourceInput, expand_paths, load_source
from validator.model import Issue, ResourceResult, RunResult, Severity
from validator.resources import profiles_dir, rules_dir
from validator.select.version import choose
from validator.versions import DEFAULT, VERSIONS, FhirVersion, parse_version


class UnknownProfile(ValueError):
    """--profile names no known profile (usage error)."""


class UnknownRule(ValueError):
    """A severity override names no rule (usage error)."""


def plan_for(version: FhirVersion) -> Plan:
    """The compiled plan of a FHIR version: compiled once per process (per rules folder)."""
    return _plan(version, rules_dir())


@cache
def _plan(version: FhirVersion, root: Path) -> Plan:
    if not (root / "core.yaml").is_file():
        raise PackError([f"{root}: no core.yaml rule pack in this rules folder"])
    files = [root / "core.yaml", *pack_files(root / version.ruleset), *pack_files(root / "dicom")]
    packs = [load_pack(f) for f in files]
    return compile_plan(packs, version.number, version.model)


def profiles_for(version: FhirVersion, extra: tuple[Path, ...] = ()) -> ProfileSet:
    """The bundled profile packs of a FHIR version (plus packs given by path), compiled once."""
    return _profiles(version, rules_dir(), profiles_dir(), extra)


@cache
def _profiles(version: FhirVersion, rules_root: Path, root: Path, extra: tuple[Path, ...]) -> ProfileSet:
    return compile_profiles([*pack_files(root), *extra], _plan(version, rules_root))


@dataclass
class _Pending:
    """Target-profile checks waiting for the rest of the run."""

    index: int  # position of the referencing result in the run
    base: str
    positions: PositionIndex | None
    pointer: tuple
    targets: list[PendingTarget] = field(default_factory=list)
    endpoints: list[tuple] = field(default_factory=list)  # (reference, pointer, study UID, series UID)


class Validator:
    """Validates FHIR resources. Raises PackError (broken packs), UnknownVersion and
    UnknownProfile on creation; after that, every input problem is a finding, never an exception."""

    def __init__(
        self,
        fhir_version: str | None = None,
        fail_on: Severity | None = Severity.ERROR,
        profiles: Sequence[str] = (),
        must_support: bool = True,
        dicom: bool = True,
        severity: dict[str, Severity] | None = None,
        dicom_files: str | Path | None = None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.limits = limits
        self.version_requested = fhir_version is not None
        self.version = parse_version(fhir_version or DEFAULT)
        self.fail_on = fail_on
        self.must_support = must_support
        self.plan = plan_for(self.version)
        self._extra = tuple(Path(p).resolve() for p in profiles if Path(p).is_file())
        self._profile_set: ProfileSet | None = None
        self.requested: list[Profile] = [self._find_requested(p) for p in profiles]
        # (id of target, profiles) -> (target, problems); the target is kept so that an id cannot
        # be recycled by another object while the entry lives. Cleared at the start of each run.
        self._target_cache: dict[tuple[int, tuple[str, ...]], tuple[dict, list[str]]] = {}
        self._fast_paths: dict[str, BaseRules] = {}
        self.dicom = dicom
        self.severity = dict(severity or {})
        unknown = sorted(r for r in self.severity if r not in self.rules)
        if unknown:
            raise UnknownRule(f"no rule {', '.join(map(repr, unknown))} to change the severity of (see: rules list)")
        self.dicom_files = None
        if dicom_files is not None:
            from validator.evaluate.dicom.files import read_dicom_folder

            self.dicom_files = read_dicom_folder(Path(dicom_files))

    # -- profiles --------------------------------------------------------------------------------
    @property
    def profile_set(self) -> ProfileSet:
        # Loaded on first need: a run without --profile or meta.profile never reads profile packs.
        if self._profile_set is None:
            self._profile_set = profiles_for(self.version, self._extra)
        return self._profile_set

    def _find_requested(self, key: str) -> Profile:
        path = Path(key)
        if path.is_file():
            found = [p for p in self.profile_set.profiles.values() if p.pack == _pack_id(path)]
            if found:
                return found[0]
            raise UnknownProfile(f"{key}: not a profile pack (it has no 'profile' section)")
        prof = self.profile_set.find(key)
        if prof is None:
            names = ", ".join(sorted(self.profile_set.by_name)) or "none"
            raise UnknownProfile(f"unknown profile {key!r} (known: {names}; or give a canonical URL or a pack file)")
        return prof

    @property
    def rules(self) -> dict[str, Rule]:
        """Every rule: the base packs' and the profiles'."""
        return {**self.plan.rules, **self.profile_set.rules}

    # -- single resources ------------------------------------------------------------------------
    def validate_resource(self, resource: dict, source: str = "<memory>") -> ResourceResult:
        """Validate an already parsed resource (positions are not known)."""
        return self._finish([self._validate(ResourceInput(source, None, resource, (), None), 0)], {})[0]

    def validate_file(self, path: str | Path) -> list[ResourceResult]:
        return self._run([str(path)])

    def validate_paths(
        self, paths: Iterable[str], progress: Callable[[int], None] | None = None, jobs: int = 1
    ) -> RunResult:
        """Files, directories, globs or '-'. Raises InputError when a path names nothing.
        `progress` is called with the number of resources validated so far. With jobs > 1 the
        resources are validated by that many processes (same results, same order)."""
        results = self._run(expand_paths(list(paths)), progress, jobs)
        return RunResult(results=tuple(self._dicom_file_results() + results), fail_on=self.fail_on)

    def _run(
        self, sources: list[str], progress: Callable[[int], None] | None = None, jobs: int = 1
    ) -> list[ResourceResult]:
        """Validate every resource of the sources, then the checks that needed the whole run."""
        self.profile_set  # noqa: B018 - target checks need to know the profiles before reading
        self._target_cache.clear()
        if jobs > 1 and "-" not in sources:
            from validator.run.parallel import parallel_available, run_parallel

            if parallel_available():
                return run_parallel(self, sources, jobs, progress)
        index: dict[str, dict] = {}
        pairs: list[tuple[ResourceResult, _Pending | None]] = []
        for source in sources:
            for item in load_source(source, self.limits, self.plan):
                pairs.append(self._validate(item, len(pairs)))
                for key, res in self._remembered(item):
                    index.setdefault(key, res)
                if progress is not None:
                    progress(len(pairs))
        return self._finish(pairs, index)

    def _dicom_file_results(self) -> list[ResourceResult]:
        """The files of the --dicom folder that could not be read: reported, not fatal."""
        if self.dicom_files is None:
            return []
        rule = self.plan.rules[R.FILES_UNREADABLE]
        sev = self.severity.get(rule.id, rule.severity)
        return [
            ResourceResult(source=path, entry=None, resource_type=None, id=None, fhir_version=None, profiles=(),
                           issues=(Issue(sev, rule.code, rule.id, "", f"not a readable DICOM file, skipped: {why}"),))
            for path, why in self.dicom_files.unreadable
        ]  # fmt: skip

    def run(self, results: Iterable[ResourceResult]) -> RunResult:
        return RunResult(results=tuple(results), fail_on=self.fail_on)

    # -- internals -------------------------------------------------------------------------------
    def _remembered(self, item: ResourceInput) -> list[tuple[str, dict]]:
        """The resources a profile's target check may need later, under the keys they are found by
        (only the types that are targets of some profile, e.g. Endpoint, so memory stays bounded
        on large runs)."""
        res = item.resource
        if not isinstance(res, dict):
            return []
        rtype, rid = res.get("resourceType"), res.get("id")
        # Endpoint: the DICOM pack checks where an ImagingStudy's WADO-RS endpoints point.
        if not (isinstance(rtype, str) and isinstance(rid, str)):
            return []
        if rtype not in self._target_types() and rtype != "Endpoint":
            return []
        keys = [f"{rtype}/{rid}"] + [url for url, target in item.bundle.items() if target is res]
        kept = item.precise().resource  # with its repeated keys, if any (parsed once: see _fast_verdict)
        return [(key, kept) for key in keys]

    @cache  # noqa: B019 - one Validator per run; the set of profiles does not change
    def _target_types(self) -> frozenset[str]:
        types = set()
        for prof in self.profile_set.profiles.values():
            stack = [prof.root]
            while stack:
                c = stack.pop()
                for url in c.target_profiles:
                    target = self.profile_set.find(url)
                    if target is not None:
                        types.add(target.resource_type)
                stack.extend(c.children.values())
                if c.slicing:
                    stack.extend(s.constraint for s in c.slicing.slices)
        return frozenset(types)

    def _profiles_of(self, res: dict, rtype: str, issues: list[RawIssue], plan: Plan) -> list[Profile]:
        # A profile applies to resources of its type and FHIR version (IMR is an R4 profile).
        family = plan.fhir_version.split(".")[0]
        applied = []
        for p in self.requested:
            if p.resource_type != rtype:
                continue
            if p.fhir_version.split(".")[0] != family:
                rule = self.plan.rules[R.UNKNOWN_PROFILE]
                why = f"{p.title} is a FHIR {p.fhir_version} profile and this resource is FHIR {plan.fhir_version}"
                issues.append(RawIssue(rule, (), f"{why}: the profile was not applied", rule.severity))
                continue
            applied.append(p)
        meta = res.get("meta")
        declared = meta.get("profile") if isinstance(meta, dict) else None
        if isinstance(declared, list):
            for i, url in enumerate(declared):
                if not isinstance(url, str):
                    continue
                prof = self.profile_set.find(url)
                if prof is None or prof.resource_type != rtype:
                    why = (
                        "is not known to this validator"
                        if prof is None
                        else f"constrains {prof.resource_type}, not {rtype}"
                    )
                    issues.append(
                        RawIssue(
                            self.plan.rules[R.UNKNOWN_PROFILE],
                            ("meta", "profile", i),
                            f"meta.profile {url} {why}: only the base rules were applied",
                            self.plan.rules[R.UNKNOWN_PROFILE].severity,
                        )
                    )
                elif prof not in applied:
                    applied.append(prof)
        return applied

    def _check_target(self, target: dict, bundle: dict[str, dict], urls: tuple[str, ...]) -> list[str]:
        """Problems (errors) of a reference target against the profiles it must conform to."""
        key = (id(target), urls)
        cached = self._target_cache.get(key)
        if cached is not None and cached[0] is target:
            return cached[1]
        problems: list[str] = []
        for url in urls:
            prof = self.profile_set.find(url)
            if prof is None or prof.resource_type != target.get("resourceType"):
                problems.append(f"it is a {target.get('resourceType')}, not a {url}" if prof else f"{url} is unknown")
                continue
            walk = ResourceWalk(self.plan, EvalContext(root=target, bundle=bundle), profiles=[prof], must_support=False)
            rtype = target.get("resourceType") or "Resource"
            base_findings = self._fast(self.version).check(target, bundle)
            problems.extend(
                f"{render_expression(rtype, r.pointer)}: {r.message} [{r.rule.id}]"
                for r in walk.run(target, base_findings)
                if r.severity >= Severity.ERROR
            )
        self._target_cache[key] = (target, problems)
        return problems

    def _validate(self, item: ResourceInput, index: int) -> tuple[ResourceResult, _Pending | None]:
        started = time.perf_counter()
        issues: list[Issue] = []
        for w in item.warnings:
            rule = self.plan.rules[w.rule]
            sev = self.severity.get(rule.id, rule.severity)
            issues.append(Issue(sev, rule.code, rule.id, "", w.message, w.line, w.column))
        res = item.resource
        rtype = rid = None
        applied: list[Profile] = []
        waiting = None
        version = self.version
        reason = "--fhir-version" if self.version_requested else "default (R4)"
        if item.problem is not None:
            p = item.problem
            rule = self.plan.rules[p.rule]
            sev = self.severity.get(rule.id, rule.severity)
            issues.append(Issue(sev, rule.code, rule.id, "", p.message, p.line, p.column))
        elif isinstance(res, dict):
            rtype = res.get("resourceType") if isinstance(res.get("resourceType"), str) else None
            rid = res.get("id") if isinstance(res.get("id"), str) else None
            raw: list[RawIssue] = []
            conflicts: list = []
            if not self.version_requested:
                # Version markers read shapes and values, which a plain parse keeps exactly.
                version, reason, conflicts = self._version_of(res, rtype)
            base_findings = self._fast_verdict(item, version)
            res = item.resource  # parsed again, precisely, if the plain parse was not proved exact
            bundle = item.bundle
            if self.version_requested and base_findings:
                # Only a payload that breaks some rule can have another version's shape: every
                # version marker does (tests/test_base_rules.py), so a clean one is not searched.
                version, reason, conflicts = self._version_of(res, rtype)
            plan = plan_for(version)
            base = rtype or "Resource"
            if conflicts:
                raw.extend(self._mismatch(version, reason, conflicts))
            else:
                if rtype is not None and (self.requested or _declares_profile(res)):
                    applied = self._profiles_of(res, rtype, raw, plan)
                pending: list[PendingTarget] = []
                if base_findings or applied:
                    walk = ResourceWalk(
                        plan,
                        EvalContext(root=res, bundle=bundle),
                        profiles=applied,
                        must_support=self.must_support,
                        target_checker=lambda t, urls: self._check_target(t, bundle, urls),
                    )
                    raw.extend(walk.run(res, base_findings))
                    pending = walk.pending
                endpoints: list[tuple] = []
                if rtype == "ImagingStudy" and (self.dicom or self.dicom_files is not None):
                    endpoints = self._dicom(res, EvalContext(root=res, bundle=bundle), raw, plan)
                if pending or endpoints:
                    waiting = _Pending(index, base, item.positions, item.pointer, pending, endpoints)
            issues.extend(self._issue(r, base, item.positions, item.pointer) for r in raw)
        issues.sort(key=lambda i: (i.line is None, i.line or 0, i.column or 0))
        result = ResourceResult(
            source=item.source,
            entry=item.entry,
            resource_type=rtype,
            id=rid,
            fhir_version=version.number,
            profiles=tuple(p.url for p in applied),
            issues=tuple(issues),
            version_reason=reason,
            duration=time.perf_counter() - started,
        )
        return result, waiting

    def _version_of(self, res: dict, rtype: str | None) -> tuple[FhirVersion, str, list]:
        """The FHIR version to validate with, why, and the elements that contradict it."""
        requested = self.version.name if self.version_requested else None
        if requested is None:
            declared = self._declared_profile_version(res)
            if declared is not None:
                return VERSIONS[declared[0]], declared[1], []
        if rtype != "ImagingStudy":
            return self.version, "--fhir-version" if requested else "default (R4)", []
        choice = choose(res, requested)
        return VERSIONS[choice.version], choice.reason, choice.conflicts

    def _declared_profile_version(self, res: dict) -> tuple[str, str] | None:
        declared = res["meta"]["profile"] if _declares_profile(res) else None
        if not isinstance(declared, list):
            return None  # absent, or malformed (the type rule's finding), as _profiles_of reads it
        for url in declared:
            prof = self.profile_set.find(url) if isinstance(url, str) else None
            if prof is not None:
                name = next(n for n, v in VERSIONS.items() if v.number == prof.fhir_version)
                return name, f"meta.profile: {prof.title} is a FHIR {name} profile"
        return None

    def _mismatch(self, version: FhirVersion, reason: str, conflicts: list) -> list[RawIssue]:
        rule = self.plan.rules[R.VERSION_MISMATCH]
        hint_rule = self.plan.rules[R.MIGRATION_HINT]
        parts = ", ".join(f"{m.describe()} ({m.allowed()})" for m, _ in conflicts)
        message = (f"validated as FHIR {version.name} ({reason}), but the payload has {parts}: fix the version or the "
                   "payload; no other rule was applied to this resource")  # fmt: skip
        out = [RawIssue(rule, (), message, rule.severity)]
        for marker, pointer in conflicts:
            hint = marker.hints.get(version.name) or marker.hints.get("R4" if version.name == "R4B" else "")
            if hint:
                out.append(RawIssue(hint_rule, pointer, hint, hint_rule.severity))
        return out

    def _fast_verdict(self, item: ResourceInput, version: FhirVersion) -> list[RawIssue]:
        """The findings of the base rules of `version` on the resource (none: it conforms). A
        resource parsed plain (repeated keys not kept) is exact only if the base rules visited as
        many keys as its text holds; else the input is parsed again, precisely, and checked again
        (in place)."""
        base = self._fast(version)
        findings = base.check(item.resource, item.bundle)
        if item.plain_text is None:
            return findings
        if base.keys_seen == key_tokens(item.plain_text):
            item.known_exact()
            return findings
        return base.check(item.precise().resource, item.bundle)

    def _fast(self, version: FhirVersion) -> BaseRules:
        base = self._fast_paths.get(version.name)
        if base is None:
            base = self._fast_paths[version.name] = BaseRules(plan_for(version), self.limits.max_depth)
        return base

    def _dicom(self, study: dict, ctx: EvalContext, raw: list[RawIssue], plan: Plan) -> list[tuple]:
        """DICOM checks; returns the endpoint references to check once the whole run is read."""
        rules = self.plan.rules

        def report(rule_id: str, pointer: tuple, message: str) -> None:
            rule = rules[rule_id]
            raw.append(RawIssue(rule, pointer, message, rule.severity))

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

    def _issue(self, r: RawIssue, base: str, positions: PositionIndex | None, pointer: tuple) -> Issue:
        line = col = None
        snippet: tuple[tuple[int, str], ...] = ()
        if positions is not None:
            loc = positions.locate(pointer + r.pointer, r.duplicate)
            if loc:
                line, col = loc
                snippet = positions.lines(line, col)
        expression = render_expression(base, r.pointer)
        severity = self.severity.get(r.rule.id, r.severity)
        return Issue(severity, r.rule.code, r.rule.id, expression, r.message, line, col, snippet)

    def _finish(
        self, pairs: list[tuple[ResourceResult, _Pending | None]], index: dict[str, dict]
    ) -> list[ResourceResult]:
        """Check the target profiles that waited for the whole run, and add what they found."""
        results = [r for r, _ in pairs]
        not_checked = self.plan.rules[R.TARGET_NOT_CHECKED]
        for _, waiting in pairs:
            if waiting is None:
                continue
            added: list[Issue] = []
            for literal, pointer, study_uid, series_uid in waiting.endpoints:
                target = _lookup(index, literal)
                if target is None:
                    continue  # an endpoint nowhere in the run: where it points cannot be told
                from validator.evaluate.dicom.study import endpoint_problems

                for rule_id, message in endpoint_problems(target, literal, study_uid, series_uid):
                    rule = self.plan.rules[rule_id]
                    added.append(self._issue(RawIssue(rule, pointer, message, rule.severity), waiting.base,
                                             waiting.positions, waiting.pointer))  # fmt: skip
            for t in waiting.targets:
                target = _lookup(index, t.reference)
                if target is None:
                    raw = RawIssue(
                        not_checked,
                        t.pointer,
                        f"{t.path}: {t.reference} is not in this run (not contained, "
                        f"not in the Bundle, not another input), so its conformance to "
                        f"{' or '.join(t.profiles)} was not checked",
                        not_checked.severity,
                    )
                else:
                    problems = self._check_target(target, {}, t.profiles)
                    if not problems:
                        continue
                    shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
                    raw = RawIssue(
                        t.rule,
                        t.pointer,
                        f"{t.path} refers to {t.reference}, which does not conform to "
                        f"{' or '.join(t.profiles)}: {shown}",
                        t.rule.severity,
                    )
                added.append(self._issue(raw, waiting.base, waiting.positions, waiting.pointer))
            if added:
                old = results[waiting.index]
                issues = sorted((*old.issues, *added), key=lambda i: (i.line is None, i.line or 0, i.column or 0))
                results[waiting.index] = replace(old, issues=tuple(issues))
        return results


def _lookup(index: dict[str, dict], reference: str) -> dict | None:
    """A resource of the run by its fullUrl or by the Type/id its reference ends with."""
    return index.get(reference) or index.get("/".join(reference.split("/")[-2:]))


def _declares_profile(res: dict) -> bool:
    meta = res.get("meta")
    return isinstance(meta, dict) and bool(meta.get("profile"))


def _pack_id(path: Path) -> str | None:
    try:
        return load_pack(path).id
    except PackError:
        return None
