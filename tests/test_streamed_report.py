"""The text report printed while a run goes on (report/text.py TextStream): the same bytes as the
report printed after the run, with one process and with --jobs workers, in run order, nothing
lost when a worker dies; and every other report the same with --jobs 2 as with one process."""

from __future__ import annotations

import copy
import json
import os
import re
from itertools import groupby
from pathlib import Path

import pytest
from fixture_cases import BASES
from typer.testing import CliRunner

from validator import Validator
from validator.cli import app
from validator.model import RunResult, Severity
from validator.report import REPORTERS
from validator.report.safe_text import terminal
from validator.report.text import TextStream, summary_line
from validator.run import store
from validator.run.parallel import CHUNK_LINES
from validator.run.pipeline import Pipeline

ENDPOINT = {
    "resourceType": "Endpoint", "id": "e", "status": "active", "payloadType": [{"text": "DICOM"}],
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">e</div>'},
    "connectionType": {"system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                       "code": "dicom-wado-rs"},
    "address": "https://pacs.example.org/dicom-web/studies/9.8.7",
}  # fmt: skip


LABELS = {Severity.FATAL: "FATAL", Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFORMATION: "info"}


def _study(n: int) -> dict:
    study = copy.deepcopy(BASES["study"])
    study["id"] = f"s{n}"
    if n % 7 == 0:
        study["status"] = "done"  # an error
    if n % 11 == 0:
        study["bogus"] = 1  # an unknown element
    if n % 13 == 0:
        study["id"] = f"s{n}\x1b[31m\u202e"  # escaped for the terminal (the label shows the id)
    return study


def _inputs(folder: Path, waiting: bool = True) -> list[str]:
    """Several units of NDJSON for the workers (bad lines among them), files of one resource, and
    (`waiting`) a study whose endpoint is in another file: its finding waits for the end of the run."""
    lines = [json.dumps(_study(n)) for n in range(CHUNK_LINES * 3 + 17)]
    lines[3] = "{not json"
    lines[CHUNK_LINES + 1] = ""  # a blank line is skipped
    (folder / "a-bulk.ndjson").write_text("\n".join(lines) + "\n")
    (folder / "b-empty.ndjson").write_text("")
    (folder / "c-broken.json").write_text('{"resourceType": ')
    if waiting:
        study = {**_study(1), "endpoint": [{"reference": "Endpoint/e"}],
                 "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.3"}]}  # fmt: skip
        (folder / "d-study.json").write_text(json.dumps(study))
        (folder / "e-endpoint.json").write_text(json.dumps(ENDPOINT))
    more = [json.dumps(_study(n)) for n in range(CHUNK_LINES + 5)]
    (folder / "f-more.ndjson").write_text("\n".join(more) + "\n")
    return [str(folder)]


def _text_as_before(run: RunResult, quiet: bool) -> str:
    """The text report as it was printed before it was streamed (the whole run read back after it,
    grouped by file): the reference the streamed text must equal byte for byte."""
    out: list[str] = []
    for source, group in groupby(run.results, key=lambda r: r.source):
        header = False
        for r in group:
            if quiet and not r.fails(run.fail_on):
                continue
            if not header:
                out.append(source)
                header = True
            status = {"fail": "FAIL", "pass": "ok", "not-validated": "NOT VALIDATED"}[r.status(run.fail_on)]
            version = f"FHIR {r.fhir_version}" if r.fhir_version else ""
            profiles = f"  profiles: {', '.join(p.rsplit('/', 1)[-1] for p in r.profiles)}" if r.profiles else ""
            out.append(f"  {status:<4} {r.label}  {version}{profiles}".rstrip())
            for i in r.issues:
                where = f"{i.line}:{i.column}" if i.line is not None else "-"
                label = LABELS[i.severity]
                out.append(f"    {label:<7} {where:<8} {i.expression or '(input)'}")
                out.append(f"            {i.message}  [{i.rule}]")
        if header:
            out.append("")
    out.extend(f"note: {note}" for note in run.notes)
    out.append(summary_line(run))
    return "\n".join(map(terminal, out)) + "\n"


