"""Invariants run without fhirpathpy give fhirpathpy's result: the ones compiled to Python by
fhirpath_subset, and the R5 native checks added for speed (dom-3 with ofType, ref-1 with '#').

Compared on every (invariant, node) the engine evaluates while validating the fixture corpus and
the official examples, and on generated nodes."""

from __future__ import annotations

import json
import re
from functools import cache
from unittest import mock

import pytest
from fixture_cases import load_cases
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from validator import Validator
from validator.api import plan_for
from validator.compile.plan import Invariant
from validator.evaluate.base_rules import BaseRules
from validator.fhirpath import expressions as fhirpath
from validator.fhirpath.natives import InvariantContext
from validator.fhirpath.subset import Unsupported, compile_subset, passes
from validator.versions import VERSIONS

NATIVE_FOR_SPEED = {"dom-3", "ref-1", "ist-5"}  # natives compared here; older ones: test_invariant_equivalence


@cache
def recorded() -> list[tuple]:
    """Every invariant evaluation of a validation run over the corpus: (invariant, node, type path,
    resource, root, context)."""
    from conftest import require_shared

    reference = require_shared()
    calls: list[tuple] = []
    original = BaseRules.invariant

    def spy(self, inv, node, type_path, p, resource):
        calls.append((inv, node, type_path, resource, self.root, self.ctx))
        return original(self, inv, node, type_path, p, resource)

    payloads = [(case.version or "R4", case.payload) for case in load_cases() if isinstance(case.payload, dict)]
    for version, folder in (("R4", "r4"), ("R5", "r5")):
        for path in sorted((reference / "examples" / folder).glob("*.json")):
            payloads.append((version, json.loads(path.read_text(encoding="utf-8"))))
    validators = {v: Validator(fhir_version=v) for v in ("R4", "R5", "R6")}
    with mock.patch.object(BaseRules, "invariant", spy):
        for version, payload in payloads:
            validators[version if version in validators else "R4"].validate_resource(payload)
    return calls


def _fhirpathpy(inv: Invariant, node, type_path, resource, root, ctx) -> bool | None:
    """fhirpathpy's verdict as the engine reads it (only true passes), or None when it cannot tell."""
    try:
        result = fhirpath.truthy(fhirpath.evaluate(inv.compiled, node, type_path, resource, root, ctx))
    except fhirpath.FhirPathError:
        return None
    return result is True


def test_compiled_invariants_agree_with_fhirpathpy_on_the_corpus() -> None:
    compared: dict[str, int] = {}
    deferred = 0
    for inv, node, type_path, resource, root, ctx in recorded():
        if inv.subset is None:
            continue
        try:
            ours = passes(inv.subset, node, resource, root)
        except Unsupported:
            deferred += 1
            continue
        theirs = _fhirpathpy(inv, node, type_path, resource, root, ctx)
        if theirs is None:
            continue
        assert ours == theirs, f"{inv.key} ({inv.expression}) on {node!r}: compiled {ours}, fhirpathpy {theirs}"
        compared[inv.key] = compared.get(inv.key, 0) + 1
    # The invariants of every ImagingStudy payload must have been compared, in all versions.
    for key in ("dom-2", "dom-4", "dom-5", "dom-6", "cod-1", "ident-1", "ref-2", "ist-1", "ist-2", "ist-3", "ist-4",
                "ist-6"):  # fmt: skip
        assert compared.get(key, 0) >= 2, f"{key} compared only {compared.get(key, 0)} times"
    assert deferred < sum(compared.values()), "most evaluations should not need fhirpathpy"


def test_native_checks_added_for_speed_agree_with_fhirpathpy_on_the_corpus() -> None:
    compared: dict[str, int] = {}
    for inv, node, type_path, resource, root, ctx in recorded():
        if inv.native is None or inv.key not in NATIVE_FOR_SPEED or inv.model == "r4":
            continue
        theirs = _fhirpathpy(inv, node, type_path, resource, root, ctx)
        if theirs is None:
            continue
        try:
            ours = inv.native(node, InvariantContext(resource, root)) is None
        except Unsupported:
            continue  # left to the FHIRPath by the native check itself
        assert ours == theirs, f"{inv.key} on {node!r}: native {ours}, fhirpathpy {theirs}"
        compared[inv.key] = compared.get(inv.key, 0) + 1
    assert set(compared) == NATIVE_FOR_SPEED
    assert min(compared.values()) >= 5, compared


def test_a_local_reference_from_a_contained_resource_to_its_container_holds_in_r5() -> None:
    inv = _invariants("R5")["ref-1"]
    study = {"resourceType": "ImagingStudy", "contained": [{"resourceType": "Endpoint", "id": "e"}]}
    inner = study["contained"][0]
    ctx = fhirpath.EvalContext(root=study)
    for ref, resource in (("#", inner), ("#e", study), ("#x", study), ("#", study)):
        node = {"reference": ref}
        theirs = _fhirpathpy(inv, node, "Reference", resource, study, ctx)
        assert (inv.native(node, InvariantContext(resource, study)) is None) == theirs, ref


