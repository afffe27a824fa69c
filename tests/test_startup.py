"""What a small run loads: with warm caches, neither the YAML parser, nor pydicom, nor the
FHIRPath parser are imported, and the DICOM tables read back from the cache equal pydicom's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fixture_cases import BASES

from validator.dicom import registry

CHECK = """
import sys
from validator import Validator
run = Validator().validate_paths([sys.argv[1]])
assert not run.failed, [i.rule for r in run.results for i in r.issues]
print(sorted(m for m in ("yaml", "pydicom", "fhirpathpy", "antlr4", "pydantic", "jsonschema") if m in sys.modules))
"""


def _run(payload: Path, cache: Path) -> list[str]:
    env = {**os.environ, "IMAGING_VALIDATOR_CACHE": str(cache)}
    done = subprocess.run([sys.executable, "-c", CHECK, str(payload)], capture_output=True, text=True, env=env,
                          timeout=300, check=True)  # fmt: skip
    return json.loads(done.stdout.strip().replace("'", '"'))


def test_a_small_run_with_warm_caches_imports_no_parser_and_no_pydicom(tmp_path) -> None:
    payload = tmp_path / "study.json"
    payload.write_text(json.dumps(BASES["study"]))
    cold = _run(payload, tmp_path / "cache")
    assert "yaml" in cold and "pydicom" in cold  # the first run builds the caches
    assert _run(payload, tmp_path / "cache") == []


def test_dicom_tables_from_the_cache_equal_pydicoms(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("IMAGING_VALIDATOR_CACHE", str(tmp_path / "packs"))
    built = registry._cached("cid-29", lambda: registry._cid_codes(29))
    files = list((tmp_path / "packs" / "dicom").glob("*.json"))  # inside the configured folder
    assert len(files) == 1
    assert registry._cached("cid-29", lambda: {"never": "called"}) == built == registry._cid_codes(29)
    files[0].write_text("{damaged")
    assert registry._cached("cid-29", lambda: registry._cid_codes(29)) == built
    rows = registry._cached("sop-classes", registry._sop_class_rows)
    assert rows == json.loads(json.dumps(registry._sop_class_rows()))


def test_the_xml_escape_refuses_exactly_the_code_points_xml_does_not_allow() -> None:
    """safe_text lists what XML 1.0 forbids instead of negating what it allows (the negated class
    costs re tens of millions of instructions to compile at every start): the two agree on every
    code point a str can hold, and xml_text escapes just those."""
    import re

    from validator.report import safe_text

    allowed = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")  # the XML 1.0 Char production
    every = "".join(map(chr, range(sys.maxunicode + 1)))
    assert safe_text._XML_ILLEGAL.findall(every) == allowed.findall(every)
    assert len(allowed.findall(every)) == 2079  # 29 controls, 2,048 surrogates, U+FFFE and U+FFFF
    assert safe_text.xml_text("a\x00b\ufffe\ud800\U0001f600\t") == "a\\x00b\\ufffe\\ud800\U0001f600\t"


GC_PROBE = """
import gc, sys
from validator import api
seen = []
validate_paths = api.Validator.validate_paths
def spy(self, *args, **kwargs):
    seen.append((gc.isenabled(), gc.get_freeze_count() > 0))
    return validate_paths(self, *args, **kwargs)
api.Validator.validate_paths = spy
from validator.cli import main
try:
    main()
finally:
    print(seen, gc.isenabled(), file=sys.stderr)
