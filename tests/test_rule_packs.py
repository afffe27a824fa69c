"""Rule packs are checked when they are loaded: a broken pack is refused with a message naming
the file, the rule and the field, and the CLI exits 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from validator.api import plan_for
from validator.cli import app
from validator.compile.packs import PackError, load_pack
from validator.resources import rules_dir
from validator.versions import VERSIONS

R4 = VERSIONS["R4"]


@pytest.fixture
def rules_copy(tmp_path, monkeypatch) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(rules_dir(), target)
    monkeypatch.setenv("IMAGING_VALIDATOR_RULES", str(target))
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"fixture text not found in {path.name}: {old!r}"
    path.write_text(text.replace(old, new, 1))


BROKEN = [
    (
        "an unknown key in an element",
        "r4/imagingstudy.yaml",
        "      status:\n        card: 1..1",
        "      status:\n        cardinality: 1..1\n        card: 1..1",
        ["imagingstudy.yaml", "ImagingStudy.status", "cardinality"],
    ),
    (
        "a cardinality that is not min..max",
        "r4/imagingstudy.yaml",
        "      status:\n        card: 1..1",
        "      status:\n        card: 1..x",
        ["imagingstudy.yaml", "ImagingStudy.status", "card"],
    ),
    (
        "a minimum above the maximum",
        "r4/imagingstudy.yaml",
        "      status:\n        card: 1..1",
        "      status:\n        card: 2..1",
        ["imagingstudy.yaml", "ImagingStudy.status", "min 2 is greater than max 1"],
    ),
    (
        "an invariant whose FHIRPath does not parse",
        "r4/imagingstudy.yaml",
        "expression: text.`div`.exists()",
        "expression: text.`div`.exists(((",
        ["imagingstudy.yaml", "dom-6", "expression", "does not parse"],
    ),
    (
        "a type that does not exist",
        "r4/imagingstudy.yaml",
        "      started:\n        card: 0..1\n        type: dateTime",
        "      started:\n        card: 0..1\n        type: DateTimeish",
        ["imagingstudy.yaml", "ImagingStudy.started", "unknown type"],
    ),
    (
        "a repeated element key",
        "r4/imagingstudy.yaml",
        "      status:\n        card: 1..1",
        "      status:\n        card: 1..1\n        card: 0..1",
        ["imagingstudy.yaml", "duplicate key 'card'"],
    ),
    (
        "a repeated rule id",
        "core.yaml",
        "  - id: json:null\n",
        "  - id: json:null\n    severity: error\n    code: structure\n    description: again\n"
        "    source: x\n  - id: json:null\n",
        ["core.yaml", "json:null", "duplicate rule id"],
    ),
    (
        "a severity that does not exist",
        "core.yaml",
        "  - id: json:null\n    severity: error",
        "  - id: json:null\n    severity: disaster",
        ["core.yaml", "json:null", "severity"],
    ),
    (
        "one invariant key with two expressions",
        "r4/datatypes.yaml",
        "expression: code.empty() or system.exists()",
        "expression: code.empty()",
        ["datatypes.yaml", "r4:qty-3", "duplicate rule id"],
    ),
    (
        "a native evaluator asked for an edited expression",
        "r4/datatypes.yaml",
        "expression: low.empty() or high.empty() or (low <= high)\n      evaluator: native",
        "expression: low.empty() or (low <= high)\n      evaluator: native",
        ["datatypes.yaml", "r4:rng-2", "evaluator", "no native implementation matches"],
    ),
    (
        "a native evaluator asked for where none exists",
        "r4/datatypes.yaml",
        "expression: code.empty() or system.exists()\n",
        "expression: code.empty() or system.exists()\n      evaluator: native\n",
        ["datatypes.yaml", "r4:qty-3", "evaluator", "there is none for this key"],
    ),
    (
        "text that is not YAML",
        "r4/primitives.yaml",
        "primitives:",
        "primitives: [",
        ["primitives.yaml", "invalid YAML"],
    ),
]


@pytest.mark.parametrize(("defect", "file", "old", "new", "named"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_pack_is_refused_naming_file_rule_and_field(rules_copy, defect, file, old, new, named) -> None:
    _edit(rules_copy / file, old, new)
    with pytest.raises(PackError) as caught:
        plan_for(R4)
    message = str(caught.value)
    for part in named:
        assert part in message, f"{defect}: {part!r} not in {message}"


def test_the_cli_exits_2_on_a_broken_pack_and_names_it(rules_copy, tmp_path) -> None:
    _edit(rules_copy / "r4/imagingstudy.yaml", "      status:\n        card: 1..1", "      status:\n        card: 1..x")
    payload = tmp_path / "p.json"
    payload.write_text('{"resourceType": "ImagingStudy"}')
    result = CliRunner().invoke(app, ["validate", str(payload)])
    assert result.exit_code == 2
    assert "imagingstudy.yaml" in result.output and "ImagingStudy.status" in result.output


def test_the_bundled_packs_all_load(validator) -> None:
    for path in sorted(rules_dir().rglob("*.yaml")):
        assert load_pack(path).id
    assert len(validator.plan.rules) > 600


def test_a_pack_checked_once_is_read_from_the_cache_and_a_changed_one_is_checked_again(tmp_path, monkeypatch) -> None:
    import validator.compile.packs as packs

    monkeypatch.setenv("IMAGING_VALIDATOR_CACHE", str(tmp_path / "cache"))
    pack_file = tmp_path / "core.yaml"
    shutil.copy(rules_dir() / "core.yaml", pack_file)
    first = load_pack(pack_file)
    assert len(list((tmp_path / "cache").iterdir())) == 1

    def no_schema_check():
        raise AssertionError("the schema was checked again for an unchanged pack")

    monkeypatch.setattr(packs, "_schema_validator", no_schema_check)
    assert load_pack(pack_file).data == first.data
    monkeypatch.undo()
    monkeypatch.setenv("IMAGING_VALIDATOR_CACHE", str(tmp_path / "cache"))
    _edit(pack_file, "  - id: json:null\n    severity: error", "  - id: json:null\n    severity: disaster")
    with pytest.raises(PackError, match="json:null"):
        load_pack(pack_file)


def test_a_damaged_cache_entry_is_ignored(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("IMAGING_VALIDATOR_CACHE", str(tmp_path / "cache"))
    pack_file = rules_dir() / "core.yaml"
    load_pack(pack_file)
    (entry,) = (tmp_path / "cache").iterdir()
    entry.write_text("{not json")
    assert load_pack(pack_file).id == "core"


def test_an_invariant_without_an_evaluator_is_evaluated_as_fhirpath(rules_copy) -> None:
    # rng-2's native exists, but a pack that does not ask for it gets its FHIRPath evaluated.
    _edit(rules_copy / "r4/datatypes.yaml", "(low <= high)\n      evaluator: native", "(low <= high)")
    plan = plan_for(R4)
    rng_2 = next(i for s in plan.structures.values() for i in s.invariants if i.key == "rng-2")
    assert rng_2.native is None and "FHIRPath" in rng_2.evaluator


def test_every_native_implementation_is_asked_for_by_some_pack() -> None:
    from validator.fhirpath.natives import native_pairs

    used = set()
    for version in ("R4", "R5", "R6"):
        plan = plan_for(VERSIONS[version])
        invariants = [*plan.element_invariants, *(i for s in plan.structures.values() for i in s.invariants),
                      *(i for s in plan.structures.values() for e in s.elements for i in e.invariants)]  # fmt: skip
        used |= {(i.key, i.expression) for i in invariants if i.native is not None}
    assert set(native_pairs()) == used
