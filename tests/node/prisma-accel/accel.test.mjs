// The issue-18 equality test: the same Prisma workload (workload.mjs) through a
// prisma+postgres:// URL (Prisma Client -> HTTP -> query-plan executor -> PostgreSQL) and
// through the direct postgresql:// URL with @prisma/adapter-pg must give identical results.
//
// Environment:
//   PRISMA_DIRECT_URL      postgresql://… of the database the direct run uses (required)
//   PRISMA_ACCEL_DB_URL    postgresql://… of the database behind the Accelerate endpoint; the
//                          test loads schema.sql into it (and into PRISMA_DIRECT_URL) first
//   PRISMA_ACCEL_URL       prisma+postgres://HOST:PORT/?api_key=KEY of the endpoint under test
//                          (pgfleet's). Unset: the reference executor
//                          (@prisma/query-plan-executor) is started in this process in front of
//                          PRISMA_ACCEL_DB_URL.
//   RECORD_FIXTURES        a directory: write every HTTP request/response pair of the
//                          Accelerate run there, one <scenario>.json per scenario
//   RESULTS_DIR            a directory: write accelerate.json and direct.json (the canonical
//                          results) there, for diffing by hand
// Without PRISMA_DIRECT_URL the test is skipped.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import pg from 'pg';
import { PrismaPg } from '@prisma/adapter-pg';

import { prismaModule } from './generate.mjs';
import { startReferenceExecutor, startRecordingProxy } from './reference.mjs';
import { runWorkload, SCENARIOS, JOIN_SCENARIOS } from './workload.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { PRISMA_DIRECT_URL, PRISMA_ACCEL_DB_URL, PRISMA_ACCEL_URL, RECORD_FIXTURES, RESULTS_DIR } = process.env;

async function loadSchema(url) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(fs.readFileSync(path.join(HERE, 'schema.sql'), 'utf8'));
  } finally {
    await client.end();
  }
}

// Replaces the API key in recorded headers and the transaction ids in paths and bodies, so
// the fixtures are stable across runs and hold no secret.
function scrub(pairs) {
  const ids = new Map();
  const idOf = (id) => {
    if (!ids.has(id)) ids.set(id, `<tx${ids.size + 1}>`);
    return ids.get(id);
  };
  // The executor answers every request with the error-level logs Prisma Client asks for
  // (X-Capture-Telemetry); their `error` attribute is a util.inspect() dump with stack paths.
  const noDumps = (k, v) => (k === 'error' && typeof v === 'string' && v.includes('\n    at ') ? '<util.inspect of the error, with stack>' : v);
  const text = JSON.stringify(pairs, noDumps, 2).replace(/"Bearer [^"]*"/g, '"Bearer <api_key>"');
  return text.replace(/\/transaction\/([0-9a-zA-Z-]{20,})\//g, (_, id) => `/transaction/${idOf(id)}/`).replace(/"([0-9a-z]{25}|[0-9a-f-]{36})"/g, (m, id) => (ids.has(id) ? `"${ids.get(id)}"` : m));
}

function writeFixtures(dir, records, meta) {
  fs.mkdirSync(dir, { recursive: true });
  for (const [scenario, pairs] of records) {
    fs.writeFileSync(path.join(dir, `${scenario}.json`), `${scrub({ scenario, ...meta, exchanges: pairs })}\n`);
  }
}

describe('prisma+postgres:// gives what the direct driver adapter gives', { skip: !PRISMA_DIRECT_URL && 'PRISMA_DIRECT_URL not set', timeout: 5 * 60_000 }, () => {
  let PrismaClient;
  let executor;
  let proxy;
  const results = {};

  before(async () => {
    ({ PrismaClient } = await prismaModule());
    if (PRISMA_ACCEL_DB_URL) await loadSchema(PRISMA_ACCEL_DB_URL);
    await loadSchema(PRISMA_DIRECT_URL);
    let target;
    let apiKey = 'reference-has-no-auth';
    if (PRISMA_ACCEL_URL) {
      const u = new URL(PRISMA_ACCEL_URL);
      apiKey = u.searchParams.get('api_key');
      target = `http://${u.host}`;
    } else {
      assert.ok(PRISMA_ACCEL_DB_URL, 'PRISMA_ACCEL_DB_URL is needed to start the reference executor');
      executor = await startReferenceExecutor(PRISMA_ACCEL_DB_URL);
      target = executor.url;
    }
    proxy = await startRecordingProxy(target);
    proxy.scenario('connect');
    // Through the proxy on 127.0.0.1: Prisma Client speaks plain http to loopback hosts.
    const accelerateUrl = `prisma+postgres://127.0.0.1:${proxy.port}/?api_key=${encodeURIComponent(apiKey)}`;
    const accelerate = new PrismaClient({ accelerateUrl, errorFormat: 'minimal' });
    await accelerate.$connect(); // GET /connection-info, recorded under "connect"
    results.accelerate = await runWorkload(accelerate, { before: (name) => proxy.scenario(name) });
    await accelerate.$disconnect();

    const direct = new PrismaClient({ adapter: new PrismaPg({ connectionString: PRISMA_DIRECT_URL }), errorFormat: 'minimal' });
    results.direct = await runWorkload(direct);
    await direct.$disconnect();

    // The same databases, through the client generated with the relationJoins preview.
    const { PrismaClient: JoinsClient } = await prismaModule('joins');
    const accelerateJoins = new JoinsClient({ accelerateUrl, errorFormat: 'minimal' });
    Object.assign(results.accelerate, await runWorkload(accelerateJoins, { scenarios: JOIN_SCENARIOS, before: (name) => proxy.scenario(name) }));
    await accelerateJoins.$disconnect();
    const directJoins = new JoinsClient({ adapter: new PrismaPg({ connectionString: PRISMA_DIRECT_URL }), errorFormat: 'minimal' });
    Object.assign(results.direct, await runWorkload(directJoins, { scenarios: JOIN_SCENARIOS }));
    await directJoins.$disconnect();

    if (RESULTS_DIR) {
      fs.mkdirSync(RESULTS_DIR, { recursive: true });
      for (const [k, v] of Object.entries(results)) fs.writeFileSync(path.join(RESULTS_DIR, `${k}.json`), `${JSON.stringify(v, null, 2)}\n`);
    }
    if (RECORD_FIXTURES) {
      const { version } = JSON.parse(fs.readFileSync(path.join(HERE, 'node_modules/@prisma/client/package.json'), 'utf8'));
      writeFixtures(RECORD_FIXTURES, proxy.records(), { prismaClient: version, executor: PRISMA_ACCEL_URL ? 'under test' : '@prisma/query-plan-executor', results: undefined });
    }
  });

  after(async () => {
    await proxy?.stop();
    await executor?.stop();
  });

  for (const { name } of [...SCENARIOS, ...JOIN_SCENARIOS]) {
    it(name, () => {
      assert.deepStrictEqual(results.accelerate[name], results.direct[name]);
    });
  }

  it('every query went over HTTP with the API key', () => {
    const all = [...proxy.records().values()].flat();
    assert.ok(all.length > SCENARIOS.length);
    assert.ok(all.every((p) => p.request.headers.authorization?.startsWith('Bearer ')));
    assert.equal(all[0].request.path, '/connection-info');
  });
});
