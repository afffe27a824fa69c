"""Cross-check of an ImagingStudy against DICOM files (--dicom DIR): only headers are read
(pydicom, no pixel data); an unreadable file is reported and skipped, never fatal."""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from validator import rule_ids as R
from validator.dicom.registry import DCM
from validator.rule_ids import implements

Report = Callable[[str, tuple, str], None]

_TAGS = ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "Modality", "SeriesNumber",
         "InstanceNumber", "StudyDate", "StudyTime", "TimezoneOffsetFromUTC"]  # fmt: skip


@dataclass
class DicomInstance:
    path: str
    uid: str
    sop_class: str | None
    number: int | None


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


@dataclass
class DicomFolder:
    folder: str
    studies: dict[str, DicomStudy] = field(default_factory=dict)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    files: int = 0


class DicomFolderError(ValueError):
    """--dicom names something that is not a folder (usage error)."""


def _text(ds: object, name: str) -> str | None:
    value = getattr(ds, name, None)
    return str(value).strip() or None if value is not None else None


def _int(ds: object, name: str) -> int | None:
    value = getattr(ds, name, None)
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def read_dicom_folder(folder: Path) -> DicomFolder:
    if not folder.is_dir():
        raise DicomFolderError(f"{folder}: --dicom needs a folder of DICOM files")
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
            series_uid, DicomSeries(series_uid, _text(ds, "Modality"), _int(ds, "SeriesNumber"))
        )
        series.instances[sop_uid] = DicomInstance(
            str(path), sop_uid, _text(ds, "SOPClassUID"), _int(ds, "InstanceNumber")
        )
    return index


def _items(value: object) -> list[tuple[int, dict]]:
    return [(i, v) for i, v in enumerate(value) if isinstance(v, dict)] if isinstance(value, list) else []


def _study_uid(study: dict) -> tuple[str | None, tuple]:
    for k, ident in _items(study.get("identifier")):
        if ident.get("system") == "urn:dicom:uid" and isinstance(ident.get("value"), str):
            value = ident["value"]
            return (value[8:] if value.startswith("urn:oid:") else value), ("identifier", k, "value")
    return None, ("identifier",)


def _modality(value: object) -> str | None:
    if not isinstance(value, dict):
        return None
    codings = value.get("coding") if isinstance(value.get("coding"), list) else [value]
    for c in codings:
        if isinstance(c, dict) and c.get("system") == DCM and isinstance(c.get("code"), str):
            return c["code"]
    return None


def _sop_class(value: object) -> str | None:
    code = value.get("code") if isinstance(value, dict) else value
    if not isinstance(code, str):
        return None
    return code[8:] if code.startswith("urn:oid:") else code


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


@implements(R.FILES_COUNTS, R.FILES_SERIES_EXTRA, R.FILES_SERIES_MISSING, R.FILES_STUDY_NOT_FOUND)
def cross_check(study: dict, index: DicomFolder, report: Report) -> None:
    uid, uid_ptr = _study_uid(study)
    files = index.studies.get(uid) if uid else None
    if files is None:
        known = ", ".join(sorted(index.studies)[:3]) or "none"
        report(R.FILES_STUDY_NOT_FOUND, uid_ptr, f"no DICOM file in {index.folder} belongs to study "
               f"{uid or '(no Study UID)'} (studies there: {known})")  # fmt: skip
        return
    listed = {s["uid"]: (i, s) for i, s in _items(study.get("series")) if isinstance(s.get("uid"), str)}
    for suid, fs in files.series.items():
        if suid not in listed:
            report(R.FILES_SERIES_MISSING, ("series",), f"series {suid} (Series Number {fs.number}, {fs.modality}, "
                   f"{len(fs.instances)} instance(s)) is in the DICOM files but not in the ImagingStudy")  # fmt: skip
    for suid, (i, s) in listed.items():
        fs = files.series.get(suid)
        sp = ("series", i)
        if fs is None:
            report(R.FILES_SERIES_EXTRA, (*sp, "uid"), f"series[{i}] {suid} has no DICOM file in {index.folder}")
            continue
        _series(s, fs, sp, i, report)
    n_series, n_instances = _count(study.get("numberOfSeries")), _count(study.get("numberOfInstances"))
    if n_series is not None and n_series != len(files.series):
        report(R.FILES_COUNTS, ("numberOfSeries",), f"numberOfSeries is {n_series}; the DICOM files hold "
               f"{len(files.series)} series")  # fmt: skip
    if n_instances is not None and n_instances != files.instance_count:
        report(R.FILES_COUNTS, ("numberOfInstances",), f"numberOfInstances is {n_instances}; the DICOM files hold "
               f"{files.instance_count} instances")  # fmt: skip
    _started(study.get("started"), files, report)


