// Replays the recorded Prisma Client <-> query-plan executor exchanges
// (tests/fixtures/accelerate/*.json, written by accel.test.mjs with RECORD_FIXTURES) against
// an executor, without Prisma Client: every request is sent as recorded and the answer must
// have the recorded status and, once values generated at run time are masked (uuids, cuids,
// now() timestamps, transaction ids, timings, telemetry), the recorded body. This is the
// conformance test for an executor of our own; against the reference it shows the fixtures
// are complete and deterministic.
//
// Environment:
//   EXECUTOR_DB_URL   postgresql://… of the database behind the executor (required: the test
//                     loads schema.sql into it first, the fixtures start from empty tables)
//   EXECUTOR_URL      http://HOST:PORT of the executor under test; unset: the reference
//                     executor is started in front of EXECUTOR_DB_URL
//   EXECUTOR_API_KEY  sent as `Authorization: Bearer …` (default: the recorded placeholder)

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import pg from 'pg';

import { startReferenceExecutor } from './reference.mjs';
import { SCENARIOS, JOIN_SCENARIOS } from './workload.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FIXTURES = path.join(HERE, '../../fixtures/accelerate');
const { EXECUTOR_DB_URL, EXECUTOR_URL, EXECUTOR_API_KEY } = process.env;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const CUID = /^c[a-z0-9]{24}$/;
// now() values: the recording ran long after the explicit dates the workload writes (2024, 2025).
const RECENT = /^20(2[6-9]|[3-9]\d)-\d\d-\d\dT/;

// The recorded and the actual body, with what the executor generates at run time masked.
function mask(value, key) {
  if (typeof value === 'string') {
    if (UUID.test(value) || /^<tx\d+>$/.test(value)) return '<uuid>'; // ids, and transaction ids as recorded
    if (CUID.test(value)) return '<cuid>';
    if (RECENT.test(value)) return '<now>';
    return value.replace(/\d+ ms/g, '<n> ms');
  }
  if (Array.isArray(value)) return value.map((v) => mask(v, key));
  if (value !== null && typeof value === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === 'extensions') continue; // telemetry: logs with stack dumps, spans
      out[k] = k === 'timeTaken' ? '<n>' : mask(v, k);
    }
    return out;
  }
  return value;
}

function readFixture(name) {
  const file = path.join(FIXTURES, `${name}.json`);
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

describe('recorded exchanges replay with the same answers', { skip: !EXECUTOR_DB_URL && 'EXECUTOR_DB_URL not set', timeout: 5 * 60_000 }, () => {
  let executor;
  let base;
  const txIds = new Map(); // <txN> in the fixtures -> the id this executor gave

  before(async () => {
    const client = new pg.Client({ connectionString: EXECUTOR_DB_URL });
    await client.connect();
    await client.query(fs.readFileSync(path.join(HERE, 'schema.sql'), 'utf8'));
    await client.end();
    if (EXECUTOR_URL) {
      base = EXECUTOR_URL;
    } else {
      executor = await startReferenceExecutor(EXECUTOR_DB_URL);
      base = executor.url;
    }
  });

  after(async () => {
    await executor?.stop();
  });

  // Fixture files in the order they were recorded (each scenario builds on the previous rows).
  for (const name of ['connect', ...SCENARIOS.map((s) => s.name), ...JOIN_SCENARIOS.map((s) => s.name)]) {
    it(name, async () => {
      const { exchanges } = readFixture(name);
      let txStartedAt = 0;
      for (const [i, { request, response }] of exchanges.entries()) {
        const recordedTx = request.path.match(/^\/transaction\/(<tx\d+>)\//)?.[1];
        const pathNow = recordedTx ? request.path.replace(recordedTx, txIds.get(recordedTx)) : request.path;
        // An answer recorded as "expired transaction" needs its transaction's timeout to pass.
        const expiredAfter = response.body?.meta?.timeout;
        if (response.status === 409 && typeof expiredAfter === 'number') {
          await sleep(Math.max(0, txStartedAt + expiredAfter + 150 - Date.now()));
        }
        const headers = { ...request.headers, authorization: `Bearer ${EXECUTOR_API_KEY ?? '<api_key>'}` };
        const res = await fetch(new URL(pathNow, base), {
          method: request.method,
          headers,
          body: request.body === null ? undefined : JSON.stringify(request.body),
        });
        const text = await res.text();
        let body;
        try {
          body = JSON.parse(text);
        } catch {
          body = { $text: text };
        }
        const where = `${name} #${i}: ${request.method} ${request.path}`;
        assert.equal(res.status, response.status, `${where}: status (body ${text.slice(0, 300)})`);
        if (request.path === '/transaction/start' && res.ok) {
          txIds.set(response.body.id, body.id);
          txStartedAt = Date.now();
        }
        assert.deepStrictEqual(mask(body), mask(response.body), where);
      }
    });
  }
});
