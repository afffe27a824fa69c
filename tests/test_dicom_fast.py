"""The DICOM checks of a study read the plain case in bulk (StudyCheck.run): their findings must
be those of the straightforward checks, one instance at a time, kept here as the reference (the
code before the bulk reads, verbatim but for its name). Compared on every payload of the
fixtures and examples, on generated studies and on their mutants (wrong, repeated and reused
UIDs, counts, numbers, SOP Classes, modalities, endpoints, JSON types), in R4, R5 and R6."""

from __future__ import annotations

import copy
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fixture_cases import load_cases
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from validator import Validator
from validator import rule_ids as R
from validator.dicom.registry import DCM, cid_codes, sop_classes
from validator.dicom.uids import all_valid, uid_problem
from validator.evaluate.code_systems import page_advice
from validator.evaluate.dicom.study import (
    _DICOM_PAGE,
    DCM_OID,
    DICOM_ROOT,
    StudyCheck,
    _codings,
    _count,
    _items,
    _path,
    _what,
    endpoint_problems,
    sop_class_uid,
)

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from benchmark import study as bench_study  # noqa: E402
from corpora import realistic  # noqa: E402

Pointer = tuple[str | int, ...]


class ReferenceStudyCheck:
    """StudyCheck as it was before the bulk reads: each instance read by the methods, one by one."""

    def __init__(self, report, resolve, fhir_version: str, sop_class_modalities, modalities_checked: bool = False):
        self._report = report
        self.reported = 0
        self._clean_sop_classes: set[tuple] = set()
        self.resolve = resolve
        self.acquisition_only = fhir_version.startswith("4.")
        self.modalities_checked = modalities_checked
        self.sop_class_modalities = sop_class_modalities
        self.where: dict = {}
        self.unresolved: list = []

    def report(self, rule: str, p: Pointer, message: str) -> None:
        self.reported += 1
        self._report(rule, p, message)

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
            listed = self.instances(s.get("instance"), i, modality if modality in cid_codes(33) else None)
            listed_instances += listed
            every_series_lists = every_series_lists and bool(listed)
            self.series_count(s, sp, listed)
            self.endpoints(s.get("endpoint"), (*sp, "endpoint"), study_uid, series_uid)
        self.study_modalities(study, series_modalities)
        self.study_counts(study, len(series), listed_instances if every_series_lists and series else None)
        self.endpoints(study.get("endpoint"), ("endpoint",), study_uid, None)

    def instances(self, value: object, i: int, modality: str | None) -> int:
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

    def uid(self, uid: str, at: Pointer, step: str, level: str) -> None:
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

    def sop_class(self, value: object, at: Pointer, modality: str | None) -> None:
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

    def _sop_class(self, value: object, p: Pointer, modality: str | None) -> None:
        if isinstance(value, str):
            uid = value.removeprefix("urn:oid:")
        elif isinstance(value, dict):
            system, code = value.get("system"), value.get("code")
            if not isinstance(code, str) or not (system is None or isinstance(system, str)):
                return
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

    def modality(self, value: object, p: Pointer, what: str) -> str | None:
        found = None
        others = []
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
                found = found or (code if _DICOM_PAGE.match(system) else None)
            else:
                others.append(f"{system}#{code}" if system else code)
        if found is None and others:
            self.report(R.MODALITY_SYSTEM, p, f"{what} has no DICOM modality code (code system {DCM}): found "
                        f"{', '.join(others[:3])}; a PACS reads the DICOM Modality (0008,0060)")  # fmt: skip
        return found

    def study_modalities(self, study: dict, series: dict[str, tuple]) -> None:
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

    def number(self, seen: dict[object, int], value: object, at: Pointer, rule: str, name: str) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            return
        if value in seen:
            parent = _path(at[:-2]) or "the study"
            self.report(rule, (*at, "number"), f"{_path(at)} has {name} {value}, like an earlier one in {parent} "
                        "(PS3.3: unique)")  # fmt: skip
        else:
            seen[value] = 1

    def series_count(self, s: dict, sp: Pointer, listed: int) -> None:
        claimed = _count(s.get("numberOfInstances"))
        if claimed is not None and listed and claimed < listed:
            self.report(R.SERIES_NUMBER_OF_INSTANCES, (*sp, "numberOfInstances"),
                        f"series[{sp[1]}] claims {claimed} instance(s) but lists {listed}: a count may exceed "
                        "the instances listed (a partial listing), never fall short of them")  # fmt: skip

    def study_counts(self, study: dict, listed_series: int, listed_instances: int | None) -> None:
        n = _count(study.get("numberOfSeries"))
        if n is not None and listed_series and n < listed_series:
            self.report(R.NUMBER_OF_SERIES, ("numberOfSeries",),
                        f"numberOfSeries is {n} but {listed_series} series are listed: a count may exceed the "
                        "series listed, never fall short of them")  # fmt: skip
        m = _count(study.get("numberOfInstances"))
        if m is not None and listed_instances is not None and m < listed_instances:
            self.report(R.NUMBER_OF_INSTANCES, ("numberOfInstances",), f"numberOfInstances is {m} but the series list "
                        f"{listed_instances} instance(s): a count may exceed the instances listed, never fall short "
                        "of them")  # fmt: skip

    def endpoints(self, value: object, p: Pointer, study_uid: str | None, series_uid: str | None) -> None:
        for k, ref in _items(value):
            literal = ref.get("reference")
            if not isinstance(literal, str):
                continue
            rp = (*p, k, "reference")
            target = self.resolve(literal)
            if target is None:
                self.unresolved.append((literal, rp, study_uid, series_uid))
                continue
            for rule, message in endpoint_problems(target, literal, study_uid, series_uid):
                self.report(rule, rp, message)


