// The interactive API docs (/docs: Swagger UI from vendored assets) in a real headless Chromium
// against a real `pgfleet serve`: the page loads /v1/doc with no CSP violation or script error,
// Authorize takes the bootstrap service token (bearer), "Try it out" on GET /v1/me answers 200
// with the token sent; Authorize also runs the OAuth 2.0 authorization code flow with PKCE
// (oauth2) against this server's own /authorize and /token for an app registered with the
// redirect URI <base>/docs/oauth2-redirect.html; and the authorization survives a reload
// (persistAuthorization).
//
// Run (as scripts/test does; needs /usr/bin/chromium, which `scripts/setup --test` installs):
//   cd tests/node && PGFLEET_BIN=$PWD/../../target/debug/pgfleet \
//     node --test --test-concurrency=1 ./swagger.test.mjs
// A screenshot of the page after the call goes to <repo>/tests-output/swagger-ui.png (and one
// of any failing step). Knob: CHROMIUM_PATH (default /usr/bin/chromium).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { Server, checkChromium, launchChromium, screenshot } from './support.mjs';

const BROWSER_TIMEOUT_MS = 20_000;

describe('Swagger UI at /docs in headless Chromium', { timeout: 5 * 60_000 }, () => {
  const server = new Server({ name: 'swagger', tokenPrefix: 'pgfst_swagger_test_' });
  let browser;
  let page;
  const reported = []; // what the browser itself reports: CSP violations, script errors, failed requests

  before(async () => {
    checkChromium();
    await server.start();
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.setDefaultTimeout(BROWSER_TIMEOUT_MS);
    page.on('console', (m) => ['error', 'warning'].includes(m.type()) && reported.push(`console ${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => reported.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => reported.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await server.stop();
  });

  /** Runs browser steps; on failure adds a screenshot and what the browser reported. */
  async function step(name, fn) {
    try {
      return await fn();
    } catch (e) {
      const shot = page ? await screenshot(page, `swagger-failed-${name}`) : '(no page)';
      e.message += `\nscreenshot: ${shot}\nbrowser reported:\n${reported.slice(-15).join('\n') || '(nothing)'}`;
      throw e;
    }
  }

  it('loads the page and the document with no CSP violation or script error', async () => {
    await step('load', async () => {
      const res = await page.goto(`${server.base}/docs`);
      assert.equal(res.status(), 200);
      await page.locator('.swagger-ui .info .title').filter({ hasText: 'pgfleet Management API' }).waitFor();
      // Every tag of the document is rendered, with GET /v1/me among the operations.
      await page.locator('#operations-Me-getV1Me').waitFor();
      assert.deepEqual(reported, [], 'the browser reported problems');
    });
  });

  it('Authorize offers the bearer and the OAuth 2.0 (PKCE) schemes of this server', async () => {
    await step('authorize', async () => {
      await page.locator('.auth-wrapper button.authorize').click();
      const modal = page.locator('.dialog-ux .modal-ux');
      await modal.waitFor();
      const text = await modal.innerText();
      assert.match(text, /bearer\s*\(http, Bearer\)/i, text);
      assert.match(text, /oauth2\s*\(OAuth2, authorizationCode with PKCE\)/i, text);
      assert.ok(text.includes(`${server.base}/authorize`), `the authorization URL is this server's:\n${text}`);
      assert.ok(text.includes(`${server.base}/token`), `the token URL is this server's:\n${text}`);
      const bearer = modal.locator('.auth-container').filter({ hasText: /bearer\s*\(http, Bearer\)/i });
      await bearer.locator('input').first().fill(server.token);
      // The modal's buttons carry aria-labels ("Apply credentials", "Remove authorization",
      // "Close this dialog"), so they are found by class and text.
      await bearer.locator('button.modal-btn.authorize', { hasText: 'Authorize' }).click();
      await bearer.locator('button.modal-btn', { hasText: 'Logout' }).waitFor();
      await bearer.locator('button.btn-done', { hasText: 'Close' }).click();
      await modal.waitFor({ state: 'detached' });
    });
  });

  it('"Try it out" on GET /v1/me sends the token and shows a 200', async () => {
    await step('try-me', async () => {
      const op = page.locator('#operations-Me-getV1Me');
      await op.locator('.opblock-summary').first().click();
      await op.getByRole('button', { name: 'Try it out' }).click();
      const [response] = await Promise.all([
        page.waitForResponse((r) => r.url() === `${server.base}/v1/me`),
        op.getByRole('button', { name: 'Execute' }).click(),
      ]);
      assert.equal(response.status(), 200);
      assert.equal(response.request().headers().authorization, `Bearer ${server.token}`);
      const status = op.locator('.live-responses-table .response .response-col_status').first();
      await status.waitFor();
      assert.equal((await status.innerText()).trim(), '200');
      const body = await op.locator('.live-responses-table .response-col_description pre').first().innerText();
      assert.match(body, /"service_token"/, body);
      await screenshot(page, 'swagger-ui');
      assert.deepEqual(reported, [], 'the browser reported problems');
    });
  });

  it('Authorize with oauth2: PKCE through this server\'s /authorize and /token, then GET /v1/me as the user', async () => {
    const app = JSON.parse((await server.run([
      'admin', 'apps', 'create', '--data-dir', server.dir, '--name', 'API docs',
      '--redirect-uri', `${server.base}/docs/oauth2-redirect.html`, '--public', '--json',
    ])).stdout);
    assert.match(app.clientId, /^itgr_/);
    const { admin_email: email, admin_password: password } = server.bootstrap();
    // A fresh browser context: nothing authorized yet, no session.
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const docs = await context.newPage();
    docs.setDefaultTimeout(BROWSER_TIMEOUT_MS);
    docs.on('pageerror', (e) => reported.push(`page error: ${e.message}`));
    docs.on('console', (m) => ['error', 'warning'].includes(m.type()) && reported.push(`console ${m.type()}: ${m.text()}`));
    const previous = page;
    page = docs; // screenshots of failures show this page
    try {
      await step('oauth2', async () => {
        await docs.goto(`${server.base}/docs`);
        await docs.locator('.auth-wrapper button.authorize').click();
        const modal = docs.locator('.dialog-ux .modal-ux');
        const oauth = modal.locator('.auth-container').filter({ hasText: /oauth2\s*\(OAuth2/ });
        await oauth.locator('input[data-name="clientId"]').fill(app.clientId);
        // initOAuth pre-selects workspace:admin and offline_access.
        for (const scope of ['workspace:admin', 'offline_access']) {
          assert.ok(await oauth.locator(`input[type=checkbox][data-value="${scope}"]`).isChecked(), `${scope} is selected`);
        }
        const [popup] = await Promise.all([
          context.waitForEvent('page'),
          oauth.locator('button.modal-btn.authorize', { hasText: 'Authorize' }).click(),
        ]);
        popup.setDefaultTimeout(BROWSER_TIMEOUT_MS);
        // The sign-in and consent pages: script errors and failed loads count, except the
        // favicon.ico Chromium asks every page's origin for (those pages link none).
        popup.on('pageerror', (e) => reported.push(`popup page error: ${e.message}`));
        popup.on('response', (r) => r.status() >= 400 && new URL(r.url()).pathname !== '/favicon.ico' &&
          reported.push(`popup: ${r.status()} for ${r.request().method()} ${r.url()}`));
        await popup.waitForURL((u) => u.pathname === '/login');
        await popup.locator('input[name="email"]').fill(email);
        await popup.locator('input[name="password"]').fill(password);
        await Promise.all([popup.waitForNavigation(), popup.getByRole('button', { name: 'Sign in' }).click()]);
        // The consent page, then back to /docs/oauth2-redirect.html, whose script hands the code
        // to Swagger UI and closes the popup; Swagger UI exchanges it (with the PKCE verifier).
        const [token] = await Promise.all([
          docs.waitForResponse((r) => r.url() === `${server.base}/token`),
          popup.getByRole('button', { name: 'Allow', exact: true }).click(),
        ]);
        assert.equal(token.status(), 200, await token.text());
        const form = new URLSearchParams(token.request().postData() ?? '');
        assert.equal(form.get('grant_type'), 'authorization_code');
        assert.ok(form.get('code_verifier'), `PKCE: the exchange carries code_verifier (${token.request().postData()})`);
        await oauth.locator('button.modal-btn', { hasText: 'Logout' }).waitFor();
        await oauth.locator('button.btn-done', { hasText: 'Close' }).click();

        const op = docs.locator('#operations-Me-getV1Me');
        await op.locator('.opblock-summary').first().click();
        await op.getByRole('button', { name: 'Try it out' }).click();
        const [me] = await Promise.all([
          docs.waitForResponse((r) => r.url() === `${server.base}/v1/me`),
          op.getByRole('button', { name: 'Execute' }).click(),
        ]);
        assert.equal(me.status(), 200);
        const body = await me.json();
        assert.equal(body.data.credential.type, 'oauth', JSON.stringify(body));
        assert.equal(body.data.user.email, email);
        assert.deepEqual(reported, [], 'the browser reported problems');
      });
    } finally {
      page = previous;
      await context.close().catch(() => {});
    }
  });

  it('keeps the authorization across a reload (persistAuthorization)', async () => {
    await step('reload', async () => {
      await page.reload();
      await page.locator('#operations-Me-getV1Me').waitFor();
      const stored = await page.evaluate(() => window.localStorage.getItem('authorized'));
      assert.ok(stored && stored.includes('bearer'), `localStorage.authorized: ${stored}`);
      await page.locator('.auth-wrapper button.authorize.locked').waitFor();
    });
  });
});
