"""The DICOM files of a folder as a source of study facts (--dicom DIR): only headers are read
(pydicom, no pixel data); an unreadable file is reported and skipped, never fatal. The
comparison with the ImagingStudy is compare.py's, shared with the DICOMweb source."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

from validator.evaluate.dicom.facts import DicomInstance, DicomSeries, DicomStudy, Wording, parse_int

_TAGS = ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "Modality", "SeriesNumber",
         "InstanceNumber", "StudyDate", "StudyTime", "TimezoneOffsetFromUTC"]  # fmt: skip


@dataclass
class DicomFolder:
    folder: str
    studies: dict[str, DicomStudy] = field(default_factory=dict)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    files: int = 0

    @property
    def wording(self) -> Wording:
        return Wording("the DICOM files", "the DICOM files say", "the DICOM files hold", "in the DICOM files",
                       f"in the DICOM files of {self.folder}")  # fmt: skip

    def study(self, uid: str) -> DicomStudy | None:
        return self.studies.get(uid)

    def not_found(self, uid: str | None) -> str:
        known = ", ".join(sorted(self.studies)[:3]) or "none"
        return f"no DICOM file in {self.folder} belongs to study {uid or '(no Study UID)'} (studies there: {known})"


class DicomFolderError(ValueError):
    """--dicom names something that is not a folder (usage error)."""


def _text(ds: object, name: str) -> str | None:
    value = getattr(ds, name, None)
    return str(value).strip() or None if value is not None else None


def read_dicom_folder(folder: Path) -> DicomFolder:
    if not folder.is_dir():
        raise DicomFolderError(f"{folder}: --dicom needs a folder of DICOM files")
    import logging  # with pydicom: not at every start-up

    from pydicom import dcmread

    # pydicom warns (and logs) about files it can still read; the validator never prints, and a
    # file it cannot read is reported as a finding instead.
    logging.getLogger("pydicom").addHandler(logging.NullHandler())
    index = DicomFolder(str(folder))
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        index.files += 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = dcmread(path, stop_before_pixels=True, specific_tags=_TAGS)
        except Exception as exc:  # pydicom raises many kinds on non-DICOM or broken files
            index.unreadable.append((str(path), f"{type(exc).__name__}: {exc}"[:200]))
            continue
        study_uid, series_uid, sop_uid = (
            _text(ds, n) for n in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
        )
        if not (study_uid and series_uid and sop_uid):
            index.unreadable.append((str(path), "no Study, Series or SOP Instance UID in the header"))
            continue
        study = index.studies.setdefault(
            study_uid,
            DicomStudy(study_uid, _text(ds, "StudyDate"), _text(ds, "StudyTime"), _text(ds, "TimezoneOffsetFromUTC")),
        )
        series = study.series.setdefault(
            series_uid,
            DicomSeries(series_uid, _text(ds, "Modality"), parse_int(getattr(ds, "SeriesNumber", None))),
        )
        series.instances[sop_uid] = DicomInstance(
            sop_uid, _text(ds, "SOPClassUID"), parse_int(getattr(ds, "InstanceNumber", None)), path.name
        )
    return index
