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
from typing import TYPE_CHECKING

from validator.load.sources import (
    ResourceInput,
    is_ndjson_file,
    load_source,
    ndjson_lines,
    ndjson_size_problem,
    no_resource,
)
from validator.model import ResourceResult

if TYPE_CHECKING:
    from validator.api import Validator, _Pending

CHUNK_LINES = 500  # NDJSON lines per unit: large enough to make sending them cheap
IN_FLIGHT = 4  # units per worker queued at a time

Unit = tuple[str, int, list[bytes] | None]  # source, first line number, raw lines (None: the whole file)
Done = list[tuple[ResourceResult, "_Pending | None", list[tuple[str, dict]]]]

_WORKER: Validator | None = None


def parallel_available() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def _init(validator: Validator) -> None:
    global _WORKER
    _WORKER = validator


def _work(unit: Unit) -> Done:
    validator = _WORKER
    assert validator is not None, "worker not initialised"
    source, first, raw = unit
    items: Iterator[ResourceInput]
    if raw is None:
        items = load_source(source, validator.limits, validator.plan)
    else:
        items = ndjson_lines(source, enumerate(raw, start=first), validator.limits)
    return [(*validator._validate(item, 0), validator._remembered(item)) for item in items]


def _units(sources: list[str], validator: Validator) -> Iterator[Unit]:
    for source in sources:
        if not is_ndjson_file(source) or ndjson_size_problem(source, validator.limits) is not None:
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
    validator: Validator, sources: list[str], jobs: int, progress: Callable[[int], None] | None
) -> list[ResourceResult]:
    """Validate the sources with `jobs` processes, results in input order."""
    pairs: list[tuple[ResourceResult, _Pending | None]] = []
    index: dict[str, dict] = {}
    chunked = {"source": None, "found": 0}  # the NDJSON file being collected in chunks

    def end_of_chunks() -> None:
        # An NDJSON file with lines but no resource still gets its one finding.
        if chunked["source"] is not None and not chunked["found"]:
            collect([(validator._validate(no_resource(chunked["source"]), 0)[0], None, [])])
        chunked.update(source=None, found=0)

    def collect(done: Done) -> None:
        for result, waiting, remembered in done:
            if waiting is not None:
                waiting.index = len(pairs)
            pairs.append((result, waiting))
            for key, res in remembered:
                index.setdefault(key, res)
            if progress is not None:
                progress(len(pairs))

    def take(unit: Unit, future: Future[Done]) -> None:
        if unit[2] is None or unit[0] != chunked["source"]:
            end_of_chunks()
        done = future.result()
        if unit[2] is not None:
            chunked.update(source=unit[0], found=chunked["found"] + len(done))
        collect(done)

    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_init, initargs=(validator,)) as pool:
        queue: deque[tuple[Unit, Future[Done]]] = deque()
        for unit in _units(sources, validator):
            queue.append((unit, pool.submit(_work, unit)))
            while len(queue) >= jobs * IN_FLIGHT:
                take(*queue.popleft())
        while queue:
            take(*queue.popleft())
    end_of_chunks()
    return validator._finish(pairs, index)