# -- comparing ----------------------------------------------------------------------------------

VERSIONS = ("4.0.1", "5.0.0", "6.0.0-cibuild")


def _table() -> dict[str, frozenset[str]]:
    return Validator(fhir_version=None).plan.sop_class_modalities


TABLE = _table()


def _resolver(study: dict) -> Callable[[str], dict | None]:
    """References to contained resources resolve (as in the pipeline); others wait."""
    contained = {f"#{r.get('id')}": r for r in study.get("contained") or [] if isinstance(r, dict)}
    return contained.get


def _outcome(cls: type, study: dict, version: str, checked: bool, table: dict) -> tuple:
    found: list[tuple] = []
    check = cls(lambda *finding: found.append(finding), _resolver(study), version, table, modalities_checked=checked)
    check.run(study)
    return found, check.unresolved, check.reported


def assert_same(study: dict, versions: tuple[str, ...] = VERSIONS, table: dict | None = None) -> list[tuple]:
    """The fast checks find what the reference finds, in R4, R5 and R6 (ist-7 or not)."""
    table = TABLE if table is None else table
    before = copy.deepcopy(study)
    first = None
    for version in versions:
        for checked in (False, True):
            fast = _outcome(StudyCheck, study, version, checked, table)
            reference = _outcome(ReferenceStudyCheck, study, version, checked, table)
            assert fast == reference, (version, checked)
            first = first if first is not None else fast[0]
    assert study == before, "the checks changed the study"
    return first or []


def _imaging_studies(node: object) -> list[dict]:
    if isinstance(node, list):
        return [s for item in node for s in _imaging_studies(item)]
    if not isinstance(node, dict):
        return []
    found = [node] if node.get("resourceType") == "ImagingStudy" else []
    for entry in node.get("entry") or [] if isinstance(node.get("entry"), list) else []:
        found += _imaging_studies(entry.get("resource") if isinstance(entry, dict) else None)
    return found


def _payload_files() -> list[Path]:
    shared = ROOT.parent / "shared" / "reference" / "examples"
    files = sorted((ROOT / "examples").rglob("*.json")) + sorted((ROOT / "examples").rglob("*.ndjson"))
    return files + (sorted(shared.rglob("*.json")) if shared.is_dir() else [])


def _from_files() -> list[dict]:
    studies = []
    for path in _payload_files():
        text = path.read_text(encoding="utf-8")
        docs = [json.loads(line) for line in text.splitlines() if line.strip()] if path.suffix == ".ndjson" else [
            json.loads(text)]  # fmt: skip
        studies += _imaging_studies(docs)
    return studies


# -- mutants ------------------------------------------------------------------------------------

