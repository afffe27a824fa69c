"""FHIR versions the validator knows, and which rule set each one uses."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FhirVersion:
    name: str  # R4, R4B, ...
    number: str  # 4.0.1
    ruleset: str  # folder under rules/
    model: str  # fhirpathpy model name


# R4B changed no ImagingStudy element or datatype used here, so it shares the R4 packs.
VERSIONS = {
    "R4": FhirVersion("R4", "4.0.1", "r4", "r4"),
    "R4B": FhirVersion("R4B", "4.3.0", "r4", "r4"),
    "R5": FhirVersion("R5", "5.0.0", "r5", "r5"),
    # The R6 ballot: ImagingStudy as on the 6.0.0-ballot3 page, over the R5 datatypes.
    "R6": FhirVersion("R6", "6.0.0-ballot3", "r6", "r5"),
}
# Versions users may ask for, whose packs are not part of this release yet.
PLANNED: dict[str, str] = {}
DEFAULT = "R4"


class UnknownVersion(ValueError):
    pass


def parse_version(text: str) -> FhirVersion:
    key = text.strip().upper()
    if key in VERSIONS:
        return VERSIONS[key]
    by_number = {v.number.upper(): v for v in VERSIONS.values()}  # 4.0.1, as reports print it
    if key in by_number:
        return by_number[key]
    if key in PLANNED:
        raise UnknownVersion(
            f"FHIR {key} ({PLANNED[key]}) has no rule pack in this release; available: " + ", ".join(VERSIONS)
        )
    names = [f"{v.name} ({v.number})" for v in VERSIONS.values()]
    raise UnknownVersion(f"unknown FHIR version {text!r}; available: " + ", ".join(names))
