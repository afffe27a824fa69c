"""Benchmark: the same NDJSON file validated by `imaging-validator spark --master local[2]` and by
`validate --jobs 2` (wall time, each in a fresh process; Spark's is given with and without the
start-up of its session).

    make bench-spark                   # or: .venv/bin/python bench/spark_vs_jobs.py [--ndjson 20000]

Needs the spark extra and Java 17. Not part of the unit tests.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmark import ndjson_stream, study

SPARK_RUN = (
    "import sys, time; from pathlib import Path;"
    "from validator.spark.command import run_spark; from validator.spark.options import SparkOptions;"
    "from validator.spark.session import spark_session;"
    "t = time.perf_counter(); spark = spark_session(sys.argv[3]); spark.sparkContext.setLogLevel('ERROR');"
    "up = time.perf_counter() - t;"
    "run = run_spark(spark, [sys.argv[1]], Path(sys.argv[2]), SparkOptions(fhir_version='R4'));"
    "print(up, time.perf_counter() - t, run.summary['resources'])"
)


def spark_stream(path: Path, output: Path, master: str) -> tuple[float, float, int]:
    """(session start-up, total wall seconds, resources) of a Spark run in a fresh process."""
    out = subprocess.run([sys.executable, "-c", SPARK_RUN, str(path), str(output), master],
                         capture_output=True, text=True, timeout=7200)  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"Spark run failed: {out.stderr[-1500:]}")
    up, total, count = out.stdout.split()[-3:]
    return float(up), float(total), int(count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ndjson", type=int, default=20_000, help="small studies in the NDJSON file")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20261126)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="imaging-validator-bench-spark-"))
    try:
        stream = folder / "stream.ndjson"
        with stream.open("w") as handle:
            for _ in range(args.ndjson):
                handle.write(json.dumps(study(rng, 2, 5)) + "\n")
        size = stream.stat().st_size / 1e6
        jobs, _ = ndjson_stream(stream, args.jobs)
        up, total, count = spark_stream(stream, folder / "out", args.master)
        assert count == args.ndjson, count
        print(f"NDJSON of {args.ndjson:,} small studies ({size:.1f} MB): --jobs {args.jobs} {jobs:.1f} s "
              f"({args.ndjson / jobs:,.0f}/s); spark {args.master} {total:.1f} s ({args.ndjson / total:,.0f}/s), "
              f"of which session start-up {up:.1f} s ({args.ndjson / (total - up):,.0f}/s without it)")  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