CT, MR = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4"
RETIRED = "1.2.840.10008.5.1.4.1.1.5"  # NM Image Storage (retired)
SOP_FORMS = [
    {"system": "urn:ietf:rfc:3986", "code": f"urn:oid:{CT}"},
    {"system": "urn:ietf:rfc:3986", "code": f"urn:oid:{MR}"},
    {"system": "urn:ietf:rfc:3986", "code": MR},  # bare UID
    {"system": DCM, "code": f"urn:oid:{CT}"},
    {"system": "urn:oid:1.2.840.10008.2.6.1", "code": CT},  # DCMUID
    {"code": f"urn:oid:{CT}"},  # no system
    {"system": None, "code": f"urn:oid:{CT}"},
    {"system": "urn:ietf:rfc:3986", "code": "urn:oid:1.2.3.4.5"},  # private
    {"system": "urn:ietf:rfc:3986", "code": "urn:oid:1.2.840.10008.9.9.9"},  # unknown under the root
    {"system": "urn:ietf:rfc:3986", "code": f"urn:oid:{RETIRED}"},
    {"system": "urn:ietf:rfc:3986", "code": "urn:oid:1.2.840.10008.5.1.4.1.1.88.11"},  # Basic Text SR
    {"system": "urn:ietf:rfc:3986", "code": "urn:oid:1.02.3"},  # an invalid UID
    {"system": "urn:ietf:rfc:3986", "code": "CT Image"},  # no UID at all
    {"system": "http://dicom.nema.org/medical/dicom/current/output/chtml/part04/sect_B.5.html", "code": CT},
    {"system": 5, "code": CT},
    {"system": "urn:ietf:rfc:3986", "code": ["x"]},
    {"system": "urn:ietf:rfc:3986"},
    f"urn:oid:{CT}",
    f"urn:oid:{MR}",
    CT,
    "urn:oid:1.2.3",
    "urn:oid:1..2",
    None,
    7,
    [f"urn:oid:{CT}"],
]
MODALITIES = ["CT", "MR", "SR", "KO", "PR", "US", "DOC", "", "XX"]
UID_FORMS = ["1.02.3", "", "1..2", "1.2.", ".1.2", "abc", "1.2.3a", "1" * 65, "0", "1.0.0.1", "1.0.0.01", "1\n2",
             "١.٢", "1.2.3.4.5"]  # fmt: skip
BAD_JSON = [None, True, 1.5, "x", [], {}, [1], {"a": 1}]


def _coding(rng: random.Random, code: str, r5: bool) -> object:
    systems = [DCM] * 6 + [DCM_OID, "http://snomed.info/sct", None, "http://dicom.nema.org/medical/dicom/current/"
                          "output/chtml/part16/sect_CID_29.html", "https://example.org/page"]  # fmt: skip
    coding: dict = {"code": code}
    system = rng.choice(systems)
    if system is not None:
        coding["system"] = system
    if rng.random() < 0.1:
        coding["code"] = rng.choice([5, None, code.lower()])
    if not r5:
        return coding
    codings = [coding] + ([{"system": "http://snomed.info/sct", "code": "77477000"}] if rng.random() < 0.2 else [])
    value: dict = {"coding": codings}
    if rng.random() < 0.1:
        value = {"text": code}
    return value


