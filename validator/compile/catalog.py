"""The compiled packs of each FHIR version, once per process: its base plan and its profiles.

The base plan is core.yaml, the version's rule set (rules/r4, r5, r6) and the DICOM pack; the
profile set is every profile pack of profiles/ (and any given by path) for that version.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from validator.compile.packs import PackError, load_pack
from validator.compile.plan import Plan, compile_plan, pack_files
from validator.compile.profiles import ProfileSet, compile_profiles
from validator.resources import profiles_dir, rules_dir
from validator.versions import FhirVersion


def plan_for(version: FhirVersion) -> Plan:
    """The compiled plan of a FHIR version: compiled once per process (per rules folder)."""
    return _plan(version, rules_dir())


@cache
def _plan(version: FhirVersion, root: Path) -> Plan:
    if not (root / "core.yaml").is_file():
        raise PackError([f"{root}: no core.yaml rule pack in this rules folder"])
    files = [root / "core.yaml", *pack_files(root / version.ruleset), *pack_files(root / "dicom")]
    packs = [load_pack(f) for f in files]
    return compile_plan(packs, version.number, version.model)


def profiles_for(version: FhirVersion, extra: tuple[Path, ...] = ()) -> ProfileSet:
    """The bundled profile packs of a FHIR version (plus packs given by path), compiled once."""
    return _profiles(version, rules_dir(), profiles_dir(), extra)


@cache
def _profiles(version: FhirVersion, rules_root: Path, root: Path, extra: tuple[Path, ...]) -> ProfileSet:
    return compile_profiles([*pack_files(root), *extra], _plan(version, rules_root))
