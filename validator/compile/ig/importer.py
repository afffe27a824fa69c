"""An IG -> profile packs, in memory (the same dicts a YAML pack file holds), and YAML files.

Every constraint StructureDefinition of a type the validator has rules for becomes a profile
pack: resource profiles (ImagingStudy, Endpoint), and the extension and datatype profiles they
point at. The IG's ValueSets become value-set packs where their codes can be enumerated: listed
concepts, whole code systems the IG defines in full, value sets they include, and DICOM context
groups (and the PS3.4 SOP Class table) read from pydicom. A binding to anything else is left to
`engine:binding-not-checked` when a payload meets it. The packs go through the same checks and
compilation as hand-written ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from validator.compile.ig.packages import Ig, read_ig
from validator.compile.ig.structure import Differential, Known, versionless
from validator.compile.packs import Pack, PackError, check_pack_data
from validator.compile.plan import Plan

_DICOM_CID = re.compile(r"^https?://dicom\.nema\.org/medical/dicom/[^/]+/output/chtml/part16/sect_CID_(\d+)\.html$")
_DICOM_SOP = re.compile(r"^https?://dicom\.nema\.org/medical/dicom/[^/]+/output/chtml/part04/sect_B\.5\.html$")
_FHIR_VERSIONS = {"4.0.1": "4.0.1", "4.0.0": "4.0.1", "4.3.0": "4.0.1", "5.0.0": "5.0.0"}


@dataclass(slots=True)
class Imported:
    """The packs made from one IG, and what could not be imported."""

    ig: Ig
    packs: list[Pack] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s if s and s[0].isalpha() else f"p-{s}".rstrip("-")


_PROBLEM = re.compile(r"^.*?: rule (?P<rule>.*?): field (?P<field>\S+): (?P<message>.*)$", re.S)


def prune(data: dict, problems: list[str]) -> bool:
    """Take out of an imported profile pack what its problems point at (the constraint field, or the
    whole slicing of a slicing problem), each named in notChecked with the problem, so that the rest
    of the profile still applies. False when nothing could be taken out (the problem is elsewhere)."""
    pruned = False
    for problem in problems:
        m = _PROBLEM.match(problem)
        if m is None:
            continue
        parts = m["field"].split(".")
        if not parts or parts[0] not in ("constraints", "invariants"):
            continue
        if parts[0] == "invariants":
            index = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1
            invariants = data.get("invariants") or []
            if 0 <= index < len(invariants):
                key = invariants.pop(index)["key"]
                data.setdefault("notChecked", []).append({"element": key, "reason": f"{m['message']} (not checked)"})
                if not invariants:
                    data.pop("invariants")
                return True  # the other problems' indices moved: they come back on the next check
            continue
        if "slicing" in parts:
            parts = parts[: parts.index("slicing") + 1]
        node: object = data
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and parts[-1] in node:
            del node[parts[-1]]
            if not data.get("constraints"):
                data["constraints"] = {}
            data.setdefault("notChecked", []).append({"element": m["rule"], "reason": f"{m['message']} (not checked)"})
            pruned = True
    return pruned


def dicom_value_set(url: str) -> dict | None:
    """A DICOM context group or the SOP Class table as a value-set pack entry (codes from pydicom)."""
    m = _DICOM_CID.match(url)
    if m:
        from validator.dicom import registry

        if not registry.cid_codes(int(m.group(1))):
            return None  # a context group pydicom does not have: left to binding-not-checked
        return {"url": url, "title": f"DICOM CID {m.group(1)}", "source": url,
                "include": [{"pydicom": f"cid:{m.group(1)}"}]}  # fmt: skip
    if _DICOM_SOP.match(url):
        return {"url": url, "title": "DICOM SOP Classes (PS3.4 B.5)", "source": url,
                "include": [{"system": "urn:ietf:rfc:3986", "pydicom": "sop-classes"}]}  # fmt: skip
    return None


class _Terminology:
    """The IG's value sets and code systems, expanded into code lists where they can be."""

    def __init__(self, ig: Ig) -> None:
        self.value_sets = {versionless(r["url"]): r for _, r in ig.of_kind("ValueSet") if isinstance(r.get("url"), str)}
        self.code_systems = {versionless(r["url"]): r for _, r in ig.of_kind("CodeSystem")
                             if isinstance(r.get("url"), str)}  # fmt: skip

    def entry(self, url: str) -> dict | None:
        dicom = dicom_value_set(url)
        if dicom is not None:
            return dicom
        vs = self.value_sets.get(url)
        if vs is None:
            return None
        include = self._includes(url, set())
        if not include:
            return None
        title = vs.get("title") or vs.get("name") or url
        return {"url": url, "title": str(title), "source": url, "include": include}

    def _includes(self, url: str, seen: set[str]) -> list[dict] | None:
        """The include entries of a value set, or None when its codes cannot be listed."""
        if url in seen:
            return None
        seen = seen | {url}
        dicom = dicom_value_set(url)
        if dicom is not None:
            return dicom["include"]
        vs = self.value_sets.get(url)
        compose = vs.get("compose") if vs else None
        if not isinstance(compose, dict) or compose.get("exclude"):
            return None
        out: list[dict] = []
        for inc in compose.get("include") or []:
            if not isinstance(inc, dict) or inc.get("filter"):
                return None
            system = inc.get("system")
            concepts = inc.get("concept")
            if system and concepts:
                out.append({"system": system, "concepts": {str(c["code"]): str(c.get("display") or c["code"])
                                                           for c in concepts if isinstance(c, dict) and "code" in c}})
            elif system:
                cs = self.code_systems.get(versionless(system))
                if cs is None or cs.get("content") != "complete":
                    return None
                codes = _all_codes(cs.get("concept") or [])
                if not codes:
                    return None
                out.append({"system": system, "concepts": codes})
            for other in inc.get("valueSet") or []:
                more = self._includes(versionless(other), seen)
                if more is None:
                    return None
                out.extend(more)
        return out or None


