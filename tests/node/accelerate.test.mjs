// The prisma+postgres:// endpoint with unmodified Prisma Client 7: two projects created through
// the official SDK, the `prisma+postgres://` string one of them answers (its default
// connection's endpoints.accelerate.connectionString) given to the equality test of
// prisma-accel/ (accel.test.mjs: the Prisma workload through that string vs the other
// project's direct postgresql:// string with @prisma/adapter-pg, identical results per
// scenario); then the connection is rotated and the old string no longer works while the new
// one does.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { createManagementApiClient } from '@prisma/management-api-sdk';

import { Server, START_TIMEOUT_MS, STOP_TIMEOUT_MS } from './support.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ACCEL_DIR = path.join(HERE, 'prisma-accel');

// node-pg reads sslmode=require as verify-full; the embedded cluster's certificate is
// self-signed, so the direct strings are used with no-verify (still TLS).
const noVerify = (cs) => cs.replace('sslmode=require', 'sslmode=no-verify');
// Prisma Client speaks plain HTTP to loopback hosts; 127.0.0.1 rather than `localhost`, which
// may resolve to ::1 first while the endpoint listens on 127.0.0.1.
const onLoopback = (accel) => {
  const u = new URL(accel);
  u.hostname = '127.0.0.1';
  return u.toString();
};

async function readyProject(client, name) {
  const p = await client.POST('/v1/projects', { body: { name, region: 'us-east-1' } });
  assert.equal(p.response.status, 201, JSON.stringify(p.error));
  const db = p.data.data.database;
  for (;;) {
    const d = await client.GET('/v1/databases/{databaseId}', { params: { path: { databaseId: db.id } } });
    if (d.data.data.status === 'ready') break;
    await new Promise((r) => setTimeout(r, 300));
  }
  return db;
}

function run(cmd, args, env) {
  return new Promise((resolve) => {
    // Without NODE_TEST_CONTEXT, or the child's `node --test` thinks it is nested in ours.
    const { NODE_TEST_CONTEXT: _, ...parent } = process.env;
    const child = spawn(cmd, args, { cwd: ACCEL_DIR, env: { ...parent, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    child.once('exit', (code) => resolve({ code, out }));
  });
}

async function postQuery(accel, sql) {
  const u = new URL(accel);
  const res = await fetch(`http://127.0.0.1:${u.port}/query`, {
    method: 'POST',
    headers: { authorization: `Bearer ${u.searchParams.get('api_key')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ operation: 'queryRaw', plan: { type: 'query', args: { type: 'rawSql', sql, args: [], argTypes: [] } }, params: {} }),
  });
  return { status: res.status, body: await res.json() };
}

describe('prisma+postgres:// with unmodified Prisma Client', { timeout: 10 * 60_000 }, () => {
  let server;
  let client;
  let accelDb;
  let directDb;

  before(async () => {
    server = new Server({ name: 'accelerate', tokenPrefix: 'pgfleet_accel_test_' });
    const base = await server.start();
    client = createManagementApiClient({ baseUrl: base, token: server.token });
    accelDb = await readyProject(client, 'accel');
    directDb = await readyProject(client, 'direct');
  }, { timeout: START_TIMEOUT_MS + 60_000 });

  after(async () => {
    try {
      if (server) await server.stop();
    } finally {
      server?.cleanup();
    }
  }, { timeout: STOP_TIMEOUT_MS + 10_000 });

  it('the created project answers a prisma+postgres:// string beside the direct one', () => {
    const c = accelDb.connections[0];
    assert.equal(c.kind, 'postgres');
    assert.match(c.endpoints.accelerate.connectionString, /^prisma\+postgres:\/\/[^/]+:\d+\/\?api_key=pgfa_/);
    assert.equal(Number(new URL(c.endpoints.accelerate.connectionString).port), c.endpoints.accelerate.port);
    assert.match(accelDb.connectionString, /^postgresql:\/\//);
  });

  it('the Prisma workload through it equals the direct driver adapter, scenario by scenario', async () => {
    const accel = accelDb.connections[0];
    const { code, out } = await run(process.execPath, ['--test', '--test-reporter=spec', 'accel.test.mjs'], {
      PRISMA_ACCEL_URL: onLoopback(accel.endpoints.accelerate.connectionString),
      PRISMA_ACCEL_DB_URL: noVerify(accel.endpoints.direct.connectionString),
      PRISMA_DIRECT_URL: noVerify(directDb.connections[0].endpoints.direct.connectionString),
    });
    assert.equal(code, 0, out.split('\n').slice(-120).join('\n'));
    assert.match(out, /(# fail 0|ℹ fail 0)/);
    // Every scenario ran (the equality test skips itself without its environment).
    const passed = Number(/(?:# |ℹ )pass (\d+)/.exec(out)?.[1] ?? 0);
    assert.ok(passed >= 19, `only ${passed} scenarios passed:\n${out}`);
    assert.match(out, /(# skipped 0|ℹ skipped 0)/);
  });

  it('rotation cuts the old string at once; the new one works', async () => {
    const c = accelDb.connections[0];
    const old = onLoopback(c.endpoints.accelerate.connectionString);
    assert.equal((await postQuery(old, 'SELECT 1 AS one')).status, 200);
    const r = await client.POST('/v1/connections/{id}/rotate', { params: { path: { id: c.id } } });
    assert.equal(r.response.status, 200, JSON.stringify(r.error));
    const fresh = onLoopback(r.data.data.endpoints.accelerate.connectionString);
    const refused = await postQuery(old, 'SELECT 1 AS one');
    assert.equal(refused.status, 401);
    assert.equal(refused.body.code, 'P6002');
    const ok = await postQuery(fresh, 'SELECT 1 AS one');
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual(ok.body.data.rows, [[1]]);
  });
});
