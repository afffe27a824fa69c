"""One cross-check of an ImagingStudy against the study a DICOM source holds, whichever the
source: a folder of DICOM files (--dicom DIR) or a DICOMweb server (--dicomweb URL). The rule ids
(`dicom-files:*`) and the messages are the same for both; only the source's name changes.

A source that cannot answer for a study (a server down, an answer that is not DICOM JSON) is one
`dicomweb:unavailable` finding for that study: nothing is compared, and the output says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from validator import rule_ids as R
from validator.dicom.registry import DCM
from validator.evaluate.dicom.facts import DicomSeries, DicomStudy, SourceUnavailable, StudySource, Wording
from validator.rule_ids import implements

Report = Callable[[str, tuple, str], None]


def _items(value: object) -> list[tuple[int, dict]]:
    return [(i, v) for i, v in enumerate(value) if isinstance(v, dict)] if isinstance(value, list) else []


def study_uid(study: dict) -> tuple[str | None, tuple]:
    """The Study Instance UID of an ImagingStudy (urn:oid: removed) and where it is written."""
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


@implements(R.DICOMWEB_UNAVAILABLE, R.FILES_COUNTS, R.FILES_SERIES_EXTRA, R.FILES_SERIES_MISSING,
            R.FILES_STUDY_NOT_FOUND)  # fmt: skip
def cross_check(study: dict, source: StudySource, report: Report) -> None:
    uid, uid_ptr = study_uid(study)
    try:
        held = source.study(uid) if uid else None
    except SourceUnavailable as error:
        report(R.DICOMWEB_UNAVAILABLE, uid_ptr, f"study {uid} not cross-checked: {error}")
        return
    if held is None:
        report(R.FILES_STUDY_NOT_FOUND, uid_ptr, source.not_found(uid))
        return
    w = source.wording
    listed = {s["uid"]: (i, s) for i, s in _items(study.get("series")) if isinstance(s.get("uid"), str)}
    for suid, fs in held.series.items():
        if suid not in listed:
            report(R.FILES_SERIES_MISSING, ("series",), f"series {suid} (Series Number {fs.number}, {fs.modality}, "
                   f"{len(fs.instances)} instance(s)) is {w.at} but not in the ImagingStudy")  # fmt: skip
    for suid, (i, s) in listed.items():
        fs = held.series.get(suid)
        sp = ("series", i)
        if fs is None:
            report(R.FILES_SERIES_EXTRA, (*sp, "uid"), f"series[{i}] {suid} is not {w.at_where}")
            continue
        _series(s, fs, sp, i, w, report)
    n_series, n_instances = _count(study.get("numberOfSeries")), _count(study.get("numberOfInstances"))
    if n_series is not None and n_series != len(held.series):
        report(R.FILES_COUNTS, ("numberOfSeries",), f"numberOfSeries is {n_series}; {w.holds} "
               f"{len(held.series)} series")  # fmt: skip
    if n_instances is not None and n_instances != held.instance_count:
        report(R.FILES_COUNTS, ("numberOfInstances",), f"numberOfInstances is {n_instances}; {w.holds} "
               f"{held.instance_count} instances")  # fmt: skip
    _started(study.get("started"), held, w, report)


@implements(R.FILES_COUNTS, R.FILES_INSTANCE_EXTRA, R.FILES_INSTANCE_MISSING, R.FILES_MODALITY, R.FILES_NUMBER,
            R.FILES_SOP_CLASS)
def _series(s: dict, fs: DicomSeries, sp: tuple, i: int, w: Wording, report: Report) -> None:
    modality = _modality(s.get("modality"))
    if modality and fs.modality and modality != fs.modality:
        report(R.FILES_MODALITY, (*sp, "modality"), f"series[{i}] modality is {modality}; {w.says} {fs.modality}")
    number = _count(s.get("number"))
    if number is not None and fs.number is not None and number != fs.number:
        report(
            R.FILES_NUMBER, (*sp, "number"), f"series[{i}].number is {number}; its DICOM Series Number is {fs.number}"
        )
    count = _count(s.get("numberOfInstances"))
    if count is not None and count != len(fs.instances):
        report(R.FILES_COUNTS, (*sp, "numberOfInstances"), f"series[{i}].numberOfInstances is {count}; {w.holds} "
               f"{len(fs.instances)}")  # fmt: skip
    instances = {x["uid"]: (j, x) for j, x in _items(s.get("instance")) if isinstance(x.get("uid"), str)}
    if not instances:
        return  # the series lists no instances: a partial listing, counted above
    for iuid, fi in fs.instances.items():
        if iuid not in instances:
            named = f"{fi.label}, " if fi.label else ""
            report(R.FILES_INSTANCE_MISSING, (*sp, "instance"), f"instance {iuid} ({named}Instance Number "
                   f"{fi.number}) of series[{i}] is {w.at} but not listed")  # fmt: skip
    for iuid, (j, x) in instances.items():
        ip = (*sp, "instance", j)
        fi = fs.instances.get(iuid)
        if fi is None:
            report(R.FILES_INSTANCE_EXTRA, (*ip, "uid"), f"series[{i}].instance[{j}] {iuid} is not {w.at} in this "
                   "series")  # fmt: skip
            continue
        sop = _sop_class(x.get("sopClass"))
        if sop and fi.sop_class and sop != fi.sop_class:
            named = f" ({fi.label})" if fi.label else ""
            report(R.FILES_SOP_CLASS, (*ip, "sopClass"), f"series[{i}].instance[{j}] sopClass is {sop}; {w.says} "
                   f"SOP Class {fi.sop_class}{named}")  # fmt: skip
        number = _count(x.get("number"))
        if number is not None and fi.number is not None and number != fi.number:
            report(R.FILES_NUMBER, (*ip, "number"), f"series[{i}].instance[{j}].number is {number}; its DICOM Instance "
                   f"Number is {fi.number}")  # fmt: skip


_STARTED = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?)?")


@implements(R.FILES_STARTED)
def _started(started: object, held: DicomStudy, w: Wording, report: Report) -> None:
    if not isinstance(started, str) or not held.date or len(held.date) != 8:
        return
    m = _STARTED.match(started)
    if not m:
        return
    fhir_date = "".join(m.group(1, 2, 3))
    problems = []
    if fhir_date != held.date:
        problems.append(f"date {fhir_date} vs Study Date {held.date}")
    elif held.time and m.group(4):
        dicom_time = held.time.split(".")[0]
        fhir_time = m.group(4) + m.group(5) + (m.group(6) or "")
        width = min(len(dicom_time), len(fhir_time))
        if width >= 4 and fhir_time[:width] != dicom_time[:width]:
            problems.append(f"time {fhir_time[:width]} vs Study Time {dicom_time[:width]}")
    zone = started[m.end() :]
    if held.timezone and zone and zone != "Z" and zone.replace(":", "") != held.timezone:
        problems.append(f"time zone {zone} vs Timezone Offset From UTC {held.timezone}")
    if problems:
        report(R.FILES_STARTED, ("started",), f"started {started} disagrees with {w.name}: {'; '.join(problems)}")
