"""Reading the per-rule fixture files in tests/fixtures/rules/ into runnable cases.

A file lists the rules (ids, or families such as r4:*:card) it covers and named cases. A case
builds a payload from a base (`base` + `merge` + `set` (dotted paths) + `remove`), gives a whole `resource`, or gives
raw file content (`text`, with optional `suffix` and `invalid_utf8`). `expect` lists the issues
(rule and expression) that must be found; an empty list means a passing case. All issues must
match `expect` exactly, so a fixture also catches cascades and stray findings.
"""

from __future__ import annotations

import copy
import json
import shutil
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

FIXTURES = Path(__file__).parent / "fixtures" / "rules"

IMR = "https://profiles.ihe.net/RAD/IMR/StructureDefinition/imr-imagingstudy"
IMR_ENDPOINT = "https://profiles.ihe.net/RAD/IMR/StructureDefinition/imaging-study-endpoint"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
NARRATIVE = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">fixture</div>'}

BASES = {
    "study": {
        "resourceType": "ImagingStudy",
        "id": "fixture",
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">CT chest, 1 series</div>'},
        "status": "available",
        "subject": {"reference": "Patient/p1"},
        "series": [
            {
                "uid": "1.2.3.4.1",
                "modality": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"},
                "instance": [
                    {
                        "uid": "1.2.3.4.1.1",
                        "sopClass": {"system": "urn:ietf:rfc:3986", "code": "urn:oid:1.2.840.10008.5.1.4.1.1.2"},
                    }
                ],
            }
        ],
    },
    # An IMR study and the Imaging Study Endpoint it refers to, in one Bundle.
    "imr-bundle": {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "https://pacs.example.org/fhir/ImagingStudy/imr1",
                "resource": {
                    "resourceType": "ImagingStudy",
                    "id": "imr1",
                    "meta": {"profile": [IMR]},
                    "text": NARRATIVE,
                    "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.826.0.1.3680043.10.1001.1"}],
                    "status": "available",
                    "modality": [{"system": DCM, "code": "CT"}],
                    "subject": {"reference": "Patient/p1"},
                    "started": "2024-03-14T09:30:00+01:00",
                    "endpoint": [{"reference": "Endpoint/ep1"}],
                    "series": [{"uid": "1.2.826.0.1.3680043.10.1001.1.1", "modality": {"system": DCM, "code": "CT"}}],
                },
            },
            {
                "fullUrl": "https://pacs.example.org/fhir/Endpoint/ep1",
                "resource": {
                    "resourceType": "Endpoint",
                    "id": "ep1",
                    "meta": {"profile": [IMR_ENDPOINT]},
                    "text": NARRATIVE,
                    "status": "active",
                    "connectionType": {
                        "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                        "code": "dicom-wado-rs",
                    },
                    "payloadType": [{"coding": [{"system": DCM, "code": "113014", "display": "Study"}]}],
                    "address": "https://pacs.example.org/dicomweb/studies/1.2.826.0.1.3680043.10.1001.1",
                },
            },
        ],
    },
}


# A real CT study from pydicom's test data: 7 instances in 2 series (Study Instance UID below).
CT_STUDY_UID = "1.3.6.1.4.1.5962.1.1.0.0.0.1194734704.16302.0.1"


@cache
def dicom_folder(name: str) -> Path:
    """A folder of DICOM files for --dicom cases: `ct-study`, or `ct-study-with-junk` (plus a text file)."""
    import tempfile

    from pydicom import dcmread
    from pydicom.data import get_testdata_file

    source = Path(get_testdata_file("CT_small.dcm")).parent
    target = Path(tempfile.mkdtemp(prefix=f"dicom-{name}-"))
    for path in sorted(source.rglob("*")):
        if path.is_file() and path.suffix not in (".txt", ".py"):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ds = dcmread(path, stop_before_pixels=True, specific_tags=["StudyInstanceUID"])
            except Exception:
                continue
            if str(getattr(ds, "StudyInstanceUID", "")) == CT_STUDY_UID:
                shutil.copy(path, target / path.name)
    if name == "ct-study-with-junk":
        (target / "notes.txt").write_text("not a DICOM file")
    return target


