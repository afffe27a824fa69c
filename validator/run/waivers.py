"""Waivers: what a team decides not to be told about, so it can adopt the validator step by step.

* A rule switched off (`--severity RULE=off`; RULE may be a glob such as `dicom:*`): its findings
  are dropped. Other levels change severity in the pipeline; only `off` is applied here.
* Per-path ignores (configuration `[[tool.imaging-validator.ignore]]`): the findings of the named
  rules (all, when none is named) in files matching the paths (git's wildcard syntax, relative to
  the repository root) are dropped.
* A baseline (`--write-baseline`, `--baseline`): the fingerprints of the findings of a run
  (model.fingerprint: file, resource, rule, element and message, never a line), so a later run
  reports only findings that are new and counts the rest as waived.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from validator.model import VERSION, ResourceResult, RunResult, Severity
from validator.run.store import stored

if TYPE_CHECKING:
    import pathspec

BASELINE_FORMAT = 1


class BaselineError(ValueError):
    """A baseline file that cannot be read (usage error): the message names the file."""


def is_pattern(rule: str) -> bool:
    return any(c in rule for c in "*?[")


def resolve_severities(
    asked: Mapping[str, Severity | None], known: Iterable[str]
) -> tuple[dict[str, Severity], set[str], list[str]]:
    """Expand rule globs against the known rule ids: (new severity per rule id, rules switched
    off, patterns or ids that name no known rule). A later entry overrides an earlier one, so
    `dicom:*=warning` then `dicom:uid-syntax=error` does what it reads."""
    ids = sorted(set(known))
    levels: dict[str, Severity] = {}
    off: set[str] = set()
    unknown = []
    for pattern, level in asked.items():
        hits = [r for r in ids if fnmatch.fnmatchcase(r, pattern)] if is_pattern(pattern) else (
            [pattern] if pattern in ids else [])  # fmt: skip
        if not hits:
            unknown.append(pattern)
        for rid in hits:
            levels.pop(rid, None)
            off.discard(rid)
            if level is None:
                off.add(rid)
            else:
                levels[rid] = level
    return levels, off, unknown


@dataclass(frozen=True, slots=True)
class Ignore:
    """Findings to drop: of these rules (globs; empty = every rule) in files matching `paths`."""

    paths: tuple[str, ...]
    rules: tuple[str, ...] = ()
    origin: str = ""  # where it was declared, for messages

    def spec(self) -> pathspec.GitIgnoreSpec:
        import pathspec  # when a waiver is applied: not at every start-up

        return pathspec.GitIgnoreSpec.from_lines(self.paths)


def drop(results: Iterable[ResourceResult], off: set[str], ignores: Sequence[Ignore],
         path_of: Callable[[str], str]) -> Iterator[ResourceResult]:  # fmt: skip
    """The results without the findings of rules switched off and those ignored for their file;
    `path_of` gives a source's path relative to the repository root. One at a time: a long run's
    results are not all in memory."""
    if not off and not ignores:
        yield from results
        return
    specs = [(ig.spec(), ig.rules) for ig in ignores]
    for r in results:
        path = path_of(r.source)
        rules = [rules for spec, rules in specs if spec.match_file(path)]
        kept = tuple(
            i for i in r.issues
            if i.rule not in off
            and not any(not pats or any(fnmatch.fnmatchcase(i.rule, p) for p in pats) for pats in rules)
        )  # fmt: skip
        yield r if len(kept) == len(r.issues) else replace(r, issues=kept)


@dataclass(frozen=True, slots=True)
class Baseline:
    path: str
    fingerprints: frozenset[str]

    def apply(self, run: RunResult) -> RunResult:
        """The run without the findings this baseline recorded; `waived` counts them."""
        known = iter([fp in self.fingerprints for _, _, fp in run.fingerprinted()])  # in the order of the run
        waived = 0

        def kept_of(results: Iterable[ResourceResult]) -> Iterator[ResourceResult]:
            nonlocal waived
            for r in results:
                kept = tuple(i for i in r.issues if not next(known))
                waived += len(r.issues) - len(kept)
                yield r if len(kept) == len(r.issues) else replace(r, issues=kept)

        results = stored(run.results, kept_of(run.results))
        return replace(run, results=results, waived=run.waived + waived) if waived else run


def read_baseline(path: str | Path) -> Baseline:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise BaselineError(f"--baseline {path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise BaselineError(f"--baseline {path}: not a baseline (invalid JSON: {exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != BASELINE_FORMAT:
        raise BaselineError(f"--baseline {path}: not a baseline of this validator (format {BASELINE_FORMAT} expected)")
    findings = doc.get("findings")
    if not isinstance(findings, list) or not all(isinstance(f, dict) and isinstance(f.get("fingerprint"), str)
                                                 for f in findings):  # fmt: skip
        raise BaselineError(f"--baseline {path}: 'findings' must be a list of objects with a 'fingerprint'")
    return Baseline(str(path), frozenset(f["fingerprint"] for f in findings))


def render_baseline(run: RunResult) -> str:
    """Today's findings as a baseline: a fingerprint each, with what it stands for (so a review
    of the file reads what was accepted), sorted so it diffs well."""
    findings = [
        {"fingerprint": fp, "file": run.repo_path(r.source), "resource": r.label, "rule": i.rule,
         "expression": i.expression, "message": i.message}
        for r, i, fp in run.fingerprinted()
    ]  # fmt: skip
    findings.sort(key=lambda f: (f["file"], f["resource"], f["rule"], f["expression"], f["fingerprint"]))
    doc = {"format": BASELINE_FORMAT, "tool": f"imaging-validator {VERSION}", "findings": findings}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