@cache
def _invariants(version: str) -> dict[str, Invariant]:
    plan = plan_for(VERSIONS[version])
    found: dict[str, Invariant] = {}

    def walk(struct) -> None:
        for inv in struct.invariants:
            found.setdefault(inv.key, inv)
        for el in struct.elements:
            for inv in el.invariants:
                found.setdefault(inv.key, inv)
            if el.children is not None:
                walk(el.children)

    for struct in plan.structures.values():
        walk(struct)
    return found


def _compiled(version: str) -> list[Invariant]:
    return sorted((i for i in _invariants(version).values() if i.subset is not None), key=lambda i: i.key)


COMPILED = [(v, inv.key) for v in ("R4", "R5", "R6") for inv in _compiled(v)]
LEAVES = st.one_of(
    st.sampled_from(["urn:dicom:uid", "#", "#a", "a", "1", "named-event", "data-x", "periodic"]),
    st.integers(min_value=-2, max_value=3),
    st.booleans(),
)


def _nodes(names: list[str]) -> st.SearchStrategy:
    """Objects with some of the members an expression reads, nested two levels deep."""
    inner = st.dictionaries(st.sampled_from(names), st.one_of(LEAVES, st.lists(LEAVES, min_size=1, max_size=3)),
                            max_size=4)  # fmt: skip
    value = st.one_of(LEAVES, inner, st.lists(st.one_of(LEAVES, inner), min_size=1, max_size=3))
    return st.dictionaries(st.sampled_from(names), value, max_size=5)


@pytest.mark.parametrize(("version", "key"), COMPILED, ids=[f"{v}-{k}" for v, k in COMPILED])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_compiled_invariant_agrees_with_fhirpathpy_on_generated_nodes(version, key, data) -> None:
    inv = _invariants(version)[key]
    names = sorted(set(re.findall(r"(?<![%$'\w])([a-z][A-Za-z]*)(?![\w(])", inv.expression)) - {"and", "or", "xor",
                   "implies"}) or ["id"]  # fmt: skip
    node = data.draw(_nodes(names))
    root = {"resourceType": "ImagingStudy", **node} if inv.context == "ImagingStudy" else {"resourceType": "Basic"}
    if inv.context == "ImagingStudy":
        node = root
    try:
        ours = passes(inv.subset, node, root, root)
    except Unsupported:
        return
    theirs = _fhirpathpy(inv, node, inv.context, root, root, fhirpath.EvalContext(root=root))
    if theirs is not None:
        assert ours == theirs, f"{key} ({inv.expression}) on {node!r}: compiled {ours}, fhirpathpy {theirs}"


@pytest.mark.parametrize(
    "expression",
    [
        "name.matches('[a-z]')",
        "value.aggregate($total + $this)",
        "a | b",
        "start.lowBoundary() <= 1",
        "1.5 > a",
        "x.ofType(Coding)",
        "%ucum = system",
        "children().count() > 0",
    ],
)
def test_an_expression_outside_the_subset_is_left_to_fhirpathpy(expression) -> None:
    assert compile_subset(expression) is None


def test_a_primitive_with_extensions_is_left_to_fhirpathpy() -> None:
    fn = compile_subset("code.exists()")
    assert passes(fn, {"code": "x"}, {}, {}) is True
    with pytest.raises(Unsupported):
        passes(fn, {"_code": {"extension": []}}, {}, {})


def test_an_absent_choice_element_is_left_to_fhirpathpy() -> None:
    fn = compile_subset("value.exists()", frozenset({"value"}))
    assert passes(fn, {"other": 1}, {}, {}) is False
    with pytest.raises(Unsupported):
        passes(fn, {"valueString": "x"}, {}, {})


def test_an_invariant_is_answered_without_evaluation_when_its_members_are_absent() -> None:
    fn = compile_subset("contained.contained.empty()")
    assert fn.__name__ == "guarded"
    assert passes(fn, {"resourceType": "ImagingStudy", "status": "available"}, {}, {}) is True
    assert passes(fn, {"contained": [{"contained": [{"id": "x"}]}]}, {}, {}) is False
    # Whatever reads the focus as a whole ($this, a function of the focus) is always evaluated.
    for expression in ("$this.exists()", "exists()", "hasValue() or code.exists()"):
        assert compile_subset(expression).__name__ != "guarded", expression


def test_a_native_check_leaves_a_shape_it_does_not_handle_to_fhirpathpy() -> None:
    from validator.evaluate.walk import invariant_detail

    inv = _invariants("R6")["ist-5"]
    series = [{"uid": "1.2", "numberOfInstances": 1}, {"uid": "1.3", "_numberOfInstances": {"id": "x"}}]
    study = {"resourceType": "ImagingStudy", "numberOfInstances": 3, "series": series}
    with pytest.raises(Unsupported):
        inv.native(study, InvariantContext(study, study))
    ctx = fhirpath.EvalContext(root=study)
    expected = _fhirpathpy(inv, study, "ImagingStudy", study, study, ctx)
    assert expected is not None
    assert (invariant_detail(inv, study, "ImagingStudy", study, study, ctx) is None) == expected
