// The unmodified `create-db` CLI (npm, 1.2.1) against a real `pgfleet serve` with claimable
// databases enabled and a short TTL: the CLI creates databases that psql and node pg reach
// (direct, and pooled through pgfleet's pooler from the create response the CLI reads), the
// reaper deletes an unclaimed one once its TTL passed, and a claim in headless Chromium (sign
// in, choose a workspace, confirm) moves another into the admin's workspace, where it outlives
// its TTL.
//
//   cd tests/node && PGFLEET_BIN=../../target/debug/pgfleet node --test --test-concurrency=1 ./create-db.test.mjs

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import pg from 'pg';

import { Server, checkChromium, launchChromium, screenshot } from './support.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.join(HERE, 'node_modules', '.bin', 'create-db');
const PSQL = process.env.PSQL || '/usr/lib/postgresql/15/bin/psql';
/** The server's TTL of unclaimed databases (the CLI's own shortest is 30 minutes). */
const TTL_SECS = 40;
const WAIT_MS = 180_000;

/** Waits until `check` resolves truthy (polling), or fails with `what`. */
async function eventually(what, check, limitMs = WAIT_MS) {
  const end = Date.now() + limitMs;
  let last;
  while (Date.now() < end) {
    try {
      const r = await check();
      if (r) return r;
    } catch (e) {
      last = e;
    }
    await sleep(500);
  }
  throw new Error(`not within ${limitMs / 1000} s: ${what}${last ? ` (last error: ${last.message})` : ''}`);
}

function run(file, args, env) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { env, timeout: 60_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(file)} ${args.join(' ')} failed: ${err.message}\nstdout: ${stdout}\nstderr: ${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** One query through `connectionString` with node pg. */
async function queryOnce(connectionString, sql) {
  const url = new URL(connectionString);
  url.searchParams.delete('sslmode');
  const client = new pg.Client({ connectionString: url.toString(), ssl: { rejectUnauthorized: false }, connectionTimeoutMillis: 20_000 });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end().catch(() => {});
  }
}

