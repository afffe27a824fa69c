"""DICOM registry tables read from pydicom: SOP Class UIDs (with names, keywords and retired
flags) and the codes of a context group (CID). Loaded on first use, once per process."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

DCM = "http://dicom.nema.org/resources/ontology/DCM"


@dataclass(frozen=True, slots=True)
class SopClass:
    uid: str
    name: str
    keyword: str
    retired: bool


@cache
def sop_classes() -> dict[str, SopClass]:
    """Every SOP Class of the DICOM UID registry (PS3.6 Annex A), by UID."""
    from pydicom._uid_dict import UID_dictionary

    return {
        uid: SopClass(uid, name, keyword, retired == "Retired")
        for uid, (name, kind, _info, retired, keyword) in UID_dictionary.items()
        if kind == "SOP Class"
    }


@cache
def sop_classes_by_keyword() -> dict[str, SopClass]:
    return {s.keyword: s for s in sop_classes().values()}


@cache
def cid_codes(cid: int) -> dict[str, str]:
    """Code -> meaning of the codes in context group `cid` (PS3.16), whatever their scheme."""
    from pydicom.sr._cid_dict import cid_concepts
    from pydicom.sr._concepts_dict import concepts

    codes: dict[str, str] = {}
    for scheme, keywords in cid_concepts.get(cid, {}).items():  # DCM for modalities, SCT for laterality
        for keyword in keywords:
            for code, (meaning, _cids) in concepts.get(scheme, {}).get(keyword, {}).items():
                codes[code] = meaning
    return codes


def pydicom_version() -> str:
    from pydicom import __version__

    return __version__
