"""The Spark path (validator/spark/) gives the findings, summary and JSON report of `validate`.

One local[2] session serves every test; its file splits are made small so that one NDJSON file is
read by several tasks, whose line numbers must still be those of the file.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from fixture_cases import BASES
from typer.testing import CliRunner

from validator import Validator
from validator.cli import app
from validator.report.json_report import render
from validator.report.text import summary_line

STUDIES = 3000
DCM = "http://dicom.nema.org/resources/ontology/DCM"


def _endpoint(address: str) -> dict:
    return {"resourceType": "Endpoint", "id": "wado", "status": "active", "payloadType": [{"text": "DICOM"}],
            "connectionType": {"system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                               "code": "dicom-wado-rs"},
            "address": address}  # fmt: skip


def _study(n: int) -> dict:
    """A study with the defects of its number: every 7th a wrong status, every 11th an unknown
    element, every 13th a UID DICOM forbids, every 5th a WADO-RS endpoint (found in another file)."""
    study = copy.deepcopy(BASES["study"])
    study["id"] = f"s{n}"
    if n % 7 == 0:
        study["status"] = "done"
    if n % 11 == 0:
        study["bogus"] = 1
    if n % 13 == 0:
        study["series"] = [{"uid": "1.2.03.4", "modality": {"system": DCM, "code": "CT"}}]
    if n % 5 == 0:
        study["identifier"] = [{"system": "urn:dicom:uid", "value": "urn:oid:9.8.7"}]
        study["endpoint"] = [{"reference": "Endpoint/wado" if n % 10 else "Endpoint/elsewhere"}]
    return study


def _inputs(folder: Path) -> list[str]:
    """A bulk export with what makes a distributed run hard: a byte order mark, a malformed line,
    bytes that are not UTF-8, blank lines, an empty file, a file of blank lines only, and
    references to an Endpoint of another file that appears twice (the first one read counts)."""
    lines = [json.dumps(_study(n)).encode() for n in range(STUDIES)]
    lines[3] = b'{"resourceType": "ImagingStudy", "id": '
    lines[1500] = b"\xff\xfe not UTF-8"
    lines[2001] = b""
    studies = b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n\n"
    (folder / "a-studies.ndjson").write_bytes(studies)
    wrong, right = (_endpoint(f"https://pacs.example.org/dicom-web/studies/{uid}") for uid in ("1.2.3", "9.8.7"))
    (folder / "b-endpoints.ndjson").write_text(f"{json.dumps(wrong)}\n{json.dumps(right)}\n")
    (folder / "c-empty.ndjson").write_text("")
    (folder / "d-blank.ndjson").write_text("\n\n")
    return [str(folder)]


@pytest.fixture(scope="session")
def spark():
    from validator.spark.session import spark_session

    session = spark_session("local[2]", partitions=2)
    # Small file splits: one NDJSON file of a few MB is read by several tasks.
    session.conf.set("spark.sql.files.maxPartitionBytes", "256k")
    session.conf.set("spark.sql.files.openCostInBytes", "64k")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def test_spark_gives_the_same_findings_summary_and_report_as_validate(spark, tmp_path, monkeypatch) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    paths = _inputs(folder)
    monkeypatch.chdir(tmp_path)
    expected = Validator(profiles=["imr"]).validate_paths(paths)
    out = tmp_path / "out"
    done = CliRunner().invoke(app, ["spark", *paths, "--output", str(out), "--profile", "imr"])
    assert done.exit_code == 1, done.output  # as validate: findings at --fail-on error
    assert done.output.splitlines()[-1] == summary_line(expected)  # validate's last line

    from validator.spark.aggregate import in_run_order

    results = spark.read.parquet(str(out / "results.parquet"))
    assert spark.read.text(str(folder / "a-studies.ndjson")).rdd.getNumPartitions() >= 2  # read by several tasks
    got = list(in_run_order(results))
    assert [replace(r, duration=0.0) for r in got] == [replace(r, duration=0.0) for r in expected.results]
    assert (out / "report.json").read_text(encoding="utf-8") == render(expected)
    # Every other report validate writes, from the same results (JUnit and HTML carry durations,
    # SARIF and HTML the time of the run: compared by what they list).
    from validator.report import REPORTERS

    for name, reporter in REPORTERS.items():
        if reporter.file_name is None:
            continue
        written, wanted = (out / reporter.file_name).read_bytes(), reporter.file_bytes(expected)
        if name in ("json", "operation-outcome", "gitlab"):
            assert written == wanted, name
        elif name == "junit":
            assert re.sub(rb'time="[0-9.]+"', b"", written) == re.sub(rb'time="[0-9.]+"', b"", wanted)
        elif name == "sarif":
            assert json.loads(written)["runs"][0]["results"] == json.loads(wanted)["runs"][0]["results"]
        else:
            assert len(written) > 1000 and b"a-studies.ndjson" in written, name
    summary = json.loads((out / "summary.json").read_text())
    assert {k: summary[k] for k in expected.summary()} == expected.summary()
    # What the comparison must hold, so that agreeing is not agreeing on nothing:
    rules = {i.rule for r in expected.results for i in r.issues}
    assert {"input:byte-order-mark", "input:malformed-json", "input:unreadable", "input:no-resource",
            "dicom:wado-study", "engine:target-not-checked", "dicom:uid-syntax", "json:unknown-property"} <= rules
    first_endpoint = [r for r in expected.results if r.source.endswith("a-studies.ndjson") and r.entry == 6]
    assert any(i.rule == "dicom:wado-study" for i in first_endpoint[0].issues)  # the first Endpoint/wado read


def test_validate_dataframe_takes_lines_as_strings_and_finds_what_validate_finds(spark, tmp_path) -> None:
    from validator.spark import SparkOptions, validate_dataframe
    from validator.spark.rows import row_result

    lines = [json.dumps(_study(n)) for n in (0, 5, 7, 11, 13)] + ["[1, 2]", "", '{"resourceType": "Endpoint"']
    path = tmp_path / "few.ndjson"
    path.write_text("\n".join(lines) + "\n")
    expected = Validator(fhir_version="R4").validate_paths([str(path)])
    df = spark.createDataFrame([(str(path), n, text) for n, text in enumerate(lines, start=1)],
                               "source string, line bigint, value string")  # fmt: skip
    results = validate_dataframe(df, SparkOptions(fhir_version="R4")).orderBy("line").drop("file_index")
    got = [row_result(row) for row in results.collect()]
    assert [replace(r, duration=0.0) for r in got] == [replace(r, duration=0.0) for r in expected.results]
    assert {"input:malformed-json", "input:not-a-resource", "r4:ImagingStudy.status:binding"} <= {
        i.rule for r in got for i in r.issues}


def test_the_spark_command_refuses_a_file_that_is_not_ndjson_naming_it(spark, tmp_path) -> None:
    study = tmp_path / "study.json"
    study.write_text(json.dumps(_study(1)))
    done = CliRunner().invoke(app, ["spark", str(study), "--output", str(tmp_path / "out")])
    assert done.exit_code == 2
    assert "study.json: not an NDJSON file" in done.output
    assert not (tmp_path / "out").exists()
