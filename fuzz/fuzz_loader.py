"""Coverage-guided fuzzing (atheris) of reading and validating a payload file.

    python fuzz/fuzz_loader.py -max_total_time=60        # or: make fuzz
The property: whatever the bytes, the validator returns results and never raises.
"""

from __future__ import annotations

import os
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    from validator import Validator

VALIDATOR = Validator()
FOLDER = tempfile.mkdtemp(prefix="imaging-validator-fuzz-")
SUFFIXES = (".json", ".ndjson", ".xml")
SEEDS = [
    b'{"resourceType": "ImagingStudy", "status": "available", "subject": {"reference": "Patient/p"}}',
    b'{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "ImagingStudy"}}]}',
    b'<ImagingStudy xmlns="http://hl7.org/fhir"><status value="available"/></ImagingStudy>',
]


def one_input(data: bytes) -> None:
    suffix = SUFFIXES[data[0] % len(SUFFIXES)] if data else ".json"
    path = os.path.join(FOLDER, "input" + suffix)
    with open(path, "wb") as handle:
        handle.write(data[1:])
    results = VALIDATOR.validate_file(path)
    if not results:
        raise AssertionError("no result for an input")


def main() -> None:
    corpus = os.path.join(FOLDER, "corpus")
    os.makedirs(corpus, exist_ok=True)
    for n, seed in enumerate(SEEDS):
        with open(os.path.join(corpus, f"seed{n}"), "wb") as handle:
            handle.write(bytes([n]) + seed)
    atheris.Setup([*sys.argv, corpus], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
