"""Reading rule packs: YAML files checked against schemas/pack.schema.json on every load.

A broken pack is refused with a PackError that names the file, the rule and the field, so a pack
author can find the problem without reading engine code.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from validator.resources import cache_dir, package_file


class PackError(Exception):
    """A rule pack that cannot be used. Carries every problem found, one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Pack:
    path: Path
    data: dict[str, Any]

    @property
    def id(self) -> str:
        return self.data["pack"]

    @property
    def ruleset(self) -> str:
        return self.data["ruleset"]


@cache
def strict_loader() -> type:
    """Safe YAML loading that refuses repeated mapping keys: a repeated element or rule in a pack
    would otherwise silently replace the first one. (PyYAML is imported only when a pack's text
    is not in the cache.)"""
    import yaml

    class StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        pass

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
        loader.flatten_mapping(node)
        result: dict = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in result:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            result[key] = loader.construct_object(value_node, deep=deep)
        return result

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return StrictLoader


@cache
def _schema_validator() -> Any:
    # Imported here: jsonschema is only needed when packs are actually read.
    from jsonschema import Draft202012Validator

    schema = json.loads(package_file("schemas", "pack.schema.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


def _rule_and_field(data: dict, path: list) -> tuple[str, str]:
    """Name the rule a schema error sits in (element path, invariant key, value set, rule id)."""
    if len(path) >= 4 and path[0] == "structures" and path[2] == "elements":
        return f"{path[1]}.{path[3]}", ".".join(str(p) for p in path[4:]) or "(element)"
    if len(path) >= 4 and path[0] == "structures" and path[2] == "invariants":
        inv = data["structures"][path[1]]["invariants"][path[3]]
        key = inv.get("key", f"invariant #{path[3]}") if isinstance(inv, dict) else f"#{path[3]}"
        return f"{path[1]} {key}", ".".join(str(p) for p in path[4:]) or "(invariant)"
    if len(path) >= 2 and path[0] == "structures":
        return str(path[1]), ".".join(str(p) for p in path[2:]) or "(structure)"
    if len(path) >= 2 and path[0] in ("primitives",):
        return str(path[1]), ".".join(str(p) for p in path[2:]) or "(primitive)"
    if len(path) >= 2 and path[0] in ("valueSets", "rules"):
        item = data[path[0]][path[1]]
        name = item.get("url") or item.get("id") if isinstance(item, dict) else None
        return str(name or f"{path[0]}[{path[1]}]"), ".".join(str(p) for p in path[2:]) or "(entry)"
    return "(pack)", ".".join(str(p) for p in path) or "(top level)"


def _semantic_problems(data: dict) -> list[tuple[str, str, str]]:
    """Checks the schema cannot express: min <= max, regexes that compile, FHIRPath that parses.
    They run only when a pack's text is not in the cache, so start-up never parses FHIRPath."""
    from validator.fhirpath.expressions import FhirPathError, check_syntax

    problems = []
    for sname, struct in (data.get("structures") or {}).items():
        for epath, el in struct["elements"].items():
            lo, hi = el["card"].split("..")
            if hi != "*" and int(lo) > int(hi):
                problems.append((f"{sname}.{epath}", "card", f"min {lo} is greater than max {hi}"))
        for inv in struct.get("invariants") or []:
            try:
                check_syntax(inv["expression"])
            except FhirPathError as exc:
                problems.append((f"{sname} {inv['key']}", "expression", str(exc)))
    for pname, prim in (data.get("primitives") or {}).items():
        if "regex" in prim:
            try:
                re.compile(prim["regex"])
            except re.error as exc:
                problems.append((pname, "regex", f"does not compile: {exc}"))
    return problems


@cache
def _schema_digest() -> str:
    return hashlib.sha256(package_file("schemas", "pack.schema.json").read_bytes()).hexdigest()


# Bumped whenever the checks a pack passes before it is cached change: older entries then miss.
_CHECKS_VERSION = "2"


def _cache_file(text: str) -> Path | None:
    folder = cache_dir()
    if folder is None:
        return None
    key = hashlib.sha256(f"{_CHECKS_VERSION}\0{_schema_digest()}\0{text}".encode()).hexdigest()
    return folder / f"{key}.json"


def _from_cache(path: Path | None) -> dict | None:
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # absent, unreadable or damaged: load the pack the slow way
    return data if isinstance(data, dict) else None


def _to_cache(path: Path | None, data: dict) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        pass  # a cache that cannot be written only costs time


def load_pack(path: Path) -> Pack:
    """Read and check one pack file. Raises PackError naming the file, rule and field.

    A pack whose exact text (under the same pack schema) was loaded and checked before is read from
    a content-addressed cache (IMAGING_VALIDATOR_CACHE=off disables it): parsing YAML and checking
    the schema are most of the validator's start-up. Any change to the text misses the cache."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PackError([f"{name}: cannot read rule pack: {exc}"]) from None
    cache_file = _cache_file(text)
    cached = _from_cache(cache_file)
    if cached is not None:
        return Pack(path=path, data=cached)
    import yaml

    try:
        data = yaml.load(text, Loader=strict_loader())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PackError([f"{name}{where}: invalid YAML: {problem}"]) from None
    if not isinstance(data, dict):
        raise PackError([f"{name}: a rule pack must be a YAML mapping"])
    errors = sorted(_schema_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    problems = []
    for err in errors:
        rule, field = _rule_and_field(data, list(err.absolute_path))
        problems.append(f"{name}: rule {rule}: field {field}: {err.message}")
    if not problems:
        for rule, field, message in _semantic_problems(data):
            problems.append(f"{name}: rule {rule}: field {field}: {message}")
    if problems:
        raise PackError(problems)
    _to_cache(cache_file, data)
    return Pack(path=path, data=data)
