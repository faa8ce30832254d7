// End-to-end test of the OAuth half of the official npm `@prisma/management-api-sdk`
// (`createManagementApiSdk`) against a real `pgfleet serve`, with the user's part (sign-in,
// consent) driven through a real headless Chromium (Debian `chromium`, via playwright-core).
//
// Run (as scripts/test does; needs /usr/bin/chromium, which `scripts/setup --test` installs):
//   cd tests/node && PGFLEET_BIN=$PWD/../../target/debug/pgfleet \
//     node --test --test-concurrency=1 ./oauth.test.mjs
// Screenshots of the sign-in and consent pages (and of any failing browser step) go to
// <repo>/tests-output/ (git-ignored).
// Knobs: CHROMIUM_PATH (default /usr/bin/chromium); PGFLEET_OAUTH_TEST_APP_VIA=cli|page (default
// cli) chooses how the OAuth app is registered: `pgfleet admin apps create ... --json`, or the
// /apps page of the web UI (now the console's apps page: sign in, fill the form, read data-testid="client-id").
//
// ---------------------------------------------------------------------------------------------
// What the SDK does (read from node_modules/@prisma/management-api-sdk 1.80.0: README.md,
// dist/index.js, dist/index.d.ts; checked at run time by the "SDK self-check" tests below):
//
// * createManagementApiSdk({ clientId, redirectUri, tokenStorage, apiBaseUrl?, authBaseUrl? })
//   - apiBaseUrl defaults to https://api.prisma.io, authBaseUrl to https://auth.prisma.io; no
//     trailing-slash handling for authBaseUrl: it builds `${authBaseUrl}/authorize` and
//     `${authBaseUrl}/token`. Here both are the pgfleet root URL (http://127.0.0.1:<port>).
//   - returns { client, getLoginUrl, handleCallback, logout }. `client` is openapi-fetch with a
//     custom fetch (below) and an onError middleware that rethrows AuthError/FetchError and wraps
//     anything else in FetchError('API request failed') -- so API calls REJECT on auth failures.
// * TokenStorage (the caller implements it):
//     getTokens(): Promise<Tokens|null>; setTokens(tokens): Promise<void>; clearTokens(): Promise<void>;
//     optional withRefreshLock(fn) and clearTokensIfCurrent(tokens) (used instead of clearTokens
//     when present). Tokens = { workspaceId: string, accessToken: string, refreshToken?: string }.
// * getLoginUrl({ scope, additionalParams? }, { signal }?) -> Promise<{ url, state, verifier }>
//   - `scope` is REQUIRED and passed through verbatim: there is NO default scope and the SDK never
//     adds offline_access itself (its README passes 'workspace:admin offline_access').
//   - state = 16 random bytes base64url (22 chars); verifier = 32 random bytes base64url (43 chars,
//     the RFC 7636 minimum); code_challenge = base64url(sha256(verifier)), method S256.
//   - The SDK keeps NOTHING: state and verifier are returned and the caller must store them.
//   - URL: {authBaseUrl}/authorize?response_type=code&client_id&redirect_uri&scope&state
//     &code_challenge&code_challenge_method=S256, then each additionalParams entry is set (set(),
//     so a colliding key would overwrite a standard one), e.g. utm_source/utm_medium.
// * handleCallback({ callbackUrl: string|URL, verifier, expectedState }, { signal }?) -> Promise<void>
//   - callbackUrl is the full URL the browser landed on; only its query is read.
//   - `error` present -> throws AuthError(`${error}: ${error_description}` or `${error}`), BEFORE
//     any state check; no `code` -> AuthError('No authorization code found in callback URL');
//     state !== expectedState -> AuthError('Invalid state parameter. Possible CSRF attack.').
//   - exchange: POST {authBaseUrl}/token, Content-Type application/x-www-form-urlencoded, body
//     grant_type=authorization_code&code&redirect_uri&client_id&code_verifier. No client_secret,
//     no Authorization header, no scope (a public client). Uses the global fetch.
//   - the response: body parsed as JSON FIRST (non-JSON -> 'Failed to parse token response');
//     4xx -> AuthError(`${error}: ${error_description}`) read from the RFC 6749 shape
//     {"error":"<string>","error_description"?}; any status other than exactly 200 -> error;
//     200 must carry string access_token AND string refresh_token, else 'Invalid token response
//     format'. token_type, expires_in, scope are ignored.
//   - then setTokens({ accessToken, refreshToken, workspaceId }) where workspaceId comes from the
//     access token decoded as a JWT (3 dot-separated parts, base64url JSON payload, signature not
//     checked), claim `workspace_id` (must be a string, else a plain Error, not AuthError).
// * Refresh (inside client's fetch): every request gets `Authorization: Bearer <accessToken>` from
//   getTokens() (no tokens -> AuthError('No tokens available. Please log in first.')). On ANY 401
//   (body not read): refresh once -- POST {authBaseUrl}/token form-encoded
//   grant_type=refresh_token&refresh_token&client_id -- setTokens(new), retry the request once
//   with the new token (a second 401 is returned to the caller as a normal error response).
//   Concurrent 401s share one refresh. No refresh token stored -> AuthError('No refresh token
//   available. Please log in again.').
//   Refresh answered 4xx with {"error":"invalid_grant"} -> clearTokens() (or clearTokensIfCurrent)
//   and the API call rejects with AuthError(message 'invalid_grant[: description]',
//   refreshTokenInvalid: true). Other refresh failures -> AuthError(msg, refreshTokenInvalid false)
//   and the tokens are kept.
// * Errors: `AuthError extends Error { name 'AuthError', refreshTokenInvalid: boolean }` and
//   `FetchError extends Error { name 'FetchError', cause }`, both exported from the package root.
// ---------------------------------------------------------------------------------------------
//
// Layout: (1) self-checks that need no pgfleet (Chromium starts and drives a page served by this
// test, a 303 to the callback is caught, the SDK's URL/exchange/refresh behaviour against a stub
// token endpoint); (2) the flow against pgfleet, one `it` per step sharing one server, so a
// failure names the step; later steps say "needs ..." when an earlier one failed. Nothing is
// skipped: a missing Chromium or pgfleet binary fails the run with a clear message.

import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { createManagementApiClient, createManagementApiSdk, AuthError } from '@prisma/management-api-sdk';

