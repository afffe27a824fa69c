"""Real FHIR servers for the probe's tests: start on a free 127.0.0.1 port, seed with PUTs, stop.

The fixtures below (three patients, two endpoints, five studies of CT, MR, US, CR and SR with
series, instances, accession numbers and start times at day boundaries) are written straight to
the server by the test, not through the probe's read-only client.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
MEDPLUM_DIR = HERE / "servers" / "medplum"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
UID = "urn:dicom:uid"
ACC_TYPE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}]}


def _patient(pid: str, mrn: str, family: str) -> dict:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": family, "given": ["Test"]}],
            "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": mrn}]}  # fmt: skip


def _endpoint(eid: str, kind: str) -> dict:
    return {"resourceType": "Endpoint", "id": eid, "status": "active",
            "connectionType": {"system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                               "code": kind},
            "payloadType": [{"text": "DICOM"}], "address": f"https://pacs.example.org/{eid}"}  # fmt: skip


def _study(sid: str, patient: str, uid: str, accession: str, started: str, series: list[tuple[str, str, list[str]]],
           status: str = "available", endpoint: str | None = "ep-wado") -> dict:  # fmt: skip
    body: dict = {
        "resourceType": "ImagingStudy", "id": sid, "status": status,
        "identifier": [{"system": UID, "value": f"urn:oid:{uid}"},
                       {"type": ACC_TYPE, "system": "http://hospital.example.org/accession", "value": accession}],
        "modality": [{"system": DCM, "code": m} for m in dict.fromkeys(s[1] for s in series)],
        "subject": {"reference": f"Patient/{patient}"},
        "started": started,
        "numberOfSeries": len(series),
        "numberOfInstances": sum(len(s[2]) for s in series),
        "series": [
            {"uid": suid, "number": n + 1, "modality": {"system": DCM, "code": mod},
             "numberOfInstances": len(instances),
             "instance": [{"uid": iuid, "number": k + 1,
                           "sopClass": {"system": "urn:ietf:rfc:3986", "code": "urn:oid:1.2.840.10008.5.1.4.1.1.2"}}
                          for k, iuid in enumerate(instances)]}
            for n, (suid, mod, instances) in enumerate(series)
        ],
    }  # fmt: skip
    if endpoint:
        body["endpoint"] = [{"reference": f"Endpoint/{endpoint}"}]
    return body


def fixtures() -> list[dict]:
    return [
        _patient("pat-1", "MRN-1001", "Alpha"),
        _patient("pat-2", "MRN-1002", "Beta"),
        _patient("pat-3", "MRN-1003", "Gamma"),
        _endpoint("ep-wado", "dicom-wado-rs"),
        _endpoint("ep-qido", "dicom-qido-rs"),
        _study("st-ct", "pat-1", "1.2.826.0.1.3680043.8.498.1", "ACC-1", "2024-03-14T10:30:00Z",
               [("1.2.826.0.1.3680043.8.498.1.1", "CT", ["1.2.826.0.1.3680043.8.498.1.1.1",
                                                           "1.2.826.0.1.3680043.8.498.1.1.2"])]),
        _study("st-mr", "pat-1", "1.2.826.0.1.3680043.8.498.2", "ACC-2", "2024-03-14T23:30:00-05:00",
               [("1.2.826.0.1.3680043.8.498.2.1", "MR", ["1.2.826.0.1.3680043.8.498.2.1.1"]),
                ("1.2.826.0.1.3680043.8.498.2.2", "MR", ["1.2.826.0.1.3680043.8.498.2.2.1"])], endpoint="ep-qido"),
        _study("st-us", "pat-1", "1.2.826.0.1.3680043.8.498.3", "ACC-3", "2023-11-02T08:00:00+01:00",
               [("1.2.826.0.1.3680043.8.498.3.1", "US", ["1.2.826.0.1.3680043.8.498.3.1.1"])], status="registered"),
        # Known to the month only: `started=2024-03-14` must not find it (the day does not contain the month).
        _study("st-month", "pat-1", "1.2.826.0.1.3680043.8.498.6", "ACC-6", "2024-03",
               [("1.2.826.0.1.3680043.8.498.6.1", "CR", ["1.2.826.0.1.3680043.8.498.6.1.1"])], endpoint=None),
        _study("st-cr", "pat-2", "1.2.826.0.1.3680043.8.498.4", "ACC-4", "2024-01-05T07:15:00Z",
               [("1.2.826.0.1.3680043.8.498.4.1", "CR", ["1.2.826.0.1.3680043.8.498.4.1.1"])]),
        _study("st-sr", "pat-3", "1.2.826.0.1.3680043.8.498.5", "ACC-5", "2024-03-15T00:10:00Z",
               [("1.2.826.0.1.3680043.8.498.5.1", "CT", ["1.2.826.0.1.3680043.8.498.5.1.1"])]),
    ]  # fmt: skip


def seed(base: str) -> None:
    """PUT every fixture (an update that creates: both servers allow client-assigned ids)."""
    with httpx.Client(timeout=30) as http:
        for resource in fixtures():
            r = http.put(f"{base}/{resource['resourceType']}/{resource['id']}", json=resource,
                         headers={"content-type": "application/fhir+json"})  # fmt: skip
            r.raise_for_status()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server stopped on start (exit {process.returncode})")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {seconds:g} s")


@contextmanager
def _running(command: list[str], cwd: Path, ready_url: str, env: dict | None = None) -> Iterator[None]:
    log = open(cwd / "server.log", "wb") if os.access(cwd, os.W_OK) else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        _wait(ready_url, process)
        yield
    finally:
        process.terminate()  # only the process this test started
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        if log is not subprocess.DEVNULL:
            log.close()


@contextmanager
def medplum(workdir: Path) -> Iterator[str]:
    node = shutil.which("node")
    if node is None or not (MEDPLUM_DIR / "node_modules" / "@medplum" / "fhir-router").is_dir():
        raise RuntimeError("Medplum's router is not installed: make test runs npm ci in tests/servers/medplum")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # Medplum 5 declares Node 22, whose WebSocket global Node 20 has behind a flag.
    major = int(subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip("v\n").split(".")[0])
    flags = ["--experimental-websocket"] if major < 22 else []
    with _running([node, *flags, str(MEDPLUM_DIR / "server.mjs"), str(port)], workdir, f"{base}/metadata"):
        seed(base)
        yield base


@contextmanager
def sekmet(workdir: Path) -> Iterator[str]:
    # The one installed beside this Python (make test's virtualenv), else the one on PATH.
    beside = Path(sys.executable).parent / "sekmet"
    exe = beside if beside.is_file() else Path(shutil.which("sekmet") or "sekmet")
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    # The server keeps its database in its working folder (the test's temporary one) and writes
    # its links under the base URL it is told, as a deployment would configure it.
    (workdir / "settings.yaml").write_text("simulator:\n  enabled: false\nlog_inbound: false\n")
    env = {**os.environ, "HOME": str(workdir), "SEKMET_CONFIG": str(workdir / "settings.yaml"), "SEKMET_BASE_URL": base,
           "SEKMET_DB": str(workdir / "sekmet.db")}  # fmt: skip
    with _running([str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)], workdir, f"{base}/metadata", env):
        seed(base)
        yield base
