"""DICOM-level checks of one ImagingStudy, read from its series and instance lists in one pass.

They read the payload defensively: a malformed element is the base rules' finding, so here it is
simply skipped. Messages name the DICOM rule behind each finding.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from validator import rule_ids as R
from validator.dicom.registry import DCM, cid_codes, sop_classes
from validator.dicom.uids import uid_problem
from validator.evaluate.code_systems import page_advice
from validator.rule_ids import implements

Pointer = tuple[str | int, ...]
Report = Callable[[str, Pointer, str], None]
Resolve = Callable[[str], "dict | None"]

DICOM_ROOT = "1.2.840.10008."
# The DICOM Controlled Terminology (DCM) by its OID (PS3.16 Table 8-1), instead of its FHIR URI.
DCM_OID = "urn:oid:1.2.840.10008.2.16.4"
_DICOM_PAGE = re.compile(r"https?://dicom\.nema\.org/medical/dicom/[^/]+/output/[a-z]+/part16/", re.IGNORECASE)
# The forms of a SOP Class coding found in real payloads, with what a receiver can make of each:
RFC3986 = "urn:ietf:rfc:3986"  # the FHIR form: code urn:oid:<UID> (R4, R5 ImagingStudy examples)
DCMUID = "urn:oid:1.2.840.10008.2.6.1"  # the DICOM UID Registry as a coding scheme (PS3.16 Table 8-1, DCMUID)
_UID_LIKE = re.compile(r"[0-9.]+")
_STUDIES = re.compile(r"/studies/([^/?#]+)")
_SERIES = re.compile(r"/series/([^/?#]+)")


def _codings(value: object) -> Iterator[tuple[dict, tuple]]:
    """(coding, pointer suffix) of a Coding (R4) or CodeableConcept (R5+)."""
    if not isinstance(value, dict):
        return
    if isinstance(value.get("coding"), list):
        for k, c in enumerate(value["coding"]):
            if isinstance(c, dict):
                yield c, ("coding", k)
    elif "code" in value or "system" in value:
        yield value, ()


def _items(value: object) -> list[tuple[int, dict]]:
    return [(i, v) for i, v in enumerate(value) if isinstance(v, dict)] if isinstance(value, list) else []


class StudyCheck:
    def __init__(self, report: Report, resolve: Resolve, fhir_version: str,
                 sop_class_modalities: dict[str, frozenset[str]],
                 modalities_checked: bool = False) -> None:  # fmt: skip
        self._report = report
        self.reported = 0  # findings so far
        self._clean_sop_classes: set[tuple] = set()  # (modality, sopClass) pairs that passed (sop_class)
        self.resolve = resolve
        # R4 means the study-level modality list for acquisition modalities only (CID 29).
        self.acquisition_only = fhir_version.startswith("4.")
        # An invariant of the FHIR version (R6 ist-7) checks the modality list: not said twice.
        self.modalities_checked = modalities_checked
        self.sop_class_modalities = sop_class_modalities
        self.where: dict[str, tuple[str, Pointer]] = {}  # UID -> level and place first seen (uniqueness)
        self.unresolved: list[tuple[str, Pointer, str | None, str | None]] = []  # endpoints not in the payload

    def report(self, rule: str, p: Pointer, message: str) -> None:
        self.reported += 1
        self._report(rule, p, message)

    # -- entry ----------------------------------------------------------------------------------
    @implements(R.SERIES_NUMBER_UNIQUE)
    def run(self, study: dict) -> None:
        study_uid = self.study_uid(study)
        series_modalities: dict[str, tuple] = {}
        listed_instances = 0
        every_series_lists = True
        series_numbers: dict[object, int] = {}
        series = _items(study.get("series"))
        for i, s in series:
            sp: Pointer = ("series", i)
            series_uid = s.get("uid") if isinstance(s.get("uid"), str) else None
            if series_uid is not None:
                self.uid(series_uid, sp, "uid", "series")
            modality = self.modality(s.get("modality"), (*sp, "modality"), f"series[{i}].modality")
            if modality:
                series_modalities.setdefault(modality, (*sp, "modality"))
            self.number(series_numbers, s.get("number"), sp, R.SERIES_NUMBER_UNIQUE, "Series Number")
            # A code outside CID 33 says nothing about which SOP Classes belong in the series.
            listed = self.instances(s.get("instance"), i, modality if modality in cid_codes(33) else None)
            listed_instances += listed
            every_series_lists = every_series_lists and bool(listed)
            self.series_count(s, sp, listed)
            self.endpoints(s.get("endpoint"), (*sp, "endpoint"), study_uid, series_uid)
        self.study_modalities(study, series_modalities)
        self.study_counts(study, len(series), listed_instances if every_series_lists and series else None)
        self.endpoints(study.get("endpoint"), ("endpoint",), study_uid, None)

    @implements(R.INSTANCE_NUMBER_UNIQUE)
    def instances(self, value: object, i: int, modality: str | None) -> int:
        """The instances of series i (UIDs, SOP Classes, Instance Numbers); returns how many are
        listed. A series lists thousands: they are read in place, not copied into a list first."""
        if not isinstance(value, list):
            return 0
        numbers: dict[object, int] = {}
        listed = 0
        for j, inst in enumerate(value):
            if not isinstance(inst, dict):
                continue
            listed += 1
            at = ("series", i, "instance", j)
            uid = inst.get("uid")
            if isinstance(uid, str):
                self.uid(uid, at, "uid", "instance")
            self.sop_class(inst.get("sopClass"), at, modality)
            self.number(numbers, inst.get("number"), at, R.INSTANCE_NUMBER_UNIQUE, "Instance Number")
        return listed

    # -- UIDs -----------------------------------------------------------------------------------
    @implements(R.STUDY_UID_URN)
    def study_uid(self, study: dict) -> str | None:
        found = None
        for k, ident in _items(study.get("identifier")):
            if ident.get("system") != "urn:dicom:uid" or not isinstance(ident.get("value"), str):
                continue
            value = ident["value"]
            p = ("identifier", k, "value")
            if not value.startswith("urn:oid:"):
                self.report(R.STUDY_UID_URN, p, f"the Study Instance UID identifier value {value!r} must be written "
                            f"urn:oid:{value} (FHIR ImagingStudy: identifier system urn:dicom:uid)")  # fmt: skip
                uid = value
            else:
                uid = value[len("urn:oid:") :]
            self.uid(uid, ("identifier", k), "value", "study")
            found = found or uid
        return found

    @implements(R.INSTANCE_UID_UNIQUE, R.SERIES_UID_UNIQUE, R.UID_LEVEL_REUSE, R.UID_SYNTAX)
    def uid(self, uid: str, at: Pointer, step: str, level: str) -> None:
        """A UID (at at + step): its syntax, and that it names one object only. A study lists
        thousands: pointers are made only for what is reported."""
        problem = uid_problem(uid)
        if problem is not None:
            p = (*at, step)
            self.report(R.UID_SYNTAX, p, f"{_what(p, level)} {uid!r} is not a valid DICOM UID (PS3.5 9.1): {problem}")
            return
        if level == "sop-class":
            return
        seen = self.where.get(uid)
        if seen is None:
            self.where[uid] = (level, at, step)
            return
        seen_level, seen_at, seen_step = seen
        p = (*at, step)
        label, seen_label = _what(p, level).split(" (")[0], _what((*seen_at, seen_step), seen_level).split(" (")[0]
        if seen_level == level == "series":
            self.report(R.SERIES_UID_UNIQUE, p, f"{label} {uid} is also {seen_label}: every series needs its own "
                        "Series Instance UID (PS3.3 C.7.3.1)")  # fmt: skip
        elif seen_level == level == "instance":
            self.report(R.INSTANCE_UID_UNIQUE, p, f"{label} {uid} is also {seen_label}: the same SOP Instance is "
                        "listed twice (PS3.3 C.12.1)")  # fmt: skip
        elif seen_level != level:
            self.report(R.UID_LEVEL_REUSE, p, f"{label} {uid} is also used as {seen_label}: a UID identifies one "
                        "object (PS3.5 9.1)")  # fmt: skip

    # -- SOP Classes ----------------------------------------------------------------------------
    def sop_class(self, value: object, at: Pointer, modality: str | None) -> None:
        """The sopClass of the instance at `at`. A study lists thousands of instances of a few SOP
        Classes: a (modality, SOP Class) made of plain strings that passed once passes again."""
        signature: tuple | None = None
        if type(value) is str:
            signature = (modality, value)
        elif type(value) is dict:
            system, code = value.get("system"), value.get("code")
            if type(code) is str and (system is None or type(system) is str):
                signature = (modality, system, code)
        if signature is not None and signature in self._clean_sop_classes:
            return
        before = self.reported
        self._sop_class(value, (*at, "sopClass"), modality)
        if self.reported == before and signature is not None:
            self._clean_sop_classes.add(signature)

    @implements(R.SOP_CLASS_CODING, R.SOP_CLASS_KNOWN, R.SOP_CLASS_MODALITY, R.SOP_CLASS_PRIVATE, R.SOP_CLASS_RETIRED)
    def _sop_class(self, value: object, p: Pointer, modality: str | None) -> None:
        """The SOP Class UID in whichever form it is written (sop_class_uid), then the registry and
        the series modality: the same checks for every form."""
        if isinstance(value, str):  # R6: an oid; one that lacks urn:oid: is the oid format rule's finding
            uid = value.removeprefix("urn:oid:")
        elif isinstance(value, dict):
            system, code = value.get("system"), value.get("code")
            if not isinstance(code, str) or not (system is None or isinstance(system, str)):
                return  # absent or malformed: the base rules' finding
            uid, problem = sop_class_uid(system, code)
            if problem is not None:
                self.report(R.SOP_CLASS_CODING, p, f"{_path(p)} {problem}")
            if uid is None:
                return
        else:
            return
        if uid_problem(uid) is not None:
            self.uid(uid, p[:-1], p[-1], "sop-class")
            return
        known = sop_classes().get(uid)
        if known is None:
            if uid.startswith(DICOM_ROOT):
                self.report(R.SOP_CLASS_KNOWN, p, f"SOP Class UID {uid} is under the DICOM root but is not a SOP Class "
                            "of the DICOM UID registry (PS3.6 Annex A)")  # fmt: skip
            else:
                self.report(R.SOP_CLASS_PRIVATE, p, f"SOP Class UID {uid} is private (outside the DICOM root "
                            "1.2.840.10008): it cannot be checked against the DICOM registry")  # fmt: skip
            return
        if known.retired:
            self.report(R.SOP_CLASS_RETIRED, p, f"{known.name} ({uid}) is retired from the DICOM standard (PS3.6)")
        allowed = self.sop_class_modalities.get(known.keyword)
        if modality and allowed and modality not in allowed:
            self.report(R.SOP_CLASS_MODALITY, p, f"{known.name} ({uid}) in a {modality} series: this SOP Class "
                        f"belongs to {', '.join(sorted(allowed))} (PS3.3)")  # fmt: skip

    # -- modalities -----------------------------------------------------------------------------
    @implements(R.MODALITY_SYSTEM)
    def modality(self, value: object, p: Pointer, what: str) -> str | None:
        """The DICOM code of a series or study modality (an R4 Coding, an R5+ CodeableConcept, whose
        other codings may be translations), or None. A modality with no DICOM coding is reported once,
        at the element the binding rule reports too (the DICOM finding replaces it)."""
        found = None
        others = []  # codings of other code systems
        for coding, _ in _codings(value):
            system, code = coding.get("system"), coding.get("code")
            if not isinstance(code, str):
                continue
            if system == DCM:
                found = found or code
            elif system == DCM_OID:
                self.report(R.MODALITY_SYSTEM, p, f"{what} code {code!r} names the DICOM terminology by its OID "
                            f"{DCM_OID}: FHIR requires its URI {DCM} (terminologies-systems.html: where a URI is "
                            "defined, it SHALL be used)")  # fmt: skip
                found = found or code
            elif isinstance(system, str) and page_advice(system) is not None:
                # A DICOM page as the system is coding:system-is-a-page's finding; the code is still read.
                found = found or (code if _DICOM_PAGE.match(system) else None)
            else:
                others.append(f"{system}#{code}" if system else code)
        if found is None and others:
            self.report(R.MODALITY_SYSTEM, p, f"{what} has no DICOM modality code (code system {DCM}): found "
                        f"{', '.join(others[:3])}; a PACS reads the DICOM Modality (0008,0060)")  # fmt: skip
        return found

    @implements(R.MODALITY_CODE, R.MODALITY_CONSISTENCY)
    def study_modalities(self, study: dict, series: dict[str, tuple]) -> None:
        """The study-level modality list against the series modalities. R4 defines the list as the
        series modalities that are acquisition modalities (CID 29); R5 and later as all of them."""
        listed: dict[str, tuple] = {}
        for k, value in _items(study.get("modality")):
            code = self.modality(value, ("modality", k), f"modality[{k}]")
            if code is None:
                continue
            listed.setdefault(code, ("modality", k))
            if self.acquisition_only and code not in cid_codes(29) and code in cid_codes(33):
                self.report(R.MODALITY_CODE, ("modality", k), f"modality[{k}] {code} ({cid_codes(33)[code]}) is not "
                            "an acquisition modality (DICOM CID 29): in R4, ImagingStudy.modality lists the series "
                            "modalities that are acquisition modalities")  # fmt: skip
        if not listed or not series or self.modalities_checked:
            return
        for code, p in series.items():
            if code not in listed and (not self.acquisition_only or code in cid_codes(29)):
                self.report(R.MODALITY_CONSISTENCY, ("modality",), f"the study modality list lacks {code}, the "
                            f"modality of {_path(p[:2])}")  # fmt: skip
        for code, p in listed.items():
            if code not in series:
                self.report(R.MODALITY_CONSISTENCY, p, f"the study lists modality {code}, but no listed series has it "
                            f"(series modalities: {', '.join(series)})")  # fmt: skip

    # -- counts and numbers ---------------------------------------------------------------------
    def number(self, seen: dict[object, int], value: object, at: Pointer, rule: str, name: str) -> None:
        """The Series or Instance Number of the series or instance at `at`, used before in the same parent."""
        if not isinstance(value, int) or isinstance(value, bool):
            return
        if value in seen:
            parent = _path(at[:-2]) or "the study"
            self.report(rule, (*at, "number"), f"{_path(at)} has {name} {value}, like an earlier one in {parent} "
                        "(PS3.3: unique)")  # fmt: skip
        else:
            seen[value] = 1

    @implements(R.SERIES_NUMBER_OF_INSTANCES)
    def series_count(self, s: dict, sp: Pointer, listed: int) -> None:
        claimed = _count(s.get("numberOfInstances"))
        # A count larger than the list is a partial listing, which FHIR R4 and R5 allow ("may be
        # larger than the number of instance elements this Resource contains"); a smaller one
        # cannot be true. (R6's ist-6 asks for equality itself.)
        if claimed is not None and listed and claimed < listed:
            self.report(R.SERIES_NUMBER_OF_INSTANCES, (*sp, "numberOfInstances"),
                        f"series[{sp[1]}] claims {claimed} instance(s) but lists {listed}: a count may exceed "
                        "the instances listed (a partial listing), never fall short of them")  # fmt: skip

    @implements(R.NUMBER_OF_INSTANCES, R.NUMBER_OF_SERIES)
    def study_counts(self, study: dict, listed_series: int, listed_instances: int | None) -> None:
        n = _count(study.get("numberOfSeries"))
        if n is not None and listed_series and n < listed_series:  # larger: a partial listing (see series_count)
            self.report(R.NUMBER_OF_SERIES, ("numberOfSeries",),
                        f"numberOfSeries is {n} but {listed_series} series are listed: a count may exceed the "
                        "series listed, never fall short of them")  # fmt: skip
        m = _count(study.get("numberOfInstances"))
        if m is not None and listed_instances is not None and m < listed_instances:
            self.report(R.NUMBER_OF_INSTANCES, ("numberOfInstances",), f"numberOfInstances is {m} but the series list "
                        f"{listed_instances} instance(s): a count may exceed the instances listed, never fall short "
                        "of them")  # fmt: skip

    # -- endpoints ------------------------------------------------------------------------------
    def endpoints(self, value: object, p: Pointer, study_uid: str | None, series_uid: str | None) -> None:
        for k, ref in _items(value):
            literal = ref.get("reference")
            if not isinstance(literal, str):
                continue
            rp = (*p, k, "reference")
            target = self.resolve(literal)
            if target is None:
                # Perhaps another input of the run: checked once the whole run has been read.
                self.unresolved.append((literal, rp, study_uid, series_uid))
                continue
            for rule, message in endpoint_problems(target, literal, study_uid, series_uid):
                self.report(rule, rp, message)


@implements(R.WADO_SERIES, R.WADO_STUDY)
def endpoint_problems(target: dict, literal: str, study_uid: str | None,
                      series_uid: str | None) -> list[tuple[str, str]]:  # fmt: skip
    """WADO-RS endpoint addresses that name another study or series than the one referring."""
    if target.get("resourceType") != "Endpoint" or not is_wado_rs(target):
        return []
    address = target.get("address")
    if not isinstance(address, str):
        return []
    problems = []
    named_study = _STUDIES.search(address)
    named_series = _SERIES.search(address)
    if named_study and study_uid and named_study.group(1) != study_uid:
        rule = R.WADO_SERIES if series_uid is not None else R.WADO_STUDY
        problems.append((rule, f"WADO-RS endpoint {literal} ({address}) names study {named_study.group(1)}, "
                               f"not this study {study_uid} (PS3.18 10.4)"))  # fmt: skip
    if series_uid is not None and named_series and named_series.group(1) != series_uid:
        message = (f"series endpoint {literal} ({address}) names series {named_series.group(1)}, "
                   f"not this series {series_uid} (PS3.18 10.4)")  # fmt: skip
        problems.append((R.WADO_SERIES, message))
    return problems


def sop_class_uid(system: str | None, code: str) -> tuple[str | None, str | None]:
    """The SOP Class UID a sopClass Coding carries, and what is wrong with its form (None: the FHIR
    form urn:ietf:rfc:3986 + urn:oid:<UID>). Recognised: the FHIR form; the bare UID under
    urn:ietf:rfc:3986 (not a URI: RFC 3986 needs a scheme); the DICOM UID Registry coding scheme
    urn:oid:1.2.840.10008.2.6.1 (DCMUID) with the bare UID; any other system (an IG's own DICOM
    UID code system, DCM) with a UID or urn:oid: code. A code that is no UID at all yields None."""
    bare = code.removeprefix("urn:oid:")
    if not (code.startswith("urn:oid:") or _UID_LIKE.fullmatch(code)):
        return None, (f"{system}#{code} is not a SOP Class UID: write urn:ietf:rfc:3986#urn:oid:<SOP Class UID> "
                      "(ImagingStudy.series.instance.sopClass)")  # fmt: skip
    fhir_form = f"urn:ietf:rfc:3986#urn:oid:{bare}"
    if system == RFC3986:
        if code.startswith("urn:oid:"):
            return bare, None
        return bare, f"code {code!r} is a bare UID, which is not a URI (RFC 3986 needs a scheme): write {fhir_form}"
    if isinstance(system, str) and page_advice(system) is not None:
        return bare, None  # the system is coding:system-is-a-page's finding
    if system == DCMUID:
        return bare, (f"uses the DICOM UID Registry coding scheme {DCMUID} (DCMUID, PS3.16 Table 8-1); FHIR codes "
                      f"a SOP Class as {fhir_form}, which receivers match")  # fmt: skip
    named = f"has the system {system!r}" if system is not None else "has no system"
    return bare, f"{named}: FHIR codes a SOP Class as {fhir_form}, which receivers match"


_UID_NAMES = {"series": "Series Instance UID", "instance": "SOP Instance UID", "sop-class": "SOP Class UID"}


def _what(p: Pointer, level: str) -> str:
    """How a message names a UID's place: series[0].instance[2].uid (SOP Instance UID)."""
    if level == "study":
        return "the Study Instance UID identifier"
    return f"{_path(p)} ({_UID_NAMES[level]})"


def _path(p: Pointer) -> str:
    """series[0].instance[2] for ("series", 0, "instance", 2)."""
    return "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in p).lstrip(".")


def _count(value: object) -> int | None:
    """A count to compare: a non-negative integer (anything else is the base rules' finding)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def is_wado_rs(endpoint: dict) -> bool:
    ct = endpoint.get("connectionType")
    values = ct if isinstance(ct, list) else [ct]
    return any(c.get("code") == "dicom-wado-rs" for v in values for c, _ in _codings(v))
