"""jiter parses inputs in one pass (repeated keys refused, decimals exact), and whatever it refuses
is read by the json path as before: results are the same with jiter and without it, for every
fixture, example and hostile text, and jiter never accepts a text the json path reads otherwise."""

from __future__ import annotations

import gc
import io
import json
import subprocess
import sys
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import SHARED
from fixture_cases import BASES, dicom_folder, load_cases, write_case
from hostile_payloads import HOSTILE
from hypothesis import given, settings
from hypothesis import strategies as st

from validator import Validator
from validator.fhir import jsontext
from validator.fhir.jsontext import REFUSED, DupDict, JsonSyntaxError, parse, parse_checked, parse_exact
from validator.limits import Limits
from validator.load import sources
from validator.load.sources import load_source

ROOT = Path(__file__).resolve().parent.parent
STUDY = json.dumps(BASES["study"])


def _study_with(fragment: str) -> str:
    """The fixture study with more members written as raw JSON text (values json.dumps cannot write)."""
    return STUDY[:-1] + ", " + fragment + "}"


def _nested(depth: int) -> str:
    return _study_with('"extension": ' + "[" * depth + "]" * depth)


# Texts at the edges of what either parser reads: numbers, strings, nesting, encodings, shapes.
EDGE_TEXTS: dict[str, bytes] = {
    name: text if isinstance(text, bytes) else text.encode("utf-8")
    for name, text in {
        "decimals": _study_with('"extension": [{"url": "http://e.org/a", "valueDecimal": 1.0}, {"url": "http://e.org/b",'
                                ' "valueDecimal": 1e2}, {"url": "http://e.org/c", "valueDecimal": -0.0}, {"url": '
                                '"http://e.org/d", "valueDecimal": 0.10}, {"url": "http://e.org/e", "valueDecimal": '
                                '1E400}, {"url": "http://e.org/f", "valueDecimal": 1.5e-999999999}]'),
        "integer-written-as-decimal": _study_with('"numberOfSeries": 1.0'),
        "integer-with-exponent": _study_with('"numberOfSeries": 1e0'),
        "negative-zero": _study_with('"numberOfSeries": -0'),
        "integer-too-large-for-int32": _study_with('"numberOfSeries": 100000000000000000000000'),
        "integer-of-4300-digits": _study_with('"numberOfSeries": ' + "9" * 4300),
        "integer-beyond-pythons-limit": _study_with('"numberOfSeries": ' + "9" * 4301),
        "decimal-of-5000-digits": _study_with('"extension": [{"url": "http://e.org/a", "valueDecimal": 0.'
                                              + "0" * 5000 + "1}]"),
        "exponent-beyond-decimal": _study_with('"numberOfSeries": 1e-9999999999999999999'),
        "nan": _study_with('"numberOfSeries": NaN'),
        "infinity": _study_with('"numberOfSeries": Infinity'),
        "minus-infinity": _study_with('"numberOfSeries": -Infinity'),
        "lone-high-surrogate": _study_with('"description": "a\\ud800b"'),
        "lone-low-surrogate": _study_with('"description": "\\udc00"'),
        "surrogate-pair-escaped": _study_with('"description": "\\ud83d\\ude00"'),
        "non-bmp-raw": _study_with('"description": "\U0001f600 \U0001d11e"'),
        "escaped-nul": _study_with('"description": "a\\u0000b"'),
        "raw-control-character": _study_with('"description": "a\tb"'),
        "bom": b"\xef\xbb\xbf" + STUDY.encode(),
        "bom-and-duplicate": b"\xef\xbb\xbf" + _study_with('"status": "available"').encode(),
        "invalid-utf8": _study_with('"description": "caf\xe9"').encode("latin-1"),
        "encoded-surrogate": _study_with('"description": "').encode() + b"\xed\xa0\x80" + b'"}',
        "nested-150": _nested(150),
        "nested-250": _nested(250),
        "nested-300": _nested(300),
        "nested-1000": _nested(1000),
        "nested-100000": _nested(100_000),
        "empty": "",
        "whitespace": " \t\r\n ",
        "array": "[1, 2, 3]",
        "string": '"ImagingStudy"',
        "number": "1.0",
        "null": "null",
        "duplicate-top-level": _study_with('"status": "available"'),
        "duplicate-nested": STUDY.replace('"uid": "1.2.3.4.1",', '"uid": "1.2.3.4.1", "uid": "1.2.3.4.1",', 1),
        "duplicate-escaped": _study_with('"\\u0073tatus": "cancelled"'),
        "duplicate-empty-key": _study_with('"": 1, "": 2'),
        "spaced-keys": STUDY.replace('": ', '" :\t'),
        "key-lookalike-in-string": _study_with('"description": "he said \\"status\\": no"'),
        "trailing-data": STUDY + " x",
        "two-documents": STUDY + STUDY,
        "trailing-comma": _study_with('"description": "x",'),
        "truncated": STUDY[:50],
        "single-quotes": "{'resourceType': 'ImagingStudy'}",
        "bundle": json.dumps({"resourceType": "Bundle", "type": "collection",
                              "entry": [{"fullUrl": "urn:uuid:1", "resource": BASES["study"]},
                                        {"resource": [1]}, {"fullUrl": "urn:uuid:3"}]}),
        "bundle-with-duplicate": json.dumps({"resourceType": "Bundle", "type": "collection",
                                             "entry": [{"resource": BASES["study"]}]}).replace(
            '"status": "available"', '"status": "available", "status": "registered"'),
        "bundle-written-with-escapes": STUDY.replace('"ImagingStudy"', '"Bundl\\u0065"'),
        "hostile": json.dumps(HOSTILE),
    }.items()
}