def _streamed(paths: list[str], jobs: int, quiet: bool, monkeypatch) -> tuple[str, RunResult, TextStream, int]:
    """A run with its text streamed: the text, the run, the stream, and how much of the text was
    printed when the run reached its end-of-run checks (before any report was written)."""
    pieces: list[str] = []
    at_finish: list[int] = []
    real_finish = Pipeline.finish

    def finish(self, outcomes):
        at_finish.append(sum(map(len, pieces)))
        return real_finish(self, outcomes)

    monkeypatch.setattr(Pipeline, "finish", finish)
    validator = Validator(fhir_version="R4")
    stream = TextStream(validator.fail_on, quiet, pieces.append)
    run = validator.validate_paths(paths, jobs=jobs, stream=stream)
    monkeypatch.undo()
    stream.end(run)
    return "".join(pieces), run, stream, at_finish[0]


@pytest.mark.parametrize("quiet", [False, True])
def test_the_text_printed_as_results_arrive_is_the_text_printed_after_the_run_with_one_and_two_jobs(
    tmp_path, monkeypatch, quiet
) -> None:
    paths = _inputs(tmp_path, waiting=False)
    texts = {}
    for jobs in (1, 2):
        text, run, stream, at_finish = _streamed(paths, jobs, quiet, monkeypatch)
        assert text == _text_as_before(run, quiet)
        assert text == (REPORTERS["text"].render_quiet(run) if quiet else REPORTERS["text"].render(run))
        # Printed while the run went on (all but the last few hundred resources, which wait to make
        # a chunk, and the summary); every result was taken by the stream, none read back after.
        assert not stream.held
        assert stream.printed == len(run.results)
        assert at_finish >= len(text) // 2
        texts[jobs] = text
    assert texts[1] == texts[2]
    assert "\\x1b[31m" in texts[1] and "\x1b" not in texts[1]  # payload text escaped in the streamed text too


def test_a_result_that_waits_for_the_end_of_the_run_stops_the_printing_and_the_rest_follows_after_it(
    tmp_path, monkeypatch
) -> None:
    paths = _inputs(tmp_path)
    for jobs in (1, 2):
        text, run, stream, at_finish = _streamed(paths, jobs, False, monkeypatch)
        assert text == _text_as_before(run, False)
        waiting = next(n for n, r in enumerate(run.results) if r.source.endswith("d-study.json"))
        # Its WADO-RS finding was added after the run: it was not printed before.
        assert "dicom:wado-study" in {i.rule for i in run.results[waiting].issues}
        assert stream.held and stream.printed == waiting
        assert 0 < at_finish < len(text)


