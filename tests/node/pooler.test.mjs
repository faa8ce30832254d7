// The pooled endpoint with node `pg`: a database created through the official SDK, then
// `endpoints.pooled.connectionString` used by a pg.Pool of 30 clients running named prepared
// statements (node pg prepares `{name, text}` queries once per client and reuses them) inside
// and outside transactions, while the proxy lends them its 10 server connections; a 32 MB
// bound parameter and result pass through; Prisma ORM (generated client, @prisma/adapter-pg)
// runs queries, many at once, and interactive transactions through it, with unnamed and with
// named prepared statements.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { createManagementApiClient } from '@prisma/management-api-sdk';
import pg from 'pg';
import { PrismaPg } from '@prisma/adapter-pg';
import { build } from 'esbuild';

import { Server, START_TIMEOUT_MS, STOP_TIMEOUT_MS } from './support.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));

// Generates the Prisma client of prisma/schema.prisma (the `prisma-client` generator writes
// TypeScript) and bundles it to ESM for Node 20. `prisma generate` does not run the schema
// engine, but the CLI insists on having one and would download it from binaries.prisma.sh,
// which this machine cannot reach: a stub stands in for it.
async function prismaClient() {
  const stub = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pgfleet-prisma-')), 'schema-engine');
  fs.writeFileSync(stub, '#!/bin/sh\nexit 1\n', { mode: 0o755 });
  execFileSync(path.join(HERE, 'node_modules/.bin/prisma'), ['generate', '--schema', path.join(HERE, 'prisma/schema.prisma')], {
    cwd: HERE,
    env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: stub, CHECKPOINT_DISABLE: '1', PRISMA_HIDE_UPDATE_MESSAGE: '1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const out = path.join(HERE, '.prisma-generated/client.mjs');
  await build({ entryPoints: [path.join(HERE, '.prisma-generated/client.ts')], bundle: true, platform: 'node', format: 'esm', outfile: out, packages: 'external', logLevel: 'warning' });
  return import(out);
}

function pgConfig(cs, extra = {}) {
  const u = new URL(cs);
  return {
    host: u.hostname,
    port: Number(u.port),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: u.pathname.slice(1),
    ssl: { rejectUnauthorized: false },
    connectionTimeoutMillis: 15_000,
    ...extra,
  };
}

describe('pooled endpoint with node pg', { timeout: 5 * 60_000 }, () => {
  let server;
  let client;
  let conn;

  before(async () => {
    server = new Server({ name: 'pooler', tokenPrefix: 'pgfleet_pooler_test_' });
    const base = await server.start();
    client = createManagementApiClient({ baseUrl: base, token: server.token });
    const project = await client.POST('/v1/projects', { body: { name: 'pooled', region: 'us-east-1' } });
    assert.equal(project.response.status, 201, JSON.stringify(project.error));
    const dbId = project.data.data.database.id;
    for (;;) {
      const d = await client.GET('/v1/databases/{databaseId}', { params: { path: { databaseId: dbId } } });
      if (d.data.data.status === 'ready') break;
      await new Promise((r) => setTimeout(r, 300));
    }
    const created = await client.POST('/v1/databases/{databaseId}/connections', {
      params: { path: { databaseId: dbId } },
      body: { name: 'node-pooled' },
    });
    assert.equal(created.response.status, 200, JSON.stringify(created.error));
    conn = created.data.data;
  }, { timeout: START_TIMEOUT_MS + 30_000 });

  after(async () => {
    try {
      if (server) await server.stop();
    } finally {
      server?.cleanup();
    }
  }, { timeout: STOP_TIMEOUT_MS + 10_000 });

  it('endpoints.pooled is filled in, on another port than direct', () => {
    const { direct, pooled } = conn.endpoints;
    assert.ok(pooled, 'pooled endpoint present');
    assert.equal(typeof pooled.connectionString, 'string');
    assert.notEqual(pooled.port, direct.port);
    const u = new URL(pooled.connectionString);
    assert.equal(Number(u.port), pooled.port);
    assert.equal(u.searchParams.get('sslmode'), 'require');
  });

  it('30 pooled clients run named prepared statements in and out of transactions', async () => {
    const pool = new pg.Pool(pgConfig(conn.endpoints.pooled.connectionString, { max: 30 }));
    pool.on('error', () => {});
    try {
      await pool.query('create table items (id int primary key, owner int not null, n int not null)');
      const insert = { name: 'insert-item', text: 'insert into items (id, owner, n) values ($1, $2, $3)' };
      const count = { name: 'count-owner', text: 'select count(*)::int as c, coalesce(sum(n), 0)::int as s from items where owner = $1' };
      const workers = Array.from({ length: 30 }, async (_, w) => {
        const c = await pool.connect();
        try {
          for (let i = 0; i < 10; i++) {
            await c.query({ ...insert, values: [w * 1000 + i, w, i] });
          }
          // A transaction: its statements stay on one server connection.
          await c.query('begin');
          const pid1 = (await c.query('select pg_backend_pid() as p')).rows[0].p;
          await c.query({ ...insert, values: [w * 1000 + 99, w, 100] });
          const inside = await c.query({ ...count, values: [w] });
          const pid2 = (await c.query('select pg_backend_pid() as p')).rows[0].p;
          assert.equal(pid1, pid2, 'one server connection per transaction');
          assert.equal(inside.rows[0].c, 11);
          await c.query('rollback');
          const after = await c.query({ ...count, values: [w] });
          assert.deepEqual(after.rows[0], { c: 10, s: 45 });
          // An error inside a prepared statement's batch does not break later uses.
          await assert.rejects(c.query({ ...insert, values: [w * 1000, w, 0] }), /duplicate key/);
          const again = await c.query({ ...count, values: [w] });
          assert.equal(again.rows[0].c, 10);
        } finally {
          c.release();
        }
      });
      await Promise.all(workers);
      const total = await pool.query('select count(*)::int as n from items');
      assert.equal(total.rows[0].n, 300);
      // The server saw at most the pool size of this role's sessions.
      const direct = new pg.Client(pgConfig(conn.endpoints.direct.connectionString));
      await direct.connect();
      try {
        const r = await direct.query(
          "select count(*)::int as n from pg_stat_activity where usename = session_user and pid <> pg_backend_pid()",
        );
        assert.ok(r.rows[0].n >= 1 && r.rows[0].n <= 10, `server connections: ${r.rows[0].n}`);
      } finally {
        await direct.end();
      }
    } finally {
      await pool.end();
    }
  });

  it('channel binding (SCRAM-SHA-256-PLUS) works with enableChannelBinding', async () => {
    const c = new pg.Client({ ...pgConfig(conn.endpoints.pooled.connectionString), enableChannelBinding: true });
    await c.connect();
    try {
      const r = await c.query('select 1 as one');
      assert.equal(r.rows[0].one, 1);
    } finally {
      await c.end();
    }
  });

  it('a 32 MB parameter of a named statement goes through and comes back', async () => {
    const c = new pg.Client(pgConfig(conn.endpoints.pooled.connectionString));
    await c.connect();
    try {
      const echo = { name: 'echo-bytes', text: 'select $1::bytea as b, md5($1::bytea) as h' };
      const big = Buffer.alloc(32 << 20);
      for (let i = 0; i < big.length; i++) big[i] = i % 251;
      const r = await c.query({ ...echo, values: [big] });
      assert.equal(r.rows[0].b.length, big.length);
      assert.ok(r.rows[0].b.equals(big), 'the value came back intact');
      const small = await c.query({ ...echo, values: [Buffer.from('abc')] });
      assert.equal(small.rows[0].h, '900150983cd24fb0d6963f7d28e17f72');
    } finally {
      await c.end();
    }
  });

  it('a statement prepared in a batch that then failed can be prepared again', async () => {
    // The Parse succeeds and the Bind fails, so the server keeps the statement while the
    // proxy cannot know it did: preparing the same text again (here under another client-side
    // name, so the proxy's name is the same) must not fail with 42P05 "already exists".
    const c = new pg.Client(pgConfig(conn.endpoints.pooled.connectionString));
    await c.connect();
    try {
      const text = 'select $1::int + 1 as v';
      await assert.rejects(c.query({ name: 'first', text, values: ['not a number'] }), (e) => e.code === '22P02');
      const r = await c.query({ name: 'second', text, values: [41] });
      assert.equal(r.rows[0].v, 42);
      const again = await c.query({ name: 'first', text, values: [1] });
      assert.equal(again.rows[0].v, 2);
    } finally {
      await c.end();
    }
  });

  it('Prisma ORM (prisma-client generator, @prisma/adapter-pg) works through the pool', async () => {
    const { PrismaClient } = await prismaClient();
    const adapter = new PrismaPg(pgConfig(conn.endpoints.pooled.connectionString, { max: 8 }));
    const prisma = new PrismaClient({ adapter });
    try {
      await prisma.$executeRawUnsafe('create table "Item" (id serial primary key, name text not null, n int not null)');
      const made = await prisma.item.createMany({ data: Array.from({ length: 20 }, (_, i) => ({ name: `item-${i}`, n: i })) });
      assert.equal(made.count, 20);
      const big = await prisma.item.findMany({ where: { n: { gte: 15 } }, orderBy: { n: 'asc' }, select: { name: true, n: true } });
      assert.deepEqual(big.map((i) => i.n), [15, 16, 17, 18, 19]);
      // Many queries at once over the adapter's pool (8 clients of the proxy).
      const counts = await Promise.all(Array.from({ length: 40 }, (_, i) => prisma.item.count({ where: { n: { lt: i % 20 } } })));
      assert.deepEqual(counts, Array.from({ length: 40 }, (_, i) => i % 20));
      // An interactive transaction keeps one server connection until it ends; a rollback
      // undoes it.
      await assert.rejects(
        prisma.$transaction(async (tx) => {
          await tx.item.updateMany({ data: { n: 100 } });
          assert.equal(await tx.item.count({ where: { n: 100 } }), 20);
          throw new Error('roll back');
        }),
        /roll back/,
      );
      assert.equal(await prisma.item.count({ where: { n: 100 } }), 0);
      const renamed = await prisma.$transaction(async (tx) => {
        const first = await tx.item.findFirstOrThrow({ orderBy: { id: 'asc' } });
        return tx.item.update({ where: { id: first.id }, data: { name: 'renamed' } });
      });
      assert.equal((await prisma.item.findUnique({ where: { id: renamed.id } })).name, 'renamed');
      // A unique violation is Prisma's P2002.
      await assert.rejects(prisma.item.create({ data: { id: renamed.id, name: 'dup', n: 0 } }), (e) => e.code === 'P2002');
    } finally {
      await prisma.$disconnect();
    }
    // With named prepared statements (the adapter's statementNameGenerator): each client
    // prepares a statement once and the proxy re-prepares it on whichever server connection
    // runs it.
    const named = new PrismaClient({
      adapter: new PrismaPg(pgConfig(conn.endpoints.pooled.connectionString, { max: 8 }), {
        statementNameGenerator: (q) => `prisma_${createHash('sha256').update(q.sql).digest('hex').slice(0, 16)}`,
      }),
    });
    try {
      for (let round = 0; round < 3; round++) {
        const counts = await Promise.all(Array.from({ length: 40 }, (_, i) => named.item.count({ where: { n: { lt: i % 20 } } })));
        assert.deepEqual(counts, Array.from({ length: 40 }, (_, i) => i % 20));
      }
      const n = await named.$transaction(async (tx) => {
        await tx.item.updateMany({ where: { n: { lt: 5 } }, data: { n: { increment: 100 } } });
        return tx.item.count({ where: { n: { gte: 100 } } });
      });
      assert.equal(n, 5);
      assert.equal(await named.item.count({ where: { n: { gte: 100 } } }), 5);
    } finally {
      await named.$disconnect();
    }
  });

  it('a wrong password gets 28P01 from the pooled endpoint', async () => {
    const cfg = pgConfig(conn.endpoints.pooled.connectionString);
    const c = new pg.Client({ ...cfg, password: 'wrong' });
    c.on('error', () => {});
    await assert.rejects(c.connect(), (e) => e.code === '28P01');
  });
});
