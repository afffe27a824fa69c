"""ImagingStudy search parameters per FHIR version: type, and the elements each one searches.

From the spec's search parameter tables (R4 imagingstudy.html#search, R5 likewise). A path is a
dotted walk from the resource; `targets` names the resource types a reference may point to.
R5 renamed `basedon` to `based-on` and `bodysite` to `body-site`, added `body-structure`, and
dropped `interpreter` (R5 has no such element); `reason` searches a CodeableReference.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # token | reference | date | string | uri
    paths: tuple[str, ...]  # dotted element paths from the ImagingStudy
    targets: tuple[str, ...] = ()  # reference targets


def _p(name: str, type_: str, *paths: str, targets: tuple[str, ...] = ()) -> Param:
    return Param(name, type_, paths, targets)


R4 = {p.name: p for p in (
    _p("identifier", "token", "identifier"),
    _p("patient", "reference", "subject", targets=("Patient",)),
    _p("basedon", "reference", "basedOn", targets=("CarePlan", "ServiceRequest", "Appointment", "AppointmentResponse",
                                                     "Task")),
    _p("bodysite", "token", "series.bodySite"),
    _p("dicom-class", "token", "series.instance.sopClass"),
    _p("encounter", "reference", "encounter", targets=("Encounter",)),
    _p("endpoint", "reference", "endpoint", "series.endpoint", targets=("Endpoint",)),
    _p("instance", "token", "series.instance.uid"),
    _p("interpreter", "reference", "interpreter", targets=("Practitioner", "PractitionerRole")),
    _p("modality", "token", "series.modality"),
    _p("performer", "reference", "series.performer.actor",
       targets=("Practitioner", "PractitionerRole", "Organization", "CareTeam", "Patient", "Device", "RelatedPerson")),
    _p("reason", "token", "reasonCode"),
    _p("referrer", "reference", "referrer", targets=("Practitioner", "PractitionerRole")),
    _p("series", "token", "series.uid"),
    _p("started", "date", "started"),
    _p("status", "token", "status"),
    _p("subject", "reference", "subject", targets=("Patient", "Device", "Group")),
)}  # fmt: skip

R5 = {p.name: p for p in (
    _p("identifier", "token", "identifier"),
    _p("patient", "reference", "subject", targets=("Patient",)),
    _p("based-on", "reference", "basedOn", targets=("CarePlan", "ServiceRequest", "Appointment", "AppointmentResponse",
                                                      "Task")),
    _p("body-site", "token", "series.bodySite.concept"),
    _p("body-structure", "reference", "series.bodySite.reference", targets=("BodyStructure",)),
    _p("dicom-class", "token", "series.instance.sopClass"),
    _p("encounter", "reference", "encounter", targets=("Encounter",)),
    _p("endpoint", "reference", "endpoint", "series.endpoint", targets=("Endpoint",)),
    _p("instance", "token", "series.instance.uid"),
    _p("modality", "token", "series.modality"),
    _p("performer", "reference", "series.performer.actor",
       targets=("Practitioner", "PractitionerRole", "Organization", "CareTeam", "Patient", "Device", "RelatedPerson",
                "HealthcareService")),
    _p("reason", "token", "reason.concept"),
    _p("referrer", "reference", "referrer", targets=("Practitioner", "PractitionerRole")),
    _p("series", "token", "series.uid"),
    _p("started", "date", "started"),
    _p("status", "token", "status"),
    _p("subject", "reference", "subject", targets=("Patient", "Device", "Group")),
)}  # fmt: skip

TABLES = {"R4": R4, "R4B": R4, "R5": R5}


def table_for(version: str) -> dict[str, Param]:
    """The table of a FHIR version name (R4, R4B, R5); later versions use R5's."""
    return TABLES.get(version, R5)
