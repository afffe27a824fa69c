"""pytest plugin (entry point pytest11): payload files and conformance suites become tests.

    # pytest.ini
    [pytest]
    fhir_payloads = payloads/**/*.json payloads/**/*.ndjson
    fhir_profile = imr
    fhir_xfail = payloads/known-bad/*.json :: accepted deviation, see ticket 123

Every resource of a matching file (Bundle entries and NDJSON lines included; JSON, NDJSON or
FHIR XML) is one test, with an id such as `payloads/ct.json::ImagingStudy/abc`; a failing test
shows the issue table, and a file that cannot be read is a failing test naming why. Files
matching `fhir_suites` (default `*.fhir-suite.yaml`) run their cases as tests. When the validator
itself fails on an input (engine:internal-error, exit code 3 on the command line), the test is
an error, not a failure: it says nothing about the payload. For hand-written tests there are the
`fhir_validator` fixture and `assert_conforms`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from validator.model import Issue, ResourceResult, Severity
from validator.report.safe_text import terminal
from validator.rule_ids import INTERNAL_ERROR

_LEVELS = ("fatal", "error", "warning", "information", "never")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("imaging-validator", "FHIR ImagingStudy conformance (imaging-validator)")
    group.addoption(
        "--fhir-payloads",
        action="append",
        default=None,
        metavar="GLOB",
        help="payload files to collect, one test per resource (ini: fhir_payloads)",
    )
    group.addoption(
        "--fhir-profile",
        action="append",
        default=None,
        metavar="PROFILE",
        help="profile to apply: short name, canonical URL or pack file (ini: fhir_profile)",
    )
    group.addoption(
        "--fhir-ig",
        action="append",
        default=None,
        metavar="PATH",
        help="Implementation Guide whose profiles to add: package.tgz, folder or id#version (ini: fhir_ig)",
    )
    group.addoption("--fhir-version", default=None, metavar="VERSION", help="FHIR version: R4, R4B (ini: fhir_version)")
    group.addoption(
        "--fhir-fail-on",
        default=None,
        choices=_LEVELS,
        help="lowest severity that fails a payload test (ini: fhir_fail_on, default error)",
    )
    parser.addini("fhir_payloads", "globs of payload files to collect (relative to rootdir)", type="args", default=[])
    parser.addini("fhir_profile", "profiles to apply to collected payloads", type="args", default=[])
    parser.addini("fhir_ig", "Implementation Guides whose profiles to add (relative to rootdir)", type="args",
                  default=[])  # fmt: skip
    parser.addini("fhir_version", "FHIR version of collected payloads", default="")
    parser.addini("fhir_fail_on", "lowest severity that fails a payload test (default error)", default="")
    parser.addini(
        "fhir_suites", "globs of conformance suite files to collect", type="args", default=["*.fhir-suite.yaml"]
    )
    parser.addini("fhir_skip", "'GLOB :: reason' lines: payloads to skip", type="linelist", default=[])
    parser.addini("fhir_xfail", "'GLOB :: reason' lines: payloads expected to fail", type="linelist",
                  default=[])  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fhir_payload: a test generated from a FHIR payload file")
    config.addinivalue_line("markers", "fhir_suite: a test generated from a conformance suite case")
    config.addinivalue_line("markers", "fhir_probe: a check of the server probe (*.fhir-probe.yaml)")
    # Bad settings are one usage error before anything is collected, not a collection error or a
    # failure per payload: the settings, and the validator they make, are checked here.
    settings = _settings(config)
    if settings.payloads or settings.profiles or settings.version or settings.igs:
        settings.validator()


def _shared_config(root: Path) -> dict:
    """The command line's configuration (pyproject.toml [tool.imaging-validator] or
    imaging-validator.toml, nearest at or above the rootdir), with the command line's keys."""
    import typer.main

    from validator.cli import _config_keys, app
    from validator.config import ConfigError, load_config

    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    try:
        found = load_config(root, _config_keys(commands["validate"]))
    except ConfigError as exc:
        raise pytest.UsageError(f"imaging-validator: {exc}") from None
    return {**found.values, "ignores": found.ignores}


