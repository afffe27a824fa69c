"""Inputs that would lose a run (hang it, exhaust its memory, hide files from it, or change what a
payload means) each get a clear finding, and every other input of the run is still validated.

Hostile files are generated here, small; FIFOs and sockets are made only inside tmp_path. Tests
run as root, where chmod cannot make a folder unreadable, so an unreadable folder is simulated by
making os.scandir refuse that one path. Linear cost is shown by counting work, never by timing.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
import yaml

from validator import Validator
from validator.compile.packs import MAX_YAML_VALUES, expanded_values, strict_loader
from validator.fhir.jsontext import repeated
from validator.fhir.positions import PositionIndex
from validator.load import sources

STUDY = {"resourceType": "ImagingStudy", "id": "ok", "status": "available", "subject": {"reference": "Patient/p"},
         "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'}}  # fmt: skip
BOMB = "pack: bomb\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)


def _cli(*args: str) -> subprocess.CompletedProcess:
    """The command line of this checkout (run from its root, so `-m validator` imports it)."""
    env = {**os.environ, "IMAGING_VALIDATOR_CACHE": "off"}
    return subprocess.run([sys.executable, "-m", "validator.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parent.parent, env=env)  # fmt: skip


def _good(folder: Path, name: str = "good.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(STUDY))
    return path


def _by_file(run) -> dict[str, list[str]]:
    return {Path(r.source).name: [i.rule for i in r.issues] for r in run.results}


def test_fifos_and_sockets_are_reported_without_being_opened(tmp_path) -> None:
    os.mkfifo(tmp_path / "pipe.json")  # no writer: opening it to read would block forever
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "socket.json"))
    try:
        _good(tmp_path)
        proc = _cli("validate", str(tmp_path), str(tmp_path / "pipe.json"), "--json", str(tmp_path / "r.json"))
    finally:
        server.close()
    assert proc.returncode == 1, proc.stderr
    results = {Path(r["source"]).name: r for r in json.loads((tmp_path / "r.json").read_text())["results"]}
    assert sorted(results) == ["good.json", "pipe.json", "socket.json"]
    assert results["good.json"]["status"] == "pass"
    assert "named pipe (FIFO)" in results["pipe.json"]["issues"][0]["message"]
    assert "socket" in results["socket.json"]["issues"][0]["message"]
    assert {i["rule"] for r in ("pipe.json", "socket.json") for i in results[r]["issues"]} == {"input:unreadable"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.json", "pipe.json", "r.json", "socket.json"]


def test_an_unreadable_sub_folder_is_a_finding_not_a_silent_pass(tmp_path, monkeypatch) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    _good(locked, "hidden.json")
    _good(tmp_path)
    real = os.scandir

    def scandir(path=".") -> object:
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(sources.os, "scandir", scandir)
    run = Validator(fhir_version="R4").validate_paths([str(tmp_path)])
    assert run.failed
    found = _by_file(run)
    assert found == {"good.json": [], "locked": ["input:unreadable"]}
    message = next(r for r in run.results if r.source.endswith("locked")).issues[0].message
    assert "Permission denied" in message and "not validated" in message
    monkeypatch.undo()
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["good.json", "locked",
                                                                                 "locked/hidden.json"]  # fmt: skip


def test_a_symlink_loop_is_a_finding_and_a_linked_folder_loop_is_not_walked(tmp_path) -> None:
    (tmp_path / "loop.json").symlink_to(tmp_path / "loop.json")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "back").symlink_to(tmp_path)  # a folder link back up: never entered
    _good(tmp_path / "sub")
    run = Validator(fhir_version="R4").validate_paths([str(tmp_path)])
    assert _by_file(run) == {"good.json": [], "loop.json": ["input:unreadable"]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loop.json", "sub"]
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["back", "good.json"]


def test_a_pack_that_is_an_alias_bomb_is_a_usage_error_naming_it(tmp_path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB)
    assert len(BOMB) < 1024
    proc = _cli("validate", str(_good(tmp_path)), "--profile", str(bomb))
    assert proc.returncode == 2
    assert str(bomb) in proc.stderr and "alias" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.yaml", "good.json"]


def test_a_suite_that_is_an_alias_bomb_is_a_suite_error_naming_it(tmp_path) -> None:
    suite = tmp_path / "bomb.fhir-suite.yaml"
    suite.write_text(BOMB.replace("pack: bomb", "suite: bomb\ncases: []"))
    good = tmp_path / "good.fhir-suite.yaml"
    _good(tmp_path)
    good.write_text("suite: fine\ncases:\n  - {title: ok, payloads: [good.json], expect: valid}\n")
    proc = _cli("test", str(suite))
    assert proc.returncode == 2
    assert str(suite) in proc.stderr and "alias" in proc.stderr
    assert _cli("test", str(good)).returncode == 0  # the loader still reads ordinary suites
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.fhir-suite.yaml", "good.fhir-suite.yaml", "good.json"]


def test_expanded_values_are_counted_once_per_node_and_cycles_refused() -> None:
    loader = strict_loader()
    node = yaml.compose(BOMB, Loader=loader)
    assert expanded_values(node, MAX_YAML_VALUES) is None  # 9^9 values, found without expanding them
    assert expanded_values(yaml.compose("a: &x [1, 2]\nb: *x\n", Loader=loader), 100) == 9
    with pytest.raises(yaml.YAMLError, match="alias"):
        yaml.load("a: &x [1, *x]\n", Loader=loader)


def test_xml_cannot_change_the_resource_type_and_other_files_are_still_validated(tmp_path) -> None:
    (tmp_path / "a.xml").write_text(
        '<ImagingStudy xmlns="http://hl7.org/fhir"><resourceType value="Patient"/><status value="available"/>'
        '<subject><reference value="Patient/p"/></subject><numberOfSeries value="007"/></ImagingStudy>'
    )
    _good(tmp_path)
    run = Validator(fhir_version="R4").validate_paths([str(tmp_path)])
    (xml,) = [r for r in run.results if r.source.endswith(".xml")]
    assert xml.resource_type == "ImagingStudy"
    rules = [i.rule for i in xml.issues]
    assert "xml:unknown-element" in rules and "r4:ImagingStudy.numberOfSeries:type" in rules
    assert _by_file(run)["good.json"] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.xml", "good.json"]


def test_a_nan_decimal_is_a_type_error_not_a_crash() -> None:
    from decimal import Decimal

    study = {**STUDY, "extension": [{"url": "http://example.org/a", "valueDecimal": Decimal("NaN")}]}
    result = Validator(fhir_version="R4").validate_resource(study)
    assert [i.rule for i in result.issues] == ["r4:Extension.value[x]:type"]


def test_positions_cost_a_few_tokens_and_no_memory_per_string_character() -> None:
    body = "x" * 2_000_000 + '\\"' * 200_000  # a long string, with escapes in it
    text = json.dumps({**STUDY, "status": "bad"})[:-1] + f', "description": "{body}"}}'
    for targeted in (0, 1):  # the full index, and the walk along the pointer
        tracemalloc.start()
        try:
            index = PositionIndex(text, targeted_lookups=targeted)
            assert index.locate(("description",)) is not None
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert index.tokens + index.walk.steps < 60  # per token, not per character
        assert peak < len(text) // 4  # the old tokenizer's regex kept ~136 bytes per character


def test_repeated_keys_are_found_with_one_comparison_per_key() -> None:
    comparisons = 0

    class Key(str):
        __hash__ = str.__hash__

        def __eq__(self, other: object) -> bool:
            nonlocal comparisons
            comparisons += 1
            return str.__eq__(self, other)

    keys = [Key(f"k{n}") for n in range(20_000)]
    assert repeated(keys + keys) == tuple(keys)
    assert comparisons <= 2 * len(keys)  # a list lookup per key made this 200 million


def test_placing_a_finding_on_each_of_many_members_reads_each_key_a_bounded_number_of_times() -> None:
    text = json.dumps({f"k{n}": n for n in range(5_000)})
    index = PositionIndex(text, targeted_lookups=0)  # the walks before the index read keys too
    reads = 0
    read = index._key

    def counted(value: int) -> str:
        nonlocal reads
        reads += 1
        return read(value)

    index._key = counted  # type: ignore[method-assign]
    for n in range(5_000):
        assert index.locate((f"k{n}",)) is not None
    assert reads <= 5_000  # a name table on first lookup, not a scan per finding
