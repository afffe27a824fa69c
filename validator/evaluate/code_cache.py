"""Compiled base-rule code kept between processes (marshal), beside the checked packs.

Compiling the generated checks is most of a one-file run's start-up (about 0.14 s of 0.35 s), and
the source is the same from one run to the next. An entry is keyed by a digest of the source, its
file name and the Python build (marshal's form and the bytecode change between versions), and
holds a digest of its own bytes: an entry that is truncated, altered or unreadable is never run,
the source is compiled again and the entry rewritten. IMAGING_VALIDATOR_CACHE=off turns it off.

The same holds for the methods `dataclasses` writes for each class of the package (__init__,
__repr__, __eq__, ...) as it is imported: see classes_code_cached.
"""

from __future__ import annotations
import __future__

import builtins
import dataclasses
import hashlib
import importlib.util
import marshal
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import CodeType, ModuleType

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
    code = _read(path)
    return code if isinstance(code, CodeType) else None


def _read(path: Path) -> object:
    """What an entry holds, or None when it is absent, unreadable or not whole (its digest)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    body = data[_DIGEST:]
    if len(data) <= _DIGEST or hashlib.sha256(body).digest() != data[:_DIGEST]:
        return None
    try:
        return marshal.loads(body)
    except (EOFError, ValueError, TypeError):
        return None


def _store(path: Path, code: object) -> None:
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


# --- The methods dataclasses writes (start-up only) ---------------------------------------------
# `dataclasses` writes each method of a class (__init__, __repr__, __eq__, __hash__, and the
# __setattr__ and __delattr__ of a frozen class) as source text and runs it with exec(), which
# parses and compiles it: ~3.8 million instructions for a frozen class of four fields, 107M of
# the 761M of a one-file run for the ~60 classes the package defines. While it is imported, the
# module's exec() is given the code objects compiled from the same text before (compiled as
# exec() would compile it: the same file name, the future flags of the caller), kept in one entry
# of the cache folder; a text not found there is compiled and the entry rewritten with the codes
# the import used. An entry is keyed by the Python build, holds a digest of its bytes and is
# looked up by the whole text: a damaged one is ignored, and a text changed by an edit of a class
# or another Python is compiled anew. IMAGING_VALIDATOR_CACHE=off turns it off.

_FUTURE_FLAGS = 0
for _feature in __future__.all_feature_names:
    _FUTURE_FLAGS |= getattr(__future__, _feature).compiler_flag
classes_counts = {"compiled": 0, "loaded": 0}  # per process (tests count them)
_INSTALLED = str(Path(__file__).resolve().parent.parent)


@contextmanager
def classes_code_cached(part: str, module: ModuleType = dataclasses) -> Iterator[None]:
    """While the block runs, the source texts `module` runs with exec() are compiled once across
    processes, in the entry of `part` (each import that uses one names its own: an entry holds
    what its import used, so two imports sharing one would evict each other's codes). Does
    nothing when caching is off or the module's exec() is already replaced."""
    try:
        folder = cache_dir()
    except RuntimeError:  # no home folder: importing the package must not fail for want of a cache
        folder = None
    if folder is None or "exec" in vars(module):
        yield
        return
    # The installation's folder too: checkouts side by side (whose classes differ) share no entry.
    key = hashlib.sha256(f"{_PYTHON}\0{_INSTALLED}\0{module.__name__}\0{part}".encode()).hexdigest()
    path = folder / "classes" / f"{key}.marshal"
    table = _read(path)
    known: dict = table if isinstance(table, dict) else {}
    used: dict = {}
    missed = []

    def cached_exec(source, globals=None, locals=None, /, **kwargs):
        caller = sys._getframe(1)
        if globals is None:  # exec()'s defaults: the caller's namespaces
            globals = caller.f_globals
            locals = caller.f_locals if locals is None else locals
        elif locals is None:
            locals = globals
        if type(source) is str:
            flags = caller.f_code.co_flags & _FUTURE_FLAGS
            entry = f"{flags}\0{source}"
            code = known.get(entry)
            if isinstance(code, CodeType):
                classes_counts["loaded"] += 1
            else:
                code = compile(source, "<string>", "exec", flags=flags, dont_inherit=True)
                classes_counts["compiled"] += 1
                missed.append(entry)
            used[entry] = code
            source = code
        return builtins.exec(source, globals, locals, **kwargs)

    module.exec = cached_exec  # type: ignore[attr-defined]
    try:
        yield
    finally:
        del module.exec  # type: ignore[attr-defined]
        if missed:  # rewritten with the codes this import used: an edited class leaves no stale one
            _store(path, used)
