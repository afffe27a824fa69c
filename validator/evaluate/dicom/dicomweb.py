"""A DICOMweb server as a source of study facts (--dicomweb URL), and its WADO-RS endpoints probed.

Facts come from QIDO-RS searches (PS3.18 10.6) answered in the DICOM JSON model (PS3.18 Annex F):
the study (`/studies?StudyInstanceUID=`), its series and each series' instances, asking with
`includefield` for the attributes the comparison reads (compare.py, shared with --dicom DIR).
Searches are paged with `limit`/`offset`, as a server may cap the results of one answer.

Every request goes through the shared client (net/client.py): read-only, timeouts, retries with
backoff, a request budget, a cap on the size of an answer, credentials from environment variables.
Credentials are sent only to the --dicomweb server: an Endpoint elsewhere is probed without them.
A server that gives no answer (down, timed out) is asked once: the studies after it get the same
finding without a request each.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode, urlsplit

from validator import rule_ids as R
from validator.evaluate.dicom.facts import (
    DicomInstance,
    DicomSeries,
    DicomStudy,
    SourceUnavailable,
    Wording,
    parse_int,
)
from validator.rule_ids import implements

if TYPE_CHECKING:  # the client (and httpx) is imported when a request is made, not at start-up
    from validator.net.client import Answer, ClientSettings, HttpClient

# DICOM JSON attribute tags (PS3.6): what the comparison reads.
STUDY_UID, SERIES_UID, SOP_UID, SOP_CLASS = "0020000D", "0020000E", "00080018", "00080016"
STUDY_DATE, STUDY_TIME, TIMEZONE = "00080020", "00080030", "00080201"
MODALITY, SERIES_NUMBER, INSTANCE_NUMBER = "00080060", "00200011", "00200013"
JSON_TYPES = ("application/dicom+json", "application/json")  # PS3.18 8.7.3: DICOM JSON, and plain JSON
PAGE = 1000  # results asked per QIDO-RS request
_STUDIES = re.compile(r"/studies/[^/?#]+")
_SERIES = re.compile(r"/series/[^/?#]+")


class DicomWebError(ValueError):
    """--dicomweb options that cannot work (not an http(s) URL, a credential variable unset): a usage error."""


@dataclass(frozen=True)
class Probe:
    """What a WADO-RS metadata request for an endpoint found: (rule, message) pairs, empty when served."""

    problems: tuple[tuple[str, str], ...]


def _value(row: dict, tag: str) -> object:
    element = row.get(tag)
    values = element.get("Value") if isinstance(element, dict) else None
    return values[0] if isinstance(values, list) and values else None


def _text(row: dict, tag: str) -> str | None:
    value = _value(row, tag)
    return str(value).strip() or None if isinstance(value, str | int | float) else None


class DicomWebSource:
    """The studies of one DICOMweb server, each asked once per process and remembered."""

    def __init__(self, base: str, settings: ClientSettings | None = None, environ: dict | None = None,
                 transport: object = None) -> None:  # fmt: skip
        from validator.net.client import ClientSettings

        self.base = base.rstrip("/")
        parts = urlsplit(self.base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise DicomWebError(f"--dicomweb {base!r}: expected the http(s) URL of a DICOMweb service")
        self.settings = settings or ClientSettings()
        self.environ = dict(os.environ if environ is None else environ)
        for option, name in (("--dicomweb-token-env", self.settings.token_env),
                             ("--dicomweb-user-env", self.settings.user_env)):  # fmt: skip
            if name and not self.environ.get(name):
                raise DicomWebError(f"{option} {name}: the environment variable is not set or empty")
        self.transport = transport  # tests pass an httpx transport
        self.wording = Wording("the DICOMweb server", "the DICOMweb server says", "the DICOMweb server holds",
                               "on the DICOMweb server", f"on the DICOMweb server {self.base}")  # fmt: skip
        self._studies: dict[str, DicomStudy | None] = {}
        self._probes: dict[tuple[str, str | None, str | None], Probe] = {}
        self._down: dict[tuple[str, str], str] = {}  # origin -> why it gave no answer (not asked again)
        self._clients: dict[bool, HttpClient] = {}
        self._pid = 0

    def __getstate__(self) -> dict:
        # --jobs workers get the settings, not the parent's open connections.
        return {**self.__dict__, "_clients": {}, "_pid": 0}

    # -- requests -------------------------------------------------------------------------------
    def _client(self, url: str) -> HttpClient:
        from validator.net.client import HttpClient

        if self._pid != os.getpid():  # a forked worker: its own connections, never its parent's
            self._clients, self._pid = {}, os.getpid()
        trusted = _origin(url) == _origin(self.base)
        client = self._clients.get(trusted)
        if client is None:
            settings = self.settings if trusted else replace(self.settings, token_env=None, user_env=None,
                                                            password_env=None)  # fmt: skip
            client = HttpClient(settings, environ=self.environ, transport=self.transport)  # type: ignore[arg-type]
            self._clients[trusted] = client
        return client

    def _get(self, url: str) -> Answer:
        """One GET for DICOM JSON; raises NetworkError when no answer came."""
        return self._client(url).fetch(url, headers={"accept": "application/dicom+json"})

    def _search(self, path: str, params: dict[str, object]) -> list[dict]:
        """Every row of a QIDO-RS search, page after page; raises SourceUnavailable."""
        from validator.net.client import NetworkError, no_answer

        down = self._down.get(_origin(self.base))
        if down is not None:
            raise SourceUnavailable(f"{self.base} gave no answer earlier in this run ({down}): not asked again")
        rows: list[dict] = []
        seen: set[str] = set()
        offset = 0
        while True:
            url = f"{self.base}{path}?{urlencode({**params, 'limit': PAGE, 'offset': offset}, doseq=True)}"
            try:
                answer = self._get(url)
            except NetworkError as error:
                if no_answer(error):
                    self._down[_origin(url)] = error.problem
                raise SourceUnavailable(str(error)) from None
            page = _rows(answer)
            fresh = [r for r in page if _key(r) not in seen]
            seen.update(_key(r) for r in fresh)
            rows.extend(fresh)
            # A short page is the last; a server that ignores offset repeats itself: stop there too.
            if len(page) < PAGE or not fresh:
                return rows
            offset += len(page)

    # -- the source -----------------------------------------------------------------------------
    def not_found(self, uid: str | None) -> str:
        if uid is None:
            return f"the ImagingStudy has no Study Instance UID (urn:dicom:uid) to look up on {self.base}"
        return (f"the DICOMweb server {self.base} has no study {uid}: a QIDO-RS search for its Study Instance "
                "UID found nothing (PS3.18 10.6)")  # fmt: skip

    def study(self, uid: str) -> DicomStudy | None:
        if uid not in self._studies:
            self._studies[uid] = self._read(uid)
        return self._studies[uid]

    def _read(self, uid: str) -> DicomStudy | None:
        found = [r for r in self._search("/studies", {"StudyInstanceUID": uid,
                                                       "includefield": [STUDY_DATE, STUDY_TIME, TIMEZONE]})
                 if _text(r, STUDY_UID) in (uid, None)]  # fmt: skip
        if not found:
            return None
        row = found[0]
        study = DicomStudy(uid, _text(row, STUDY_DATE), _text(row, STUDY_TIME), _text(row, TIMEZONE))
        at = f"/studies/{_segment(uid)}"
        for s in self._search(f"{at}/series", {"includefield": [MODALITY, SERIES_NUMBER]}):
            suid = _text(s, SERIES_UID)
            if suid is None:
                continue
            series = study.series.setdefault(
                suid, DicomSeries(suid, _text(s, MODALITY), parse_int(_value(s, SERIES_NUMBER)))
            )
            fields = {"includefield": [SOP_CLASS, INSTANCE_NUMBER]}
            for i in self._search(f"{at}/series/{_segment(suid)}/instances", fields):
                iuid = _text(i, SOP_UID)
                if iuid is not None:
                    series.instances[iuid] = DicomInstance(iuid, _text(i, SOP_CLASS),
                                                           parse_int(_value(i, INSTANCE_NUMBER)))  # fmt: skip
        return study

    # -- WADO-RS endpoints ------------------------------------------------------------------------
    @implements(R.DICOMWEB_ENDPOINT_CONTENT_TYPE, R.DICOMWEB_ENDPOINT_NOT_SERVED, R.DICOMWEB_ENDPOINT_WRONG_STUDY)
    def probe(self, endpoint: dict, literal: str, study_uid: str | None,
              series_uid: str | None) -> list[tuple[str, str]]:  # fmt: skip
        """The problems of a dicom-wado-rs Endpoint that must serve this study (or series): its
        metadata (PS3.18 10.4) asked for, then the answer's status, media type and Study (and
        Series) Instance UIDs. Any other endpoint, or one without an address, is not probed."""
        from validator.evaluate.dicom.study import is_wado_rs
        from validator.net.client import NetworkError, no_answer

        address = endpoint.get("address")
        if endpoint.get("resourceType") != "Endpoint" or not is_wado_rs(endpoint) or not isinstance(address, str):
            return []
        url = metadata_url(address, study_uid, series_uid)
        if url is None:
            return []
        key = (url, study_uid, series_uid)
        if key in self._probes:
            return list(self._probes[key].problems)
        what = f"WADO-RS endpoint {literal}"
        level = f"series {series_uid}" if series_uid else f"study {study_uid}"
        problems: list[tuple[str, str]] = []
        down = self._down.get(_origin(url))
        if down is not None:  # a server that gave no answer is not asked again: said, not skipped
            problems.append((R.DICOMWEB_ENDPOINT_NOT_SERVED, f"{what} does not serve {level}: {url} was not asked, "
                             f"its server gave no answer earlier in this run ({down})"))  # fmt: skip
            return problems
        try:
            answer = self._get(url)
        except NetworkError as error:
            if no_answer(error):
                self._down[_origin(url)] = error.problem
            problems.append((R.DICOMWEB_ENDPOINT_NOT_SERVED, f"{what} does not serve {level}: {error}"))
        else:
            problems.extend(_metadata_problems(answer, what, level, study_uid, series_uid))
        self._probes[key] = Probe(tuple(problems))
        return problems

    @implements(R.DICOMWEB_ENDPOINT_NOT_CHECKED)
    def not_probed(self, literal: str, study_uid: str | None, series_uid: str | None) -> list[tuple[str, str]]:
        """An endpoint reference that is nowhere in the run: its address is unknown, so it was not asked."""
        level = f"series {series_uid}" if series_uid else f"study {study_uid}"
        return [(R.DICOMWEB_ENDPOINT_NOT_CHECKED, f"endpoint {literal} is not in this run (not contained, not in the "
                 f"Bundle, not another input): whether it serves {level} was not asked")]  # fmt: skip

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients = {}


def _metadata_problems(answer: Answer, what: str, level: str, study_uid: str | None,
                       series_uid: str | None) -> list[tuple[str, str]]:  # fmt: skip
    url = answer.url
    if answer.status != 200:
        return [(R.DICOMWEB_ENDPOINT_NOT_SERVED, f"{what} does not serve {level}: GET {url} answered HTTP "
                 f"{answer.status} (PS3.18 10.4: Retrieve Metadata)")]  # fmt: skip
    if answer.content_type not in JSON_TYPES:
        media = answer.content_type or "no Content-Type"
        return [(R.DICOMWEB_ENDPOINT_CONTENT_TYPE, f"{what}: GET {url} answered {media}, not "
                 "application/dicom+json (PS3.18 10.4: metadata is DICOM JSON)")]  # fmt: skip
    try:
        rows = json.loads(answer.body)
    except (ValueError, RecursionError):  # not JSON, or nested past what the parser follows
        rows = None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        return [(R.DICOMWEB_ENDPOINT_CONTENT_TYPE, f"{what}: GET {url} answered {answer.content_type} that is not a "
                 "DICOM JSON array of instances (PS3.18 Annex F)")]  # fmt: skip
    problems = []
    studies = sorted({u for r in rows if (u := _text(r, STUDY_UID)) is not None})
    if study_uid and any(u != study_uid for u in studies):
        problems.append((R.DICOMWEB_ENDPOINT_WRONG_STUDY, f"{what}: GET {url} serves study {', '.join(studies)}, "
                         f"not this study {study_uid}"))  # fmt: skip
    series = sorted({u for r in rows if (u := _text(r, SERIES_UID)) is not None})
    if series_uid and any(u != series_uid for u in series):
        problems.append((R.DICOMWEB_ENDPOINT_WRONG_STUDY, f"{what}: GET {url} serves series "
                         f"{', '.join(series[:3])}, not this series {series_uid}"))  # fmt: skip
    if not rows:
        problems.append((R.DICOMWEB_ENDPOINT_NOT_SERVED, f"{what} does not serve {level}: GET {url} answered no "
                         "instance"))  # fmt: skip
    return problems


def metadata_url(address: str, study_uid: str | None, series_uid: str | None) -> str | None:
    """The WADO-RS metadata URL of a study or series at an endpoint: the address is the service
    base (…/studies/{uid} added) or already names the study, or the series (used as it is)."""
    base = address.split("?")[0].rstrip("/")
    if _SERIES.search(base):
        return f"{base}/metadata"
    if _STUDIES.search(base):
        return f"{base}/series/{_segment(series_uid)}/metadata" if series_uid else f"{base}/metadata"
    if study_uid is None:
        return None
    tail = f"/series/{_segment(series_uid)}" if series_uid else ""
    return f"{base}/studies/{_segment(study_uid)}{tail}/metadata"


def _rows(answer: Answer) -> list[dict]:
    """The rows of a QIDO-RS answer (PS3.18 10.6.3); raises SourceUnavailable for anything else."""
    url = answer.url
    if answer.status == 204:  # "no content": nothing matched
        return []
    if answer.status in (401, 403):
        raise SourceUnavailable(f"{url}: HTTP {answer.status}: the server refused the request without valid "
                                "credentials (--dicomweb-token-env, --dicomweb-user-env)")  # fmt: skip
    if answer.status != 200:
        raise SourceUnavailable(f"{url}: HTTP {answer.status} to a QIDO-RS search (PS3.18 10.6)")
    if answer.content_type not in JSON_TYPES:
        raise SourceUnavailable(f"{url}: the answer is {answer.content_type or 'of no Content-Type'}, not DICOM "
                                "JSON (application/dicom+json, PS3.18 Annex F)")  # fmt: skip
    try:
        rows = json.loads(answer.body) if answer.body.strip() else []
    except (ValueError, RecursionError) as error:  # not JSON, or nested past what the parser follows
        raise SourceUnavailable(f"{url}: the answer is not JSON ({type(error).__name__})") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise SourceUnavailable(f"{url}: the answer is not a DICOM JSON array of results (PS3.18 Annex F)")
    return rows


def _segment(uid: str) -> str:
    """A UID as one path segment: a payload's "UID" with a slash or a question mark stays inside it."""
    return quote(uid, safe="")


def _key(row: dict) -> str:
    return "|".join(str(_value(row, t)) for t in (STUDY_UID, SERIES_UID, SOP_UID))


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()
