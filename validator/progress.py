"""A progress display on stderr for long runs; silent for short runs, pipes and --quiet."""

from __future__ import annotations

import sys
from types import TracebackType

SHOW_AFTER = 300  # resources: short runs finish before a bar would help


class Progress:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._bar = None
        self._task = None

    def __call__(self, count: int) -> None:
        if not self.enabled or count < SHOW_AFTER:
            return
        if self._bar is None:
            # rich comes with typer; imported only when a bar is really shown.
            from rich.console import Console
            from rich.progress import Progress as RichProgress
            from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

            self._bar = RichProgress(SpinnerColumn(), TextColumn("{task.completed} resources validated"),
                                     TimeElapsedColumn(), console=Console(stderr=True), transient=True)  # fmt: skip
            self._bar.start()
            self._task = self._bar.add_task("validate", total=None)
        self._bar.update(self._task, completed=count)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
