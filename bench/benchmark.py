"""Benchmark: imaging-validator against peer validators on the same seeded corpus.

    make bench                         # or: .venv/bin/python bench/benchmark.py [--ndjson 100000]

Times, per payload file, reading + parsing + validating it: this validator (R4 base and DICOM
packs; the IHE IMR profile for the IMR Bundle), fhir.resources (pydantic models, structure only),
FHIR.js (the `fhir` npm package, installed into a throwaway folder when node is available) and a
plain JSON parse as the floor. Then: how our time per instance grows from 10 to 10,000 instances,
the CLI's start-up wall time for one small file, and an NDJSON of small studies validated as a
stream with one process and with --jobs (wall time, peak memory). Real payloads too (corpora.py):
2,000 realistic small studies (accession identifier with its type, procedure code, referrer, body
site, performer, note: every one gets an information note, so every one is placed), and the same
with 10% of them defective; CPU per resource against FHIR.js and peak RSS per corpus. Not part of
the unit tests.
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

from corpora import CORPUS_SIZE, write_corpora

DCM = "http://dicom.nema.org/resources/ontology/DCM"
SIZES = {"small (2 x 5)": (2, 5), "medium (4 x 100)": (4, 100), "large (10 x 1,000)": (10, 1000)}
REPEATS = {"small (2 x 5)": 1000, "medium (4 x 100)": 60, "large (10 x 1,000)": 9, "IMR Bundle (2 x 5)": 1000}
SCALING = [(1, 10), (1, 100), (10, 100), (10, 1000)]  # series x instances: 10 to 10,000 instances
IMR = "https://profiles.ihe.net/RAD/IMR/StructureDefinition/imr-imagingstudy"
IMR_ENDPOINT = "https://profiles.ihe.net/RAD/IMR/StructureDefinition/imaging-study-endpoint"
NARRATIVE = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">study</div>'}


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


def imr_bundle(rng: random.Random) -> dict:
    """An IMR ImagingStudy (2 x 5) and the Imaging Study Endpoint it refers to, in one Bundle."""
    s = study(rng, 2, 5)
    s.update(meta={"profile": [IMR]}, endpoint=[{"reference": "Endpoint/ep1"}])
    uid = s["identifier"][0]["value"][len("urn:oid:") :]
    endpoint = {
        "resourceType": "Endpoint",
        "id": "ep1",
        "meta": {"profile": [IMR_ENDPOINT]},
        "text": NARRATIVE,
        "status": "active",
        "address": f"https://pacs.example.org/dicomweb/studies/{uid}",
        "connectionType": {
            "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
            "code": "dicom-wado-rs",
        },
        "payloadType": [{"coding": [{"system": DCM, "code": "113014", "display": "Study"}]}],
    }
    entries = [
        {"fullUrl": f"https://pacs.example.org/fhir/ImagingStudy/{s['id']}", "resource": s},
        {"fullUrl": "https://pacs.example.org/fhir/Endpoint/ep1", "resource": endpoint},
    ]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


Timing = tuple[float, float]  # (wall seconds, CPU seconds): medians over the repeats


def median_seconds(fn, repeats: int) -> Timing:
    """Wall and CPU time per call. CPU time leaves out the time a shared machine gives to others,
    which makes it the steadier measure of a tool's own work."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return statistics.median(walls), statistics.median(cpus)


def ours(path: Path, repeats: int) -> Timing:
    from validator import Validator

    validator = Validator(fhir_version="R4")
    results = validator.validate_file(path)
    assert results and not any(r.issues for r in results), [i.rule for r in results for i in r.issues][:5]
    return median_seconds(lambda: validator.validate_file(path), repeats)


def fhir_resources(path: Path, repeats: int) -> Timing | None:
    try:
        from fhir.resources.R4B.bundle import Bundle
        from fhir.resources.R4B.imagingstudy import ImagingStudy
    except ImportError:
        return None
    model = Bundle if json.loads(path.read_bytes()).get("resourceType") == "Bundle" else ImagingStudy
    return median_seconds(lambda: model.model_validate_json(path.read_bytes()), repeats)


def json_floor(path: Path, repeats: int) -> Timing:
    return median_seconds(lambda: json.loads(path.read_bytes()), repeats)


