"""The compiled base-rule code is cached between processes, and a bad entry is never run."""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from validator.evaluate import code_cache

ROOT = Path(__file__).parent.parent
RUN = """
import json
from validator import Validator
from validator.evaluate import code_cache
run = Validator(fhir_version="R4").validate_paths(["examples/payloads/broken-study.json"])
issues = [[i.rule, i.expression, i.line, i.column] for r in run.results for i in r.issues]
print(json.dumps({"counts": code_cache.counts, "issues": issues}))
"""


def _run(cache: Path) -> dict:
    env = {**os.environ, "IMAGING_VALIDATOR_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", RUN], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_a_second_process_loads_the_code_instead_of_compiling_it(tmp_path: Path) -> None:
    first, second = _run(tmp_path), _run(tmp_path)
    assert first["counts"]["compiled"] > 0 and first["counts"]["loaded"] == 0
    assert second["counts"] == {"compiled": 0, "loaded": first["counts"]["compiled"]}
    assert second["issues"] == first["issues"] and first["issues"]


SOURCE = "def f(x):\n    return x * 2\n"


def _entries(cache: Path) -> list[Path]:
    return sorted((cache / "code").glob("*.marshal"))


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-3],  # truncated
        lambda data: data[:40] + bytes([data[40] ^ 1]) + data[41:],  # one bit changed
        lambda data: b"",  # empty
        lambda data: hashlib.sha256(b := marshal.dumps(42)).digest() + b,  # sound, but not code
    ],
    ids=["truncated", "bit-flip", "empty", "not-code"],
)
def test_a_damaged_entry_is_ignored_and_rewritten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage) -> None:
    monkeypatch.setenv("IMAGING_VALIDATOR_CACHE", str(tmp_path))
    monkeypatch.setattr(code_cache, "counts", {"compiled": 0, "loaded": 0})
    code_cache.compiled(SOURCE, "<test>")
    (entry,) = _entries(tmp_path)
    entry.write_bytes(damage(entry.read_bytes()))
    namespace: dict = {}
    exec(code_cache.compiled(SOURCE, "<test>"), namespace)
    assert namespace["f"](21) == 42
    assert code_cache.counts == {"compiled": 2, "loaded": 0}
    code_cache.compiled(SOURCE, "<test>")
    assert code_cache.counts == {"compiled": 2, "loaded": 1}  # the rewritten entry is sound


def test_the_key_is_the_source_and_off_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGING_VALIDATOR_CACHE", str(tmp_path))
    code_cache.compiled(SOURCE, "<test>")
    code_cache.compiled(SOURCE + "\n", "<test>")
    assert len(_entries(tmp_path)) == 2
    monkeypatch.setenv("IMAGING_VALIDATOR_CACHE", "off")
    monkeypatch.setattr(code_cache, "counts", {"compiled": 0, "loaded": 0})
    code_cache.compiled(SOURCE, "<test>")
    assert code_cache.counts == {"compiled": 1, "loaded": 0}


# --- The methods dataclasses writes, compiled once across processes (classes_code_cached) --------

CLASSES = """
import json
from validator.evaluate import code_cache
from validator import Validator
run = Validator(fhir_version="R4").validate_paths(["examples/payloads/broken-study.json"])
issues = [[i.rule, i.expression, i.line, i.column, i.message] for r in run.results for i in r.issues]
print(json.dumps({"counts": code_cache.classes_counts, "issues": issues, "entries": code_cache.counts}))
"""


def _import(cache: str) -> dict:
    env = {**os.environ, "IMAGING_VALIDATOR_CACHE": cache, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", CLASSES], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=True)  # fmt: skip
    return json.loads(done.stdout)


def test_a_second_import_loads_the_dataclass_methods_and_finds_what_an_uncached_one_finds(tmp_path: Path) -> None:
    first, second, off = _import(str(tmp_path)), _import(str(tmp_path)), _import("off")
    assert first["counts"]["compiled"] > 100 and first["counts"]["loaded"] == 0
    assert second["counts"] == {"compiled": 0, "loaded": first["counts"]["compiled"]}
    assert off["counts"] == {"compiled": 0, "loaded": 0}
    assert first["issues"] == second["issues"] == off["issues"] and first["issues"]
    assert len(list((tmp_path / "classes").glob("*.marshal"))) == 1


def _fake(future: bool) -> ModuleType:
    """A module that runs source text with exec() as dataclasses does (with or without a future flag)."""
    fake = ModuleType("fake_dataclasses")
    head = "from __future__ import annotations\n" if future else ""
    source = head + "def make(text):\n    ns = {}\n    exec(text, {'X': 7}, ns)\n    return ns['f']\n"
    exec(compile(source, "<fake>", "exec", dont_inherit=True), fake.__dict__)
    return fake


FUNCTION = "def f(y: int) -> int:\n    return X * y\n"


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-3],  # truncated
        lambda data: data[:40] + bytes([data[40] ^ 1]) + data[41:],  # one bit changed
        lambda data: b"",  # empty
        lambda data: hashlib.sha256(b := marshal.dumps(42)).digest() + b,  # sound, but not a table
        lambda data: hashlib.sha256(b := marshal.dumps({"0\0" + FUNCTION: 42})).digest() + b,  # not code
    ],
    ids=["truncated", "bit-flip", "empty", "not-a-table", "not-code"],
)
def test_a_damaged_classes_entry_is_ignored_and_rewritten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          damage) -> None:  # fmt: skip
    monkeypatch.setenv("IMAGING_VALIDATOR_CACHE", str(tmp_path))
    monkeypatch.setattr(code_cache, "classes_counts", {"compiled": 0, "loaded": 0})
    fake = _fake(future=False)
    with code_cache.classes_code_cached("test", fake):
        assert fake.make(FUNCTION)(6) == 42
    (entry,) = (tmp_path / "classes").glob("*.marshal")
    entry.write_bytes(damage(entry.read_bytes()))
    with code_cache.classes_code_cached("test", fake):
        assert fake.make(FUNCTION)(6) == 42
    assert code_cache.classes_counts == {"compiled": 2, "loaded": 0}
    with code_cache.classes_code_cached("test", fake):
        assert fake.make(FUNCTION)(6) == 42
    assert code_cache.classes_counts == {"compiled": 2, "loaded": 1}  # the rewritten entry is sound
    assert "exec" not in vars(fake)  # the module's exec() is the builtin again


