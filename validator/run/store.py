"""The results of a run, in run order, with memory that does not grow with the run.

A run of a bulk export has hundreds of thousands of resources; keeping each one's result in
memory until the reports are written made memory grow with the file (about 600 bytes a line).
The store keeps the first results in memory and writes the rest, pickled, to an anonymous
temporary file (unlinked at once, so nothing is left behind even if the process is killed), and
reads them back one at a time when a report iterates. The summary's counts are kept as results
arrive (model.Tally), so counting a run never reads it back.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, overload

from validator.model import ResourceResult, Tally

IN_MEMORY = 5_000  # results kept in memory before the rest go to disk (a few MB)
_READ_BLOCK = 1 << 20  # bytes read at a time when iterating over the spooled results


class ResultStore(Sequence[ResourceResult]):
    def __init__(self, results: Iterable[ResourceResult] = (), in_memory: int | None = None) -> None:
        self.tally = Tally()
        self._in_memory = IN_MEMORY if in_memory is None else in_memory
        # Kept in memory; a result a --jobs worker pickled stays so until it is read (a run whose
        # report was printed as it went on may never read it).
        self._memory: list[ResourceResult | bytes] = []
        self._spool: IO[bytes] | None = None
        self._offsets = array("q")  # where each spooled result starts; its end is the next start
        self._end = 0
        self._replaced: dict[int, ResourceResult] = {}  # spooled results replaced after they were written
        for r in results:
            self.append(r)

    def append(self, result: ResourceResult) -> None:
        self.tally.add(result)
        if self._spool is None and len(self._memory) < self._in_memory:
            self._memory.append(result)
            return
        if self._spool is None:
            self._spool = tempfile.TemporaryFile(prefix="imaging-validator-results-")  # noqa: SIM115 - as long as the store
        data = pickle.dumps(result, pickle.HIGHEST_PROTOCOL)
        self._offsets.append(self._end)
        self._spool.write(data)
        self._end += len(data)

    def extend_pickled(self, blobs: Sequence[bytes], tally: Tally) -> None:
        """Results already pickled (as `append` pickles them) with their counts: a --jobs worker
        sends its results this way, so the parent writes them to the spool as they are instead
        of unpickling each to pickle it again (it would spend on that what the workers save)."""
        self.tally.merge(tally)
        for data in blobs:
            if self._spool is None and len(self._memory) < self._in_memory:
                self._memory.append(data)
                continue
            if self._spool is None:
                self._spool = tempfile.TemporaryFile(prefix="imaging-validator-results-")  # noqa: SIM115 - as long as the store
            self._offsets.append(self._end)
            self._spool.write(data)
            self._end += len(data)

    def replace(self, index: int, result: ResourceResult) -> None:
        """Put `result` in place of the one at `index` (the end-of-run checks add findings)."""
        self.tally.remove(self[index])
        self.tally.add(result)
        if index < len(self._memory):
            self._memory[index] = result
        else:
            self._replaced[index] = result

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def __len__(self) -> int:
        return len(self._memory) + len(self._offsets)

    @overload
    def __getitem__(self, index: int) -> ResourceResult: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[ResourceResult, ...]: ...
    def __getitem__(self, index: int | slice) -> ResourceResult | tuple[ResourceResult, ...]:
        if isinstance(index, slice):  # a tuple, as a run's results were before the store
            return tuple(self[i] for i in range(*index.indices(len(self))))
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("result index out of range")
        if index < len(self._memory):
            return self._held(index)
        if index in self._replaced:
            return self._replaced[index]
        n = index - len(self._memory)
        end = self._offsets[n + 1] if n + 1 < len(self._offsets) else self._end
        return pickle.loads(self._read(self._offsets[n], end - self._offsets[n]))

    def __iter__(self) -> Iterator[ResourceResult]:
        return self.iter_from(0)

    def iter_from(self, start: int) -> Iterator[ResourceResult]:
        """The results from the one at `start` on (a report that printed the first ones while the
        run went on prints the rest), without reading those before it back."""
        for index in range(start, len(self._memory)):
            yield self._held(index)
        if self._spool is None:
            return
        base = len(self._memory)
        count = len(self._offsets)
        n = max(start - base, 0)
        while n < count:
            # One read for as many whole results as fit in a block (at least one).
            start = self._offsets[n]
            last = n
            while last + 1 < count and self._offsets[last + 1] - start < _READ_BLOCK:
                last += 1
            stop = self._offsets[last + 1] if last + 1 < count else self._end
            block = self._read(start, stop - start)
            for k in range(n, last + 1):
                if base + k in self._replaced:
                    yield self._replaced[base + k]
                    continue
                end = self._offsets[k + 1] if k + 1 < count else self._end
                yield pickle.loads(block[self._offsets[k] - start : end - start])
            n = last + 1

    def _held(self, index: int) -> ResourceResult:
        result = self._memory[index]
        if isinstance(result, bytes):
            result = self._memory[index] = pickle.loads(result)
        return result

    def _read(self, offset: int, size: int) -> bytes:
        assert self._spool is not None
        self._spool.flush()
        return os.pread(self._spool.fileno(), size, offset)


def stored(results: Sequence[ResourceResult], kept: Iterable[ResourceResult]) -> Sequence[ResourceResult]:
    """`kept` (results derived one to one from `results`) in the same kind of container: a store
    for a store, so a long run stays on disk; else a tuple."""
    return ResultStore(kept) if isinstance(results, ResultStore) else tuple(kept)
