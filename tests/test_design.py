"""Design guarantees the speed work relies on: the plan is compiled once, FHIRPath is never parsed
while validating, and a resource is walked once (each JSON object visited exactly once)."""

from __future__ import annotations

import copy
import json

import fhirpathpy
import fhirpathpy.parser

from validator.api import plan_for
from validator.evaluate.base_rules import BaseRules
from validator.limits import DEFAULT as DEFAULT_LIMITS
from validator.versions import VERSIONS


def _keys(node) -> int:
    if isinstance(node, dict):
        return len(node) + sum(_keys(v) for v in node.values())
    if isinstance(node, list):
        return sum(_keys(v) for v in node)
    return 0


def test_the_plan_is_compiled_once_per_process(validator) -> None:
    assert plan_for(VERSIONS["R4"]) is validator.plan


def test_validating_never_parses_fhirpath(validator, shared, monkeypatch) -> None:
    study = json.loads((shared / "examples" / "r4" / "ImagingStudy-example-xr.json").read_text())
    validator.validate_resource(study)  # warm: every compiled function exists after the first plan
    calls = []
    original = fhirpathpy.parser.parse
    monkeypatch.setattr(fhirpathpy.parser, "parse", lambda text: calls.append(text) or original(text))
    monkeypatch.setattr(fhirpathpy, "parse", lambda text: calls.append(text) or original(text))
    for _ in range(3):
        validator.validate_resource(copy.deepcopy(study))
    assert calls == []


def test_each_object_of_a_resource_is_visited_exactly_once(validator, shared) -> None:
    study = json.loads((shared / "examples" / "r4" / "ImagingStudy-example-xr.json").read_text())
    base = BaseRules(validator.plan, DEFAULT_LIMITS.max_depth)
    base.check(study, {})
    assert base.keys_seen == _keys(study)
