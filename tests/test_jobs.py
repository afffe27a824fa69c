"""--jobs N: worker processes give the same results, in the same order, as one process."""

from __future__ import annotations

import copy
import json
from dataclasses import replace

from fixture_cases import BASES
from typer.testing import CliRunner

from validator import Validator
from validator.cli import app
from validator.run.parallel import CHUNK_LINES

ENDPOINT = {
    "resourceType": "Endpoint", "id": "e", "status": "active", "payloadType": [{"text": "DICOM"}],
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">e</div>'},
    "connectionType": {"system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                       "code": "dicom-wado-rs"},
    "address": "https://pacs.example.org/dicom-web/studies/9.8.7",
}  # fmt: skip


def _study(n: int) -> dict:
    study = copy.deepcopy(BASES["study"])
    study["id"] = f"s{n}"
    if n % 7 == 0:
        study["status"] = "done"  # an error
    if n % 11 == 0:
        study["bogus"] = 1  # an unknown element
    return study


def _inputs(tmp_path) -> list[str]:
    lines = [json.dumps(_study(n)) for n in range(CHUNK_LINES * 2 + 17)]
    lines[3] = "{not json"
    lines[CHUNK_LINES + 1] = ""  # a blank line is skipped
    raw = "\n".join(lines).encode() + b"\n\xff\xfe\n" + json.dumps(_study(5)).encode() + b"\n"
    (tmp_path / "a-bulk.ndjson").write_bytes(b"\xef\xbb\xbf" + raw)
    (tmp_path / "b-empty.ndjson").write_text("")
    (tmp_path / "c-blank.ndjson").write_text("\n\n")
    study = {**_study(1), "endpoint": [{"reference": "Endpoint/e"}],
             "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.3"}]}  # fmt: skip
    (tmp_path / "d-study.json").write_text(json.dumps(study))
    (tmp_path / "e-endpoint.json").write_text(json.dumps(ENDPOINT))
    (tmp_path / "f-broken.json").write_text('{"resourceType": ')
    return [str(tmp_path)]


def _comparable(run) -> list:
    return [replace(r, duration=0.0) for r in run.results]


def test_two_jobs_give_the_same_results_in_the_same_order_as_one(tmp_path) -> None:
    paths = _inputs(tmp_path)
    one = Validator(fhir_version="R4").validate_paths(paths)
    seen: list[int] = []
    two = Validator(fhir_version="R4").validate_paths(paths, progress=seen.append, jobs=2)
    assert _comparable(two) == _comparable(one)
    rules = {i.rule for r in one.results for i in r.issues}
    # The run holds what makes a parallel run hard: bad lines, empty files, a finding that needs
    # another input (the WADO-RS endpoint), a byte order mark, an unreadable line.
    assert {"input:malformed-json", "input:no-resource", "dicom:wado-study", "input:byte-order-mark",
            "input:unreadable"} <= rules  # fmt: skip
    assert seen == list(range(1, len(one.results) + 1))


def test_the_cli_runs_with_jobs_and_reports_the_same(tmp_path) -> None:
    inputs = tmp_path / "in"  # the reports are written beside, not among, the inputs
    inputs.mkdir()
    paths = _inputs(inputs)
    runner = CliRunner()
    serial = runner.invoke(app, ["validate", *paths, "-q", "--fhir-version", "R4", "--json", str(tmp_path / "1.json")])
    parallel = runner.invoke(
        app, ["validate", *paths, "-q", "--fhir-version", "R4", "-j", "2", "--json", str(tmp_path / "2.json")]
    )
    assert serial.exit_code == parallel.exit_code == 1
    assert serial.output.splitlines()[-1] == parallel.output.splitlines()[-1]
    reports = [json.loads((tmp_path / f"{n}.json").read_text()) for n in (1, 2)]
    for report in reports:
        for result in report["results"]:
            result.pop("durationMs", None)
            result.pop("duration", None)
    assert reports[0]["results"] == reports[1]["results"]
