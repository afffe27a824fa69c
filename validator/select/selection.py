"""What a resource is validated as: its FHIR version (and why) and the profiles applied to it.

Decided once per resource, before any rule runs; the evaluate and run stages only read the
Selection. The version comes from --fhir-version, else a profile the resource declares, else the
shape of an ImagingStudy (select/version.py). Profiles are the requested ones of the resource's
type and FHIR version, and the ones it declares in meta.profile that this validator knows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from validator import rule_ids as R
from validator.compile.packs import PackError, load_pack
from validator.compile.profiles import Profile, ProfileSet
from validator.rule_ids import implements
from validator.select.version import Marker, choose, choose_r4_shaped, has_markers
from validator.versions import VERSIONS, FhirVersion

# (rule id, pointer inside the resource, message): a finding the selection itself makes.
Note = tuple[str, tuple, str]


class UnknownProfile(ValueError):
    """--profile names no known profile (usage error)."""


@dataclass(slots=True)
class Selection:
    version: FhirVersion
    reason: str  # why this version: --fhir-version, meta.profile, a payload shape, the default
    conflicts: list[tuple[Marker, tuple]] = field(default_factory=list)  # shapes of another version
    profiles: list[Profile] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)


def find_requested(key: str, profile_set: ProfileSet) -> Profile:
    """A profile asked for by --profile: a short name, a canonical URL or a profile pack file."""
    path = Path(key)
    if path.is_file():
        found = [p for p in profile_set.profiles.values() if p.pack == _pack_id(path)]
        if found:
            return found[0]
        raise UnknownProfile(f"{key}: not a profile pack (it has no 'profile' section)")
    prof = profile_set.find(key)
    if prof is None:
        names = ", ".join(sorted(n for n, p in profile_set.by_name.items() if not p.is_datatype)) or "none"
        raise UnknownProfile(f"unknown profile {key!r} (known: {names}; or give a canonical URL or a pack file)")
    if prof.is_datatype:
        raise UnknownProfile(f"{key}: {prof.title} constrains {prof.resource_type}, a datatype: it applies where a "
                             "resource profile uses it, not to a resource")  # fmt: skip
    return prof


class Selector:
    """The selection policy of one Validator: the version asked for (or None) and the profiles."""

    def __init__(self, requested_version: FhirVersion | None, default: FhirVersion,
                 profile_set: Callable[[], ProfileSet], requested: list[Profile],
                 reason: str = "--fhir-version") -> None:  # fmt: skip
        self.requested_version = requested_version
        self.reason = reason  # why the requested version: --fhir-version, or a --profile of that version
        self.default = default
        self._profile_set = profile_set  # loaded on first need: most runs never read a profile pack
        self.requested = requested

    @property
    def fixed(self) -> bool:
        """Whether the version was asked for (then a clean resource need not be searched for markers)."""
        return self.requested_version is not None

    def initial(self) -> Selection:
        """The selection before the payload is read: the requested version, or the default."""
        if self.requested_version is not None:
            return Selection(self.requested_version, self.reason)
        return Selection(self.default, "default (R4)")

    def version(self, res: dict, rtype: str | None) -> Selection:
        """The version to validate with, why, and the elements that contradict it."""
        requested = self.requested_version.name if self.requested_version else None
        if requested is None:
            declared = self._declared_profile_version(res)
            if declared is not None:
                return Selection(VERSIONS[declared[0]], declared[1])
        if not has_markers(rtype):
            return self.initial()
        choice = choose(res, requested)
        return Selection(VERSIONS[choice.version], choice.reason, list(choice.conflicts))

    def read_from_shape(self, res: dict, rtype: str | None) -> bool:
        """Whether version() reads this resource's version from its shape: none asked for, no
        profile of a known version declared, and a type with version markers."""
        return self.requested_version is None and has_markers(rtype) and self._declared_profile_version(res) is None

    def r4_shaped(self, res: dict) -> Selection:
        """version() of a resource it reads from its shape (read_from_shape) in which no marker
        that excludes R4 holds: what the R4 native gate passing proves."""
        choice = choose_r4_shaped(res)
        return Selection(VERSIONS[choice.version], choice.reason)

    @implements(R.UNKNOWN_PROFILE)
    def profiles(self, selection: Selection, res: dict, rtype: str) -> None:
        """Add to the selection the profiles that apply to this resource (and notes on those that
        cannot). A profile applies to resources of its type and FHIR version (IMR is an R4 profile)."""
        number = selection.version.number
        family = number.split(".")[0]
        for p in self.requested:
            if p.resource_type != rtype:
                continue
            if p.fhir_version.split(".")[0] != family:
                why = f"{p.title} is a FHIR {p.fhir_version} profile and this resource is FHIR {number}"
                selection.notes.append((R.UNKNOWN_PROFILE, (), f"{why}: the profile was not applied"))
                continue
            selection.profiles.append(p)
        declared = _declared(res)
        if not isinstance(declared, list):
            return
        for i, url in enumerate(declared):
            if not isinstance(url, str):
                continue
            prof = self._profile_set().find(url)
            if prof is None or prof.resource_type != rtype:
                why = "is not known to this validator"
                if prof is not None:
                    why = f"constrains {prof.resource_type}, not {rtype}"
                message = f"meta.profile {url} {why}: only the base rules were applied"
                selection.notes.append((R.UNKNOWN_PROFILE, ("meta", "profile", i), message))
            elif prof not in selection.profiles:
                selection.profiles.append(prof)

    def wants_profiles(self, res: dict) -> bool:
        return bool(self.requested) or declares_profile(res)

    def _declared_profile_version(self, res: dict) -> tuple[str, str] | None:
        declared = _declared(res)
        if not isinstance(declared, list):
            return None  # absent, or malformed (the type rule's finding), as profiles() reads it
        for url in declared:
            prof = self._profile_set().find(url) if isinstance(url, str) else None
            if prof is not None:
                name = next(n for n, v in VERSIONS.items() if v.number == prof.fhir_version)
                return name, f"meta.profile: {prof.title} is a FHIR {name} profile"
        return None


@implements(R.MIGRATION_HINT, R.VERSION_MISMATCH)
def mismatch_notes(selection: Selection) -> list[Note]:
    """One version-mismatch error for a payload whose shape belongs to another version, and a
    migration hint at each element that shows it."""
    version = selection.version
    parts = ", ".join(f"{m.describe()} ({m.allowed()})" for m, _ in selection.conflicts)
    message = (f"validated as FHIR {version.name} ({selection.reason}), but the payload has {parts}: fix the "
               "version or the payload; no other rule was applied to this resource")  # fmt: skip
    notes: list[Note] = [(R.VERSION_MISMATCH, (), message)]
    for marker, pointer in selection.conflicts:
        hint = marker.hints.get(version.name) or marker.hints.get("R4" if version.name == "R4B" else "")
        if hint:
            notes.append((R.MIGRATION_HINT, pointer, hint))
    return notes


def declares_profile(res: dict) -> bool:
    meta = res.get("meta")
    return isinstance(meta, dict) and bool(meta.get("profile"))


def _declared(res: dict) -> object:
    return res["meta"]["profile"] if declares_profile(res) else None


def _pack_id(path: Path) -> str | None:
    try:
        return load_pack(path).id
    except PackError:
        return None
