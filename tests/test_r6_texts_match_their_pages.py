"""Each R6 pack set follows its own text, element by element: rules/r6 the continuous build's
definitions page (seed 000_*), rules/r6-ballot3 the 6.0.0-ballot3 definitions page (seed 002_*).
Names, cardinalities, types with their reference targets, bindings (value set and, where the page
renders it, strength) and invariants are read from the page and compared with the resolved pack,
so a later change of either side is caught."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from validator.compile.packs import load_pack
from validator.resources import rules_dir

DICOM_PAGES = "http://dicom.nema.org/medical/dicom/current/output/chtml/part16/"
# The binding names the pages show, and the value set each one is.
VALUE_SETS = {
    "Imaging Study Status": "http://hl7.org/fhir/ValueSet/imagingstudy-status",
    "Modality": DICOM_PAGES + "sect_CID_33.html",
    "Procedure Reason Codes": "http://hl7.org/fhir/ValueSet/procedure-reason",
    "SNOMED CT Body Structures": "http://hl7.org/fhir/ValueSet/body-site",
    "Laterality": DICOM_PAGES + "sect_CID_244.html",
    "ImagingStudy series performer function": "http://hl7.org/fhir/ValueSet/series-performer-function",
    # The build's new name for procedure's binding; the page gives neither its URL nor its strength.
    "ImagingProcedureCode": None,
}
FIELD = r"(?:[^|(]|\([^)]*\))+?"  # a table cell; "Reference(A | B)" keeps its bars


def _rows(text: str) -> list[dict[str, str]]:
    """The element rows of a definitions page: one dict of cell name -> value per Element Id."""
    flat = re.sub(r"\s+", " ", text)
    flat = re.sub(r"\s*\(\s*", "(", flat)
    flat = re.sub(r"\s*\)", ")", flat)
    rows = []
    for chunk in re.split(r"\| ?Element Id \|", flat)[1:]:
        row = {"id": chunk.split("|", 1)[0].strip()}
        for name in ("Cardinality", "Type", "Terminology Binding"):
            m = re.search(rf"\| ?{name} \| ?({FIELD}) ?\|", "|" + chunk)
            if m:
                row[name] = m.group(1).strip()
        rows.append(row)
    return rows


def _page(shared: Path, prefix: str) -> list[dict[str, str]]:
    return _rows(next((shared.parent / "seeds").glob(f"{prefix}_*.txt")).read_text(encoding="utf-8"))


def _pack_elements(folder: str) -> dict[str, dict]:
    data = load_pack(rules_dir() / folder / "imagingstudy.yaml").data
    return data["structures"]["ImagingStudy"]["elements"]


def _type(cell: str) -> tuple[str, frozenset[str]]:
    """'Reference(Patient | Device)' -> ('Reference', {'Patient', 'Device'})."""
    m = re.fullmatch(r"(\w+)(?:\((.*)\))?", cell.replace("![]()", "").strip())
    assert m, cell
    return m.group(1), frozenset(t.strip() for t in (m.group(2) or "").split("|") if t.strip())


def _named(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    """Rows by element path (without 'ImagingStudy.'). The ballot page has one row whose id did not
    render: 0..*, Reference(Procedure), between basedOn and referrer, with partOf's comment: partOf."""
    named = {}
    for k, row in enumerate(rows):
        path = row["id"]
        if not path:
            assert rows[k - 1]["id"] == "ImagingStudy.basedOn" and rows[k + 1]["id"] == "ImagingStudy.referrer"
            assert (row["Cardinality"], row["Type"]) == ("0..*", "Reference(Procedure)")
            path = "ImagingStudy.partOf"
        if path != "ImagingStudy":
            named[path.removeprefix("ImagingStudy.")] = row
    return named


TEXTS = [("000", "r6"), ("002", "r6-ballot3")]


@pytest.mark.parametrize(("seed", "folder"), TEXTS)
def test_the_pack_has_exactly_the_elements_of_its_page(shared, seed, folder) -> None:
    page = _named(_page(shared, seed))
    inherited = {"id", "meta", "implicitRules", "language", "text", "contained", "extension", "modifierExtension"}
    own = {p for p in _pack_elements(folder) if not {p.split(".")[0], p.split(".")[-1]} & inherited}
    assert own == set(page)


@pytest.mark.parametrize(("seed", "folder"), TEXTS)
def test_cardinalities_types_and_targets_are_the_pages(shared, seed, folder) -> None:
    elements = _pack_elements(folder)
    wrong = []
    for path, row in _named(_page(shared, seed)).items():
        el = elements[path]
        if el["card"] != row["Cardinality"]:
            wrong.append(f"{path}: card {el['card']} vs {row['Cardinality']}")
        if "Type" in row:  # backbone elements show none
            code, targets = _type(row["Type"])
            if (el["type"], frozenset(el.get("targets") or ())) != (code, targets):
                wrong.append(f"{path}: {el['type']} {el.get('targets')} vs {row['Type']}")
        else:
            assert el["type"] == "BackboneElement", path
    assert not wrong, wrong


@pytest.mark.parametrize(("seed", "folder"), TEXTS)
def test_bindings_are_the_pages(shared, seed, folder) -> None:
    elements = _pack_elements(folder)
    wrong = []
    for path, row in _named(_page(shared, seed)).items():
        binding = elements[path].get("binding")
        if "Terminology Binding" not in row:
            if binding is not None:
                wrong.append(f"{path}: the pack binds it, the page does not")
            continue
        m = re.fullmatch(r"(.+?) ?(?:\((\w+)\)|!\[\]\(\))?", row["Terminology Binding"])
        assert m, row
        name, strength = m.group(1).strip(), m.group(2)
        if binding is None:
            wrong.append(f"{path}: the page binds it to {name}, the pack does not")
            continue
        if VALUE_SETS[name] is not None and binding["valueSet"] != VALUE_SETS[name]:
            wrong.append(f"{path}: {binding['valueSet']} vs {name}")
        if strength is not None and binding["strength"] != strength.lower():  # the build renders none
            wrong.append(f"{path}: {binding['strength']} vs {strength}")
    assert not wrong, wrong


@pytest.mark.parametrize(("seed", "folder"), TEXTS)
def test_the_invariants_are_ist_1_to_7_as_neither_page_renders_others(shared, seed, folder) -> None:
    text = (next((shared.parent / "seeds").glob(f"{seed}_*.txt"))).read_text(encoding="utf-8")
    shown = set(re.findall(r"\bist-\d+\b", text))
    data = load_pack(rules_dir() / folder / "imagingstudy.yaml").data
    keys = {inv["key"] for inv in data["structures"]["ImagingStudy"]["invariants"]}
    assert shown <= keys and {f"ist-{n}" for n in range(1, 8)} <= keys


def test_the_two_pages_differ_by_procedure_and_laterality() -> None:
    """The ballot pack states only what the ballot page has otherwise than the build."""
    build, ballot = _pack_elements("r6"), _pack_elements("r6-ballot3")
    assert set(build) - set(ballot) == {"procedure", "series.laterality"}