def _same(a: object, b: object) -> bool:
    """Equal and of the same types all the way down: 1.0 == 1 and Decimal('1.0') == Decimal('1')
    in Python, but a FHIR integer rule tells them apart, and DupDict is not a plain dict."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)  # type: ignore[index]
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))  # type: ignore[arg-type]
    if isinstance(a, Decimal):
        return a.as_tuple() == b.as_tuple()  # type: ignore[union-attr]
    return a == b


def _precise(text: str) -> object:
    """What the json path reads (or the exception it raises, by type and message)."""
    try:
        return parse(text)
    except JsonSyntaxError as exc:
        return ("JsonSyntaxError", exc.message, exc.line, exc.column)
    except Exception as exc:  # e.g. decimal.InvalidOperation, which the loader does not catch today
        return (type(exc).__name__, str(exc))


def _has_dupdict(node: object) -> bool:
    if isinstance(node, dict):
        return isinstance(node, DupDict) or any(_has_dupdict(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_dupdict(v) for v in node)
    return False


def _agrees(data: bytes) -> None:
    """jiter refuses the text, or reads exactly what the json path reads, with no repeated key."""
    tree = parse_exact(data)
    if tree is REFUSED:
        return
    text = data.decode("utf-8")  # jiter is only given bytes that decode (the loader checks first)
    expected = _precise(text)
    assert not _has_dupdict(expected), data[:200]
    assert _same(tree, expected), (data[:200], tree, expected)


def test_jiter_reads_a_resource_with_its_decimals_exact_and_its_integers_as_integers() -> None:
    tree = parse_exact(EDGE_TEXTS["decimals"])
    assert tree is not REFUSED and type(tree) is dict
    values = [e["valueDecimal"] for e in tree["extension"]]  # type: ignore[index]
    assert [str(v) for v in values] == ["1.0", "1E+2", "-0.0", "0.10", "1E+400", "1.5E-999999999"]
    assert all(type(v) is Decimal for v in values)
    assert type(parse_exact(EDGE_TEXTS["integer-written-as-decimal"])["numberOfSeries"]) is Decimal  # type: ignore[index]
    assert parse_exact(EDGE_TEXTS["integer-too-large-for-int32"])["numberOfSeries"] == 10**23  # type: ignore[index]


@pytest.mark.parametrize("name", [
    "duplicate-top-level", "duplicate-nested", "duplicate-escaped", "duplicate-empty-key", "bundle-with-duplicate",
    "lone-high-surrogate", "lone-low-surrogate", "nested-300", "nested-100000", "nan", "infinity", "minus-infinity",
    "integer-beyond-pythons-limit", "exponent-beyond-decimal", "empty", "whitespace", "trailing-data", "two-documents",
    "trailing-comma", "truncated", "single-quotes", "raw-control-character",
])  # fmt: skip
def test_jiter_refuses_what_the_json_path_must_report_or_read_its_own_way(name: str) -> None:
    assert parse_exact(EDGE_TEXTS[name]) is REFUSED


@pytest.mark.parametrize("name", sorted(n for n in EDGE_TEXTS if n not in ("invalid-utf8", "encoded-surrogate")))
def test_a_text_jiter_reads_is_read_the_same_by_the_json_path(name: str) -> None:
    data = EDGE_TEXTS[name]
    _agrees(data[3:] if data.startswith(b"\xef\xbb\xbf") else data)


def test_the_fallback_can_be_forced(monkeypatch) -> None:
    assert parse_exact(b"{}") == {}
    monkeypatch.setattr(jsontext, "JITER", False)
    assert parse_exact(b"{}") is REFUSED


@pytest.mark.parametrize("setup", ["import os; os.environ['IMAGING_VALIDATOR_NO_JITER'] = '1'",
                                   "sys.modules['jiter'] = None"])  # fmt: skip
def test_without_jiter_inputs_are_read_by_the_json_path(setup: str, tmp_path) -> None:
    """Switched off by the environment, or not installed: the same findings, by the json path."""
    path = tmp_path / "s.json"
    path.write_bytes(EDGE_TEXTS["integer-written-as-decimal"])
    script = (f"import sys; {setup}\n"
              "from validator import Validator\nfrom validator.fhir import jsontext\n"
              f"r = Validator(fhir_version='R4').validate_paths([{str(path)!r}]).results\n"
              "print(jsontext.JITER, [i.rule for x in r for i in x.issues])")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.stdout.split(None, 1) == ["False", "['r4:ImagingStudy.numberOfSeries:type']\n"], out.stderr[-2000:]


def test_an_input_jiter_reads_needs_no_key_count_and_one_it_refuses_is_read_as_before(tmp_path) -> None:
    path = tmp_path / "s.ndjson"
    path.write_bytes(STUDY.encode() + b"\n" + EDGE_TEXTS["duplicate-top-level"] + b"\n")
    exact, refused = load_source(str(path))
    assert exact.plain_text is None and type(exact.resource) is dict
    assert refused.plain_text == EDGE_TEXTS["duplicate-top-level"].decode()  # parsed plain, then checked


# -- generated texts: jiter accepts nothing the json path rejects or reads otherwise ---------------

_NUMBER = st.from_regex(r"\A-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,4})?\Z")
_ODD_NUMBER = st.sampled_from(["01", "1.", ".5", "+1", "1e", "-", "NaN", "Infinity", "-Infinity", "0x1",
                               "1e99999999999"])  # fmt: skip
_STRING_PART = st.sampled_from(["a", "é", "\U0001f600", "\\n", '\\"', "\\\\", "\\/", "\\u0061", "\\ud800", "\\udc00",
                                "\\ud83d\\ude00", "\\u00", "\\x", "\t", "\x7f", ":", '":'])  # fmt: skip
_STRING = st.lists(_STRING_PART, max_size=4).map(lambda parts: '"' + "".join(parts) + '"')
_KEY = st.sampled_from(['"a"', '"b"', '"\\u0061"', '""', '"a b"', '"\\ud800"'])
_SPACE = st.sampled_from(["", " ", "\n", "\t", "\r\n", "\x0c", "\xa0"])


def _composite(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    members = st.lists(st.tuples(_KEY, _SPACE, inner), max_size=4)
    return st.one_of(
        st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
        members.map(lambda ms: "{" + ",".join(f"{k}{s}:{v}" for k, s, v in ms) + "}"),
    )


_VALUE = st.recursive(
    st.one_of(_NUMBER, _ODD_NUMBER, _STRING, st.sampled_from(["true", "false", "null", "tru", "nul"])),
    _composite,
    max_leaves=12,
)
_FRAGMENTS = st.lists(st.sampled_from(['{', '}', '[', ']', ',', ':', '"a"', '"\\ud800"', '1', '1.0', '-0', '1e400',
                                       ' ', '\n', 'true', 'null', '"', '\\']), max_size=12).map("".join)  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(_VALUE, _SPACE, _SPACE)
def test_jiter_reads_a_generated_json_text_as_the_json_path_does_or_refuses_it(value, before, after) -> None:
    _agrees((before + value + after).encode("utf-8"))


@settings(max_examples=300, deadline=None)
@given(_FRAGMENTS)
def test_jiter_reads_a_run_of_json_tokens_as_the_json_path_does_or_refuses_it(text) -> None:
    _agrees(text.encode("utf-8"))


# -- whole runs: the same results with jiter and with the json path alone ---------------------------

def _results(validator: Validator, paths: list[str]) -> list:
    return [replace(r, duration=0.0) for r in validator.validate_paths(paths).results]


def _both_ways(monkeypatch, validator: Validator, paths: list[str]) -> tuple[list, list, int]:
    """Results with jiter, results with the fallback forced, and how many texts jiter read."""
    read = 0

    def counted(data: bytes) -> tuple[object, bool | None]:
        nonlocal read
        tree, numbers = parse_checked(data)
        read += tree is not REFUSED
        return tree, numbers

    monkeypatch.setattr(sources, "parse_checked", counted)
    with_jiter = _results(validator, paths)
    monkeypatch.setattr(jsontext, "JITER", False)
    without = _results(validator, paths)
    monkeypatch.setattr(jsontext, "JITER", True)
    return with_jiter, without, read


def test_every_fixture_case_gets_the_same_results_with_jiter_and_without(monkeypatch, tmp_path) -> None:
    validators: dict[tuple, Validator] = {}
    read = 0
    for n, case in enumerate(load_cases()):
        if case.dicomweb:  # needs the test PACS; reading its payload is no different
            continue
        key = (case.profiles, case.dicom_files, case.version, case.limits)
        if key not in validators:
            folder = dicom_folder(case.dicom_files) if case.dicom_files else None
            validators[key] = Validator(fhir_version=case.version, profiles=case.profiles, dicom_files=folder,
                                        limits=Limits(**dict(case.limits)))  # fmt: skip
        folder = tmp_path / str(n)
        folder.mkdir()
        path = str(write_case(case, folder))
        with_jiter, without, count = _both_ways(monkeypatch, validators[key], [path])
        assert with_jiter == without, case.id
        read += count
    assert read > 300  # the fast path was taken: most cases are plain, valid JSON


def test_every_example_gets_the_same_results_with_jiter_and_without(monkeypatch) -> None:
    paths = sorted(str(p) for p in (ROOT / "examples" / "payloads").iterdir())
    if SHARED.is_dir():
        paths += sorted(str(p) for p in (SHARED / "examples").rglob("*.json"))
    for version in ("R4", "R5"):
        with_jiter, without, read = _both_ways(monkeypatch, Validator(fhir_version=version), paths)
        assert with_jiter == without
        assert read >= len(paths)  # an NDJSON file counts once per line


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_every_edge_text_gets_the_same_results_with_jiter_and_without(version, monkeypatch, tmp_path) -> None:
    """Each text as a file of its own, and every one-line text as a line of one NDJSON file (with a
    BOM, blank lines and lines that are no resource among them)."""
    paths = []
    for name, data in EDGE_TEXTS.items():
        path = tmp_path / f"{name}.json"
        path.write_bytes(data)
        paths.append(str(path))
    # Not the number beyond Decimal's exponents: today it ends the reading of a file (an internal
    # error), with jiter or without, so the lines after it would not be compared.
    lines = [data for name, data in EDGE_TEXTS.items()
             if b"\n" not in data.strip() and name != "exponent-beyond-decimal"]  # fmt: skip
    ndjson = tmp_path / "all.ndjson"
    ndjson.write_bytes(b"\xef\xbb\xbf[1]\n\n" + b"\r\n".join(lines) + b"\n  \n")
    paths.append(str(ndjson))
    with_jiter, without, read = _both_ways(monkeypatch, Validator(fhir_version=version), paths)
    assert with_jiter == without
    assert read > 20
    on_lines = [r for r in with_jiter if r.source == str(ndjson)]
    assert len(on_lines) == len([line for line in lines if line.strip()]) + 1  # every line is accounted for


def test_stdin_gets_the_same_inputs_with_jiter_and_without(monkeypatch) -> None:
    """Standard input has no name to tell NDJSON from one resource: the parse tells them apart."""

    def read(data: bytes) -> list:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
        return [(i.entry, i.resource, i.pointer, i.warnings, i.problem) for i in load_source("-")]

    for data in [STUDY.encode(), STUDY.encode() + b"\n" + EDGE_TEXTS["duplicate-top-level"] + b"\n[1]\n\n",
                 b"\xef\xbb\xbf" + STUDY.encode() + b"\n" + STUDY.encode(), EDGE_TEXTS["bundle"]]:  # fmt: skip
        with_jiter = read(data)
        monkeypatch.setattr(jsontext, "JITER", False)
        without = read(data)
        monkeypatch.setattr(jsontext, "JITER", True)
        assert len(with_jiter) == len(without)
        for a, b in zip(with_jiter, without, strict=True):
            assert _same(a[1], b[1]) and a[0] == b[0] and a[2:] == b[2:]


def test_a_document_beyond_the_jiter_size_is_read_by_the_json_path(monkeypatch, tmp_path) -> None:
    """jiter needs the bytes and positions the text: both at once would add a copy at the peak."""
    path = tmp_path / "s.json"
    path.write_text(STUDY)
    (item,) = load_source(str(path))
    assert item.plain_text is None
    monkeypatch.setattr(sources, "_JITER_MAX_BYTES", len(STUDY) - 1)
    (item,) = load_source(str(path))
    assert item.plain_text == STUDY


def test_the_collector_is_paused_while_a_large_text_is_parsed_and_its_state_restored(monkeypatch) -> None:
    seen = []

    def record(text: str) -> object:
        seen.append(gc.isenabled())
        if text == "fail":
            raise ValueError(text)
        return text

    assert gc.isenabled()
    assert jsontext._gc_paused(record, "x") == "x"
    with pytest.raises(ValueError):
        jsontext._gc_paused(record, "fail")
    assert gc.isenabled()
    gc.disable()
    try:
        jsontext._gc_paused(record, "x")
        assert not gc.isenabled()  # left off, as it was
    finally:
        gc.enable()
    assert seen == [False, False, False]
    monkeypatch.setattr(jsontext, "_PAUSE_GC_FROM", 0)
    assert _same(parse(STUDY), json.loads(STUDY)) and parse_exact(STUDY.encode()) == BASES["study"]
    assert gc.isenabled()


@pytest.mark.parametrize("name", ["bundle", "duplicate-top-level", "integer-written-as-decimal"])
def test_the_bytes_read_for_jiter_are_let_go_before_a_resource_is_validated(name, tmp_path) -> None:
    path = tmp_path / "s.json"
    path.write_bytes(EDGE_TEXTS[name])
    reading = sources._load_source(str(path), Limits(), None)
    next(reading)
    assert "text" in reading.gi_frame.f_locals and "data" not in reading.gi_frame.f_locals


def test_the_bytes_are_let_go_before_a_long_string_is_reported(tmp_path) -> None:
    path = tmp_path / "s.json"
    path.write_text(_study_with('"description": "' + "x" * 200 + '"'))
    reading = sources._load_source(str(path), Limits(max_string=100), None)
    assert next(reading).problem.rule == "input:string-too-long"  # type: ignore[union-attr]
    assert "data" not in reading.gi_frame.f_locals


def test_a_number_with_an_exponent_too_large_for_a_decimal_is_a_syntax_finding_and_the_ndjson_goes_on(
    tmp_path: Path,
) -> None:
    from validator import Validator

    path = tmp_path / "huge.ndjson"
    good = '{"resourceType": "ImagingStudy", "status": "available", "subject": {"reference": "Patient/p"}}'
    path.write_text(f'{{"resourceType": "ImagingStudy", "x": 1e-9999999999999999999}}\n{good}\n')
    results = Validator(fhir_version="R4").validate_paths([str(path)]).results
    assert len(results) == 2
    assert [i.rule for i in results[0].issues] == ["input:malformed-json"]
    assert "exponent" in results[0].issues[0].message
    assert not any(i.rule == "engine:internal-error" for r in results for i in r.issues)
