"""The Python API; the CLI and the pytest plugin are thin layers over it.

from validator import Validator
result = Validator(fhir_version="R4", profiles=["imr"]).validate_paths(["payloads/"])
result.failed, result.summary(), result.results[0].issues

The Validator holds the options of a run and hands the work to the stages: compile (the packs of
each FHIR version, compiled once), load (inputs into resources), select (version and profiles of
each resource), evaluate (rules and DICOM checks) and run (the pipeline over many inputs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from validator import rule_ids as R
from validator.compile.catalog import plan_for, profiles_for
from validator.compile.ig.packages import IgError
from validator.compile.packs import PackError
from validator.compile.plan import Plan, Rule, rule_infos
from validator.compile.profiles import Profile, ProfileSet
from validator.limits import DEFAULT as DEFAULT_LIMITS
from validator.limits import Limits
from validator.load.discovery import Discovered, Walker, find_root
from validator.load.sources import ResourceInput, load_source
from validator.model import Issue, ResourceResult, RunResult, Severity
from validator.rule_ids import implements
from validator.run.pipeline import Collector, Pipeline, ResultStream
from validator.run.rule_table import RuleEntry, check_implementations, rule_table
from validator.run.store import ResultStore, stored
from validator.run.waivers import Ignore, drop, resolve_severities
from validator.select.selection import Selector, UnknownProfile, find_requested
from validator.versions import DEFAULT, VERSIONS, parse_version

if TYPE_CHECKING:
    from validator.net.client import ClientSettings

__all__ = ["Discovered", "IgError", "Ignore", "PackError", "Plan", "UnknownProfile", "UnknownRule", "Validator",
           "plan_for", "profiles_for"]


class UnknownRule(ValueError):
    """A severity override names no rule (usage error)."""


class Validator:
    """Validates FHIR resources. Raises PackError (broken packs), UnknownVersion and
    UnknownProfile on creation; after that, every input problem is a finding, never an exception,
    and so is a defect of the validator on one input (`engine:internal-error`; `debug` adds the
    traceback to its message)."""

    def __init__(
        self,
        fhir_version: str | None = None,
        fail_on: Severity | None = Severity.ERROR,
        profiles: Sequence[str] = (),
        must_support: bool = True,
        dicom: bool = True,
        severity: Mapping[str, Severity | None] | None = None,
        dicom_files: str | Path | None = None,
        limits: Limits = DEFAULT_LIMITS,
        debug: bool = False,
        ignores: Sequence[Ignore] = (),
        exclude: Sequence[str] = (),
        root: str | Path | None = None,
        dicomweb: str | None = None,
        dicomweb_settings: ClientSettings | None = None,
        igs: Sequence[str] = (),
    ) -> None:
        """`severity` maps rule ids or globs (`dicom:*`) of any FHIR version to a level, or to
        None to switch the rule off; `ignores` drop findings per path; `exclude` globs and the
        repository's .gitignore leave files out of directory walks. `root` is the repository
        root that reports name files relative to (default: found from git, else the current
        folder). `dicomweb` is the base URL of a DICOMweb service each ImagingStudy is
        cross-checked against (QIDO-RS), its WADO-RS endpoints probed; `dicomweb_settings` sets
        the client (timeouts, budget, size cap, TLS, credential variables). Raises DicomWebError
        for a URL or credential variable that cannot work. `igs` are Implementation Guides
        (package.tgz, folder or id#version in the FHIR package cache) whose profiles join the
        bundled ones; raises IgError when one cannot be read."""
        self.limits = limits
        self.version_requested = fhir_version is not None
        self.version = parse_version(fhir_version or DEFAULT)
        self.fail_on = fail_on
        self.must_support = must_support
        self.plan = plan_for(self.version)
        check_implementations(self.plan)  # a declared Python rule nobody implements: a broken pack
        self._extra = tuple(Path(p).resolve() for p in profiles if Path(p).is_file())
        self._igs = tuple(str(Path(g).resolve()) if Path(g).exists() else g for g in igs)
        self._profile_set: ProfileSet | None = None
        self._rule_infos: tuple[int, dict] | None = None
        if self._igs:
            self.profile_set  # noqa: B018 - an IG that cannot be read is a usage error now, not mid-run
        self.requested: list[Profile] = [find_requested(p, self.profile_set) for p in profiles]
        version_reason = "--fhir-version"
        asked = {p.fhir_version for p in self.requested}
        if fhir_version is None and len(asked) == 1 and (number := asked.pop()) != self.version.number:
            # A profile of another FHIR version (an R5 IG's) asked for by --profile: its version.
            self.version = next((v for v in VERSIONS.values() if v.number == number), self.version)
            self.version_requested = self.version.number == number
            self.plan = plan_for(self.version)
            version_reason = f"--profile {self.requested[0].title} is a FHIR {self.version.name} profile"
        self.dicom = dicom
        self.severity, self.off = self._severities(dict(severity or {}))
        self.ignores = tuple(ignores)
        self.exclude = tuple(exclude)
        self.root = Path(root).resolve() if root is not None else (find_root(Path.cwd()) or Path.cwd())
        self.dicom_files = None
        if dicom_files is not None:
            from validator.evaluate.dicom.files import read_dicom_folder

            self.dicom_files = read_dicom_folder(Path(dicom_files))
        self.dicomweb = None
        if dicomweb is not None:
            from validator.evaluate.dicom.dicomweb import DicomWebSource

            self.dicomweb = DicomWebSource(dicomweb, dicomweb_settings)
        selector = Selector(self.version if self.version_requested else None, self.version,
                            lambda: self.profile_set, self.requested, version_reason)  # fmt: skip
        self.pipeline = Pipeline(selector, lambda: self.profile_set, limits, must_support, dicom, self.dicom_files,
                                 self.severity, debug, self.dicomweb)  # fmt: skip

    def _severities(self, asked: dict[str, Severity | None]) -> tuple[dict[str, Severity], set[str]]:
        """Rule ids and globs resolved against this version's rules and, for what matches none of
        them, every version's: a mixed run's options name rules of each version it may meet."""
        if not asked:  # nothing to resolve: profiles stay uncompiled until a payload needs them
            return {}, set()
        levels, off, unknown = resolve_severities(asked, self.rules)
        if unknown:
            everywhere = {rid for v in VERSIONS.values() for rid in plan_for(v).rules}
            more, more_off, unknown = resolve_severities({k: asked[k] for k in unknown}, everywhere)
            levels.update(more)
            off |= more_off
        if unknown:
            raise UnknownRule(f"no rule {', '.join(map(repr, unknown))} in any FHIR version (see: rules list)")
        return levels, off

    @property
    def profile_set(self) -> ProfileSet:
        # Loaded on first need: a run without --profile or meta.profile never reads profile packs.
        if self._profile_set is None:
            self._profile_set = profiles_for(self.version, self._extra, self._igs)
        return self._profile_set

    @property
    def rules(self) -> dict[str, Rule]:
        """Every rule: the base packs' and the profiles'."""
        return {**self.plan.rules, **self.profile_set.rules_for(self.version.number)}

    @property
    def rule_table(self) -> dict[str, RuleEntry]:
        """Every rule with its declaration and its implementation (what `rules list` shows)."""
        return rule_table(self.plan, self.profile_set.rules_for(self.version.number))

    # -- validating ------------------------------------------------------------------------------
    def validate_resource(self, resource: dict, source: str = "<memory>") -> ResourceResult:
        """Validate an already parsed resource (positions are not known)."""
        self.pipeline.start()
        item = ResourceInput(source, None, resource, (), None)
        return self._waive(self.pipeline.finish([self.pipeline.validate_guarded(item)]))[0]

    def validate_file(self, path: str | Path) -> list[ResourceResult]:
        return list(self._waive(self._run([str(path)])))

    def discover(self, paths: Iterable[str], as_discovered: bool = False) -> Discovered:
        """The files that the arguments name (directories walked as load/discovery.py says), and
        the files a walk left out. Raises InputError when a path names nothing."""
        return Walker(self.root, self.exclude, self.limits.max_bytes).discover(list(paths), as_discovered)

    def validate_paths(
        self,
        paths: Iterable[str] | Discovered,
        progress: Callable[[int], None] | None = None,
        jobs: int = 1,
        stream: ResultStream | None = None,
    ) -> RunResult:
        """Files, directories, globs or '-' (or what `discover` found). Raises InputError when a
        path names nothing. `progress` is called with the number of resources validated so far.
        With jobs > 1 the resources are validated by that many processes (same results, same order).
        `stream` takes each result in run order as the run goes on (run/pipeline.py ResultStream:
        the command line prints the text report so); none when findings are waived (rules
        switched off, ignored paths), which happens after the run."""
        found = paths if isinstance(paths, Discovered) else self.discover(paths)
        if self.off or self.ignores:
            stream = None
        results = self._run(found.files, progress, jobs, prefix=self._dicom_file_results(), stream=stream)
        return self.run(results, notes=found.skipped)

    def run(self, results: Iterable[ResourceResult], notes: Iterable[str] = ()) -> RunResult:
        """A run of these results (rules switched off and ignored paths left out), carrying the
        rules that reports describe: the base rules and those of the profiles this validator
        compiled (not every profile it could compile), and where its files are."""
        compiled = self.profile_set.compiled_rules
        # Made once per set of compiled profiles (compiled rules only grow): runs of one small file
        # each, as the pytest plugin makes, must not rebuild a 700-rule table every time.
        if self._rule_infos is None or self._rule_infos[0] != len(compiled):
            self._rule_infos = (len(compiled), rule_infos({**self.plan.rules, **compiled}))
        kept = results if isinstance(results, ResultStore) else tuple(results)
        return RunResult(self._waive(kept), self.fail_on, notes=tuple(notes),
                         rules=self._rule_infos[1], cwd=str(Path.cwd()), root=str(self.root))  # fmt: skip

    def _waive(self, results: Sequence[ResourceResult]) -> Sequence[ResourceResult]:
        if not self.off and not self.ignores:
            return results
        where = RunResult((), cwd=str(Path.cwd()), root=str(self.root))
        return stored(results, drop(results, self.off, self.ignores, where.repo_path))

    def _run(
        self,
        sources: list[str],
        progress: Callable[[int], None] | None = None,
        jobs: int = 1,
        prefix: Iterable[ResourceResult] = (),
        stream: ResultStream | None = None,
    ) -> ResultStore:
        """Validate every resource of the sources, then the checks that needed the whole run."""
        self.profile_set  # noqa: B018 - target checks need to know the profiles before reading
        self.pipeline.start()
        if jobs > 1 and "-" not in sources:
            from validator.run.parallel import parallel_available, run_parallel, worth_parallel

            if parallel_available() and worth_parallel(sources):
                return run_parallel(self.pipeline, sources, jobs, progress, prefix, stream)
        outcomes = Collector(prefix, stream)
        for source in sources:
            # Guarded: a defect of the validator on one input is a finding for it (run/faults.py).
            for outcome in self.pipeline.outcomes(source, load_source(source, self.limits, self.plan), len(outcomes)):
                outcomes.add(outcome)
                if progress is not None:
                    progress(len(outcomes))
        return self.pipeline.finish(outcomes)

    @implements(R.FILES_UNREADABLE)
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
