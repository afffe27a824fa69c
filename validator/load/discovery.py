"""Which files a directory holds for validation, as a repository's own tools would see them.

A walk skips what is never a payload of the project: hidden folders (.git, .venv, .tox, ...),
virtual environments under any name (a folder with pyvenv.cfg or conda-meta), node_modules and
__pycache__; it honours the .gitignore files from the repository root down (with `pathspec`, the
library that implements git's own matching rules) and the `exclude` globs (same syntax, relative
to the root). A JSON or NDJSON file found this way that never mentions "resourceType" (an XML
file without the FHIR namespace) is not a FHIR payload (package.json, tsconfig.json, a Maven
pom.xml): it is skipped with a note, where a file named on the command line gets its finding.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pathspec

from validator.load.sources import PAYLOAD_SUFFIXES, expand_paths

_NEVER = {"node_modules", "__pycache__"}
_VENV_MARKERS = ("pyvenv.cfg", "conda-meta")
# What every FHIR payload holds, in the form it is written: a file without it cannot be one. The
# test is a substring search, so that skipping costs a read and no parse.
_MARKERS = {".json": b'"resourceType"', ".ndjson": b'"resourceType"', ".jsonl": b'"resourceType"',
            ".xml": b"http://hl7.org/fhir"}  # fmt: skip


def find_root(start: Path) -> Path | None:
    """The repository that holds `start`: the nearest folder with a .git (folder or file, as in a
    worktree or submodule), or None."""
    here = start.resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return None


@dataclass
class Discovered:
    """The inputs of a run and the files a walk left out, with why (reported as run notes)."""

    files: list[str]
    skipped: list[str] = field(default_factory=list)


def _spec(lines: Iterable[str]) -> pathspec.GitIgnoreSpec:
    import pathspec  # imported by the first walk: a run of files named one by one does not need it

    return pathspec.GitIgnoreSpec.from_lines(lines)


class Walker:
    """Directory walks for one run: the repository root, its .gitignore files (read once each)
    and the exclude globs."""

    def __init__(self, root: Path | None, exclude: Iterable[str] = (), max_bytes: int | None = None) -> None:
        self.root = root.resolve() if root is not None else None
        self._exclude_lines = list(exclude)
        self._exclude: pathspec.GitIgnoreSpec | None = None
        self.max_bytes = max_bytes
        self._ignores: dict[Path, pathspec.GitIgnoreSpec | None] = {}
        self.walked: set[str] = set()
        self.skipped: list[str] = []

    @property
    def exclude(self) -> pathspec.GitIgnoreSpec:
        """The --exclude globs, compiled when a path is first matched against them."""
        if self._exclude is None:
            self._exclude = _spec(self._exclude_lines)
        return self._exclude

    def discover(self, paths: list[str], as_discovered: bool = False) -> Discovered:
        """Expand the arguments (sources.expand_paths, with this walk for folders). A file a walk
        found (any file, with `as_discovered`, as the pre-commit hook passes them) that is not a
        FHIR payload is skipped with a note; so is one the excludes or .gitignore name."""
        files = []
        for source in expand_paths(paths, walk=self.walk):
            if source != "-" and (source in self.walked or as_discovered):
                if as_discovered and source not in self.walked and self._left_out(Path(source), False):
                    self.skipped.append(f"{source}: excluded (--exclude or .gitignore), skipped")
                    continue
                why = self._not_fhir(source)
                if why:
                    self.skipped.append(f"{source}: {why}, skipped")
                    continue
            files.append(source)
        return Discovered(files, self.skipped)

    def walk(self, top: Path) -> list[str]:
        found = []

        def unlistable(error: OSError) -> None:
            # A folder that cannot be listed stays among the inputs: reading it reports that its
            # files were not validated (a run never passes over what it could not see).
            if error.filename is not None:
                found.append(str(error.filename))

        for folder, dirs, names in os.walk(top, onerror=unlistable, followlinks=False):
            here = Path(folder)
            dirs[:] = sorted(d for d in dirs if not self._skip_dir(here / d))
            for name in names:
                path = here / name
                # FIFOs, sockets, devices and broken links too: reading reports what they are.
                if (path.suffix.lower() in PAYLOAD_SUFFIXES and not name.startswith(".")
                        and not self._left_out(path, False)):  # fmt: skip
                    found.append(str(path))
        found.sort()
        self.walked.update(found)
        return found

    def _skip_dir(self, path: Path) -> bool:
        name = path.name
        if name.startswith(".") or name in _NEVER or any((path / m).exists() for m in _VENV_MARKERS):
            return True
        return self._left_out(path, True)

    def _relative(self, path: Path) -> str | None:
        if self.root is None:
            return None
        try:
            # The folder resolved, not the file: a file may be a link (even a link loop, which
            # reading reports), and it is where it is named that .gitignore and --exclude match.
            return (path.parent.resolve() / path.name).relative_to(self.root).as_posix()
        except ValueError:
            return None

    def _left_out(self, path: Path, is_dir: bool) -> bool:
        """Named by an exclude glob or a .gitignore of the repository (deeper files override)."""
        rel = self._relative(path)
        name = (rel if rel is not None else path.as_posix()) + ("/" if is_dir else "")
        if self.exclude.match_file(name):
            return True
        if rel is None or self.root is None:
            return False
        ignored = False
        folder = self.root
        parts = rel.split("/")
        for depth in range(len(parts)):
            spec = self._ignore_file(folder)
            if spec is not None:
                verdict = spec.check_file("/".join(parts[depth:]) + ("/" if is_dir else "")).include
                if verdict is not None:
                    ignored = verdict
            folder = folder / parts[depth]
        return ignored

    def _ignore_file(self, folder: Path) -> pathspec.GitIgnoreSpec | None:
        if folder not in self._ignores:
            try:
                text = (folder / ".gitignore").read_text(encoding="utf-8", errors="replace")
            except OSError:
                text = None
            self._ignores[folder] = None if text is None else _spec(text.splitlines())
        return self._ignores[folder]

    def _not_fhir(self, source: str) -> str | None:
        """Why a file cannot be a FHIR payload, or None (also when it cannot be read or is too
        large, or is not a JSON or XML document at all: reading it then reports that)."""
        marker = _MARKERS.get(Path(source).suffix.lower())
        if marker is None:
            return None
        try:
            if not stat.S_ISREG(os.stat(source).st_mode):
                return None  # a FIFO would block a read: reading it reports what it is instead
            if self.max_bytes is not None and os.path.getsize(source) > self.max_bytes:
                return None
            with open(source, "rb") as handle:
                data = handle.read()
        except OSError:
            return None
        # Only a JSON object (an XML document) of another kind is skipped: an empty file, bytes
        # that are not text, an array or text that is not JSON (XML) at all get their finding.
        try:
            start = data.decode("utf-8").lstrip("\ufeff \t\r\n")[:1]
        except UnicodeDecodeError:
            return None
        if marker in data or start != ("<" if marker.startswith(b"http") else "{"):
            return None
        return "no resourceType, not a FHIR payload" if marker.startswith(b'"') else "no FHIR namespace, not FHIR XML"
