"""Conformance suites: YAML files of test cases with expected findings.

A case validates its payloads and passes when every expected issue occurred and no other issue
reached the fail level. `rule` and `expression` are matched as whole regular expressions (a
plain id is one), `message` as a substring, `severity` exactly.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from validator.compile.packs import strict_loader
from validator.compile.plan import rule_infos
from validator.load.sources import InputError, expand_paths
from validator.model import CaseResult, Issue, ResourceResult, RuleInfo, RunResult, Severity
from validator.resources import package_file


class SuiteError(Exception):
    """A suite file that cannot be used (usage error): the message names the file and the key."""


@dataclass(frozen=True)
class Expected:
    rule: re.Pattern | None
    severity: Severity | None
    expression: re.Pattern | None
    message: str | None
    text: str  # as written, for reports

    def matches(self, issue: Issue) -> bool:
        return (
            (self.rule is None or self.rule.fullmatch(issue.rule) is not None)
            and (self.severity is None or issue.severity is self.severity)
            and (self.expression is None or self.expression.fullmatch(issue.expression) is not None)
            and (self.message is None or self.message in issue.message)
        )


@dataclass(frozen=True)
class Case:
    suite: str  # suite file
    title: str
    payloads: tuple[str, ...]  # resolved file paths
    fhir_version: str | None
    profiles: tuple[str, ...]
    fail_on: Severity
    expect_valid: bool
    expected: tuple[Expected, ...]
    igs: tuple[str, ...] = ()  # Implementation Guides (resolved paths, or id#version)


@cache
def _schema_validator():
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(package_file("schemas", "suite.schema.json").read_text(encoding="utf-8")))


def _key(path: list) -> str:
    return (
        "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(path)) or "(top)"
    )


def _compile(pattern: str, where: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise SuiteError(f"{where}: not a valid regular expression: {exc}") from None


def load_suite(path: Path) -> list[Case]:
    """Read and check a suite file. Raises SuiteError naming the file and the key."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=strict_loader())
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read suite: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise SuiteError(f"{path}{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    errors = sorted(_schema_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise SuiteError("\n".join(f"{path}: key {_key(list(e.absolute_path))}: {e.message}" for e in errors))
    cases = []
    for n, raw in enumerate(data["cases"]):
        where = f"{path}: key cases[{n}]"
        payloads: list[str] = []
        for k, pattern in enumerate(raw["payloads"]):
            target = pattern if Path(pattern).is_absolute() else str(path.parent / pattern)
            try:
                payloads.extend(expand_paths([target]))
            except InputError:
                raise SuiteError(f"{where}.payloads[{k}]: {pattern!r} names no payload file") from None
        expected = []
        if raw["expect"] != "valid":
            for k, e in enumerate(raw["expect"]):
                w = f"{where}.expect[{k}]"
                expected.append(Expected(
                    rule=_compile(e["rule"], f"{w}.rule") if "rule" in e else None,
                    severity=Severity.parse(e["severity"]) if "severity" in e else None,
                    expression=_compile(e["expression"], f"{w}.expression") if "expression" in e else None,
                    message=e.get("message"),
                    text=", ".join(f"{k2}={v}" for k2, v in e.items()),
                ))  # fmt: skip
        igs = tuple(str(path.parent / g) if (path.parent / g).exists() else g
                    for g in raw.get("igs", data.get("igs", ())))  # fmt: skip
        _check_options(raw.get("fhirVersion", data.get("fhirVersion")), raw.get("profiles", data.get("profiles", ())),
                       where, igs)  # fmt: skip
        cases.append(Case(
            suite=str(path), title=raw["title"], payloads=tuple(dict.fromkeys(payloads)),
            fhir_version=raw.get("fhirVersion", data.get("fhirVersion")),
            profiles=tuple(raw.get("profiles", data.get("profiles", ()))),
            fail_on=Severity.parse(raw.get("failOn", data.get("failOn", "error"))),
            expect_valid=raw["expect"] == "valid", expected=tuple(expected), igs=igs,
        ))  # fmt: skip
    return cases


def _check_options(version: str | None, profiles: list[str], where: str, igs: tuple[str, ...] = ()) -> None:
    from validator.api import IgError, UnknownProfile, Validator
    from validator.versions import UnknownVersion

    try:
        Validator(fhir_version=version, profiles=profiles, igs=igs)
    except IgError as exc:
        raise SuiteError(f"{where}.igs: {exc}") from None
    except UnknownVersion as exc:
        raise SuiteError(f"{where}.fhirVersion: {exc}") from None
    except UnknownProfile as exc:
        raise SuiteError(f"{where}.profiles: {exc}") from None


def judge(case: Case, results: list[ResourceResult]) -> list[str]:
    """What makes the case fail: expected issues that did not occur, and other issues at or
    above the fail level."""
    issues = [(r, i) for r in results for i in r.issues]
    problems = []
    for e in case.expected:
        if not any(e.matches(i) for _, i in issues):
            problems.append(f"expected issue did not occur: {e.text}")
    for r, i in issues:
        if i.severity >= case.fail_on and not any(e.matches(i) for e in case.expected):
            where = f"{i.line}:{i.column}" if i.line is not None else "-"
            problems.append(f"unexpected {i.severity.label} in {r.label} ({Path(r.source).name} {where}): "
                            f"{i.rule} {i.expression}: {i.message}")  # fmt: skip
    if not results:
        problems.append("no resource was found in the payloads")
    return problems


def run_case(case: Case, validators: dict | None = None) -> CaseResult:
    import time

    from validator.api import Validator

    started = time.perf_counter()
    cache_key = (case.fhir_version, case.profiles, case.igs)
    pool = validators if validators is not None else {}
    if cache_key not in pool:
        pool[cache_key] = Validator(fhir_version=case.fhir_version, profiles=case.profiles, fail_on=case.fail_on,
                                    igs=case.igs)  # fmt: skip
    run = pool[cache_key].validate_paths(list(case.payloads))
    problems = tuple(judge(case, list(run.results)))
    return CaseResult(case.suite, case.title, case.fail_on, run.results, problems, time.perf_counter() - started)


def run_cases(cases: list[Case]) -> RunResult:
    """Every case, one Validator per FHIR version and profiles: a run whose reports present the
    cases, with the resources of them all and the rules of every Validator used."""
    pool: dict = {}
    done = tuple(run_case(case, pool) for case in cases)
    rules: dict[str, RuleInfo] = {}
    for validator in pool.values():
        rules = {**rule_infos(validator.rules), **rules}  # the first Validator describes a rule they share
    return RunResult(tuple(x for c in done for x in c.results), rules=rules, cases=done)
