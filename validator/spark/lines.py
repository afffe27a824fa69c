"""NDJSON files as a DataFrame of numbered raw lines: (source, line, value as bytes).

Spark's text source splits large files among tasks but does not number lines, drops a UTF-8 byte
order mark, and turns bytes that are not UTF-8 into replacement characters when a line becomes a
Python string. So lines are read as binary (the bytes as stored, so bad UTF-8 is reported as the
CLI reports it), split on "\\n" only (as Python reads a file, so a stray CR stays in its line), and
numbered in two steps: a count of lines per file split (one small row per split, collected), then
each split numbers its lines from where the earlier splits of its file ended. A byte order mark
is looked for by the driver (three bytes per file) and put back on line 1.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

LINE_SCHEMA = "`source` string, `line` bigint, `value` binary"
BOM = b"\xef\xbb\xbf"
_GLOB = str.maketrans({c: f"\\{c}" for c in "\\[]{}*?"})


@dataclass(frozen=True)
class InputFile:
    """One NDJSON file: its name in results (as `validate` names it), where Spark reads it, and
    whether it starts with a byte order mark."""

    source: str
    uri: str  # file:/abs/path, hdfs://..., s3a://...
    bom: bool = False


def same_file(uri: str, encoded: bool = False) -> str:
    """A file's URI in one spelling (`file:` with one slash or three): Spark reports the paths it
    read percent-encoded (`encoded`), InputFile.uri is as the file is named."""
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}{unquote(parts.path) if encoded else parts.path}"


def read_ndjson(spark, files: Sequence[InputFile]):
    """The numbered lines of the files, as a DataFrame with LINE_SCHEMA. Blank lines are kept (the
    validator skips them) so that numbers stay those of the file."""
    return spark.createDataFrame(numbered_lines(spark, files), LINE_SCHEMA)


def numbered_lines(spark, files: Sequence[InputFile]):
    """As read_ndjson, as an RDD of (source, line, value) tuples: the command validates it in the
    same Python worker that numbers it, without a round trip through the JVM in between."""
    from pyspark.sql import functions as F

    if not files:
        return spark.sparkContext.emptyRDD()
    # Escaped: Spark reads each path as a glob, and a file name may hold [ ] { } * ?
    raw = (spark.read.option("lineSep", "\n").text([f.uri.translate(_GLOB) for f in files])
           .select(F.col("_metadata.file_path").alias("path"), F.col("_metadata.file_block_start").alias("block"),
                   F.col("value").cast("binary").alias("value")))  # fmt: skip
    first = _first_lines(raw.groupBy("path", "block").count().collect())
    by_uri = {same_file(f.uri): f for f in files}

    def number(rows: Iterator) -> Iterator[tuple]:
        current, line, file = None, 0, None
        for path, block, value in rows:
            if (path, block) != current:  # a partition may hold several splits, each read in order
                current = (path, block)
                line = first[(same_file(path, encoded=True), block)]
                file = by_uri[same_file(path, encoded=True)]
            line += 1
            yield file.source, line, (BOM + value if line == 1 and file.bom else value)

    return raw.rdd.mapPartitions(number)


def _first_lines(counts) -> dict[tuple[str, int], int]:
    """(file, split start) -> the number of lines in the file before that split."""
    first: dict[tuple[str, int], int] = {}
    seen: dict[str, int] = {}
    for path, block, n in sorted((same_file(p, encoded=True), b, n) for p, b, n in counts):
        first[(path, block)] = seen.get(path, 0)
        seen[path] = seen.get(path, 0) + n
    return first