describe('npx create-db against pgfleet', { timeout: 10 * 60_000 }, () => {
  const server = new Server({
    name: 'createdb',
    tokenPrefix: 'pgfst_createdb_test_',
    env: {
      PGFLEET_CLAIMABLE__ENABLED: 'true',
      PGFLEET_CLAIMABLE__TTL_SECS: String(TTL_SECS),
      PGFLEET_CLAIMABLE__REAP_INTERVAL_SECS: '1',
      PGFLEET_CLAIMABLE__PER_CLIENT_PER_HOUR: '20',
    },
  });
  let boot;
  let meta;
  let cliEnv;
  let browser;
  let page;

  before(async () => {
    checkChromium();
    await server.start();
    boot = server.bootstrap(['admin_email', 'admin_password', 'workspace_id', 'service_token']);
    const { port } = JSON.parse(fs.readFileSync(path.join(server.dir, 'cluster.json'), 'utf8'));
    meta = new pg.Client({ host: path.join(server.dir, 'run'), port, user: 'postgres', database: 'pgfleet' });
    await meta.connect();
    // The CLI's own environment: its two base URLs, and nothing of the server's.
    cliEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PGFLEET_')));
    cliEnv.CREATE_DB_WORKER_URL = `${server.base}/create-db`;
    cliEnv.CLAIM_DB_WORKER_URL = `${server.base}/claim-db`;
    browser = await launchChromium();
    page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(60_000);
  });

  after(async () => {
    await meta?.end().catch(() => {});
    await browser?.close().catch(() => {});
    await server.stop();
  });

  /** `create-db --region us-east-1 --json`, parsed. */
  async function createDb() {
    const { stdout } = await run(CLI, ['--region', 'us-east-1', '--json'], cliEnv);
    const out = JSON.parse(stdout);
    assert.equal(out.success, true, stdout);
    return out;
  }

  /** The project id behind a claim token (the store keeps the token's SHA-256). */
  async function projectOf(token) {
    const hash = createHash('sha256').update(token).digest();
    const r = await meta.query('SELECT project_id FROM claimables WHERE token_hash = $1', [hash]);
    assert.equal(r.rows.length, 1, `no claimable row for ${token.slice(0, 10)}…`);
    return r.rows[0].project_id;
  }

  async function projectExists(id) {
    return (await meta.query('SELECT 1 FROM projects WHERE id = $1', [id])).rows.length === 1;
  }

  const state = {};

  it('a database the CLI created is claimed in Chromium into the chosen workspace', async () => {
    // Claimed first, well within the short TTL.
    state.claimed = await createDb();
    state.claimedCreatedAt = Date.now();
    try {
      await page.goto(state.claimed.claimUrl);
      assert.match(page.url(), /\/login\?next=/);
      await page.getByLabel('Email').fill(boot.admin_email);
      await page.getByLabel('Password').fill(boot.admin_password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Claim this database' }).waitFor();
      await screenshot(page, 'create-db-claim');
      await page.getByLabel('Workspace').selectOption(boot.workspace_id);
      await page.getByRole('button', { name: 'Claim database' }).click();
      await page.waitForURL(new RegExp(`/console/w/${boot.workspace_id}/projects/proj_`));
      await screenshot(page, 'create-db-claimed');
    } catch (e) {
      e.message += `\nscreenshot: ${await screenshot(page, 'create-db-claim-failed')}\nserver:\n${server.tail(15)}`;
      throw e;
    }
    state.claimedProject = page.url().split('/projects/')[1].split(/[?#/]/)[0];
    const res = await fetch(`${server.base}/v1/projects/${state.claimedProject}`, {
      headers: { Authorization: `Bearer ${boot.service_token}` },
    });
    assert.equal(res.status, 200);
    const { data: project } = await res.json();
    assert.equal(project.workspace.id, boot.workspace_id);

    // The link is spent.
    const again = await page.goto(state.claimed.claimUrl);
    assert.equal(again.status(), 410);
    await page.getByRole('heading', { name: 'Already claimed' }).waitFor();
  });

  it('the CLI prints working strings: psql and node pg connect (direct, and pooled from the create answer)', async () => {
    // One more through the CLI, left to the reaper.
    state.reaped = await createDb();
    for (const out of [state.reaped, state.claimed]) {
      assert.match(out.connectionString, /^postgresql:\/\//);
      assert.ok(out.claimUrl.startsWith(`${server.base}/claim-db/claim?projectID=pgfcl_`), out.claimUrl);
      assert.match(out.projectId, /^pgfcl_[A-Za-z0-9_-]{43}$/);
      assert.equal(out.region, 'us-east-1');
    }
    const { stdout } = await run(PSQL, [state.reaped.connectionString, '-Atc', 'SELECT 40 + 2'], process.env);
    assert.equal(stdout.trim(), '42');
    assert.deepEqual(await queryOnce(state.claimed.connectionString, 'SELECT 1 AS one'), [{ one: 1 }]);
    state.reapedProject = await projectOf(state.reaped.projectId);

    // The create response the CLI reads carries the pooled string too (the CLI prints only
    // the direct one): the same request as the CLI's, through pgfleet's pooler.
    const res = await fetch(`${server.base}/create-db/create`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ region: 'us-east-1', name: new Date().toISOString(), utm_source: 'create-db', source: 'cli' }),
    });
    assert.equal(res.status, 201);
    const body = await res.json();
    const conn = body.data.database.connections[0];
    assert.ok(body.data.projectId.startsWith('proj_'));
    assert.ok(conn.endpoints.direct.connectionString);
    assert.ok(conn.endpoints.pooled.connectionString, JSON.stringify(conn.endpoints));
    assert.deepEqual(await queryOnce(conn.endpoints.pooled.connectionString, 'SELECT 2 AS two'), [{ two: 2 }]);
    await run(PSQL, [conn.endpoints.pooled.connectionString, '-Atc', 'SELECT 1'], process.env);
  });

  it('the reaper deletes the unclaimed database after the TTL; the claimed one stays', async () => {
    await eventually('the unclaimed project is deleted', async () => !(await projectExists(state.reapedProject)));
    await assert.rejects(queryOnce(state.reaped.connectionString, 'SELECT 1'));
    const expired = await page.goto(state.reaped.claimUrl);
    assert.equal(expired.status(), 410);
    await page.getByRole('heading', { name: 'Expired' }).waitFor();

    // Past the claimed database's TTL (plus a few reaper rounds) it is still there and works.
    const pastTtl = state.claimedCreatedAt + TTL_SECS * 1000 + 5_000;
    await sleep(Math.max(0, pastTtl - Date.now()));
    assert.ok(await projectExists(state.claimedProject));
    assert.deepEqual(await queryOnce(state.claimed.connectionString, 'SELECT 3 AS three'), [{ three: 3 }]);
  });
});
