"""What a source of DICOM objects says about a study: its series and instances, with the
attributes the cross-check compares (evaluate/dicom/compare.py).

Two sources give these facts: a folder of DICOM files (files.py, --dicom DIR) and a DICOMweb
server (dicomweb.py, --dicomweb URL). The comparison never knows which one it reads, only how to
name it in a message (`Wording`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class DicomInstance:
    uid: str
    sop_class: str | None
    number: int | None
    label: str | None = None  # how a message names the object it was read from (a file name)


@dataclass
class DicomSeries:
    uid: str
    modality: str | None
    number: int | None
    instances: dict[str, DicomInstance] = field(default_factory=dict)


@dataclass
class DicomStudy:
    uid: str
    date: str | None
    time: str | None
    timezone: str | None
    series: dict[str, DicomSeries] = field(default_factory=dict)

    @property
    def instance_count(self) -> int:
        return sum(len(s.instances) for s in self.series.values())


@dataclass(frozen=True)
class Wording:
    """How the messages of the cross-check name a source, e.g. for a folder: `name` "the DICOM
    files", `says` "the DICOM files say", `holds` "the DICOM files hold", `at` "in the DICOM
    files", `at_where` "in the DICOM files of /data/study"."""

    name: str
    says: str
    holds: str
    at: str
    at_where: str


class SourceUnavailable(Exception):
    """The source could not say anything about a study (a server down, an answer not DICOM JSON):
    the message names the URL and the problem."""


class StudySource(Protocol):
    wording: Wording

    def study(self, uid: str) -> DicomStudy | None:
        """The study's facts, or None when the source does not hold it; raises SourceUnavailable."""
        ...

    def not_found(self, uid: str | None) -> str:
        """The message for a study the source does not hold (or a study without a Study UID)."""
        ...


def parse_int(value: object) -> int | None:
    """An Integer String (IS) as read from a header or a DICOM JSON answer, or None."""
    if isinstance(value, bool):
        return None
    try:
        return int(str(value).strip()) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
