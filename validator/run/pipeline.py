"""One resource through the stages, and a run through the checks that wait for its end.

In: a ResourceInput from the load stage. For each: select (version, profiles) -> the fast yes/no
pass of the base rules -> the explaining walk when something is to be said, or when profiles
apply -> the DICOM checks of an ImagingStudy -> findings stamped with expression, position and
the configured severity (a ResourceResult). Out of the same step: the checks that wait for other
inputs (evaluate/cross.py) and what this resource may tell them. `finish` runs those at the end.
Serial runs and `--jobs` workers (run/parallel.py) call the same public functions: `outcomes`
(each input validated under the guard of run/faults.py) and `finish`.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from functools import cache, partial
from typing import Protocol

from validator import rule_ids as R
from validator.compile.catalog import plan_for
from validator.compile.plan import Plan, Rule
from validator.compile.profiles import ProfileSet
from validator.evaluate import native_gate
from validator.evaluate.base_rules import BaseRules
from validator.evaluate.code_systems import may_hold_pages, web_page_systems
from validator.evaluate.cross import (
    Place,
    Remembered,
    Waiting,
    WaitingEndpoint,
    WaitingTarget,
    finish_waiting,
    remember_endpoint,
)
from validator.evaluate.native_gate import NativeGate
from validator.evaluate.walk import RawIssue, ResourceWalk, render_expression
from validator.fhir.jsontext import PositionIndex, key_tokens
from validator.fhirpath.expressions import EvalContext, resolve_reference
from validator.limits import Limits
from validator.load.sources import ResourceInput
from validator.model import Issue, ResourceResult, Severity, Tally
from validator.rule_ids import implements
from validator.run.faults import failure_message, unvalidated
from validator.run.store import ResultStore
from validator.select.selection import Selection, Selector, mismatch_notes
from validator.versions import VERSIONS, FhirVersion

# The native gate costs ~0.1 s to build (schema and regexes): a run of a few files does not need
# it, a bulk run pays it back within a few hundred resources. It is built once the run has
# validated GATE_AFTER resources, or GATE_AFTER_BYTES of resource text (studies of thousands of
# instances, where a resource costs the base rules tens of milliseconds): so the first resource
# of a run never waits for it, and a run of large studies gets it as soon as a run of small ones.
GATE_AFTER = 16
GATE_AFTER_BYTES = 64 * 1024


@dataclass(slots=True)
class Outcome:
    """A validated resource, the checks it leaves for the end of the run, and what it may tell them."""

    result: ResourceResult
    waiting: Waiting | None
    remembered: list[tuple[str, Remembered]]


class ResultStream(Protocol):
    """What takes the results of a run in run order while it goes on (report/text.py TextStream
    prints them): `render` makes what it needs of a result (a --jobs worker calls it, so the
    parent need not read the result back; it must pickle), `add` takes that, with `final` False
    for a result the end of the run may still change (checks waiting for other inputs)."""

    def render(self, result: ResourceResult) -> object: ...

    def add(self, item: object, final: bool = True) -> None: ...


class Collector:
    """The outcomes of a run as they come: each result goes to the store (memory stays flat),
    and to the stream if there is one; only what the end-of-run checks need is kept here: the
    resources waiting for them and the facts other resources left for them."""

    def __init__(self, results: Iterable[ResourceResult] = (), stream: ResultStream | None = None) -> None:
        self.results = ResultStore()
        self.stream = stream
        self.waiting: list[Waiting] = []
        self.index: dict[str, Remembered] = {}
        for result in results:
            self.results.append(result)
            if stream is not None:
                stream.add(stream.render(result))

    @classmethod
    def of(cls, outcomes: Iterable[Outcome]) -> Collector:
        collector = cls()
        for outcome in outcomes:
            collector.add(outcome)
        return collector

    def add(self, outcome: Outcome) -> None:
        if outcome.waiting is not None:
            outcome.waiting.index = len(self.results)  # its place in the whole run
            self.waiting.append(outcome.waiting)
        for key, facts in outcome.remembered:
            self.index.setdefault(key, facts)
        self.results.append(outcome.result)
        if self.stream is not None:
            self.stream.add(self.stream.render(outcome.result), outcome.waiting is None)

    def add_batch(self, batch: Batch) -> None:
        """The outcomes of a --jobs worker's unit, their results pickled by the worker (and
        rendered for the stream, if the worker was given its `render`)."""
        base = len(self.results)
        for offset, waiting in batch.waiting:
            waiting.index = base + offset
            self.waiting.append(waiting)
        for key, facts in batch.remembered:
            self.index.setdefault(key, facts)
        self.results.extend_pickled(batch.results, batch.tally)
        stream = self.stream
        if stream is None:
            return
        listed = batch.listed
        if listed is None:  # not rendered by the worker: read back here
            listed = [stream.render(self.results[base + n]) for n in range(len(batch))]
        held = {offset for offset, _ in batch.waiting}
        for n, item in enumerate(listed):
            stream.add(item, n not in held)

    def __len__(self) -> int:
        return len(self.results)


@dataclass(slots=True)
class Batch:
    """Outcomes as a --jobs worker sends them: each result pickled once, in the worker, with the
    counts of the summary; the checks that wait for the end of the run as objects; and, when the
    run streams its report, each result as the stream's `render` made it."""

    results: list[bytes]
    tally: Tally
    waiting: list[tuple[int, Waiting]]  # (place in the batch, the waiting checks)
    remembered: list[tuple[str, Remembered]]
    listed: list[object] | None = None

    @classmethod
    def of(cls, outcomes: Iterable[Outcome], render: Callable[[ResourceResult], object] | None = None) -> Batch:
        batch = cls([], Tally(), [], [])
        results = []
        for n, outcome in enumerate(outcomes):
            results.append(outcome.result)
            batch.tally.add(outcome.result)
            if outcome.waiting is not None:
                batch.waiting.append((n, outcome.waiting))
            batch.remembered.extend(outcome.remembered)
        # Pickled and rendered once the unit is validated, each in a loop of its own: between two
        # validations the same work costs twice as much (the caches hold the validation's code).
        batch.results = [pickle.dumps(r, pickle.HIGHEST_PROTOCOL) for r in results]
        if render is not None:
            batch.listed = [render(r) for r in results]
        return batch

    def __len__(self) -> int:
        return len(self.results)