def _endpoint(study_uid: str, series_uid: str | None, ident: str) -> dict:
    address = f"https://pacs.example.org/rs/studies/{study_uid}" + (f"/series/{series_uid}" if series_uid else "")
    return {"resourceType": "Endpoint", "id": ident, "status": "active", "address": address,
            "connectionType": {"system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                               "code": "dicom-wado-rs"}, "payloadType": [{"text": "DICOM"}]}  # fmt: skip


def mutant(rng: random.Random, series: int, instances: int, mutations: int) -> dict:
    """A generated study (R4, R5 or R6 shaped) with `mutations` random changes."""
    doc = bench_study(rng, series, instances)
    r5 = rng.random() < 0.4
    r6 = r5 and rng.random() < 0.5
    for s in doc["series"]:
        if r5:
            s["modality"] = {"coding": [s["modality"]]}
        for inst in s["instance"]:
            if r6:
                inst["sopClass"] = inst["sopClass"]["code"]
    if r5:
        doc["modality"] = [{"coding": [m]} for m in doc["modality"]]
    uids = [v["value"].removeprefix("urn:oid:") for v in doc["identifier"]]
    uids += [s["uid"] for s in doc["series"]] + [i["uid"] for s in doc["series"] for i in s["instance"]]
    series_list = doc["series"]
    for _ in range(mutations):
        s = rng.choice(series_list) if series_list else None
        inst = rng.choice(s["instance"]) if s and s.get("instance") and isinstance(s["instance"], list) else None
        inst = inst if isinstance(inst, dict) else None
        kind = rng.randrange(24)
        if kind == 0 and inst is not None:
            inst["uid"] = rng.choice(uids)  # a duplicate, or a UID of another level
        elif kind == 1 and inst is not None:
            inst["uid"] = rng.choice(UID_FORMS + [5, None])
        elif kind == 2 and s is not None:
            s["uid"] = rng.choice(uids + UID_FORMS + [5])
        elif kind == 3 and inst is not None:
            inst["sopClass"] = copy.deepcopy(rng.choice(SOP_FORMS))
        elif kind == 4 and inst is not None:
            inst["number"] = rng.choice([1, 2, 3, 0, -1, True, 1.0, "2", None])
        elif kind == 5 and s is not None:
            s["number"] = rng.choice([1, 2, 3, True, 1.5, "1", None])
        elif kind == 6 and s is not None:
            s["numberOfInstances"] = rng.choice([0, 1, 3, 5, 1000, -1, True, "5", None, 2.0])
        elif kind == 7:
            doc["numberOfSeries"] = rng.choice([0, 1, 2, 50, -1, False, "2", None])
        elif kind == 8:
            doc["numberOfInstances"] = rng.choice([0, 1, 9, 10, 10**6, -3, True, None])
        elif kind == 9 and s is not None:
            s["modality"] = _coding(rng, rng.choice(MODALITIES), r5)
        elif kind == 10:
            doc["modality"] = [_coding(rng, rng.choice(MODALITIES), r5) for _ in range(rng.randrange(3))]
        elif kind == 11 and s is not None and isinstance(s.get("instance"), list):
            s["instance"].insert(rng.randrange(len(s["instance"]) + 1), rng.choice(BAD_JSON))
        elif kind == 12 and s is not None:
            s["instance"] = rng.choice([None, {}, "x", [], copy.deepcopy(s.get("instance"))])
        elif kind == 13:
            series_list.insert(rng.randrange(len(series_list) + 1), rng.choice(BAD_JSON))
            series_list = [x for x in series_list if isinstance(x, dict)]
        elif kind == 14 and s is not None:
            twin = copy.deepcopy(s)  # a series listed twice
            doc["series"].append(twin)
            series_list.append(twin)
        elif kind == 15 and inst is not None:
            inst.pop(rng.choice(["uid", "sopClass", "number"]), None)
        elif kind == 16:
            doc["identifier"] = rng.choice([
                [{"system": "urn:dicom:uid", "value": rng.choice(uids)}],
                [{"system": "urn:dicom:uid", "value": f"urn:oid:{rng.choice(uids)}"}] * 2,
                [{"system": "urn:dicom:uid", "value": rng.choice(UID_FORMS)}],
                [{"system": "urn:dicom:uid", "value": 5}], "x", []])  # fmt: skip
        elif kind == 17 and s is not None:
            study_uid = uids[0]
            other = rng.choice([study_uid, "9.9.9"])
            ident = f"e{rng.randrange(10**6)}"
            doc.setdefault("contained", []).append(_endpoint(other, rng.choice([s.get("uid"), "8.8"]), ident))
            s["endpoint"] = [{"reference": f"#{ident}"}, {"reference": "Endpoint/elsewhere"}, {"display": "x"}]
        elif kind == 18:
            ident = f"e{rng.randrange(10**6)}"
            doc.setdefault("contained", []).append(_endpoint(rng.choice([uids[0], "9.9"]), None, ident))
            doc["endpoint"] = [{"reference": f"#{ident}"}, {"reference": "Endpoint/w"}]
        elif kind == 19 and s is not None:
            s["endpoint"] = rng.choice([None, [], [{"reference": "Endpoint/x"}], "x"])
        elif kind == 20 and s is not None and isinstance(s.get("instance"), list):
            for i in s["instance"]:  # the whole series in another SOP Class form
                if isinstance(i, dict):
                    i["sopClass"] = copy.deepcopy(SOP_FORMS[rng.randrange(len(SOP_FORMS))])
        elif kind == 21 and s is not None and isinstance(s.get("instance"), list):
            for k, i in enumerate(s["instance"]):  # numbers all absent, or all the same
                if isinstance(i, dict):
                    i["number"] = rng.choice([None, 1]) if k == 0 else i.get("number") if rng.random() < 0.5 else None
        elif kind == 22 and s is not None:
            s["uid"] = uids[0]
        elif kind == 23:
            doc["series"] = rng.choice([None, {}, "x", []])
            series_list = []
    return doc


# -- tests --------------------------------------------------------------------------------------


def test_the_payloads_of_the_examples_have_the_findings_of_the_one_by_one_checks() -> None:
    studies = _from_files()
    assert len(studies) >= 6
    for study in studies:
        assert_same(study)


def test_the_payloads_of_the_rule_fixtures_have_the_findings_of_the_one_by_one_checks() -> None:
    studies = [s for case in load_cases() if case.payload is not None for s in _imaging_studies(case.payload)]
    assert len(studies) >= 50
    reported = sum(bool(assert_same(study)) for study in studies)
    assert reported >= 20  # the DICOM fixtures: most of their studies have something to report


def test_realistic_and_large_generated_studies_are_clean_in_both_and_count_the_same() -> None:
    rng = random.Random(20261123)
    for _ in range(20):
        assert assert_same(realistic(rng, bench_study)) == []
    assert assert_same(bench_study(rng, 10, 300), versions=("4.0.1",)) == []


@pytest.mark.parametrize("seed", range(6))
def test_mutated_studies_have_the_findings_of_the_one_by_one_checks(seed: int) -> None:
    rng = random.Random(seed)
    findings = 0
    for n in range(60):
        study = mutant(rng, rng.randint(0, 4), rng.choice([0, 1, 2, 5, 12]), rng.randrange(4) if n % 5 else 0)
        findings += len(assert_same(study))
    assert findings > 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32), st.integers(0, 3), st.integers(0, 15), st.integers(0, 6))
