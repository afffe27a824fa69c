"""Which FHIR version an ImagingStudy or Endpoint payload is written in, from rules/versions.yaml.

A marker is an element in a shape that only some versions have (procedureCode: R4; modality as a
CodeableConcept: R5 and R6; sopClass as a string: R6). Without --fhir-version the version is the
one every marker allows (R4 when nothing tells); with it, markers of other versions are reported
as one mismatch, with a migration hint per element.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, lru_cache
from itertools import chain, count, repeat
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


_DEFAULT_REASON = (
    "R4; no version marker decides (nothing in the payload is specific to one version), "
    "so it was read as the default R4"
)


@dataclass
class Choice:
    version: str
    reason: str
    conflicts: list[tuple[Marker, tuple]]  # markers the chosen version does not allow, with where


def has_markers(rtype: str | None) -> bool:
    """Whether the version of a resource of this type can be read from its shape."""
    # Asked once per resource: the answer per type is kept (a malformed, unhashable type has none).
    return isinstance(rtype, str) and _has_markers(rtype)


@lru_cache(maxsize=64)  # bounded: the types come from the payloads
def _has_markers(rtype: str) -> bool:
    return any(m.element.split(".", 1)[0] == rtype for m in markers())


@dataclass
class _Branch:
    """The markers of one resource type as a tree of their paths, so one walk of the resource
    looks for all of them (instead of one walk per marker, each through every series and
    instance)."""

    leaves: list[tuple[int, Marker]] = field(default_factory=list)  # markers whose path ends here
    children: dict[str, _Branch] = field(default_factory=dict)
    below: frozenset[int] = frozenset()  # the markers of this branch and of every branch under it


@cache
def _tree(rtype: str, family: frozenset[str] | None) -> _Branch:
    """The markers of `rtype` worth looking for: all of them to detect the version, or only those
    that do not allow the requested version's `family` (the others cannot conflict with it)."""
    return _build_tree(markers(), rtype, family)


def _build_tree(ms: tuple[Marker, ...], rtype: str, family: frozenset[str] | None) -> _Branch:
    root = _Branch()
    for n, m in enumerate(ms):
        head, _, rest = m.element.partition(".")
        if head != rtype or (family is not None and m.versions & family):
            continue
        branch = root
        root.below |= {n}
        for step in rest.split("."):
            branch = branch.children.setdefault(step, _Branch())
            branch.below |= {n}
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


# The types JSON parsing makes: for these, a marker's shape is read from the set of the types of
# many values at once. Others (a dict subclass from a caller) are read one by one with _has_shape.
_JSON_TYPES = frozenset({dict, list, str, int, float, bool, type(None)})
_DICT_ONLY = frozenset({dict})
_LIST_ONLY = frozenset({list})
_NONE_ONLY = frozenset({type(None)})


def _shapes_in(values: list, leaves: list[tuple[int, Marker]], hits: set[int]) -> None:
    """Add to `hits` each leaf marker that holds in one of `values` or, for a list, one of its
    items (as _found reads a leaf)."""
    types = set(map(type, values))
    if list in types or not types <= _JSON_TYPES:  # (a list of another type too)
        items: list = []
        for value in values:
            if isinstance(value, list):
                items.extend(value)
            else:
                items.append(value)
        values, types = items, set(map(type, items))
    if not types <= _JSON_TYPES:
        for n, m in leaves:
            if n not in hits and any(_has_shape(value, m.shape) for value in values):
                hits.add(n)
        return
    for n, m in leaves:
        if n in hits:
            continue
        shape = m.shape
        if shape == "present":
            held = not types <= _NONE_ONLY
        elif shape == "string":
            held = str in types
        elif shape.startswith("value:"):
            held = shape[6:] in values
        else:
            held = dict in types and any(_has_shape(value, shape) for value in values if type(value) is dict)
        if held:
            hits.add(n)


def _objects(values: list) -> list:
    """The objects among `values`, lists flattened at any depth (where _found descends); the items
    of lists of lists only (the instance lists of the series) are joined in C, unchecked:
    _scan_objects reads them one by one if one is not an object."""
    types = set(map(type, values))
    if types == _DICT_ONLY:
        return values
    if types == _LIST_ONLY:
        return list(chain.from_iterable(values))
    return _flatten(values)


def _flatten(values: list) -> list:
    nodes: list = []
    pending = [values]
    while pending:
        for value in pending.pop():
            if isinstance(value, dict):
                nodes.append(value)
            elif isinstance(value, list):
                pending.append(value)
    return nodes


def _scan(values: list, branch: _Branch, hits: set[int]) -> None:
    """Add to `hits` the markers of `branch` that hold in one of `values` (what the parents' step
    gave; None where a parent lacks it): the markers _found() finds, without their places. It reads
    one step of the paths at a time over all the values (a thousand instances in a few C-level
    passes, no call per instance), and no deeper than markers not found yet."""
    if branch.leaves:
        _shapes_in(values, branch.leaves, hits)
    if branch.children:
        _scan_objects(_objects(values), branch, hits)


