"""A real PACS for the --dicomweb tests: Orthanc with its DICOMweb plugin (Debian's `orthanc` and
`orthanc-dicomweb`, which `make test` installs), started on a free 127.0.0.1 port with a
configuration, storage and index in the test's own folder, loaded with DICOM files generated
here with pydicom, and stopped at the end. Nothing outside that folder is written or signalled.

The studies (STUDIES) are fixed, so that fixture payloads can name their UIDs; `pacs_study` builds
the ImagingStudy a PACS would publish for each, which must agree with what Orthanc answers.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

DCM = "http://dicom.nema.org/resources/ontology/DCM"
ROOT = "1.2.826.0.1.3680043.10.2020"  # the UIDs of the generated studies
# Fixture payloads name the server by this origin; the tests put the running server's in its place.
PLACEHOLDER = "http://pacs.invalid"
USER, PASSWORD = "validator", "dicomweb-test"
# Where Debian's packages put the server and the plugin (the plugin's own name carries a version).
ORTHANC = "Orthanc"
PLUGIN_PLACES = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc")
CT, ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1"
MR, US, BASIC_SR = "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.5.1.4.1.1.88.11"


@dataclass(frozen=True)
class Series:
    number: int
    modality: str
    sop_class: str
    instances: int


@dataclass(frozen=True)
class Study:
    key: str
    uid: str
    date: str
    time: str
    series: tuple[Series, ...]
    timezone: str | None = None

    def series_uid(self, number: int) -> str:
        return f"{self.uid}.{number}"

    def instance_uid(self, series: int, number: int) -> str:
        return f"{self.uid}.{series}.{number}"


STUDIES = {
    s.key: s
    for s in (
        Study("ct", f"{ROOT}.1", "20240102", "101500", (Series(1, "CT", CT, 3), Series(2, "SR", BASIC_SR, 1))),
        Study("mr", f"{ROOT}.2", "20240305", "083000", (Series(3, "MR", MR, 2), Series(4, "MR", MR, 1)),
              timezone="+0100"),
        Study("us", f"{ROOT}.3", "20240611", "141210", (Series(1, "US", US, 2),)),
    )
}


def write_dicom(study: Study, folder: Path) -> list[Path]:
    """The DICOM files of a study: headers only (no pixel data: the cross-check reads none)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    paths = []
    for s in study.series:
        for n in range(1, s.instances + 1):
            ds = Dataset()
            ds.PatientName, ds.PatientID = "Test^Patient", f"P-{study.key}"
            ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime = study.uid, study.date, study.time
            ds.StudyID, ds.AccessionNumber = study.key, f"A-{study.key}"
            if study.timezone:
                ds.TimezoneOffsetFromUTC = study.timezone
            ds.SeriesInstanceUID, ds.SeriesNumber, ds.Modality = study.series_uid(s.number), s.number, s.modality
            ds.SOPClassUID, ds.SOPInstanceUID, ds.InstanceNumber = s.sop_class, study.instance_uid(s.number, n), n
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta = meta
            path = folder / f"{study.key}-{s.number}-{n}.dcm"
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
    return paths


def pacs_study(key: str, endpoint: str | None = None) -> dict:
    """The R4 ImagingStudy a PACS publishes for a generated study; with `endpoint`, a contained
    dicom-wado-rs Endpoint of that address (the service base) referenced by the study."""
    study = STUDIES[key]
    started = f"{study.date[:4]}-{study.date[4:6]}-{study.date[6:]}T{study.time[:2]}:{study.time[2:4]}:{study.time[4:]}"
    zone = f"{study.timezone[:3]}:{study.timezone[3:]}" if study.timezone else "Z"
    series = [
        {
            "uid": study.series_uid(s.number),
            "number": s.number,
            "modality": {"system": DCM, "code": s.modality},
            "numberOfInstances": s.instances,
            "instance": [
                {"uid": study.instance_uid(s.number, n), "number": n,
                 "sopClass": {"system": "urn:ietf:rfc:3986", "code": f"urn:oid:{s.sop_class}"}}
                for n in range(1, s.instances + 1)
            ],
        }
        for s in study.series
    ]
    acquisition = sorted({s.modality for s in study.series if s.modality != "SR"})  # R4: CID 29 only
    resource: dict = {
        "resourceType": "ImagingStudy",
        "id": f"pacs-{key}",
        "text": {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{key} study</div>'},
        "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{study.uid}"}],
        "status": "available",
        "modality": [{"system": DCM, "code": m} for m in acquisition],
        "subject": {"reference": "Patient/p"},
        "started": started + zone,
        "numberOfSeries": len(series),
        "numberOfInstances": sum(s.instances for s in study.series),
        "series": series,
    }
    if endpoint is not None:
        resource["contained"] = [endpoint_resource("wado", endpoint)]
        resource["endpoint"] = [{"reference": "#wado"}]
    return resource


