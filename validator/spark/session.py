"""The SparkSession a run uses: the one already running (spark-submit, a notebook), else a local
one made for the run."""

from __future__ import annotations

import os
import sys


def spark_session(master: str | None = None, partitions: int = 8):
    """The active session when there is one and no master is asked for; the cluster's when run by
    spark-submit (which sets spark.master); else a local session
    (`local[*]` by default) with the web UI off and few shuffle partitions, since the shuffles of a
    run (the cross-resource pass, the ordering of results) move small rows."""
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    if master is None and SparkConf().contains("spark.master"):
        return SparkSession.builder.appName("imaging-validator").getOrCreate()  # spark-submit chose the cluster
    # Python workers started by a local session run this interpreter, with this installation of
    # the validator (Spark would otherwise start whichever `python3` comes first on PATH).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return (SparkSession.builder.master(master or "local[*]").appName("imaging-validator")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", str(partitions))
            .getOrCreate())  # fmt: skip
