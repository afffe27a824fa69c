"""The R6 packs extend the R5 packs and state only what the 6.0.0-ballot3 ImagingStudy page
changes: the compiled R6 plan is the R5 plan with exactly these differences, and nothing else."""

from __future__ import annotations

from pathlib import Path

import yaml

from validator.api import plan_for
from validator.compile.plan import Plan, Structure
from validator.resources import rules_dir
from validator.versions import VERSIONS

R5_PAGES, R6_PAGES = "http://hl7.org/fhir/R5/", "http://hl7.org/fhir/6.0.0-ballot3/"
IS = "ImagingStudy."
REMOVED = {IS + "partOf", IS + "procedure", IS + "series.laterality"}
SOP_CLASS = IS + "series.instance.sopClass"
RETARGETED = {IS + "basedOn": ("Appointment", "CarePlan", "ServiceRequest", "Task")}
REWORDED = {
    IS + path
    for path in [
        *("identifier", "status", "modality", "basedOn", "location", "reason", "note", "description"),
        *("series", "series.uid", "series.description", "series.performer.actor", "series.instance.title"),
    ]
}
NEW_INVARIANTS = {f"ist-{n}" for n in range(1, 8)}


def _plans() -> tuple[Plan, Plan]:
    return plan_for(VERSIONS["R5"]), plan_for(VERSIONS["R6"])


def _elements(plan: Plan) -> dict[str, tuple]:
    """Every element: (cardinality, types, reference targets, checked binding, short)."""
    index: dict[str, tuple] = {}

    def walk(struct: Structure) -> None:
        for el in struct.elements:
            binding = (el.binding.strength, el.binding.url) if el.binding else None
            index[el.path] = (el.card, el.types, tuple(sorted(el.targets or ())), binding, el.short)
            if el.children is not None:
                walk(el.children)

    for struct in plan.structures.values():
        walk(struct)
    return index


def _invariants(plan: Plan) -> dict[str, tuple]:
    found = {inv.key: inv for s in plan.structures.values() for inv in s.invariants}
    found.update((inv.key, inv) for inv in plan.element_invariants)
    return {key: (inv.context, inv.severity, inv.human, inv.expression) for key, inv in found.items()}


def test_every_r6_pack_extends_the_r5_pack_of_the_same_name() -> None:
    r6 = sorted(p.name for p in (rules_dir() / "r6").glob("*.yaml"))
    assert r6 == sorted(p.name for p in (rules_dir() / "r5").glob("*.yaml"))
    for name in r6:
        assert yaml.safe_load((rules_dir() / "r6" / name).read_text())["extends"] == f"../r5/{name}"


def test_the_r6_elements_are_r5s_but_for_the_ballots_changes() -> None:
    r5, r6 = (_elements(plan) for plan in _plans())
    assert set(r5) - set(r6) == REMOVED and set(r6) <= set(r5)
    assert r6[SOP_CLASS][:4] == (r5[SOP_CLASS][0], ("oid",), (), None)
    for path, targets in RETARGETED.items():
        assert r6[path][2] == targets != r5[path][2]
    assert {p for p in r6 if r6[p][4] != r5[p][4]} == REWORDED
    same = {p for p in r6 if r6[p][:4] == r5[p][:4]}
    assert set(r6) - same == {SOP_CLASS, *RETARGETED}


def test_r6_has_r5s_invariants_and_ist_1_to_ist_7() -> None:
    r5, r6 = (_invariants(plan) for plan in _plans())
    assert set(r6) - set(r5) == NEW_INVARIANTS and set(r5) <= set(r6)
    assert all(r6[key] == r5[key] for key in r5)
    assert r6["ist-1"][3] == "series.exists() implies identifier.where(system = 'urn:dicom:uid').exists()"


def test_r6_rules_are_r5s_cited_at_the_ballot_pages() -> None:
    r5, r6 = (plan.rules for plan in _plans())
    as_r6 = {rid.replace("r5:", "r6:", 1): rule for rid, rule in r5.items()}
    assert set(r6) - set(as_r6) == {f"r6:{key}" for key in NEW_INVARIANTS}
    gone = set(as_r6) - set(r6)
    assert gone == {rid for rid, rule in as_r6.items() if rule.path in REMOVED} | {f"r6:{SOP_CLASS}:binding"}
    for rid in set(r6) & set(as_r6):
        old, new = as_r6[rid], r6[rid]
        assert (new.kind, new.path, new.severity, new.code) == (old.kind, old.path, old.severity, old.code), rid
        if rid.startswith("r6:"):  # the rules of core.yaml and dicom/ are shared by every version
            assert new.source == old.source.replace(R5_PAGES, R6_PAGES) != old.source, rid
        else:
            assert new == old, rid
        if new.path not in REWORDED and new.path != SOP_CLASS:
            assert new.description == old.description, rid


def test_r6_value_sets_are_r5s_with_status_inactive() -> None:
    r5, r6 = (plan.value_sets for plan in _plans())
    status = "http://hl7.org/fhir/ValueSet/imagingstudy-status"
    assert set(r5) == set(r6)
    assert r6[status].codings == r5[status].codings | {("http://hl7.org/fhir/imagingstudy-status", "inactive")}
    assert all(r6[url].codings == r5[url].codings for url in r5 if url != status)


def test_the_r6_packs_name_themselves_and_the_ballot() -> None:
    _r5, r6 = _plans()
    assert [p for p in r6.packs if p.startswith("r6-")] == [
        f"r6-{Path(n).stem}" for n in sorted(p.name for p in (rules_dir() / "r6").glob("*.yaml"))
    ]
    assert r6.fhir_version == "6.0.0-ballot3"
