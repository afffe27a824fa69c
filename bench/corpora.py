"""Real-payload corpora for the benchmark: small studies as PACS and RIS send them.

A realistic study carries what clean benchmark studies leave out: an accession identifier with
its type, a procedure code, a referrer, a note, and per series a body site and a performer. The
identifier type is checked against the bundled Identifier Type Codes; the procedure code is bound
to a value set that is not bundled (the RadLex playbook), so every such study gets an
`engine:binding-not-checked` note, placed at its line and column. The defect corpus is the same
with one study in ten broken in one of several ways (codes, UIDs, dates, cardinality, unknown
properties).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

CORPUS_SIZE = 2000
ACSN = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}]}
PROCEDURES = [("24627-2", "CT Chest"), ("24590-2", "MR Brain"), ("30746-2", "CT Abdomen")]
BODY_SITES = [("51185008", "Thoracic structure"), ("12738006", "Brain structure"), ("818983003", "Abdomen")]
PERFORMER_FUNCTION = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRF"}]
}


Base = Callable[[random.Random, int, int], dict]  # (rng, series, instances per series) -> a clean study


def realistic(rng: random.Random, base: Base, series: int = 2, instances: int = 5) -> dict:
    """A study (2 x 5 unless told) with the optional elements real senders fill in."""
    doc = base(rng, series, instances)
    code, display = rng.choice(PROCEDURES)
    doc["identifier"].append({"use": "usual", "type": ACSN, "system": "http://hospital.example.org/accession",
                              "value": f"A{rng.randint(10**6, 10**7)}"})  # fmt: skip
    doc["procedureCode"] = [{"coding": [{"system": "http://loinc.org", "code": code, "display": display}]}]
    doc["referrer"] = {"reference": f"Practitioner/r{rng.randint(1, 500)}", "display": "Dr. Référent"}
    doc["description"] = display
    doc["note"] = [{"text": "Comparison with prior study of 2023-11-02; no contrast."}]
    site, site_name = rng.choice(BODY_SITES)
    for series in doc["series"]:
        series["bodySite"] = {"system": "http://snomed.info/sct", "code": site, "display": site_name}
        series["performer"] = [{"function": PERFORMER_FUNCTION,
                                "actor": {"reference": f"Practitioner/t{rng.randint(1, 50)}"}}]  # fmt: skip
    return doc


def _bad_status(doc: dict) -> None:
    doc["status"] = "done"


def _bad_uid(doc: dict) -> None:
    doc["series"][0]["uid"] = "1.2.03.4"


def _bad_date(doc: dict) -> None:
    doc["started"] = "2024-02-30T09:30:00+01:00"


def _no_subject(doc: dict) -> None:
    del doc["subject"]


def _unknown_property(doc: dict) -> None:
    doc["accessionNumber"] = "A1"


def _wrong_count(doc: dict) -> None:
    # Fewer than the instances listed: more would be legal, since a study may list only some.
    doc["numberOfInstances"] -= 1


DEFECTS = [_bad_status, _bad_uid, _bad_date, _no_subject, _unknown_property, _wrong_count]


def with_findings(rng: random.Random, base: Base, series: int, instances: int) -> dict:
    """A realistic study that also carries an error: its notes (the unbundled bindings) and a
    broken series UID, so findings are placed whatever its size."""
    doc = realistic(rng, base, series, instances)
    _bad_uid(doc)
    return doc


def write_ndjson(path: Path, count: int, rng: random.Random, base: Base) -> Path:
    """`count` realistic small studies, one a line, written as they are made (100,000 of them
    are ~300 MB: never all in memory at once)."""
    with path.open("w") as handle:
        for _ in range(count):
            handle.write(json.dumps(realistic(rng, base)) + "\n")
    return path


def write_corpora(
    rng: random.Random, folder: Path, base: Base, size: int = CORPUS_SIZE
) -> dict[str, tuple[Path, bool]]:
    """The corpora as NDJSON files: label -> (path, whether the run passes)."""
    studies = [realistic(rng, base) for _ in range(size)]
    realistic_path = folder / "realistic.ndjson"
    realistic_path.write_text("".join(json.dumps(s) + "\n" for s in studies))
    defect_path = folder / "defects.ndjson"
    with defect_path.open("w") as handle:
        for n, doc in enumerate(studies):
            if n % 10 == 0:
                DEFECTS[(n // 10) % len(DEFECTS)](doc)
            handle.write(json.dumps(doc) + "\n")
    return {
        f"realistic small studies ({size:,})": (realistic_path, True),
        f"10% defective ({size:,})": (defect_path, False),
    }
