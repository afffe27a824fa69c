"""Property-based tests (hypothesis): generated valid ImagingStudy payloads and random mutations of
them. Validation never raises and always returns a result, the JSON report always validates
against its schema, valid payloads have no error, and removing a required element is an error."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

from fixture_cases import json_paths
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from validator import RunResult, Severity, Validator
from validator.report import json_report
from validator.resources import package_file

ROOT = Path(__file__).resolve().parent.parent
VALIDATOR = Validator(fhir_version="R4")
REPORT_SCHEMA = Draft202012Validator(json.loads(package_file("schemas", "report.schema.json").read_text()))
DCM = "http://dicom.nema.org/resources/ontology/DCM"
CT_IMAGE = "urn:oid:1.2.840.10008.5.1.4.1.1.2"
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

components = st.one_of(st.just("0"), st.integers(min_value=1, max_value=99999).map(str))
uids = st.lists(components, min_size=3, max_size=8).map(lambda parts: "1.2." + ".".join(parts))


@st.composite
def studies(draw) -> dict:
    """A valid R4 ImagingStudy: unique UIDs, consistent counts and modalities."""
    modality = draw(st.sampled_from(["CT", "MR", "US", "CR", "DX", "NM", "PT", "XA"]))
    root = draw(uids)
    series = []
    for n in range(draw(st.integers(min_value=0, max_value=3))):
        instances = [{"uid": f"{root}.{n + 1}.{k + 1}", "number": k + 1,
                      "sopClass": {"system": "urn:ietf:rfc:3986", "code": CT_IMAGE}}
                     for k in range(draw(st.integers(min_value=0, max_value=4)))]  # fmt: skip
        s = {"uid": f"{root}.{n + 1}", "number": n + 1, "modality": {"system": DCM, "code": modality}}
        if instances:
            s["instance"] = instances
            s["numberOfInstances"] = len(instances)
        if draw(st.booleans()):
            s["description"] = draw(st.text(alphabet="abcdefgh XYZ", min_size=1, max_size=20).filter(str.strip))
        series.append(s)
    study = {
        "resourceType": "ImagingStudy", "id": draw(st.from_regex(r"[A-Za-z0-9]{1,20}", fullmatch=True)),
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">study</div>'},
        "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{root}"}],
        "status": draw(st.sampled_from(["registered", "available", "cancelled", "entered-in-error", "unknown"])),
        "subject": {"reference": f"Patient/{draw(st.from_regex(r'[a-z0-9]{1,10}', fullmatch=True))}"},
    }  # fmt: skip
    if draw(st.booleans()):
        study["started"] = draw(st.sampled_from(["2024-01-02", "2024-01-02T03:04:05Z", "2023-12-31T23:59:59+01:00"]))
    if series:
        study["series"] = series
        study["numberOfSeries"] = len(series)
        study["modality"] = [{"system": DCM, "code": modality}]
        if all("instance" in s for s in series):
            study["numberOfInstances"] = sum(len(s["instance"]) for s in series)
    return study


def _replace(node: object, ptr: tuple, value: object) -> object:
    if not ptr:
        return value
    node = copy.copy(node)
    node[ptr[0]] = _replace(node[ptr[0]], ptr[1:], value)  # type: ignore[index]
    return node


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)


def _report_is_valid(result) -> None:
    report = json.loads(json_report.render(RunResult(results=(result,))))
    errors = list(REPORT_SCHEMA.iter_errors(report))
    assert not errors, errors[0].message


@SETTINGS
@given(studies())
def test_a_generated_valid_study_has_no_error(study) -> None:
    result = VALIDATOR.validate_resource(study)
    assert [i for i in result.issues if i.severity >= Severity.ERROR] == []
    _report_is_valid(result)


REQUIRED = [("status",), ("subject",), ("series", 0, "uid"), ("series", 0, "modality"),
            ("series", 0, "instance", 0, "uid"), ("series", 0, "instance", 0, "sopClass")]  # fmt: skip


@SETTINGS
@given(studies(), st.sampled_from(REQUIRED))
def test_removing_a_required_element_is_always_an_error(study, path) -> None:
    node = study
    for step in path[:-1]:
        if (isinstance(node, dict) and step in node) or (
            isinstance(node, list) and isinstance(step, int) and step < len(node)
        ):
            node = node[step]
        else:
            return  # the generated study does not have this element
    if not isinstance(node, dict) or path[-1] not in node:
        return
    del node[path[-1]]
    result = VALIDATOR.validate_resource(study)
    expression = "ImagingStudy" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    assert any(i.severity >= Severity.ERROR and i.expression == expression for i in result.issues), result.issues


@SETTINGS
@given(studies(), st.data())
def test_a_random_mutation_never_breaks_the_validator(study, data) -> None:
    ptr = data.draw(st.sampled_from([p for p in json_paths(study)[1:] if p != ("resourceType",)]))
    mutated = _replace(study, ptr, data.draw(json_values))
    result = VALIDATOR.validate_resource(mutated)  # must not raise
    assert result.resource_type == "ImagingStudy"
    _report_is_valid(result)


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_in_a_file_give_a_result_and_a_valid_report(tmp_path_factory, data) -> None:
    path = tmp_path_factory.mktemp("bytes") / "input.json"
    path.write_bytes(data)
    results = VALIDATOR.validate_file(path)
    assert results
    for r in results:
        _report_is_valid(r)


def test_the_coverage_guided_fuzzer_finds_no_crash_in_a_fixed_budget(tmp_path) -> None:
    """atheris over reading and validating files: 5,000 runs (make fuzz runs it longer)."""
    proc = subprocess.run([sys.executable, str(ROOT / "fuzz" / "fuzz_loader.py"), "-runs=5000",
                           f"-artifact_prefix={tmp_path}/"], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done 5000 runs" in proc.stderr
