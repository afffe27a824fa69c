"""The probe against two real FHIR servers, seeded with the same imaging fixtures: each server's
report is asserted, deviation by deviation (each checked against the FHIR search spec; README
"Server probe" says which clause).

Medplum's FHIR router (npm, pinned in tests/servers/medplum) runs behind a small Node HTTP front;
sekmet-fhir (PyPI, a test extra) runs as `sekmet serve`. Both bind 127.0.0.1 on a free port and
stop in the fixture's teardown; `make test` installs both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import probe_servers
import pytest

from validator.model import RunResult
from validator.probe import ProbeOptions, probe

# Both servers read a date without a zone as UTC (Node's Date, Python's datetime in UTC).
ZONE = "Z"
SELF_LINK = "expected a self link"
FULL_URL = "expected entry.fullUrl"


@pytest.fixture(scope="module")
def medplum(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with probe_servers.medplum(tmp_path_factory.mktemp("medplum")) as base:
        yield base


@pytest.fixture(scope="module")
def sekmet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with probe_servers.sekmet(tmp_path_factory.mktemp("sekmet")) as base:
        yield base


def _title(case_title: str) -> str:
    return case_title.split(": GET ")[0].split(": POST ")[0]


def _failing(run: RunResult) -> dict[str, tuple[str, ...]]:
    return {_title(c.title): c.problems for c in run.cases or () if not c.passed}


def _run(base: str, profile: str = "default") -> RunResult:
    return probe(ProbeOptions(base, patient="pat-1", server_profile=profile, server_zone=ZONE))


def test_sekmet_passes_every_search_check_and_only_declares_series_and_instance_as_uri(sekmet: str) -> None:
    run = _run(sekmet)
    assert _failing(run) == {
        "declared parameters: 13 of 18 of profile default (not declared, not searched: bodysite, dicom-class, "
        "interpreter, performer, reason)": (
            "expected 'instance' to be declared as type token (the spec's R4 parameter); declared as 'uri'",
            "expected 'series' to be declared as type token (the spec's R4 parameter); declared as 'uri'",
        ),
    }
    titles = [c.title for c in run.cases or ()]
    for passed in ("paging with _count=1 reaches every match once (4 page(s))", "POST _search equals GET",
                   "unknown parameter is ignored", "patient.identifier (chained)", "subject (ID) = pat-1",
                   "_include ImagingStudy:patient and ImagingStudy:endpoint"):  # fmt: skip
        assert any(t.startswith(passed) for t in titles), passed
    # Every study and endpoint it returned was validated and conforms.
    assert {r.id for r in run.results} >= {"st-ct", "st-mr", "st-us", "st-month", "ep-wado", "ep-qido"}
    assert not run.failed


def test_sekmet_under_the_vendor_profile_answers_a_search_without_patient_instead_of_refusing_it(sekmet: str) -> None:
    failing = _failing(_run(sekmet, "vendor-imaging-api"))
    assert failing["a search without patient or identifier is refused with 400 + OperationOutcome"] == (
        "expected 400 (a search needs one of patient, identifier); got 200",
        "expected an OperationOutcome saying why; got Bundle",
    )
    assert len(failing) == 2  # and the declared types, as under the default profile


def test_sekmet_under_the_r4_table_profile_lacks_five_of_the_seventeen_parameters(sekmet: str) -> None:
    failing = _failing(_run(sekmet, "r4-parameter-table"))
    (problems,) = [p for t, p in failing.items() if t.startswith("declared parameters: 12 of 17")]
    missing = sorted(p.split("'")[1] for p in problems if "to declare" in p)
    assert missing == ["bodysite", "dicom-class", "interpreter", "performer", "reason"]


def test_medplum_router_deviations_are_reported_each_with_what_came_back(medplum: str) -> None:
    run = _run(medplum)
    failing = _failing(run)
    answers = {t: p for t, p in failing.items() if t.endswith("answer is a searchset Bundle")}
    others = {t: p for t, p in failing.items() if t not in answers}
    # The router's search Bundles carry neither a self link nor entry.fullUrl (its HTTP server adds them).
    assert answers and all({q.split(" (")[0].split(";")[0] for q in p} <= {SELF_LINK, FULL_URL}
                           for p in answers.values())  # fmt: skip
    searches = [c for c in run.cases or () if _title(c.title).endswith("answer is a searchset Bundle")]
    assert len(answers) == len(searches)  # every search shows it
    assert others == {
        # eq is containment: a study known only to the month is not within a day or an instant.
        "started (eq, as stored) = 2024-03-14T10:30:00Z: every match meets started=2024-03-14T10:30:00Z "
        "(2 match(es))": ("ImagingStudy/st-month does not meet started=2024-03-14T10:30:00Z",),
        "started (eq, day) = 2024-03-14: every match meets started=2024-03-14 (2 match(es))":
            ("ImagingStudy/st-month does not meet started=2024-03-14",),
        # [parameter]=[id] on a parameter with several target types: nothing, and no error.
        "subject (ID) = pat-1: the source study ImagingStudy/st-ct is found":
            ("expected ImagingStudy/st-ct (it meets subject=pat-1); it is not among the 0 match(es)",),
        "_include ImagingStudy:patient and ImagingStudy:endpoint: the referenced resources come along":
            others["_include ImagingStudy:patient and ImagingStudy:endpoint: the referenced resources come along"],
        "paging with _count=1 reaches every match once (1 page(s))": (
            "expected 4 match(es) (Bundle.total) across the pages; got 1 and no further next link",
            "expected a next link (_count=1, 4 matches); got one page of 1 and no next link",
        ),
        "POST _search equals GET": others["POST _search equals GET"],
        "unknown parameter is ignored (self link without it) or refused": (
            "expected the unknown parameter ignored (the same 4 studies) or refused (400 + OperationOutcome); "
            "got 0 studies",),
    }  # fmt: skip
    # The _include and POST answers fail only on the Bundle basics: what they carry is right.
    for title in ("_include ImagingStudy:patient and ImagingStudy:endpoint: the referenced resources come along",
                  "POST _search equals GET"):  # fmt: skip
        assert {q.split(" (")[0].split(";")[0] for q in others[title]} == {SELF_LINK, FULL_URL}, title
    assert run.failed is False  # every study it returned conforms


def test_medplum_declares_every_r4_parameter_and_honours_chains_tokens_and_date_prefixes(medplum: str) -> None:
    run = _run(medplum, "r4-parameter-table")
    titles = {_title(c.title): c.passed for c in run.cases or ()}
    assert titles["declared parameters: 17 of 17 of profile r4-parameter-table"]
    for check in ("modality (system|code) = http://dicom.nema.org/resources/ontology/DCM|CT",
                  "identifier (system|code) = urn:dicom:uid|urn:oid:1.2.826.0.1.3680043.8.498.1",
                  "started (ge, an hour after (excludes)) = ge2024-03-14T11:30:01Z",
                  "started (sa, year) = sa2023"):  # fmt: skip
        judged = [ok for t, ok in titles.items() if t.startswith(check) and "every match meets" in t]
        assert judged == [True], check
    assert not any(t.startswith("patient.identifier") for t in titles)  # not in the R4 table: not searched
    chained = [c for c in _run(medplum).cases or () if c.title.startswith("patient.identifier (chained)")
               and "every match meets" in c.title]  # fmt: skip
    assert [c.passed for c in chained] == [True] and "(4 match(es))" in chained[0].title


def test_the_medplum_front_and_fixtures_are_committed_with_a_lockfile() -> None:
    here = Path(probe_servers.__file__).parent / "servers" / "medplum"
    assert (here / "package-lock.json").is_file() and (here / "server.mjs").is_file()


@pytest.mark.parametrize("server", ["sekmet", "medplum"])
def test_the_command_line_probe_gives_each_server_the_same_verdict_as_the_api(
        server: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:  # fmt: skip
    base = request.getfixturevalue(server)
    done = subprocess.run([sys.executable, "-m", "validator.cli", "probe", base, "--patient", "pat-1",
                           "--server-zone", ZONE, "-q", "--json", str(tmp_path / "probe.json")],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})  # fmt: skip
    assert done.returncode == 1, done.stderr  # both deviate somewhere
    report = json.loads((tmp_path / "probe.json").read_text())
    failed = {_title(c["title"]) for c in report["cases"] if c["status"] == "fail"}
    assert failed == set(_failing(_run(base)))
    assert f"{report['summary']['cases']} case(s): {report['summary']['passed']} passed" in done.stdout
