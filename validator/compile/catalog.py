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
from validator.versions import VERSIONS, FhirVersion


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


def profiles_for(version: FhirVersion, extra: tuple[Path, ...] = (), igs: tuple[str, ...] = ()) -> ProfileSet:
    """The bundled profile packs (plus packs given by path, and the profiles of the IGs given),
    compiled once. Profiles of every FHIR version are in the set, each compiled against its own
    version's plan; `version` is the run's default."""
    return _profiles(version, rules_dir(), profiles_dir(), extra, igs)


def plan_of_number(number: str) -> Plan | None:
    """The plan of a FHIR version number (4.0.1, 5.0.0), or None when the validator has none."""
    for v in VERSIONS.values():
        if v.number == number:
            return plan_for(v)
    return None


def import_igs_for(igs: tuple[str, ...]) -> list:
    """The packs imported from the IGs given (validator/compile/ig), once per process."""
    return _imported(igs, rules_dir())


@cache
def _imported(igs: tuple[str, ...], rules_root: Path) -> list:
    from validator.compile.ig.importer import import_igs

    return import_igs(list(igs), plan_of_number)


@cache
def _profiles(version: FhirVersion, rules_root: Path, root: Path, extra: tuple[Path, ...],
              igs: tuple[str, ...]) -> ProfileSet:  # fmt: skip
    ig_packs = [pack for imported in _imported(igs, rules_root) for pack in imported.packs] if igs else []

    def plans(number: str) -> Plan:
        return plan_of_number(number) or _plan(version, rules_root)

    return compile_profiles([*pack_files(root), *extra], _plan(version, rules_root), ig_packs, plans)