def test_any_mutant_has_the_findings_of_the_one_by_one_checks(seed: int, series: int, instances: int, n: int) -> None:
    assert_same(mutant(random.Random(seed), series, instances, n))


def test_a_duplicate_of_an_instance_read_in_bulk_names_the_place_of_the_first() -> None:
    study = bench_study(random.Random(3), 3, 20)
    first = study["series"][1]["instance"][7]["uid"]
    study["series"][2]["instance"][4]["uid"] = first
    study["series"][2]["uid"] = study["series"][0]["instance"][19]["uid"]
    findings = assert_same(study)
    assert [(rule, p) for rule, p, _ in findings] == [
        (R.UID_LEVEL_REUSE, ("series", 2, "uid")),
        (R.INSTANCE_UID_UNIQUE, ("series", 2, "instance", 4, "uid")),
    ]
    assert "series[1].instance[7].uid" in findings[1][2]
    assert "series[0].instance[19].uid" in findings[0][2]


def test_a_sop_class_form_found_clean_in_one_study_is_not_clean_in_a_series_of_another_modality() -> None:
    rng = random.Random(4)
    ct = bench_study(rng, 1, 3)
    ct["series"][0]["modality"]["code"] = ct["modality"][0]["code"] = "CT"
    mr = copy.deepcopy(ct)
    mr["series"][0]["modality"]["code"] = mr["modality"][0]["code"] = "MR"
    for inst in ct["series"][0]["instance"] + mr["series"][0]["instance"]:
        inst["sopClass"] = {"system": "urn:ietf:rfc:3986", "code": f"urn:oid:{CT}"}
    assert assert_same(ct) == []
    assert [rule for rule, _, _ in assert_same(mr)] == [R.SOP_CLASS_MODALITY] * 3


def test_the_checks_of_another_table_of_sop_class_modalities_do_not_share_what_was_found_clean() -> None:
    study = bench_study(random.Random(5), 1, 4)
    study["series"][0]["modality"]["code"] = study["modality"][0]["code"] = "CT"
    for inst in study["series"][0]["instance"]:
        inst["sopClass"] = {"system": "urn:ietf:rfc:3986", "code": f"urn:oid:{CT}"}
    assert assert_same(study) == []
    keyword = sop_classes()[CT].keyword
    narrow = {**TABLE, keyword: frozenset({"MR"})}
    assert [rule for rule, _, _ in assert_same(study, table=narrow)] == [R.SOP_CLASS_MODALITY] * 4


@settings(max_examples=400, deadline=None)
@given(st.lists(st.text(alphabet="0123456789.\n a", max_size=12), min_size=1, max_size=4))
def test_uids_read_all_at_once_are_valid_only_if_each_is(uids: list[str]) -> None:
    if all_valid(uids):
        assert all(uid_problem(uid) is None for uid in uids)


def test_uids_read_all_at_once_are_told_valid_when_plain() -> None:
    assert all_valid(["1.2.840.10008.5.1.4.1.1.2", "0.0", "1.0.3", "1.2.0"])
    assert all_valid(["1.2.0.0.3"])  # zero components in a row, counted apart
    assert not all_valid(["1.2.3", "1.02"])
    assert not all_valid(["1.2.3", "1" * 65])
    assert not all_valid(["1.2\n3"])


