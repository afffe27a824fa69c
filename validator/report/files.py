"""Writing report files without ever leaving a half-written one behind, nor harming what a report
path names.

Paths are checked before anything is validated (a usage error costs nothing then). `-` is
standard output. A regular file (or a symlink to one: the target is replaced, the link kept) is
written to a temporary file beside it and renamed over it. Anything else a path can name (a FIFO,
a character device such as /dev/null or a terminal, a symlink to either) is written through, in
place: replacing it by a regular file would break whoever reads from it.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

STDOUT = "-"


class ReportWriteError(OSError):
    """A report could not be written; the message names the option and the path."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _identity(path: str | Path) -> tuple[int, int] | None:
    """The file a path names (device, inode), following symlinks; None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def check_report_paths(reports: Iterable[tuple[str, Path]], inputs: Iterable[str]) -> None:
    """Raise ReportWriteError, naming the option and the path, for a report that could not be
    written or would destroy something: a folder that cannot be made or written, the path of
    another report, a path that is one of the inputs."""
    taken: dict[object, str] = {}
    inputs_at = {key for source in inputs if source != STDOUT and (key := _identity(source)) is not None}
    for option, path in reports:
        named = f"{option} {path}"
        if str(path) == STDOUT:
            key: object = STDOUT
        else:
            key = _identity(path) or os.path.realpath(path)
            if key in inputs_at:
                raise ReportWriteError(f"{named}: this is one of the inputs; the report would overwrite it")
            _check_writable(named, Path(path))
        if key in taken:
            raise ReportWriteError(f"{named}: the same file as {taken[key]}; each report needs its own")
        taken[key] = named


def _check_writable(named: str, path: Path) -> None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise ReportWriteError(f"{named}: cannot write report: {exc.strerror or exc}") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise ReportWriteError(f"{named}: is a directory")
        if not stat.S_ISREG(st.st_mode):  # written through: the path itself must be writable
            if not os.access(path, os.W_OK):
                raise ReportWriteError(f"{named}: cannot write report: permission denied")
            return
    # A regular file is replaced from its folder; missing folders are created, so the nearest
    # existing one must be a folder that can be written.
    folder = Path(os.path.realpath(path)).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ReportWriteError(f"{named}: cannot create the folder for the report: {folder} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ReportWriteError(f"{named}: cannot write report: the folder {folder} is not writable")


def write_report(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Write a report (whole, or in pieces as a reporter gives them) where `path` says: standard
    output, through a non-regular file, or atomically (following a symlink to its target)."""
    if str(path) == STDOUT:
        for piece in _pieces(data):
            sys.stdout.buffer.write(piece)
        sys.stdout.buffer.flush()
        return
    try:
        st = os.stat(path)
    except OSError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
        _write_through(path, data)
        return
    write_atomic(Path(os.path.realpath(path)) if path.is_symlink() else path, data)


def _pieces(data: bytes | Iterable[bytes]) -> Iterable[bytes]:
    return (data,) if isinstance(data, bytes) else data


def _write_through(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Write into what the path names, as it is: no create, no truncate, no rename."""
    try:
        fd = os.open(path, os.O_WRONLY)
        with os.fdopen(fd, "wb") as handle:
            handle.writelines(_pieces(data))
    except OSError as exc:
        raise ReportWriteError(f"cannot write report {path}: {exc.strerror or exc}") from None


def write_atomic(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Write to a temporary file beside `path`, then rename it over `path` (atomic on POSIX), so a
    reader sees either the old report or the complete new one. Missing folders are created."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ReportWriteError(f"cannot write report {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.writelines(_pieces(data))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a report is as readable as any file
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ReportWriteError(f"cannot write report {path}: {exc.strerror or exc}") from None
    except BaseException:  # Ctrl-C or SIGTERM while writing: no temporary file is left behind either
        Path(tmp).unlink(missing_ok=True)
        raise
