"""What a report format declares, so that the command line and `make run` need no list of their own."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from validator.model import RunResult


@dataclass(frozen=True, slots=True)
class Reporter:
    """One report format: its module declares it as REPORTER, validator.report lists it."""

    name: str  # also the command-line option that writes it: --NAME FILE
    render: Callable[[RunResult], str | bytes]  # pure: it neither prints nor writes
    help: str  # of the command-line option
    media_type: str
    file_name: str | None  # its name in `--reports-dir`; None: a console format only, with no --NAME option
    binary: bool = False  # render returns bytes; else text, which files hold as UTF-8
    suites: bool = False  # presents the cases of a suite run, so `imaging-validator test` offers it
    render_quiet: Callable[[RunResult], str | bytes] | None = None  # with --quiet; None: as render
    # Colours what render (or render_quiet) returned, for a terminal (--color); None: never coloured.
    colorize: Callable[[str], str] | None = None
    # The same text as render (render_quiet) in pieces, for formats that list every resource: a
    # long run is written without its whole report in memory. None: render's text, whole.
    chunks: Callable[[RunResult], Iterable[str]] | None = None
    chunks_quiet: Callable[[RunResult], Iterable[str]] | None = None

    def text_chunks(self, run: RunResult, quiet: bool = False) -> Iterable[str | bytes]:
        if quiet and self.render_quiet is not None:
            return self.chunks_quiet(run) if self.chunks_quiet is not None else [self.render_quiet(run)]
        return self.chunks(run) if self.chunks is not None else [self.render(run)]

    def file_chunks(self, run: RunResult) -> Iterator[bytes]:
        for out in self.text_chunks(run):
            # A lone surrogate (a JSON "\ud800" escape, a file name that is not UTF-8) has no UTF-8
            # form: it is written as the text \ud800, which inside a JSON string is the same escape
            # (JSON and SARIF stay valid, with the same value) and elsewhere readable text.
            yield out.encode("utf-8", "backslashreplace") if isinstance(out, str) else out

    def file_bytes(self, run: RunResult) -> bytes:
        return b"".join(self.file_chunks(run))