@pytest.mark.parametrize(
    ("numbers", "repeated"),
    [
        ([None, 2, 2], [2]),
        ([None, 1, None, 2], []),
        ([1, 1.0, 2], []),  # a float is no Instance Number (the base rules' finding)
        ([1, True, 2], []),
        ([3, None, 3, 3], [2, 3]),
        (["1", "1", 1], []),
        ([[1], 1, 2], []),
    ],
)
def test_instance_numbers_absent_or_of_other_types_beside_repeated_ones_are_read_as_one_by_one(
    numbers: list, repeated: list[int]
) -> None:
    study = bench_study(random.Random(6), 2, len(numbers))
    for inst, number in zip(study["series"][1]["instance"], numbers, strict=True):
        inst["number"] = number
    findings = assert_same(study)
    assert [p for rule, p, _ in findings if rule == R.INSTANCE_NUMBER_UNIQUE] == [
        ("series", 1, "instance", j, "number") for j in repeated
    ]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.text(alphabet="0123456789.\n a١", max_size=70), min_size=1, max_size=4))
def test_uids_read_all_at_once_are_valid_exactly_when_each_is(uids: list[str]) -> None:
    assert all_valid(uids) == all(uid_problem(uid) is None for uid in uids)


def test_uids_read_all_at_once_at_the_edges_of_the_grammar() -> None:
    assert all_valid(["1" * 64, "0.0.0.0", "10.20.0"])
    for bad in ["1" * 65, "", ".", "1.", ".1", "1..2", "01", "1.00", "1.2.3\n4", "1.2.3 ", "١.٢"]:
        assert not all_valid(["1.2.3", bad]), bad
        assert not all_valid([bad, "1.2.3"]), bad


# -- the common shape (StudyCheck._common_shape) ------------------------------------------------


def _uids(study: dict) -> list[str]:
    found = [i["value"].removeprefix("urn:oid:") for i in study.get("identifier", []) if isinstance(i, dict)
             and i.get("system") == "urn:dicom:uid" and isinstance(i.get("value"), str)]  # fmt: skip
    for s in study.get("series") or []:
        found.append(s.get("uid"))
        found += [i.get("uid") for i in s.get("instance") or [] if isinstance(i, dict)]
    return [u for u in found if isinstance(u, str)] or ["1.2.3"]


