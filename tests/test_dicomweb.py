"""--dicomweb URL against a real PACS: Orthanc with its DICOMweb plugin, loaded with generated CT,
MR and US studies (tests/pacs.py). ImagingStudy payloads built from the same studies agree with
Orthanc's own QIDO-RS and WADO-RS answers; each kind of drift gives its exact findings, with the
rule ids and messages of --dicom DIR. A server that is down, refuses the credentials, answers
something that is not DICOM JSON or too much is a finding per study, never a traceback."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable

import pytest
from pacs import ENHANCED_CT, ROOT, STUDIES, endpoint_resource, free_port, pacs_study
from typer.testing import CliRunner

from validator import Severity, Validator
from validator.cli import app
from validator.evaluate.dicom import dicomweb
from validator.net.client import ClientSettings

runner = CliRunner()
CROSS = ("dicom-files:", "dicomweb:")
CREDENTIALS = ClientSettings(user_env="PACS_USER", password_env="PACS_PASSWORD", retries=1, backoff=0.1)


def _validator(pacs, url: str | None = None, settings: ClientSettings = CREDENTIALS) -> Validator:
    # The source copies the environment when it is made: the variables are set only meanwhile.
    with pytest.MonkeyPatch.context() as env:
        for name, value in pacs.env.items():
            env.setenv(name, value)
        return Validator(dicomweb=url or pacs.url, dicomweb_settings=settings)


@pytest.fixture(scope="module")
def checked(pacs) -> Validator:
    return _validator(pacs)


def _findings(v: Validator, study: dict, everything: bool = False) -> list[tuple[str, str]]:
    issues = v.validate_resource(study).issues
    return sorted((i.rule, i.expression) for i in issues if everything or i.rule.startswith(CROSS))


def _drift(v: Validator, key: str, change: Callable[[dict], None], endpoint: str | None = None) -> list[tuple]:
    study = copy.deepcopy(pacs_study(key, endpoint))
    change(study)
    return _findings(v, study)


def _messages(v: Validator, study: dict) -> list[str]:
    return [i.message for i in v.validate_resource(study).issues if i.rule.startswith(CROSS)]


# -- agreement ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(STUDIES))
def test_a_study_built_from_the_archive_agrees_with_its_dicomweb_answers(checked, pacs, key) -> None:
    issues = checked.validate_resource(pacs_study(key, endpoint=pacs.url)).issues
    assert [(i.rule, i.expression, i.message) for i in issues if i.severity >= Severity.WARNING] == []


def test_searches_are_paged_when_the_server_answers_a_few_results_at_a_time(pacs, monkeypatch) -> None:
    monkeypatch.setattr(dicomweb, "PAGE", 2)
    v = _validator(pacs)
    assert _findings(v, pacs_study("ct")) == []
    # study: 1 page; series (2 of them): a full page and an empty one; instances: 3 = 2 + 1, and 1
    assert v.dicomweb._clients[True].requests_sent == 1 + 2 + 2 + 1


# -- drift of the ImagingStudy against the archive ---------------------------------------------------


def test_a_series_deleted_from_the_archive_is_extra_in_the_study(checked) -> None:
    def change(s: dict) -> None:
        gone = copy.deepcopy(s["series"][0])
        gone["uid"], gone["number"] = f"{STUDIES['ct'].uid}.9", 9
        for n, inst in enumerate(gone["instance"], start=1):
            inst["uid"] = f"{gone['uid']}.{n}"
        s["series"].append(gone)
        s["numberOfSeries"], s["numberOfInstances"] = 3, 7

    assert _drift(checked, "ct", change) == [
        ("dicom-files:counts", "ImagingStudy.numberOfInstances"),
        ("dicom-files:counts", "ImagingStudy.numberOfSeries"),
        ("dicom-files:series-extra", "ImagingStudy.series[2].uid"),
    ]


def test_a_series_added_to_the_archive_later_is_missing_from_the_study(checked) -> None:
    def change(s: dict) -> None:
        del s["series"][1]
        s["numberOfSeries"], s["numberOfInstances"] = 1, 3

    assert _drift(checked, "ct", change) == [
        ("dicom-files:counts", "ImagingStudy.numberOfInstances"),
        ("dicom-files:counts", "ImagingStudy.numberOfSeries"),
        ("dicom-files:series-missing", "ImagingStudy.series"),
    ]
    study = copy.deepcopy(pacs_study("ct"))
    change(study)
    assert (f"series {STUDIES['ct'].uid}.2 (Series Number 2, SR, 1 instance(s)) is on the DICOMweb server but not "
            "in the ImagingStudy") in _messages(checked, study)  # fmt: skip


def test_an_instance_the_study_does_not_list_is_missing(checked) -> None:
    def change(s: dict) -> None:
        s["series"][0]["instance"].pop()
        s["series"][0]["numberOfInstances"] = 2

    assert _drift(checked, "ct", change) == [
        ("dicom-files:counts", "ImagingStudy.series[0].numberOfInstances"),
        ("dicom-files:instance-missing", "ImagingStudy.series[0].instance"),
    ]


def test_an_instance_the_archive_does_not_hold_is_extra(checked) -> None:
    assert _drift(checked, "us", lambda s: s["series"][0]["instance"][1].update(uid=f"{ROOT}.3.1.77")) == [
        ("dicom-files:instance-extra", "ImagingStudy.series[0].instance[1].uid"),
        ("dicom-files:instance-missing", "ImagingStudy.series[0].instance"),
    ]


def test_a_sop_class_the_archive_contradicts_is_found(checked) -> None:
    def change(s: dict) -> None:
        s["series"][0]["instance"][0]["sopClass"]["code"] = f"urn:oid:{ENHANCED_CT}"

    assert _drift(checked, "ct", change) == [("dicom-files:sop-class", "ImagingStudy.series[0].instance[0].sopClass")]


def test_a_modality_the_archive_contradicts_is_found(checked) -> None:
    assert _drift(checked, "mr", lambda s: s["series"][1]["modality"].update(code="CT")) == [
        ("dicom-files:modality", "ImagingStudy.series[1].modality")
    ]
    study = copy.deepcopy(pacs_study("mr"))
    study["series"][1]["modality"]["code"] = "CT"
    assert "series[1] modality is CT; the DICOMweb server says MR" in _messages(checked, study)


def test_series_and_instance_numbers_the_archive_contradicts_are_found(checked) -> None:
    def change(s: dict) -> None:
        s["series"][1]["number"] = 7
        s["series"][0]["instance"][2]["number"] = 9

    assert _drift(checked, "ct", change) == [
        ("dicom-files:number", "ImagingStudy.series[0].instance[2].number"),
        ("dicom-files:number", "ImagingStudy.series[1].number"),
    ]


def test_started_is_held_to_the_study_date_time_and_time_zone(checked) -> None:
    assert _drift(checked, "ct", lambda s: s.update(started="2024-01-03T10:15:00Z")) == [
        ("dicom-files:started", "ImagingStudy.started")
    ]
    assert _drift(checked, "ct", lambda s: s.update(started="2024-01-02T11:15:00Z")) == [
        ("dicom-files:started", "ImagingStudy.started")
    ]
    study = copy.deepcopy(pacs_study("mr"))
    study["started"] = "2024-03-05T08:30:00+02:00"
    assert _messages(checked, study) == ["started 2024-03-05T08:30:00+02:00 disagrees with the DICOMweb server: time "
                                         "zone +02:00 vs Timezone Offset From UTC +0100"]  # fmt: skip


def test_counts_the_archive_contradicts_are_found(checked) -> None:
    assert _drift(checked, "us", lambda s: s.update(numberOfSeries=2, numberOfInstances=3)) == [
        ("dicom-files:counts", "ImagingStudy.numberOfInstances"),
        ("dicom-files:counts", "ImagingStudy.numberOfSeries"),
    ]


def test_a_study_the_archive_does_not_hold_is_one_clear_finding(checked, pacs) -> None:
    study = copy.deepcopy(pacs_study("ct"))
    study["identifier"][0]["value"] = f"urn:oid:{ROOT}.99"
    assert _findings(checked, study) == [("dicom-files:study-not-found", "ImagingStudy.identifier[0].value")]
    assert _messages(checked, study) == [f"the DICOMweb server {pacs.url} has no study {ROOT}.99: a QIDO-RS search "
                                         "for its Study Instance UID found nothing (PS3.18 10.6)"]  # fmt: skip


# -- WADO-RS endpoints ---------------------------------------------------------------------------------


def test_an_endpoint_that_answers_404_is_not_served(checked, pacs) -> None:
    study = pacs_study("ct", endpoint=f"{pacs.origin}/wado-rs")
    assert _findings(checked, study) == [("dicomweb:endpoint-not-served", "ImagingStudy.endpoint[0].reference")]
    assert _messages(checked, study) == [
        f"WADO-RS endpoint #wado does not serve study {STUDIES['ct'].uid}: GET {pacs.origin}/wado-rs/studies/"
        f"{STUDIES['ct'].uid}/metadata answered HTTP 404 (PS3.18 10.4: Retrieve Metadata)"
    ]


def test_an_endpoint_that_serves_another_study_is_found(checked, pacs) -> None:
    other = STUDIES["mr"].uid
    study = pacs_study("ct", endpoint=f"{pacs.url}/studies/{other}")
    # the address names another study (the DICOM pack's check) and the server serves that one
    assert _findings(checked, study, everything=True) == [
        ("dicom:wado-study", "ImagingStudy.endpoint[0].reference"),
        ("dicomweb:endpoint-wrong-study", "ImagingStudy.endpoint[0].reference"),
    ]


def test_a_series_endpoint_that_serves_another_series_is_found(checked, pacs) -> None:
    ct = STUDIES["ct"]

    def change(s: dict) -> None:
        s["contained"].append(endpoint_resource("series-1", f"{pacs.url}/studies/{ct.uid}/series/{ct.series_uid(2)}"))
        s["series"][0]["endpoint"] = [{"reference": "#series-1"}]

    assert _drift(checked, "ct", change, endpoint=pacs.url) == [
        ("dicomweb:endpoint-wrong-study", "ImagingStudy.series[0].endpoint[0].reference")
    ]


def test_a_series_endpoint_at_the_service_base_serves_its_series(checked, pacs) -> None:
    def change(s: dict) -> None:
        s["series"][1]["endpoint"] = [{"reference": "#wado"}]

    assert _drift(checked, "ct", change, endpoint=pacs.url) == []


def test_an_endpoint_that_answers_another_content_type_is_found(checked, pacs) -> None:
    uid = STUDIES["us"].uid
    pacs.serve_file(f"plain/studies/{uid}/metadata", b"[]")
    study = pacs_study("us", endpoint=f"{pacs.static}/plain")
    assert _findings(checked, study) == [("dicomweb:endpoint-content-type", "ImagingStudy.endpoint[0].reference")]
    assert "answered application/octet-stream, not application/dicom+json" in _messages(checked, study)[0]


def test_an_endpoint_in_another_file_of_the_run_is_probed_at_the_end(checked, pacs, tmp_path) -> None:
    remote = endpoint_resource("remote", f"{pacs.origin}/wado-rs")
    study = pacs_study("us")
    study["endpoint"] = [{"reference": "Endpoint/remote"}]
    (tmp_path / "endpoint.json").write_text(json.dumps(remote))
    (tmp_path / "study.json").write_text(json.dumps(study))
    run = checked.validate_paths([str(tmp_path)])
    found = [(r.source.rsplit("/", 1)[-1], i.rule, i.expression) for r in run.results for i in r.issues
             if i.rule.startswith(CROSS)]  # fmt: skip
    assert found == [("study.json", "dicomweb:endpoint-not-served", "ImagingStudy.endpoint[0].reference")]


# -- a server that cannot answer ------------------------------------------------------------------------


def test_a_server_that_is_down_is_a_finding_per_study_and_the_rest_is_still_validated(pacs, tmp_path) -> None:
    down = f"http://127.0.0.1:{free_port()}/dicom-web"
    v = _validator(pacs, down, ClientSettings(retries=1, backoff=0.05))
    broken = pacs_study("mr")
    broken["status"] = "done"  # a FHIR error of its own, still reported
    (tmp_path / "a-ct.json").write_text(json.dumps(pacs_study("ct", endpoint=down)))
    (tmp_path / "b-mr.json").write_text(json.dumps(broken))
    run = v.validate_paths([str(tmp_path)])
    found = [(r.source.rsplit("/", 1)[-1], i.rule, i.expression) for r in run.results for i in r.issues]
    assert [f for f in found if f[1] != "r4:ImagingStudy.status:binding"] == [
        ("a-ct.json", "dicomweb:unavailable", "ImagingStudy.identifier[0].value"),
        ("a-ct.json", "dicomweb:endpoint-not-served", "ImagingStudy.endpoint[0].reference"),
        ("b-mr.json", "dicomweb:unavailable", "ImagingStudy.identifier[0].value"),
    ]
    [endpoint] = [i.message for r in run.results for i in r.issues if i.rule == "dicomweb:endpoint-not-served"]
    assert "/metadata was not asked, its server gave no answer earlier in this run (cannot connect" in endpoint
    assert ("b-mr.json", "r4:ImagingStudy.status:binding", "ImagingStudy.status") in found
    first, second = (i.message for r in run.results for i in r.issues if i.rule == "dicomweb:unavailable")
    assert first.startswith(f"study {STUDIES['ct'].uid} not cross-checked: {down}/studies?StudyInstanceUID=")
    assert "cannot connect" in first
    assert second.startswith(f"study {STUDIES['mr'].uid} not cross-checked: {down} gave no answer earlier")
    assert v.dicomweb._clients[True].requests_sent == 2  # one try and one retry, then never again


def test_a_uid_that_is_no_uid_stays_inside_its_path_segment() -> None:
    assert dicomweb.metadata_url("https://pacs.example.org/wado", "1.2/../../admin?x", None) == (
        "https://pacs.example.org/wado/studies/1.2%2F..%2F..%2Fadmin%3Fx/metadata"
    )


def test_a_server_that_refuses_the_credentials_is_a_finding(pacs) -> None:
    v = _validator(pacs, settings=ClientSettings(retries=0))  # no credentials: Orthanc answers 401
    assert _findings(v, pacs_study("us")) == [("dicomweb:unavailable", "ImagingStudy.identifier[0].value")]
    assert "HTTP 401" in _messages(v, pacs_study("us"))[0]


def test_an_answer_that_is_not_dicom_json_is_a_finding(pacs) -> None:
    pacs.serve_file("not-json/studies", b"<html>a portal page</html>")
    v = _validator(pacs, f"{pacs.static}/not-json")
    assert _findings(v, pacs_study("ct")) == [("dicomweb:unavailable", "ImagingStudy.identifier[0].value")]
    assert "the answer is application/octet-stream, not DICOM JSON" in _messages(v, pacs_study("ct"))[0]


def test_an_answer_over_the_size_limit_is_a_finding(pacs) -> None:
    limited = ClientSettings(user_env="PACS_USER", password_env="PACS_PASSWORD", max_bytes=300)
    v = _validator(pacs, settings=limited)
    assert _findings(v, pacs_study("ct")) == [("dicomweb:unavailable", "ImagingStudy.identifier[0].value")]
    assert "over the limit of 300 bytes" in _messages(v, pacs_study("ct"))[0]


def test_a_spent_request_budget_is_said_per_study(pacs) -> None:
    v = _validator(pacs, settings=ClientSettings(user_env="PACS_USER", password_env="PACS_PASSWORD", budget=3))
    assert _findings(v, pacs_study("ct")) == [("dicomweb:unavailable", "ImagingStudy.identifier[0].value")]
    assert "request budget of 3 spent" in _messages(v, pacs_study("us"))[0]


# -- the command line, and --jobs ----------------------------------------------------------------------


def test_the_cli_cross_checks_against_the_pacs(pacs, tmp_path) -> None:
    good, stale = tmp_path / "good.json", tmp_path / "stale.json"
    good.write_text(json.dumps(pacs_study("ct", endpoint=pacs.url)))
    drifted = pacs_study("mr")
    drifted["series"][0]["instance"].pop()
    stale.write_text(json.dumps(drifted))
    options = ["--dicomweb", pacs.url, "--dicomweb-user-env", "PACS_USER", "--dicomweb-password-env", "PACS_PASSWORD"]
    ok = runner.invoke(app, ["validate", str(good), *options], env=pacs.env)
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(app, ["validate", str(stale), *options, "--format", "json"], env=pacs.env)
    assert bad.exit_code == 1, bad.output
    rules = sorted(i["rule"] for r in json.loads(bad.output)["results"] for i in r["issues"])
    # The study still claims the instance: a partial listing, which FHIR allows; the archive check finds it gone.
    assert rules == ["dicom-files:instance-missing"]
    unset = runner.invoke(app, ["validate", str(good), *options], env={"PACS_USER": ""})
    assert unset.exit_code == 2 and "--dicomweb-user-env PACS_USER" in unset.output


def test_jobs_give_the_same_findings_as_one_process(pacs, tmp_path) -> None:
    for key in STUDIES:
        study = pacs_study(key, endpoint=f"{pacs.origin}/wado-rs")
        study["numberOfInstances"] += 1
        (tmp_path / f"{key}.json").write_text(json.dumps(study))
    v = _validator(pacs)
    serial = v.validate_paths([str(tmp_path)]).results
    parallel = v.validate_paths([str(tmp_path)], jobs=2).results
    assert [r.issues for r in parallel] == [r.issues for r in serial]
    assert sorted(i.rule for r in serial for i in r.issues if i.rule.startswith(CROSS)) == (
        ["dicom-files:counts"] * 3 + ["dicomweb:endpoint-not-served"] * 3
    )


# -- credentials ---------------------------------------------------------------------------------------


def test_a_bearer_token_goes_to_the_dicomweb_server_only_never_to_an_endpoint_elsewhere() -> None:
    # Orthanc has no bearer tokens of its own: the two origins are played by a mock transport.
    import httpx

    from validator.evaluate.dicom.dicomweb import DicomWebSource

    seen: list[tuple[str, str | None]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers.get("authorization")))
        return httpx.Response(200, json=[], headers={"content-type": "application/dicom+json"})

    source = DicomWebSource("https://pacs.example.org/dicom-web", ClientSettings(token_env="PACS_TOKEN"),
                            environ={"PACS_TOKEN": "s3cret"}, transport=httpx.MockTransport(answer))  # fmt: skip
    assert source.study("1.2.3") is None
    endpoint = endpoint_resource("elsewhere", "https://viewer.example.net/wado")
    assert source.probe(endpoint, "#elsewhere", "1.2.3", None) == [
        ("dicomweb:endpoint-not-served", "WADO-RS endpoint #elsewhere does not serve study 1.2.3: GET "
         "https://viewer.example.net/wado/studies/1.2.3/metadata answered no instance")
    ]
    assert seen == [("pacs.example.org", "Bearer s3cret"), ("viewer.example.net", None)]


# -- one comparison, two sources ---------------------------------------------------------------------


DRIFTS: dict[str, Callable[[dict], None]] = {
    "series left out": lambda s: s["series"].pop(),
    "instance renamed": lambda s: s["series"][0]["instance"][0].update(uid=f"{ROOT}.1.1.99"),
    "modality": lambda s: s["series"][0]["modality"].update(code="MR"),
    "numbers": lambda s: s["series"][0].update(number=5),
    "started": lambda s: s.update(started="2023-01-02T10:15:00Z"),
    "counts": lambda s: s.update(numberOfInstances=9),
    "unknown study": lambda s: s["identifier"][0].update(value=f"urn:oid:{ROOT}.98"),
}


@pytest.mark.parametrize("drift", sorted(DRIFTS))
def test_the_files_and_the_server_of_a_study_give_the_same_findings(checked, tmp_path, drift) -> None:
    from pacs import write_dicom

    write_dicom(STUDIES["ct"], tmp_path)
    files = Validator(dicom_files=tmp_path)
    study = copy.deepcopy(pacs_study("ct"))
    DRIFTS[drift](study)
    from_server = _findings(checked, study)
    assert from_server and _findings(files, study) == from_server
    if drift != "unknown study":  # that message says where was looked: a folder, or a search of the server
        assert _neutral(_messages(files, study), files.dicom_files.wording) == _neutral(
            _messages(checked, study), checked.dicomweb.wording
        )


def _neutral(messages: list[str], wording) -> list[str]:
    """The messages with the source's name (and a file's name) taken out: what is left is the comparison's."""
    out = []
    for message in messages:
        for n, phrase in enumerate((wording.at_where, wording.says, wording.holds, wording.at, wording.name)):
            message = message.replace(phrase, f"<{n}>")
        out.append(re.sub(r" \([\w-]+\.dcm\)|[\w-]+\.dcm, ", "", message))
    return out