@cache
def study_from_dicom(folder_name: str = "ct-study") -> dict:
    """An ImagingStudy built from the DICOM headers of the folder (the way a PACS would)."""
    from pydicom import dcmread

    series: dict[str, dict] = {}
    for path in sorted(dicom_folder(folder_name).iterdir()):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = dcmread(path, stop_before_pixels=True)
        except Exception:
            continue
        s = series.setdefault(
            str(ds.SeriesInstanceUID),
            {
                "uid": str(ds.SeriesInstanceUID),
                "number": int(ds.SeriesNumber),
                "modality": {"system": DCM, "code": str(ds.Modality)},
                "instance": [],
            },
        )
        s["instance"].append(
            {
                "uid": str(ds.SOPInstanceUID),
                "number": int(ds.InstanceNumber),
                "sopClass": {"system": "urn:ietf:rfc:3986", "code": f"urn:oid:{ds.SOPClassUID}"},
            }
        )
        date, time = str(ds.StudyDate), str(ds.StudyTime)
    listed = sorted(series.values(), key=lambda s: s["number"])
    for s in listed:
        s["instance"].sort(key=lambda i: i["number"])
        s["numberOfInstances"] = len(s["instance"])
    return {
        "resourceType": "ImagingStudy",
        "id": "from-dicom",
        "text": NARRATIVE,
        "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{CT_STUDY_UID}"}],
        "status": "available",
        "modality": [{"system": DCM, "code": "CT"}],
        "subject": {"reference": "Patient/p"},
        "started": f"{date[:4]}-{date[4:6]}-{date[6:]}T{time[:2]}:{time[2:4]}:{time[4:6]}Z",
        "numberOfSeries": len(listed),
        "numberOfInstances": sum(len(s["instance"]) for s in listed),
        "series": listed,
    }


RULESETS = {"R4": "r4", "R4B": "r4", "R5": "r5", "R6": "r6", "R6-ballot3": "r6-ballot3", None: "r4"}


@dataclass
class Case:
    file: str
    name: str
    rules: list[str]
    payload: dict | None
    text: str | None
    suffix: str
    invalid_utf8: bool
    expect: list[dict]
    profiles: tuple[str, ...] = ()
    dicom_files: str | None = None
    version: str | None = None  # validated with --fhir-version VERSION when the file lists versions
    ignore: tuple[str, ...] = ()  # rules outside what the file tests (e.g. terminology coverage notes)
    limits: tuple[tuple[str, int], ...] = ()  # input limits other than the defaults
    dicomweb: str | None = None  # --dicomweb: `pacs` (Orthanc of tests/pacs.py) or `down` (no server)

    @property
    def ruleset(self) -> str:
        return RULESETS[self.version]

    @property
    def id(self) -> str:
        return f"{self.file}::{self.name}" + (f"[{self.version}]" if self.version else "")


