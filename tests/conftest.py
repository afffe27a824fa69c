from __future__ import annotations

from pathlib import Path

import pytest

from validator import Validator

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def validator() -> Validator:
    return Validator()


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        raise RuntimeError(f"the reference folder {SHARED} is required by the tests")
    return SHARED
