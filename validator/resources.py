"""Where the bundled files are: rule packs, profiles and schemas.

In a wheel the packs sit inside the package (validator/rules, validator/profiles); in a checkout
or an editable install they sit at the top of the repository. Both layouts are looked up here and
nowhere else.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache  # the installation does not move while the process runs
def _first_existing(name: str) -> Path:
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"bundled folder {name!r} is missing from this installation")


def rules_dir() -> Path:
    """The base rule packs; IMAGING_VALIDATOR_RULES points at another tree (for pack authors)."""
    override = os.environ.get("IMAGING_VALIDATOR_RULES")
    return Path(override) if override else _first_existing("rules")


def profiles_dir() -> Path:
    """The bundled profile packs; IMAGING_VALIDATOR_PROFILES points at another folder (for pack authors)."""
    override = os.environ.get("IMAGING_VALIDATOR_PROFILES")
    return Path(override) if override else _first_existing("profiles")


def package_file(*parts: str) -> Path:
    return _PACKAGE.joinpath(*parts)


def cache_dir() -> Path | None:
    """Where checked packs (and other derived tables) are kept; None when caching is off."""
    configured = os.environ.get("IMAGING_VALIDATOR_CACHE")
    if configured == "off":
        return None
    return Path(configured) if configured else Path.home() / ".cache" / "imaging-validator" / "packs"
