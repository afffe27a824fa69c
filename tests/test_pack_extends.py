"""A pack can extend another (`extends:`) and state only additions, overrides and removals; it is
resolved when it is loaded, and every mistake in how it extends its base is a PackError naming
the file and the field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from validator.api import plan_for
from validator.compile.packs import PackError, load_pack
from validator.compile.profiles import compile_profiles
from validator.versions import VERSIONS

ROOT = Path(__file__).resolve().parent.parent

BASE = """\
pack: base
ruleset: t
fhirVersion: 5.0.0
title: The base
source: http://example.org/R5/base.html
structures:
  Thing:
    kind: complex-type
    definitions: thing-definitions
    elements:
      code: {card: 0..1, type: code, short: A code}
      part: {card: 0..*, type: BackboneElement}
      part.name: {card: 1..1, type: string}
      note: {card: 0..1, type: string, binding: {strength: required, valueSet: "http://example.org/vs"}}
    invariants:
    - key: thg-1
      context: Thing
      severity: error
      human: A code or a note
      expression: code.exists() or note.exists()
      source: http://example.org/R5/base.html#invs
  Other:
    kind: complex-type
    elements:
      text: {card: 0..1, type: string}
primitives:
  code: {json: string, regex: '[^\\s]+', description: a code}
  string: {json: string, description: a string}
valueSets:
- url: http://example.org/vs
  title: vs
  source: http://example.org/R5/vs.html
  include:
  - system: http://example.org/cs
    codes: [a, b]
  - system: http://example.org/other
    codes: [z]
"""

HEADER = """\
pack: child
extends: base.yaml
title: The child
"""


@pytest.fixture(autouse=True)
def no_cache(monkeypatch) -> None:
    """Every test resolves its packs (the cache test turns a cache on itself)."""
    monkeypatch.setenv("IMAGING_VALIDATOR_CACHE", "off")


def _packs(tmp_path: Path, child: str, base: str = BASE) -> Path:
    (tmp_path / "base.yaml").write_text(base)
    path = tmp_path / "child.yaml"
    path.write_text(HEADER + child)
    return path


def _thing(data: dict) -> dict:
    return data["structures"]["Thing"]


def test_a_pack_that_only_extends_is_its_base_with_its_own_header(tmp_path) -> None:
    resolved = load_pack(_packs(tmp_path, "")).data
    base = load_pack(tmp_path / "base.yaml").data
    assert resolved == {**base, "pack": "child", "title": "The child"}


def test_an_element_restated_merges_field_by_field_and_keeps_its_place(tmp_path) -> None:
    child = "structures:\n  Thing:\n    elements:\n      code: {short: Another code, card: 1..1}\n"
    thing = _thing(load_pack(_packs(tmp_path, child)).data)
    assert thing["elements"]["code"] == {"card": "1..1", "type": "code", "short": "Another code"}
    assert list(thing["elements"]) == ["code", "part", "part.name", "note"]
    assert thing["kind"] == "complex-type" and len(thing["invariants"]) == 1


def test_a_field_restated_as_null_is_dropped(tmp_path) -> None:
    child = "structures:\n  Thing:\n    elements:\n      note: {type: markdown, binding: null}\n"
    assert _thing(load_pack(_packs(tmp_path, child)).data)["elements"]["note"] == {"card": "0..1", "type": "markdown"}


def test_a_list_valued_field_restated_replaces_the_bases_whole(tmp_path) -> None:
    child = "valueSets:\n- url: http://example.org/vs\n  include: [{system: http://example.org/cs, codes: [c]}]\n"
    (vs,) = load_pack(_packs(tmp_path, child)).data["valueSets"]
    assert vs["include"] == [{"system": "http://example.org/cs", "codes": ["c"]}]
    assert vs["title"] == "vs"


def test_new_entries_are_added_after_the_bases(tmp_path) -> None:
    child = """\
