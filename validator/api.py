"""The Python API; the CLI and the pytest plugin are thin layers over it.

from validator import Validator
result = Validator(fhir_version="R4").validate_paths(["payloads/"])
result.failed, result.summary(), result.results[0].issues
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from .engine import ResourceWalk, render_expression
from .fhirpath import EvalContext
from .load import ResourceInput, expand_paths, load_source
from .model import Issue, ResourceResult, RunResult, Severity
from .packs import PackError, load_pack
from .plan import Plan, compile_plan, pack_files
from .resources import rules_dir
from .versions import DEFAULT, FhirVersion, parse_version


def plan_for(version: FhirVersion) -> Plan:
    """The compiled plan of a FHIR version: compiled once per process (per rules folder)."""
    return _plan(version, rules_dir())


@cache
def _plan(version: FhirVersion, root: Path) -> Plan:
    if not (root / "core.yaml").is_file():
        raise PackError([f"{root}: no core.yaml rule pack in this rules folder"])
    files = [root / "core.yaml", *pack_files(root / version.ruleset)]
    packs = [load_pack(f) for f in files]
    return compile_plan(packs, version.number, version.model)


class Validator:
    """Validates FHIR resources. Raises PackError (broken packs) and UnknownVersion on creation;
    after that, every input problem is a finding, never an exception."""

    def __init__(self, fhir_version: str | None = None, fail_on: Severity | None = Severity.ERROR) -> None:
        self.version_requested = fhir_version is not None
        self.version = parse_version(fhir_version or DEFAULT)
        self.fail_on = fail_on
        self.plan = plan_for(self.version)

    # -- single resources ------------------------------------------------------------------------
    def validate_resource(self, resource: dict, source: str = "<memory>") -> ResourceResult:
        """Validate an already parsed resource (positions are not known)."""
        return self._validate(ResourceInput(source, None, resource, (), None))

    def validate_file(self, path: str | Path) -> list[ResourceResult]:
        return [self._validate(item) for item in load_source(str(path))]

    def validate_paths(self, paths: Iterable[str]) -> RunResult:
        """Files, directories, globs or '-'. Raises InputError when a path names nothing."""
        results: list[ResourceResult] = []
        for source in expand_paths(list(paths)):
            results.extend(self.validate_file(source))
        return RunResult(results=tuple(results), fail_on=self.fail_on)

    def run(self, results: Iterable[ResourceResult]) -> RunResult:
        return RunResult(results=tuple(results), fail_on=self.fail_on)

    # -- internals -------------------------------------------------------------------------------
    def _validate(self, item: ResourceInput) -> ResourceResult:
        started = time.perf_counter()
        issues: list[Issue] = []
        for w in item.warnings:
            rule = self.plan.rules[w.rule]
            issues.append(Issue(rule.severity, rule.code, rule.id, "", w.message, w.line, w.column))
        res = item.resource
        rtype = rid = None
        if item.problem is not None:
            p = item.problem
            rule = self.plan.rules[p.rule]
            issues.append(Issue(rule.severity, rule.code, rule.id, "", p.message, p.line, p.column))
        elif isinstance(res, dict):
            rtype = res.get("resourceType") if isinstance(res.get("resourceType"), str) else None
            rid = res.get("id") if isinstance(res.get("id"), str) else None
            walk = ResourceWalk(self.plan, EvalContext(root=res, bundle=item.bundle))
            raw = walk.run(res)
            base = rtype or "Resource"
            for r in raw:
                line = col = None
                if item.positions is not None:
                    loc = item.positions.locate(item.pointer + r.pointer, r.duplicate)
                    if loc:
                        line, col = loc
                issues.append(
                    Issue(r.severity, r.rule.code, r.rule.id, render_expression(base, r.pointer), r.message, line, col)
                )
        issues.sort(key=lambda i: (i.line is None, i.line or 0, i.column or 0))
        reason = "--fhir-version" if self.version_requested else "default (R4)"
        return ResourceResult(
            source=item.source,
            entry=item.entry,
            resource_type=rtype,
            id=rid,
            fhir_version=self.version.number,
            profiles=(),
            issues=tuple(issues),
            version_reason=reason,
            duration=time.perf_counter() - started,
        )