def _all_codes(concepts: list) -> dict[str, str]:
    codes: dict[str, str] = {}
    for c in concepts:
        if isinstance(c, dict) and "code" in c:
            codes[str(c["code"])] = str(c.get("display") or c["code"])
            codes.update(_all_codes(c.get("concept") or []))
    return codes


def import_igs(sources: list[str], plans: Callable[[str], Plan | None]) -> list[Imported]:
    """The packs of each IG (`plans`: the base plan of a FHIR version number, or None). Raises
    IgError for a source that names nothing usable and PackError for a pack that does not hold."""
    igs = [read_ig(s) for s in sources]
    # SDs of every IG given are known to each other: a profile may build on another IG's.
    sd_types: dict[str, str] = {}
    for ig in igs:
        for _, sd in ig.of_kind("StructureDefinition"):
            if isinstance(sd.get("url"), str) and isinstance(sd.get("type"), str):
                sd_types[versionless(sd["url"])] = sd["type"]
    return [_import(ig, plans, sd_types) for ig in igs]


def _import(ig: Ig, plans: Callable[[str], Plan | None], sd_types: dict[str, str]) -> Imported:
    result = Imported(ig)
    result.notes.extend(ig.problems)
    terms = _Terminology(ig)
    known = Known(sd_type=sd_types.get)
    wanted: set[str] = set()
    label = ig.label
    problems: list[str] = []
    for name, sd in ig.of_kind("StructureDefinition"):
        where = f"{ig.source}/{name}"
        if sd.get("derivation") != "constraint" or not isinstance(sd.get("url"), str):
            continue  # logical models, new resources and extensions definitions are made by derivation
        fhir = _FHIR_VERSIONS.get(str(sd.get("fhirVersion") or (ig.fhir_versions[0] if ig.fhir_versions else "")))
        plan = plans(fhir) if fhir is not None else None
        if plan is None:
            result.notes.append(f"{name}: FHIR version {sd.get('fhirVersion')} is not supported: not imported")
            continue
        sd_type = sd.get("type")
        struct = plan.structures.get(sd_type) if isinstance(sd_type, str) else None
        if struct is None:
            result.notes.append(f"{name}: the validator has no rules for {sd_type}: not imported")
            continue
        converted = Differential(sd, plan, known).convert()
        wanted |= converted.value_sets
        ident = slug(str(sd.get("id") or sd.get("name") or sd["url"].rsplit("/", 1)[-1]))
        header = {"url": versionless(sd["url"]), "name": ident,
                  "title": str(sd.get("title") or sd.get("name") or ident), "type": sd_type,
                  "base": versionless(str(sd.get("baseDefinition") or "")), "ig": label}  # fmt: skip
        if isinstance(sd.get("version"), str):
            header["version"] = sd["version"]
        contexts = [c for c in sd.get("context") or [] if isinstance(c, dict)]
        if sd_type == "Extension" and contexts and all(c.get("type") == "element" for c in contexts):
            # Where the extension may be used (element contexts only: a FHIRPath or extension
            # context is not evaluated, and the extension is then allowed anywhere).
            header["context"] = [str(c.get("expression")) for c in contexts]
        data: dict = {
            "pack": ident, "ruleset": ident, "fhirVersion": fhir,
            "title": f"{header['title']} ({label})", "source": sd["url"],
            "profile": header, "constraints": converted.constraints,
        }  # fmt: skip
        if isinstance(sd.get("description"), str):
            data["description"] = sd["description"]
        if converted.invariants:
            data["invariants"] = converted.invariants
        if converted.not_checked:
            data["notChecked"] = converted.not_checked
        for _attempt in range(50):
            try:
                result.packs.append(check_pack_data(Path(where), data))
                break
            except PackError as exc:
                if not prune(data, exc.problems):
                    problems.extend(exc.problems)
                    break
    entries = []
    for url in sorted(wanted):
        entry = terms.entry(url)
        if entry is not None:
            entries.append(entry)
    if entries:
        data = {"pack": f"{slug(label)}-valuesets", "ruleset": slug(label), "title": f"Value sets of {label}",
                "source": ig.source, "valueSets": entries}  # fmt: skip
        try:
            result.packs.append(check_pack_data(Path(f"{ig.source}/valuesets"), data))
        except PackError as exc:
            problems.extend(exc.problems)
    if problems:
        raise PackError(problems)
    return result


def write_packs(imported: list[Imported], out: Path) -> list[Path]:
    """The packs as YAML files in `out` (one per profile, one for the value sets of each IG)."""
    import yaml

    out.mkdir(parents=True, exist_ok=True)
    written = []
    seen: set[str] = set()  # value sets already written (a DICOM context group two IGs bind to)
    for imp in imported:
        for pack in imp.packs:
            path = out / f"{pack.id}.yaml"
            data = pack.data
            if "valueSets" in data:
                entries = [vs for vs in data["valueSets"] if vs["url"] not in seen]
                seen.update(vs["url"] for vs in entries)
                if not entries:
                    continue
                data = {**data, "valueSets": entries}
            text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)
            path.write_text(f"# Imported from {imp.ig.label} by imaging-validator profiles import\n{text}",
                            encoding="utf-8")
            written.append(path)
    return written