class Settings:
    """The plugin's settings: command-line option, else ini key, else the shared configuration."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        shared = _shared_config(Path(config.rootpath))
        self.payloads = config.getoption("fhir_payloads") or config.getini("fhir_payloads")
        self.profiles = tuple(config.getoption("fhir_profile") or config.getini("fhir_profile")
                              or shared.get("profile") or ())  # fmt: skip
        root = Path(config.rootpath)
        igs = config.getoption("fhir_ig") or config.getini("fhir_ig") or shared.get("ig") or ()
        # A folder or archive is named relative to the rootdir; id#version is looked up in the package cache.
        self.igs = tuple(str(root / g) if (root / g).exists() else g for g in igs)
        self.version = config.getoption("fhir_version") or config.getini("fhir_version") or shared.get("fhir_version")
        level = config.getoption("fhir_fail_on") or config.getini("fhir_fail_on") or shared.get("fail_on") or "error"
        if level not in _LEVELS:
            raise pytest.UsageError(f"imaging-validator: fhir_fail_on = {level!r}: expected one of "
                                    + ", ".join(_LEVELS))
        self.fail_on = None if level == "never" else Severity.parse(level)
        self.severity = _severities(shared.get("severity") or [])
        self.ignores = shared["ignores"]
        self.suites = config.getini("fhir_suites")
        self.skip = _marks(config.getini("fhir_skip"), "fhir_skip")
        self.xfail = _marks(config.getini("fhir_xfail"), "fhir_xfail")

    @cache  # noqa: B019 - one Settings per session
    def validator(self):
        from validator.api import IgError, UnknownProfile, UnknownRule, Validator
        from validator.compile.packs import PackError
        from validator.versions import UnknownVersion

        try:
            return Validator(fhir_version=self.version, profiles=self.profiles, fail_on=self.fail_on,
                             severity=self.severity, ignores=self.ignores, root=self.config.rootpath,
                             igs=self.igs)  # fmt: skip
        except (UnknownVersion, UnknownProfile, UnknownRule, PackError, IgError) as exc:
            raise pytest.UsageError(f"imaging-validator: {exc}") from None


def _severities(pairs: list[str]) -> dict[str, Severity | None]:
    out: dict[str, Severity | None] = {}
    for pair in pairs:
        rule, _, level = pair.partition("=")
        try:
            out[rule.strip()] = None if level.strip().lower() == "off" else Severity.parse(level)
        except ValueError as exc:
            raise pytest.UsageError(f"imaging-validator: severity {pair!r}: {exc} or off") from None
    return out


def _marks(lines: list[str], key: str) -> list[tuple[str, str]]:
    out = []
    for line in lines:
        glob, _, reason = line.partition("::")
        if not glob.strip():
            raise pytest.UsageError(f"{key}: {line!r} names no file glob (expected 'GLOB :: reason')")
        out.append((glob.strip(), reason.strip() or f"marked in {key}"))
    return out


def _settings(config: pytest.Config) -> Settings:
    settings = getattr(config, "_imaging_validator", None)
    if settings is None:
        settings = Settings(config)
        config._imaging_validator = settings  # type: ignore[attr-defined]
    return settings


def _matches(path: Path, root: Path, globs: list[str]) -> bool:
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        rel = path.as_posix()
    # fnmatch's * crosses folders, so payloads/**/*.json also matches payloads/a.json.
    return any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(rel, g.replace("**/", "")) or
               fnmatch.fnmatch(path.name, g) for g in globs)  # fmt: skip


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    settings = _settings(parent.config)
    root = Path(parent.config.rootpath)
    if settings.suites and file_path.suffix in (".yaml", ".yml") and _matches(file_path, root, settings.suites):
        return SuiteFile.from_parent(parent, path=file_path)
    if settings.payloads and _matches(file_path, root, settings.payloads):
        return PayloadFile.from_parent(parent, path=file_path)
    if file_path.name.endswith(".fhir-probe.yaml"):
        return ProbeFile.from_parent(parent, path=file_path)
    return None


class ConformanceFailure(Exception):
    """A payload or suite case that fails; its report is the issue table, not a traceback."""


class ValidatorFailure(Exception):
    """The validator itself failed on an input: raised while setting the test up, so pytest
    reports an error (the payload was not judged), with the finding as its text."""


def issue_table(issues: list[Issue] | tuple[Issue, ...]) -> str:
    lines = [f"{'severity':<11} {'rule':<44} {'expression':<40} {'line:col':<9} message"]
    for i in issues:
        where = f"{i.line}:{i.column}" if i.line is not None else "-"
        lines.append(f"{i.severity.label:<11} {i.rule:<44} {i.expression or '(input)':<40} {where:<9} {i.message}")
    return "\n".join(map(terminal, lines))  # payload text cannot act on the terminal


def _raise_validator_failure(results: list[ResourceResult] | tuple[ResourceResult, ...]) -> None:
    broken = [(r, i) for r in results for i in r.issues if i.rule == INTERNAL_ERROR]
    if broken:
        raise ValidatorFailure("the validator failed (exit code 3 on the command line):\n"
                               + "\n".join(terminal(f"{r.label} in {r.source}: {i.message}") for r, i in broken))


def _relative(source: str, config: pytest.Config) -> str:
    """A payload's path as the user names it: relative to the rootdir."""
    try:
        return Path(source).resolve().relative_to(Path(config.rootpath).resolve()).as_posix()
    except ValueError:
        return source


class PayloadFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        settings = _settings(self.config)
        root = Path(self.config.rootpath)
        seen: dict[str, int] = {}
        for name, entry, anonymous in self._names():
            if entry is not None and (anonymous or name in seen):
                name = f"{name}:entry-{entry}"  # no space: the id can be pasted back into pytest
            seen[name] = 1
            test = PayloadItem.from_parent(self, name=name, entry=entry)
            test.add_marker(pytest.mark.fhir_payload)
            for glob, reason in settings.skip:
                if _matches(self.path, root, [glob]):
                    test.add_marker(pytest.mark.skip(reason=reason))
            for glob, reason in settings.xfail:
                if _matches(self.path, root, [glob]):
                    test.add_marker(pytest.mark.xfail(reason=reason, raises=ConformanceFailure, strict=True))
            yield test

    def _names(self) -> Iterator[tuple[str, int | None, bool]]:
        """A name per input of the file (`Type/id`), its entry, and whether it has no id. If the
        reader fails part way, one more name stands for the rest: its test reports the
        validator's finding (validating the file is guarded), never a collection error."""
        from validator.load.sources import load_source

        validator = _settings(self.config).validator()
        try:
            for item in load_source(str(self.path), validator.limits, validator.plan):
                res = item.resource if isinstance(item.resource, dict) else {}
                rtype = res.get("resourceType") if isinstance(res.get("resourceType"), str) else None
                rid = res.get("id") if isinstance(res.get("id"), str) else None
                yield (f"{rtype}/{rid}" if rtype else "(not a resource)" if item.problem else "(no resourceType)",
                       item.entry, rid is None)  # fmt: skip
        except Exception:  # the finding itself comes from validating the file
            yield "(not read)", None, True

    def results(self) -> list[ResourceResult]:
        # The whole file is validated once, on its first test (references between entries resolve).
        if not hasattr(self, "_results"):
            self._results = _settings(self.config).validator().validate_file(self.path)
        return self._results


