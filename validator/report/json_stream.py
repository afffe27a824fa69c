"""A JSON document that ends in a long array, written in pieces: the text json.dumps(doc,
indent=2) would give, one array item at a time, so a report of a long run is never whole in
memory (neither its text nor the dicts of its items)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator


def dumps(value: object, indent: int = 0) -> str:
    """`value` as it appears `indent` spaces deep in an indent=2 document."""
    return json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n" + " " * indent)


def document_chunks(members: dict, array_key: str, items: Iterable[object]) -> Iterator[str]:
    """{**members, array_key: [*items]} as json.dumps(..., indent=2) + newline writes it;
    `members` must not be empty."""
    head = dumps(members)
    yield head[: -len("\n}")] + ",\n  " + json.dumps(array_key) + ": ["
    first = True
    for item in items:
        yield ("\n    " if first else ",\n    ") + dumps(item, 4)
        first = False
    yield "]\n}\n" if first else "\n  ]\n}\n"
