"""The FHIRPath layer: the functions fhirpathpy lacks, the environment variables, silent trace,
strict syntax, and failures turned into FhirPathError (never a crash, never output)."""

from __future__ import annotations

import pytest

from validator.fhirpath import expressions as fhirpath

STUDY = {
    "resourceType": "ImagingStudy",
    "id": "s",
    "contained": [{"resourceType": "Patient", "id": "p1", "gender": "other"}],
    "subject": {"reference": "#p1"},
    "endpoint": [{"reference": "urn:uuid:7f0a3f9e-2c55-4c3e-9d3b-1f6f1e6a1b2c"}, {"reference": "Endpoint/e2"}],
    "description": "CT",
    "status": "available",
}
ENDPOINT = {"resourceType": "Endpoint", "id": "e1", "status": "active"}
ENDPOINT2 = {"resourceType": "Endpoint", "id": "e2", "status": "off"}


def _eval(expression: str, node=STUDY, type_path: str = "ImagingStudy", root=STUDY, bundle=None):
    ctx = fhirpath.EvalContext(root=root, bundle=bundle or {})
    return fhirpath.evaluate(fhirpath.compile_expression(expression), node, type_path, root, root, ctx)


def test_has_value_is_true_for_a_primitive_and_false_for_a_complex_element() -> None:
    assert _eval("description.hasValue()") == [True]
    assert _eval("subject.hasValue()") == [False]


def test_resolve_finds_a_contained_resource() -> None:
    assert _eval("subject.resolve().gender") == ["other"]


def test_resolve_finds_bundle_entries_by_full_url_and_by_type_and_id() -> None:
    bundle = {"urn:uuid:7f0a3f9e-2c55-4c3e-9d3b-1f6f1e6a1b2c": ENDPOINT, "Endpoint/e2": ENDPOINT2}
    assert _eval("endpoint.resolve().status", bundle=bundle) == ["active", "off"]


def test_an_unresolvable_reference_resolves_to_nothing() -> None:
    assert _eval("endpoint.resolve().exists()") == [False]


def test_root_resource_and_resource_are_set() -> None:
    node = STUDY["subject"]
    assert _eval("%rootResource.id", node=node, type_path="Reference") == ["s"]
    assert _eval("%resource.contained.id", node=node, type_path="Reference") == ["p1"]


def test_html_checks_accepts_plain_narrative_and_refuses_script() -> None:
    ok = {"div": '<div xmlns="http://www.w3.org/1999/xhtml"><b>CT</b></div>', "status": "generated"}
    bad = {"div": '<div xmlns="http://www.w3.org/1999/xhtml"><script>x()</script></div>', "status": "generated"}
    assert _eval("`div`.htmlChecks()", node=ok, type_path="Narrative") == [True]
    assert _eval("`div`.htmlChecks()", node=bad, type_path="Narrative") == [False]


def test_trace_prints_nothing(capsys) -> None:
    assert _eval("id.trace('x') = 's'") == [True]
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


@pytest.mark.parametrize("expression", ["id.where(", "a..b", "exists() and", "))"])
def test_an_expression_with_a_syntax_error_is_refused(expression) -> None:
    with pytest.raises(fhirpath.FhirPathError, match="does not parse"):
        fhirpath.compile_expression(expression)


def test_a_failing_evaluation_raises_fhirpath_error() -> None:
    with pytest.raises(fhirpath.FhirPathError):
        _eval(
            "contained.descendants().as(uri)",
            node={**STUDY, "contained": [{"resourceType": "Patient", "id": "a", "gender": "x", "active": True}]},
        )


def test_a_non_boolean_invariant_result_is_refused() -> None:
    with pytest.raises(fhirpath.FhirPathError, match="boolean"):
        fhirpath.truthy(["x"])
    assert fhirpath.truthy([]) is None