structures:
  Thing:
    elements:
      extra: {card: 0..1, type: string}
    invariants:
    - {key: thg-2, context: Thing, severity: warning, human: Some text, expression: text.exists()}
  New:
    kind: complex-type
    elements:
      value: {card: 1..1, type: string}
"""
    data = load_pack(_packs(tmp_path, child)).data
    assert list(_thing(data)["elements"])[-1] == "extra"
    assert [i["key"] for i in _thing(data)["invariants"]] == ["thg-1", "thg-2"]
    assert list(data["structures"]) == ["Thing", "Other", "New"]


def test_an_invariant_restated_by_its_key_merges_into_the_bases(tmp_path) -> None:
    child = "structures:\n  Thing:\n    invariants:\n    - {key: thg-1, severity: warning}\n"
    (inv,) = _thing(load_pack(_packs(tmp_path, child)).data)["invariants"]
    assert inv["severity"] == "warning" and inv["expression"] == "code.exists() or note.exists()"


def test_removed_entries_are_gone_and_an_element_takes_its_children_with_it(tmp_path) -> None:
    child = """\
remove:
  structures: [Other]
  elements: {Thing: [part]}
  invariants: {Thing: [thg-1]}
  primitives: [string]
"""
    data = load_pack(_packs(tmp_path, child)).data
    assert list(_thing(data)["elements"]) == ["code", "note"]
    assert _thing(data)["invariants"] == []
    assert list(data["structures"]) == ["Thing"] and list(data["primitives"]) == ["code"]


def test_a_removed_entry_restated_is_replaced_whole(tmp_path) -> None:
    child = "remove: {elements: {Thing: [note]}}\nstructures: {Thing: {elements: {note: {card: 0..*, type: string}}}}\n"
    elements = _thing(load_pack(_packs(tmp_path, child)).data)["elements"]
    assert elements["note"] == {"card": "0..*", "type": "string"}


def test_removing_codes_drops_them_and_an_include_left_empty(tmp_path) -> None:
    child = "remove:\n  codes: {'http://example.org/vs': [a, z]}\n"
    (vs,) = load_pack(_packs(tmp_path, child)).data["valueSets"]
    assert vs["include"] == [{"system": "http://example.org/cs", "codes": ["b"]}]


def test_rebased_sources_cite_the_new_pages_for_what_is_inherited(tmp_path) -> None:
    child = "rebaseSources: {from: 'http://example.org/R5/', to: 'http://example.org/R6/'}\n"
    data = load_pack(_packs(tmp_path, child)).data
    assert data["source"] == "http://example.org/R6/base.html"
    assert _thing(data)["invariants"][0]["source"] == "http://example.org/R6/base.html#invs"
    assert data["valueSets"][0]["source"] == "http://example.org/R6/vs.html"


def test_a_pack_can_extend_a_pack_that_extends_another(tmp_path) -> None:
    middle = _packs(tmp_path, "structures:\n  Thing:\n    elements:\n      code: {short: Middle}\n")
    (tmp_path / "top.yaml").write_text("pack: top\nextends: child.yaml\nremove: {structures: [Other]}\n")
    top = load_pack(tmp_path / "top.yaml").data
    assert _thing(top)["elements"]["code"]["short"] == "Middle" and "Other" not in top["structures"]
    assert top["pack"] == "top" and top["title"] == "The child"
    assert load_pack(middle).data["pack"] == "child"


def _message(path: Path) -> str:
    with pytest.raises(PackError) as caught:
        load_pack(path)
    return str(caught.value)


def test_a_pack_that_extends_a_missing_base_is_a_pack_error(tmp_path) -> None:
    path = tmp_path / "child.yaml"
    path.write_text(HEADER)
    message = _message(path)
    assert "child.yaml" in message and "field extends" in message and "no pack at base.yaml" in message


def test_a_pack_that_extends_itself_through_another_is_a_pack_error(tmp_path) -> None:
    (tmp_path / "a.yaml").write_text("pack: a\nextends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("pack: b\nextends: a.yaml\n")
    message = _message(tmp_path / "a.yaml")
    assert "b.yaml: rule (pack): field extends: a.yaml leads back to a pack it extends" in message


def test_a_pack_that_extends_itself_is_a_pack_error(tmp_path) -> None:
    (tmp_path / "a.yaml").write_text("pack: a\nextends: ./a.yaml\n")
    assert "field extends: ./a.yaml leads back" in _message(tmp_path / "a.yaml")


def test_a_broken_base_is_named_with_the_pack_that_extends_it(tmp_path) -> None:
    message = _message(_packs(tmp_path, "", base=BASE.replace("card: 1..1", "card: 2..1")))
    assert "base.yaml: rule Thing.part.name: field card: min 2 is greater than max 1" in message
    assert "child.yaml: rule (pack): field extends: its base base.yaml is broken" in message


WRONG = [
    (
        "removing an element the base does not have",
        "remove:\n  elements: {Thing: [nothing]}\n",
        ["rule Thing.nothing: field remove.elements.Thing: removes an element that base.yaml does not have"],
    ),
    (
        "removing elements of a structure the base does not have",
        "remove:\n  elements: {Nothing: [code]}\n",
        ["rule Nothing: field remove.elements: base.yaml has no structure Nothing"],
    ),
    (
        "removing an invariant the base does not have",
        "remove:\n  invariants: {Thing: [thg-9]}\n",
        ["rule Thing thg-9: field remove.invariants.Thing: removes an invariant"],
    ),
    (
        "removing a structure the base does not have",
        "remove:\n  structures: [Nothing]\n",
        ["rule Nothing: field remove.structures: removes a structure"],
    ),
    (
        "removing a value set the base does not have",
        "remove:\n  valueSets: ['http://example.org/none']\n",
        ["rule http://example.org/none: field remove.valueSets: removes a value set"],
    ),
    (
        "removing a code the value set does not list",
        "remove:\n  codes: {'http://example.org/vs': [q]}\n",
        ["rule http://example.org/vs: field remove.codes.http://example.org/vs: removes code 'q'"],
    ),
    (
        "removing a rule from a base without rules",
        "remove:\n  rules: ['t:none']\n",
        ["rule t:none: field remove.rules: removes a rule that base.yaml does not have"],
    ),
    (
        "overriding an element the base does not have",
        "structures:\n  Thing:\n    elements:\n      cdoe: {short: A typo}\n",
        [
            "rule Thing.cdoe: field structures.Thing.elements.cdoe: overrides an element that base.yaml "
            "does not have (adding one needs card, type)"
        ],
    ),
    (
        "overriding an invariant the base does not have",
        "structures:\n  Thing:\n    invariants:\n    - {key: thg-7, severity: warning}\n",
        ["rule Thing thg-7: field structures.Thing.invariants.thg-7: overrides an invariant"],
    ),
    (
        "overriding a structure the base does not have",
        "structures:\n  Thign:\n    elements: {code: {short: x}}\n",
        ["rule Thign: field structures.Thign: overrides a structure", "needs kind)"],
    ),
    (
        "overriding a value set the base does not have",
        "valueSets:\n- {url: 'http://example.org/vz', include: [{system: s, codes: [a]}]}\n",
        ["rule http://example.org/vz: field valueSets.http://example.org/vz: overrides a value set", "title, source"],
    ),
    (
        "stating one invariant twice",
        "structures:\n  Thing:\n    invariants:\n    - {key: thg-1, severity: warning}\n    - {key: thg-1, human: x}\n",
        ["rule Thing thg-1: field structures.Thing.invariants: an invariant stated twice in this pack"],
    ),
    (
        "an override that breaks the schema",
        "structures:\n  Thing:\n    elements:\n      code: {card: many}\n",
        ["child.yaml: rule Thing.code: field card: 'many' does not match"],
    ),
    (
        "an override whose FHIRPath does not parse",
        "structures:\n  Thing:\n    invariants:\n    - {key: thg-1, expression: 'code.exists(('}\n",
        ["child.yaml: rule Thing thg-1: field expression"],
    ),
    (
        "a removal section that is not a list of keys",
        "remove:\n  elements: [code]\n",
        ["child.yaml: rule (pack): field remove.elements: ['code'] is not of type 'object'"],
    ),
    (
        "removing something the format has no removal for",
        "remove:\n  title: [x]\n",
        ["child.yaml: rule (pack): field remove: Additional properties are not allowed ('title'"],
    ),
    (
        "an extends that is not a relative YAML path",
        "",
        ["child.yaml: rule (pack): field extends: '/base.yaml' does not match"],
    ),
]


@pytest.mark.parametrize(("mistake", "child", "named"), WRONG, ids=[w[0] for w in WRONG])
def test_a_mistake_in_how_a_pack_extends_its_base_is_a_pack_error(tmp_path, mistake, child, named) -> None:
    path = _packs(tmp_path, child)
    if mistake.startswith("an extends"):
        path.write_text(path.read_text().replace("extends: base.yaml", "extends: /base.yaml"))
    message = _message(path)
    for part in named:
        assert part in message, f"{mistake}: {part!r} not in {message}"


def test_a_removal_without_extends_is_a_pack_error(tmp_path) -> None:
    path = tmp_path / "base.yaml"
    path.write_text(BASE + "remove: {structures: [Other]}\n")
    assert "field (top level): 'extends' is a dependency of 'remove'" in _message(path)


def test_a_change_to_the_base_misses_the_cached_extending_pack(tmp_path, monkeypatch) -> None:
    import validator.compile.packs as packs

    monkeypatch.setenv("IMAGING_VALIDATOR_CACHE", str(tmp_path / "cache"))
    child = _packs(tmp_path, "")
    assert _thing(load_pack(child).data)["elements"]["code"]["short"] == "A code"
    assert len(list((tmp_path / "cache").iterdir())) == 2  # the base and the resolved child

    def no_schema_check():
        raise AssertionError("an unchanged pack and base were checked again")

    with monkeypatch.context() as unchecked:
        unchecked.setattr(packs, "_schema_validator", no_schema_check)
        assert _thing(load_pack(child).data)["elements"]["code"]["short"] == "A code"
    (tmp_path / "base.yaml").write_text(BASE.replace("short: A code", "short: A changed code"))
    assert _thing(load_pack(child).data)["elements"]["code"]["short"] == "A changed code"
    (tmp_path / "base.yaml").write_text(BASE.replace("card: 1..1", "card: 2..1"))
    with pytest.raises(PackError, match="min 2 is greater than max 1"):
        load_pack(child)


def test_a_profile_pack_can_extend_another_profile_pack(tmp_path) -> None:
    shutil.copy(ROOT / "tests" / "fixtures" / "profiles" / "slicing-test.yaml", tmp_path / "slicing-test.yaml")
    (tmp_path / "narrower.yaml").write_text(
        """\
pack: test-narrower
extends: slicing-test.yaml
profile: {url: "http://example.org/StructureDefinition/narrower", name: narrower, title: Narrower}
remove:
  constraints: [modality]
constraints:
  subject: {targets: [Patient]}
"""
    )
    pack = load_pack(tmp_path / "narrower.yaml")
    assert pack.data["profile"]["type"] == "ImagingStudy"  # inherited field of the restated header
    assert "modality" not in pack.data["constraints"] and "identifier" in pack.data["constraints"]
    profiles = compile_profiles([tmp_path / "narrower.yaml"], plan_for(VERSIONS["R4"]))
    assert profiles.find("narrower") is not None


def test_a_list_entry_without_a_usable_key_is_reported_by_the_schema(tmp_path) -> None:
    message = _message(_packs(tmp_path, "valueSets:\n- {url: [x], title: t, source: s, grammar: mime-type}\n"))
    assert "child.yaml: rule ['x']: field url: ['x'] is not of type 'string'" in message
