"""Which FHIR version an ImagingStudy or Endpoint payload is written in, from rules/versions.yaml.

A marker is an element in a shape that only some versions have (procedureCode: R4; modality as a
CodeableConcept: R5 and R6; sopClass as a string: R6). Without --fhir-version the version is the
one every marker allows (R4 when nothing tells); with it, markers of other versions are reported
as one mismatch, with a migration hint per element.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from validator.compile.packs import load_pack
from validator.resources import rules_dir

ORDER = ("R4", "R4B", "R5", "R6", "R6-ballot3")


@dataclass(frozen=True)
class Marker:
    element: str
    shape: str
    versions: frozenset[str]
    hints: dict[str, str]

    def describe(self) -> str:
        name = self.element.split(".", 1)[1]
        shapes = {"present": "", "coding": " as a Coding", "codeableConcept": " as a CodeableConcept",
                  "codeableReference": " as a CodeableReference", "string": " as a string"}  # fmt: skip
        if self.shape.startswith("value:"):
            return f"{name} = {self.shape[6:]}"
        return name + shapes[self.shape]

    def allowed(self) -> str:
        return "/".join(v for v in ORDER if v in self.versions and v not in ("R4B", "R6-ballot3"))


@cache
def markers(root: Path | None = None) -> tuple[Marker, ...]:
    pack = load_pack((root or rules_dir()) / "versions.yaml")
    return tuple(
        Marker(m["element"], m["shape"], frozenset(m["versions"]), dict(m.get("hints") or {}))
        for m in pack.data.get("versionMarkers") or []
    )


def _has_shape(value: object, shape: str) -> bool:
    if shape == "present":
        return value is not None
    if shape == "string":
        return isinstance(value, str)
    if shape.startswith("value:"):
        return value == shape[6:]
    if not isinstance(value, dict):
        return False
    if shape == "coding":
        return ("system" in value or "code" in value) and "coding" not in value and "concept" not in value
    if shape == "codeableConcept":
        return ("coding" in value or "text" in value) and "concept" not in value and "reference" not in value
    if shape == "codeableReference":
        return "concept" in value or "reference" in value
    return False


def _holds(node: object, i: int, steps: list[str], shape: str) -> bool:
    """Whether find() finds something: the same walk, without building pointers."""
    if i == len(steps):
        return any(_has_shape(item, shape) for item in (node if isinstance(node, list) else [node]))
    if isinstance(node, list):
        return any(_holds(item, i, steps, shape) for item in node)
    if isinstance(node, dict) and steps[i] in node:
        return _holds(node[steps[i]], i + 1, steps, shape)
    return False


def find(resource: dict, marker: Marker) -> tuple | None:
    """The pointer of the first place the marker holds in the resource, or None."""
    steps = marker.element.split(".")[1:]
    if not _holds(resource, 0, steps, marker.shape):
        return None

    def walk(node: object, i: int, ptr: tuple) -> tuple | None:
        if i == len(steps):
            items = node if isinstance(node, list) else [node]
            for k, item in enumerate(items):
                if _has_shape(item, marker.shape):
                    return ptr + ((k,) if isinstance(node, list) else ())
            return None
        if isinstance(node, list):
            for k, item in enumerate(node):
                hit = walk(item, i, ptr + (k,))
                if hit is not None:
                    return hit
            return None
        if isinstance(node, dict) and steps[i] in node:
            return walk(node[steps[i]], i + 1, ptr + (steps[i],))
        return None

    return walk(resource, 0, ())


@dataclass
class Choice:
    version: str
    reason: str
    conflicts: list[tuple[Marker, tuple]]  # markers the chosen version does not allow, with where


def has_markers(rtype: str | None) -> bool:
    """Whether the version of a resource of this type can be read from its shape."""
    return any(m.element.split(".", 1)[0] == rtype for m in markers())


@dataclass
class _Branch:
    """The markers of one resource type as a tree of their paths, so one walk of the resource
    looks for all of them (instead of one walk per marker, each through every series and
    instance)."""

    leaves: list[tuple[int, Marker]] = field(default_factory=list)  # markers whose path ends here
    children: dict[str, _Branch] = field(default_factory=dict)


@cache
def _tree(rtype: str, family: frozenset[str] | None) -> _Branch:
    """The markers of `rtype` worth looking for: all of them to detect the version, or only those
    that do not allow the requested version's `family` (the others cannot conflict with it)."""
    root = _Branch()
    for n, m in enumerate(markers()):
        head, _, rest = m.element.partition(".")
        if head != rtype or (family is not None and m.versions & family):
            continue
        branch = root
        for step in rest.split("."):
            branch = branch.children.setdefault(step, _Branch())
        branch.leaves.append((n, m))
    return root


def _found(resource: dict, tree: _Branch) -> list[tuple[Marker, tuple]]:
    """Each marker of the tree that holds, with the first place it holds (as find() gives it), in
    the order of markers()."""
    hits: dict[int, tuple[Marker, tuple]] = {}

    def visit(node: object, branch: _Branch, ptr: tuple) -> None:
        for n, m in branch.leaves:
            if n in hits:
                continue
            if isinstance(node, list):
                k = next((k for k, item in enumerate(node) if _has_shape(item, m.shape)), None)
                if k is not None:
                    hits[n] = (m, (*ptr, k))
            elif _has_shape(node, m.shape):
                hits[n] = (m, ptr)
        if branch.children:
            descend(node, branch, ptr)

    def descend(node: object, branch: _Branch, ptr: tuple) -> None:
        if isinstance(node, list):
            for k, item in enumerate(node):
                descend(item, branch, (*ptr, k))
        elif isinstance(node, dict):
            for step, child in branch.children.items():
                if step in node:
                    visit(node[step], child, (*ptr, step))

    descend(resource, tree, ())
    return [hits[n] for n in sorted(hits)]


def choose(resource: dict, requested: str | None) -> Choice:
    rtype = resource.get("resourceType")
    family = None
    if requested is not None:
        family = frozenset({requested, "R4", "R4B"} if requested in ("R4", "R4B") else {requested})
    found = _found(resource, _tree(rtype, family)) if isinstance(rtype, str) else []
    if family is not None:
        return Choice(requested, "--fhir-version", found)  # only markers that conflict were looked for
    if not found:
        return Choice("R4", "R4; no version marker decides (nothing in the payload is specific to one version), "
                      "so it was read as the default R4", [])  # fmt: skip
    candidates = [v for v in ("R4", "R5", "R6") if all(v in m.versions for m, _ in found)]
    if candidates:
        version = candidates[0]
        telling = [m.describe() for m, _ in found if len(m.versions - {"R4B", "R6-ballot3"}) < 3]
        return Choice(version, f"shape: {', '.join(telling[:3])} ({version})", [])
    # Markers of several versions: report against the version most markers allow.
    votes = {v: sum(v in m.versions for m, _ in found) for v in ("R4", "R5", "R6")}
    version = max(votes, key=lambda v: (votes[v], v == "R4"))
    return Choice(version, f"shape: mixed versions, most elements are {version}",
                  [(m, p) for m, p in found if version not in m.versions])  # fmt: skip
