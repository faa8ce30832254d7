// The web console (/console) in a real headless Chromium against a real `pgfleet serve` (its own
// embedded PostgreSQL): sign in, the workspace switcher and nav, projects (create with the region
// picker, list, rename, delete with a typed name), a database's status (and deleting one), connections (the secret
// shown once with a working copy button, rotate, delete), backups (back up now, a new database
// from a backup, restore in place with a typed confirmation) and service tokens (shown once,
// deleted) and authorized integrations. Every page gets basic accessibility checks (every input, select and textarea has a
// label; every button has a name; one h1; html lang) and a screenshot in <repo>/tests-output/
// (git-ignored); usage charts (SVG) for a chosen range; the keyboard focus order of the projects page is checked; no CSP violation nor
// script error may be reported by the browser.
// Also: a database's live status (a real restore, held back by the reconciler's advisory lock
// while the page loads: the badge turns from "recovering" to "ready" without a reload), OAuth apps inside the console (create confidential
// and public, secret shown once, edit, delete), members (an admin creates a user with a generated
// password and adds/removes users; the new user signs in and sees only their workspace; a plain
// member is told they cannot change members) and pagination of the projects list beyond 100
// (101 projects made through the API, then the "Next page" link).
// Newcomer edges: a new project's default connection strings shown once with a
// direct/pooled/prisma+postgres toggle (direct and pooled connect; the prisma+postgres:// string
// is copied), relative times with the exact time on hover, chart axes and units,
// rotate and token delete refused by the browser until their "sure" box is ticked, a backup's
// kind and its status turning to completed without a reload, "New database from it" proposing
// <db>-restore-<date>, and every page the tests visit at 390 px wide without horizontal scroll
// (screenshots in the OS temp dir, pgfleet-console-390-*.png).
//
// Run (as scripts/test does; needs /usr/bin/chromium, which `scripts/setup --test` installs):
//   cd tests/node && PGFLEET_BIN=$PWD/../../target/debug/pgfleet \
//     node --test --test-concurrency=1 ./console.test.mjs
// Knob: CHROMIUM_PATH (default /usr/bin/chromium).

import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import pg from 'pg';

import { Server, checkChromium, launchChromium, screenshot } from './support.mjs';

const BROWSER_TIMEOUT_MS = 20_000;

/** Basic accessibility of the current page; returns the problems found. */
async function a11yProblems(page) {
  return page.evaluate(() => {
    const problems = [];
    const visible = (el) => el.type !== 'hidden' && !el.hidden;
    for (const el of document.querySelectorAll('input, select, textarea')) {
      if (!visible(el)) continue;
      const named = (el.labels && el.labels.length > 0 && [...el.labels].some((l) => l.textContent.trim())) || el.getAttribute('aria-label');
      if (!named) problems.push(`unlabelled ${el.tagName.toLowerCase()} name=${el.name}`);
    }
    for (const b of document.querySelectorAll('button')) {
      if (!(b.textContent.trim() || b.getAttribute('aria-label'))) problems.push(`button without a name: ${b.outerHTML}`);
    }
    const h1 = document.querySelectorAll('h1').length;
    if (h1 !== 1) problems.push(`${h1} h1 elements`);
    if (!document.documentElement.lang) problems.push('html has no lang');
    if (!document.title.trim() || document.title.includes('<')) problems.push(`bad title: ${document.title.slice(0, 80)}`);
    return problems;
  });
}

