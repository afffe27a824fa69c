"""--jobs N: validating with N worker processes, results in the same order as with one.

The parent only cuts the work into units: a whole file, or a chunk of raw NDJSON lines (so a
large NDJSON file spreads over every worker). Workers read, parse and validate; they send back
results, the checks that wait for the whole run (target profiles, WADO-RS endpoints) and the
resources such checks may need. The parent runs those last checks, as a serial run does.
At most a few units per worker are in flight, so memory stays bounded on any input size.

Workers are forked: they start with the parent's compiled rule packs and need no start-up.
Where fork is not available, or stdin is among the inputs, the run is serial.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from itertools import islice

from validator.limits import Limits
from validator.load.sources import (
    ResourceInput,
    is_ndjson_file,
    load_source,
    ndjson_lines,
    ndjson_size_problem,
    no_resource,
)
from validator.model import ResourceResult
from validator.run.pipeline import Outcome, Pipeline

CHUNK_LINES = 500  # NDJSON lines per unit: large enough to make sending them cheap
IN_FLIGHT = 4  # units per worker queued at a time

Unit = tuple[str, int, list[bytes] | None]  # source, first line number, raw lines (None: the whole file)
Done = list[Outcome]

_WORKER: Pipeline | None = None


def parallel_available() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def _init(pipeline: Pipeline) -> None:
    global _WORKER
    _WORKER = pipeline


def _work(unit: Unit) -> Done:
    pipeline = _WORKER
    assert pipeline is not None, "worker not initialised"
    source, first, raw = unit
    items: Iterator[ResourceInput]
    if raw is None:
        items = load_source(source, pipeline.limits, pipeline.plan)
    else:
        items = ndjson_lines(source, enumerate(raw, start=first), pipeline.limits)
    return [pipeline.validate(item) for item in items]


def _units(sources: list[str], limits: Limits) -> Iterator[Unit]:
    for source in sources:
        if not is_ndjson_file(source) or ndjson_size_problem(source, limits) is not None:
            yield source, 0, None  # the worker reads the whole input (and reports why it cannot)
            continue
        chunks = 0
        try:
            with open(source, "rb") as handle:  # read line by line
                numbered = enumerate(handle, start=1)
                while chunk := list(islice(numbered, CHUNK_LINES)):
                    chunks += 1
                    yield source, chunk[0][0], [line for _, line in chunk]
        except OSError:
            chunks = 0
        if not chunks:
            yield source, 0, None  # empty or unreadable: the worker reports it


def run_parallel(
    pipeline: Pipeline, sources: list[str], jobs: int, progress: Callable[[int], None] | None
) -> list[ResourceResult]:
    """Validate the sources with `jobs` processes, results in input order."""
    outcomes: list[Outcome] = []
    chunked = {"source": None, "found": 0}  # the NDJSON file being collected in chunks

    def end_of_chunks() -> None:
        # An NDJSON file with lines but no resource still gets its one finding.
        if chunked["source"] is not None and not chunked["found"]:
            collect([pipeline.validate(no_resource(chunked["source"]))])
        chunked.update(source=None, found=0)

    def collect(done: Done) -> None:
        for outcome in done:
            if outcome.waiting is not None:
                outcome.waiting.index = len(outcomes)
            outcomes.append(outcome)
            if progress is not None:
                progress(len(outcomes))

    def take(unit: Unit, future: Future[Done]) -> None:
        if unit[2] is None or unit[0] != chunked["source"]:
            end_of_chunks()
        done = future.result()
        if unit[2] is not None:
            chunked.update(source=unit[0], found=chunked["found"] + len(done))
        collect(done)

    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_init, initargs=(pipeline,)) as pool:
        queue: deque[tuple[Unit, Future[Done]]] = deque()
        for unit in _units(sources, pipeline.limits):
            queue.append((unit, pool.submit(_work, unit)))
            while len(queue) >= jobs * IN_FLIGHT:
                take(*queue.popleft())
        while queue:
            take(*queue.popleft())
    end_of_chunks()
    return pipeline.finish(outcomes)
