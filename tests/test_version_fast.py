"""Version detection looks for the markers of rules/versions.yaml with a scanner generated for
them (choose): its versions, reasons and conflicts (with their places) must be those of the
straightforward detection, one walk per marker with find(), kept here as the reference (choose
before the scanner). Compared on every payload of the fixtures and examples, on generated
studies and on random resources made of the markers' elements in every JSON type."""

from __future__ import annotations

import copy
import json
import random
import sys
from pathlib import Path

import pytest
from fixture_cases import load_cases
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from validator.select.version import Choice, Marker, _build_tree, _found, _generate, _scan, choose, find, markers

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from benchmark import study as bench_study  # noqa: E402
from corpora import realistic  # noqa: E402

REQUESTS = (None, "R4", "R4B", "R5", "R6", "R6-ballot3")


def reference_choose(resource: dict, requested: str | None) -> Choice:
    """choose() as it was: every marker looked for by its own walk (find), then the same decision."""
    rtype = resource.get("resourceType")
    family = None
    if requested is not None:
        family = frozenset({requested, "R4", "R4B"} if requested in ("R4", "R4B") else {requested})
    found = []
    if isinstance(rtype, str):
        for m in markers():
            if m.element.split(".", 1)[0] != rtype or (family is not None and m.versions & family):
                continue
            p = find(resource, m)
            if p is not None:
                found.append((m, p))
    if family is not None:
        return Choice(requested, "--fhir-version", found)
    if not found:
        return Choice("R4", "R4; no version marker decides (nothing in the payload is specific to one version), "
                      "so it was read as the default R4", [])  # fmt: skip
    candidates = [v for v in ("R4", "R5", "R6") if all(v in m.versions for m, _ in found)]
    if candidates:
        version = candidates[0]
        telling = [m.describe() for m, _ in found if len(m.versions - {"R4B", "R6-ballot3"}) < 3]
        return Choice(version, f"shape: {', '.join(telling[:3])} ({version})", [])
    votes = {v: sum(v in m.versions for m, _ in found) for v in ("R4", "R5", "R6")}
    version = max(votes, key=lambda v: (votes[v], v == "R4"))
    return Choice(version, f"shape: mixed versions, most elements are {version}",
                  [(m, p) for m, p in found if version not in m.versions])  # fmt: skip


def _plain(choice: Choice) -> tuple:
    return choice.version, choice.reason, [(m.element, m.shape, p) for m, p in choice.conflicts]


def assert_same(resource: dict) -> list[tuple]:
    """choose() decides as the reference for every version asked for (and none), the resource unchanged."""
    before = copy.deepcopy(resource)
    outcomes = []
    for requested in REQUESTS:
        got = _plain(choose(resource, requested))
        assert got == _plain(reference_choose(resource, requested)), requested
        outcomes.append(got)
    assert resource == before
    return outcomes


def _resources(node: object) -> list[dict]:
    if isinstance(node, list):
        return [r for item in node for r in _resources(item)]
    if not isinstance(node, dict):
        return []
    found = [node] if isinstance(node.get("resourceType"), str) else []
    for entry in node.get("entry") or [] if isinstance(node.get("entry"), list) else []:
        found += _resources(entry.get("resource") if isinstance(entry, dict) else None)
    for contained in node.get("contained") or [] if isinstance(node.get("contained"), list) else []:
        found += _resources(contained)
    return found


def test_the_payloads_of_the_examples_and_fixtures_are_read_as_the_reference_reads_them() -> None:
    shared = ROOT.parent / "shared" / "reference" / "examples"
    files = sorted((ROOT / "examples").rglob("*.json")) + (sorted(shared.rglob("*.json")) if shared.is_dir() else [])
    docs = [json.loads(p.read_text(encoding="utf-8")) for p in files]
    for path in sorted((ROOT / "examples").rglob("*.ndjson")):
        docs += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    docs += [case.payload for case in load_cases() if case.payload is not None]
    resources = _resources(docs)
    assert len(resources) >= 100
    versions = {assert_same(r)[0][0] for r in resources}
    assert versions >= {"R4", "R5", "R6"}


def test_generated_studies_small_and_large_are_read_as_the_reference_reads_them() -> None:
    rng = random.Random(7)
    for _ in range(20):
        assert assert_same(realistic(rng, bench_study))[0][0] == "R4"
    large = bench_study(rng, 10, 200)
    assert assert_same(large)[0][:2] == (
        "R4",
        "shape: modality as a Coding, series.modality as a Coding, series.instance.sopClass as a Coding (R4)",
    )
    # One instance in R6's shape among two thousand: found, with its place.
    large["series"][7]["instance"][150]["sopClass"] = "urn:oid:1.2.840.10008.5.1.4.1.1.2"
    outcome = assert_same(large)
    assert outcome[0][0] == "R4" and outcome[0][2] == [
        ("ImagingStudy.series.instance.sopClass", "string", ("series", 7, "instance", 150, "sopClass"))]  # fmt: skip


# -- random resources made of the markers' elements -----------------------------------------------

STEPS = sorted({step for m in markers() for step in m.element.split(".")[1:]})
KEYS = ["system", "code", "coding", "text", "concept", "reference", "display"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from(["inactive", "available", "x", ""]),
                    st.floats(allow_nan=False, allow_infinity=False))  # fmt: skip


class Sub(dict):
    """A dict that is not the JSON parser's (a caller's): read one by one, not in bulk."""


class SubList(list):
    """A list that is not the JSON parser's."""


