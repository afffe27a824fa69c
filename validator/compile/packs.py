"""Reading rule packs: YAML files checked against schemas/pack.schema.json on every load.

A broken pack is refused with a PackError that names the file, the rule and the field, so a pack
author can find the problem without reading engine code. A pack that extends another is resolved
here (see extends.py): every caller gets complete packs.
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

from validator.compile import extends
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


# Limits on a pack or suite file, far above the largest bundled pack (under 1 MB, 4,000 values):
# its size, and how many values it holds once every alias is expanded. Aliases share the values
# they name, but whatever walks the result (the schema check, the pack cache) visits each one as
# often as it is named: 1 KB of nested aliases ("billion laughs") would be 10^9 values.
MAX_YAML_BYTES = 16 * 1024 * 1024
MAX_YAML_VALUES = 1_000_000


def expanded_values(root: Any, limit: int) -> int | None:
    """How many values a composed YAML document holds with its aliases expanded, or None when
    more than `limit` (or endless: an alias inside the value it names). Linear in the document
    as written: each distinct node is counted once and its count reused where it is named."""
    import yaml

    done: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in done:
            continue
        if isinstance(node, yaml.ScalarNode):
            done[key] = 1
            continue
        children = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else node.value
        if children_done:
            open_nodes.discard(key)
            done[key] = 1 + sum(done[id(c)] for c in children)
            if done[key] > limit:
                return None
            continue
        if key in open_nodes:
            return None  # reached again while its own children are being counted: a cycle
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in done)
    return done[id(root)]


@cache
def strict_loader() -> type:
    """Safe YAML loading that refuses repeated mapping keys (a repeated element or rule in a pack
    would otherwise silently replace the first one) and files beyond MAX_YAML_BYTES or
    MAX_YAML_VALUES. (PyYAML is imported only when a pack's text is not in the cache.)"""
    import yaml

    class StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        def __init__(self, stream: str) -> None:
            if len(stream) > MAX_YAML_BYTES:
                raise yaml.YAMLError(f"the file is larger than the limit of {MAX_YAML_BYTES} bytes")
            super().__init__(stream)

        def construct_document(self, node: yaml.Node) -> Any:
            if expanded_values(node, MAX_YAML_VALUES) is None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"its aliases expand to more than {MAX_YAML_VALUES:,} values (an alias bomb?), "
                    "or an alias is nested in the value it names", node.start_mark)  # fmt: skip
            return super().construct_document(node)

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
def _schema() -> dict:
    return json.loads(package_file("schemas", "pack.schema.json").read_text(encoding="utf-8"))


@cache
def _schema_validator() -> Any:
    # Imported here: jsonschema is only needed when packs are actually read.
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_schema())


@cache
def _extension_validator() -> Any:
    """The part of the schema an extending pack is checked against before it is resolved: its id
    and the fields that say how it extends its base. Its content is partial until merged with the
    base's, so that is checked on the resolved pack by the full schema."""
    from jsonschema import Draft202012Validator

    schema = _schema()
    fields = ("pack", *extends.EXTENSION_FIELDS)
    return Draft202012Validator(
        {
            "$defs": schema["$defs"],
            "type": "object",
            "required": ["pack", "extends"],
            "properties": {name: schema["properties"][name] for name in fields},
        }
    )


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
    for i, inv in enumerate(data.get("invariants") or []):  # a profile pack's own
        try:
            check_syntax(inv["expression"])
        except FhirPathError as exc:
            problems.append((inv["key"], f"invariants.{i}.expression", str(exc)))
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


# Bumped whenever the checks a pack passes before it is cached, or the entries' form, change:
# older entries then miss.
_CHECKS_VERSION = "3"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _cache_file(text: str) -> Path | None:
    folder = cache_dir()
    if folder is None:
        return None
    key = _digest(f"{_CHECKS_VERSION}\0{_schema_digest()}\0{text}")
    return folder / f"{key}.json"