@implements(R.FILES_COUNTS, R.FILES_INSTANCE_EXTRA, R.FILES_INSTANCE_MISSING, R.FILES_MODALITY, R.FILES_NUMBER,
            R.FILES_SOP_CLASS)
def _series(s: dict, fs: DicomSeries, sp: tuple, i: int, report: Report) -> None:
    modality = _modality(s.get("modality"))
    if modality and fs.modality and modality != fs.modality:
        report(
            R.FILES_MODALITY,
            (*sp, "modality"),
            f"series[{i}] modality is {modality}; its DICOM files say {fs.modality}",
        )
    number = _count(s.get("number"))
    if number is not None and fs.number is not None and number != fs.number:
        report(
            R.FILES_NUMBER, (*sp, "number"), f"series[{i}].number is {number}; its DICOM Series Number is {fs.number}"
        )
    count = _count(s.get("numberOfInstances"))
    if count is not None and count != len(fs.instances):
        report(R.FILES_COUNTS, (*sp, "numberOfInstances"), f"series[{i}].numberOfInstances is {count}; the DICOM "
               f"files hold {len(fs.instances)}")  # fmt: skip
    instances = {x["uid"]: (j, x) for j, x in _items(s.get("instance")) if isinstance(x.get("uid"), str)}
    if not instances:
        return  # the series lists no instances: a partial listing, counted above
    for iuid, fi in fs.instances.items():
        if iuid not in instances:
            report(R.FILES_INSTANCE_MISSING, (*sp, "instance"), f"instance {iuid} ({Path(fi.path).name}, Instance "
                   f"Number {fi.number}) is in the DICOM files of series[{i}] but not listed")  # fmt: skip
    for iuid, (j, x) in instances.items():
        ip = (*sp, "instance", j)
        fi = fs.instances.get(iuid)
        if fi is None:
            report(
                R.FILES_INSTANCE_EXTRA,
                (*ip, "uid"),
                f"series[{i}].instance[{j}] {iuid} has no DICOM file in this series",
            )
            continue
        sop = _sop_class(x.get("sopClass"))
        if sop and fi.sop_class and sop != fi.sop_class:
            report(R.FILES_SOP_CLASS, (*ip, "sopClass"), f"series[{i}].instance[{j}] sopClass is {sop}; the DICOM file "
                   f"{Path(fi.path).name} has SOP Class {fi.sop_class}")  # fmt: skip
        number = _count(x.get("number"))
        if number is not None and fi.number is not None and number != fi.number:
            report(R.FILES_NUMBER, (*ip, "number"), f"series[{i}].instance[{j}].number is {number}; its DICOM Instance "
                   f"Number is {fi.number}")  # fmt: skip


_STARTED = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?)?")


@implements(R.FILES_STARTED)
def _started(started: object, files: DicomStudy, report: Report) -> None:
    if not isinstance(started, str) or not files.date or len(files.date) != 8:
        return
    m = _STARTED.match(started)
    if not m:
        return
    fhir_date = "".join(m.group(1, 2, 3))
    problems = []
    if fhir_date != files.date:
        problems.append(f"date {fhir_date} vs Study Date {files.date}")
    elif files.time and m.group(4):
        dicom_time = files.time.split(".")[0]
        fhir_time = m.group(4) + m.group(5) + (m.group(6) or "")
        width = min(len(dicom_time), len(fhir_time))
        if width >= 4 and fhir_time[:width] != dicom_time[:width]:
            problems.append(f"time {fhir_time[:width]} vs Study Time {dicom_time[:width]}")
    zone = started[m.end() :]
    if files.timezone and zone and zone != "Z" and zone.replace(":", "") != files.timezone:
        problems.append(f"time zone {zone} vs Timezone Offset From UTC {files.timezone}")
    if problems:
        report(
            R.FILES_STARTED, ("started",), f"started {started} disagrees with the DICOM files: {'; '.join(problems)}"
        )
