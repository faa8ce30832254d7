// The Node side of `bench/accelerate` (issue 18): one fixed Prisma workload through up to three
// paths in the same run, unmodified Prisma Client 7 each time:
//   direct      the postgresql:// string with @prisma/adapter-pg (the baseline)
//   pgfleet     the prisma+postgres:// string pgfleet returned (its Rust query-plan executor)
//   reference   @prisma/query-plan-executor of the same version, served over node:http in
//               THIS process in front of its own database (what Prisma runs behind Accelerate)
// Workload, one "op" each: findUnique by id, findMany with include (posts + tags), create (a
// post with a nested tag connectOrCreate), and an interactive transaction (read + update).
// Latency: one client issuing ops back to back (p50/p99 per op kind and over all ops).
// Throughput: CONCURRENCY clients at once for SECONDS, ops/s. Sides alternate who goes first in
// each of ROUNDS rounds; medians are reported. Output: a table, and JSON on the last line.
//
// Env: BENCH_DIRECT_URL (postgresql://, required), BENCH_ACCEL_URL (prisma+postgres://, the
// pgfleet side; optional), BENCH_REF_DB_URL (postgresql:// of a database for the reference side;
// optional), SECONDS (default 5), ROUNDS (default 3), CONCURRENCY (default 8), WARMUP (ops,
// default 200), BENCH_ACCEL_DB_URL (postgresql:// of the database behind BENCH_ACCEL_URL, to load
// the schema into). Each database gets schema.sql and the same seed rows first.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

import pg from 'pg';
import { PrismaPg } from '@prisma/adapter-pg';

import { prismaModule } from './generate.mjs';
import { startReferenceExecutor } from './reference.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const env = process.env;
const SECONDS = Number(env.SECONDS ?? 5);
const ROUNDS = Number(env.ROUNDS ?? 3);
const CONCURRENCY = Number(env.CONCURRENCY ?? 8);
const WARMUP = Number(env.WARMUP ?? 200);
const USERS = 200;

// node-postgres reads `sslmode=require` as verify-full; pgfleet's databases present a
// self-signed certificate, so a URL with an sslmode becomes fields with TLS unverified
// (libpq's `require`), as tests/node/pooler.test.mjs does.
function pgConfig(url, extra = {}) {
  const u = new URL(url);
  if (!u.searchParams.has('sslmode')) return { connectionString: url, ...extra };
  return {
    host: u.hostname,
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: decodeURIComponent(u.pathname.slice(1)),
    ssl: u.searchParams.get('sslmode') === 'disable' ? false : { rejectUnauthorized: false },
    ...extra,
  };
}

async function prepare(url) {
  const client = new pg.Client(pgConfig(url));
  await client.connect();
  try {
    await client.query(fs.readFileSync(path.join(HERE, 'schema.sql'), 'utf8'));
    await client.query(`INSERT INTO "User" ("externalId", email, name, "updatedAt")
      SELECT gen_random_uuid(), 'user' || i || '@bench.test', 'User ' || i, now() FROM generate_series(1, ${USERS}) i`);
    await client.query(`INSERT INTO "Post" (id, title, "authorId")
      SELECT 'seedpost' || i, 'Post ' || i, 1 + (i % ${USERS}) FROM generate_series(1, ${USERS * 3}) i`);
    await client.query(`INSERT INTO "Tag" (name) SELECT 'tag' || i FROM generate_series(1, 20) i`);
    await client.query(`INSERT INTO "_PostToTag" ("A", "B")
      SELECT 'seedpost' || i, 1 + (i % 20) FROM generate_series(1, ${USERS * 3}) i`);
  } finally {
    await client.end();
  }
}

let seq = 0;
const OPS = {
  findUnique: (db) => db.user.findUnique({ where: { id: 1 + (seq++ % USERS) } }),
  findManyInclude: (db) =>
    db.user.findMany({ where: { id: { lte: 1 + (seq++ % USERS) } }, take: 5, orderBy: { id: 'desc' }, include: { posts: { include: { tags: true } } } }),
  create: (db) => {
    const n = seq++;
    return db.post.create({
      data: { title: `bench ${n}`, author: { connect: { id: 1 + (n % USERS) } }, tags: { connectOrCreate: { where: { name: `tag${1 + (n % 20)}` }, create: { name: `tag${1 + (n % 20)}` } } } },
    });
  },
  transaction: (db) =>
    db.$transaction(async (tx) => {
      const id = 1 + (seq++ % USERS);
      const u = await tx.user.findUnique({ where: { id } });
      return tx.user.update({ where: { id }, data: { points: { increment: 1 }, name: u?.name ?? null } });
    }),
};
const KINDS = Object.keys(OPS);

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