# [extends as written, sha256 of that base's text] for each base down an extending pack's chain.
Bases = list[list[str]]


def _bases_unchanged(pack: Path, bases: Bases) -> bool:
    """Whether every base in the chain still has the text the cached resolution was made from."""
    here = pack
    for written, digest in bases:
        here = here.parent / written
        try:
            if _digest(here.read_text(encoding="utf-8")) != digest:
                return False
        except (OSError, UnicodeDecodeError):
            return False
    return True


def _from_cache(path: Path | None, pack: Path) -> tuple[dict, Bases] | None:
    """A checked (and resolved) pack: keyed by its own text, valid while its bases are unchanged."""
    if path is None:
        return None
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
        data, bases = entry["data"], entry["bases"]
        if isinstance(data, dict) and _bases_unchanged(pack, bases):
            return data, bases
    except (OSError, ValueError, TypeError, KeyError):
        pass  # absent, unreadable or damaged: load the pack the slow way
    return None


def _to_cache(path: Path | None, data: dict, bases: Bases) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"data": data, "bases": bases}), encoding="utf-8")
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        pass  # a cache that cannot be written only costs time


def load_pack(path: Path) -> Pack:
    """Read and check one pack file, resolved against its base if it extends one. Raises PackError
    naming the file, rule and field.

    A pack whose exact text (under the same pack schema) was loaded and checked before is read from
    a content-addressed cache (IMAGING_VALIDATOR_CACHE=off disables it): parsing YAML and checking
    the schema are most of the validator's start-up. Any change to the text, or to the text of a
    pack it extends, misses the cache."""
    return _load(path, ())[0]


def _load(path: Path, extending: tuple[Path, ...]) -> tuple[Pack, str, Bases]:
    """The pack, the digest of its text and its chain of bases. `extending`: the packs (resolved
    paths) whose loading led here, to refuse a cycle."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PackError([f"{name}: cannot read rule pack: {exc}"]) from None
    cache_file = _cache_file(text)
    cached = _from_cache(cache_file, path)
    if cached is not None:
        return Pack(path=path, data=cached[0]), _digest(text), cached[1]
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
    bases: Bases = []
    if "extends" in data:
        data, bases = _resolve(path, data, extending)
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
    _to_cache(cache_file, data, bases)
    return Pack(path=path, data=data), _digest(text), bases


def _resolve(path: Path, data: dict, extending: tuple[Path, ...]) -> tuple[dict, Bases]:
    """The complete pack an extending pack describes, and its chain of bases."""
    name = str(path)
    errors = sorted(_extension_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        named = [(_rule_and_field(data, list(e.absolute_path)), e.message) for e in errors]
        raise PackError([f"{name}: rule {rule}: field {field}: {message}" for (rule, field), message in named])
    written = data["extends"]
    base_path = path.parent / written
    chain = (*extending, path.resolve())
    if base_path.resolve() in chain:
        cycle = " -> ".join(str(p) for p in (*chain, base_path.resolve()))
        raise PackError([f"{name}: rule (pack): field extends: {written} leads back to a pack it extends ({cycle})"])
    if not base_path.is_file():
        raise PackError([f"{name}: rule (pack): field extends: no pack at {written} (looked for {base_path})"])
    try:
        base, base_digest, base_bases = _load(base_path, chain)
    except PackError as exc:
        raise PackError([*exc.problems, f"{name}: rule (pack): field extends: its base {written} is broken"]) from None
    resolved, problems = extends.resolve(data, base.data, written, _schema()["$defs"])
    if problems:
        raise PackError([f"{name}: rule {rule}: field {field}: {message}" for rule, field, message in problems])
    return resolved, [[written, base_digest], *base_bases]


def check_pack_data(path: Path, data: dict) -> Pack:
    """A pack made in memory (an imported IG's), held to the same schema and checks as a file;
    `path` names where it came from in messages."""
    name = str(path)
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
    return Pack(path=path, data=data)
