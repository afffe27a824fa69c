"""--jobs N: validating with N worker processes, results in the same order as with one.

The parent only cuts the work into units: a whole file, or a chunk of raw NDJSON lines (so a
large NDJSON file spreads over every worker), read in blocks and sent as one piece of bytes.
Workers read (whole files), parse and validate; they send back results (and, when the text
report streams, each result's lines: report/text.py TextStream), the checks that wait for the
whole run (target profiles, WADO-RS endpoints) and the resources such checks may need. The parent
hands the results on in order as they come, and runs those last checks, as a serial run does.
At most a few units per worker are in flight, so memory stays bounded on any input size.

Workers are forked: they start with the parent's compiled rule packs and need no start-up.
Where fork is not available, or stdin is among the inputs, the run is serial.

A worker that dies (killed, out of memory, a crash in C code) breaks the whole pool: the pool is
restarted, the units that were in flight are run again one at a time, and a unit that kills its
worker again is a fatal finding for its files; the run goes on. An interrupted run (SIGINT,
SIGTERM, any exception) terminates every worker before it ends: none is left behind.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import BinaryIO

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
from validator.run.pipeline import Batch, Collector, Outcome, Pipeline, ResultStream
from validator.run.store import ResultStore

CHUNK_LINES = 500  # NDJSON lines per unit: large enough to make sending them cheap
IN_FLIGHT = 4  # units per worker queued at a time

# source, first line number, number of lines, their bytes (None: the whole file)
Unit = tuple[str, int, int, bytes | None]
Done = list[Outcome] | Batch

_WORKER: Pipeline | None = None
_RENDER: Callable[[ResourceResult], object] | None = None  # the stream's render, when the run streams a report


def parallel_available() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


_PARENT = 0  # the process that starts the workers (set before they are forked)


def _die_with_parent() -> None:
    """A worker whose parent is killed outright (SIGKILL, the OOM killer) would live on with its
    unit: on Linux the kernel sends it SIGTERM when the parent dies (PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # no libc to ask: the parent's own stop still applies
        return
    if os.getppid() != _PARENT:  # the parent died before the request was made
        os._exit(1)


def _init(pipeline: Pipeline, render: Callable[[ResourceResult], object] | None = None) -> None:
    global _WORKER, _RENDER
    _WORKER, _RENDER = pipeline, render
    _die_with_parent()
    # The parent decides how a run ends: Ctrl-C reaches the whole process group, and the parent
    # terminates its workers (SIGTERM, at its default: the worker ends at once) when it stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _work(unit: Unit) -> Batch:
    pipeline = _WORKER
    assert pipeline is not None, "worker not initialised"
    source, first, _, data = unit
    items: Iterator[ResourceInput]
    if data is None:
        items = load_source(source, pipeline.limits, pipeline.plan)
    else:
        items = ndjson_lines(source, enumerate(_lines(data), start=first), pipeline.limits)
    # Guarded, as a serial run (run/faults.py); pickled here, so the parent does not have to, and
    # rendered for the streamed report here, so the parent does not read them back to print them.
    return Batch.of(pipeline.outcomes(source, items, 0), _RENDER)


def _died(pipeline: Pipeline, unit: Unit) -> Done:
    """The finding for a unit whose worker died with it, twice (so not by another unit's doing)."""
    source, first, count, data = unit
    if data is None:
        return [pipeline.internal_error(source, None, "the worker process validating this file died")]
    last = first + count - 1
    return [pipeline.internal_error(source, first, f"the worker process validating lines {first} to {last} died")]


class _Workers:
    """The pool of worker processes, restarted when a worker dies and terminated when the run
    stops early."""

    def __init__(self, pipeline: Pipeline, jobs: int, render: Callable[[ResourceResult], object] | None) -> None:
        self.pipeline = pipeline
        self.jobs = jobs
        self.render = render
        self.pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        global _PARENT
        _PARENT = os.getpid()
        context = multiprocessing.get_context("fork")
        # Forked: the pipeline and the stream's render are the parent's own objects, not pickled.
        return ProcessPoolExecutor(self.jobs, mp_context=context, initializer=_init,
                                   initargs=(self.pipeline, self.render))  # fmt: skip

    def restart(self) -> None:
        self.stop()
        self.pool = self._start()

    def submit(self, unit: Unit) -> Future[Done]:
        try:
            return self.pool.submit(_work, unit)
        except BrokenProcessPool:  # a worker died since the last unit was given out
            self.restart()
            return self.pool.submit(_work, unit)

    def alone(self, unit: Unit) -> Done:
        """Run one unit with no other in flight in a fresh pool: if its worker dies, it did."""
        self.restart()
        try:
            return self.pool.submit(_work, unit).result()
        except BrokenProcessPool:
            return _died(self.pipeline, unit)

    def stop(self) -> None:
        """End every worker now. The pool's processes are not public; terminating them is the one
        way to stop a worker in the middle of a unit (shutdown only waits for it)."""
        processes = list((getattr(self.pool, "_processes", None) or {}).values())
        for process in processes:
            if process.is_alive():
                process.terminate()
        self.pool.shutdown(wait=True, cancel_futures=True)


# An NDJSON file smaller than this is one unit or two: validated in this process, it is done
# before a pool of workers would have started.
_SMALL_NDJSON = 256 << 10


def worth_parallel(sources: list[str]) -> bool:
    """Whether the sources are more than one unit of work: one JSON file (or a small NDJSON one)
    is validated faster in this process than by starting workers for it."""
    if len(sources) > 1:
        return True
    if not sources or not is_ndjson_file(sources[0]):
        return False
    try:
        return os.path.getsize(sources[0]) > _SMALL_NDJSON
    except OSError:
        return False


def _units(sources: list[str], limits: Limits) -> Iterator[Unit]:
    for source in sources:
        if not is_ndjson_file(source) or ndjson_size_problem(source, limits) is not None:
            yield source, 0, 0, None  # the worker reads the whole input (and reports why it cannot)
            continue
        chunks = 0
        try:
            with open(source, "rb") as handle:
                for first, count, data in _line_chunks(handle):
                    chunks += 1
                    yield source, first, count, data
        except OSError:
            chunks = 0
        if not chunks:
            yield source, 0, 0, None  # empty or unreadable: the worker reports it


_BLOCK = 1 << 20  # bytes read at a time when cutting an NDJSON file into units


def _line_chunks(handle: BinaryIO) -> Iterator[tuple[int, int, bytes]]:
    """The lines of a file CHUNK_LINES at a time, as iterating over the file gives them (each
    ends at a newline, the last one may not): (first line number, number of lines, their bytes).
    Read in blocks, and newlines found by bytes.find: the parent spends next to nothing per line."""
    buffer = bytearray()
    first, eof = 1, False
    end = count = searched = 0  # the end of the lines counted, their number, where to look on
    while True:
        if count < CHUNK_LINES:
            newline = buffer.find(b"\n", searched)
            if newline >= 0:
                end = searched = newline + 1
                count += 1
                continue
            searched = len(buffer)  # a long line is searched once, not again at every block
            if not eof:
                block = handle.read(_BLOCK)
                if block:
                    buffer += block
                    continue
                eof = True
            if end < len(buffer):  # the last line, without a newline
                end = searched = len(buffer)
                count += 1
        if not count:
            return
        yield first, count, bytes(buffer[:end])
        del buffer[:end]
        first += count
        end = count = searched = 0


def _lines(data: bytes) -> list[bytes]:
    """The lines of a unit, each with its newline (the last line of a file may have none)."""
    lines = data.split(b"\n")
    last = lines.pop()
    raw = [line + b"\n" for line in lines]
    if last:
        raw.append(last)
    return raw


def run_parallel(
    pipeline: Pipeline,
    sources: list[str],
    jobs: int,
    progress: Callable[[int], None] | None,
    prefix: Iterable[ResourceResult] = (),
    stream: ResultStream | None = None,
) -> ResultStore:
    """Validate the sources with `jobs` processes, results in input order (after `prefix`), each
    handed to `stream` as it is collected (the workers render it for the stream)."""
    outcomes = Collector(prefix, stream)
    chunked = {"source": None, "found": 0}  # the NDJSON file being collected in chunks

    def end_of_chunks() -> None:
        # An NDJSON file with lines but no resource still gets its one finding.
        if chunked["source"] is not None and not chunked["found"]:
            collect([pipeline.validate_guarded(no_resource(chunked["source"]))])
        chunked.update(source=None, found=0)

    def collect(done: Done) -> None:
        before = len(outcomes)
        if isinstance(done, Batch):
            outcomes.add_batch(done)
        else:
            for outcome in done:
                outcomes.add(outcome)
        if progress is not None:
            for count in range(before + 1, len(outcomes) + 1):  # once per resource, as a serial run
                progress(count)

    def take(unit: Unit, done: Done) -> None:
        if unit[3] is None or unit[0] != chunked["source"]:
            end_of_chunks()
        if unit[3] is not None:
            chunked.update(source=unit[0], found=chunked["found"] + len(done))
        collect(done)

    def take_next() -> None:
        unit, future = queue.popleft()
        try:
            done = future.result()
        except BrokenProcessPool:
            # A worker died and took the pool with it: every unit not finished is run again,
            # one at a time, so the one that kills its worker is found and only it is lost.
            lost = [(unit, future), *queue]
            queue.clear()
            for u, f in lost:
                finished = f.done() and not f.cancelled() and f.exception() is None
                take(u, f.result() if finished else workers.alone(u))
            return
        take(unit, done)

    workers = _Workers(pipeline, jobs, stream.render if stream is not None else None)
    queue: deque[tuple[Unit, Future[Done]]] = deque()
    try:
        for unit in _units(sources, pipeline.limits):
            queue.append((unit, workers.submit(unit)))
            while len(queue) >= jobs * IN_FLIGHT:
                take_next()
        while queue:
            take_next()
    finally:  # also on SIGINT / SIGTERM (raised as exceptions by the command line): no orphans
        workers.stop()
    end_of_chunks()
    return pipeline.finish(outcomes)
