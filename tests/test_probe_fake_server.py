"""The probe against a small fake server whose every defect is known: each edge case is found,
named with its URL, and the run goes on."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from probe_fake import STUDIES, Behaviour, fake_server

from validator.model import CaseResult, RunResult
from validator.net.client import Answer, ClientSettings
from validator.probe import ProbeOptions, probe
from validator.probe.checks import bundle_problems, read_page
from validator.probe.profiles import UnknownServerProfile, bundled

FAST = ClientSettings(retries=0, backoff=0.01, timeout=5)


def _run(behaviour: Behaviour, **options) -> RunResult:
    with fake_server(behaviour) as base:
        return probe(ProbeOptions(base, patient=options.pop("patient", "p1"), client=options.pop("client", FAST),
                                  **options))  # fmt: skip


def _failed(run: RunResult) -> list[CaseResult]:
    return [c for c in run.cases or () if not c.passed]


def _case(run: RunResult, start: str) -> CaseResult:
    found = [c for c in run.cases or () if c.title.startswith(start)]
    assert found, f"no case starting {start!r} in: {[c.title for c in run.cases or ()]}"
    return found[0]


def test_a_well_behaved_server_passes_every_check() -> None:
    run = _run(Behaviour())
    assert _failed(run) == []
    titles = [c.title for c in run.cases or ()]
    for kind in ("CapabilityStatement", "anchor patient=p1", "modality (system|code)", "modality (comma OR)",
                 "identifier (system|code)", "status (code)", "paging with _count=1", "POST _search equals GET",
                 "unknown parameter"):  # fmt: skip
        assert any(t.startswith(kind) for t in titles), kind
    # Every returned study was validated, once, as a case of its own.
    assert {r.id for r in run.results} == {"s1", "s2", "s3"}


def test_a_probe_can_start_from_a_study_identifier_instead_of_a_patient() -> None:
    uid = STUDIES[0]["identifier"][0]
    run = _run(Behaviour(), patient=None, identifier=f"{uid['system']}|{uid['value']}")
    anchor = _case(run, f"anchor identifier={uid['system']}|{uid['value']}")
    assert anchor.passed and _failed(run) == []
    assert _case(run, "modality (system|code)").title.count("identifier=") == 1  # the anchor rides along


def test_a_paging_loop_is_found_and_not_followed_for_ever() -> None:
    case = _case(_run(Behaviour(paging_loop=True)), "paging with _count=1")
    assert not case.passed
    assert any("paging loop" in p for p in case.problems)


def test_a_server_error_is_a_failed_case_naming_the_status_and_the_run_goes_on() -> None:
    run = _run(Behaviour(error_500=True))
    anchor = _case(run, "anchor patient=p1")
    assert "expected HTTP 200; got 500 (database down)" in anchor.problems
    assert "/ImagingStudy?patient=p1" in anchor.title
    assert _case(run, "CapabilityStatement").passed  # what did answer is still judged


def test_a_non_fhir_answer_is_named_and_the_searches_still_run() -> None:
    run = _run(Behaviour(metadata_html=True))
    meta = _case(run, "CapabilityStatement")
    assert any("content type; got 'text/html'" in p for p in meta.problems)
    assert any(p.startswith("expected JSON") for p in meta.problems)
    assert _case(run, "declared parameters: not judged").passed
    assert _case(run, "modality (system|code)").passed


def test_malformed_json_is_a_finding_with_its_url() -> None:
    run = _run(Behaviour(malformed_search=True))
    anchor = _case(run, "anchor patient=p1")
    assert any(p.startswith("expected JSON; got") for p in anchor.problems)


def test_entries_of_the_wrong_shapes_are_findings_and_never_stop_the_run() -> None:
    run = _run(Behaviour(hostile_entries=True))
    anchor = _case(run, "anchor patient=p1: answer is a searchset Bundle")
    assert "entry[3]: expected an object; got str" in anchor.problems
    assert not _case(run, "ImagingStudy/h1").passed  # validated like any other returned study
    # It matches no criterion: every search that returned it says so, by name.
    modality = next(c for c in run.cases or () if c.title.startswith("modality (system|code)")
                and "every match meets" in c.title)  # fmt: skip
    assert any(p.startswith("ImagingStudy/h1 does not meet modality=") for p in modality.problems)
    assert _case(run, "POST _search equals GET").title  # the run went to its end


def test_a_defect_of_the_probe_on_one_check_is_reported_and_the_other_checks_still_run(
        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from validator.probe import runner

    def broken(*args: object) -> None:
        raise KeyError("surprise")

    monkeypatch.setattr(runner._Probe, "paging_case", broken)
    run = _run(Behaviour())
    case = _case(run, "paging: not checked, the probe failed")
    assert case.problems == ("probe failed on paging: KeyError: 'surprise'",)
    assert run.validator_failed  # exit 3, as for a validator defect on a file
    assert _case(run, "POST _search equals GET").passed


def test_a_bundle_whose_link_and_entry_are_not_arrays_is_judged_not_trusted() -> None:
    answer = Answer("GET", "http://x/ImagingStudy", 200, {"content-type": "application/fhir+json"},
                    b'{"resourceType": "Bundle", "type": "searchset", "link": 5, "entry": 7}', 0.0)  # fmt: skip
    page = read_page("http://x/ImagingStudy", answer)
    assert bundle_problems(page, total_required=True, search_mode_required=True) == [
        "expected Bundle.total (the server profile requires it); got none",
        "expected a self link (search.html: the server SHALL return the parameters it used); got none",
        "expected Bundle.entry to be an array; got int",
    ]


def test_an_answer_nested_too_deep_for_a_parser_is_a_finding_not_a_crash() -> None:
    answer = Answer("GET", "http://x/ImagingStudy", 200, {"content-type": "application/fhir+json"},
                    b"[" * 100_000 + b"]" * 100_000, 0.0)  # fmt: skip
    page = read_page("http://x/ImagingStudy", answer)
    assert page.problems == ["expected JSON a reader can hold; got 200000 byte(s) nested too deep"]


def test_an_answer_over_the_size_limit_is_a_finding_naming_the_url() -> None:
    run = _run(Behaviour(), client=ClientSettings(retries=0, max_bytes=2000))
    anchor = _case(run, "anchor patient=p1")
    assert any("over the limit of 2,000 bytes" in p and "/ImagingStudy?patient=p1" in p for p in anchor.problems)


def test_an_unreachable_server_is_a_failed_case_naming_the_url() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the probe connects
    run = probe(ProbeOptions(f"http://127.0.0.1:{port}", patient="p1", client=FAST))
    meta = _case(run, "CapabilityStatement")
    assert any(f"http://127.0.0.1:{port}/metadata" in p and "cannot connect" in p for p in meta.problems)
    assert run.cases is not None and len(_failed(run)) >= 2


def test_a_request_budget_stops_the_run_with_a_finding() -> None:
    run = _run(Behaviour(), client=ClientSettings(retries=0, budget=4))
    assert any("request budget of 4 spent" in p for c in _failed(run) for p in c.problems)


def test_a_server_that_ignores_a_parameter_is_caught_by_matching_every_result() -> None:
    case = _case(_run(Behaviour(ignore=("modality",))), "modality (system|code)")
    everyone = [c for c in _run(Behaviour(ignore=("modality",))).cases or ()
                if c.title.startswith("modality (system|code)") and "every match meets" in c.title]
    assert everyone and not everyone[0].passed
    assert any("ImagingStudy/s2 does not meet modality=" in p for p in everyone[0].problems)
    assert case.passed  # the Bundle itself is fine: only its content is wrong


def test_a_post_search_that_differs_from_the_get_is_reported() -> None:
    case = _case(_run(Behaviour(post_ignores_form=True)), "POST _search equals GET")
    base = case.title.split(" POST ")[1].split("/ImagingStudy")[0]
    assert case.problems == (f"expected the same studies as GET {base}/ImagingStudy?patient=p1 (3); got 4",)


def test_an_unknown_parameter_that_silently_matches_nothing_is_a_defect() -> None:
    case = _case(_run(Behaviour(unknown_empty=True)), "unknown parameter")
    assert case.problems == ("expected the unknown parameter ignored (the same 3 studies) or refused "
                             "(400 + OperationOutcome); got 0 studies",)  # fmt: skip


def test_an_ignored_parameter_in_the_self_link_is_a_defect() -> None:
    case = _case(_run(Behaviour(self_link_echoes=True)), "unknown parameter")
    assert len(case.problems) == 1
    assert case.problems[0].startswith("expected the self link to leave out the ignored parameter (search.html: it "
                                       "shows what was used); got http://127.0.0.1:")  # fmt: skip


@pytest.mark.parametrize(("refuses", "passes"), [(True, True), (False, False)])
def test_the_vendor_profile_expects_a_400_with_an_outcome_without_patient_or_identifier(refuses: bool,
                                                                                        passes: bool) -> None:
    run = _run(Behaviour(require_patient=refuses), server_profile="vendor-imaging-api")
    case = _case(run, "a search without patient or identifier is refused")
    assert case.passed is passes
    if not passes:
        assert "expected 400 (a search needs one of patient, identifier); got 200" in case.problems


def test_a_day_search_near_midnight_is_judged_only_when_the_servers_zone_is_known() -> None:
    declared = (*Behaviour().declared, "started")
    title = "started (eq, day) = 2024-03-14"
    unknown = next(c for c in _run(Behaviour(declared=declared)).cases or ()
               if c.title.startswith(title) and "every match meets" in c.title)
    # Without the zone, neither 10:30 UTC nor 23:30 New York is surely inside "the 14th" (UTC-12 to UTC+14).
    assert unknown.passed and "2 not judged" in unknown.title
    utc = next(c for c in _run(Behaviour(declared=declared), server_zone="Z").cases or ()
           if c.title.startswith(title) and "every match meets" in c.title)
    # s2 started at 23:30 in New York, 04:30 UTC on the 15th: a UTC server must not return it.
    assert utc.problems == ("ImagingStudy/s2 does not meet started=2024-03-14",)


def test_a_returned_study_that_breaks_the_rules_fails_its_own_case_with_the_rule() -> None:
    broken = json.loads(json.dumps(STUDIES[0]))
    broken["status"] = "finished"  # not in the required ImagingStudy status value set
    run = _run(Behaviour(studies=[broken, *STUDIES[1:]]))
    case = _case(run, "ImagingStudy/s1")
    assert not case.passed and case.results[0].issues
    assert any("status" in p for p in case.problems)
    assert "returned by GET" in case.title and "/ImagingStudy?patient=p1" in case.title


def test_a_capability_statement_without_imaging_study_is_a_defect_and_nothing_else_is_searched() -> None:
    run = _run(Behaviour(lists_imaging_study=False))
    assert _case(run, "CapabilityStatement").problems == (
        "expected ImagingStudy among the CapabilityStatement's resources with its search parameters (search.html: "
        "servers SHALL declare the searches they support); it is not there",)
    assert not any(c.title.startswith("modality") for c in run.cases or ())


def test_the_capability_statements_fhir_version_chooses_the_parameter_table() -> None:
    run = _run(Behaviour(fhir_version="5.0.0", declared=("patient", "modality", "body-site", "bodysite")))
    assert _case(run, "CapabilityStatement").title.endswith("(FHIR R5)")
    declared = _case(run, "declared parameters")
    # R5 renamed bodysite to body-site and has no interpreter; the R4 name is not one of its parameters.
    assert "not declared, not searched: identifier, based-on, body-structure," in declared.title
    assert "interpreter" not in declared.title and ", bodysite" not in declared.title
    r4 = _run(Behaviour(fhir_version="5.0.0"), fhir_version="R4")
    assert _case(r4, "CapabilityStatement").title.endswith("/metadata")  # asked for: kept


def test_a_profile_file_can_promise_modifiers_and_a_server_that_ignores_them_is_caught(tmp_path: Path) -> None:
    profile = tmp_path / "our-pacs.yaml"
    profile.write_text("name: our-pacs\nparameters: [patient, modality]\nrequired: [patient, modality]\n"
                       "modifiers: {modality: [not, missing]}\n")  # fmt: skip
    run = _run(Behaviour(), server_profile=str(profile))
    assert _case(run, "declared parameters: 2 of 2 of profile our-pacs").passed
    # The fake server does not know `modality:not` and ignores it: the CT study comes back.
    (wrong,) = [c for c in run.cases or () if c.title.startswith("modality:not = CT: every match meets")]
    assert wrong.problems == ("ImagingStudy/s1 does not meet modality:not=CT",)
    (missing,) = [c for c in run.cases or () if c.title.startswith("modality:missing = false: every match meets")]
    assert missing.passed  # every study has a modality, so ignoring :missing=false happens to be right


def test_server_profiles_are_bundled_by_name_and_an_unknown_one_is_a_usage_error(tmp_path: Path) -> None:
    assert {"default", "vendor-imaging-api", "r4-parameter-table"} <= set(bundled())
    with pytest.raises(UnknownServerProfile, match="no server profile 'nope'"):
        probe(ProbeOptions("http://127.0.0.1:9", patient="p1", server_profile="nope"))
    typo = tmp_path / "typo.yaml"
    typo.write_text("name: typo\nparameters: [patient, modalty]\n")
    with pytest.raises(UnknownServerProfile, match="no ImagingStudy search parameter 'modalty'"):
        probe(ProbeOptions("http://127.0.0.1:9", patient="p1", server_profile=str(typo)))
