"""Resources parsed without keeping repeated keys (the fast parse) are trusted only when the fast
path passed them and counted as many keys as the text holds; anything else is parsed again,
precisely. A repeated key is therefore never lost, however the JSON is written. jiter, when it
reads an input, refuses repeated keys itself: the tests that validate files run with it and with
the json path alone (which parses plain and counts keys)."""

from __future__ import annotations

import copy
import json

import pytest
from fixture_cases import BASES
from hypothesis import given, settings
from hypothesis import strategies as st

from validator import Validator
from validator.fhir import jsontext
from validator.fhir.jsontext import key_tokens

VALIDATOR = Validator(fhir_version="R4")
STUDY = BASES["study"]


@pytest.fixture(params=["jiter", "json path alone"])
def reader(request, monkeypatch) -> None:
    monkeypatch.setattr(jsontext, "JITER", request.param == "jiter")


def _duplicated(text: str) -> str:
    """The study's text with its status written twice (the same value: only the repetition is wrong)."""
    return text.replace('"status": "available"', '"status": "available", "status": "available"', 1)


def _rules(path) -> list[str]:
    return [i.rule for r in VALIDATOR.validate_paths([str(path)]).results for i in r.issues]


@pytest.mark.usefixtures("reader")
def test_a_repeated_key_in_an_otherwise_valid_file_is_reported(tmp_path) -> None:
    for n, (separators, indent) in enumerate([((",", ": "), None), ((",", ":"), None), ((",", " : "), 2)]):
        text = json.dumps(STUDY, separators=separators, indent=indent)
        pair = '"status"' + separators[1] + '"available"'
        text = text.replace(pair, pair + "," + pair, 1)
        path = tmp_path / f"{n}.json"
        path.write_text(text)
        assert _rules(path) == ["json:duplicate-key"], text


@pytest.mark.usefixtures("reader")
def test_a_repeated_key_in_an_ndjson_line_is_reported(tmp_path) -> None:
    path = tmp_path / "s.ndjson"
    path.write_text(json.dumps(STUDY) + "\n" + _duplicated(json.dumps(STUDY)) + "\n")
    assert _rules(path) == ["json:duplicate-key"]


@pytest.mark.usefixtures("reader")
def test_a_string_that_looks_like_a_key_costs_time_but_no_finding(tmp_path) -> None:
    study = copy.deepcopy(STUDY)
    study["description"] = 'he said "status": no'
    path = tmp_path / "s.json"
    path.write_text(json.dumps(study))
    assert _rules(path) == []


@pytest.mark.usefixtures("reader")
def test_a_decimal_keeps_its_exact_value(tmp_path) -> None:
    text = json.dumps(STUDY)[:-1] + ', "extension": [{"url": "http://e.org/x", "valueDecimal": 0.10}]}'
    path = tmp_path / "d.json"
    path.write_text(text)
    run = VALIDATOR.validate_paths([str(path)])
    assert not run.results[0].issues


keys = st.text(alphabet='ab":\\ ', min_size=1, max_size=4)
documents = st.recursive(
    st.one_of(st.none(), st.integers(), st.text(alphabet='ab":\\ \n', max_size=6)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)),
    max_leaves=10,
)


def _count_keys(node) -> int:
    if isinstance(node, dict):
        return len(node) + sum(_count_keys(v) for v in node.values())
    if isinstance(node, list):
        return sum(_count_keys(v) for v in node)
    return 0


@settings(max_examples=300, deadline=None)
@given(documents, st.sampled_from([(",", ":"), (", ", ": "), (",", " : "), (",", ":\n ")]), st.booleans())
def test_the_key_count_of_a_text_never_falls_short_of_its_keys(doc, separators, escape) -> None:
    text = json.dumps(doc, separators=separators, ensure_ascii=escape)
    assert key_tokens(text) >= _count_keys(doc)