class Pipeline:
    """The per-resource stages with a Validator's settings; stateless between resources but for
    caches of compiled code and of target checks."""

    def __init__(self, selector: Selector, profile_set: Callable[[], ProfileSet], limits: Limits,
                 must_support: bool, dicom: bool, dicom_files: object | None,
                 severity: dict[str, Severity], debug: bool = False,
                 dicomweb: object | None = None) -> None:  # fmt: skip
        self.selector = selector
        self.debug = debug  # internal-error findings carry the traceback
        self._profile_set = profile_set
        self.limits = limits
        self.must_support = must_support
        self.dicom = dicom
        self.dicom_files = dicom_files
        self.dicomweb = dicomweb  # a DicomWebSource (evaluate/dicom/dicomweb.py): --dicomweb URL
        self.severity = severity
        self.plan = plan_for(selector.initial().version)
        self._base_rules: dict[str, BaseRules] = {}
        self._gates: dict[str, NativeGate] = {}
        self._validated = 0  # resources through the base rules or the gate (see GATE_AFTER)
        self._validated_bytes = 0  # the length of their texts, for those that are a whole text
        self._gate_passed = False  # whether the gate passed the resource being validated
        self._gate_tried = False  # whether the gate was asked about it
        self._gate_refused: str | None = None  # the version whose gate refused it (then its members are judged)
        self._gate_due = False  # whether the gate is used for it (see GATE_AFTER)
        self._ist_7: dict[str, bool] = {}  # per FHIR version: whether its base plan has ist-7
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

    # -- fault isolation (run/faults.py) --------------------------------------------------------
    def outcomes(self, source: str, items: Iterator[ResourceInput], start: int) -> Iterator[Outcome]:
        """The outcome of every input read from one source, numbered from `start` (their place in
        the run), each validated under a guard. When reading itself fails part way, what was read
        stands and the rest of the source is one finding: the reader cannot be trusted to resume."""
        index = start
        while True:
            try:
                item = next(items)
            except StopIteration:
                return
            except Exception as exc:  # any defect: a finding for this input, the run goes on
                what = "reading this file" if index == start else "reading the rest of this file"
                yield self.internal_error(source, None, failure_message(what, exc, self.debug))
                return
            yield self.validate_guarded(item, index)
            index += 1

    def validate_guarded(self, item: ResourceInput, index: int = 0) -> Outcome:
        try:
            return self.validate(item, index)
        except Exception as exc:  # as above
            message = failure_message("validating this resource", exc, self.debug)
            return self.internal_error(item.source, item.entry, message, item.resource)

    @implements(R.INTERNAL_ERROR)
    def internal_error(self, source: str, entry: int | None, message: str, resource: object = None) -> Outcome:
        """The outcome of an input the validator failed on: one fatal finding saying so."""
        finding = self._load_issue(R.INTERNAL_ERROR, message, None, None)
        return Outcome(unvalidated(source, entry, resource, finding), None, [])

    # -- one resource ---------------------------------------------------------------------------
    def validate(self, item: ResourceInput, index: int = 0) -> Outcome:
        started = time.perf_counter()
        issues: list[Issue] = []
        res = item.resource
        rtype = rid = None
        # Made only where no other selection replaces it (a Selection is mutable: one per resource).
        selection = self.selector.initial() if self.selector.fixed or not isinstance(res, dict) else None
        waiting = None
        if item.problem is not None:
            p = item.problem
            issues.append(self._load_issue(p.rule, p.message, p.line, p.column))
            selection = selection or self.selector.initial()
        elif isinstance(res, dict):
            rtype = res.get("resourceType") if isinstance(res.get("resourceType"), str) else None
            rid = res.get("id") if isinstance(res.get("id"), str) else None
            self._count(item)
            gated: list[RawIssue] | None = None
            if not self.selector.fixed:
                if item.reread is None and self.selector.read_from_shape(res, rtype):
                    # No marker of another version holds in a resource the R4 gate passes: it is
                    # R4, and only the reason is left to find, which costs less than looking for
                    # every marker (most payloads are R4 and clean).
                    gated = self._gated(item, VERSIONS["R4"])
                    if gated is not None:
                        selection = self.selector.r4_shaped(res)
                if gated is None:
                    # Version markers read shapes and values, which a plain parse keeps exactly.
                    selection = self.selector.version(res, rtype)
                if item.reread is not None and item.xml_version != selection.version.number:
                    # XML read with another version's element table: read again with this one's,
                    # so that which elements repeat (arrays) follows the version validated.
                    item = item.reread(plan_for(selection.version))
                    res = item.resource
            del res  # a plain tree parsed again is freed before the precise one is built
            # The R4 gate is not asked twice about an R4 resource it refused.
            tried = self._gate_tried and selection.version.name == "R4"
            base_findings = self._base_findings(item, selection, tried) if gated is None else gated
            res = item.resource  # parsed again, precisely, if the plain parse was not proved exact
            if self.selector.fixed and base_findings and not (self._gate_passed and selection.version.name == "R4"):
                # Only a payload that breaks some rule can have another version's shape: every
                # version marker does (tests/test_base_rules.py), so a clean one is not searched;
                # nor is one the R4 gate passed as R4, which refuses every other version's shape
                # (tests/test_version_by_gate.py): only notes are left on it.
                selection = self.selector.version(res, rtype)
            raw, waiting = self._evaluate(item, res, rtype, selection, base_findings, index)
            raw = self._capped(raw, len(item.warnings))
            base = rtype or "Resource"
            issues.extend(self._stamp(r, base, item.positions, item.pointer, item.unique_keys) for r in raw)
        # The reading's own findings, of the item as finally read (XML may have been read again).
        if item.warnings:
            issues[:0] = [self._load_issue(w.rule, w.message, w.line, w.column) for w in item.warnings]
        if len(issues) > 1:
            issues.sort(key=_by_position)
        result = ResourceResult(
            source=item.source,
            entry=item.entry,
            resource_type=rtype,
            id=rid,
            fhir_version=selection.version.number,
            profiles=tuple(p.url for p in selection.profiles) if selection.profiles else (),
            issues=tuple(issues),
            version_reason=selection.reason,
            duration=time.perf_counter() - started,
            not_validated=self._not_validated(rtype, selection) if item.problem is None else None,
        )
        return Outcome(result, waiting, self.remember(item))

    def _not_validated(self, rtype: str | None, selection: Selection) -> str | None:
        """Why a resource of this type was not validated (no rule pack for it), or None."""
        struct = self.base_rules(selection).plan.structures.get(rtype or "")
        if rtype is None or (struct is not None and struct.kind == "resource"):
            return None
        return f"no rule pack for {rtype} (FHIR {selection.version.name}): it was read, not validated"

    @implements(R.TOO_MANY_ISSUES)
    def _capped(self, raw: list[RawIssue], listed: int) -> list[RawIssue]:
        """At most --max-issues findings per resource, the rest counted in one more: cut before
        positions are computed, so a payload broken everywhere costs no more than the cap."""
        room = max(self.limits.max_issues - listed, 0)
        if len(raw) <= room:
            return raw
        more = len(raw) - room
        return [*raw[:room], self._raw(R.TOO_MANY_ISSUES, (), f"{more} more findings not shown (--max-issues)")]

    def _evaluate(self, item: ResourceInput, res: dict, rtype: str | None, selection: Selection,
                  base_findings: list[RawIssue], index: int) -> tuple[list[RawIssue], Waiting | None]:  # fmt: skip
        plan = self.base_rules(selection).plan  # plan_for's, kept: looked up once per version
        if selection.conflicts:
            return [self._raw(*note) for note in mismatch_notes(selection)], None
        if rtype is not None and self.selector.wants_profiles(res):
            self.selector.profiles(selection, res, rtype)
        raw = [self._raw(*note) for note in selection.notes] if selection.notes else []
        bundle = item.bundle
        pending = []
        if not selection.profiles:
            raw.extend(base_findings)  # what a walk without profiles would return
        else:
            walk = ResourceWalk(
                plan,
                EvalContext(root=res, bundle=bundle),
                profiles=selection.profiles,
                must_support=self.must_support,
                target_checker=lambda t, urls: self.check_target(t, bundle, urls),
            )
            raw.extend(walk.run(res, base_findings))
            pending = walk.pending
        # A resource the gate passed has no Coding whose system is a document address (the gate
        # refuses any that might be).
        if ((struct := plan.structures.get(rtype or "")) is not None and struct.kind == "resource"
                and not self._gate_passed and may_hold_pages(getattr(item.positions, "text", None))):  # fmt: skip
            raw.extend(self._raw(R.CODE_SYSTEM_PAGE, p, m) for p, m in web_page_systems(res))
        endpoints: list[tuple] = []
        if rtype == "ImagingStudy" and (self.dicom or self.dicom_files is not None or self.dicomweb is not None):
            endpoints = self._dicom(res, EvalContext(root=res, bundle=bundle), raw, plan)
        raw = _without_replaced(raw, self.severity)
        if not (pending or endpoints):
            return raw, None
        # Where findings of the waiting checks will be shown, located now while the text is here.
        base = rtype or "Resource"

        def place(pointer: tuple) -> Place:
            return self._place(base, item.positions, item.pointer, pointer, unique_keys=item.unique_keys)

        waiting = Waiting(index)
        waiting.targets = [WaitingTarget(place(t.pointer), t.reference, t.profiles, t.rule, t.path) for t in pending]
        waiting.endpoints = [WaitingEndpoint(place(p), ref, study, series) for ref, p, study, series in endpoints]
        return raw, waiting

    def _count(self, item: ResourceInput) -> None:
        """Count a resource toward building the gate (GATE_AFTER), and note whether it is due."""
        self._gate_due = self._validated >= GATE_AFTER or self._validated_bytes >= GATE_AFTER_BYTES
        self._validated += 1
        if not item.pointer and item.positions is not None:  # a whole text (a file, an NDJSON line)
            self._validated_bytes += len(item.positions.text)
        self._gate_passed = self._gate_tried = False
        self._gate_refused = None

    def _gated(self, item: ResourceInput, version: FhirVersion) -> list[RawIssue] | None:
        """The notes of a resource the native gate of `version` passes (its base rules report
        nothing else on it); None when the gate is not used for it or refuses it."""
        if not (item.unique_keys and item.plain_text is None and self._gate_due and native_gate.enabled()):
            return None
        res = item.resource
        if not isinstance(res, dict):
            return None
        self._gate_tried = True
        gate = self._gate(version)
        self._gate_refused = version.name  # until it passes
        if not gate.passes(res, item.plain_numbers):
            return None
        # What the schema cannot say (the narrative's XHTML) is asked of the base rules' own code;
        # anything found there sends the resource through all of them.
        if gate.residual_needed(res) and self._base_rules_of(version).check_members(res, item.bundle, gate.residual):
            return None
        self._gate_refused = None
        self._gate_passed = True
        positions = item.positions
        if positions is not None and not item.pointer and "contained" not in res:
            # The whole text is this resource (a file, an NDJSON line): where its findings are
            # written, a root-only name needs no proof that it is the root's (PointerWalk).
            positions.root_only = gate.root_only(res["resourceType"])
        return gate.notes(res, positions.text if positions is not None else None)

    def _base_findings(self, item: ResourceInput, selection: Selection, gate_tried: bool = False) -> list[RawIssue]:
        """The findings of the base rules of the selected version (none: it conforms), by the
        native gate when it passes the resource (unless it was `gate_tried` already). A resource
        parsed plain (repeated keys not kept) is exact only if the base rules visited as many keys
        as its text holds; else the input is parsed again, precisely, and checked again (in place)."""
        if not gate_tried:
            notes = self._gated(item, selection.version)
            if notes is not None:
                return notes
        base = self.base_rules(selection)
        # A resource the gate refused: the members it judges clean are not walked (same findings,
        # see native_gate.MemberVerdicts); the gate was asked only about an exact tree.
        clean = None
        if self._gate_refused == selection.version.name:
            clean = self._gate(selection.version).clean_members(item.resource, item.plain_numbers)  # type: ignore[arg-type]
        findings = base.check(item.resource, item.bundle, clean)
        if item.plain_text is None:
            return findings
        if base.keys_seen == key_tokens(item.plain_text):
            item.known_exact()
            return findings
        return base.check(item.precise().resource, item.bundle)

    def _gate(self, version: FhirVersion) -> NativeGate:
        """The native gate of a version (compiled on first use)."""
        gate = self._gates.get(version.name)
        if gate is None:
            gate = self._gates[version.name] = NativeGate(plan_for(version), self.limits.max_depth)
        return gate

    def base_rules(self, selection: Selection) -> BaseRules:
        """The base rules of the selected version, generated once per pipeline (not reentrant)."""
        return self._base_rules_of(selection.version)

    def _base_rules_of(self, version: FhirVersion) -> BaseRules:
        base = self._base_rules.get(version.name)
        if base is None:
            base = self._base_rules[version.name] = BaseRules(plan_for(version), self.limits.max_depth)
        return base

    def _dicom(self, study: dict, ctx: EvalContext, raw: list[RawIssue], plan: Plan) -> list[tuple]:
        """DICOM checks; returns the endpoint references to check once the whole run is read."""

        def report(rule_id: str, pointer: tuple, message: str) -> None:
            raw.append(self._raw(rule_id, pointer, message))

        unresolved: list[tuple] = []
        if self.dicom:
            StudyCheck = _study_check()
            ist_7 = self._ist_7.get(plan.fhir_version)
            if ist_7 is None:
                # R6's invariant ist-7 already requires the study modalities to equal the series'.
                struct = plan.structures.get("ImagingStudy")
                ist_7 = struct is not None and any(inv.key == "ist-7" for inv in struct.invariants)
                self._ist_7[plan.fhir_version] = ist_7
            check = StudyCheck(report, lambda literal: resolve_reference(literal, ctx), plan.fhir_version,
                               plan.sop_class_modalities, modalities_checked=ist_7)  # fmt: skip
            check.run(study)
            unresolved = check.unresolved
        if self.dicom_files is not None or self.dicomweb is not None:
            from validator.evaluate.dicom.compare import cross_check

            for source in (self.dicom_files, self.dicomweb):
                if source is not None:
                    cross_check(study, source, report)  # type: ignore[arg-type]
        if self.dicomweb is not None:
            self._probe_endpoints(study, ctx, report, unresolved)
        return unresolved

    def _probe_endpoints(self, study: dict, ctx: EvalContext, report: Callable[[str, tuple, str], None],
                         unresolved: list[tuple]) -> None:  # fmt: skip
        """--dicomweb: each WADO-RS endpoint of the study and its series asked for their metadata.
        An endpoint in another input of the run waits for the end of the run, as the address check."""
        from validator.evaluate.dicom.compare import study_uid

        uid, _ = study_uid(study)
        waiting = {pointer for _, pointer, _, _ in unresolved}
        places: list[tuple[tuple, str | None, object]] = [(("endpoint",), None, study.get("endpoint"))]
        series = study.get("series") if isinstance(study.get("series"), list) else []
        for i, s in enumerate(series):
            if isinstance(s, dict):
                suid = s.get("uid") if isinstance(s.get("uid"), str) else None
                places.append((("series", i, "endpoint"), suid, s.get("endpoint")))
        for at, suid, refs in places:
            for k, ref in enumerate(refs if isinstance(refs, list) else []):
                literal = ref.get("reference") if isinstance(ref, dict) else None
                if not isinstance(literal, str):
                    continue
                pointer = (*at, k, "reference")
                target = resolve_reference(literal, ctx)
                if isinstance(target, dict):
                    for rule_id, message in self.dicomweb.probe(target, literal, uid, suid):  # type: ignore[attr-defined]
                        report(rule_id, pointer, message)
                elif pointer not in waiting:
                    unresolved.append((literal, pointer, uid, suid))

    def _endpoint_checks(self, address_check: Callable) -> tuple[Callable, Callable | None]:
        """What the end of the run asks of an endpoint found in another input (the DICOM pack's
        address check, --dicomweb's metadata probe), and of one found nowhere (--dicomweb says so)."""
        checks = ([address_check] if self.dicom else []) + (
            [self.dicomweb.probe] if self.dicomweb is not None else []  # type: ignore[attr-defined]
        )

        def problems(target: dict, literal: str, study: str | None, series: str | None) -> list[tuple]:
            return [problem for check in checks for problem in check(target, literal, study, series)]

        return problems, None if self.dicomweb is None else self.dicomweb.not_probed  # type: ignore[attr-defined]

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
            # The target is read as the profile's FHIR version (an R5 IG's endpoint is an R5 Endpoint).
            selection = initial
            if prof.fhir_version.split(".")[0] != initial.version.number.split(".")[0]:
                version = next((v for v in VERSIONS.values() if v.number == prof.fhir_version), initial.version)
                selection = Selection(version, f"the FHIR version of {prof.title}")
            walk = ResourceWalk(plan_for(selection.version), EvalContext(root=target, bundle=bundle), profiles=[prof],
                                must_support=False)  # fmt: skip
            rtype = target.get("resourceType") or "Resource"
            base_findings = self.base_rules(selection).check(target, bundle)
            problems.extend(
                f"{render_expression(rtype, r.pointer)}: {r.message} [{r.rule.id}]"
                for r in walk.run(target, base_findings)
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
    @implements(R.TARGET_NOT_CHECKED)
    def finish(self, outcomes: Collector | Iterable[Outcome]) -> ResultStore:
        """Run the checks that waited for the whole run, and add what they found."""
        from validator.evaluate.dicom.study import endpoint_problems

        endpoint_problems, endpoint_missing = self._endpoint_checks(endpoint_problems)
        collected = outcomes if isinstance(outcomes, Collector) else Collector.of(outcomes)
        results = collected.results
        for waiting in collected.waiting:
            added: list[Issue] = []
            report = partial(self._report_at, added)
            try:
                finish_waiting(waiting, collected.index, report, self.plan.rules[R.TARGET_NOT_CHECKED],
                               endpoint_problems, endpoint_missing)  # fmt: skip
            except Exception as exc:  # a defect: a finding for this resource, the run goes on
                message = failure_message("checking what this resource refers to", exc, self.debug)
                added.append(self._load_issue(R.INTERNAL_ERROR, message, None, None))
            if added:
                old = results[waiting.index]
                issues = tuple(sorted((*old.issues, *added), key=_by_position))
                results.replace(waiting.index, replace(old, issues=issues))
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
               duplicate: bool = False, *, unique_keys: bool = False) -> Place:  # fmt: skip
        """Where a finding at `pointer` (inside the resource at `at`) is shown. `unique_keys`: the
        input's parser refused repeated keys (ResourceInput.unique_keys), which the walk that
        places it may rely on; it stays set on the index, which serves that input's document only."""
        line = col = None
        snippet: tuple[tuple[int, str], ...] = ()
        if positions is not None:
            if unique_keys:
                positions.unique_keys = True
            loc = positions.locate(at + pointer, duplicate)
            if loc:
                line, col = loc
                snippet = positions.lines(line, col)
        return Place(render_expression(base, pointer), line, col, snippet)

    def _stamp(self, r: RawIssue, base: str, positions: PositionIndex | None, at: tuple,
               unique_keys: bool = False) -> Issue:  # fmt: skip
        """The finding of `r`, placed as _place places it (without its Place: every finding of a
        run is made here, most of them a note of a resource that passed)."""
        line = col = None
        snippet: tuple[tuple[int, str], ...] = ()
        if positions is not None:
            if unique_keys:
                positions.unique_keys = True
            loc = positions.locate(at + r.pointer, r.duplicate)
            if loc:
                line, col = loc
                snippet = positions.lines(line, col)
        rule = r.rule
        return Issue(self.severity.get(rule.id, r.severity), rule.code, rule.id, render_expression(base, r.pointer),
                     r.message, line, col, snippet)  # fmt: skip


@cache
def _study_check() -> type:
    """The DICOM pack's StudyCheck, imported on first use (runs without the DICOM rules never
    load it), and not looked up again per study."""
    from validator.evaluate.dicom.study import StudyCheck

    return StudyCheck


def _without_replaced(raw: list[RawIssue], levels: dict[str, Severity]) -> list[RawIssue]:
    """The findings less those another finding at the same place replaces (Rule.replaces): a
    DICOM rule's finding on a sopClass or modality coding says what the binding rule would say
    there, and more (a private SOP Class is an information instead of the extensible binding's
    warning, by design). An error is never replaced by a lesser finding: a profile's required
    binding is not hidden behind a DICOM warning on the same coding."""
    strongest: dict[tuple, Severity] = {}
    for r in raw:
        for kind in r.rule.replaces:
            key = (kind, r.pointer)
            strongest[key] = max(strongest.get(key, Severity.INFORMATION), levels.get(r.rule.id, r.severity))
    if not strongest:
        return raw

    def kept(r: RawIssue) -> bool:
        by = strongest.get((r.rule.kind, r.pointer))
        level = levels.get(r.rule.id, r.severity)
        return by is None or (level >= Severity.ERROR and by < level)

    return [r for r in raw if kept(r)]


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