@pytest.mark.parametrize("future", [False, True], ids=["plain", "future-annotations"])
def test_cached_dataclass_code_is_what_exec_would_have_compiled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                future: bool) -> None:  # fmt: skip
    """The caller's future flags are compiled in (an annotation stays text under `annotations`),
    and a text is looked up whole: a changed one is compiled, never answered by another's code."""
    monkeypatch.setenv("IMAGING_VALIDATOR_CACHE", str(tmp_path))
    fake = _fake(future)
    plain = fake.make(FUNCTION)
    for _ in range(2):  # compiled, then loaded
        with code_cache.classes_code_cached("test", fake):
            cached = fake.make(FUNCTION)
            changed = fake.make(FUNCTION.replace("X * y", "X + y"))
        assert cached.__annotations__ == plain.__annotations__
        assert plain.__annotations__["y"] == ("int" if future else int)
        assert cached.__code__ == plain.__code__ and (cached(6), changed(6)) == (42, 13)


def test_real_dataclasses_come_out_alike_and_caching_off_replaces_nothing(tmp_path, monkeypatch) -> None:
    import dataclasses

    def make() -> type:
        @dataclasses.dataclass(frozen=True, slots=True)
        class Point:
            x: int
            y: int = 0

        return Point

    monkeypatch.setenv("IMAGING_VALIDATOR_CACHE", str(tmp_path))
    plain = make()
    for _ in range(2):
        with code_cache.classes_code_cached("test"):
            cached = make()
        p, q = plain(1, 2), cached(1, 2)
        assert (repr(p), hash(p), p == plain(1, 2)) == (repr(q), hash(q), q == cached(1, 2))
        with pytest.raises(dataclasses.FrozenInstanceError):
            q.x = 3  # type: ignore[misc]
        for name in ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__"):
            assert getattr(cached, name).__code__ == getattr(plain, name).__code__, name
    monkeypatch.setenv("IMAGING_VALIDATOR_CACHE", "off")
    with code_cache.classes_code_cached("test"):
        assert "exec" not in vars(dataclasses)


def test_two_imports_keep_their_own_entries_and_do_not_evict_each_other(tmp_path, monkeypatch) -> None:
    """An entry holds what its import used: the package, the CLI's reporters and the configuration
    are imported in turn by every run, each under its own name, and each is loaded the next time."""
    monkeypatch.setenv("IMAGING_VALIDATOR_CACHE", str(tmp_path))
    fake = _fake(future=False)
    for _ in range(2):
        monkeypatch.setattr(code_cache, "classes_counts", {"compiled": 0, "loaded": 0})
        with code_cache.classes_code_cached("first", fake):
            assert fake.make(FUNCTION)(6) == 42
        with code_cache.classes_code_cached("second", fake):
            assert fake.make(FUNCTION.replace("X * y", "X + y"))(6) == 13
    assert code_cache.classes_counts == {"compiled": 0, "loaded": 2}
    assert len(list((tmp_path / "classes").glob("*.marshal"))) == 2


def test_without_a_home_folder_the_classes_are_compiled_and_nothing_is_written(tmp_path, monkeypatch) -> None:
    """Path.home() fails when no home folder can be found: importing the package must not."""

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(code_cache, "cache_dir", no_home)
    fake = _fake(future=False)
    with code_cache.classes_code_cached("test", fake):
        assert "exec" not in vars(fake) and fake.make(FUNCTION)(6) == 42


def test_two_installations_side_by_side_keep_their_own_entries(tmp_path, monkeypatch) -> None:
    """Checkouts whose classes differ share a cache folder without evicting each other's codes."""
    monkeypatch.setenv("IMAGING_VALIDATOR_CACHE", str(tmp_path))
    fake = _fake(future=False)
    for installed in ("/one/checkout", "/another/checkout", "/one/checkout"):
        monkeypatch.setattr(code_cache, "_INSTALLED", installed)
        with code_cache.classes_code_cached("test", fake):
            fake.make(FUNCTION if installed.startswith("/one") else FUNCTION.replace("X * y", "X + y"))
    assert len(list((tmp_path / "classes").glob("*.marshal"))) == 2
    assert code_cache.classes_counts["compiled"] >= 2 and code_cache.classes_counts["loaded"] >= 1
