"""Benchmark: imaging-validator against peer validators on the same seeded corpus.

    make bench                         # or: .venv/bin/python bench/benchmark.py [--ndjson 100000]

Times, per resource, reading + parsing + validating each payload file: this validator (R4, DICOM
and base packs), fhir.resources (pydantic models, structure only), FHIR.js (the `fhir` npm package,
installed into a throwaway folder when node is available) and a plain JSON parse as the floor.
Also the CLI's start-up wall time for one small file, and an NDJSON of small studies validated
as a stream (wall time and peak memory). Not part of the unit tests.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DCM = "http://dicom.nema.org/resources/ontology/DCM"
SIZES = {"small (2 x 5)": (2, 5), "medium (4 x 100)": (4, 100), "large (10 x 1,000)": (10, 1000)}
REPEATS = {"small (2 x 5)": 300, "medium (4 x 100)": 30, "large (10 x 1,000)": 5}


def study(rng: random.Random, series: int, instances: int) -> dict:
    root = f"1.2.826.0.1.3680043.10.{rng.randint(1, 10**6)}"
    modality = rng.choice(["CT", "MR"])
    sop = "1.2.840.10008.5.1.4.1.1.2" if modality == "CT" else "1.2.840.10008.5.1.4.1.1.4"
    return {
        "resourceType": "ImagingStudy", "id": f"s{rng.randint(1, 10**9)}",
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">study</div>'},
        "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{root}"}],
        "status": "available", "modality": [{"system": DCM, "code": modality}],
        "subject": {"reference": f"Patient/p{rng.randint(1, 1000)}"},
        "started": "2024-03-14T09:30:00+01:00", "numberOfSeries": series, "numberOfInstances": series * instances,
        "series": [{"uid": f"{root}.{n}", "number": n, "modality": {"system": DCM, "code": modality},
                    "numberOfInstances": instances,
                    "instance": [{"uid": f"{root}.{n}.{k}", "number": k,
                                  "sopClass": {"system": "urn:ietf:rfc:3986", "code": f"urn:oid:{sop}"}}
                                 for k in range(1, instances + 1)]}
                   for n in range(1, series + 1)],
    }  # fmt: skip


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def ours(path: Path, repeats: int) -> float:
    from validator import Validator

    validator = Validator(fhir_version="R4")
    results = validator.validate_file(path)
    assert results and not results[0].issues, [i.rule for i in results[0].issues][:5]
    return median_seconds(lambda: validator.validate_file(path), repeats)


def fhir_resources(path: Path, repeats: int) -> float | None:
    try:
        from fhir.resources.R4B.imagingstudy import ImagingStudy
    except ImportError:
        return None
    return median_seconds(lambda: ImagingStudy.model_validate_json(path.read_bytes()), repeats)


def json_floor(path: Path, repeats: int) -> float:
    return median_seconds(lambda: json.loads(path.read_bytes()), repeats)


FHIR_JS = """
const fs = require('fs'); const {Fhir} = require('fhir'); const fhir = new Fhir();
const [path, repeats] = [process.argv[2], parseInt(process.argv[3])];
const times = [];
for (let i = 0; i < repeats; i++) {
  const t = process.hrtime.bigint();
  fhir.validate(JSON.parse(fs.readFileSync(path, 'utf8')), {});
  times.push(Number(process.hrtime.bigint() - t) / 1e9);
}
times.sort((a, b) => a - b); console.log(times[Math.floor(times.length / 2)]);
"""


def fhir_js_setup(folder: Path) -> Path | None:
    if not shutil.which("node") or not shutil.which("npm"):
        return None
    done = subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(folder), "fhir@4"],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    if done.returncode != 0:
        print(f"FHIR.js not installed: {done.stderr.strip()[:200]}", file=sys.stderr)
        return None
    script = folder / "bench.js"
    script.write_text(FHIR_JS)
    return script


def fhir_js(script: Path | None, path: Path, repeats: int) -> float | None:
    if script is None:
        return None
    done = subprocess.run(["node", str(script), str(path), str(repeats)], capture_output=True, text=True,
                          cwd=script.parent, timeout=600)  # fmt: skip
    return float(done.stdout.strip()) if done.returncode == 0 else None


def startup(path: Path) -> float:
    exe = shutil.which("imaging-validator", path=str(Path(sys.executable).parent)) or "imaging-validator"
    return median_seconds(lambda: subprocess.run([exe, "validate", str(path), "-q"], capture_output=True), 5)


def ndjson_stream(path: Path) -> tuple[float, float]:
    code = (
        "import resource, sys, time; from validator import Validator; t = time.perf_counter();"
        "run = Validator(fhir_version='R4').validate_paths([sys.argv[1]]);"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, len(run.results))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=3600)
    seconds, rss_mb, _count = out.stdout.split()
    return float(seconds), float(rss_mb)


def fmt(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds * 1e6:,.0f} us" if seconds < 0.01 else f"{seconds * 1e3:,.1f} ms"


def ratio(a: float, b: float | None) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ndjson", type=int, default=100_000, help="small studies in the NDJSON stream (0: skip)")
    parser.add_argument("--seed", type=int, default=20261123)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="imaging-validator-bench-"))
    try:
        script = fhir_js_setup(folder / "fhirjs")
        rows = []
        for label, (series, instances) in SIZES.items():
            path = folder / f"{series}x{instances}.json"
            path.write_text(json.dumps(study(rng, series, instances)))
            n = REPEATS[label]
            rows.append((label, ours(path, n), fhir_resources(path, n), fhir_js(script, path, n), json_floor(path, n)))
        print(f"{'payload':<20} {'imaging-validator':>18} {'fhir.resources':>15} {'FHIR.js':>11} {'json parse':>11}"
              f" {'vs fhir.resources':>18} {'vs FHIR.js':>11}")  # fmt: skip
        for label, a, b, c, d in rows:
            print(
                f"{label:<20} {fmt(a):>18} {fmt(b):>15} {fmt(c):>11} {fmt(d):>11} {ratio(a, b):>18} {ratio(a, c):>11}"
            )
        small = folder / "2x5.json"
        print(f"\nCLI start-up, one small file: {startup(small):.3f} s wall (median of 5)")
        if args.ndjson:
            stream = folder / "stream.ndjson"
            with stream.open("w") as handle:
                for _ in range(args.ndjson):
                    handle.write(json.dumps(study(rng, 2, 5)) + "\n")
            seconds, rss = ndjson_stream(stream)
            each = seconds / args.ndjson * 1e6
            print(f"NDJSON of {args.ndjson:,} small studies: {seconds:.1f} s ({each:,.0f} us each), "
                  f"peak RSS {rss:,.0f} MB")
        print(
            f"\npython {sys.version.split()[0]}, {os.cpu_count()} CPU(s); per-resource medians include reading the file"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