def common_mutant(rng: random.Random) -> dict:
    """A realistic or generated study (R4, R5 or R6 shaped) changed in one of the ways that
    StudyCheck._common_shape decides on, or leaves to the plain pass: equal or unequal sopClasses
    of one form, whole-study modalities (non-acquisition ones in R4), Instance and Series Numbers
    of other orders and types, identifiers, counts, missing fields, UIDs at the grammar's edges
    and reused across levels, and series of several modalities."""
    doc = realistic(rng, bench_study, rng.randint(1, 3), rng.randint(1, 6)) if rng.random() < 0.5 else (
        bench_study(rng, rng.randint(1, 3), rng.randint(1, 6)))  # fmt: skip
    r5 = rng.random() < 0.4
    r6 = r5 and rng.random() < 0.5
    for s in doc["series"]:
        if r5:
            s["modality"] = {"coding": [s["modality"]]}
        for inst in s["instance"]:
            if r6:
                inst["sopClass"] = inst["sopClass"]["code"]
    if r5:
        doc["modality"] = [{"coding": [m]} for m in doc["modality"]]
    series = doc["series"]
    s = rng.choice(series)
    inst = rng.choice(s["instance"])
    uids = _uids(doc)
    kind = rng.randrange(20)
    if kind == 0 and isinstance(inst["sopClass"], dict):  # the same form, written otherwise
        inst["sopClass"]["display"] = rng.choice(["CT Image Storage", None])
    elif kind == 1:
        for i in s["instance"]:
            i["sopClass"] = copy.deepcopy(rng.choice(SOP_FORMS[:7] + SOP_FORMS[17:20]))
            if isinstance(i["sopClass"], dict) and rng.random() < 0.5:
                i["sopClass"]["display"] = "x"
    elif kind in (2, 3):  # one modality for the whole study, the study list written as the series'
        code = rng.choice(["CT", "MR", "SR", "KO", "PR", "US", "DOC", "XX", ""])
        for x in series:
            x["modality"] = {"system": DCM, "code": code}
            if r5:
                x["modality"] = {"coding": [x["modality"]]}
        doc["modality"] = [copy.deepcopy(series[0]["modality"]) for _ in range(rng.choice([1, 1, 1, 2]))]
        if kind == 3:
            s["modality"] = _coding(rng, code, r5)
    elif kind == 4:  # a series of another modality, with a SOP Class of its own or not
        code, sop = rng.choice([("SR", "1.2.840.10008.5.1.4.1.1.88.11"), ("KO", "1.2.840.10008.5.1.4.1.1.88.59"),
                                ("CT", CT), ("MR", MR), ("PR", "1.2.840.10008.5.1.4.1.1.11.1")])  # fmt: skip
        s["modality"] = {"system": DCM, "code": code}
        if r5:
            s["modality"] = {"coding": [s["modality"]]}
        for i in s["instance"] if rng.random() < 0.5 else []:  # else its SOP Classes may belong elsewhere
            i["sopClass"] = f"urn:oid:{sop}" if r6 else {"system": "urn:ietf:rfc:3986", "code": f"urn:oid:{sop}"}
        if rng.random() < 0.5:
            doc["modality"] = [copy.deepcopy(x["modality"]) for x in series]
    elif kind == 5:  # Instance Numbers in another order, of other types, absent, repeated
        numbers = [i["number"] for i in s["instance"]]
        choice = rng.randrange(6)
        if choice == 0:
            rng.shuffle(numbers)
        elif choice == 1:
            numbers = [n + rng.choice([1, 10, -1]) for n in numbers]
        elif choice == 2:
            numbers[rng.randrange(len(numbers))] = rng.choice([None, "1", 1.0, True, [1], 2])
        elif choice == 3:
            numbers = [None] * len(numbers)
        elif choice == 4:
            numbers = [rng.choice([1, 2, None]) for _ in numbers]
        for i, n in zip(s["instance"], numbers, strict=True):
            if choice == 5 and rng.random() < 0.5:
                i.pop("number")
            else:
                i["number"] = n
    elif kind == 6:  # Series Numbers
        s["number"] = rng.choice([None, 1, 2, "1", 1.0, True, [1]])
        if rng.random() < 0.3:
            s.pop("number")
    elif kind == 7:  # identifiers
        doc["identifier"] = rng.choice([
            doc["identifier"] + [5],
            doc["identifier"] + [copy.deepcopy(doc["identifier"][0])],
            doc["identifier"] + [{"system": "urn:dicom:uid", "value": f"urn:oid:{rng.choice(uids)}"}],
            [{"system": "urn:dicom:uid", "value": uids[0]}],
            [{"system": "urn:dicom:uid", "value": 5}] + doc["identifier"],
            [{"system": "urn:dicom:uid"}], {"system": "urn:dicom:uid"}, None, [],
        ])  # fmt: skip
        if doc["identifier"] is None:
            del doc["identifier"]
    elif kind == 8:  # counts
        field = rng.choice(["numberOfSeries", "numberOfInstances"])
        target = doc if rng.random() < 0.5 else s
        target[field] = rng.choice([0, 1, 2, 5, 9, 10, 11, 100, -1, True, 2.0, "5", None])
    elif kind == 9:  # fields absent
        rng.choice([inst, s]).pop(rng.choice(["uid", "sopClass", "number", "modality", "instance"]), None)
    elif kind == 10:  # UIDs reused across levels and series
        target, field = rng.choice([(inst, "uid"), (s, "uid")])
        target[field] = rng.choice(uids)
    elif kind == 11:  # UIDs at the grammar's edges
        target = rng.choice([inst, s])
        target["uid"] = rng.choice(["1" * 64, "1" * 65, "1.0.0", "1.00", "0", "1.2.3.", "1.2.3\n4", "١", "2.25.0"])
    elif kind == 12:  # modalities written otherwise
        s["modality"] = rng.choice([{"coding": [s["modality"], s["modality"]]} if r5 else {"code": "CT"},
                                    {"coding": "x"}, {"system": DCM, "code": ""}, {"system": DCM_OID, "code": "CT"},
                                    {"coding": [5]}, "CT", None])  # fmt: skip
    elif kind == 13:  # the study's modality list written otherwise
        m = copy.deepcopy(series[-1]["modality"])
        if isinstance(m, dict):
            (m["coding"][0] if "coding" in m else m)["display"] = "x"
        doc["modality"] = rng.choice([[m], [m, m], [], "x", [None], [copy.deepcopy(series[0]["modality"]), m]])
    elif kind == 14:  # endpoints
        ident = f"e{rng.randrange(10**6)}"
        doc.setdefault("contained", []).append(_endpoint(rng.choice([uids[0], "9.9"]), None, ident))
        rng.choice([doc, s])["endpoint"] = rng.choice([[{"reference": f"#{ident}"}], [], "x"])
    elif kind == 15:  # instances or series that are not objects, lists that are empty
        rng.choice([s["instance"], series]).append(rng.choice(BAD_JSON))
        if rng.random() < 0.3:
            s["instance"] = []
    elif kind == 16:
        doc["series"] = rng.choice([[], {}, None])
    elif kind == 17:  # a series listed twice
        series.append(copy.deepcopy(s))
    elif kind == 18:  # UIDs that are not strings
        rng.choice([inst, s])["uid"] = rng.choice([5, None, ["1.2"], {"a": 1}])
    return doc