def _values(leaf: st.SearchStrategy) -> st.SearchStrategy:
    def extend(children: st.SearchStrategy) -> st.SearchStrategy:
        objects = st.dictionaries(st.sampled_from(STEPS + KEYS), children, max_size=5)
        return st.one_of(
            objects,
            objects.map(Sub),
            st.lists(children, max_size=4),
            st.lists(objects, min_size=9, max_size=12),  # long lists: read a step at a time
        )

    return st.recursive(leaf, extend, max_leaves=20)


RESOURCES = st.builds(
    lambda rtype, body: {"resourceType": rtype, **body},
    st.sampled_from(["ImagingStudy", "Endpoint", "Patient"]),
    st.dictionaries(st.sampled_from(STEPS + ["id"]), _values(SCALARS), max_size=8),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(RESOURCES)
def test_any_resource_made_of_the_markers_elements_is_read_as_the_reference_reads_it(resource: dict) -> None:
    assert_same(resource)


SHAPES = [
    {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"},
    {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"}]},
    {"concept": {"text": "chest"}},
    {"text": "x"},
    "urn:oid:1.2.840.10008.5.1.4.1.1.2",
    [{"code": "x"}],
    [],
    None,
    {},
]


@pytest.mark.parametrize("seed", range(4))
def test_studies_with_elements_of_every_version_in_every_place_are_read_as_the_reference_reads_them(
    seed: int,
) -> None:
    rng = random.Random(seed)
    mixed = 0
    for _ in range(60):
        study = bench_study(rng, rng.randint(1, 3), rng.choice([1, 3, 12]))
        for _ in range(rng.randrange(5)):
            series = rng.choice(study["series"])
            where = rng.choice(["study", "series", "instance"])
            if where == "study":
                study[rng.choice(["procedureCode", "procedure", "reason", "partOf", "interpreter", "modality",
                                  "status"])] = copy.deepcopy(rng.choice(SHAPES + ["inactive"]))  # fmt: skip
            elif where == "series":
                series[rng.choice(["modality", "bodySite", "laterality"])] = copy.deepcopy(rng.choice(SHAPES))
            else:
                rng.choice(series["instance"])["sopClass"] = copy.deepcopy(rng.choice(SHAPES))
        mixed += assert_same(study)[0][1].startswith("shape: mixed")
    assert mixed > 0


# -- trees of markers other than today's rules ----------------------------------------------------

SYNTHETIC = tuple(
    Marker(f"X.{path}", shape, frozenset({"R4"}), {})
    for path, shape in [
        ("a", "present"), ("a", "coding"), ("a.b", "string"), ("a.b", "present"), ("a.b.c", "value:inactive"),
        ("a.b.c", "codeableReference"), ("a.d", "codeableConcept"), ("e.f.g.h", "present"), ("e.f", "coding"),
        ("e.i", "odd-shape"),
    ]
)  # fmt: skip
SYNTHETIC_STEPS = ["a", "b", "c", "d", "e", "f", "g", "h", "i"] + KEYS
SYNTHETIC_TREE = _build_tree(SYNTHETIC, "X", None)
SYNTHETIC_SCAN = _generate(SYNTHETIC_TREE, "X")


def _any_values() -> st.SearchStrategy:
    def extend(children: st.SearchStrategy) -> st.SearchStrategy:
        objects = st.dictionaries(st.sampled_from(SYNTHETIC_STEPS), children, max_size=4)
        return st.one_of(
            objects,
            objects.map(Sub),
            st.lists(children, max_size=3),
            st.lists(st.one_of(objects, children), min_size=9, max_size=11),  # long lists, of anything
            st.lists(children, max_size=10).map(SubList),
        )

    return st.recursive(st.one_of(SCALARS, st.just({"system": "s"}), st.just({"reference": "r"})), extend,
                        max_leaves=30)  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["a", "e"]), _any_values(), max_size=2))
def test_a_tree_of_markers_of_every_shape_and_depth_is_scanned_as_walked(body: dict) -> None:
    resource = {"resourceType": "X", **body}
    expected = {SYNTHETIC.index(m) for m, _ in _found(resource, SYNTHETIC_TREE)}
    assert SYNTHETIC_SCAN(resource) == expected
    hits: set[int] = set()
    _scan([resource], SYNTHETIC_TREE, hits)  # the bulk reading alone, from the top
    assert hits == expected


def _study_shaped() -> st.SearchStrategy:
    """ImagingStudy-shaped resources with many series and instances (read in bulk), each element
    in any version's shape or none, sometimes not an object or in a nested list."""
    shape = st.one_of(st.sampled_from(SHAPES + ["inactive", 1, True]), st.lists(st.sampled_from(SHAPES), max_size=2))
    odd = st.one_of(SCALARS, st.lists(st.just({"sopClass": "urn:oid:1.2"}), max_size=2))
    instance = st.one_of(st.fixed_dictionaries({}, optional={"sopClass": shape}), odd,
                         st.fixed_dictionaries({"sopClass": shape}).map(Sub))  # fmt: skip
    instances = st.one_of(st.lists(instance, max_size=12), st.lists(st.lists(instance, max_size=3), max_size=3))
    one_series = st.fixed_dictionaries({}, optional={"modality": shape, "bodySite": shape, "laterality": shape,
                                                     "instance": instances})  # fmt: skip
    series = st.lists(st.one_of(one_series, odd, one_series.map(Sub), st.lists(one_series, max_size=2)), max_size=12)
    return st.fixed_dictionaries(
        {"resourceType": st.just("ImagingStudy")},
        optional={"series": series, "modality": shape, "status": shape, "procedureCode": shape, "reason": shape},
    )


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_study_shaped())
def test_any_study_of_many_series_and_instances_is_read_as_the_reference_reads_it(resource: dict) -> None:
    assert_same(resource)
