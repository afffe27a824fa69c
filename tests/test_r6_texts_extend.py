"""The R6 packs state only their differences: rules/r6 (the continuous build) extends rules/r5, and
rules/r6-ballot3 (the 6.0.0-ballot3 text) extends rules/r6. Each compiled plan is its base's with
exactly these differences, and nothing else."""

from __future__ import annotations

from pathlib import Path

import yaml

from validator.api import plan_for
from validator.compile.plan import Plan, Structure
from validator.resources import rules_dir
from validator.versions import VERSIONS

R5_PAGES, R6_PAGES, BALLOT_PAGES = "http://hl7.org/fhir/R5/", "http://build.fhir.org/", "http://hl7.org/fhir/6.0.0-ballot3/"
IS = "ImagingStudy."
SOP_CLASS = IS + "series.instance.sopClass"
RETARGETED = {IS + "basedOn": ("Appointment", "CarePlan", "ServiceRequest", "Task")}
REWORDED = {
    IS + path
    for path in [
        *("identifier", "status", "modality", "basedOn", "location", "reason", "note", "description", "procedure"),
        *("series", "series.uid", "series.description"),
    ]
}
NEW_INVARIANTS = {f"ist-{n}" for n in range(1, 8)}
# What the ballot text has otherwise than the build.
BALLOT_REMOVED = {IS + "procedure", IS + "series.laterality"}
BALLOT_REWORDED = {IS + "series.performer.actor", IS + "series.instance.title"}


def _plans() -> tuple[Plan, Plan, Plan]:
    return plan_for(VERSIONS["R5"]), plan_for(VERSIONS["R6"]), plan_for(VERSIONS["R6-ballot3"])


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


def test_every_r6_pack_extends_the_r5_pack_and_every_ballot_pack_the_r6_pack_of_the_same_name() -> None:
    names = sorted(p.name for p in (rules_dir() / "r5").glob("*.yaml"))
    for folder, base in (("r6", "r5"), ("r6-ballot3", "r6")):
        assert sorted(p.name for p in (rules_dir() / folder).glob("*.yaml")) == names
        for name in names:
            assert yaml.safe_load((rules_dir() / folder / name).read_text())["extends"] == f"../{base}/{name}"


def test_the_r6_elements_are_r5s_but_for_the_builds_changes() -> None:
    r5, r6, _ = (_elements(plan) for plan in _plans())
    assert set(r5) == set(r6)
    assert r6[SOP_CLASS][:4] == (r5[SOP_CLASS][0], ("oid",), (), None)
    for path, targets in RETARGETED.items():
        assert r6[path][2] == targets != r5[path][2]
    assert {p for p in r6 if r6[p][4] != r5[p][4]} == REWORDED
    same = {p for p in r6 if r6[p][:4] == r5[p][:4]}
    assert set(r6) - same == {SOP_CLASS, *RETARGETED}


def test_the_ballot_elements_are_the_builds_less_procedure_and_laterality() -> None:
    _, r6, ballot = (_elements(plan) for plan in _plans())
    assert set(r6) - set(ballot) == BALLOT_REMOVED and set(ballot) <= set(r6)
    assert IS + "partOf" in ballot  # the ballot page's row whose id did not render
    assert {p for p in ballot if ballot[p] != r6[p]} == BALLOT_REWORDED
    assert all(ballot[p][:4] == r6[p][:4] for p in ballot)


def test_both_r6_texts_have_r5s_invariants_and_ist_1_to_ist_7() -> None:
    r5, r6, ballot = (_invariants(plan) for plan in _plans())
    assert set(r6) - set(r5) == NEW_INVARIANTS and set(r5) <= set(r6)
    assert all(r6[key] == r5[key] for key in r5)
    assert ballot == r6
    assert r6["ist-1"][3] == "series.exists() implies identifier.where(system = 'urn:dicom:uid').exists()"


def test_r6_rules_are_r5s_cited_at_the_build_pages() -> None:
    r5, r6, _ = (plan.rules for plan in _plans())
    as_r6 = {rid.replace("r5:", "r6:", 1): rule for rid, rule in r5.items()}
    assert set(r6) - set(as_r6) == {f"r6:{key}" for key in NEW_INVARIANTS}
    assert set(as_r6) - set(r6) == {f"r6:{SOP_CLASS}:binding"}
    for rid in set(r6) & set(as_r6):
        old, new = as_r6[rid], r6[rid]
        assert (new.kind, new.path, new.severity, new.code) == (old.kind, old.path, old.severity, old.code), rid
        if rid.startswith("r6:"):  # the rules of core.yaml and dicom/ are shared by every version
            assert new.source == old.source.replace(R5_PAGES, R6_PAGES) != old.source, rid
        else:
            assert new == old, rid
        if new.path not in REWORDED and new.path != SOP_CLASS:
            assert new.description == old.description, rid


def test_the_ballot_rules_are_the_builds_cited_at_the_ballot_pages() -> None:
    _, r6, ballot = (plan.rules for plan in _plans())
    as_ballot = {rid.replace("r6:", "r6-ballot3:", 1): rule for rid, rule in r6.items()}
    assert set(ballot) == {rid for rid, rule in as_ballot.items() if rule.path not in BALLOT_REMOVED}
    for rid, new in ballot.items():
        old = as_ballot[rid]
        if rid.startswith("r6-ballot3:"):
            assert new.source == old.source.replace(R6_PAGES, BALLOT_PAGES) != old.source, rid


def test_r6_value_sets_are_r5s_with_status_inactive_and_the_ballots_the_same() -> None:
    r5, r6, ballot = (plan.value_sets for plan in _plans())
    status = "http://hl7.org/fhir/ValueSet/imagingstudy-status"
    assert set(r5) == set(r6) == set(ballot)
    assert r6[status].codings == r5[status].codings | {("http://hl7.org/fhir/imagingstudy-status", "inactive")}
    assert all(r6[url].codings == r5[url].codings for url in r5 if url != status)
    assert all(ballot[url].codings == r6[url].codings for url in r6)


def test_the_r6_packs_name_themselves_and_their_text() -> None:
    _r5, r6, ballot = _plans()
    for plan, folder in ((r6, "r6"), (ballot, "r6-ballot3")):
        assert [p for p in plan.packs if p.startswith(folder + "-") and (folder != "r6" or "ballot" not in p)] == [
            f"{folder}-{Path(n).stem}" for n in sorted(p.name for p in (rules_dir() / folder).glob("*.yaml"))
        ]
    assert (r6.fhir_version, ballot.fhir_version) == ("6.0.0-cibuild", "6.0.0-ballot3")