import {
  Server, START_TIMEOUT_MS, STOP_TIMEOUT_MS, checkChromium, launchChromium, screenshot as saveScreenshot, withTimeout,
} from './support.mjs';

const APP_VIA = process.env.PGFLEET_OAUTH_TEST_APP_VIA || 'cli';

const STEP_TIMEOUT_MS = 90_000;
const BROWSER_TIMEOUT_MS = 15_000; // any single browser action / wait
const CALLBACK_TIMEOUT_MS = 20_000; // from the Allow/Deny click to the callback hit

const ACCESS_TTL_SECS = 3;
/** Long enough that a token issued just before is past its `exp` (whole seconds) for sure. */
const EXPIRY_WAIT_MS = ACCESS_TTL_SECS * 1000 + 1500;
const ADMIN_EMAIL = 'admin@example.com';
const SCOPE = 'workspace:admin offline_access';
const APP_NAME = 'SDK test';
const ISO_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/;

// ------------------------------------------------------------------------------------------------
// Small helpers
// ------------------------------------------------------------------------------------------------

function need(value, what) {
  if (value === undefined || value === null) throw new Error(`needs ${what}, which an earlier step did not produce (see the first failure above)`);
  return value;
}

function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

function decodeJwt(token, where) {
  const parts = String(token).split('.');
  assert.equal(parts.length, 3, `${where}: the SDK needs a JWT (3 dot-separated parts), got ${JSON.stringify(String(token).slice(0, 40))}...`);
  try {
    return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch (e) {
    assert.fail(`${where}: JWT payload is not base64url JSON: ${e.message}`);
  }
}

function isObj(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function keys(obj, required, optional, where) {
  assert.ok(isObj(obj), `${where}: expected an object, got ${JSON.stringify(obj)}`);
  const missing = required.filter((k) => !Object.hasOwn(obj, k));
  const extra = Object.keys(obj).filter((k) => !required.includes(k) && !optional.includes(k));
  assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, `${where}: key set differs from the contract (${JSON.stringify(obj)})`);
}

function str(v, where) {
  assert.equal(typeof v, 'string', `${where}: expected a string, got ${JSON.stringify(v)}`);
  assert.ok(v.length > 0, `${where}: empty string`);
}

function iso(v, where) {
  str(v, where);
  assert.match(v, ISO_Z, `${where}: not ISO-8601 UTC with Z: ${v}`);
}

function show(res) {
  const r = res.response;
  return `HTTP ${r.status} from ${r.url} (x-request-id ${r.headers.get('x-request-id')}): ${JSON.stringify(res.error ?? res.data)}`;
}

/** Asserts the status of an openapi-fetch result; returns `data`. */
function ok(res, status) {
  assert.equal(res.response.status, status, `expected HTTP ${status}, got ${show(res)}`);
  return res.data;
}

// ------------------------------------------------------------------------------------------------
// Every fetch of this process is recorded (the SDK uses the global fetch for /token and, through
// openapi-fetch, for the API), so the tests can see the 401 -> refresh -> retry sequence and the
// token endpoint's exact answers. Requests and responses pass through unchanged.
// ------------------------------------------------------------------------------------------------

const realFetch = globalThis.fetch;
/** @type {{seq:number, method:string, url:string, path:string, form:Record<string,string>|null, status:number|null, body:string|null, error?:string}[]} */
const fetchLog = [];
let fetchSeq = 0;
globalThis.fetch = async function recordingFetch(input, init) {
  const req = input instanceof Request ? input : new Request(input, init);
  const u = new URL(req.url);
  const entry = { seq: ++fetchSeq, method: req.method, url: req.url, path: u.pathname, form: null, status: null, body: null };
  const isToken = req.method === 'POST' && u.pathname.endsWith('/token');
  if (isToken) entry.form = Object.fromEntries(new URLSearchParams(await req.clone().text()));
  fetchLog.push(entry);
  try {
    const res = await realFetch(input, init);
    entry.status = res.status;
    if (isToken) entry.body = await res.clone().text();
    return res;
  } catch (e) {
    entry.error = String(e?.cause?.message ?? e?.message ?? e);
    throw e;
  }
};

function logSince(seq) {
  return fetchLog.filter((e) => e.seq > seq);
}

function fmtLog(entries) {
  return entries
    .map((e) => `  #${e.seq} ${e.method} ${e.path}${e.form ? ` ${JSON.stringify(redactForm(e.form))}` : ''} -> ${e.status ?? e.error}${e.body ? ` ${e.body.slice(0, 300)}` : ''}`)
    .join('\n') || '  (no requests)';
}

function redactForm(form) {
  const out = { ...form };
  for (const k of ['code', 'code_verifier', 'refresh_token', 'client_secret']) if (out[k]) out[k] = `${out[k].slice(0, 6)}…`;
  return out;
}

/** A TokenStorage that keeps tokens in memory and records every call. */
function memoryStorage() {
  const s = {
    tokens: null,
    calls: [],
    async getTokens() {
      return s.tokens ? { ...s.tokens } : null;
    },
    async setTokens(tokens) {
      s.calls.push({ op: 'set', tokens: { ...tokens } });
      s.tokens = { ...tokens };
    },
    async clearTokens() {
      s.calls.push({ op: 'clear' });
      s.tokens = null;
    },
  };
  return s;
}

/** Checks what handleCallback / a refresh stored; returns the decoded access-token payload. */
function checkStoredTokens(tokens, workspaceId, where) {
  assert.ok(tokens, `${where}: nothing stored in the TokenStorage`);
  keys(tokens, ['accessToken', 'refreshToken', 'workspaceId'], [], where);
  str(tokens.accessToken, `${where}.accessToken`);
  str(tokens.refreshToken, `${where}.refreshToken (the SDK refuses token responses without refresh_token)`);
  const claims = decodeJwt(tokens.accessToken, `${where}.accessToken`);
  assert.equal(claims.workspace_id, workspaceId, `${where}: access token claim workspace_id`);
  assert.equal(tokens.workspaceId, workspaceId, `${where}.workspaceId`);
  return claims;
}

/**
 * Runs `call` (an SDK API call) after the access token has expired and checks the SDK's
 * sequence: the API answers 401, POST /token grant_type=refresh_token -> 200 with new tokens,
 * the retried request succeeds; the stored tokens changed (access and refresh token).
 */
async function expectRefreshOn401({ storage, clientId, apiPath, call, workspaceId, where }) {
  const before = need(storage.tokens, 'stored tokens');
  const mark = fetchSeq;
  const res = await call();
  const seen = logSince(mark);
  const diag = `\nrequests seen:\n${fmtLog(seen)}`;
  const api = seen.filter((e) => e.path === apiPath);
  const tokenCalls = seen.filter((e) => e.form);
  if (api.length === 1 && api[0].status !== 401) {
    const claims = decodeJwt(before.accessToken, 'the expired access token');
    assert.fail(
      `${where}: the access token was still accepted ${EXPIRY_WAIT_MS / 1000} s after it was issued although the server runs with ` +
        `PGFLEET_OAUTH__ACCESS_TOKEN_TTL_SECS=${ACCESS_TTL_SECS} (its claims: ${JSON.stringify(claims)}; ` +
        `a JWT validation leeway, e.g. jsonwebtoken's default 60 s, would explain it)${diag}`,
    );
  }
  assert.equal(api.length, 2, `${where}: expected the API request, a 401, then one retry${diag}`);
  assert.equal(api[0].status, 401, `${where}: first API answer${diag}`);
  assert.equal(tokenCalls.length, 1, `${where}: expected exactly one POST /token${diag}`);
  const t = tokenCalls[0];
  assert.deepEqual(
    { grant_type: t.form.grant_type, client_id: t.form.client_id, refresh_token: t.form.refresh_token },
    { grant_type: 'refresh_token', client_id: clientId, refresh_token: before.refreshToken },
    `${where}: the refresh request the SDK sent${diag}`,
  );
  assert.equal(t.status, 200, `${where}: POST /token (refresh) must answer exactly 200${diag}`);
  assert.ok(api[1].seq > t.seq, `${where}: the retry follows the refresh${diag}`);
  assert.ok(api[1].status >= 200 && api[1].status < 300, `${where}: the retried request must succeed${diag}`);
  const after = need(storage.tokens, 'tokens after the refresh');
  checkStoredTokens(after, workspaceId, `${where}: tokens after refresh`);
  assert.notEqual(after.accessToken, before.accessToken, `${where}: a new access token`);
  assert.notEqual(after.refreshToken, before.refreshToken, `${where}: the refresh token is rotated`);
  return res;
}

/**
 * After revocation and expiry: the SDK call rejects with AuthError refreshTokenInvalid=true,
 * because POST /token grant_type=refresh_token answered 4xx {"error":"invalid_grant"}; the
 * TokenStorage was cleared.
 */
async function expectRevoked({ storage, call, where }) {
  const before = need(storage.tokens, 'stored tokens');
  const mark = fetchSeq;
  let error = null;
  let result;
  try {
    result = await call();
  } catch (e) {
    error = e;
  }
  const seen = logSince(mark);
  const diag = `\nrequests seen:\n${fmtLog(seen)}`;
  if (!error) assert.fail(`${where}: the SDK call should have failed, but it resolved with HTTP ${result?.response?.status}${diag}`);
  assert.ok(error instanceof AuthError, `${where}: expected the SDK's AuthError, got ${error?.name}: ${error?.message}${diag}`);
  assert.equal(error.refreshTokenInvalid, true, `${where}: AuthError.refreshTokenInvalid (message ${JSON.stringify(error.message)})${diag}`);
  assert.match(error.message, /^invalid_grant\b/, `${where}: AuthError message`);
  const tokenCalls = seen.filter((e) => e.form);
  assert.equal(tokenCalls.length, 1, `${where}: expected exactly one POST /token${diag}`);
  assert.equal(tokenCalls[0].form.grant_type, 'refresh_token');
  assert.equal(tokenCalls[0].form.refresh_token, before.refreshToken);
  assert.equal(tokenCalls[0].status, 400, `${where}: the refresh of a revoked grant must answer 400${diag}`);
  const body = JSON.parse(tokenCalls[0].body);
  assert.equal(body.error, 'invalid_grant', `${where}: RFC 6749 error body {"error":"invalid_grant"}${diag}`);
  assert.equal(storage.tokens, null, `${where}: the SDK clears the TokenStorage`);
  assert.deepEqual(storage.calls.at(-1), { op: 'clear' });
  // With nothing stored, the next call fails before any request.
  await assert.rejects(call(), (e) => e instanceof AuthError && e.refreshTokenInvalid === false && /No tokens available/.test(e.message));
}

// ------------------------------------------------------------------------------------------------
// The redirect URI: a tiny local HTTP server that records every /callback hit
// ------------------------------------------------------------------------------------------------

class CallbackServer {
  constructor() {
    this.hits = []; // { url, at }
    this.waiters = [];
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  async start() {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', resolve);
    });
    this.base = `http://127.0.0.1:${this.server.address().port}`;
    this.redirectUri = `${this.base}/callback`;
    return this;
  }

  handle(req, res) {
    const u = new URL(req.url, this.base);
    if (u.pathname === '/callback') {
      const hit = { url: `${this.base}${req.url}`, at: Date.now() };
      this.hits.push(hit);
      for (const w of this.waiters.splice(0)) w(hit);
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('ok');
      return;
    }
    // For the self-check only: a page whose form POST answers 303 to /callback, the same shape
    // as pgfleet's consent page, so the harness code that catches the redirect is exercised.
    if (u.pathname === '/selfcheck' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html><title>self-check</title><form method="post" action="/selfcheck">
        <label>Workspace <select name="workspace_id"><option value="wksp_a">A</option><option value="wksp_b">B</option></select></label>
        <input type="hidden" name="state" value="${u.searchParams.get('state') ?? ''}">
        <button type="submit" name="decision" value="approve">Allow</button>
        <button type="submit" name="decision" value="deny">Deny</button></form>`);
      return;
    }
    if (u.pathname === '/selfcheck' && req.method === 'POST') {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const f = new URLSearchParams(body);
        const q = f.get('decision') === 'approve'
          ? `code=selfcheck-${f.get('workspace_id')}&state=${encodeURIComponent(f.get('state'))}`
          : `error=access_denied&state=${encodeURIComponent(f.get('state'))}`;
        res.writeHead(303, { location: `${this.redirectUri}?${q}` });
        res.end();
      });
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  }

  /** The next /callback hit after this call (bounded). */
  nextHit(timeoutMs = CALLBACK_TIMEOUT_MS) {
    return withTimeout(new Promise((resolve) => this.waiters.push(resolve)), timeoutMs, `the redirect to ${this.redirectUri}`);
  }

  async stop() {
    this.server.closeAllConnections?.();
    await new Promise((resolve) => this.server.close(() => resolve()));
  }
}

// ------------------------------------------------------------------------------------------------
// Chromium (headless, via playwright-core; never a browser download)
// ------------------------------------------------------------------------------------------------

function launchBrowser() {
  return launchChromium({ extraArgs: ['--disable-quic'] });
}

const pageDiag = new WeakMap();

async function newPage(browser) {
  const context = await browser.newContext(); // fresh cookies every time
  const page = await context.newPage();
  // What the browser itself reports (CSP violations, JS errors, refused requests) for failure messages.
  const diag = [];
  pageDiag.set(page, diag);
  page.on('console', (m) => ['error', 'warning'].includes(m.type()) && diag.push(`console ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => diag.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => diag.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  page.setDefaultTimeout(BROWSER_TIMEOUT_MS);
  page.setDefaultNavigationTimeout(BROWSER_TIMEOUT_MS);
  return { context, page };
}

function screenshot(page, name) {
  return saveScreenshot(page, name, { fullPage: true });
}

async function describePage(page) {
  try {
    const text = (await page.locator('body').innerText({ timeout: 3000 })).replace(/\s+\n/g, '\n').slice(0, 1500);
    const diag = (pageDiag.get(page) ?? []).slice(-10);
    return `URL ${page.url()}\ntitle ${JSON.stringify(await page.title())}\ntext:\n${text}` +
      (diag.length ? `\nbrowser reported:\n${diag.join('\n')}` : '');
  } catch (e) {
    return `URL ${page.url()} (page text unavailable: ${e.message})`;
  }
}

/** Runs browser actions; on failure adds the page's URL and text and a screenshot to the error. */
async function inBrowser(page, name, fn) {
  try {
    return await fn();
  } catch (e) {
    const shot = await screenshot(page, `oauth-failure-${name}`);
    e.message = `${e.message}\n--- browser (${name}), screenshot ${shot} ---\n${await describePage(page)}`;
    throw e;
  }
}

/**
 * Clicks a submit button that must lead (via a 303) to the callback server; returns the full
 * callback URL and the status of the redirect that led there.
 */
async function clickAndCatchCallback(page, button, callback) {
  const redirect = page.waitForResponse((r) => (r.headers().location ?? '').startsWith(callback.redirectUri), { timeout: CALLBACK_TIMEOUT_MS });
  const hit = callback.nextHit();
  await button.click();
  const [res, h] = await Promise.all([redirect, hit]);
  await page.waitForURL((u) => u.href.startsWith(callback.redirectUri), { timeout: BROWSER_TIMEOUT_MS });
  assert.equal(page.url(), h.url, 'the browser and the callback server saw the same URL');
  return { url: h.url, redirectStatus: res.status(), redirectFrom: res.url() };
}

/**
 * The one visible element matching `selector`, after checking that a <label> of it (for= or
 * wrapping) starts with the text `label`. Returns its locator.
 */
async function labelled(page, selector, label) {
  const loc = page.locator(selector);
  await loc.first().waitFor();
  assert.equal(await loc.count(), 1, `exactly one ${selector} on the page`);
  const labels = await loc.evaluate((el) => Array.from(el.labels ?? [], (l) => l.textContent.replace(/\s+/g, ' ').trim()));
  assert.ok(labels.some((t) => t.startsWith(label)), `${selector} is labelled "${label}"; its labels: ${JSON.stringify(labels)}`);
  return loc;
}

/** The sign-in form: inputs email/password labelled Email/Password, button "Sign in". */
async function signIn(page, email, password) {
  await (await labelled(page, 'input[name="email"]', 'Email')).fill(email);
  await (await labelled(page, 'input[name="password"]', 'Password')).fill(password);
  await Promise.all([page.waitForNavigation({ timeout: BROWSER_TIMEOUT_MS }), page.getByRole('button', { name: 'Sign in' }).click()]);
}

/**
 * Opens the SDK's login URL in a fresh context, signs in when sent to /login, checks the consent
 * page, picks the workspace and clicks Allow or Deny. Returns { callbackUrl, redirectStatus }.
 */
async function authorizeInBrowser({ browser, callback, loginUrl, email, password, workspaceId, decision, shots }) {
  const { context, page } = await newPage(browser);
  try {
    return await inBrowser(page, `authorize-${decision}`, async () => {
      const res = await page.goto(loginUrl);
      assert.ok(res, 'no response for the authorize URL');
      const landed = new URL(page.url());
      assert.equal(landed.pathname, '/login', `a browser without a session is sent to /login?next=..., landed on ${page.url()} (HTTP ${res.status()})`);
      assert.ok(landed.searchParams.get('next'), `/login carries next=...: ${page.url()}`);
      await page.getByRole('button', { name: 'Sign in' }).waitFor();
      if (shots) await screenshot(page, 'oauth-signin');
      await signIn(page, email, password);

      // The consent page: the app's name, the scopes in words, the workspace, Allow / Deny.
      const allow = page.getByRole('button', { name: 'Allow', exact: true });
      const deny = page.getByRole('button', { name: 'Deny', exact: true });
      await allow.waitFor();
      await deny.waitFor();
      assert.equal(await allow.getAttribute('name'), 'decision');
      assert.equal(await allow.getAttribute('value'), 'approve');
      assert.equal(await deny.getAttribute('name'), 'decision');
      assert.equal(await deny.getAttribute('value'), 'deny');
      await page.getByText(APP_NAME, { exact: false }).first().waitFor();
      const select = await labelled(page, 'select[name="workspace_id"]', 'Workspace');
      const values = await select.locator('option').evaluateAll((os) => os.map((o) => o.value));
      assert.ok(values.includes(workspaceId), `the workspace select offers ${workspaceId}; options: ${JSON.stringify(values)}`);
      await select.selectOption(workspaceId);
      if (shots) await screenshot(page, 'oauth-consent');

      const got = await clickAndCatchCallback(page, decision === 'approve' ? allow : deny, callback);
      return { callbackUrl: got.url, redirectStatus: got.redirectStatus };
    });
  } finally {
    await context.close().catch(() => {});
  }
}

// ------------------------------------------------------------------------------------------------
// The server under test (support.mjs's, with checked stop, plus the OAuth settings)
// ------------------------------------------------------------------------------------------------

function newServer() {
  return new Server({
    name: 'oauth',
    tokenPrefix: 'pgfleet_oauth_test_',
    tokenBytes: 24,
    env: { PGFLEET_ADMIN_EMAIL: ADMIN_EMAIL, PGFLEET_OAUTH__ACCESS_TOKEN_TTL_SECS: String(ACCESS_TTL_SECS) },
    checkedStop: true,
  });
}

// ------------------------------------------------------------------------------------------------
// Registering the OAuth app: the CLI (default) or the /apps page
// ------------------------------------------------------------------------------------------------

function checkCreatedApp(app, { isPublic }, where) {
  assert.ok(isObj(app), `${where}: expected a JSON object, got ${JSON.stringify(app)}`);
  str(app.clientId, `${where}.clientId`);
  assert.match(app.clientId, /^itgr_./, `${where}.clientId must start with itgr_`);
  if (isPublic) assert.equal(app.clientSecret, null, `${where}.clientSecret of a public app`);
  else str(app.clientSecret, `${where}.clientSecret of a confidential app`);
}

async function createAppViaCli(server, { name, redirectUri, isPublic }) {
  const args = ['admin', 'apps', 'create', '--data-dir', server.dir, '--name', name, '--redirect-uri', redirectUri];
  if (isPublic) args.push('--public');
  args.push('--json');
  const { stdout } = await server.run(args).catch((e) => {
    e.message += '\n(to register the app through the web UI instead, set PGFLEET_OAUTH_TEST_APP_VIA=page)';
    throw e;
  });
  let app;
  try {
    app = JSON.parse(stdout);
  } catch {
    assert.fail(`\`pgfleet ${args.join(' ')}\` did not print JSON on stdout: ${JSON.stringify(stdout)}`);
  }
  checkCreatedApp(app, { isPublic }, 'admin apps create --json');
  return app;
}

/** The web route: sign in at /login, fill the form on /apps, read the ids from the result page. */
async function createAppViaPage(browser, base, { email, password }, { name, description, redirectUris, isPublic }) {
  const { context, page } = await newPage(browser);
  try {
    return await inBrowser(page, 'create-app', async () => {
      await page.goto(`${base}/login`);
      await signIn(page, email, password);
      await page.goto(`${base}/apps`);
      await page.locator('[name="name"]').fill(name);
      await page.locator('[name="description"]').fill(description ?? '');
      await page.locator('[name="redirect_uris"]').fill(redirectUris.join('\n'));
      const type = page.locator('[name="client_type"]');
      const value = isPublic ? 'public' : 'confidential';
      if ((await type.first().evaluate((el) => el.tagName)) === 'SELECT') await type.selectOption(value);
      else await page.locator(`[name="client_type"][value="${value}"]`).check();
      await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Create app' }).click()]);
      const clientId = (await page.getByTestId('client-id').innerText()).trim();
      const secret = page.getByTestId('secret');
      const clientSecret = (await secret.count()) ? (await secret.innerText()).trim() : null;
      const app = { clientId, clientSecret };
      checkCreatedApp(app, { isPublic }, '/apps result page');
      await screenshot(page, 'oauth-app-created');
      return app;
    });
  } finally {
    await context.close().catch(() => {});
  }
}

// ------------------------------------------------------------------------------------------------
// Shared resources: one Chromium, one callback server; closed when the file is done
// ------------------------------------------------------------------------------------------------

const shared = { browser: null, callback: null };

async function getBrowser() {
  if (!shared.browser) shared.browser = await launchBrowser();
  return shared.browser;
}

async function getCallback() {
  if (!shared.callback) shared.callback = await new CallbackServer().start();
  return shared.callback;
}

after(async () => {
  await shared.browser?.close().catch(() => {});
  await shared.callback?.stop().catch(() => {});
  globalThis.fetch = realFetch;
}, { timeout: 30_000 });

const step = (name, fn) => it(name, { timeout: STEP_TIMEOUT_MS }, fn);

// ================================================================================================
// (1) Self-checks: everything that does not need pgfleet's OAuth server
// ================================================================================================

describe('self-checks (no pgfleet needed): Chromium, the callback server, the SDK\'s OAuth requests', { timeout: 5 * 60_000 }, () => {
  step('Chromium starts headless and submits a form whose 303 lands on the callback server', async () => {
    const browser = await getBrowser();
    const callback = await getCallback();
    assert.match(browser.version(), /^\d+\./, 'Chromium version');
    for (const [decision, label] of [['approve', 'Allow'], ['deny', 'Deny']]) {
      const { context, page } = await newPage(browser);
      try {
        await inBrowser(page, `selfcheck-${decision}`, async () => {
          await page.goto(`${callback.base}/selfcheck?state=st_${decision}`);
          await (await labelled(page, 'select[name="workspace_id"]', 'Workspace')).selectOption('wksp_b');
          const got = await clickAndCatchCallback(page, page.getByRole('button', { name: label, exact: true }), callback);
          assert.equal(got.redirectStatus, 303);
          const q = new URL(got.url).searchParams;
          if (decision === 'approve') assert.deepEqual([q.get('code'), q.get('state')], ['selfcheck-wksp_b', 'st_approve']);
          else assert.deepEqual([q.get('error'), q.get('state')], ['access_denied', 'st_deny']);
          assert.equal(await page.locator('body').innerText(), 'ok', 'the callback server answers "ok"');
        });
      } finally {
        await context.close();
      }
    }
    assert.ok(callback.hits.length >= 2, 'the callback server recorded the hits');
  });

  step('getLoginUrl builds {authBaseUrl}/authorize with response_type, client_id, redirect_uri, scope, state, S256 PKCE and utm_*', async () => {
    const callback = await getCallback();
    const sdk = createManagementApiSdk({
      clientId: 'itgr_selfcheck',
      redirectUri: callback.redirectUri,
      tokenStorage: memoryStorage(),
      apiBaseUrl: 'http://127.0.0.1:9',
      authBaseUrl: 'http://127.0.0.1:9',
    });
    const { url, state, verifier } = await sdk.getLoginUrl({ scope: SCOPE, additionalParams: { utm_source: 'pgfleet-test', utm_medium: 'e2e' } });
    const u = new URL(url);
    assert.equal(`${u.origin}${u.pathname}`, 'http://127.0.0.1:9/authorize');
    assert.deepEqual(Object.fromEntries(u.searchParams), {
      response_type: 'code',
      client_id: 'itgr_selfcheck',
      redirect_uri: callback.redirectUri,
      scope: SCOPE,
      state,
      code_challenge: b64url(createHash('sha256').update(verifier).digest()),
      code_challenge_method: 'S256',
      utm_source: 'pgfleet-test',
      utm_medium: 'e2e',
    });
    assert.match(state, /^[A-Za-z0-9_-]{22}$/, 'state: 16 random bytes, base64url');
    assert.match(verifier, /^[A-Za-z0-9_-]{43}$/, 'verifier: 32 random bytes, base64url (43 chars, the RFC 7636 minimum)');
    // Scope is passed verbatim: without offline_access in `scope`, the SDK does not add it.
    const bare = new URL((await sdk.getLoginUrl({ scope: 'workspace:admin' })).url);
    assert.equal(bare.searchParams.get('scope'), 'workspace:admin');
  });

  step('handleCallback: error=access_denied and a wrong state throw AuthError before any request', async () => {
    const storage = memoryStorage();
    const sdk = createManagementApiSdk({ clientId: 'itgr_selfcheck', redirectUri: 'http://127.0.0.1:9/callback', tokenStorage: storage, apiBaseUrl: 'http://127.0.0.1:9', authBaseUrl: 'http://127.0.0.1:9' });
    const mark = fetchSeq;
    await assert.rejects(
      sdk.handleCallback({ callbackUrl: 'http://127.0.0.1:9/callback?error=access_denied&state=s1', verifier: 'v', expectedState: 'other' }),
      (e) => e instanceof AuthError && e.message === 'access_denied' && e.refreshTokenInvalid === false,
    );
    await assert.rejects(
      sdk.handleCallback({ callbackUrl: 'http://127.0.0.1:9/callback?error=access_denied&error_description=The+user+denied&state=s1', verifier: 'v', expectedState: 's1' }),
      (e) => e instanceof AuthError && e.message === 'access_denied: The user denied',
    );
    await assert.rejects(
      sdk.handleCallback({ callbackUrl: 'http://127.0.0.1:9/callback?code=c&state=s1', verifier: 'v', expectedState: 's2' }),
      (e) => e instanceof AuthError && /Invalid state/.test(e.message),
    );
    assert.equal(logSince(mark).length, 0, 'no request is sent');
    assert.equal(storage.calls.length, 0);
  });

  step('against a stub token endpoint: code exchange, refresh on 401, invalid_grant -> AuthError refreshTokenInvalid', async () => {
    // A stand-in for pgfleet with exactly the behaviour the SDK needs; it proves this file's
    // checks (expectRefreshOn401, expectRevoked) pass on a correct server.
    const ws = 'wksp_stub';
    const stub = { challenge: null, code: null, access: new Set(), refresh: null, revoked: false, n: 0, violations: [] };
    const jwt = (claims) => `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}.sig`;
    const issue = () => {
      stub.n += 1;
      const access = jwt({ workspace_id: ws, n: stub.n });
      stub.access = new Set([access]);
      stub.refresh = `rt_${stub.n}_${randomBytes(8).toString('hex')}`;
      return { access_token: access, refresh_token: stub.refresh, token_type: 'Bearer', expires_in: ACCESS_TTL_SECS };
    };
    const json = (res, status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        if (req.method === 'POST' && req.url === '/token') {
          if (!/^application\/x-www-form-urlencoded/.test(req.headers['content-type'] ?? '')) stub.violations.push(`content-type ${req.headers['content-type']}`);
          if (req.headers.authorization !== undefined) stub.violations.push('a public client sends no Authorization header');
          const f = Object.fromEntries(new URLSearchParams(body));
          if (f.grant_type === 'authorization_code') {
            const okReq = f.code === stub.code && f.client_id === 'itgr_stub' && f.redirect_uri === redirectUri &&
              b64url(createHash('sha256').update(f.code_verifier ?? '').digest()) === stub.challenge && !f.client_secret;
            stub.code = null; // single use
            return okReq ? json(res, 200, issue()) : json(res, 400, { error: 'invalid_grant' });
          }
          if (f.grant_type === 'refresh_token') {
            if (stub.revoked || f.refresh_token !== stub.refresh || f.client_id !== 'itgr_stub') return json(res, 400, { error: 'invalid_grant' });
            return json(res, 200, issue());
          }
          return json(res, 400, { error: 'unsupported_grant_type' });
        }
        if (req.url === '/v1/me') {
          const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
          if (!stub.access.has(token)) return json(res, 401, { error: { code: 'authentication-failed', message: 'expired' } });
          return json(res, 200, { data: { credential: { type: 'oauth', id: null, name: null }, workspace: { id: ws, name: 'stub' }, user: null } });
        }
        return json(res, 404, { error: { code: 'not_found', message: 'no' } });
      });
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${server.address().port}`;
    const redirectUri = `${base}/callback`;
    try {
      const storage = memoryStorage();
      const sdk = createManagementApiSdk({ clientId: 'itgr_stub', redirectUri, tokenStorage: storage, apiBaseUrl: base, authBaseUrl: base });
      const { url, state, verifier } = await sdk.getLoginUrl({ scope: SCOPE });
      stub.challenge = new URL(url).searchParams.get('code_challenge');
      stub.code = `code_${randomBytes(8).toString('hex')}`;
      const mark = fetchSeq;
      await sdk.handleCallback({ callbackUrl: `${redirectUri}?code=${stub.code}&state=${state}`, verifier, expectedState: state });
      const ex = logSince(mark).filter((e) => e.form);
      assert.equal(ex.length, 1);
      assert.deepEqual(Object.keys(ex[0].form).sort(), ['client_id', 'code', 'code_verifier', 'grant_type', 'redirect_uri'], 'the exchange form fields');
      checkStoredTokens(storage.tokens, ws, 'stub: stored tokens');

      ok(await sdk.client.GET('/v1/me'), 200);
      stub.access = new Set(); // the access token "expires"
      const res = await expectRefreshOn401({ storage, clientId: 'itgr_stub', apiPath: '/v1/me', call: () => sdk.client.GET('/v1/me'), workspaceId: ws, where: 'stub refresh' });
      assert.equal(ok(res, 200).data.credential.type, 'oauth');

      stub.revoked = true;
      stub.access = new Set();
      await expectRevoked({ storage, call: () => sdk.client.GET('/v1/me'), where: 'stub revoked' });
      assert.deepEqual(stub.violations, [], 'the token requests the SDK sent');
    } finally {
      server.closeAllConnections?.();
      await new Promise((r) => server.close(r));
    }
  });
});

// ================================================================================================
// (2) The OAuth flow against pgfleet
// ================================================================================================

describe('pgfleet OAuth server through createManagementApiSdk and headless Chromium', { timeout: 15 * 60_000 }, () => {
  /** @type {Server} */
  let server;
  let base;
  let boot; // bootstrap.txt
  let service; // the bootstrap service-token client
  let browser;
  let callback;
  const S = {}; // state handed from step to step

  before(async () => {
    checkChromium();
    browser = await getBrowser();
    callback = await getCallback();
    server = newServer();
    base = await server.start();
    boot = server.bootstrap(['admin_email', 'admin_password', 'workspace_id']);
    assert.equal(boot.admin_email, ADMIN_EMAIL, 'PGFLEET_ADMIN_EMAIL is the admin user');
    service = createManagementApiClient({ baseUrl: base, token: server.token });
  }, { timeout: START_TIMEOUT_MS + 60_000 });

  after(async () => {
    try {
      if (S.project && service) {
        await service.DELETE('/v1/projects/{id}', { params: { path: { id: S.project.id } } }).catch(() => {});
      }
      if (server) await server.stop();
    } finally {
      server?.cleanup();
    }
  }, { timeout: STOP_TIMEOUT_MS + 30_000 });

  step(`a public OAuth app is registered (${APP_VIA === 'page' ? 'the /apps page' : 'pgfleet admin apps create --public --json'})`, async () => {
    const spec = { name: APP_NAME, redirectUri: callback.redirectUri, isPublic: true };
    S.app = APP_VIA === 'page'
      ? await createAppViaPage(browser, base, { email: boot.admin_email, password: boot.admin_password }, { ...spec, description: 'node oauth.test.mjs', redirectUris: [spec.redirectUri] })
      : await createAppViaCli(server, spec);
    S.storage = memoryStorage();
    S.sdk = createManagementApiSdk({ clientId: S.app.clientId, redirectUri: callback.redirectUri, tokenStorage: S.storage, apiBaseUrl: base, authBaseUrl: base });
  });

  step('Chromium: authorize URL -> /login?next=... -> Sign in -> consent -> Allow -> 303 to the callback with code and state', async () => {
    const sdk = need(S.sdk, 'the SDK configured with the registered app');
    const login = await sdk.getLoginUrl({ scope: SCOPE, additionalParams: { utm_source: 'pgfleet-oauth-test', utm_medium: 'e2e' } });
    assert.ok(login.url.startsWith(`${base}/authorize?`), login.url);
    const got = await authorizeInBrowser({
      browser, callback, loginUrl: login.url, email: boot.admin_email, password: boot.admin_password,
      workspaceId: boot.workspace_id, decision: 'approve', shots: true,
    });
    assert.equal(got.redirectStatus, 303, 'Allow answers 303 to the redirect URI');
    const q = new URL(got.callbackUrl).searchParams;
    assert.equal(q.get('error'), null, `no error on Allow: ${got.callbackUrl}`);
    str(q.get('code'), 'callback code');
    assert.equal(q.get('state'), login.state, 'the callback carries the SDK\'s state unchanged');
    S.login = login;
    S.callbackUrl = got.callbackUrl;
  });

  step('handleCallback exchanges the code (POST /token, public client, PKCE) and stores JWT tokens for the workspace', async () => {
    const sdk = need(S.sdk, 'the SDK');
    const callbackUrl = need(S.callbackUrl, 'the callback URL from the Allow step');
    const mark = fetchSeq;
    try {
      await sdk.handleCallback({ callbackUrl, verifier: S.login.verifier, expectedState: S.login.state });
    } catch (e) {
      assert.fail(`handleCallback failed: ${e.name}: ${e.message}\nrequests seen:\n${fmtLog(logSince(mark))}`);
    }
    const ex = logSince(mark).filter((e) => e.form);
    assert.equal(ex.length, 1, `one POST /token:\n${fmtLog(logSince(mark))}`);
    assert.equal(ex[0].url, `${base}/token`);
    assert.deepEqual(
      { ...ex[0].form, code: undefined, code_verifier: undefined },
      { grant_type: 'authorization_code', client_id: S.app.clientId, redirect_uri: callback.redirectUri, code: undefined, code_verifier: undefined },
    );
    assert.equal(ex[0].status, 200);
    const claims = checkStoredTokens(S.storage.tokens, boot.workspace_id, 'stored tokens');
    if (claims.exp !== undefined) {
      assert.ok(Number.isInteger(claims.exp), `exp is a NumericDate: ${JSON.stringify(claims)}`);
      assert.ok(claims.exp <= Math.ceil(Date.now() / 1000) + ACCESS_TTL_SECS + 1, `exp honours PGFLEET_OAUTH__ACCESS_TOKEN_TTL_SECS=${ACCESS_TTL_SECS}: ${JSON.stringify(claims)}`);
    }
    S.exchangedAt = Date.now();
  });

  step('the OAuth token works on /v1: GET /v1/me (credential oauth, the admin, the workspace), GET and POST /v1/projects', async () => {
    const sdk = need(S.sdk, 'the SDK');
    need(S.storage.tokens, 'tokens from handleCallback');
    const me = ok(await sdk.client.GET('/v1/me'), 200).data;
    assert.equal(me.credential?.type, 'oauth', `credential.type: ${JSON.stringify(me)}`);
    assert.equal(me.workspace?.id, boot.workspace_id, `workspace: ${JSON.stringify(me)}`);
    assert.equal(me.user?.email, ADMIN_EMAIL, `user: ${JSON.stringify(me)}`);

    const listed = ok(await sdk.client.GET('/v1/projects'), 200);
    assert.ok(Array.isArray(listed.data), `GET /v1/projects: ${JSON.stringify(listed)}`);

    const created = ok(await sdk.client.POST('/v1/projects', { body: { name: 'oauth-sdk-project', region: 'us-east-1' } }), 201).data;
    assert.match(created.id, /^proj_/);
    assert.equal(created.workspace.id, boot.workspace_id, 'the project lands in the consented workspace');
    S.project = created;
    const seen = ok(await service.GET('/v1/projects/{id}', { params: { path: { id: created.id } } }), 200).data;
    assert.equal(seen.id, created.id, 'the service token of the same workspace sees the project');
  });

  step(`after ${EXPIRY_WAIT_MS / 1000} s (access TTL ${ACCESS_TTL_SECS} s) an API call gets 401, the SDK refreshes by itself and the call succeeds`, async () => {
    const sdk = need(S.sdk, 'the SDK');
    need(S.storage.tokens, 'tokens from handleCallback');
    await sleep(EXPIRY_WAIT_MS);
    const res = await expectRefreshOn401({
      storage: S.storage, clientId: S.app.clientId, apiPath: '/v1/projects',
      call: () => sdk.client.GET('/v1/projects'), workspaceId: boot.workspace_id, where: 'refresh',
    });
    const data = ok(res, 200).data;
    assert.ok(data.some((p) => p.id === S.project?.id), 'the retried GET /v1/projects lists the project');
    const me = ok(await sdk.client.GET('/v1/me'), 200).data;
    assert.equal(me.credential?.type, 'oauth', 'the refreshed token is an OAuth credential too');
  });

  step('GET /v1/workspaces/{id}/integrations (service token) lists the grant with the contract shape', async () => {
    const app = need(S.app, 'the registered app');
    need(S.storage.tokens, 'a completed authorization');
    const body = ok(await service.GET('/v1/workspaces/{workspaceId}/integrations', { params: { path: { workspaceId: boot.workspace_id } } }), 200);
    keys(body, ['data', 'pagination'], [], 'integrations');
    keys(body.pagination, ['nextCursor', 'hasMore'], [], 'integrations.pagination');
    const mine = body.data.filter((i) => i?.client?.id === app.clientId);
    assert.equal(mine.length, 1, `exactly one integration for ${app.clientId}: ${JSON.stringify(body.data)}`);
    const i = mine[0];
    keys(i, ['id', 'url', 'createdAt', 'scopes', 'client', 'createdByUser'], [], 'integration');
    str(i.id, 'integration.id');
    str(i.url, 'integration.url');
    assert.ok(i.url.startsWith(`${base}/`), `integration.url ${i.url} starts with the base URL ${base}`);
    iso(i.createdAt, 'integration.createdAt');
    assert.ok(Array.isArray(i.scopes) && i.scopes.every((s) => typeof s === 'string'), `integration.scopes: ${JSON.stringify(i.scopes)}`);
    assert.ok(i.scopes.includes('workspace:admin'), `the granted scopes include workspace:admin: ${JSON.stringify(i.scopes)}`);
    keys(i.client, ['id', 'name', 'createdAt'], [], 'integration.client');
    assert.equal(i.client.name, APP_NAME);
    iso(i.client.createdAt, 'integration.client.createdAt');
    keys(i.createdByUser, ['id', 'email', 'displayName'], [], 'integration.createdByUser');
    str(i.createdByUser.id, 'integration.createdByUser.id');
    assert.equal(i.createdByUser.email, ADMIN_EMAIL);
    if (i.createdByUser.displayName !== null) str(i.createdByUser.displayName, 'integration.createdByUser.displayName');
    S.integration = i;
  });

  step('DELETE /v1/workspaces/{id}/integrations/{clientId} -> 204; it is no longer listed; again -> 404', async () => {
    const app = need(S.app, 'the registered app');
    need(S.integration, 'the listed integration');
    const ids = { workspaceId: boot.workspace_id, clientId: app.clientId };
    ok(await service.DELETE('/v1/workspaces/{workspaceId}/integrations/{clientId}', { params: { path: ids } }), 204);
    S.revokedAt = Date.now();
    const body = ok(await service.GET('/v1/workspaces/{workspaceId}/integrations', { params: { path: { workspaceId: boot.workspace_id } } }), 200);
    assert.ok(!body.data.some((i) => i?.client?.id === app.clientId), `revoked integration still listed: ${JSON.stringify(body.data)}`);
    const again = await service.DELETE('/v1/workspaces/{workspaceId}/integrations/{clientId}', { params: { path: ids } });
    assert.equal(again.response.status, 404, `a second DELETE: ${show(again)}`);
  });

  step('after revocation, once the access token expires, an SDK call throws AuthError refreshTokenInvalid (refresh -> 400 invalid_grant)', async () => {
    const sdk = need(S.sdk, 'the SDK');
    need(S.revokedAt, 'the revocation');
    need(S.storage.tokens, 'stored tokens');
    await sleep(Math.max(0, S.revokedAt + EXPIRY_WAIT_MS - Date.now()));
    await expectRevoked({ storage: S.storage, call: () => sdk.client.GET('/v1/projects'), where: 'revoked' });
  });

  step('Chromium: Deny -> redirect to the callback with error=access_denied and the same state; handleCallback throws', async () => {
    const app = need(S.app, 'the registered app');
    const storage = memoryStorage();
    const sdk = createManagementApiSdk({ clientId: app.clientId, redirectUri: callback.redirectUri, tokenStorage: storage, apiBaseUrl: base, authBaseUrl: base });
    const login = await sdk.getLoginUrl({ scope: SCOPE });
    const got = await authorizeInBrowser({
      browser, callback, loginUrl: login.url, email: boot.admin_email, password: boot.admin_password,
      workspaceId: boot.workspace_id, decision: 'deny', shots: false,
    });
    assert.equal(got.redirectStatus, 303, 'Deny answers 303 to the redirect URI');
    const q = new URL(got.callbackUrl).searchParams;
    assert.equal(q.get('error'), 'access_denied', `callback ${got.callbackUrl}`);
    assert.equal(q.get('state'), login.state, 'the callback carries the SDK\'s state unchanged');
    assert.equal(q.get('code'), null, 'no code on Deny');
    const mark = fetchSeq;
    await assert.rejects(
      sdk.handleCallback({ callbackUrl: got.callbackUrl, verifier: login.verifier, expectedState: login.state }),
      (e) => e instanceof AuthError && /^access_denied\b/.test(e.message),
    );
    assert.equal(logSince(mark).length, 0, 'no token request on Deny');
    assert.equal(storage.tokens, null);
  });
});