"""


def test_validate_collects_garbage_while_it_validates_with_what_start_up_made_frozen(tmp_path) -> None:
    """`imaging-validator validate` pauses the collector while it starts (start-up frees next to
    nothing) and resumes it, start-up's objects frozen, before the first resource: a long run
    collects as it did. The output is the same as with the collector left alone."""
    payload = tmp_path / "study.json"
    payload.write_text(json.dumps(BASES["study"]))
    args = ["validate", str(payload), "--format", "json"]
    done = subprocess.run([sys.executable, "-c", GC_PROBE, *args], capture_output=True, text=True, timeout=300)
    assert done.stderr.strip().splitlines()[-1] == "[(True, True)] True"
    plain = subprocess.run([sys.executable, "-c", "from validator.cli import app; app()", *args],
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert (done.returncode, done.stdout) == (plain.returncode, plain.stdout) and done.returncode == 0


def _plain(value: object) -> object:
    """A parameter's attribute as a comparable value: types by their settings, functions by name."""
    if callable(value) and hasattr(value, "__qualname__"):
        return value.__qualname__
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return type(value).__name__, {k: _plain(v) for k, v in vars(value).items()}
    return value


def _options(command) -> list[object]:
    return [_plain(p) for p in command.params]


def test_validate_is_built_alike_from_its_evaluated_annotations_and_from_their_text() -> None:
    """The validate command carries its annotations evaluated (typer would compile their text again
    at every start): typer builds the same options, types and defaults as from the text."""
    import functools

    import typer
    import typer.main

    from validator import cli

    def as_text(**kwargs):
        return cli.validate(**kwargs)

    functools.update_wrapper(as_text, cli.validate.__wrapped__)  # the source text of each annotation
    as_text.__signature__ = cli.validate.__signature__  # type: ignore[attr-defined]
    assert any(isinstance(a, str) for a in as_text.__annotations__.values())
    assert not any(isinstance(a, str) for a in cli.validate.__annotations__.values())
    text_app = typer.Typer(add_completion=False)
    text_app.callback()(cli.main_options)
    text_app.command()(as_text)
    built = typer.main.get_command(cli._validate_only()).commands["validate"]  # type: ignore[attr-defined]
    from_text = typer.main.get_command(text_app).commands["validate"]  # type: ignore[attr-defined]
    assert len(_options(built)) > 35 and _options(built) == _options(from_text)


def _element_defs(structure, found: dict) -> dict:
    for ed in structure.elements:
        found[ed.path] = ed
        if ed.children is not None:
            _element_defs(ed.children, found)
    return found


def test_an_element_has_children_in_the_plan_exactly_when_some_element_lies_under_it() -> None:
    """compile_plan tells an element with children by a set of the paths elements lie under (it
    scanned every key for `path.` at each element, quadratic in a structure's elements): each
    version's plan gives children to the same elements as the scan, and a grandchild declared
    without its parent still gives its grandparent children."""
    from validator.compile.catalog import plan_for
    from validator.compile.packs import Pack, load_pack
    from validator.compile.plan import _Compiler, pack_files
    from validator.resources import rules_dir
    from validator.versions import VERSIONS

    for version in VERSIONS.values():
        root = rules_dir()
        packs = [load_pack(f) for f in [root / "core.yaml", *pack_files(root / version.ruleset)]]
        defs = {}
        for structure in plan_for(version).structures.values():
            _element_defs(structure, defs)
        checked = 0
        for pack in packs:
            for sname, raw in (pack.data.get("structures") or {}).items():
                keys = list(raw["elements"])
                for rel in keys:
                    ed = defs.get(f"{sname}.{rel}")
                    if ed is not None:
                        checked += 1
                        assert (ed.children is not None) == any(k.startswith(rel + ".") for k in keys), ed.path
        assert checked > 300, version
    core = load_pack(rules_dir() / "core.yaml")
    thing = {"kind": "complex", "elements": {"a": {"card": "0..1", "type": "BackboneElement"},
                                             "a.b.c": {"card": "0..1", "type": "string"}}}  # fmt: skip
    broken = Pack(core.path, {**core.data, "structures": {**(core.data.get("structures") or {}), "Thing": thing}})
    compiler = _Compiler([broken], VERSIONS["R4"].number, VERSIONS["R4"].model)
    compiler.collect()
    compiler.build()
    assert any("Thing.a.b is not declared" in p for p in compiler.problems)
    assert compiler.structures["Thing"].elements[0].children is not None