FHIR_JS = """
const fs = require('fs'); const {Fhir} = require('fhir'); const fhir = new Fhir();
const [path, repeats] = [process.argv[2], parseInt(process.argv[3])];
// Untimed first: V8 compiles hot code after some runs, and each round starts a fresh process.
for (let i = 0; i < Math.max(200, repeats); i++) fhir.validate(JSON.parse(fs.readFileSync(path, 'utf8')), {});
const walls = [], cpus = [];
for (let i = 0; i < repeats; i++) {
  const t = process.hrtime.bigint(), c = process.cpuUsage();
  fhir.validate(JSON.parse(fs.readFileSync(path, 'utf8')), {});
  const used = process.cpuUsage(c);
  cpus.push((used.user + used.system) / 1e6);
  walls.push(Number(process.hrtime.bigint() - t) / 1e9);
}
const median = (a) => a.sort((x, y) => x - y)[Math.floor(a.length / 2)];
console.log(median(walls), median(cpus));
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


def fhir_js(script: Path | None, path: Path, repeats: int) -> Timing | None:
    if script is None:
        return None
    done = subprocess.run(["node", str(script), str(path), str(repeats)], capture_output=True, text=True,
                          cwd=script.parent, timeout=600)  # fmt: skip
    if done.returncode != 0:
        return None
    wall, cpu = done.stdout.split()
    return float(wall), float(cpu)


FHIR_JS_CORPUS = """
const fs = require('fs'); const {Fhir} = require('fhir'); const fhir = new Fhir();
const lines = fs.readFileSync(process.argv[2], 'utf8').split('\\n').filter((l) => l.trim());
const pass = () => { for (const l of lines) fhir.validate(JSON.parse(l), {}); };
pass();  // untimed: V8 compiles hot code after some runs
const t = process.hrtime.bigint(), c = process.cpuUsage();
pass();
const used = process.cpuUsage(c);
console.log(Number(process.hrtime.bigint() - t) / 1e9 / lines.length, (used.user + used.system) / 1e6 / lines.length);
"""


def corpus_ours(path: Path, count: int) -> Timing:
    """Per resource, one pass over an NDJSON corpus in process: read, parse, validate, place."""
    from validator import Validator

    validator = Validator(fhir_version=None)  # the version detected, as in use
    validator.validate_file(path)  # untimed: the checks are compiled on first use
    wall, cpu = median_seconds(lambda: validator.validate_file(path), 1)
    return wall / count, cpu / count


def corpus_fhir_js(script: Path | None, path: Path) -> Timing | None:
    if script is None:
        return None
    runner = script.parent / "corpus.js"
    runner.write_text(FHIR_JS_CORPUS)
    done = subprocess.run(["node", str(runner), str(path)], capture_output=True, text=True, cwd=script.parent,
                          timeout=600)  # fmt: skip
    if done.returncode != 0:
        return None
    wall, cpu = done.stdout.split()
    return float(wall), float(cpu)


def corpus_floor(path: Path, count: int) -> Timing:
    wall, cpu = median_seconds(lambda: [json.loads(line) for line in path.read_bytes().splitlines()], 1)
    return wall / count, cpu / count


def corpora(rng: random.Random, folder: Path, script: Path | None) -> None:
    """CPU per resource on the real-payload corpora, in interleaved rounds, and peak RSS of a
    fresh process validating each corpus file."""
    paths = write_corpora(rng, folder, study)
    print(f"Real payloads, CPU per resource (median of {ROUNDS} interleaved rounds; read, parse, validate, place)")
    print(f"{'corpus':<34} {'imaging-validator':>18} {'FHIR.js':>9} {'json parse':>11} {'vs FHIR.js':>11}"
          f" {'peak RSS':>9}")  # fmt: skip
    for label, (path, clean) in paths.items():
        rounds: list[list[Timing | None]] = [[], [], []]
        for _ in range(ROUNDS):
            rounds[0].append(corpus_ours(path, CORPUS_SIZE))
            rounds[1].append(corpus_fhir_js(script, path))
            rounds[2].append(corpus_floor(path, CORPUS_SIZE))
        a, b, c = (None if None in r else statistics.median(t[1] for t in r) for r in rounds)  # type: ignore[index]
        _, rss = ndjson_stream(path, 1, clean=clean)
        print(f"{label:<34} {fmt(a):>18} {fmt(b):>9} {fmt(c):>11} {ratio(a, b):>11} {rss:>6,.0f} MB")  # type: ignore[arg-type]
    print()


def startup(path: Path) -> float:
    exe = shutil.which("imaging-validator", path=str(Path(sys.executable).parent)) or "imaging-validator"
    return median_seconds(lambda: subprocess.run([exe, "validate", str(path), "-q"], capture_output=True), 7)[0]


def ndjson_stream(path: Path, jobs: int, max_bytes: int = 512 << 20, clean: bool = True) -> tuple[float, float]:
    """Wall time and peak RSS (parent and workers) of validating a file in a fresh process."""
    # Linux keeps ru_maxrss across exec, so a child started from this (large) process would report
    # this process's size; VmHWM in /proc is the peak of the child's own memory.
    code = (
        "import re, resource, sys, time; from validator import Validator; from validator.limits import Limits;"
        "t = time.perf_counter(); limits = Limits(max_bytes=int(sys.argv[3]));"
        "run = Validator(fhir_version='R4', limits=limits).validate_paths([sys.argv[1]], jobs=int(sys.argv[2]));"
        "assert run.failed != (sys.argv[4] == 'clean'), [i.rule for r in run.results for i in r.issues][:5];"
        "own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss;"
        "status = open('/proc/self/status').read() if sys.platform == 'linux' else '';"
        "m = re.search(r'VmHWM:\\s+(\\d+) kB', status); own = int(m.group(1)) if m else own;"
        "rss = max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
        "print(time.perf_counter() - t, rss / 1024, len(run.results))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path), str(jobs), str(max_bytes),
                          "clean" if clean else "findings"], capture_output=True, text=True, timeout=7200)  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"NDJSON run failed: {out.stderr[-500:]}")
    seconds, rss_mb, _count = out.stdout.split()
    return float(seconds), float(rss_mb)


def scaling(rng: random.Random, folder: Path) -> list[tuple[int, float, float]]:
    """(instances, seconds, marginal seconds per instance) for 10 to 10,000 instances: the marginal
    cost subtracts the same study with its instance lists left out. Sizes are timed in
    interleaved rounds, like the tools."""
    paths = []
    for series, instances in SCALING:
        payload = study(rng, series, instances)
        bare = json.loads(json.dumps(payload))
        for s in bare["series"]:
            s.pop("instance")
            s.pop("numberOfInstances")
        bare.pop("numberOfInstances")
        pair = []
        for name, doc in (("full", payload), ("bare", bare)):
            path = folder / f"scale-{series}x{instances}-{name}.json"
            path.write_text(json.dumps(doc))
            pair.append(path)
        paths.append((series * instances, pair))
    times: dict[Path, list[float]] = {path: [] for _, pair in paths for path in pair}
    for _ in range(ROUNDS):
        for count, pair in paths:
            for path in pair:
                times[path].append(ours(path, max(3, 4_000 // count))[1])  # CPU time
    rows = []
    for count, (full, bare) in paths:
        t_full, t_bare = statistics.median(times[full]), statistics.median(times[bare])
        rows.append((count, t_full, (t_full - t_bare) / count))
    return rows


ROUNDS = 5


def memory(rng: random.Random, folder: Path, ndjson_bytes: int, jobs: int) -> None:
    """Peak memory against the size of the largest input: a 30 MB string and a 133 MB study, each
    with a finding (so source positions are computed too), and optionally an NDJSON of
    `ndjson_bytes` streamed with one process and with `jobs`."""
    print("Memory (peak RSS of a fresh process, VmHWM; the interpreter and packs alone take ~40 MB)")
    cases = []
    long_string = folder / "long-string.json"
    long_string.write_text(json.dumps({**study(rng, 1, 1), "status": "bad", "description": "x" * 30_000_000}))
    cases.append(("one 30 MB string", long_string, 1))
    big = folder / "big-study.json"
    # 664,000 instances, one line per value: 133 MB, as a PACS export of a very large study.
    big.write_text(json.dumps({**study(rng, 10, 66_400), "status": "bad"}, indent=1))
    cases.append(("one 133 MB study (664,000 instances)", big, 1))
    if ndjson_bytes:
        # The same stream at a tenth of the size and at full size: flat memory means the same peak.
        for size in (ndjson_bytes // 10, ndjson_bytes):
            stream = folder / f"stream-{size}.ndjson"
            with stream.open("w") as handle:
                while handle.tell() < size:
                    handle.write(json.dumps(study(rng, 2, 5)) + "\n")
            gb = stream.stat().st_size / 1e9
            cases.append((f"NDJSON of {gb:.2f} GB, 1 process", stream, 1))
            if jobs > 1:
                cases.append((f"NDJSON of {gb:.2f} GB, --jobs {jobs}", stream, jobs))
    print(f"{'input':<42} {'size':>9} {'peak RSS':>10} {'RSS / size':>11} {'time':>8}")
    for label, path, n in cases:
        size = path.stat().st_size
        seconds, rss_mb = ndjson_stream(path, n, max_bytes=size + 1, clean=path.suffix == ".ndjson")
        ratio = f"{rss_mb * 2**20 / size:.1f}x" if path.suffix != ".ndjson" else "(stream)"
        print(f"{label:<42} {size / 1e6:>7,.0f} MB {rss_mb:>7,.0f} MB {ratio:>11} {seconds:>7.1f}s")
    print()


def interleaved(path: Path, repeats: int, script: Path | None) -> list[Timing | None]:
    """Each tool's (wall, CPU) time on one payload: the median of ROUNDS rounds, each round timing
    every tool in turn, so a slow spell of a shared machine falls on all of them alike."""
    tools = [
        lambda n: ours(path, n),
        lambda n: fhir_resources(path, n),
        lambda n: fhir_js(script, path, n),
        lambda n: json_floor(path, n),
    ]
    rounds: list[list[Timing | None]] = [[] for _ in tools]
    for _ in range(ROUNDS):
        for k, tool in enumerate(tools):
            rounds[k].append(tool(max(3, repeats // ROUNDS)))
    return [
        None if None in r else (statistics.median(t[0] for t in r), statistics.median(t[1] for t in r))  # type: ignore[index]
        for r in rounds
    ]


def fmt(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds * 1e6:,.0f} us" if seconds < 0.01 else f"{seconds * 1e3:,.1f} ms"


def ratio(a: float, b: float | None) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ndjson", type=int, default=100_000, help="small studies in the NDJSON stream (0: skip)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes for the NDJSON run")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument(
        "--memory-ndjson-gb",
        type=float,
        default=0.0,
        help="also stream an NDJSON of this many GB in the memory section (1: about 10 minutes)",
    )
    parser.add_argument("--only-memory", action="store_true", help="run the memory section only")
    parser.add_argument("--skip-memory", action="store_true", help="leave the (slow) memory section out")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="imaging-validator-bench-"))
    try:
        if not args.skip_memory:
            memory(rng, folder, int(args.memory_ndjson_gb * 1e9), args.jobs)
        if args.only_memory:
            return
        script = fhir_js_setup(folder / "fhirjs")
        corpora(rng, folder, script)
        payloads = {label: study(rng, *size) for label, size in SIZES.items()}
        payloads["IMR Bundle (2 x 5)"] = imr_bundle(rng)
        rows = []
        for label, doc in payloads.items():
            path = folder / f"{label.split()[0]}.json"
            path.write_text(json.dumps(doc))
            rows.append((label, *interleaved(path, REPEATS[label], script)))
        for clock, k in (("wall time", 0), ("CPU time (node's with its helper threads)", 1)):
            print(f"Per payload file, {clock} (median of {ROUNDS} interleaved rounds): read, parse and validate")
            print(f"{'payload':<20} {'imaging-validator':>18} {'fhir.resources':>15} {'FHIR.js':>11}"
                  f" {'json parse':>11} {'vs fhir.resources':>18} {'vs FHIR.js':>11}")  # fmt: skip
            for label, *timings in rows:
                a, b, c, d = (t[k] if t else None for t in timings)
                print(f"{label:<20} {fmt(a):>18} {fmt(b):>15} {fmt(c):>11} {fmt(d):>11}"
                      f" {ratio(a, b):>18} {ratio(a, c):>11}")  # fmt: skip
            print()
        print("Scaling (imaging-validator, CPU time): time per instance")
        scale = scaling(rng, folder)
        first_marginal = scale[0][2]
        print(f"{'instances':>10} {'study':>10} {'per instance':>13} {'marginal':>10} {'vs 10 (marginal)':>17}")
        for count, seconds, marginal in scale:
            print(f"{count:>10,} {fmt(seconds):>10} {fmt(seconds / count):>13} {fmt(marginal):>10}"
                  f" {marginal / first_marginal:>16.2f}x")  # fmt: skip
        small = folder / "small.json"
        print(f"\nCLI start-up, one small file: {startup(small):.3f} s wall (median of 7)")
        if args.ndjson:
            stream = folder / "stream.ndjson"
            with stream.open("w") as handle:
                for _ in range(args.ndjson):
                    handle.write(json.dumps(study(rng, 2, 5)) + "\n")
            one, rss_one = ndjson_stream(stream, 1)
            print(f"NDJSON of {args.ndjson:,} small studies, 1 process: {one:.1f} s "
                  f"({one / args.ndjson * 1e6:,.0f} us each), peak RSS {rss_one:,.0f} MB")  # fmt: skip
            if args.jobs > 1:
                many, rss_many = ndjson_stream(stream, args.jobs)
                print(f"NDJSON of {args.ndjson:,} small studies, --jobs {args.jobs}: {many:.1f} s "
                      f"(speed-up {one / many:.2f}x), peak RSS {rss_many:,.0f} MB per process")  # fmt: skip
        print(f"\npython {sys.version.split()[0]}, {os.cpu_count()} CPU(s); times include reading the file")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