class _ConformanceItem(pytest.Item):
    """A generated test whose failure report is the finding table, not a traceback."""

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None) -> str:
        if isinstance(excinfo.value, ConformanceFailure | ValidatorFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        # pytest shows a domain that ends the node id with its dots made "::" (x.json -> x::json),
        # which breaks the id shown under -v; a domain that is not the id's end leaves it whole.
        return self.path, 0, f"{self.name} ({self.path.name})"


class PayloadItem(_ConformanceItem):
    def __init__(self, *, entry: int | None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.entry = entry

    def setup(self) -> None:
        _raise_validator_failure(self._results())

    def _results(self) -> list[ResourceResult]:
        return [r for r in self.parent.results() if r.entry == self.entry]  # type: ignore[attr-defined]

    def runtest(self) -> None:
        settings = _settings(self.config)
        results = self._results()
        for r in results:
            if r.fails(settings.fail_on):
                raise ConformanceFailure(f"{r.label} in {_relative(r.source, self.config)} does not conform "
                                         f"(fail on {settings.fail_on.label if settings.fail_on else 'never'}):\n"
                                         + issue_table(r.issues))  # fmt: skip
        # Not validated is not passed: a resource type without rules is reported as skipped.
        unchecked = [r for r in results if r.status(settings.fail_on) == "not-validated"]
        if results and len(unchecked) == len(results):
            pytest.skip(f"{unchecked[0].label} not validated: {unchecked[0].not_validated}")


class SuiteFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        from validator.suites import SuiteError, load_suite

        try:
            cases = load_suite(self.path)
        except SuiteError as exc:
            raise pytest.UsageError(str(exc)) from None
        for case in cases:
            item = SuiteItem.from_parent(self, name=case.title, case=case)
            item.add_marker(pytest.mark.fhir_suite)
            yield item


class SuiteItem(_ConformanceItem):
    def __init__(self, *, case, **kwargs) -> None:
        super().__init__(**kwargs)
        self.case = case

    def setup(self) -> None:
        from validator.suites import run_case

        pool = self.config.__dict__.setdefault("_imaging_validator_pool", {})
        self.result = run_case(self.case, pool)
        _raise_validator_failure(self.result.results)

    def runtest(self) -> None:
        if not self.result.passed:
            problems = "\n  ".join(map(terminal, self.result.problems))
            raise ConformanceFailure(f"case {self.case.title!r} failed:\n  {problems}")


class ProbeFile(pytest.File):
    """A `*.fhir-probe.yaml` file: the server probe (validator/probe/) run once at collection, one
    test per check. Keys: server (or serverEnv: a variable holding the URL), patient or identifier,
    and optionally serverProfile, serverZone, fhirVersion, profiles, tokenEnv."""

    def collect(self) -> Iterator[pytest.Item]:
        import os

        import yaml

        from validator.net.client import ClientSettings
        from validator.probe import ProbeOptions, probe

        try:
            spec = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
            server = spec.get("server") or os.environ.get(str(spec.get("serverEnv")), "")
            if not server or not (spec.get("patient") or spec.get("identifier")):
                raise ValueError("needs `server` (or `serverEnv`) and `patient` or `identifier`")
            run = probe(ProbeOptions(
                server, patient=spec.get("patient"), identifier=spec.get("identifier"),
                server_profile=spec.get("serverProfile", "default"), fhir_version=spec.get("fhirVersion"),
                profiles=tuple(spec.get("profiles") or ()), server_zone=spec.get("serverZone"),
                client=ClientSettings(token_env=spec.get("tokenEnv")),
            ))  # fmt: skip
        except (OSError, yaml.YAMLError, ValueError, AttributeError) as exc:
            raise pytest.UsageError(f"{self.path}: {exc}") from None
        for case in run.cases or ():
            item = ProbeItem.from_parent(self, name=case.title, case=case)
            item.add_marker(pytest.mark.fhir_probe)
            yield item


class ProbeItem(_ConformanceItem):
    def __init__(self, *, case, **kwargs) -> None:
        super().__init__(**kwargs)
        self.case = case

    def runtest(self) -> None:
        if not self.case.passed:
            problems = "\n  ".join(map(terminal, self.case.problems))
            raise ConformanceFailure(f"check {self.case.title!r} failed:\n  {problems}")


@pytest.fixture(scope="session")
def fhir_validator(pytestconfig: pytest.Config):
    """The session's Validator, configured by the --fhir-* options and ini keys."""
    return _settings(pytestconfig).validator()


def assert_conforms(resource: dict, profile: str | None = None, fail_on: str = "error",
                    fhir_version: str | None = None) -> ResourceResult:  # fmt: skip
    """Assert that a resource (a dict) conforms; the assertion message is the issue table."""
    validator = _validator_for(fhir_version, (profile,) if profile else ())
    result = validator.validate_resource(resource)
    threshold = None if fail_on == "never" else Severity.parse(fail_on)
    if result.fails(threshold):
        raise AssertionError(f"{result.label} does not conform (fail on {fail_on}):\n" + issue_table(result.issues))
    return result


@cache
def _validator_for(fhir_version: str | None, profiles: tuple[str, ...]):
    from validator.api import Validator

    return Validator(fhir_version=fhir_version, profiles=profiles)
