// Shared by the *.test.mjs files: the real `pgfleet serve` under test (its own temporary data
// directory and embedded PostgreSQL) and a headless Debian Chromium through playwright-core
// (never a browser download).

import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';

import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const OUTPUT_DIR = path.resolve(HERE, '../../tests-output');
export const START_TIMEOUT_MS = 90_000;
export const STOP_TIMEOUT_MS = 30_000;
const CLI_TIMEOUT_MS = 30_000;

/** Rejects with "timed out after N s: <what>" if `promise` takes longer than `ms`. */
export async function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ------------------------------------------------------------------------------------------------
// The server under test
// ------------------------------------------------------------------------------------------------

function resolveBinary() {
  const bin = path.resolve(HERE, process.env.PGFLEET_BIN || '../../target/debug/pgfleet');
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch {
    throw new Error(
      `pgfleet binary not found or not executable at ${bin}. ` +
        'Build it first (cd /work/main && cargo build -p pgfleet) or set PGFLEET_BIN to its path.',
    );
  }
  return bin;
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * `pgfleet serve` on 127.0.0.1:<free port> with a temporary data directory.
 *
 * Options:
 * - name: names the data directory (pgfleet-<name>-test-XXXXXX);
 * - tokenPrefix, tokenBytes: the bootstrap service token is <tokenPrefix><tokenBytes random bytes as hex>;
 * - env: extra environment variables for the server (and `run`), e.g. PGFLEET_ADMIN_EMAIL;
 * - checkedStop: when true, stop() checks that pgfleet was still running, exits 0 within
 *   STOP_TIMEOUT_MS of SIGTERM and leaves no postmaster behind (throwing otherwise), and the data
 *   directory is removed only by cleanup(); when false, stop() just stops it and removes the directory.
 */
export class Server {
  constructor({ name, tokenPrefix, tokenBytes = 16, env = {}, checkedStop = false }) {
    this.bin = resolveBinary();
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `pgfleet-${name}-test-`));
    // As root, PostgreSQL runs as the `postgres` OS user, which must traverse this directory.
    fs.chmodSync(this.dir, 0o755);
    this.token = `${tokenPrefix}${randomBytes(tokenBytes).toString('hex')}`;
    this.checkedStop = checkedStop;
    this.stdout = '';
    this.stderr = '';
    this.out = ''; // both, interleaved as they arrived
    this.exit = null; // { code, signal } once exited
    this.base = null;
    const serverEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PGFLEET_')));
    serverEnv.PGFLEET_BOOTSTRAP_TOKEN = this.token;
    serverEnv.PGFLEET_POOLER__LISTEN = '127.0.0.1:0';
    serverEnv.PGFLEET_ACCELERATE__LISTEN = '127.0.0.1:0';
    Object.assign(serverEnv, env);
    serverEnv.RUST_LOG = 'warn';
    this.env = serverEnv;
  }

  tail(n = 40) {
    return this.out.split('\n').filter(Boolean).slice(-n).join('\n');
  }

  /** Resolves the base URL (http://127.0.0.1:<port>) once pgfleet prints its listening line. */
  start() {
    const args = ['serve', '--listen', '127.0.0.1:0', '--data-dir', this.dir];
    this.child = spawn(this.bin, args, { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
    // Last resort if the test process dies without running `after`.
    this.onProcessExit = () => this.child.exitCode === null && this.child.kill('SIGKILL');
    process.once('exit', this.onProcessExit);

    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`pgfleet did not print its listening line within ${START_TIMEOUT_MS / 1000} s:\n${this.tail()}`));
      }, START_TIMEOUT_MS);
      this.child.stdout.setEncoding('utf8');
      this.child.stderr.setEncoding('utf8');
      this.child.stdout.on('data', (chunk) => {
        this.stdout += chunk;
        this.out += chunk;
        const m = /pgfleet listening on (http:\/\/127\.0\.0\.1:\d+)\s/.exec(this.stdout);
        if (m && !this.base) {
          this.base = m[1];
          clearTimeout(timer);
          resolve(this.base);
        }
      });
      this.child.stderr.on('data', (chunk) => {
        this.stderr += chunk;
        this.out += chunk;
      });
      this.child.once('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`cannot start ${this.bin}: ${e.message}`));
      });
      this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`pgfleet exited before listening (code ${code}, signal ${signal}):\n${this.tail()}`));
      });
    });
  }

  /**
   * <data-dir>/bootstrap.txt as {admin_email, admin_password, workspace_id, service_token};
   * asserts that each key of `required` has a line.
   */
  bootstrap(required = []) {
    const file = path.join(this.dir, 'bootstrap.txt');
    const text = fs.readFileSync(file, 'utf8');
    const out = {};
    for (const line of text.split('\n')) {
      const m = /^([a-z_]+) = (.*)$/.exec(line.trim());
      if (m) out[m[1]] = m[2];
    }
    for (const k of required) assert.ok(out[k], `${file} has no ${k} line:\n${text}`);
    return out;
  }

  /** Runs `pgfleet <args>` with the server's environment; resolves {stdout, stderr}. */
  run(args) {
    return new Promise((resolve, reject) => {
      execFile(this.bin, args, { env: this.env, timeout: CLI_TIMEOUT_MS, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`\`pgfleet ${args.join(' ')}\` failed (${err.killed ? `killed after ${CLI_TIMEOUT_MS / 1000} s` : `exit ${err.code}`}):\n` +
            `stdout: ${stdout}\nstderr: ${stderr}`));
        } else resolve({ stdout, stderr });
      });
    });
  }

  /** SIGTERM with a bounded wait (then SIGKILL); see `checkedStop` for what else it does. */
  async stop() {
    if (!this.child) return;
    process.removeListener('exit', this.onProcessExit);
    if (!this.checkedStop) {
      if (!this.exit) {
        this.child.kill('SIGTERM');
        const res = await Promise.race([this.exited, sleep(STOP_TIMEOUT_MS, null, { ref: false })]);
        if (!res) {
          this.child.kill('SIGKILL');
          await this.exited;
        }
      }
      this.cleanup();
      return;
    }
    const problems = [];
    if (this.exit) {
      problems.push(`pgfleet exited on its own during the tests (code ${this.exit.code}, signal ${this.exit.signal})`);
    } else {
      this.child.kill('SIGTERM');
      // An unref'd timer: a pending 30 s timer would keep the test process alive after the run.
      const res = await Promise.race([this.exited, sleep(STOP_TIMEOUT_MS, null, { ref: false })]);
      if (!res) {
        this.child.kill('SIGKILL');
        await this.exited;
        problems.push(`pgfleet did not exit within ${STOP_TIMEOUT_MS / 1000} s of SIGTERM`);
      } else if (res.code !== 0) {
        problems.push(`pgfleet exited with code ${res.code}, signal ${res.signal} on SIGTERM`);
      }
    }
    // The embedded cluster must not outlive pgfleet.
    const pidFile = path.join(this.dir, 'postgres', 'postmaster.pid');
    for (let i = 0; i < 20 && fs.existsSync(pidFile); i++) await sleep(500);
    if (fs.existsSync(pidFile)) {
      const pid = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]);
      if (pid > 0 && isAlive(pid)) {
        process.kill(pid, 'SIGTERM'); // this test's own cluster, left behind
        problems.push(`PostgreSQL (pid ${pid}) was still running after pgfleet exited`);
      }
    }
    if (problems.length) throw new Error(`${problems.join('; ')}\n--- server output ---\n${this.tail()}`);
  }

  cleanup() {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------------------------
// Chromium (headless, via playwright-core; never a browser download)
// ------------------------------------------------------------------------------------------------

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

export function checkChromium() {
  try {
    fs.accessSync(CHROMIUM, fs.constants.X_OK);
  } catch {
    throw new Error(
      `Chromium not found or not executable at ${CHROMIUM}. Install it with \`apt-get install -y chromium\` ` +
        '(scripts/setup --test does) or set CHROMIUM_PATH. Never `npx playwright install`: there is no network.',
    );
  }
}

/** Launches headless Chromium with CHROMIUM_ARGS plus `extraArgs`. */
export async function launchChromium({ extraArgs = [] } = {}) {
  checkChromium();
  try {
    return await withTimeout(
      chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, ...extraArgs], timeout: 30_000 }),
      40_000,
      'Chromium launch',
    );
  } catch (e) {
    throw new Error(`Chromium (${CHROMIUM}) did not start: ${e.message}`);
  }
}

/** Saves a screenshot to <repo>/tests-output/<name>.png; returns its path, or why it failed. */
export async function screenshot(page, name, { fullPage = false } = {}) {
  try {
    fs.mkdirSync(OUTPUT_DIR, { recursive: true });
    const file = path.join(OUTPUT_DIR, `${name}.png`);
    await page.screenshot({ path: file, fullPage, timeout: 10_000 });
    return file;
  } catch (e) {
    return `(screenshot failed: ${e.message})`;
  }
}
