"""A long run's results go to disk as they come: memory does not grow with the run, and every
report, summary and waiver reads the same results back, in the same order."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from validator import Validator
from validator.model import Issue, ResourceResult, RunResult, Severity, Tally
from validator.report import REPORTERS
from validator.run import store as store_module
from validator.run.store import ResultStore
from validator.run.waivers import Baseline

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "payloads"


def _result(n: int, *severities: Severity) -> ResourceResult:
    issues = tuple(Issue(s, "value", f"rule-{s.label}", f"ImagingStudy.x{n}", "m", n, 1) for s in severities)
    return ResourceResult(f"file-{n % 3}.ndjson", n, "ImagingStudy", f"id-{n}", "4.0.1", (), issues)


def test_results_past_the_memory_limit_are_read_back_from_disk_in_order():
    results = [_result(n, *([Severity.ERROR] if n % 4 == 0 else [])) for n in range(50)]
    store = ResultStore(results, in_memory=7)
    assert len(store._memory) == 7 and len(store) == 50  # 43 of them on disk only
    assert list(store) == results
    assert [store[i] for i in (0, 6, 7, 49, -1)] == [results[i] for i in (0, 6, 7, 49, -1)]
    assert store[5:9] == tuple(results[5:9])
    with pytest.raises(IndexError):
        store[50]


def test_a_result_replaced_on_disk_or_in_memory_is_the_one_read_back_and_counted():
    results = [_result(n) for n in range(20)]
    store = ResultStore(results, in_memory=5)
    for index in (2, 15):
        results[index] = _result(index, Severity.FATAL, Severity.WARNING)
        store.replace(index, results[index])
    assert list(store) == results and store[15] == results[15]
    assert store.tally == Tally.of(results)
    assert RunResult(store).summary() == RunResult(tuple(results)).summary()


def test_the_kept_counts_give_the_summary_a_full_count_gives_at_every_threshold():
    results = [_result(n, *[Severity(1 + (n * k) % 4) for k in range(n % 3)]) for n in range(40)]
    results[3] = ResourceResult("p.json", None, "Patient", "p", None, (), (), not_validated="no rules")
    store = ResultStore(results, in_memory=4)
    for fail_on in (None, *Severity):
        assert RunResult(store, fail_on).summary() == RunResult(tuple(results), fail_on).summary()
        assert RunResult(store, fail_on).failed == RunResult(tuple(results), fail_on).failed


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """The bundled examples and an NDJSON of many lines, some with findings."""
    folder = tmp_path / "in"
    shutil.copytree(EXAMPLES, folder)
    study = json.loads((EXAMPLES / "ct-chest.json").read_text())
    with (folder / "many.ndjson").open("w") as out:
        for n in range(60):
            line = {**study, "id": f"s{n}"}
            if n % 7 == 0:
                line["status"] = "not-a-status"
            out.write(json.dumps(line) + "\n")
    return folder


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_run_kept_on_disk_gives_the_same_reports_as_a_run_kept_in_memory(inputs, monkeypatch, jobs):
    def reports() -> dict[str, bytes]:
        run = Validator(exclude=()).validate_paths([str(inputs)], jobs=jobs)
        return {name: r.file_bytes(run) for name, r in REPORTERS.items()}

    in_memory = reports()
    monkeypatch.setattr(store_module, "IN_MEMORY", 3)
    on_disk = reports()
    assert json.loads(on_disk["json"])["summary"]["resources"] > 60
    for name in in_memory:
        if name in ("html", "sarif"):  # they carry the time of the run
            continue
        if name == "junit":  # each resource's duration
            assert re.sub(rb'time="[0-9.]+"', b"", on_disk[name]) == re.sub(rb'time="[0-9.]+"', b"", in_memory[name])
            continue
        assert on_disk[name] == in_memory[name], name
    # The end-of-run reference checks reach results already on disk.
    assert [r for r in json.loads(on_disk["json"])["results"]] == json.loads(in_memory["json"])["results"]


def test_waivers_and_a_baseline_apply_to_results_on_disk(inputs, monkeypatch):
    monkeypatch.setattr(store_module, "IN_MEMORY", 2)
    status = "r4:ImagingStudy.status:binding"
    everything = Validator(exclude=()).validate_paths([str(inputs)])
    assert isinstance(everything.results, ResultStore)
    found = sum(i.rule == status for r in everything.results for i in r.issues)
    assert found >= 9  # every 7th line of many.ndjson, and the broken example's

    switched_off = Validator(exclude=(), severity={status: None}).validate_paths([str(inputs)])
    assert isinstance(switched_off.results, ResultStore) and len(switched_off.results) == len(everything.results)
    assert not any(i.rule == status for r in switched_off.results for i in r.issues)

    recorded = {fp for r, i, fp in everything.fingerprinted() if i.rule == status}
    waived = Baseline("baseline.json", frozenset(recorded)).apply(everything)
    assert waived.waived == found and isinstance(waived.results, ResultStore)
    assert [len(r.issues) for r in waived.results] == [len(r.issues) for r in switched_off.results]


@pytest.mark.parametrize("count", [0, 1, 40])
def test_the_json_reports_written_in_pieces_are_the_documents_json_dumps_writes(count):
    from validator.report import json_report, operation_outcome

    results = [_result(n, *([Severity.ERROR, Severity.INFORMATION] if n % 3 else [])) for n in range(count)]
    results += [ResourceResult("naïve \ud800.json", None, "ImagingStudy", "ü", None, (), ())] if count else []
    run = RunResult(ResultStore(results, in_memory=5))
    whole = json.dumps(json_report.report_dict(run), indent=2, ensure_ascii=False) + "\n"
    assert json_report.render(run) == whole
    pieces = list(json_report.chunks(run))
    assert len(pieces) == len(results) + 2  # the head, one per resource, the end
    entries = [
        {"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{i:012d}", "resource": operation_outcome.outcome(r, i, r.source)}
        for i, r in enumerate(results)
    ]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    assert operation_outcome.render(run) == json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"


def test_the_junit_report_is_written_a_resource_at_a_time_and_counts_each_suite_before_its_cases(inputs):
    import xml.etree.ElementTree as ET

    from validator.report import junit

    run = Validator(exclude=()).validate_paths([str(inputs)])
    pieces = list(junit.chunks(run))
    assert len(pieces) > len(run.results)
    root = ET.fromstring("".join(pieces).encode("utf-8"))
    suites = root.findall("testsuite")
    for suite in suites:
        cases = suite.findall("testcase")
        assert int(suite.get("tests")) == len(cases)
        assert int(suite.get("failures")) == sum(c.find("failure") is not None for c in cases)
        assert int(suite.get("skipped")) == sum(c.find("skipped") is not None for c in cases)
    assert int(root.get("tests")) == sum(int(s.get("tests")) for s in suites) >= len(run.results)
    assert int(root.get("failures")) == sum(int(s.get("failures")) for s in suites) > 0
    # A file with two profiles: a suite per profile, the Bundle's resources in the suite of theirs.
    names = [s.get("name") for s in suites if "imr-study-bundle" in s.get("name")]
    assert len(names) == 2 and all("[" in n for n in names)
