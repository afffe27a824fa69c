"""One table of rules: each id with its declaration (a pack) and its implementation (an element
table, a FHIRPath invariant with its evaluator, or a Python check registered with @implements)."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from validator import Validator
from validator.cli import app
from validator.compile.packs import PackError
from validator.resources import rules_dir
from validator.rule_ids import IMPLEMENTED_BY

runner = CliRunner()


@pytest.mark.parametrize("version", ["R4", "R5", "R6"])
def test_every_rule_of_every_version_has_an_implementation(version) -> None:
    table = Validator(fhir_version=version).rule_table
    assert table, "no rules"
    unimplemented = sorted(rid for rid, e in table.items() if "none registered" in e.implementation)
    assert not unimplemented
    kinds = {e.implementation.split(":")[0] for e in table.values()}
    assert {"element table", "invariant", "Python check"} <= kinds
    assert kinds <= {"element table", "invariant", "Python check", "profile constraint"}


def test_a_python_rule_names_the_functions_that_report_it() -> None:
    table = Validator().rule_table
    assert table["dicom:uid-syntax"].implementation == "Python check: validator.evaluate.dicom.study.StudyCheck.uid"
    assert "validator.select.selection.mismatch_notes" in table["engine:version-mismatch"].implementation


def test_an_invariant_says_which_evaluator_runs_it() -> None:
    table = Validator(fhir_version="R6").rule_table
    assert "native" in table["r6:ist-7"].implementation
    assert "FHIRPath" in table["r6:ist-1"].implementation


def test_a_declared_python_rule_without_a_check_is_a_broken_pack(tmp_path, monkeypatch) -> None:
    target = tmp_path / "rules"
    shutil.copytree(rules_dir(), target)
    core = target / "core.yaml"
    core.write_text(core.read_text().replace("rules:\n", "rules:\n  - id: engine:made-up\n    severity: error\n"
                                             "    code: structure\n    description: Nothing implements this.\n"
                                             "    source: nowhere\n", 1))  # fmt: skip
    monkeypatch.setenv("IMAGING_VALIDATOR_RULES", str(target))
    with pytest.raises(PackError) as err:
        Validator()
    assert "engine:made-up" in str(err.value) and "no check is registered" in str(err.value)


def test_a_check_registered_for_an_undeclared_rule_is_a_broken_pack(monkeypatch) -> None:
    monkeypatch.setitem(IMPLEMENTED_BY, "dicom:made-up", ["tests.somewhere"])
    with pytest.raises(PackError) as err:
        Validator()
    assert "dicom:made-up" in str(err.value) and "no pack declares it" in str(err.value)


def test_rules_show_and_rules_list_read_the_table() -> None:
    shown = runner.invoke(app, ["rules", "show", "dicom:uid-syntax"])
    assert shown.exit_code == 0 and "implemented: Python check: validator.evaluate.dicom.study" in shown.output
    listed = json.loads(runner.invoke(app, ["rules", "list", "--format", "json"]).output)
    by_id = {r["id"]: r for r in listed}
    assert by_id["r4:ImagingStudy.status:card"]["implementation"].startswith("element table: cardinality")
