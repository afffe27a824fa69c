"""Validating a DataFrame of numbered NDJSON lines with the same engine as `validate`.

Pass 1 (mapPartitions): each partition builds the Validator of the run's options once (options.py)
and sends its lines through the same functions as a `--jobs` worker: load.sources.ndjson_lines,
then Pipeline.outcomes, each resource under the same guard. What it yields per resource is its
result row, plus what the checks that need the whole run (evaluate/cross.py) left: the waiting
checks of this resource, the keys they look for, and what this resource may tell other ones.

Pass 2, for those checks only (target profiles of IHE IMR, WADO-RS endpoints of the DICOM pack):
the facts that resources left are a small keyed dataset (Endpoints and profile targets); per key,
the first in run order is kept, as a serial run's index does; they are joined to the waiting
checks that name their key, and Pipeline.finish runs on each waiting resource with just those
facts. So every check of `validate` is made, on any number of partitions.

Memory per executor is that of the CLI for one resource at a time; the driver collects only one
row per file (which files gave no resource) and one per file split (line numbering).
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Sequence
from itertools import groupby

from validator.evaluate.cross import Waiting
from validator.load.sources import ndjson_lines, no_resource
from validator.model import ResourceResult
from validator.run.pipeline import Outcome
from validator.run.waivers import drop
from validator.spark.options import SparkOptions
from validator.spark.rows import RESULT_COLUMNS, RESULT_SCHEMA, result_row, row_result

# The run-order of a row: its file's place among the inputs (then its line).
STAGE_SCHEMA = (f"`file_index` int, {RESULT_SCHEMA}, `waiting` binary, `needed` array<string>, "
                "`remembered` array<struct<key:string,facts:binary>>")  # fmt: skip


def validate_dataframe(df, options: SparkOptions | None = None, sources: Sequence[str] | None = None):
    """Validate NDJSON lines: `df` has columns `source` (the file's name), `line` (its number in
    the file, from 1) and `value` (the line, binary or string); lines.read_ndjson makes one from
    files. The result has a row per resource: `file_index` (the file's place in `sources`, else
    among the names sorted) and the columns of rows.RESULT_FIELDS; run order is file_index, then
    line (nulls first). `sources` also names files that hold no line at all (empty), which get the finding
    `validate` gives them. The intermediate rows are cached
    (DataFrame.persist) until the session ends or the cache is cleared."""
    return _validate(df, options or SparkOptions(), sources, [])[0]


def _validate(df, options: SparkOptions, sources: Sequence[str] | None, file_results: list[ResourceResult]):
    """As validate_dataframe (`df` may also be an RDD of (source, line, value) tuples, with
    `sources`), and the cached first pass (to unpersist once the results are
    written); `file_results` are findings about whole files made by the driver (too large,
    unreadable), placed in run order among the others."""
    from pyspark import StorageLevel
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = df.sparkSession if hasattr(df, "rdd") else SparkSession.getActiveSession()
    options.validator()  # a usage error (unknown profile, broken pack) is raised here, not in a task
    if sources is None:
        sources = sorted(r[0] for r in df.select("source").distinct().collect())
    order = {s: n for n, s in enumerate(sources)}
    rows = _validate_lines(options, order)
    if hasattr(df, "rdd"):  # a DataFrame; else already an RDD of (source, line, value) tuples
        df = df.select("source", "line", F.col("value").cast("binary").alias("value")).rdd
    # Rows are made by rows.result_row to the schema: Spark need not check each one again.
    stage = spark.createDataFrame(df.mapPartitions(rows), STAGE_SCHEMA, verifySchema=False)
    stage = stage.persist(StorageLevel.MEMORY_AND_DISK)

    # One job runs pass 1 (into the cache) and brings back a row per file: whether it gave any
    # result (an empty file, or one of blank lines, gave none) and whether any check waits.
    per_file = stage.groupBy("source").agg(F.max(F.col("waiting").isNotNull()).alias("waits")).collect()
    present = {r[0] for r in per_file}
    columns = ["file_index", *RESULT_COLUMNS]
    done = stage.filter(F.col("waiting").isNull()).select(*columns)
    if any(r[1] for r in per_file):
        done = done.unionByName(_finish_waiting(stage, options).select(*columns))
    validator = options.validator()
    extra = [*file_results,
             *(_waived(validator.pipeline.validate_guarded(no_resource(s)).result, validator)
               for s in sources if s not in present and s not in {r.source for r in file_results})]  # fmt: skip
    if extra:
        rows = [(order.get(r.source, -1), *result_row(r, options.fail_on)) for r in extra]
        done = done.unionByName(spark.createDataFrame(rows, f"`file_index` int, {RESULT_SCHEMA}"))
    return done, stage  # not sorted here: a global sort would run pass 2 twice (once to sample it)


def _validate_lines(options: SparkOptions, order: dict[str, int]):
    def run(rows: Iterator) -> Iterator[tuple]:
        validator = options.validator()  # once per Python worker, for every partition it runs
        pipeline = validator.pipeline
        validator.profile_set  # noqa: B018 - as Validator._run: target checks need the profiles first
        pipeline.start()
        limits = validator.limits
        for source, group in groupby(rows, key=lambda r: r[0]):
            numbered = ((line, bytes(value)) for _, line, value in group)
            # The same reading and the same guard as a --jobs worker given a chunk of lines.
            for outcome in pipeline.outcomes(source, ndjson_lines(source, numbered, limits), 0):
                yield _stage_row(order.get(source, -1), outcome, validator)

    return run


def _stage_row(file_index: int, outcome: Outcome, validator) -> tuple:
    result = _waived(outcome.result, validator)
    waiting = outcome.waiting
    needed = None
    if waiting is not None:
        refs = [e.reference for e in waiting.endpoints] + [t.reference for t in waiting.targets]
        # the keys cross.lookup tries: the reference, and the Type/id it ends with
        needed = sorted({k for ref in refs for k in (ref, "/".join(ref.split("/")[-2:]))})
    remembered = [(key, pickle.dumps(facts)) for key, facts in outcome.remembered] or None
    return (file_index, *result_row(result, validator.fail_on),
            pickle.dumps(waiting) if waiting is not None else None, needed, remembered)  # fmt: skip


def _waived(result: ResourceResult, validator) -> ResourceResult:
    """The result less the findings of rules switched off (--severity RULE=off), as Validator.run
    leaves them out. Per result, so applying it before and after the end-of-run checks is the same."""
    return next(iter(drop([result], validator.off, (), str)))


def _finish_waiting(stage, options: SparkOptions):
    """The waiting resources, finished against the facts their references name."""
    from pyspark.sql import functions as F

    facts = (stage.filter(F.col("remembered").isNotNull())
             .select("file_index", "line", F.explode("remembered").alias("m"))
             .select(F.col("m.key").alias("key"), F.struct("file_index", "line").alias("at"),
                     F.col("m.facts").alias("facts")))  # fmt: skip
    # One resource per key, the first in run order (Pipeline.finish: index.setdefault).
    index = facts.groupBy("key").agg(F.min_by("facts", "at").alias("facts"))
    waiting = stage.filter(F.col("waiting").isNotNull())
    found = (waiting.select("file_index", "source", "line", F.explode("needed").alias("key"))
             .join(index, "key")
             .groupBy("file_index", "source", "line")
             .agg(F.collect_list(F.struct("key", "facts")).alias("found")))  # fmt: skip
    joined = waiting.join(found, ["file_index", "source", "line"], "left").select(
        "file_index", *RESULT_COLUMNS, "waiting", "found")
    finished = joined.rdd.mapPartitions(_finish(options))
    return stage.sparkSession.createDataFrame(finished, f"`file_index` int, {RESULT_SCHEMA}", verifySchema=False)


def _finish(options: SparkOptions):
    def run(rows: Iterator) -> Iterator[tuple]:
        validator = options.validator()
        for row in rows:
            values = tuple(row)
            file_index, result_values, blob, found = values[0], values[1:-2], values[-2], values[-1]
            waiting: Waiting = pickle.loads(blob)
            waiting.index = 0
            remembered = [(key, pickle.loads(facts)) for key, facts in found or ()]
            outcome = Outcome(row_result(result_values), waiting, remembered)
            result = validator.pipeline.finish([outcome])[0]
            result = _waived(result, validator)
            yield (file_index, *result_row(result, validator.fail_on))

    return run
