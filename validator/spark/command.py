"""`imaging-validator spark`: NDJSON files validated on Spark, results written as Parquet, with the
summary and the JSON report of `validate`.

Local paths (files, folders, globs) are found as `validate` finds them and named as it names them;
a URI with a scheme (hdfs://, s3a://, file:) is listed by Spark's own file system layer, so a
cluster reads what it can reach. Whole-file problems (too large, unreadable) are found by the
driver and reported as `validate` reports them, without reading the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from validator.load.sources import NDJSON_SUFFIXES, LoadProblem, ResourceInput, ndjson_size_problem
from validator.model import ResourceResult
from validator.rule_ids import UNREADABLE
from validator.spark.aggregate import in_run_order, summarize
from validator.spark.engine import _validate
from validator.spark.lines import BOM, InputFile, numbered_lines
from validator.spark.options import SparkOptions

RESULTS = "results.parquet"  # in the output folder, unless --results names another place
# What the Spark path does not do, said in its summary (README: Spark).
NOT_DONE = ("only NDJSON files are read (validate other files with `imaging-validator validate`)",)


class SparkInputError(ValueError):
    """An input the Spark path cannot take (usage error): the message names it."""


@dataclass
class SparkRun:
    summary: dict
    results: str  # where the Parquet table is
    report: Path | None


def is_uri(arg: str) -> bool:
    return "://" in arg or arg.startswith("file:")


def find_inputs(spark, paths: Sequence[str], options: SparkOptions
                ) -> tuple[list[str], list[InputFile], list[ResourceResult]]:  # fmt: skip
    """Every input's name in `validate`'s order and spelling, the NDJSON files to read, and the
    findings of those that cannot be read at all. Raises SparkInputError for a file that is not
    NDJSON."""
    validator = options.validator()
    files: list[InputFile] = []
    problems: list[ResourceResult] = []
    local = [p for p in paths if not is_uri(p)]
    order: list[str] = []  # every input, in the order found
    if local:
        from validator.load.sources import InputError

        try:
            found = validator.discover(local).files
        except InputError as exc:
            raise SparkInputError(str(exc)) from None
        order.extend(found)
        for source in found:
            if source == "-" or not source.lower().endswith(NDJSON_SUFFIXES):
                raise SparkInputError(f"{source}: not an NDJSON file (.ndjson, .jsonl); the spark command reads NDJSON "
                                      "only: validate it with `imaging-validator validate`")  # fmt: skip
            item = ndjson_size_problem(source, validator.limits)
            if item is None:
                try:
                    with open(source, "rb") as handle:
                        bom = handle.read(3) == BOM
                except OSError as exc:  # as validate says it (load/sources.py _ndjson_file)
                    problem = LoadProblem(UNREADABLE, f"cannot read {source}: {exc.strerror or exc}")
                    item = ResourceInput(source, None, None, (), None, problem=problem)
            if item is not None:
                problems.append(validator.pipeline.validate_guarded(item).result)
                continue
            files.append(InputFile(source, "file:" + os.path.abspath(source), bom))
    for uri in (p for p in paths if is_uri(p)):
        files.extend(_listed(spark, uri, validator.limits.max_bytes, problems, validator, order))
    return list(dict.fromkeys(order)), files, problems


def _listed(spark, uri: str, max_bytes: int, problems: list[ResourceResult], validator,
            order: list[str]) -> list[InputFile]:  # fmt: skip
    """The NDJSON files a URI names (a file, a folder listed recursively, or a glob), through
    Hadoop's FileSystem on the driver's JVM."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    pattern = jvm.org.apache.hadoop.fs.Path(uri)
    fs = pattern.getFileSystem(conf)
    statuses = fs.globStatus(pattern) or []
    if not statuses:
        raise SparkInputError(f"{uri}: no such file or directory")
    found = []
    for status in statuses:
        if status.isDirectory():
            listing = fs.listFiles(status.getPath(), True)
            while listing.hasNext():
                found.append(listing.next())
        else:
            found.append(status)
    out = []
    for status in sorted(found, key=lambda s: s.getPath().toString()):
        name = status.getPath().toString()
        if not name.lower().endswith(NDJSON_SUFFIXES):
            if status in statuses:
                raise SparkInputError(f"{name}: not an NDJSON file (.ndjson, .jsonl)")
            continue
        order.append(name)
        if status.getLen() > max_bytes:
            item = ndjson_size_problem(name, validator.limits)
            if item is None:  # the size check of load/sources.py reads local files; say it as it does
                message = f"{name} is larger than the limit of {max_bytes} bytes (--max-bytes)"
                from validator.rule_ids import TOO_LARGE

                item = ResourceInput(name, None, None, (), None, problem=LoadProblem(TOO_LARGE, message))
            problems.append(validator.pipeline.validate_guarded(item).result)
            continue
        stream = fs.open(status.getPath())
        try:
            head = bytes(stream.read() & 0xFF for _ in range(3))
        finally:
            stream.close()
        out.append(InputFile(name, name, head == BOM))
    return out


def run_spark(spark, paths: Sequence[str], output: Path, options: SparkOptions, results: str | None = None,
              partitions: int | None = None) -> SparkRun:  # fmt: skip
    """Validate, write the Parquet table, then summary.json and report.json into `output`."""
    sources, files, problems = find_inputs(spark, paths, options)
    lines = numbered_lines(spark, files)
    if partitions:
        lines = lines.repartition(partitions)  # line numbers travel with the lines
    table, stage = _validate(lines, options, sources, problems)
    where = results or (output / RESULTS).resolve().as_uri()
    table.write.mode("overwrite").parquet(where)
    stage.unpersist()  # the cached first pass is in the table now
    written = spark.read.parquet(where)
    summary = summarize(written, options.fail_on)
    output.mkdir(parents=True, exist_ok=True)
    write_reports(output, options.validator(), in_run_order(written))
    doc = {**summary, "results": where, "notDone": list(NOT_DONE)}
    (output / "summary.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return SparkRun(summary, where, output / "report.json")


def write_reports(output: Path, validator, results: Iterable[ResourceResult]) -> None:
    """Every report `validate --reports-dir` writes, from the results in run order: they are read
    once from Spark into a result store (on disk past a few thousand), which the reporters read,
    so the driver never holds the run."""
    from validator.report import REPORTERS
    from validator.report.files import write_atomic
    from validator.run.store import ResultStore

    store = ResultStore(results)
    try:
        run = validator.run(store)
        for reporter in REPORTERS.values():
            if reporter.file_name is not None:
                write_atomic(output / reporter.file_name, reporter.file_chunks(run))
    finally:
        store.close()