def test_studies_of_or_near_the_common_shape_have_the_findings_of_the_one_by_one_checks(monkeypatch) -> None:
    taken = []
    common = StudyCheck._common_shape

    def spy(self: StudyCheck, study: dict) -> bool:
        taken.append(common(self, study))
        return taken[-1]

    monkeypatch.setattr(StudyCheck, "_common_shape", spy)
    rng = random.Random(20261127)
    findings = 0
    for _ in range(600):
        findings += bool(assert_same(common_mutant(rng)))
    assert findings > 100
    # The shortcut decided many of them (the first check of a form learns it, the others use it).
    assert taken.count(True) > 800 and taken.count(False) > 800


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32))
def test_any_study_near_the_common_shape_has_the_findings_of_the_one_by_one_checks(seed: int) -> None:
    assert_same(common_mutant(random.Random(seed)))


def _outcome_of_many(cls: type, studies: list[dict], version: str, table: dict) -> tuple:
    """One check run over several studies (its UIDs met once across them): as a caller might."""
    found: list[tuple] = []
    contained: dict = {}
    for study in studies:
        contained.update({f"#{r.get('id')}": r for r in study.get("contained") or [] if isinstance(r, dict)})
    check = cls(lambda *finding: found.append(finding), contained.get, version, table)
    for study in studies:
        check.run(study)
    return found, check.unresolved, check.reported


def test_a_check_run_again_knows_the_uids_of_a_study_of_the_common_shape() -> None:
    rng = random.Random(11)
    for _ in range(40):
        first = realistic(rng, bench_study, rng.randint(1, 3), rng.randint(1, 6))
        assert_same(first)  # the forms of its SOP Classes are known: the next check takes the shortcut
        check = StudyCheck(lambda *finding: None, lambda literal: None, "4.0.1", TABLE)
        check.run(first)
        assert check._deferred is not None
        second = rng.choice([copy.deepcopy(first), common_mutant(rng), first])
        if rng.random() < 0.5:  # some UIDs of the first, at other places
            donor = rng.choice(first["series"])
            rng.choice(second.get("series") or [{}])["uid"] = rng.choice(donor["instance"])["uid"]
        for version in VERSIONS:
            assert _outcome_of_many(StudyCheck, [first, second, first], version, TABLE) == _outcome_of_many(
                ReferenceStudyCheck, [first, second, first], version, TABLE)  # fmt: skip


@pytest.mark.parametrize(("code", "sop"), [("XX", "1.2.840.10008.5.1.4.1.1.88.11"), ("CT", CT),
                                           ("SR", "1.2.840.10008.5.1.4.1.1.88.11")])  # fmt: skip
def test_a_clean_study_of_one_modality_takes_the_common_shape_whatever_the_modality(code: str, sop: str) -> None:
    """Outside CID 33 (XX) a series' SOP Classes are not matched to its modality: their forms found
    clean for no modality serve; in R5 a non-acquisition modality (SR) is listed as any other."""
    study = bench_study(random.Random(12), 2, 3)
    for s in study["series"]:
        s["modality"] = {"system": DCM, "code": code}
        for inst in s["instance"]:
            inst["sopClass"] = {"system": "urn:ietf:rfc:3986", "code": f"urn:oid:{sop}"}
    study["modality"] = [{"system": DCM, "code": code}]
    version = "4.0.1" if code != "SR" else "5.0.0"
    assert assert_same(study, versions=(version,)) == []
    check = StudyCheck(lambda *finding: None, lambda literal: None, version, TABLE)
    check.run(study)
    assert check._deferred is not None
