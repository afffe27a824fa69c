"""DICOM-level checks of one ImagingStudy, read from its series and instance lists in one pass.

They read the payload defensively: a malformed element is the base rules' finding, so here it is
simply skipped. Messages name the DICOM rule behind each finding.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from itertools import chain, repeat
from operator import itemgetter

from validator import rule_ids as R
from validator.dicom.registry import DCM, cid_codes, sop_classes
from validator.dicom.uids import MAX_LENGTH, VALID_UID, all_valid, uid_problem
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


def _plain_study_uids(identifiers: object) -> list[tuple[str, int]] | None:
    """The Study Instance UIDs (without urn:oid:) of the identifiers, with their indexes, when each
    is written urn:oid:<UID> (study_uid() may find them invalid or repeated); else None."""
    if identifiers is None:
        return []
    if type(identifiers) is not list:
        return None
    uids = []
    for k, ident in enumerate(identifiers):
        if type(ident) is not dict:
            return None
        if ident.get("system") != "urn:dicom:uid":
            continue
        value = ident.get("value")
        if type(value) is not str:
            if isinstance(value, str):
                return None
            continue  # not a string: no Study UID (the base rules' finding)
        if not value.startswith("urn:oid:"):
            return None
        uids.append((value[len("urn:oid:") :], k))
    return uids


def _dicom_code(value: object) -> str | None:
    """The code of a modality written plainly, one DICOM coding (an R4 Coding, an R5+
    CodeableConcept), for which StudyCheck.modality() has nothing to report; else None (then
    modality() reads it)."""
    if type(value) is not dict:
        return None
    coding = value.get("coding")
    if coding is None:
        code = value.get("code")
        return code if type(code) is str and value.get("system") == DCM else None
    if type(coding) is list and len(coding) == 1 and type(coding[0]) is dict:
        code = coding[0].get("code")
        return code if type(code) is str and coding[0].get("system") == DCM else None
    return None


# What the series give the study-level checks: modality -> first place, instances listed, and
# whether every series lists some.
_Walked = tuple[dict[str, tuple], int, bool]
_STR_ONLY = frozenset({str})
_DICT_ONLY = frozenset({dict})
# The sopClass forms found clean (a string, or a Coding's (system, code)) per series modality, per
# table of SOP Class modalities (a plan's): what a form is found to be depends on that table
# only, so the studies of a run share what was found.
_CLEAN: dict[int, tuple[dict, dict[str | None, set]]] = {}
_SYSTEM_CODE = itemgetter("system", "code")
# Instance Numbers as most series number their instances, to compare with in one C call.
_ONE_TO = list(range(1, 1025))
# The fields of instances read in bulk, map(_GET, instances, _UID): repeat() is stateless, so
# one of each serves every read.
_GET = dict.get
_UID, _SOP_CLASS, _NUMBER = repeat("uid"), repeat("sopClass"), repeat("number")


def _any_finding(check: Callable[..., None], value: object, modality: str | None) -> bool:
    """Whether StudyCheck._sop_class finds something in a sopClass, tried without reporting it
    (where it belongs, at its instance, sop_class() reports it)."""
    found: list[tuple] = []
    check(value, ("series", 0, "instance", 0, "sopClass"), modality, lambda *finding: found.append(finding))
    return bool(found)


def _one_clean_form(classes: list, clean: set | None) -> bool:
    """Whether the sopClasses of `classes` (those of some instances) are all equal to the first,
    of a form that sop_class() found clean (`clean`, for their series' modality): then none has
    anything to report. Equal as JSON values: a Coding equal to the first has its system and code."""
    first = classes[0]
    if type(first) is str:
        form: object = first
    elif type(first) is dict:
        system, code = first.get("system"), first.get("code")
        if type(code) is not str or not (system is None or type(system) is str):
            return False
        form = (system, code)
    else:
        return False
    return clean is not None and form in clean and classes.count(first) == len(classes)


def _clean_sop_classes(table: dict[str, frozenset[str]]) -> dict[str | None, set]:
    kept = _CLEAN.get(id(table))
    if kept is None or kept[0] is not table:
        if len(_CLEAN) >= 16:  # tables made by tests, one per check: forget them
            _CLEAN.clear()
        kept = _CLEAN[id(table)] = (table, {})
    return kept[1]


class StudyCheck:
    # Findings so far; what _common_shape() found, to be recorded in `where` only if another run
    # needs it. Class defaults: a study with nothing to report sets neither (one check per study).
    reported: int = 0
    _deferred: tuple[list[str], list[int], list[int]] | None = None

    def __init__(self, report: Report, resolve: Resolve, fhir_version: str,
                 sop_class_modalities: dict[str, frozenset[str]],
                 modalities_checked: bool = False) -> None:  # fmt: skip
        self._report = report
        # modality -> sopClass forms that passed (sop_class), shared by the checks of one table.
        self._clean_sop_classes = _clean_sop_classes(sop_class_modalities)
        self.resolve = resolve
        # R4 means the study-level modality list for acquisition modalities only (CID 29).
        self.acquisition_only = fhir_version.startswith("4.")
        # An invariant of the FHIR version (R6 ist-7) checks the modality list: not said twice.
        self.modalities_checked = modalities_checked
        self.sop_class_modalities = sop_class_modalities
        # UID -> level, place and step where first seen (uniqueness); for the instances of a series
        # read plainly, only the series' index (see _seen).
        self.where: dict[str, tuple[str, Pointer, str] | int] = {}
        self._plain_uids: list[tuple[int, list[str]]] = []  # (series index, its instances' UIDs) read plainly
        self._positions: dict[int, dict[str, int]] = {}  # index in _plain_uids -> UID -> instance index
        self.unresolved: list[tuple[str, Pointer, str | None, str | None]] = []  # endpoints not in the payload

    def report(self, rule: str, p: Pointer, message: str) -> None:
        self.reported += 1
        self._report(rule, p, message)

    # -- entry ----------------------------------------------------------------------------------
    @implements(R.SERIES_NUMBER_UNIQUE)
    def run(self, study: dict) -> None:
        """Every check of the study, in the order of its findings. A study of the common shape
        with nothing to report is told so in one lean pass (_common_shape); else the series are
        read as a whole for the plain case, where they have nothing to report (_plain_series);
        only otherwise one by one, by the methods that explain. The findings are those of these
        methods alone: a plain read reports nothing and, when it fails, has changed nothing."""
        if self._deferred is not None:
            self._record_deferred()
        if not self.where and self._common_shape(study):
            return
        series = _items(study.get("series"))
        study_uids = _plain_study_uids(study.get("identifier"))
        walked = None
        if study_uids is not None:  # the Study UIDs are checked with the others
            study_uid = study_uids[0][0] if study_uids else None
            walked = self._plain_series(series, study_uid, study_uids)
        if walked is None:
            study_uid = self.study_uid(study)
            if study_uids is None:  # only the Study UID identifiers were not plain
                walked = self._plain_series(series, study_uid, [])
            if walked is None:
                walked = self._each_series(series, study_uid)
        series_modalities, listed_instances, every_series_lists = walked
        if not self._plain_modalities(study.get("modality"), series_modalities):
            self.study_modalities(study, series_modalities)
        listed = listed_instances if every_series_lists and series else None
        n, m = study.get("numberOfSeries"), study.get("numberOfInstances")
        # A count may exceed what is listed: only one that might fall short is read (study_counts).
        if (n is not None and not (type(n) is int and n >= len(series))) or (
            m is not None and listed is not None and not (type(m) is int and m >= listed)
        ):
            self.study_counts(study, len(series), listed)
        endpoint = study.get("endpoint")
        if endpoint is not None:
            self.endpoints(endpoint, ("endpoint",), study_uid, None)

    def _common_shape(self, study: dict) -> bool:
        """Whether the study is of the shape most studies have, with nothing to report, decided
        with as little Python as can be: the pipeline makes a StudyCheck per study, and in a
        realistic one (a few series of a few instances) the Python steps of the plain pass cost
        more than its reads in C. The shape: UIDs valid and met once; Study UID identifiers
        written urn:oid:<UID>; every series an object with a string uid, a plain DICOM modality
        (_dicom_code), a number that is unique or none, a non-empty instance list its count does
        not fall short of, and no endpoint; every instance an object, with numbers all different
        in its series, the sopClasses of the series of one modality all equal to one form found
        clean for it; the study's modality list as _plain_modalities() passes it; its counts not
        short; no study endpoint. Anything else, whether or not it has something to report, is
        left to the plain pass and the methods that explain: False, having changed nothing. On
        True, what the plain pass records of the UIDs waits for a later run, if any
        (_record_deferred)."""
        series = study.get("series")
        if type(series) is not list or not series:
            return False
        # The Study Instance UIDs, then per series its UID and its instances' (None where absent:
        # all_valid's TypeError).
        every_uid: list[str] = []
        study_at: list[int] = []  # the identifier index of each Study Instance UID
        identifiers = study.get("identifier")
        if identifiers is not None:
            if type(identifiers) is not list:
                return False
            for k, ident in enumerate(identifiers):
                if type(ident) is not dict:
                    return False
                if ident.get("system") == "urn:dicom:uid":
                    value = ident.get("value")
                    if type(value) is not str or not value.startswith("urn:oid:"):
                        return False
                    every_uid.append(value[8:])  # without urn:oid:
                    study_at.append(k)
        codes: list[str] = []  # per series, its modality
        lengths: list[int] = []  # per series, how many instances it lists
        classes: list = []  # the sopClass of every instance, series after series
        numbers: set[int] = set()
        try:
            for s in series:
                if type(s) is not dict:
                    return False
                uid, written, number = s.get("uid"), s.get("modality"), s.get("number")
                if type(uid) is not str or type(written) is not dict:
                    return False
                modality = written
                coding = written.get("coding")
                if coding is not None:  # R5+: a CodeableConcept of one coding
                    if type(coding) is not list or len(coding) != 1 or type(coding[0]) is not dict:
                        return False
                    modality = coding[0]
                code = modality.get("code")
                if type(code) is not str or not code or modality.get("system") != DCM:
                    return False
                if number is not None:
                    if type(number) is not int or number in numbers:
                        return False
                    numbers.add(number)
                instances = s.get("instance")
                if type(instances) is not list or not instances:
                    return False
                k = len(instances)
                claimed = s.get("numberOfInstances")
                if (claimed is not None and not (type(claimed) is int and claimed >= k)) or (
                    s.get("endpoint") is not None
                ):
                    return False
                # Instance Numbers all different (as Python compares them, see
                # _plain_instance_fields): mostly 1, 2, 3... A TypeError: an instance that is
                # not an object, a number that is a list or an object.
                given = [*map(_GET, instances, _NUMBER)]
                if given != _ONE_TO[:k] and len(set(given)) != k:
                    return False
                every_uid.append(uid)
                every_uid += map(_GET, instances, _UID)
                classes += map(_GET, instances, _SOP_CLASS)
                codes.append(code)
                lengths.append(k)
            n, m = study.get("numberOfSeries"), study.get("numberOfInstances")
            listed = study.get("modality")
            one = codes.count(code) == len(codes)  # the series of a study mostly share a modality
            cid_33 = cid_codes(33)
            if (
                (n is not None and not (type(n) is int and n >= len(series)))
                or (m is not None and not (type(m) is int and m >= len(classes)))
                or study.get("endpoint") is not None
                # Mostly the study lists the one modality of its series, written as the last
                # series writes it (then _plain_modalities() would only check that it is an
                # acquisition modality, in R4); else _plain_modalities() tells.
                or not (
                    listed is None
                    or (
                        type(listed) is list
                        and len(listed) == 1
                        and one
                        and listed[0] == written
                        and not (self.acquisition_only and code in cid_33 and code not in cid_codes(29))
                    )
                    # The series modalities as _plain_series() gives them: the keys are what counts.
                    or self._plain_modalities(listed, dict.fromkeys(codes))
                )
                # A TypeError: a uid that is not a string (nor hashable).
                or len(set(every_uid)) != len(every_uid)
                or not all_valid(every_uid)
            ):
                return False
            # A code outside CID 33 says nothing about which SOP Classes belong in the series.
            clean = self._clean_sop_classes
            if one:
                if not _one_clean_form(classes, clean.get(code if code in cid_33 else None)):
                    return False
            else:
                at = 0
                for k, c in zip(lengths, codes, strict=True):
                    if not _one_clean_form(classes[at : at + k], clean.get(c if c in cid_33 else None)):
                        return False
                    at += k
        except TypeError:
            return False
        self._deferred = (every_uid, study_at, lengths)
        return True

    def _record_deferred(self) -> None:
        """Record in `where` the UIDs of the study _common_shape() passed, as _plain_series()
        records them: only a later run (another study checked by this check) needs them."""
        assert self._deferred is not None
        every_uid, study_at, lengths = self._deferred
        self._deferred = None
        where = self.where
        for uid, k in zip(every_uid, study_at, strict=False):  # the Study Instance UIDs come first
            where[uid] = ("study", ("identifier", k), "value")
        at = len(study_at)
        for i, k in enumerate(lengths):
            where[every_uid[at]] = ("series", ("series", i), "uid")
            self._record_plain(i, every_uid[at + 1 : at + 1 + k])
            at += 1 + k

    def _plain_modalities(self, value: object, series: dict[str, object]) -> bool:
        """Whether study_modalities() has nothing to report: study modalities written plainly
        (_dicom_code), acquisition modalities where R4 asks for them, the same as the series'."""
        if value is None:
            return True
        if type(value) is not list:
            return False
        acquisition_only = self.acquisition_only
        acquisition = cid_codes(29)
        if len(value) == 1 == len(series):  # mostly: the one modality of the series (never "")
            code = _dicom_code(value[0])
            if code in series:  # what the loops below find of it, in fewer steps
                return not (acquisition_only and code not in acquisition and code in cid_codes(33))
        listed = set()
        for item in value:
            code = _dicom_code(item)
            if not code:
                return False
            if acquisition_only and code not in acquisition and code in cid_codes(33):
                return False  # not an acquisition modality (R4)
            listed.add(code)
        if not listed or not series or self.modalities_checked:
            return True
        for code in series:
            if code not in listed and (not acquisition_only or code in acquisition):
                return False  # a series modality the list lacks
        return listed <= series.keys()

    def _plain_series(self, series: list[tuple[int, dict]], study_uid: str | None,
                      study_uids: list[tuple[str, int]]) -> _Walked | None:  # fmt: skip
        """What _each_series() returns, when no series or instance has anything to report (UIDs
        valid and met once, modalities a plain DICOM code, numbers unique, counts not short, SOP
        Classes of clean forms), nor study_uid() about `study_uids` (UID, identifier index), not
        checked yet; else None, having changed nothing. The instances of all series are read
        together, a field at a time in C: no Python step per instance."""
        where = self.where
        cid_33 = cid_codes(33)
        series_modalities: dict[str, tuple] = {}
        series_uids: list[tuple[str, int]] = []
        lists: list[tuple[int, list, str | None]] = []  # (series index, instances, modality for SOP Classes)
        numbers: set[int] = set()
        endpoints: list[tuple[object, int, str | None]] = []
        listed_instances = 0
        every_series_lists = True
        for i, s in series:
            uid = s.get("uid")
            if not isinstance(uid, str):
                uid = None  # not a UID to check (the base rules' finding)
            else:
                series_uids.append((uid, i))
            value = s.get("modality")
            modality = None
            if value is not None:
                modality = _dicom_code(value)
                if modality is None:
                    return None  # modality() may have something to say
            if modality:
                series_modalities.setdefault(modality, ("series", i, "modality"))
            number = s.get("number")
            if type(number) is int:
                if number in numbers:
                    return None
                numbers.add(number)
            elif isinstance(number, int) and not isinstance(number, bool):
                return None  # an int of another type: left to number()
            instances = s.get("instance")
            listed = len(instances) if isinstance(instances, list) else 0
            if listed:
                lists.append((i, instances, modality if modality in cid_33 else None))
            listed_instances += listed
            every_series_lists = every_series_lists and bool(listed)
            claimed = s.get("numberOfInstances")
            if claimed is not None and listed and not (type(claimed) is int and claimed >= listed):
                return None
            endpoint = s.get("endpoint")
            if endpoint is not None:
                endpoints.append((endpoint, i, uid))
        flat = lists[0][1] if len(lists) == 1 else list(chain.from_iterable(instances for _, instances, _ in lists))
        try:
            uids = list(map(dict.get, flat, repeat("uid")))  # a TypeError: an instance that is not an object
            every_uid = [uid for uid, _ in study_uids] + [uid for uid, _ in series_uids] + uids
            distinct = set(every_uid)  # a TypeError: a uid that is a list or an object
            if every_uid and (  # all_valid: a TypeError for a uid that is not a string
                len(distinct) != len(every_uid) or not distinct.isdisjoint(where) or not all_valid(every_uid)
            ):
                return None
        except TypeError:
            return None
        if uids and not self._plain_instance_fields(lists, flat):
            return None
        # Nothing to report: record what uid() records of each UID, and check the endpoints.
        for uid, k in study_uids:
            where[uid] = ("study", ("identifier", k), "value")
        for uid, i in series_uids:
            where[uid] = ("series", ("series", i), "uid")
        at = 0
        for i, instances, _ in lists:
            self._record_plain(i, uids[at : at + len(instances)])
            at += len(instances)
        for endpoint, i, uid in endpoints:
            self.endpoints(endpoint, ("series", i, "endpoint"), study_uid, uid)
        return series_modalities, listed_instances, every_series_lists

    def _plain_instance_fields(self, lists: list[tuple[int, list, str | None]], flat: list) -> bool:
        """Whether the sopClass and number of every instance (of `flat`, the instances of `lists`
        in order) have nothing to report: SOP Classes of clean forms, numbers unique per series."""
        classes = list(map(dict.get, flat, repeat("sopClass")))
        modalities = {modality for _, _, modality in lists}
        if len(modalities) == 1:  # the series of a study mostly share theirs: one pass
            if not self._plain_sop_classes(classes, modalities.pop()):
                return False
        else:
            at = 0
            for _, instances, modality in lists:
                if not self._plain_sop_classes(classes[at : at + len(instances)], modality):
                    return False
                at += len(instances)
        # Numbers all different (as Python compares them: 1, 1.0 and True are one) are unique
        # Instance Numbers; absent ones (None) are not numbers. Anything else is read one by one.
        numbers = list(map(dict.get, flat, repeat("number")))
        at = 0
        for _, instances, _ in lists:
            n = len(instances)
            given = numbers[at : at + n] if len(lists) > 1 else numbers
            at += n
            try:
                distinct = set(given)
                if len(distinct) == n:
                    continue
                if None not in distinct:
                    return False
                given = [number for number in given if number is not None]
                if len(distinct) - 1 != len(given):
                    return False
            except TypeError:  # a number that is a list or an object
                return False
        return True

    def _record_plain(self, i: int, uids: list[str]) -> None:
        """Record the UIDs of the instances of series i, read plainly, as seen: by a number that
        _seen() turns into their places if a later duplicate needs one (no tuple per instance)."""
        token = len(self._plain_uids)
        self._plain_uids.append((i, uids))
        self.where.update(zip(uids, repeat(token)))

    def _each_series(self, series: list[tuple[int, dict]], study_uid: str | None) -> _Walked:
        """The series one by one, each check by its method, in the order of their findings: the
        series modalities (code -> first place), how many instances are listed, and whether every
        series lists some. A step whose value is plain is still tested inline first."""
        series_modalities: dict[str, tuple] = {}
        listed_instances = 0
        every_series_lists = True
        series_numbers: dict[object, int] = {}
        where = self.where
        valid_uid = VALID_UID.fullmatch
        cid_33 = cid_codes(33)
        for i, s in series:
            sp: Pointer = ("series", i)
            series_uid = s.get("uid")
            if not isinstance(series_uid, str):
                series_uid = None
            elif len(series_uid) <= MAX_LENGTH and valid_uid(series_uid) and series_uid not in where:
                where[series_uid] = ("series", sp, "uid")  # what uid() does with a new, valid UID
            else:
                self.uid(series_uid, sp, "uid", "series")
            value = s.get("modality")
            modality = _dicom_code(value)
            if modality is None:
                modality = self.modality(value, (*sp, "modality"), f"series[{i}].modality")
            if modality:
                series_modalities.setdefault(modality, (*sp, "modality"))
            number = s.get("number")
            if type(number) is int and number not in series_numbers:
                series_numbers[number] = 1
            else:
                self.number(series_numbers, number, sp, R.SERIES_NUMBER_UNIQUE, "Series Number")
            # A code outside CID 33 says nothing about which SOP Classes belong in the series.
            instances = s.get("instance")
            listed = 0
            if isinstance(instances, list):
                of_class = modality if modality in cid_33 else None
                plain = self._plain_instances(instances, i, of_class)
                listed = plain if plain is not None else self.instances(instances, i, of_class)
            listed_instances += listed
            every_series_lists = every_series_lists and bool(listed)
            claimed = s.get("numberOfInstances")
            if claimed is not None and listed and not (type(claimed) is int and claimed >= listed):
                self.series_count(s, sp, listed)
            endpoint = s.get("endpoint")
            if endpoint is not None:
                self.endpoints(endpoint, (*sp, "endpoint"), study_uid, series_uid)
        return series_modalities, listed_instances, every_series_lists

    def _plain_instances(self, value: list, i: int, modality: str | None) -> int | None:
        """The instances of series i when none has anything to report, read a field at a time over
        the whole list in C (a series lists thousands); returns how many are listed, or None (and
        changes nothing) when one may have a finding: instances() then reads them one by one.

        Plain: every item an object, every uid a valid UID met nowhere else in the study, every
        sopClass a form already found clean for this modality, every number an integer unique in
        the series."""
        n = len(value)
        if not n:
            return 0
        try:
            uids = list(map(dict.get, value, repeat("uid")))
        except TypeError:  # an item that is not an object
            return None
        if set(map(type, uids)) != _STR_ONLY:
            return None
        distinct = set(uids)
        if len(distinct) != n or not distinct.isdisjoint(self.where) or not all_valid(uids):
            return None
        if not self._plain_instance_fields([(i, value, modality)], value):
            return None
        self._record_plain(i, uids)
        return n

    def _plain_sop_classes(self, values: list, modality: str | None) -> bool:
        """Whether no sopClass of `values` (one per instance) has anything to report, as sop_class()
        decides it: each distinct form is tried once, and a form found clean is kept."""
        clean = self._clean_sop_classes.setdefault(modality, set())
        try:
            forms = set(map(_SYSTEM_CODE, values))  # Codings with a system, the common case
        except (KeyError, TypeError):
            kinds = set(map(type, values))
            try:
                if kinds == _STR_ONLY:
                    forms = set(values)
                elif kinds == _DICT_ONLY:
                    forms = set(zip(map(dict.get, values, repeat("system")), map(dict.get, values, repeat("code")),
                                    strict=True))  # fmt: skip
                else:
                    return False  # absent or malformed somewhere: read one by one
            except TypeError:  # a system or code that is not a string (nor hashable)
                return False
        if forms <= clean:
            return True
        for form in forms - clean:
            if type(form) is str:
                value: object = form
            else:
                system, code = form
                if type(code) is not str or not (system is None or type(system) is str):
                    return False  # not a form sop_class() keeps: it reads these one by one
                value = {"system": system, "code": code}
            if _any_finding(self._sop_class, value, modality):
                return False
            clean.add(form)
        return True

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
        seen_level, seen_at, seen_step = self._seen(uid, seen)
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

    def _seen(self, uid: str, seen: tuple[str, Pointer, str] | int) -> tuple[str, Pointer, str]:
        """Where a UID was first seen: as recorded, or an instance of a series read plainly (the
        number _record_plain gave it)."""
        if not isinstance(seen, int):
            return seen
        i, uids = self._plain_uids[seen]
        positions = self._positions.get(seen)
        if positions is None:  # built once per series, on its first duplicate
            positions = self._positions[seen] = {u: j for j, u in enumerate(uids)}
        return "instance", ("series", i, "instance", positions[uid]), "uid"

    # -- SOP Classes ----------------------------------------------------------------------------
    def sop_class(self, value: object, at: Pointer, modality: str | None) -> None:
        """The sopClass of the instance at `at`. A study lists thousands of instances of a few SOP
        Classes: a form made of plain strings (a string, a Coding's system and code) that passed
        once in a series of this modality passes again."""
        form: object = None
        if type(value) is str:
            form = value
        elif type(value) is dict:
            system, code = value.get("system"), value.get("code")
            if type(code) is str and (system is None or type(system) is str):
                form = (system, code)
        clean = self._clean_sop_classes.setdefault(modality, set())
        if form is not None and form in clean:
            return
        before = self.reported
        self._sop_class(value, (*at, "sopClass"), modality)
        if self.reported == before and form is not None:
            clean.add(form)

    @implements(R.SOP_CLASS_CODING, R.SOP_CLASS_KNOWN, R.SOP_CLASS_MODALITY, R.SOP_CLASS_PRIVATE, R.SOP_CLASS_RETIRED)
    def _sop_class(self, value: object, p: Pointer, modality: str | None, report: Report | None = None) -> None:
        """The SOP Class UID in whichever form it is written (sop_class_uid), then the registry and
        the series modality: the same checks for every form. `report`: where the findings go, when
        not to the run's report (a trial, _any_finding)."""
        report = report or self.report
        if isinstance(value, str):  # R6: an oid; one that lacks urn:oid: is the oid format rule's finding
            uid = value.removeprefix("urn:oid:")
        elif isinstance(value, dict):
            system, code = value.get("system"), value.get("code")
            if not isinstance(code, str) or not (system is None or isinstance(system, str)):
                return  # absent or malformed: the base rules' finding
            uid, problem = sop_class_uid(system, code)
            if problem is not None:
                report(R.SOP_CLASS_CODING, p, f"{_path(p)} {problem}")
            if uid is None:
                return
        else:
            return
        problem = uid_problem(uid)
        if problem is not None:  # as uid() reports a SOP Class UID (which need not be unique)
            report(R.UID_SYNTAX, p, f"{_what(p, 'sop-class')} {uid!r} is not a valid DICOM UID (PS3.5 9.1): {problem}")
            return
        known = sop_classes().get(uid)
        if known is None:
            if uid.startswith(DICOM_ROOT):
                report(R.SOP_CLASS_KNOWN, p, f"SOP Class UID {uid} is under the DICOM root but is not a SOP Class "
                            "of the DICOM UID registry (PS3.6 Annex A)")  # fmt: skip
            else:
                report(R.SOP_CLASS_PRIVATE, p, f"SOP Class UID {uid} is private (outside the DICOM root "
                            "1.2.840.10008): it cannot be checked against the DICOM registry")  # fmt: skip
            return
        if known.retired:
            report(R.SOP_CLASS_RETIRED, p, f"{known.name} ({uid}) is retired from the DICOM standard (PS3.6)")
        allowed = self.sop_class_modalities.get(known.keyword)
        if modality and allowed and modality not in allowed:
            report(R.SOP_CLASS_MODALITY, p, f"{known.name} ({uid}) in a {modality} series: this SOP Class "
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
            code = _dicom_code(value)
            if code is None:
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