def _expand(value: object) -> object:
    """{"$repeat": "a", "times": N} stands for a string of N copies (for length limits)."""
    if isinstance(value, dict):
        if "$repeat" in value:
            return value["$repeat"] * value["times"]
        return {k: _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    return value


def _merge(target: dict, patch: dict) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _node(target: object, parts: list[str]) -> object:
    for part in parts:
        target = target[int(part)] if isinstance(target, list) else target[part]
    return target


def _remove(target: dict, dotted: str) -> None:
    parts = dotted.split(".")
    node = _node(target, parts[:-1])
    del node[int(parts[-1]) if isinstance(node, list) else parts[-1]]


def _set(target: dict, dotted: str, value: object) -> None:
    parts = dotted.split(".")
    node = _node(target, parts[:-1])
    node[int(parts[-1]) if isinstance(node, list) else parts[-1]] = copy.deepcopy(value)


def _for_version(value: object, version: str | None, ruleset: str) -> object:
    """{v} in strings is the version's rule prefix; the R4 base study becomes the version's shape."""
    if isinstance(value, str):
        return value.replace("{v}", ruleset)
    if isinstance(value, list):
        return [_for_version(v, version, ruleset) for v in value]
    if isinstance(value, dict):
        return {k: _for_version(v, version, ruleset) for k, v in value.items()}
    return value


def _reshape(study: dict, version: str) -> dict:
    """The base study in the shape of R5 (modality as CodeableConcept) or R6 (and sopClass as oid)."""
    if version not in ("R5", "R6", "R6-ballot3"):
        return study
    if version != "R5" and "series" in study and "identifier" not in study:
        study["identifier"] = [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.3.4"}]  # ist-1
    for s in study.get("series") or []:
        if isinstance(s.get("modality"), dict) and "coding" not in s["modality"]:
            s["modality"] = {"coding": [s["modality"]]}
        for inst in s.get("instance") or []:
            if version != "R5" and isinstance(inst.get("sopClass"), dict):
                inst["sopClass"] = inst["sopClass"]["code"]
    return study


def load_cases() -> list[Case]:
    cases = []
    for path in sorted(FIXTURES.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        versions = data.get("versions") or [None]
        for version in versions:
            ruleset = RULESETS[version]
            cases.extend(_cases(path, _for_version(data, version, ruleset), version))
    return cases


def _cases(path: Path, data: dict, version: str | None) -> list[Case]:
    cases = []
    for raw in data["cases"]:
        payload = None
        if "resource" in raw:
            payload = raw["resource"]
        elif "text_parts" in raw:
            raw = {**raw, "text": "".join(piece * times for piece, times in raw["text_parts"])}
        elif "text" not in raw:
            base = raw.get("base", "study")
            if base.startswith("pacs-"):  # a study of the test PACS, its endpoint the DICOMweb service
                from pacs import PLACEHOLDER, pacs_study

                payload = pacs_study(base.removeprefix("pacs-"), endpoint=f"{PLACEHOLDER}/dicom-web")
            else:
                payload = copy.deepcopy(study_from_dicom() if base == "dicom-ct" else BASES[base])
            reshape = base == "study" and version
            _merge(payload, _expand(raw.get("merge") or {}))
            for dotted, value in (raw.get("set") or {}).items():
                _set(payload, dotted, _expand(value))
            if reshape:
                payload = _reshape(payload, version)
            for dotted in raw.get("remove") or []:
                _remove(payload, dotted)
        cases.append(
            Case(
                file=path.name,
                name=raw["name"],
                rules=list(data["rules"]),
                payload=payload,
                text=raw.get("text"),
                suffix=raw.get("suffix", ".json"),
                invalid_utf8=bool(raw.get("invalid_utf8")),
                expect=list(raw.get("expect") or []),
                # A pack file is named relative to tests/fixtures/ (a profile name or URL as it is).
                profiles=tuple(str(FIXTURES.parent / p) if p.endswith(".yaml") else p
                               for p in raw.get("profiles") or ()),
                dicom_files=raw.get("dicom_files"),
                version=version,
                ignore=tuple(data.get("ignore") or ()),
                limits=tuple(sorted((raw.get("limits") or {}).items())),
                dicomweb=raw.get("dicomweb"),
            )
        )
    return cases


def write_case(case: Case, directory: Path) -> Path:
    path = directory / f"case{case.suffix}"
    data = case.text.encode("utf-8") if case.text is not None else json.dumps(case.payload, indent=2).encode()
    if case.invalid_utf8:
        data += b"\xff\xfe"
    path.write_bytes(data)
    return path


ELEMENT_ASPECTS = ("card", "type", "binding", "target", "target-profile", "pattern", "fixed", "must-support", "slicing")


def family(rule_id: str) -> str:
    """r4:ImagingStudy.status:card -> r4:*:card: element rules generated from element tables (and
    profile constraints) are covered as a family; their fidelity to the spec is tested apart."""
    parts = rule_id.split(":")
    if len(parts) >= 3 and parts[-1] in ELEMENT_ASPECTS:
        return f"{parts[0]}:*:{parts[-1]}"
    return rule_id


def json_paths(node: object, ptr: tuple = ()) -> list[tuple]:
    """Every place in a JSON tree, as a pointer (the root is ())."""
    out = [ptr]
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(json_paths(v, (*ptr, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(json_paths(v, (*ptr, i)))
    return out
