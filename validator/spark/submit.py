"""The script `spark-submit` runs: the `imaging-validator spark` command with the submitted
arguments, on the cluster spark-submit names.

    spark-submit --master yarn "$(python -c 'import validator.spark.submit as s; print(s.__file__)')" \\
        hdfs:///exports/ --output validation/ --results hdfs:///validation/results.parquet
"""

from __future__ import annotations

import sys


def main() -> None:
    from validator.cli import main as cli

    sys.argv = ["imaging-validator", "spark", *sys.argv[1:]]
    cli()


if __name__ == "__main__":
    main()
