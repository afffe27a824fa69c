"""DICOM registry tables read from pydicom: SOP Class UIDs (with names, keywords and retired
flags) and the codes of a context group (CID). Loaded on first use, once per process.

Importing pydicom and building the tables takes longer than the rest of a small run, so the
tables are kept in the validator's cache folder (see packs.py), under a key made of the size and
modification time of the pydicom files they come from: a pydicom upgrade misses the cache.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from validator.resources import cache_dir

DCM = "http://dicom.nema.org/resources/ontology/DCM"


@dataclass(frozen=True, slots=True)
class SopClass:
    uid: str
    name: str
    keyword: str
    retired: bool


_SOURCES = ("_uid_dict.py", "sr/_cid_dict.py", "sr/_concepts_dict.py")


def _cache_file(table: str) -> Path | None:
    folder = cache_dir()
    spec = importlib.util.find_spec("pydicom")
    if folder is None or spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    try:
        stamp = [(name, (st := (root / name).stat()).st_size, st.st_mtime_ns) for name in _SOURCES]
    except OSError:
        return None
    key = hashlib.sha256(json.dumps([str(root), stamp, table]).encode()).hexdigest()
    return folder / "dicom" / f"{key}.json"


def _cached(table: str, build) -> object:
    """A table from the cache folder, or built from pydicom (and then written to the cache)."""
    path = _cache_file(table)
    if path is not None:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass  # absent or damaged: build it
    data = build()
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            pass  # a cache that cannot be written only costs time
    return data


def _sop_class_rows() -> list[list]:
    from pydicom._uid_dict import UID_dictionary

    return [
        [uid, name, keyword, retired == "Retired"]
        for uid, (name, kind, _info, retired, keyword) in UID_dictionary.items()
        if kind == "SOP Class"
    ]


@cache
def sop_classes() -> dict[str, SopClass]:
    """Every SOP Class of the DICOM UID registry (PS3.6 Annex A), by UID."""
    rows = _cached("sop-classes", _sop_class_rows)
    return {uid: SopClass(uid, name, keyword, bool(retired)) for uid, name, keyword, retired in rows}  # type: ignore[union-attr]


@cache
def sop_classes_by_keyword() -> dict[str, SopClass]:
    return {s.keyword: s for s in sop_classes().values()}


@cache
def cid_codes(cid: int) -> dict[str, str]:
    """Code -> meaning of the codes in context group `cid` (PS3.16), whatever their scheme."""
    return _cached(f"cid-{cid}", lambda: _cid_codes(cid))  # type: ignore[return-value]


def _cid_codes(cid: int) -> dict[str, str]:
    from pydicom.sr._cid_dict import cid_concepts
    from pydicom.sr._concepts_dict import concepts

    codes: dict[str, str] = {}
    for scheme, keywords in cid_concepts.get(cid, {}).items():  # DCM for modalities, SCT for laterality
        for keyword in keywords:
            for code, (meaning, _cids) in concepts.get(scheme, {}).get(keyword, {}).items():
                codes[code] = meaning
    return codes
