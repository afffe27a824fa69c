"""Compiled base-rule code kept between processes (marshal), beside the checked packs.

Compiling the generated checks is most of a one-file run's start-up (about 0.14 s of 0.35 s), and
the source is the same from one run to the next. An entry is keyed by a digest of the source, its
file name and the Python build (marshal's form and the bytecode change between versions), and
holds a digest of its own bytes: an entry that is truncated, altered or unreadable is never run,
the source is compiled again and the entry rewritten. IMAGING_VALIDATOR_CACHE=off turns it off.
"""

from __future__ import annotations

import hashlib
import importlib.util
import marshal
import os
import sys
import tempfile
from pathlib import Path
from types import CodeType

from validator.resources import cache_dir

# Per process: how many code objects were compiled and how many loaded (tests count them).
counts = {"compiled": 0, "loaded": 0}
_PYTHON = f"{sys.implementation.cache_tag}\0{importlib.util.MAGIC_NUMBER.hex()}"
_DIGEST = 32  # bytes of sha256 that start an entry


def compiled(source: str, filename: str) -> CodeType:
    """The code object of `source`, from the cache when a sound entry is there."""
    path = _entry(source, filename)
    code = _load(path) if path is not None else None
    if code is None:
        code = compile(source, filename, "exec")
        counts["compiled"] += 1
        if path is not None:
            _store(path, code)
    else:
        counts["loaded"] += 1
    return code


def _entry(source: str, filename: str) -> Path | None:
    folder = cache_dir()
    if folder is None:
        return None
    key = hashlib.sha256(f"{_PYTHON}\0{filename}\0{source}".encode()).hexdigest()
    return folder / "code" / f"{key}.marshal"


def _load(path: Path) -> CodeType | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    body = data[_DIGEST:]
    if len(data) <= _DIGEST or hashlib.sha256(body).digest() != data[:_DIGEST]:
        return None
    try:
        code = marshal.loads(body)
    except (EOFError, ValueError, TypeError):
        return None
    return code if isinstance(code, CodeType) else None


def _store(path: Path, code: CodeType) -> None:
    """Written to a temporary file and renamed, so a concurrent reader sees all of it or nothing;
    a cache that cannot be written only costs the next process a compile."""
    body = marshal.dumps(code)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(hashlib.sha256(body).digest() + body)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
