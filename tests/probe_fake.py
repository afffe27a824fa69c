"""A small fake FHIR server for the probe's edge cases (paging loops, 500s, non-FHIR answers,
malformed JSON, refusals, time zones): http.server in a thread on a free 127.0.0.1 port.

Its search is deliberately simple and hand-written (patient by id, modality and status by exact
code, started by the text's prefix, _count/_offset paging), and each `Behaviour` flag breaks one
thing, so a test knows exactly which defect the probe has to find.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

DCM = "http://dicom.nema.org/resources/ontology/DCM"


def study(sid: str, patient: str, modality: str, started: str, status: str = "available") -> dict:
    return {
        "resourceType": "ImagingStudy", "id": sid, "status": status,
        "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:1.2.3.{len(sid)}.{ord(sid[-1])}"}],
        "subject": {"reference": f"Patient/{patient}"}, "started": started,
        "numberOfSeries": 1, "numberOfInstances": 1,
        "series": [{"uid": f"1.2.3.9.{ord(sid[-1])}", "number": 1, "modality": {"system": DCM, "code": modality},
                    "numberOfInstances": 1,
                    "instance": [{"uid": f"1.2.3.9.{ord(sid[-1])}.1", "number": 1,
                                  "sopClass": {"system": "urn:ietf:rfc:3986",
                                               "code": "urn:oid:1.2.840.10008.5.1.4.1.1.2"}}]}],
    }  # fmt: skip


STUDIES = [
    study("s1", "p1", "CT", "2024-03-14T10:30:00Z"),
    study("s2", "p1", "MR", "2024-03-14T23:30:00-05:00"),  # 04:30 UTC on the 15th
    study("s3", "p1", "US", "2023-11-02T08:00:00+01:00", status="registered"),
    study("s4", "p2", "CT", "2024-01-05T07:15:00Z"),
]


@dataclass
class Behaviour:
    # `started` is searched by the text's prefix only (no prefixes, no zones): declare it to test dates.
    declared: tuple[str, ...] = ("identifier", "patient", "modality", "status")
    require_patient: bool = False  # refuse (400 + OperationOutcome) a search without patient or identifier
    ignore: tuple[str, ...] = ()  # parameters accepted but not applied: every study comes back
    unknown_empty: bool = False  # an unknown parameter silently matches nothing
    paging_loop: bool = False  # the next link of every page points back at the first page
    error_500: bool = False  # every search fails with a 500
    metadata_html: bool = False  # /metadata answers an HTML page
    fhir_version: str = "4.0.1"  # CapabilityStatement.fhirVersion
    lists_imaging_study: bool = True  # the CapabilityStatement names ImagingStudy
    self_link_echoes: bool = False  # the self link repeats every parameter sent, used or not
    hostile_entries: bool = False  # every Bundle also carries entries of the wrong shapes
    post_ignores_form: bool = False  # POST _search reads no parameter from its form: every study
    malformed_search: bool = False  # searches answer truncated JSON
    studies: list[dict] = field(default_factory=lambda: list(STUDIES))


class _Handler(BaseHTTPRequestHandler):
    behaviour: Behaviour
    base: str

    def log_message(self, *args: object) -> None:  # quiet in test output
        pass

    def _send(self, status: int, body: object, content_type: str = "application/fhir+json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        self._route(url.path, parse_qsl(url.query, keep_blank_values=True))

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        form = parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True)
        if self.behaviour.post_ignores_form:
            form = []
        self._route(urlsplit(self.path).path.removesuffix("/_search"), form)

    def _route(self, path: str, query: list[tuple[str, str]]) -> None:
        b = self.behaviour
        if path == "/metadata":
            if b.metadata_html:
                self._send(200, b"<html><body>Welcome</body></html>", "text/html")
                return
            types = {"started": "date", "patient": "reference"}
            params = [{"name": n, "type": types.get(n, "token")} for n in b.declared]
            self._send(200, {"resourceType": "CapabilityStatement", "status": "active", "kind": "instance",
                             "fhirVersion": b.fhir_version, "format": ["json"], "date": "2024-01-01",
                             "rest": [{"mode": "server", "resource": [{"type": "ImagingStudy",
                                                                       "searchParam": params}]
                                       if b.lists_imaging_study else []}]})  # fmt: skip
            return
        if path.startswith("/Patient/"):
            pid = path.split("/")[-1]
            self._send(200, {"resourceType": "Patient", "id": pid})
            return
        if path != "/ImagingStudy":
            outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]}
            self._send(404, outcome)
            return
        if b.error_500:
            self._send(500, {"resourceType": "OperationOutcome", "issue": [{"severity": "fatal", "code": "exception",
                                                                           "diagnostics": "database down"}]})
            return
        if b.malformed_search:
            self._send(200, b'{"resourceType": "Bundle", "type": "searchset", "entry": [')
            return
        names = {k for k, _ in query}
        if b.require_patient and not names & {"patient", "identifier"}:
            self._send(400, {"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "required", "diagnostics": "patient or identifier is required"}]})
            return
        found = [s for s in b.studies if all(self._meets(s, k, v) for k, v in query)]
        count = int(dict(query).get("_count", 100))
        offset = int(dict(query).get("_offset", 0))
        used = [(k, v) for k, v in query if k in b.declared or k.startswith("_") or b.self_link_echoes]
        page = found[offset: offset + count]
        links = [{"relation": "self", "url": f"{self.base}/ImagingStudy?{urlencode(used)}"}]
        if offset + count < len(found):
            nxt = 0 if b.paging_loop else offset + count
            rest = [(k, v) for k, v in used if k != "_offset"]
            query_next = urlencode([*rest, ("_offset", nxt)])
            links.append({"relation": "next", "url": f"{self.base}/ImagingStudy?{query_next}"})
        entries: list = [{"fullUrl": f"{self.base}/ImagingStudy/{s['id']}", "resource": s,
                          "search": {"mode": "match"}} for s in page]  # fmt: skip
        if b.hostile_entries:
            entries += ["junk", {"resource": "text"}, {"fullUrl": f"{self.base}/ImagingStudy/h1", "search": "match",
                        "resource": {"resourceType": "ImagingStudy", "id": "h1", "status": 7, "subject": "Patient/p1",
                                     "endpoint": {"reference": 5}, "series": "x", "started": 20240314,
                                     "identifier": "abc"}}]  # fmt: skip
        self._send(200, {"resourceType": "Bundle", "type": "searchset", "total": len(found), "link": links,
                         "entry": entries})

    def _meets(self, s: dict, name: str, value: str) -> bool:
        b = self.behaviour
        if name.startswith("_") or name in b.ignore:
            return True
        if name not in b.declared:
            return not b.unknown_empty
        if name == "patient":
            return s["subject"]["reference"].split("/")[-1] == value.split("/")[-1]
        if name == "status":
            return s["status"] in value.split(",")
        if name == "modality":
            codes = value.split(",")
            return any(f"{x['modality']['system']}|{x['modality']['code']}" in codes or x["modality"]["code"] in codes
                       for x in s["series"])  # fmt: skip
        if name == "identifier":
            wanted = value.split(",")
            return any(f"{i['system']}|{i['value']}" in wanted or i["value"] in wanted for i in s["identifier"])
        if name == "started":
            # Naive on purpose: the text's prefix, in whatever zone the study was written in.
            return value[:2].isdigit() and s["started"].startswith(value)
        return True


@contextmanager
def fake_server(behaviour: Behaviour) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    server.RequestHandlerClass = type("Handler", (_Handler,), {"behaviour": behaviour, "base": base})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
