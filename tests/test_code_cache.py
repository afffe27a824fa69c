"""The compiled base-rule code is cached between processes, and a bad entry is never run."""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import subprocess
import sys
from pathlib import Path

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
