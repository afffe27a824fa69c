"""NDJSON lines are read in one loop (a line at a time, whatever its fault), in file order, with
the file's BOM warning given to the first line read as JSON: as the reader of stages did before."""

from __future__ import annotations

import json

from fixture_cases import BASES

from validator import rule_ids as R
from validator.limits import Limits
from validator.load.sources import ndjson_lines

STUDY = json.dumps(BASES["study"]).encode()
BOM = b"\xef\xbb\xbf"


def _read(lines: list[bytes], limits: Limits | None = None) -> list[tuple]:
    numbered = enumerate((line + b"\n" for line in lines), start=1)
    return [(i.entry, i.problem.rule if i.problem else None, [w.rule for w in i.warnings])
            for i in ndjson_lines("f.ndjson", numbered, limits or Limits())]  # fmt: skip


def test_each_kind_of_line_gives_its_item_in_file_order_and_blank_lines_none() -> None:
    lines = [STUDY, b"", b"caf\xe9", b"  ", b"[1]", b"{", STUDY.replace(b'"id"', b'"status": "x", "id"'),
             b'{"description": "' + b"x" * 150 + b'"}', STUDY]  # fmt: skip
    assert _read(lines, Limits(max_string=100)) == [
        (1, None, []),
        (3, R.UNREADABLE, []),
        (5, R.NOT_A_RESOURCE, []),
        (6, R.MALFORMED_JSON, []),
        (7, None, []),  # a repeated key: jiter refuses it, the json path reads it
        (8, R.STRING_TOO_LONG, []),
        (9, None, []),
    ]


def test_the_bom_warning_goes_to_the_first_resource_when_the_first_line_is_no_object() -> None:
    assert _read([BOM + b"[1]", STUDY, STUDY]) == [
        (1, R.NOT_A_RESOURCE, []),
        (2, None, [R.BYTE_ORDER_MARK]),
        (3, None, []),
    ]


def test_the_bom_warning_goes_to_the_first_line_read_as_json_even_a_malformed_one() -> None:
    assert _read([BOM + b"caf\xe9", b"{", STUDY]) == [
        (1, R.UNREADABLE, []),
        (2, R.MALFORMED_JSON, [R.BYTE_ORDER_MARK]),
        (3, None, []),
    ]


def test_the_bom_warning_stays_with_a_first_line_that_is_a_resource() -> None:
    assert _read([BOM + STUDY, STUDY]) == [(1, None, [R.BYTE_ORDER_MARK]), (2, None, [])]