def _scan_objects(nodes: list, branch: _Branch, hits: set[int]) -> None:
    """_scan() for the children of `branch` in each of `nodes` (objects)."""
    for step, child in branch.children.items():
        if child.below <= hits:
            continue  # every marker under this step is found already
        try:
            values = list(map(dict.get, nodes, repeat(step)))
        except TypeError:  # an item that is not an object (skipped) or a nested list (read through)
            nodes = _flatten(nodes)
            values = list(map(dict.get, nodes, repeat(step)))
        _scan(values, child, hits)


# Objects read one by one by the generated scanner below; more (a series' instances) are read a
# step at a time by _scan_objects.
_FEW = 8
# _has_shape as an expression of the generated scanner ({x}: the value).
_SHAPE_TESTS = {
    "present": "{x} is not None",
    "string": "isinstance({x}, str)",
    "coding": 'isinstance({x}, dict) and ("system" in {x} or "code" in {x}) and "coding" not in {x} '
              'and "concept" not in {x}',
    "codeableConcept": 'isinstance({x}, dict) and ("coding" in {x} or "text" in {x}) and "concept" not in {x} '
                       'and "reference" not in {x}',
    "codeableReference": 'isinstance({x}, dict) and ("concept" in {x} or "reference" in {x})',
}  # fmt: skip


def _shape_test(shape: str, x: str) -> str:
    if shape.startswith("value:"):
        return f"{x} == {shape[6:]!r}"
    return _SHAPE_TESTS.get(shape, "False").format(x=x)


@cache
def _scanner(rtype: str, family: frozenset[str] | None) -> Callable[[dict], set[int]]:
    """The markers of _tree(rtype, family) that hold in a resource (as _found finds them), by a
    function generated for the tree: a small payload costs a few dictionary reads per step of the
    markers' paths instead of the calls of a general walk, and a long list of objects is read
    by _scan_objects."""
    return _generate(_tree(rtype, family), rtype)


