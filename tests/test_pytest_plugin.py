"""The pytest plugin, run by pytester in fresh folders with only payload files and a pytest.ini."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "payloads"
VALID = json.loads((EXAMPLES / "ct-chest.json").read_text())


@pytest.fixture
def payloads(pytester: pytest.Pytester) -> pytest.Pytester:
    folder = pytester.path / "payloads"
    folder.mkdir()
    for name in ("ct-chest.json", "broken-study.json", "searchset-bundle.json", "studies.ndjson"):
        shutil.copy(EXAMPLES / name, folder / name)
    pytester.makeini("[pytest]\nfhir_payloads = payloads/*.json payloads/*.ndjson\n")
    return pytester


def test_one_test_per_resource_is_collected_with_readable_ids(payloads) -> None:
    result = payloads.runpytest("--collect-only", "-q")
    ids = [line for line in result.outlines if "::" in line]
    assert ids == [
        "payloads/broken-study.json::ImagingStudy/ct-4",
        "payloads/ct-chest.json::ImagingStudy/ct-1",
        "payloads/searchset-bundle.json::ImagingStudy/ct-2",
        "payloads/searchset-bundle.json::ImagingStudy/ct-3",
        "payloads/searchset-bundle.json::Patient/p2",
        "payloads/studies.ndjson::ImagingStudy/ct-10",
        "payloads/studies.ndjson::ImagingStudy/ct-11",
        "payloads/studies.ndjson::ImagingStudy/ct-12",
    ]


def test_exactly_the_non_conformant_resources_fail(payloads) -> None:
    # A real subprocess: the plugin is found through the installed package's pytest11 entry point.
    result = payloads.runpytest_subprocess("-q")
    result.assert_outcomes(passed=5, failed=2, skipped=1)  # the included Patient: not validated, skipped
    result.stdout.fnmatch_lines(["FAILED payloads/broken-study.json::ImagingStudy/ct-4*",
                                 "FAILED payloads/studies.ndjson::ImagingStudy/ct-11*"])  # fmt: skip


def test_a_failure_shows_the_issue_table_and_no_traceback(payloads) -> None:
    result = payloads.runpytest("-q", "payloads/studies.ndjson")
    text = result.stdout.str()
    assert "severity    rule" in text and "r4:ImagingStudy.series.uid:card" in text and "2:650" in text
    assert "Traceback" not in text and "pytest_plugin.py" not in text


def test_a_malformed_payload_file_is_a_failed_test_not_a_collection_error(pytester) -> None:
    (pytester.path / "payloads").mkdir()
    (pytester.path / "payloads" / "truncated.json").write_text('{"resourceType": "ImagingStudy", ')
    pytester.makeini("[pytest]\nfhir_payloads = payloads/*.json\n")
    result = pytester.runpytest("-q")
    result.assert_outcomes(failed=1)
    assert "input:malformed-json" in result.stdout.str()


def test_the_profile_option_and_ini_key_apply_a_profile(payloads) -> None:
    no_endpoint = {k: v for k, v in VALID.items() if k != "endpoint"}  # IMR requires an endpoint
    (payloads.path / "payloads" / "no-endpoint.json").write_text(json.dumps(no_endpoint))
    payloads.runpytest("-q", "payloads/no-endpoint.json").assert_outcomes(passed=1)
    by_option = payloads.runpytest("-q", "payloads/no-endpoint.json", "--fhir-profile", "imr")
    by_option.assert_outcomes(failed=1)
    assert "imr:ImagingStudy.endpoint:card" in by_option.stdout.str()
    payloads.makeini("[pytest]\nfhir_payloads = payloads/*.json\nfhir_profile = imr\n")
    by_ini = payloads.runpytest("-q", "payloads/no-endpoint.json")
    by_ini.assert_outcomes(failed=1)
    assert "imr:ImagingStudy.endpoint:card" in by_ini.stdout.str()


def test_fail_on_warning_fails_payloads_with_warnings(payloads) -> None:
    strict = payloads.runpytest("-q", "payloads/searchset-bundle.json", "--fhir-fail-on", "information")
    strict.assert_outcomes(passed=2, failed=1)  # the included Patient has an information issue
    payloads.makeini("[pytest]\nfhir_payloads = payloads/*.json\nfhir_fail_on = never\n")
    payloads.runpytest("-q").assert_outcomes(passed=4, skipped=1)  # the broken study passes too


def test_a_resource_type_without_rules_is_skipped_with_the_reason(payloads) -> None:
    result = payloads.runpytest("-q", "-rs", "payloads/searchset-bundle.json")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*Patient/p2 (entry *) not validated: no rule pack for Patient (FHIR R4)*"])


def test_junitxml_shows_the_failing_payloads(payloads) -> None:
    payloads.runpytest("-q", "--junitxml=report.xml")
    xml = (payloads.path / "report.xml").read_text()
    assert 'name="ImagingStudy/ct-4"' in xml and "<failure" in xml and "json:duplicate-key" in xml


def test_ini_markers_skip_or_xfail_payloads_with_a_reason(payloads) -> None:
    payloads.makeini(
        "[pytest]\nfhir_payloads = payloads/*.json payloads/*.ndjson\n"
        "fhir_xfail =\n    payloads/broken-study.json :: known bad export, ticket 42\n"
        "fhir_skip =\n    payloads/studies.ndjson :: NDJSON checked nightly\n"
    )
    result = payloads.runpytest("-q", "-rsx")
    result.assert_outcomes(passed=3, xfailed=1, skipped=4)
    result.stdout.fnmatch_lines(["*NDJSON checked nightly*", "*known bad export, ticket 42*"])


def test_a_suite_file_is_collected_and_its_cases_run(pytester) -> None:
    folder = pytester.path / "payloads"
    folder.mkdir()
    shutil.copy(EXAMPLES / "broken-study.json", folder / "broken-study.json")
    (pytester.path / "ours.fhir-suite.yaml").write_text(
        "suite: ours\ncases:\n"
        "  - title: the bad study fails for its duplicate key, and other errors are accepted by regex\n"
        "    payloads: [payloads/broken-study.json]\n"
        "    expect: [{rule: json:duplicate-key}, {rule: '(json|r4|dicom):.*', severity: error}]\n"
        "  - title: wrongly claimed valid\n    payloads: [payloads/broken-study.json]\n    expect: valid\n"
    )
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    assert "unexpected error" in result.stdout.str()


def test_the_fixture_and_assert_conforms_serve_hand_written_tests(pytester) -> None:
    pytester.makepyfile(
        test_ours=f"""
        import copy, pytest
        from validator.testing import assert_conforms
        STUDY = {VALID!r}

        def test_valid(fhir_validator):
            assert fhir_validator.validate_resource(STUDY).issues == ()
            assert_conforms(STUDY)

        def test_invalid():
            broken = copy.deepcopy(STUDY)
            del broken["status"]
            assert_conforms(broken)
        """
    )
    result = pytester.runpytest("-q")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*does not conform*", "*r4:ImagingStudy.status:card*"])


@pytest.mark.parametrize("ini,named", [("fhir_fail_on = sometimes", "fhir_fail_on = 'sometimes'"),
                                       ("fhir_profile = no-such-profile", "no-such-profile")])  # fmt: skip
def test_a_bad_setting_is_one_usage_error_before_collection(payloads, ini, named) -> None:
    payloads.makeini(f"[pytest]\nfhir_payloads = payloads/*.json\n{ini}\n")
    result = payloads.runpytest_subprocess("-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1 and named in errors[0]
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_ids_shown_under_verbose_can_be_pasted_back(payloads) -> None:
    result = payloads.runpytest("-v", "payloads/broken-study.json", "payloads/searchset-bundle.json")
    shown = [line.split(" ")[0] for line in result.outlines if " PASSED" in line or " FAILED" in line]
    assert "payloads/broken-study.json::ImagingStudy/ct-4" in shown and not any("::json::" in s for s in shown)
    for node_id in shown:
        again = payloads.runpytest("-q", node_id)
        assert again.parseoutcomes().get("passed", 0) + again.parseoutcomes().get("failed", 0) == 1, node_id


def test_a_failure_names_the_payload_relative_to_the_rootdir(payloads) -> None:
    result = payloads.runpytest("-q", "payloads/broken-study.json")
    assert "ImagingStudy/ct-4 in payloads/broken-study.json does not conform" in result.stdout.str()
    assert str(payloads.path) not in result.stdout.str()


def test_the_plugin_reads_the_shared_configuration(payloads) -> None:
    (payloads.path / "pyproject.toml").write_text(
        '[tool.imaging-validator]\nfail-on = "never"\nseverity = {"dicom:*" = "off"}\n'
    )
    payloads.runpytest("-q", "payloads/broken-study.json").assert_outcomes(passed=1)
    (payloads.path / "pyproject.toml").write_text('[tool.imaging-validator]\nfail-onn = "never"\n')
    result = payloads.runpytest_subprocess("-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR and "unknown key 'fail-onn'" in result.stderr.str()