def endpoint_resource(rid: str, address: str) -> dict:
    return {
        "resourceType": "Endpoint",
        "id": rid,
        "text": {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{rid}</div>'},
        "status": "active",
        "connectionType": {"system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                           "code": "dicom-wado-rs"},
        "payloadType": [{"coding": [{"system": DCM, "code": "113014", "display": "Study"}]}],
        "address": address,
    }  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _plugin() -> Path:
    for place in PLUGIN_PLACES:
        found = sorted(Path(place).glob("libOrthancDicomWeb.so*")) if Path(place).is_dir() else []
        if found:
            return found[0]
    raise RuntimeError("the DICOMweb tests need Debian's orthanc-dicomweb package: `make test` installs it "
                       "(apt-get install orthanc orthanc-dicomweb)")  # fmt: skip


def _serve_folders() -> Path | None:
    for place in PLUGIN_PLACES:
        found = sorted(Path(place).glob("libServeFolders.so*")) if Path(place).is_dir() else []
        if found:
            return found[0]
    return None


@dataclass
class Pacs:
    """A running Orthanc: `url` is its DICOMweb base, `origin` its HTTP root, `env` the variables
    holding its credentials (for --dicomweb-user-env / --dicomweb-password-env)."""

    folder: Path
    port: int
    process: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=lambda: {"PACS_USER": USER, "PACS_PASSWORD": PASSWORD})

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.origin}/dicom-web"

    @property
    def static(self) -> str:
        """A folder Orthanc serves as plain files (ServeFolders): answers that are not DICOM JSON."""
        return f"{self.origin}/static"

    @classmethod
    def start(cls, folder: Path) -> Pacs:
        binary = shutil.which(ORTHANC)
        if binary is None:
            raise RuntimeError("the DICOMweb tests need Debian's orthanc package: `make test` installs it "
                               "(apt-get install orthanc orthanc-dicomweb)")  # fmt: skip
        pacs = cls(folder, free_port())
        plugins = [str(_plugin())]
        static = folder / "static"
        static.mkdir()
        serve = _serve_folders()
        if serve is not None:
            plugins.append(str(serve))
        config = {
            "Name": "imaging-validator-test",
            "StorageDirectory": str(folder / "storage"),
            "IndexDirectory": str(folder / "index"),
            "TemporaryDirectory": str(folder / "tmp"),  # not the system's /tmp/Orthanc
            "HttpPort": pacs.port,
            "DicomServerEnabled": False,  # no DICOM port: only HTTP, on the loopback interface
            "DicomPort": free_port(),
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {USER: PASSWORD},
            "HttpThreadsCount": 4,
            "ConcurrentJobs": 1,
            "SaveJobs": False,
            "Plugins": plugins,
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
            "ServeFolders": {"/static": str(static)},
        }
        path = folder / "orthanc.json"
        path.write_text(json.dumps(config, indent=2))
        with (folder / "orthanc.log").open("wb") as log:  # the child keeps its own copy of the handle
            pacs.process = subprocess.Popen([binary, str(path)], cwd=folder, stdout=log, stderr=subprocess.STDOUT)
        try:
            pacs._wait()
            pacs._load()
        except BaseException:
            pacs.stop()
            raise
        return pacs

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.origin, auth=(USER, PASSWORD), timeout=30)

    def _wait(self) -> None:
        deadline = time.monotonic() + 60
        with self.client() as http:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"Orthanc stopped at start-up:\n{self.log()}")
                try:
                    if http.get("/system").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(f"Orthanc did not answer within 60 s:\n{self.log()}")

    def _load(self) -> None:
        """Every generated study uploaded through Orthanc's REST API (its own store, in our folder)."""
        files = self.folder / "dicom"
        files.mkdir()
        with self.client() as http:
            for study in STUDIES.values():
                for path in write_dicom(study, files):
                    answer = http.post("/instances", content=path.read_bytes())
                    answer.raise_for_status()

        # Plain files (not DICOM JSON) behind the paths fixtures point at: a metadata answer of
        # another media type, and a "QIDO-RS service" that answers a web page.
        for key, study in STUDIES.items():
            self.serve_file(f"plain/studies/{study.uid}/metadata", b"[]")
            self.serve_file(f"{key}/studies", b"<html>a portal page</html>")

    def log(self) -> str:
        path = self.folder / "orthanc.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def serve_file(self, relative: str, data: bytes) -> str:
        """A plain file served under /static (not DICOM JSON); returns its URL."""
        target = self.folder / "static" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return f"{self.static}/{relative}"

    def stop(self) -> None:
        """Stop the Orthanc this test started (its own process only)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
