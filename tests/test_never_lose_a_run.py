"""Never lose a run: whatever one input does to the validator, every other input is validated and
reported, every report is written complete and well-formed, the exit code says what happened
(3: the validator itself failed), and nothing is left behind. One test per kind of harm."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from fixture_cases import BASES
from typer.testing import CliRunner

from validator import Validator
from validator.cli import app
from validator.evaluate.dicom.study import StudyCheck
from validator.fhir.positions import PositionIndex
from validator.load import sources
from validator.run.pipeline import Pipeline

ROOT = Path(__file__).resolve().parent.parent
REPORTS = {"report.json", "operation-outcome.json", "junit.xml", "report.html", "report.sarif",
           "gl-code-quality-report.json"}


def _study(rid: str, **extra: object) -> dict:
    return {**copy.deepcopy(BASES["study"]), "id": rid, **extra}


def _write(folder: Path, name: str | bytes, doc: dict | str) -> None:
    text = doc if isinstance(doc, str) else json.dumps(doc)
    path = os.path.join(os.fsencode(folder), name if isinstance(name, bytes) else name.encode())
    with open(path, "wb") as handle:
        handle.write(text.encode("utf-8", "surrogatepass") if isinstance(doc, dict) else text.encode())


def _cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "validator.cli", *args], cwd=ROOT, capture_output=True, timeout=300)


def _reports(folder: Path) -> dict:
    """Every report of --reports-dir, parsed: a report that is not well-formed fails here."""
    assert {p.name for p in folder.iterdir()} == REPORTS, "a report is missing, or something else is left"
    for name in ("report.json", "operation-outcome.json", "report.sarif"):
        json.loads((folder / name).read_bytes().decode("utf-8"))
    ET.fromstring((folder / "junit.xml").read_bytes())
    (folder / "report.html").read_bytes().decode("utf-8")
    return json.loads((folder / "report.json").read_bytes().decode("utf-8"))


def _by_source(report: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in report["results"]:
        out.setdefault(os.path.basename(r["source"]), []).append(r)
    return out


def _rules(results: list[dict]) -> set[str]:
    return {i["rule"] for r in results for i in r["issues"]}


def _nothing_left(folder: Path) -> None:
    left = [p for p in folder.rglob("*") if p.name.endswith(".tmp")]
    assert not left, f"temporary files left behind: {left}"


def test_an_input_that_breaks_the_validator_is_a_fatal_finding_and_every_other_input_is_still_reported(
    tmp_path, monkeypatch
) -> None:
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    _write(inputs, "a-good.json", _study("good"))
    _write(inputs, "b-boom.json", _study("boom"))
    _write(inputs, "c-nan.xml", '<ImagingStudy xmlns="http://hl7.org/fhir"><id value="nan"/><extension url="http://e">'
           '<valueDecimal value="NaN"/></extension><status value="available"/><subject><reference value="Patient/p"/>'
           '</subject><numberOfSeries value="Infinity"/></ImagingStudy>')  # fmt: skip
    _write(inputs, "d-surrogate.json", _study("a\ud800b", status="x\ud800y"))
    _write(inputs, b"e-not-utf8-\xff.json", _study("latin"))
    (inputs / "locked").mkdir()
    _write(inputs / "locked", "f-inside.json", _study("hidden"))

    # A defect injected into one check, for one study.
    real_run = StudyCheck.run

    def broken_run(self, study: dict) -> None:
        if study.get("id") == "boom":
            raise RuntimeError("injected defect")
        real_run(self, study)

    monkeypatch.setattr(StudyCheck, "run", broken_run)
    # A folder that cannot be listed (the tests run as root, whom permissions do not stop).
    locked = str(inputs / "locked")
    real_scandir = os.scandir

    def scandir(path=".") -> object:
        if str(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(sources.os, "scandir", scandir)

    result = CliRunner().invoke(app, ["validate", str(inputs), "--reports-dir", str(out), "--debug"])
    assert result.exit_code == 3, result.output
    found = _by_source(_reports(out))
    assert len(found) == 6, sorted(found)
    assert found["a-good.json"][0]["status"] == "pass"
    boom = [i for i in found["b-boom.json"][0]["issues"] if i["rule"] == "engine:internal-error"]
    assert boom[0]["severity"] == "fatal" and "RuntimeError: injected defect" in boom[0]["message"]
    assert "Traceback" in boom[0]["message"]  # --debug
    assert _rules(found["c-nan.xml"]) >= {"r4:Extension.value[x]:type", "r4:ImagingStudy.numberOfSeries:type"}
    assert "r4:ImagingStudy.status:binding" in _rules(found["d-surrogate.json"])
    assert found["e-not-utf8-\udcff.json"][0]["status"] == "pass"
    hidden = found["locked"][0]["issues"]
    assert [i["rule"] for i in hidden] == ["input:unreadable"] and "Permission denied" in hidden[0]["message"]
    assert not any("engine:internal-error" in _rules(v) for k, v in found.items() if k != "b-boom.json")
    assert "RuntimeError: injected defect" in result.output
    _nothing_left(tmp_path)

    # Without --debug the message is short: the type and the exception's message, no traceback.
    message = Validator().validate_file(inputs / "b-boom.json")[0].issues[0].message
    assert "RuntimeError: injected defect" in message and "Traceback" not in message


def test_report_paths_are_checked_before_validating_and_non_regular_files_are_written_through(tmp_path) -> None:
    good, out = tmp_path / "good.json", tmp_path / "out"
    _write(tmp_path, "good.json", _study("good"))
    original = good.read_bytes()
    (tmp_path / "file").write_text("not a folder")
    refused = {
        ("--json", str(good)): "one of the inputs",
        ("--json", str(tmp_path / "file" / "r.json")): "not a directory",
        ("--json", str(tmp_path)): "is a directory",
    }
    for (option, path), why in refused.items():
        run = _cli("validate", str(good), option, path)
        assert run.returncode == 2 and f"{option} {path}" in run.stderr.decode() and why in run.stderr.decode().lower()
        assert b"ImagingStudy/good" not in run.stdout  # refused before validating
    twice = _cli("validate", str(good), "--json", str(out / "r"), "--sarif", str(out / "." / "r"))
    assert twice.returncode == 2 and "--sarif" in twice.stderr.decode() and "--json" in twice.stderr.decode()
    assert good.read_bytes() == original and not out.exists()

    # - is standard output (the summary then goes to stderr).
    to_stdout = _cli("validate", str(good), "--json", "-")
    assert to_stdout.returncode == 0 and json.loads(to_stdout.stdout)["summary"]["resources"] == 1
    assert b"ImagingStudy/good" in to_stdout.stderr

    # A FIFO, directly and through a symlink, is written into, never replaced; a symlink to a
    # regular file is followed: the target is replaced, the link kept.
    fifo, fifo2, fifo_link = tmp_path / "fifo", tmp_path / "fifo2", tmp_path / "fifo-link"
    target, link = tmp_path / "target.xml", tmp_path / "l.xml"
    os.mkfifo(fifo)
    os.mkfifo(fifo2)
    fifo_link.symlink_to(fifo2)
    target.write_text("old")
    link.symlink_to(target)
    received: dict[str, bytes] = {}

    def reader(path: Path) -> None:
        with open(path, "rb") as handle:
            received[path.name] = handle.read()

    threads = [threading.Thread(target=reader, args=(p,), daemon=True) for p in (fifo, fifo2)]
    for thread in threads:
        thread.start()
    run = _cli("validate", str(good), "--json", str(fifo), "--sarif", str(fifo_link), "--junit", str(link))
    for thread in threads:
        thread.join(60)
    assert run.returncode == 0, run.stderr
    assert sorted(json.loads(received["fifo"])) == ["results", "summary"]
    assert sorted(json.loads(received["fifo2"])) == ["$schema", "runs", "version"]
    assert fifo.is_fifo() and fifo2.is_fifo() and fifo_link.is_symlink() and link.is_symlink()
    assert ET.fromstring(target.read_bytes()).get("tests") == "1"
    _nothing_left(tmp_path)


def test_max_issues_lists_the_first_findings_and_counts_the_rest_without_locating_them(tmp_path, monkeypatch) -> None:
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    _write(inputs, "flood.json", _study("flood", **{f"bogus{n}": n for n in range(50)}))
    _write(inputs, "other.json", _study("other", status="done"))
    located: list[tuple] = []
    real_locate = PositionIndex.locate

    def locate(self, pointer, duplicate=False):
        located.append(pointer)
        return real_locate(self, pointer, duplicate)

    monkeypatch.setattr(PositionIndex, "locate", locate)
    result = CliRunner().invoke(app, ["validate", str(inputs), "--max-issues", "5", "--reports-dir", str(out)])
    assert result.exit_code == 1, result.output
    found = _by_source(_reports(out))
    flood = found["flood.json"][0]["issues"]
    assert [i["rule"] for i in flood].count("json:unknown-property") == 5
    more = [i for i in flood if i["rule"] == "engine:too-many-issues"]
    assert more[0]["message"] == "45 more findings not shown (--max-issues)" and more[0]["severity"] == "information"
    assert len(flood) == 6 and len(located) == 6 + 1  # the 5 kept, the count, other.json's one error
    assert "r4:ImagingStudy.status:binding" in _rules(found["other.json"])
    _nothing_left(tmp_path)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except FileNotFoundError:  # the process has ended (and been reaped)
        return []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_dead_worker_costs_only_its_files_and_a_signal_stops_every_worker(tmp_path, monkeypatch) -> None:
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    for n in range(8):
        _write(inputs, f"s{n}.json", _study(f"s{n}", status="done" if n == 3 else "available"))
    _write(inputs, "s4-die.json", _study("die"))
    real_validate = Pipeline.validate

    def validate(self, item, index=0):
        if isinstance(item.resource, dict) and item.resource.get("id") == "die":
            os._exit(1)  # a worker killed mid-unit (a crash in C code, the OOM killer)
        return real_validate(self, item, index)

    monkeypatch.setattr(Pipeline, "validate", validate)
    result = CliRunner().invoke(app, ["validate", str(inputs), "--jobs", "2", "--reports-dir", str(out)])
    assert result.exit_code == 3, result.output
    report = _reports(out)
    assert [os.path.basename(r["source"]) for r in report["results"]] == sorted(p.name for p in inputs.iterdir())
    for r in report["results"]:
        rules = {i["rule"] for i in r["issues"]}
        if r["source"].endswith("s4-die.json"):
            assert rules == {"engine:internal-error"} and "worker process" in r["issues"][0]["message"]
        else:
            assert r["status"] == ("fail" if r["id"] == "s3" else "pass") and "engine:internal-error" not in rules
    monkeypatch.undo()

    # SIGTERM and SIGINT of the main process: every worker ends, no temporary file, 143 / 130;
    # killed outright (SIGKILL, the OOM killer), it cannot stop them: the kernel does, on Linux.
    bulk = tmp_path / "bulk"
    bulk.mkdir()
    line = json.dumps(_study("bulk"))
    lines = 40_000
    (bulk / "bulk.ndjson").write_text("\n".join([line] * lines))
    for signum, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGKILL, -9)):
        for _ in range(4):
            process = subprocess.Popen([sys.executable, "-m", "validator.cli", "validate", str(bulk), "--jobs", "2",
                                        "--reports-dir", str(tmp_path / "bulk-out")], cwd=ROOT,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            deadline = time.monotonic() + 120
            workers: list[int] = []
            while len(workers) < 2 and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
                workers = _children(process.pid)
            if process.poll() is None:
                break
            # The run was over before it could be signalled (a fast or a busy host, where this
            # test's polling lags): the same with a longer input, so the signal meets a run.
            lines *= 4
            (bulk / "bulk.ndjson").write_text("\n".join([line] * lines))
        assert process.poll() is None, "every run ended before it could be signalled"
        assert len(workers) >= 2, "the workers did not start"
        process.send_signal(signum)
        assert process.wait(60) == code
        deadline = time.monotonic() + 10
        while [w for w in workers if _alive(w)] and time.monotonic() < deadline:
            time.sleep(0.1)
        outlived = [w for w in workers if _alive(w)]
        for w in outlived:  # the test's own processes: not left running when it fails
            os.kill(w, signal.SIGKILL)
        assert not outlived, f"a worker outlived the run ({signum!r})"
    _nothing_left(tmp_path)


def test_payload_text_and_file_names_cannot_act_on_the_terminal_or_break_a_report(tmp_path) -> None:
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    _write(inputs, "a-evil.json", _study("x\x1b[2J\x07", status="\x1b]0;pwned\x07\r\n\u202e\x85\ud800"))
    _write(inputs, b"b-name\x1b[31m\n\xff.json", _study("named"))
    _write(inputs, "c-empty.json", "")
    _write(inputs, "d-number.json", json.dumps(_study("n"))[:-1] + ', "numberOfSeries": ' + "9" * 5000 + "}")
    run = _cli("validate", str(inputs), "--reports-dir", str(out))
    assert run.returncode == 1, run.stderr
    text = run.stdout.decode("utf-8")
    assert not any(c in text for c in "\x1b\x07\r\x85\u202e"), text
    assert "\\x1b[2J\\x07" in text and "\\x1b]0;pwned\\x07\\r\\n\\u202e\\x85\\ud800" in text
    assert "b-name\\x1b[31m\\n\\xff.json" in text
    assert "the input is empty" in text and "a number of 5000 digits is too large to read" in text
    assert "int_max_str_digits" not in text
    assert "    FATAL   -        (input)" in text  # a finding without a position shows none
    found = _by_source(_reports(out))
    assert len(found) == 4
    evil = found["a-evil.json"][0]
    assert evil["id"] == "x\x1b[2J\x07"  # JSON carries the exact value, escaped by JSON itself
    junit = ET.fromstring((out / "junit.xml").read_bytes())
    assert {c.get("name") for c in junit.iter("testcase")} >= {"ImagingStudy/x\\x1b[2J\\x07"}
    assert "<script" not in (out / "report.html").read_text(encoding="utf-8").split("<script>")[0]
    _nothing_left(tmp_path)


def test_the_pytest_plugin_collects_xml_fails_unreadable_payloads_and_errors_on_validator_defects(
    pytester: pytest.Pytester,
) -> None:
    folder = pytester.path / "payloads"
    folder.mkdir()
    _write(folder, "good.json", _study("good"))
    _write(folder, "good.xml", '<ImagingStudy xmlns="http://hl7.org/fhir"><id value="x"/><text>'
           '<status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml">CT</div></text>'
           '<status value="available"/><subject><reference value="Patient/p"/></subject></ImagingStudy>')  # fmt: skip
    _write(folder, "broken.xml", "<ImagingStudy xmlns='http://hl7.org/fhir'><status value=")
    _write(folder, "boom.json", _study("boom"))
    pytester.makeini("[pytest]\nfhir_payloads = payloads/*.json payloads/*.xml\n")
    pytester.makeconftest(
        "from validator.evaluate.dicom.study import StudyCheck\n"
        "real = StudyCheck.run\n"
        "def run(self, study):\n"
        "    if study.get('id') == 'boom':\n"
        "        raise RuntimeError('injected defect')\n"
        "    real(self, study)\n"
        "StudyCheck.run = run\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1, errors=1)
    output = result.stdout.str()
    assert "input:malformed-xml" in output
    assert "the validator failed" in output and "RuntimeError: injected defect" in output
