"""Stage 5, run: many resources in, a RunResult out.

pipeline.py takes each loaded resource through select and evaluate, stamps every finding with its
FHIRPath expression, source line and column and the configured severity (a ResourceResult), and
at the end of the run performs the checks that needed the other inputs (evaluate/cross.py).
parallel.py does the same with --jobs worker processes, which call the same public functions.
"""