def test_the_text_of_a_run_kept_on_disk_streams_the_same_and_the_store_reads_from_any_place(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(store, "IN_MEMORY", 50)  # most results pickled on disk, by workers and by one process
    paths = _inputs(tmp_path)
    text1, _, _, _ = _streamed(paths, 1, False, monkeypatch)
    monkeypatch.setattr(store, "IN_MEMORY", 50)
    text2, run2, _, _ = _streamed(paths, 2, False, monkeypatch)
    assert text1 == text2 == _text_as_before(run2, False)
    results = run2.results
    assert isinstance(results, store.ResultStore)
    every = list(results)
    for start in (0, 1, 49, 50, 51, len(every) - 1, len(every)):
        assert list(results.iter_from(start)) == every[start:]


def _cli(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["validate", *args])
    return result.exit_code, result.stdout


def _normalised(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name == "junit.xml":  # the only timing a report shows
        data = re.sub(rb' time="[0-9.]+"', b' time="-"', data)
    return data


def test_every_report_is_the_same_with_two_jobs_as_with_one_process(tmp_path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    paths = _inputs(inputs)
    outputs = {}
    for jobs in (1, 2):
        for quiet in ([], ["-q"]):
            code, out = _cli([*paths, "--fhir-version", "R4", "--jobs", str(jobs), *quiet,
                              "--reports-dir", str(tmp_path / f"r{jobs}")])  # fmt: skip
            assert code == 1
            outputs[(jobs, bool(quiet))] = out
        for fmt in ("json", "sarif", "junit", "operation-outcome", "gitlab", "github", "html"):
            code, out = _cli([*paths, "--fhir-version", "R4", "--jobs", str(jobs), "--format", fmt])
            assert code == 1
            outputs[(jobs, fmt)] = re.sub(r' time="[0-9.]+"', "", out)
    for key, out in outputs.items():
        if key[0] == 2:
            assert out == outputs[(1, key[1])], key
    reports = sorted(p.name for p in (tmp_path / "r1").iterdir())
    assert reports == sorted(r.file_name for r in REPORTERS.values() if r.file_name)
    for name in reports:
        assert _normalised(tmp_path / "r1" / name) == _normalised(tmp_path / "r2" / name), name
    run = Validator(fhir_version="R4").validate_paths(paths)
    assert outputs[(1, False)] == _text_as_before(run, False)
    assert outputs[(1, True)] == _text_as_before(run, True)


def test_a_worker_that_dies_mid_run_loses_nothing_of_the_streamed_text_and_keeps_its_order(
    tmp_path, monkeypatch
) -> None:
    paths = _inputs(tmp_path, waiting=False)
    real_validate = Pipeline.validate

    def validate(self, item, index=0):
        if isinstance(item.resource, dict) and item.resource.get("id") == "s600":
            os._exit(1)  # a worker killed in the middle of the second unit of a-bulk.ndjson
        return real_validate(self, item, index)

    monkeypatch.setattr(Pipeline, "validate", validate)
    code, out = _cli([*paths, "--fhir-version", "R4", "--jobs", "2"])
    run = Validator(fhir_version="R4").validate_paths(paths, jobs=2)  # the same crash, not streamed
    monkeypatch.undo()
    assert code == 3
    assert out == _text_as_before(run, False)
    # Every line of the bulk file is listed once, in order, but those of the unit that killed its
    # worker (lines 501 to 1000): one finding says so; every other file is there.
    bulk = [r.entry for r in run.results if r.source.endswith("a-bulk.ndjson")]
    assert bulk == [*range(1, CHUNK_LINES + 2), *range(2 * CHUNK_LINES + 1, 3 * CHUNK_LINES + 18)]
    died = [r for r in run.results if any("worker process" in i.message for i in r.issues)]
    assert [(Path(r.source).name, r.entry) for r in died] == [("a-bulk.ndjson", CHUNK_LINES + 1)]
    block = out.split("a-bulk.ndjson\n", 1)[1].split("\n\n", 1)[0]
    assert [int(n) for n in re.findall(r"\(entry (\d+)\)", block)] == bulk
    assert {Path(r.source).name for r in run.results} == {p.name for p in tmp_path.iterdir()}


def test_the_units_cut_from_an_ndjson_file_hold_its_lines_as_iterating_over_the_file_gives_them(
    monkeypatch,
) -> None:
    import io
    import random
    from itertools import islice

    from validator.run import parallel

    def by_iteration(data: bytes) -> list[tuple[int, int, list[bytes]]]:
        """The units as they were cut before: the file iterated line by line."""
        numbered = enumerate(io.BytesIO(data), start=1)
        out = []
        while chunk := list(islice(numbered, parallel.CHUNK_LINES)):
            out.append((chunk[0][0], len(chunk), [line for _, line in chunk]))
        return out

    rng = random.Random(7)
    for _ in range(2000):
        monkeypatch.setattr(parallel, "CHUNK_LINES", rng.choice([1, 2, 3, 5, 500]))
        monkeypatch.setattr(parallel, "_BLOCK", rng.choice([1, 2, 3, 7, 64, 1 << 20]))  # lines across blocks
        lines = rng.randint(0, 30)
        pieces = [rng.choice([b"", b"a", b"\r", b"{}" * rng.randint(0, 50), b"\xff"]) for _ in range(lines)]
        data = b"".join(p + rng.choice([b"\n", b"\r\n", b""]) for p in pieces)
        units = parallel._line_chunks(io.BytesIO(data))
        cut = [(first, count, parallel._lines(chunk)) for first, count, chunk in units]
        assert cut == by_iteration(data), data


def test_a_write_that_fails_or_a_result_that_cannot_be_rendered_holds_the_printing_and_the_run_goes_on(
    tmp_path, monkeypatch
) -> None:
    from validator.report import text as text_module

    paths = _inputs(tmp_path, waiting=False)
    real_result_text = text_module.result_text

    def result_text(result, fail_on, fails=None):
        if result.id == "s600":
            raise RuntimeError("a defect of the text report")
        return real_result_text(result, fail_on, fails)

    for jobs in (1, 2):
        for fixed in (False, True):
            monkeypatch.setattr(text_module, "result_text", result_text)  # in the workers too: forked after
            validator = Validator(fhir_version="R4")
            pieces: list[str] = []
            stream = TextStream(validator.fail_on, False, pieces.append)
            run = validator.validate_paths(paths, jobs=jobs, stream=stream)
            index = next(n for n, r in enumerate(run.results) if r.id == "s600")
            assert stream.held and stream.printed == index
            if not fixed:
                with pytest.raises(RuntimeError):  # where the text was printed before it streamed
                    stream.end(run)
            monkeypatch.undo()
            if fixed:  # the rest printed after the run: the same text, nothing lost
                stream.end(run)
                assert "".join(pieces) == _text_as_before(run, False)

    # Standard output closed while the run goes on: the run ends, and the text is printed after it
    # (here the pipe works again: nothing is lost; a closed one fails there, as it did).
    attempts: list[str] = []

    def write(text: str) -> None:
        attempts.append(text)
        if len(attempts) == 2:
            raise BrokenPipeError
        pieces.append(text)

    pieces.clear()
    validator = Validator(fhir_version="R4")
    stream = TextStream(validator.fail_on, False, write)
    run = validator.validate_paths(paths, jobs=2, stream=stream)
    assert stream.held and len(attempts) == 2
    stream.end(run)
    assert "".join(pieces) == _text_as_before(run, False)


def test_lines_escaped_at_once_for_the_terminal_are_the_lines_escaped_one_by_one() -> None:
    import random

    from validator.report.safe_text import terminal_lines

    alphabet = ["a", " ", "~", "é", "\u4e2d", "\U0001f600", "\n", "\r", "\t", "\x00", "\x1b", "\x7f", "\x85", "\x9f",
                "\xa0", "\u200e", "\u2028", "\u202e", "\u2066", "\udcff", "\ud800", "\ufeff"]  # fmt: skip
    rng = random.Random(3)
    for _ in range(20_000):
        lines = ["".join(rng.choices(alphabet, weights=[40, 20, 5, *([1] * 19)], k=rng.randint(0, 8)))
                 for _ in range(rng.randint(1, 5))]  # fmt: skip
        assert terminal_lines(lines) == "".join(terminal(line) + "\n" for line in lines), lines


def test_the_streamed_text_is_coloured_as_the_text_printed_after_the_run(tmp_path) -> None:
    from validator.report.text import colorize

    paths = _inputs(tmp_path, waiting=False)
    run = Validator(fhir_version="R4").validate_paths(paths)
    for jobs in ("1", "2"):
        for quiet in ([], ["-q"]):
            code, out = _cli([*paths, "--fhir-version", "R4", "--jobs", jobs, "--color", "always", *quiet])
            assert code == 1
            assert out == colorize(_text_as_before(run, bool(quiet)))
            assert "\x1b[1;31mFAIL\x1b[0m" in out