def _generate(tree: _Branch, name: str) -> Callable[[dict], set[int]]:
    """The scanner of a tree of markers (_scanner)."""
    ns: dict[str, object] = {"_objects": _objects, "_scan_objects": _scan_objects}
    lines = ["def scan(resource):", "    hits = set()"]
    names = count()

    def emit(branch: _Branch, var: str, depth: int) -> None:
        """Code reading `var`, the value (not None) a step gave, for the markers of `branch`."""
        pad = "    " * depth
        k = next(names)
        ns[f"B{k}"] = branch
        if branch.leaves:  # a leaf marker holds in the value or in one of its items (a list's)
            lines.append(f"{pad}if isinstance({var}, list):")
            lines.append(f"{pad}    for x{k} in {var}:")
            for n, m in branch.leaves:
                lines.append(f"{pad}        if {n} not in hits and {_shape_test(m.shape, f'x{k}')}:")
                lines.append(f"{pad}            hits.add({n})")
            lines.append(f"{pad}else:")
            for n, m in branch.leaves:
                lines.append(f"{pad}    if {n} not in hits and {_shape_test(m.shape, var)}:")
                lines.append(f"{pad}        hits.add({n})")
        if not branch.children:
            return
        # The objects under the children's steps: the value, a list's items, a nested list's (rare).
        lines.append(f"{pad}if isinstance({var}, list) and len({var}) > {_FEW}:")
        lines.append(f"{pad}    _scan_objects(_objects({var}), B{k}, hits)")
        lines.append(f"{pad}else:")
        lines.append(f"{pad}    for o{k} in ({var} if isinstance({var}, list) else ({var},)):")
        lines.append(f"{pad}        if not isinstance(o{k}, dict):")
        lines.append(f"{pad}            if isinstance(o{k}, list):")
        lines.append(f"{pad}                _scan_objects(_objects(o{k}), B{k}, hits)")
        lines.append(f"{pad}            continue")
        for step, child in branch.children.items():
            c = next(names)
            inner = pad + "        "
            if child.children:  # no deeper than markers not found yet
                ns[f"below{c}"] = child.below
                lines.append(f"{inner}if not below{c} <= hits:")
                inner += "    "
            lines.append(f"{inner}v{c} = o{k}.get({step!r})")
            lines.append(f"{inner}if v{c} is not None:")
            emit(child, f"v{c}", len(inner) // 4 + 1)

    emit(tree, "resource", 1)
    lines.append("    return hits")
    exec(compile("\n".join(lines), f"<version markers: {name}>", "exec"), ns)  # source generated here only
    return ns["scan"]  # type: ignore[return-value]


def _tells(marker: Marker) -> bool:
    """Whether _one_version names the marker in its reason: it allows fewer than 3 versions."""
    return len(marker.versions - {"R4B", "R6-ballot3"}) < 3


def _one_version(held: list[Marker]) -> tuple[str, str] | None:
    """The version and its reason when one version allows every marker that holds, else None."""
    candidates = [v for v in ("R4", "R5", "R6") if all(v in m.versions for m in held)]
    if not candidates:
        return None
    version = candidates[0]
    telling = [m.describe() for m in held if _tells(m)]
    return version, f"shape: {', '.join(telling[:3])} ({version})"


@lru_cache(maxsize=256)
def _decided(held: frozenset[int]) -> tuple[str, str] | None:
    """_one_version of the markers numbered `held`: payloads of one producer hold the same markers."""
    ms = markers()
    return _one_version([ms[n] for n in sorted(held)])


@lru_cache(maxsize=64)  # bounded: the types come from the payloads
def _r4_markers(rtype: str) -> tuple[tuple[tuple[str, ...], str, str | None], ...]:
    """The markers of `rtype` that allow R4, in the order of markers(): their steps, their shape
    and how _one_version shows them (None for one that does not tell the version)."""
    return tuple(
        (
            tuple(m.element.split(".")[1:]),
            m.shape,
            m.describe() if len(m.versions - {"R4B", "R6-ballot3"}) < 3 else None,
        )
        for m in markers()
        if m.element.split(".", 1)[0] == rtype and "R4" in m.versions
    )


def _holds_at(node: dict, steps: tuple[str, ...], i: int, shape: str) -> bool:
    """_holds(node, i, steps, shape) for an object `node`, with fewer calls: the step is most
    often missing or a plain value, which costs one lookup here."""
    value = node.get(steps[i])
    if value is None:
        return False
    last = i + 1 == len(steps)
    if type(value) is list:
        for item in value:
            if last:
                if _has_shape(item, shape):
                    return True
            elif type(item) is dict:
                if _holds_at(item, steps, i + 1, shape):
                    return True
            elif _holds(item, i + 1, list(steps), shape):  # a list in the list, or not an object
                return True
        return False
    if last:
        return _has_shape(value, shape)
    return isinstance(value, dict) and _holds_at(value, steps, i + 1, shape)


def choose_r4_shaped(resource: dict) -> Choice:
    """choose(resource, None) for a resource in which no marker that excludes R4 holds, as in
    one the R4 native gate passed (its schema refuses every such shape: tests/test_version_by_gate.py):
    then the version is R4 and only the reason is left to find, which needs the first three
    telling markers that hold, not all of them (the realistic study has them at its root and in
    its first series, so the walk stops there instead of reading every instance)."""
    rtype = resource.get("resourceType")
    shown: list[str] = []
    quiet = False
    for steps, shape, shows in _r4_markers(rtype) if isinstance(rtype, str) else ():
        if steps[0] not in resource:  # most markers' first step is missing: no call for them
            continue
        if shows is None:
            quiet = quiet or _holds_at(resource, steps, 0, shape)
        elif _holds_at(resource, steps, 0, shape):
            shown.append(shows)
            if len(shown) == 3:
                break
    if not (shown or quiet):
        return Choice("R4", _DEFAULT_REASON, [])
    return Choice("R4", f"shape: {', '.join(shown)} (R4)", [])


def choose(resource: dict, requested: str | None) -> Choice:
    rtype = resource.get("resourceType")
    family = None
    if requested is not None:
        family = frozenset({requested, "R4", "R4B"} if requested in ("R4", "R4B") else {requested})
    found: list[tuple[Marker, tuple]] = []
    if isinstance(rtype, str) and has_markers(rtype):  # a scanner is made only for types with markers
        # Which markers hold is cheap to find; where they hold is needed only to report a
        # conflict, and then _found walks the resource again for the places.
        hits = _scanner(rtype, family)(resource)
        if hits:
            decided = _decided(frozenset(hits)) if family is None else None
            if decided is not None:
                return Choice(decided[0], decided[1], [])
            found = _found(resource, _tree(rtype, family))
    if family is not None:
        return Choice(requested, "--fhir-version", found)  # only markers that conflict were looked for
    if not found:
        return Choice("R4", _DEFAULT_REASON, [])
    decided = _one_version([m for m, _ in found])
    if decided is not None:
        return Choice(decided[0], decided[1], [])
    # Markers of several versions: report against the version most markers allow.
    votes = {v: sum(v in m.versions for m, _ in found) for v in ("R4", "R5", "R6")}
    version = max(votes, key=lambda v: (votes[v], v == "R4"))
    return Choice(version, f"shape: mixed versions, most elements are {version}",
                  [(m, p) for m, p in found if version not in m.versions])  # fmt: skip
