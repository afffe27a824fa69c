"""Hostile and broken input: every file gets a clear finding, the run ends in bounded time with
exit 1, nothing crashes, hangs or runs; regexes do not backtrack badly; reports never half-written."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest

from validator import Severity, Validator
from validator.report.files import write_atomic

STUDY = {"resourceType": "ImagingStudy", "id": "h", "status": "available", "subject": {"reference": "Patient/p"},
         "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'}}  # fmt: skip


@contextmanager
def deadline(seconds: int):
    """Fail instead of hanging: a catastrophic regex would otherwise stop the suite."""

    def expired(*_args):
        raise TimeoutError(f"took longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _hostile_files(folder: Path) -> dict[str, str]:
    """name -> the rule its one clear finding must carry."""
    files = {
        "truncated.json": (b'{"resourceType": "ImagingStudy", "status": "avail', "input:malformed-json"),
        "junk.json": (bytes(range(256)) * 40, "input:unreadable"),
        "nul.json": (b'{"resourceType": "Imaging\x00Study"}', "input:malformed-json"),
        "deep.json": (b"[" * 200_000 + b"]" * 200_000, "input:too-deep"),
        "huge-string.json": (b'{"resourceType": "ImagingStudy", "description": "' + b"x" * 60_000_000 + b'"}',
                             "input:string-too-long"),
        "big-number.json": (json.dumps({**STUDY, "numberOfSeries": 1}).replace('"numberOfSeries": 1',
                            '"numberOfSeries": 1e400').encode(), "r4:ImagingStudy.numberOfSeries:type"),
        "bad-utf8.json": (b'{"resourceType": "ImagingStudy", "description": "caf\xe9"}', "input:unreadable"),
        "bom.json": (b"\xef\xbb\xbf" + json.dumps(STUDY).encode(), "input:byte-order-mark"),
        "script.json": (json.dumps({**STUDY, "text": {"status": "generated", "div":
                        '<div xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script>x</div>'}}).encode(),
                        "r4:txt-1"),
        "bomb.xml": (b'<?xml version="1.0"?><!DOCTYPE z [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
                     b'<ImagingStudy xmlns="http://hl7.org/fhir"><description value="&b;"/></ImagingStudy>',
                     "input:malformed-xml"),
        "array.json": (b"[1, 2, 3]", "input:not-a-resource"),
        "empty.json": (b"", "input:malformed-json"),
    }  # fmt: skip
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    return {name: rule for name, (_, rule) in files.items()}


def test_a_directory_of_hostile_files_gets_one_clear_finding_per_file(tmp_path) -> None:
    expected = _hostile_files(tmp_path)
    report = tmp_path / "out" / "r.json"
    proc = subprocess.run([sys.executable, "-m", "validator.cli", "validate", str(tmp_path), "--json", str(report),
                           "--quiet"], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    results = json.loads(report.read_text())["results"]
    found = {Path(r["source"]).name: [i["rule"] for i in r["issues"]] for r in results}
    for name, rule in expected.items():
        assert found.get(name) and rule in found[name], f"{name}: {found.get(name)}"
        assert len(found[name]) == 1, f"{name}: more than one finding: {found[name]}"


@pytest.mark.parametrize(
    ("field", "value", "valid"),
    [
        ("description", " " * 1_000_000 + "x", True),
        ("implicitRules", "a" * 1_000_000 + " ", False),
        ("language", "a " * 500_000 + " ", False),
        ("started", "2020-01-01T10:00:00" + "0" * 1_000_000, False),
        ("id", "1." * 500_000, False),
    ],
)
def test_long_adversarial_strings_are_checked_in_linear_time(field, value, valid) -> None:
    with deadline(20):
        result = Validator().validate_resource({**STUDY, field: value})
    assert (result.issues == ()) is valid, f"{field}: {[i.rule for i in result.issues]}"


def test_a_base64_value_that_defeats_naive_regexes_is_checked_quickly() -> None:
    study = {**STUDY, "extension": [{"url": "http://example.org/a", "valueBase64Binary": "AAAA " * 200_000 + "A"}]}
    with deadline(20):
        result = Validator().validate_resource(study)
    assert [i.rule for i in result.issues] == ["r4:base64Binary:format"]


def test_parallel_runs_writing_reports_do_not_interfere(tmp_path) -> None:
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for k in range(20):
                write_atomic(tmp_path / f"r{n}.json", json.dumps({"run": n, "k": k, "pad": "x" * 100_000}).encode())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r0.json", "r1.json", "r2.json", "r3.json"]
    assert all(json.loads((tmp_path / f"r{n}.json").read_text())["run"] == n for n in range(4))


def test_an_interrupted_write_leaves_neither_a_half_file_nor_a_temporary_one(tmp_path, monkeypatch) -> None:
    target = tmp_path / "r.json"
    target.write_text("previous report")

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("validator.report.files.os.replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, b"new report")
    assert target.read_text() == "previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_a_study_with_300000_instances_is_still_validated(tmp_path) -> None:
    uid = "1.2.826.0.1.3680043.10.1001.9"
    sop = {"system": "urn:ietf:rfc:3986", "code": "urn:oid:1.2.840.10008.5.1.4.1.1.2"}
    study = {**STUDY, "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{uid}"}],
             "series": [{"uid": f"{uid}.{n}", "modality": {"system": "http://dicom.nema.org/resources/ontology/DCM",
                                                            "code": "CT"},
                         "instance": [{"uid": f"{uid}.{n}.{k}", "sopClass": sop} for k in range(1, 30001)]}
                        for n in range(1, 11)]}  # fmt: skip
    path = tmp_path / "big.json"
    path.write_text(json.dumps(study))
    (result,) = Validator().validate_file(path)
    assert result.issues == ()
    broken = json.loads(path.read_text())
    del broken["series"][9]["instance"][29999]["uid"]
    path.write_text(json.dumps(broken))
    (result,) = Validator().validate_file(path)
    assert [i.expression for i in result.issues] == ["ImagingStudy.series[9].instance[29999].uid"]


@pytest.mark.parametrize(
    ("version", "patch"),
    [
        ("R4", {"contained": -1, "subject": {"reference": "#p"}}),
        ("R4", {"contained": {"resourceType": "Patient", "id": "p"}, "subject": {"reference": "#p"}}),
        ("R5", {"modality": {"coding": 7}, "series": 3}),
        ("R6", {"numberOfInstances": 2, "series": {"uid": "1.2", "numberOfInstances": "2"}}),
        ("R4", {"contained": [{"resourceType": "Patient", "id": {}}], "subject": {"reference": "#p"}}),
        ("R4", {"contained": [{"resourceType": ["Patient"], "id": "p"}], "subject": {"reference": "#p"}}),
    ],
    ids=[
        "contained-number",
        "contained-object",
        "coding-number",
        "series-object",
        "contained-id-object",
        "contained-type-array",
    ],
)
def test_a_property_of_the_wrong_json_shape_is_a_finding_not_a_crash(version, patch) -> None:
    """Invariants read malformed payloads too (the type rules report the shape)."""
    study = {"resourceType": "ImagingStudy", "status": "available", "subject": {"reference": "Patient/p"}, **patch}
    result = Validator(fhir_version=version).validate_resource(study)
    assert any(i.severity >= Severity.ERROR for i in result.issues), [i.rule for i in result.issues]


def test_a_meta_profile_that_is_not_an_array_does_not_stop_version_detection() -> None:
    study = {"resourceType": "ImagingStudy", "status": "available", "subject": {"reference": "Patient/p"},
             "meta": {"profile": Decimal("1.5")}}  # fmt: skip
    result = Validator().validate_resource(study)
    assert result.fhir_version == "4.0.1"
    assert any(i.rule == "r4:Meta.profile:type" or "array" in i.rule for i in result.issues), result.issues
