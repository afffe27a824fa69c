"""`imaging-validator probe`: exit codes as for validate, and each check a case in the reports."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from probe_fake import Behaviour, fake_server
from typer.testing import CliRunner

from validator.cli import app

runner = CliRunner()


def test_a_conformant_server_exits_0_and_every_check_is_a_case_in_json_junit_and_html(tmp_path: Path) -> None:
    with fake_server(Behaviour()) as base:
        result = runner.invoke(app, ["probe", base, "--patient", "p1", "--retries", "0",
                                     "--json", str(tmp_path / "r.json"), "--junit", str(tmp_path / "j.xml"),
                                     "--html", str(tmp_path / "r.html")])  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["summary"]["failed"] == 0 and doc["summary"]["cases"] == len(doc["cases"]) > 20
    titles = [c["title"] for c in doc["cases"]]
    assert any(t.startswith("modality (system|code)") and f"GET {base}/ImagingStudy?patient=p1&modality=" in t
               for t in titles)  # fmt: skip
    junit = ET.parse(tmp_path / "j.xml").getroot()
    assert len(junit.findall(".//testcase")) == len(doc["cases"])
    assert "Conformance cases" in (tmp_path / "r.html").read_text()
    assert f"{len(doc['cases'])} case(s): {len(doc['cases'])} passed, 0 failed" in result.output


def test_a_deviation_exits_1_and_the_report_says_what_was_expected_and_what_came_back(tmp_path: Path) -> None:
    with fake_server(Behaviour(unknown_empty=True)) as base:
        result = runner.invoke(app, ["probe", base, "--patient", "p1", "-q", "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 1, result.output
    (case,) = [c for c in json.loads((tmp_path / "r.json").read_text())["cases"] if c["status"] == "fail"]
    assert case["title"].startswith("unknown parameter is ignored (self link without it) or refused: GET ")
    assert case["problems"] == ["expected the unknown parameter ignored (the same 3 studies) or refused "
                                "(400 + OperationOutcome); got 0 studies"]  # fmt: skip
    assert "FAIL  unknown parameter" in result.output and "PASS" not in result.output  # -q: failures only


def test_usage_errors_exit_2_before_any_request() -> None:
    cases = [
        (["probe", "http://127.0.0.1:9"], "needs --patient ID or --identifier"),
        (["probe", "ftp://example.org", "--patient", "p"], "not an http or https URL"),
        (["probe", "http://127.0.0.1:9", "--patient", "p", "--server-profile", "nope"], "no server profile 'nope'"),
        (["probe", "http://127.0.0.1:9", "--patient", "p", "--server-zone", "Paris"], "not a time zone offset"),
        (["probe", "http://127.0.0.1:9", "--patient", "p", "--fhir-version", "R9"], "unknown FHIR version"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)


def test_an_unreachable_server_exits_1_with_the_url_in_the_report() -> None:
    result = runner.invoke(app, ["probe", "http://127.0.0.1:9", "--patient", "p1", "--retries", "0", "-q"])
    assert result.exit_code == 1
    assert "http://127.0.0.1:9/metadata" in result.output and "cannot connect" in result.output
