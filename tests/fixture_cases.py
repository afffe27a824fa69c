"""Reading the per-rule fixture files in tests/fixtures/rules/ into runnable cases.

A file lists the rules (ids, or families such as r4:*:card) it covers and named cases. A case
builds a payload from a base (`base` + `merge` + `remove`), gives a whole `resource`, or gives
raw file content (`text`, with optional `suffix` and `invalid_utf8`). `expect` lists the issues
(rule and expression) that must be found; an empty list means a passing case. All issues must
match `expect` exactly, so a fixture also catches cascades and stray findings.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

FIXTURES = Path(__file__).parent / "fixtures" / "rules"

BASES = {
    "study": {
        "resourceType": "ImagingStudy",
        "id": "fixture",
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">CT chest, 1 series</div>'},
        "status": "available",
        "subject": {"reference": "Patient/p1"},
        "series": [
            {
                "uid": "1.2.3.4.1",
                "modality": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"},
                "instance": [
                    {
                        "uid": "1.2.3.4.1.1",
                        "sopClass": {"system": "urn:ietf:rfc:3986", "code": "urn:oid:1.2.840.10008.5.1.4.1.1.2"},
                    }
                ],
            }
        ],
    },
}


@dataclass
class Case:
    file: str
    name: str
    rules: list[str]
    payload: dict | None
    text: str | None
    suffix: str
    invalid_utf8: bool
    expect: list[dict]

    @property
    def id(self) -> str:
        return f"{self.file}::{self.name}"


def _expand(value: object) -> object:
    """{"$repeat": "a", "times": N} stands for a string of N copies (for length limits)."""
    if isinstance(value, dict):
        if "$repeat" in value:
            return value["$repeat"] * value["times"]
        return {k: _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    return value


def _merge(target: dict, patch: dict) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _remove(target: dict, dotted: str) -> None:
    parts = dotted.split(".")
    node = target
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    del node[parts[-1]]


def load_cases() -> list[Case]:
    cases = []
    for path in sorted(FIXTURES.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for raw in data["cases"]:
            payload = None
            if "resource" in raw:
                payload = raw["resource"]
            elif "text" not in raw:
                payload = copy.deepcopy(BASES[raw.get("base", "study")])
                _merge(payload, _expand(raw.get("merge") or {}))
                for dotted in raw.get("remove") or []:
                    _remove(payload, dotted)
            cases.append(
                Case(
                    file=path.name,
                    name=raw["name"],
                    rules=list(data["rules"]),
                    payload=payload,
                    text=raw.get("text"),
                    suffix=raw.get("suffix", ".json"),
                    invalid_utf8=bool(raw.get("invalid_utf8")),
                    expect=list(raw.get("expect") or []),
                )
            )
    return cases


def write_case(case: Case, directory: Path) -> Path:
    path = directory / f"case{case.suffix}"
    data = case.text.encode("utf-8") if case.text is not None else json.dumps(case.payload, indent=2).encode()
    if case.invalid_utf8:
        data += b"\xff\xfe"
    path.write_bytes(data)
    return path


def family(rule_id: str) -> str:
    """r4:ImagingStudy.status:card -> r4:*:card for element rules generated from the spec tables."""
    parts = rule_id.split(":")
    if len(parts) == 3 and parts[2] in ("card", "type", "binding", "target"):
        return f"{parts[0]}:*:{parts[2]}"
    return rule_id