describe('the web console in headless Chromium', { timeout: 8 * 60_000 }, () => {
  const server = new Server({ name: 'console', tokenPrefix: 'pgfst_console_test_' });
  let browser;
  let page;
  let boot;
  let meta; // the metadata store (embedded cluster, local socket, trust auth)
  let context;
  const reported = [];
  const state = {};

  before(async () => {
    checkChromium();
    await server.start();
    boot = server.bootstrap();
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.base });
    page = await context.newPage();
    page.setDefaultTimeout(BROWSER_TIMEOUT_MS);
    page.on('console', (m) => {
      // A page answered with an error status on purpose (a refused form) is not a problem.
      if (m.text().startsWith('Failed to load resource') && m.location().url === page.url()) return;
      if (['error', 'warning'].includes(m.type())) reported.push(`console ${m.type()}: ${m.text()} (${m.location().url})`);
    });
    page.on('pageerror', (e) => reported.push(`page error: ${e.message}`));
    const { port } = JSON.parse(fs.readFileSync(path.join(server.dir, 'cluster.json'), 'utf8'));
    meta = new pg.Client({ host: path.join(server.dir, 'run'), port, user: 'postgres', database: 'pgfleet' });
    await meta.connect();
  });

  after(async () => {
    await meta?.end().catch(() => {});
    await browser?.close().catch(() => {});
    await server.stop();
  });

  /** Runs browser steps; on failure adds a screenshot and what the browser reported. */
  async function step(name, fn) {
    try {
      return await fn();
    } catch (e) {
      const shot = page ? await screenshot(page, `console-failed-${name}`) : '(no page)';
      e.message += `\nscreenshot: ${shot}\nbrowser reported:\n${reported.slice(-15).join('\n') || '(nothing)'}\nserver:\n${server.tail(15)}`;
      throw e;
    }
  }

  /** The page is accessible enough, nothing was reported, a screenshot is saved, and it fits
   *  a 390 px wide phone screen (every page the tests visit is checked narrow too). */
  async function checkPage(name) {
    assert.deepEqual(await a11yProblems(page), [], `accessibility of ${name}`);
    assert.deepEqual(reported, [], 'the browser reported problems');
    await screenshot(page, `console-${name}`);
    await fitsNarrow(name);
  }

  /** At 390 px wide the page has no horizontal scroll (a screenshot of it is saved). */
  async function fitsNarrow(name) {
    const size = page.viewportSize();
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      const file = path.join(os.tmpdir(), `pgfleet-console-390-${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      // What sticks out, for the failure message.
      const wide = await page.evaluate(() => [...document.querySelectorAll('body *')]
        .filter((el) => el.getBoundingClientRect().right > 390)
        .slice(0, 5)
        .map((el) => `${el.tagName.toLowerCase()}${el.className ? '.' + el.className : ''}`));
      assert.ok(width <= 390, `${name}: scrollWidth ${width} > 390 (${wide.join(', ')}; ${file})`);
    } finally {
      await page.setViewportSize(size);
    }
  }

  /** Tabs through the page from the top; `ids` must be reached, in this order. */
  async function checkFocusOrder(ids, presses = 40) {
    const order = [];
    await page.locator('body').focus();
    for (let i = 0; i < presses; i++) {
      await page.keyboard.press('Tab');
      order.push(await page.evaluate(() => {
        const el = document.activeElement;
        return el ? (el.id || el.getAttribute('href') || el.textContent.trim()) : '';
      }));
    }
    let last = -1;
    for (const x of ids) {
      const at = order.indexOf(x, last + 1);
      assert.ok(at > last, `${x} is reachable with Tab after ${ids[ids.indexOf(x) - 1] ?? 'the top'}: ${order.join(' | ')}`);
      last = at;
    }
  }

  /** The link of the console's own nav (the page header has an "OAuth apps" link too). */
  function navLink(name) {
    return page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name, exact: true });
  }

  /** The text of the secret shown once. */
  async function secret() {
    return (await page.getByTestId('secret').innerText()).trim();
  }

  it('signs in and lands on the projects of the workspace', async () => {
    await step('sign-in', async () => {
      await page.goto(`${server.base}/console`);
      assert.match(page.url(), /\/login\?next=%2Fconsole$/);
      await checkPage('login');
      await page.getByLabel('Email').fill(boot.admin_email);
      await page.getByLabel('Password').fill(boot.admin_password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL(`${server.base}/console/w/${boot.workspace_id}/projects`);
      await page.getByRole('heading', { name: 'Projects', level: 1 }).waitFor();
      assert.equal(await page.getByLabel('Workspace').inputValue(), boot.workspace_id);
      await checkPage('projects-empty');
    });
  });

  it('the keyboard reaches the switcher, the nav and the create form in order', async () => {
    await step('focus-order', async () => {
      const order = [];
      await page.locator('body').focus();
      for (let i = 0; i < 25; i++) {
        await page.keyboard.press('Tab');
        order.push(await page.evaluate(() => {
          const el = document.activeElement;
          return el ? (el.id || el.getAttribute('href') || el.textContent.trim()) : '';
        }));
      }
      const at = (x) => order.indexOf(x);
      for (const x of ['workspace_switch', `/console/w/${boot.workspace_id}/tokens`, 'project_name', 'project_region', 'Create project']) {
        assert.ok(at(x) >= 0, `${x} is reachable with Tab: ${order.join(' | ')}`);
      }
      assert.ok(at('workspace_switch') < at('project_name') && at('project_name') < at('project_region') && at('project_region') < at('Create project'), order.join(' | '));
    });
  });

  it('creates a project with the region picker and sees its default database ready', async () => {
    await step('project-create', async () => {
      await page.getByLabel('Name').fill('shop');
      const region = page.getByLabel(/^Region/);
      assert.equal(await region.inputValue(), 'us-east-1');
      await page.getByRole('button', { name: 'Create project' }).click();
      await page.getByRole('heading', { name: 'shop', level: 1 }).waitFor();
      state.projectUrl = page.url();
      assert.equal(await page.getByTestId('database-status').first().innerText(), 'ready');
      // The default connection's strings, once: direct shown, pooled behind the toggle.
      const direct = await secret();
      assert.match(direct, /^postgres(ql)?:\/\//);
      await page.getByText('shown only once').waitFor();
      assert.equal(await page.getByTestId('secret-pooled').isVisible(), false);
      await page.getByLabel('Pooled', { exact: true }).check();
      assert.equal(await page.getByTestId('secret').isVisible(), false);
      const pooled = (await page.getByTestId('secret-pooled').innerText()).trim();
      assert.match(pooled, /^postgres(ql)?:\/\//);
      assert.notEqual(pooled, direct);
      await page.getByRole('button', { name: 'Copy pooled' }).click();
      await page.getByRole('button', { name: 'Copied' }).waitFor();
      assert.equal((await page.evaluate(() => navigator.clipboard.readText())).trim(), pooled);
      await checkPage('project-created-secret');
      // The prisma+postgres:// string (Prisma Client's accelerateUrl), the third choice ("Prisma").
      assert.equal(await page.getByTestId('secret-accelerate').isVisible(), false);
      await page.getByLabel('Prisma', { exact: true }).check();
      assert.equal(await page.getByTestId('secret-pooled').isVisible(), false);
      const accel = (await page.getByTestId('secret-accelerate').innerText()).trim();
      assert.match(accel, /^prisma\+postgres:\/\/[^/]+\/\?api_key=\S+$/);
      await page.getByText('new PrismaClient({ accelerateUrl })').waitFor();
      await page.getByRole('button', { name: 'Copy Prisma' }).click();
      await page.getByRole('button', { name: 'Copied' }).waitFor();
      assert.equal((await page.evaluate(() => navigator.clipboard.readText())).trim(), accel);
      await checkPage('project-created-secret-accelerate');
      await page.getByLabel('Direct', { exact: true }).check();
      assert.equal(await page.getByTestId('secret').isVisible(), true);
      for (const url of [direct, pooled]) {
        const u = new URL(url);
        const c = new pg.Client({
          host: u.hostname, port: Number(u.port), user: decodeURIComponent(u.username),
          password: decodeURIComponent(u.password), database: u.pathname.slice(1),
          ssl: { rejectUnauthorized: false }, connectionTimeoutMillis: 15_000,
        });
        await c.connect();
        await c.query('select 1');
        await c.end();
      }
      await page.reload();
      assert.equal(await page.getByTestId('secret').count(), 0, 'shown only once');
      assert.equal(await page.getByTestId('secret-accelerate').count(), 0, 'shown only once');
      // One timestamp format: relative, the exact time on hover.
      const when = page.locator('td time').first();
      assert.match(await when.getAttribute('title'), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
      assert.ok(await when.getAttribute('datetime'));
      assert.equal((await when.innerText()).trim(), 'just now');
      await checkPage('project');
      await page.getByRole('link', { name: 'Projects', exact: true }).click();
      await page.getByRole('link', { name: 'shop', exact: true }).waitFor();
      await checkPage('projects');
      await page.getByRole('link', { name: 'shop', exact: true }).click();
      await page.getByTestId('database-link').first().click();
      await page.getByRole('heading', { name: 'Connections' }).waitFor();
      state.dbUrl = page.url();
      state.dbName = (await page.locator('h1').innerText()).replace(/\s*ready\s*$/, '').trim();
      await checkPage('database');
    });
  });

  it('charts usage per day for a chosen range as SVG', async () => {
    await step('usage', async () => {
      await page.getByTestId('chart-operations').waitFor();
      await page.getByTestId('chart-storage').waitFor();
      assert.equal(await page.locator('svg[data-testid="chart-operations"] rect').count(), 7);
      // Axes and units.
      assert.equal(await page.locator('svg[data-testid="chart-operations"] line.axis').count(), 2);
      assert.match(await page.getByTestId('chart-operations').textContent(), /0 ops[\s\S]*operations per day/);
      assert.match(await page.getByTestId('chart-storage').textContent(), /0 B[\s\S]*storage used/);
      await page.getByLabel('From', { exact: true }).fill('2025-01-01');
      await page.getByLabel('To', { exact: true }).fill('2025-01-10');
      await page.getByRole('button', { name: 'Show' }).click();
      await page.waitForURL(/from=2025-01-01&to=2025-01-10$/);
      assert.equal(await page.locator('svg[data-testid="chart-storage"] rect').count(), 10);
      await checkPage('database-usage');
      await page.goto(state.dbUrl);
    });
  });

  it('creates a connection: the secret is shown once and the copy button copies it', async () => {
    await step('connection', async () => {
      await page.getByLabel('New connection name').fill('app');
      await page.getByRole('button', { name: 'Create connection' }).click();
      const first = await secret();
      assert.match(first, /^postgres(ql)?:\/\//);
      const copy = page.getByRole('button', { name: 'Copy' });
      await copy.click();
      await page.getByRole('button', { name: 'Copied' }).waitFor();
      assert.equal((await page.evaluate(() => navigator.clipboard.readText())).trim(), first);
      await checkPage('database-secret');
      // Beside it, the prisma+postgres:// string (one click away), also shown once.
      const firstAccel = (await page.getByTestId('secret-accelerate').textContent()).trim();
      assert.match(firstAccel, /^prisma\+postgres:\/\//);
      await page.reload();
      assert.equal(await page.getByTestId('secret').count(), 0, 'shown only once');
      assert.equal(await page.getByTestId('secret-accelerate').count(), 0, 'shown only once');
      // The connection's row lists the accelerate endpoint (host:port) where pooled is shown.
      const endpoint = (await page.getByTestId('connection-accelerate').last().innerText()).trim();
      assert.match(endpoint, /^[^:]+:\d+$/);
      assert.ok(firstAccel.includes(`//${endpoint}/`), `${firstAccel} vs ${endpoint}`);
      // Rotate asks first: without its box ticked the browser does not send the form.
      await page.getByRole('button', { name: 'Rotate the password of app' }).click();
      await sleep(500);
      assert.equal(await page.getByTestId('secret').count(), 0, 'rotated without confirmation');
      await page.getByLabel('Confirm: rotate the password of app').check();
      await page.getByRole('button', { name: 'Rotate the password of app' }).click();
      const rotated = await secret();
      assert.notEqual(rotated, first);
      const rotatedAccel = (await page.getByTestId('secret-accelerate').textContent()).trim();
      assert.notEqual(rotatedAccel, firstAccel, 'a new API key');
      await page.getByRole('button', { name: 'Delete app' }).click();
      await sleep(300);
      assert.equal(await page.getByRole('button', { name: 'Delete app' }).count(), 1, 'deleted without confirmation');
      await page.getByLabel('Confirm: delete app').check();
      await page.getByRole('button', { name: 'Delete app' }).click();
      await page.getByRole('heading', { name: 'Connections' }).waitFor();
      assert.equal(await page.getByRole('button', { name: 'Delete app' }).count(), 0);
    });
  });

  it('backs up now, creates a database from the backup and restores in place', async () => {
    await step('backups', async () => {
      await page.getByRole('button', { name: 'Back up now' }).click();
      await page.getByTestId('backup-status').first().waitFor();
      assert.equal((await page.getByTestId('backup-kind').first().innerText()).trim(), 'on demand');
      // Its status turns to completed on the page, without a reload.
      await page.evaluate(() => { window.pgfleetSamePage = true; });
      await page.waitForFunction(
        () => document.querySelector('[data-testid="backup-status"]')?.textContent.trim() === 'completed',
        null,
        { timeout: 60_000 },
      );
      assert.equal(await page.evaluate(() => window.pgfleetSamePage), true, 'the page was not reloaded');
      await page.reload();
      await checkPage('database-backups');
      // A wrong confirmation is refused on the page.
      await page.getByLabel(/to restore in place/).first().fill('not the name');
      await page.getByRole('button', { name: 'Restore' }).first().click();
      await page.getByRole('alert').waitFor();
      await page.getByLabel(/to restore in place/).first().fill(state.dbName);
      await page.getByRole('button', { name: 'Restore' }).first().click();
      await page.getByRole('heading', { name: 'Connections' }).waitFor();
      assert.equal(await page.getByRole('alert').count(), 0, await page.locator('main').innerText());
      // "New database from it" asks for a name: <db>-restore-<date> by default.
      const today = new Date().toISOString().slice(0, 10);
      const newName = page.getByLabel('Name of the new database').first();
      assert.equal(await newName.inputValue(), `${state.dbName}-restore-${today}`);
      await page.getByRole('button', { name: 'New database from it' }).first().click();
      await page.getByRole('heading', { name: 'Connections' }).waitFor();
      assert.notEqual(page.url(), state.dbUrl);
      assert.match(await page.locator('h1').innerText(), new RegExp(`^${state.dbName}-restore-${today}`));
      await page.getByTestId('secret').waitFor();
      await checkPage('database-from-backup');
      // Not the default database: it can be deleted with its name typed.
      const name = (await page.locator('h1').innerText()).replace(/\s*(ready|provisioning|recovering|failure)\s*$/, '').trim();
      const id = page.url().split('/').pop();
      await page.getByLabel(/to confirm/).fill(name);
      await page.getByRole('button', { name: 'Delete database' }).click();
      await page.waitForURL(state.projectUrl);
      assert.equal(await page.locator(`a[href$="/databases/${id}"]`).count(), 0);
    });
  });

  it('a database status turns from recovering to ready on the page without a reload', async () => {
    await step('live-status', async () => {
      // A real restore, held back while the page loads: the reconciler runs an operation
      // only under its resource's advisory lock (pg_try_advisory_lock(0x70666c74,
      // hashtext(id)) on the metadata store), which this test takes first.
      const db = state.dbUrl.split('/').pop();
      const lock = [1885760628, db];
      await meta.query('SELECT pg_advisory_lock($1, hashtext($2))', lock);
      let locked = true;
      try {
        await page.goto(state.dbUrl);
        await page.getByLabel(/to restore in place/).first().fill(state.dbName);
        await page.getByRole('button', { name: 'Restore' }).first().click();
        await page.getByRole('heading', { name: 'Connections' }).waitFor();
        await page.goto(state.projectUrl);
        const badge = page.locator(`[data-status-url$="/databases/${db}/status"]`);
        assert.equal((await badge.innerText()).trim(), 'recovering');
        await page.evaluate(() => { window.pgfleetSamePage = true; });
        await screenshot(page, 'console-project-recovering');
        await meta.query('SELECT pg_advisory_unlock($1, hashtext($2))', lock);
        locked = false;
      } finally {
        if (locked) await meta.query('SELECT pg_advisory_unlock($1, hashtext($2))', lock);
      }
      await page.waitForFunction(
        (id) => document.querySelector(`[data-status-url$="/databases/${id}/status"]`)?.textContent.trim() === 'ready',
        db,
        { timeout: 15_000 },
      );
      assert.equal(await page.evaluate(() => window.pgfleetSamePage), true, 'the page was not reloaded');
      await checkPage('project-live-status');
    });
  });

  it('renames a project, refuses a wrong typed name and deletes it with the right one', async () => {
    await step('project-rename-delete', async () => {
      await page.goto(`${server.base}/console/w/${boot.workspace_id}/projects`);
      await page.getByLabel('Name').fill('scratch');
      await page.getByRole('button', { name: 'Create project' }).click();
      await page.getByRole('heading', { name: 'scratch', level: 1 }).waitFor();
      await page.getByLabel('New name').fill('scratch2');
      await page.getByRole('button', { name: 'Rename project' }).click();
      await page.getByRole('heading', { name: 'scratch2', level: 1 }).waitFor();
      await page.getByLabel(/to confirm/).fill('scratch');
      await page.getByRole('button', { name: 'Delete project' }).click();
      await page.getByRole('alert').waitFor();
      await checkPage('project-delete-refused');
      await page.getByLabel(/to confirm/).fill('scratch2');
      await page.getByRole('button', { name: 'Delete project' }).click();
      await page.waitForURL(`${server.base}/console/w/${boot.workspace_id}/projects`);
      assert.equal(await page.getByRole('link', { name: 'scratch2' }).count(), 0);
    });
  });

  it('creates a service token (shown once, it works), lists and deletes it', async () => {
    await step('tokens', async () => {
      await page.getByRole('link', { name: 'Service tokens', exact: true }).click();
      await page.getByRole('heading', { name: 'Service tokens', level: 1 }).waitFor();
      await page.getByLabel('Name').fill('ci-browser');
      await page.getByRole('button', { name: 'Create token' }).click();
      const token = await secret();
      const me = await fetch(`${server.base}/v1/me`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(me.status, 200);
      await checkPage('tokens');
      await page.reload();
      assert.equal(await page.getByTestId('secret').count(), 0, 'shown only once');
      await page.getByRole('button', { name: 'Delete ci-browser' }).click();
      await sleep(300);
      assert.equal(await page.getByRole('button', { name: 'Delete ci-browser' }).count(), 1, 'deleted without confirmation');
      await page.getByLabel('Confirm: delete ci-browser').check();
      await page.getByRole('button', { name: 'Delete ci-browser' }).click();
      await page.getByRole('heading', { name: 'Service tokens', level: 1 }).waitFor();
      assert.equal(await page.getByRole('button', { name: 'Delete ci-browser' }).count(), 0);
      const gone = await fetch(`${server.base}/v1/me`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(gone.status, 401);
    });
  });

  it('fits a 390 px wide phone screen: no horizontal scroll, ids kept on one line', async () => {
    await step('narrow', async () => {
      await page.setViewportSize({ width: 390, height: 844 });
      try {
        const pages = {
          projects: `${server.base}/console/w/${boot.workspace_id}/projects`,
          project: state.projectUrl,
          database: state.dbUrl,
          tokens: `${server.base}/console/w/${boot.workspace_id}/tokens`,
        };
        for (const [name, url] of Object.entries(pages)) {
          await page.goto(url);
          await page.locator('h1').waitFor();
          const width = await page.evaluate(() => document.documentElement.scrollWidth);
          assert.ok(width <= 390, `${name}: scrollWidth ${width} > 390`);
          const file = path.join(os.tmpdir(), `pgfleet-console-390-${name}.png`);
          await page.screenshot({ path: file, fullPage: true });
          assert.ok(fs.statSync(file).size > 0, file);
        }
        // An id in a table keeps one line (it scrolls with its table, not the page).
        const code = page.locator('td code').first();
        const lines = await code.evaluate((el) => el.getClientRects().length);
        assert.equal(lines, 1, 'an id wrapped mid-token');
        assert.deepEqual(reported, [], 'the browser reported problems');
      } finally {
        await page.setViewportSize({ width: 1280, height: 900 });
      }
    });
  });

  it('lists the authorized integrations of the workspace', async () => {
    await step('integrations', async () => {
      await page.getByRole('link', { name: 'Integrations', exact: true }).click();
      await page.getByRole('heading', { name: 'Authorized integrations', level: 1 }).waitFor();
      await page.getByText('No authorized integrations.').waitFor();
      await checkPage('integrations');
    });
  });

  it('manages OAuth apps in the console: create (secret shown once), edit, delete', async () => {
    await step('apps', async () => {
      await navLink('OAuth apps').click();
      await page.getByRole('heading', { name: 'OAuth apps', level: 1 }).waitFor();
      await page.getByText('No apps yet.').waitFor();
      await checkPage('apps-empty');
      await checkFocusOrder(['workspace_switch', 'app_name', 'app_description', 'app_redirect_uris', 'Create app']);
      await page.getByLabel('Name', { exact: true }).fill('Billing backend');
      await page.getByLabel(/^Redirect URIs/).fill('https://billing.example/callback\nhttp://127.0.0.1:7777/cb');
      await page.getByRole('radio', { name: /Confidential/ }).check();
      await page.getByRole('button', { name: 'Create app' }).click();
      await page.getByRole('heading', { name: 'Billing backend', level: 1 }).waitFor();
      const clientSecret = await secret();
      assert.ok(clientSecret.length >= 20, clientSecret);
      const clientId = (await page.getByTestId('client-id').innerText()).trim();
      assert.match(clientId, /^itgr_/);
      await checkPage('app-created');
      const appUrl = page.url();
      await page.reload();
      assert.equal(await page.getByTestId('secret').count(), 0, 'shown only once');
      // A refused edit shows why; a good one is saved.
      await page.getByLabel(/^Redirect URIs/).fill('not a url');
      await page.getByRole('button', { name: 'Save changes' }).click();
      await page.getByRole('alert').waitFor();
      await checkPage('app-edit-refused');
      await page.goto(appUrl);
      await page.getByLabel('Name', { exact: true }).fill('Billing backend v2');
      await page.getByRole('button', { name: 'Save changes' }).click();
      await page.getByRole('heading', { name: 'Billing backend v2', level: 1 }).waitFor();
      await checkPage('app');
      await page.getByLabel('Delete Billing backend v2 and revoke everything issued to it').check();
      await page.getByRole('button', { name: 'Delete app' }).click();
      await page.getByRole('heading', { name: 'OAuth apps', level: 1 }).waitFor();
      assert.equal(await page.getByText(clientId).count(), 0);
      // A public app has no secret.
      await page.getByLabel('Name', { exact: true }).fill('CLI');
      await page.getByLabel(/^Redirect URIs/).fill('http://127.0.0.1:7777/cb');
      await page.getByRole('button', { name: 'Create app' }).click();
      await page.getByRole('heading', { name: 'CLI', level: 1 }).waitFor();
      assert.equal(await page.getByTestId('secret').count(), 0);
      await page.getByText('(no secret; PKCE)').waitFor();
      await page.getByRole('link', { name: '← All apps' }).click();
      assert.equal(await page.getByTestId('app-row').count(), 1);
      await checkPage('apps');
    });
  });

  it('members: an admin creates a user who signs in and sees only their workspace', async () => {
    await step('members', async () => {
      // A second workspace of the admin, which the new user must not see.
      const second = 'wksp_nodeconsolesecond01';
      await meta.query("INSERT INTO workspaces (id, name, created_at) VALUES ($1, 'Second Workspace', now())", [second]);
      await meta.query("INSERT INTO memberships (workspace_id, user_id, role, created_at) SELECT $1, id, 'admin', now() FROM users WHERE email = $2", [second, boot.admin_email]);

      await page.goto(`${server.base}/console/w/${boot.workspace_id}/members`);
      await page.getByRole('heading', { name: 'Members', level: 1 }).waitFor();
      assert.equal(await page.getByTestId('member-row').count(), 1);
      await checkPage('members');
      await checkFocusOrder(['workspace_switch', 'member_email', 'member_role', 'Add member', 'new_email', 'new_password', 'new_role', 'Create user']);

      // A user with a generated password, shown once.
      await page.getByLabel('E-mail', { exact: true }).fill('dana@example.com');
      await page.getByRole('button', { name: 'Create user' }).click();
      const password = await secret();
      assert.ok(password.length >= 20, password);
      assert.equal(await page.getByTestId('member-row').count(), 2);
      await checkPage('members-created');
      await page.reload();
      assert.equal(await page.getByTestId('secret').count(), 0, 'shown only once');

      // A refusal is shown on the page: a user that does not exist.
      await page.getByLabel('E-mail of the user').fill('nobody@example.com');
      await page.getByRole('button', { name: 'Add member' }).click();
      await page.getByRole('alert').getByText('There is no user').waitFor();
      await checkPage('members-refused');

      // An existing user added to the second workspace, then removed again.
      await page.goto(`${server.base}/console/w/${second}/members`);
      await page.getByLabel('E-mail of the user').fill('dana@example.com');
      await page.getByRole('button', { name: 'Add member' }).click();
      await page.getByRole('button', { name: 'Remove dana@example.com' }).waitFor();
      await page.getByLabel('Confirm: remove dana@example.com').check();
      await page.getByRole('button', { name: 'Remove dana@example.com' }).click();
      await page.getByRole('heading', { name: 'Members', level: 1 }).waitFor();
      assert.equal(await page.getByRole('button', { name: 'Remove dana@example.com' }).count(), 0);

      // Dana signs in: only the default workspace, and she cannot change its members.
      const ctx2 = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      try {
        const p2 = await ctx2.newPage();
        p2.setDefaultTimeout(BROWSER_TIMEOUT_MS);
        await p2.goto(`${server.base}/console`);
        await p2.getByLabel('Email').fill('dana@example.com');
        await p2.getByLabel('Password').fill(password);
        await p2.getByRole('button', { name: 'Sign in' }).click();
        await p2.waitForURL(`${server.base}/console/w/${boot.workspace_id}/projects`);
        const options = await p2.locator('#workspace_switch option').evaluateAll((os) => os.map((o) => o.value));
        assert.deepEqual(options, [boot.workspace_id]);
        await p2.getByRole('link', { name: 'shop', exact: true }).waitFor();
        await screenshot(p2, 'console-member-projects');
        await p2.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Members', exact: true }).click();
        await p2.getByTestId('members-readonly').waitFor();
        assert.equal(await p2.getByRole('button', { name: 'Create user' }).count(), 0);
        assert.equal(await p2.getByRole('button', { name: /^Remove/ }).count(), 0);
        await screenshot(p2, 'console-members-readonly');
        const res = await p2.goto(`${server.base}/console/w/${second}/projects`);
        assert.equal(res.status(), 403);
        await p2.getByText('You are not a member of that workspace').waitFor();
        await screenshot(p2, 'console-member-refused');
      } finally {
        await ctx2.close().catch(() => {});
      }
    });
  });

  it('lists more than 100 projects a page at a time', async () => {
    await step('pagination', async () => {
      const names = Array.from({ length: 101 }, (_, i) => `bulk-${String(i).padStart(3, '0')}`);
      const auth = { authorization: `Bearer ${boot.service_token}`, 'content-type': 'application/json' };
      // Projects without a database: 101 databases would pass the workspace's connection
      // quota (capacity.workspace_connections), and paging only needs projects.
      for (let i = 0; i < names.length; i += 4) {
        await Promise.all(names.slice(i, i + 4).map(async (name) => {
          const r = await fetch(`${server.base}/v1/projects`, { method: 'POST', headers: auth, body: JSON.stringify({ name, region: 'us-east-1', createDatabase: false }) });
          assert.equal(r.status, 201, `create ${name}: ${await r.text()}`);
        }));
      }
      await page.goto(`${server.base}/console/w/${boot.workspace_id}/projects`);
      assert.equal(await page.getByTestId('project-link').count(), 100);
      await page.getByRole('link', { name: 'shop', exact: true }).waitFor();
      await page.getByRole('link', { name: 'Next page' }).click();
      await page.waitForURL(/\/projects\?cursor=/);
      const rest = await page.getByTestId('project-link').count();
      assert.ok(rest >= 2 && rest < 100, `${rest} projects on the second page`);
      await page.getByRole('link', { name: 'bulk-100', exact: true }).waitFor();
      assert.equal(await page.getByRole('link', { name: 'Next page' }).count(), 0);
      await checkPage('projects-page-2');
      await page.getByRole('link', { name: 'First page' }).click();
      assert.equal(await page.getByTestId('project-link').count(), 100);
    });
  });

  it('signs out', async () => {
    await step('sign-out', async () => {
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.goto(`${server.base}/console`);
      assert.match(page.url(), /\/login\?next=/);
    });
  });
});
