"""One Python tool on payload files, in its own process: `python bench/runner.py TOOL PASSES PATH...`.

TOOL is ours (imaging-validator, version detected), fhir.resources (R4B pydantic models),
fhirkit (fhirkit-rs, R4 in Rust) or orjson (parsing alone, the floor). A .ndjson file is one
resource a line, any other file one resource. With PASSES > 0, each file gets one untimed pass
(imports settle, our checks are compiled, caches fill) and then PASSES timed ones; with PASSES 0,
one untimed pass: the caller times the whole process. Prints one JSON line per file: resources,
wall and CPU seconds of each timed pass, resources with an error, findings without a line, and
this process's peak RSS (VmHWM). Information notes are not counted.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

# -> (resources, resources with an error, resources with a warning and no error, findings not placed)
Pass = Callable[[], tuple[int, int, int, int]]


def items(path: Path) -> list[bytes]:
    data = path.read_bytes()
    return [line for line in data.splitlines() if line.strip()] if path.suffix == ".ndjson" else [data]


def ours(path: Path) -> Pass:
    from validator import Severity, Validator

    validator = Validator(fhir_version=None)  # the version detected per resource, as in use
    # Per resource means per line or document, as for the peers: a Bundle is one, not its entries.
    documents = len(items(path))

    def run() -> tuple[int, int, int, int]:
        # Read, parse, validate and place every finding: what a user of the library pays per file.
        # (The peers get their lines already read: reading the file is a cost only we are charged.)
        results = validator.validate_file(path)
        worst = [max((i.severity for i in r.issues), default=Severity.INFORMATION) for r in results]
        unplaced = sum(i.line is None for r in results for i in r.issues)
        return documents, sum(w >= Severity.ERROR for w in worst), worst.count(Severity.WARNING), unplaced

    return run


def fhir_resources(path: Path) -> Pass:
    # fhir.resources 7+ has no plain R4: R4B is the closest (ImagingStudy is the same there).
    import orjson
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.imagingstudy import ImagingStudy
    from pydantic import ValidationError

    lines = items(path)
    model = Bundle if orjson.loads(lines[0]).get("resourceType") == "Bundle" else ImagingStudy

    def run() -> tuple[int, int, int, int]:
        flagged = 0
        for line in lines:
            try:
                model.model_validate_json(line)
            except ValidationError:
                flagged += 1
        return len(lines), flagged, 0, 0

    return run


def fhirkit(path: Path) -> Pass:
    import fhirkit

    lines = items(path)

    def run() -> tuple[int, int, int, int]:
        severities = [{i.severity for i in fhirkit.validate(line)} for line in lines]
        errors = sum("error" in s for s in severities)
        return len(lines), errors, sum(bool(s) for s in severities) - errors, 0

    return run


def floor(path: Path) -> Pass:
    import orjson

    lines = items(path)

    def run() -> tuple[int, int, int, int]:
        for line in lines:
            orjson.loads(line)
        return len(lines), 0, 0, 0

    return run


TOOLS: dict[str, Callable[[Path], Pass]] = {"ours": ours, "fhir.resources": fhir_resources, "fhirkit": fhirkit,
                                             "orjson": floor}  # fmt: skip


def peak_rss_mb() -> float:
    match = re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text())
    return int(match.group(1)) / 1024 if match else 0.0


def main() -> None:
    tool, passes, paths = sys.argv[1], int(sys.argv[2]), [Path(p) for p in sys.argv[3:]]
    for path in paths:
        run = TOOLS[tool](path)
        count, errors, warnings, unplaced = run()  # untimed
        walls, cpus = [], []
        for _ in range(passes):
            wall, cpu = time.perf_counter(), time.process_time()
            count, errors, warnings, unplaced = run()
            cpus.append(time.process_time() - cpu)
            walls.append(time.perf_counter() - wall)
        print(json.dumps({"n": count, "wall": walls, "cpu": cpus, "errors": errors, "warnings": warnings,
                          "unplaced": unplaced,
                          "rss_mb": peak_rss_mb()}))  # fmt: skip


if __name__ == "__main__":
    main()
