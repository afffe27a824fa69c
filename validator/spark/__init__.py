"""Entry point: the validator on Apache Spark, for bulk NDJSON exports (the `spark` extra).

`validate_dataframe` validates a DataFrame of numbered NDJSON lines with the same engine as
`validate` (engine.py); `read_ndjson` makes one from files (lines.py); `run_spark` is the
`imaging-validator spark` command (command.py). Importing this package does not import PySpark:
the modules that need it import it where they use it.
"""

from __future__ import annotations

from validator.spark.engine import validate_dataframe
from validator.spark.lines import InputFile, read_ndjson
from validator.spark.options import SparkOptions

__all__ = ["InputFile", "SparkOptions", "read_ndjson", "validate_dataframe"]
