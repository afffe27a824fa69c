from __future__ import annotations

from pathlib import Path

import pytest

from validator import Validator

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def validator() -> Validator:
    return Validator()


def require_shared() -> Path:
    """The specification reference folder beside the repository (read by tests, never by the product)."""
    if not SHARED.is_dir():
        raise RuntimeError("the tests need the reference folder ../shared/reference beside the repository")
    return SHARED


@pytest.fixture(scope="session")
def shared() -> Path:
    return require_shared()