// One client, ops back to back, the kinds in turn: per-kind and overall latencies in ms.
async function latency(db, seconds) {
  const per = Object.fromEntries(KINDS.map((k) => [k, []]));
  const end = performance.now() + seconds * 1000;
  for (let i = 0; performance.now() < end; i++) {
    const kind = KINDS[i % KINDS.length];
    const t = performance.now();
    await OPS[kind](db);
    per[kind].push(performance.now() - t);
  }
  const out = {};
  const all = [];
  for (const k of KINDS) {
    const s = per[k].sort((a, b) => a - b);
    all.push(...s);
    out[k] = { p50: quantile(s, 0.5), p99: quantile(s, 0.99) };
  }
  all.sort((a, b) => a - b);
  out.all = { p50: quantile(all, 0.5), p99: quantile(all, 0.99), n: all.length };
  return out;
}

// CONCURRENCY clients' worth of requests in flight on one PrismaClient: ops per second.
async function throughput(db, seconds) {
  let done = 0;
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, w) => {
      for (let i = w; performance.now() < end; i++) {
        await OPS[KINDS[i % KINDS.length]](db);
        done++;
      }
    }),
  );
  return done / ((performance.now() - start) / 1000);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main() {
  if (!env.BENCH_DIRECT_URL) throw new Error('BENCH_DIRECT_URL (postgresql://) is required');
  const { PrismaClient } = await prismaModule();
  const sides = [];
  await prepare(env.BENCH_DIRECT_URL);
  sides.push({ name: 'direct (adapter-pg)', db: new PrismaClient({ adapter: new PrismaPg(pgConfig(env.BENCH_DIRECT_URL, { max: CONCURRENCY })) }) });
  if (env.BENCH_ACCEL_URL) {
    if (env.BENCH_ACCEL_DB_URL) await prepare(env.BENCH_ACCEL_DB_URL);
    sides.push({ name: 'pgfleet (prisma+postgres)', db: new PrismaClient({ accelerateUrl: env.BENCH_ACCEL_URL }) });
  }
  let reference;
  if (env.BENCH_REF_DB_URL) {
    await prepare(env.BENCH_REF_DB_URL);
    // The reference's own pg pool reads sslmode=require as verify-full; no-verify is libpq's
    // require in node-postgres' terms (pgfleet's certificate is self-signed).
    reference = await startReferenceExecutor(env.BENCH_REF_DB_URL.replace('sslmode=require', 'sslmode=no-verify'));
    sides.push({ name: 'reference executor', db: new PrismaClient({ accelerateUrl: `prisma+postgres://127.0.0.1:${reference.port}/?api_key=reference` }) });
  }
  for (const side of sides) {
    await side.db.$connect();
    for (let i = 0; i < WARMUP; i++) await OPS[KINDS[i % KINDS.length]](side.db);
    side.lat = [];
    side.tput = [];
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < sides.length; i++) {
      const side = sides[(i + round) % sides.length];
      side.lat.push(await latency(side.db, SECONDS));
      side.tput.push(await throughput(side.db, SECONDS));
    }
  }
  const summary = sides.map((s) => {
    const pick = (k, q) => median(s.lat.map((l) => l[k][q]));
    const row = { side: s.name, throughput: median(s.tput) };
    for (const k of [...KINDS, 'all']) row[k] = { p50: pick(k, 'p50'), p99: pick(k, 'p99') };
    return row;
  });
  const base = summary[0];
  const f = (x) => x.toFixed(2);
  console.log(`accelerate bench: ${ROUNDS} rounds × ${SECONDS} s per side, throughput at ${CONCURRENCY} in flight`);
  for (const r of summary) {
    const kinds = KINDS.map((k) => `${k} ${f(r[k].p50)}/${f(r[k].p99)}`).join(', ');
    console.log(`${r.side}: p50 ${f(r.all.p50)} ms, p99 ${f(r.all.p99)} ms, ${r.throughput.toFixed(0)} ops/s  [p50/p99 ms: ${kinds}]`);
  }
  for (const r of summary.slice(1)) {
    console.log(
      `${r.side} / ${base.side}: p50 ${f(r.all.p50 / base.all.p50)}×, p99 ${f(r.all.p99 / base.all.p99)}×, throughput ${f(r.throughput / base.throughput)}× ` +
        `[p50 per op: ${KINDS.map((k) => `${k} ${f(r[k].p50 / base[k].p50)}×`).join(', ')}]`,
    );
  }
  const pgf = summary.find((r) => r.side.startsWith('pgfleet'));
  const ref = summary.find((r) => r.side.startsWith('reference'));
  if (pgf && ref) {
    console.log(`pgfleet / reference executor: p50 ${f(pgf.all.p50 / ref.all.p50)}×, p99 ${f(pgf.all.p99 / ref.all.p99)}×, throughput ${f(pgf.throughput / ref.throughput)}×`);
  }
  console.log(JSON.stringify(summary));
  for (const s of sides) await s.db.$disconnect();
  await reference?.stop();
}

await main();
