// The official MCP TypeScript SDK (`@modelcontextprotocol/sdk`) against a real `pgfleet serve`:
// over Streamable HTTP at /mcp (a service token as Bearer) and over stdio (the SDK spawning
// `pgfleet mcp`). List the tools, create a project (its default database), run SQL (refused
// without allowWrites; create a table and insert with it; select back), introspect the
// schema, a domain error as a tool error, the 401 challenge and the protected-resource
// metadata of /mcp, a read-only token refused a write, and the OAuth dance of the SDK's
// OAuthClientProvider against /mcp (401 -> protected-resource metadata -> authorization-server
// metadata -> dynamic registration -> authorize in headless Chromium: sign in, consent -> code ->
// token -> tools/list).
//
// Run: cd tests/node && PGFLEET_BIN=$PWD/../../target/debug/pgfleet node --test --test-concurrency=1 ./mcp.test.mjs

import http from 'node:http';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

import { Server, START_TIMEOUT_MS, STOP_TIMEOUT_MS, launchChromium, screenshot } from './support.mjs';

const STEP_TIMEOUT_MS = 120_000;
const TOOLS = [
  'list_projects', 'create_project', 'delete_project',
  'list_databases', 'create_database', 'delete_database',
  'list_connection_strings', 'create_connection_string', 'delete_connection_string',
  'list_backups', 'create_backup', 'restore_database', 'get_usage',
  'execute_sql', 'introspect_schema',
];

const S = {};
function need(v, what) {
  if (v === undefined || v === null) throw new Error(`needs ${what} (an earlier step failed)`);
  return v;
}

async function httpClient(base, token) {
  const client = new Client({ name: 'pgfleet-mcp-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  await client.connect(transport);
  return client;
}

/** Calls a tool that must succeed; returns its structured content. */
async function ok(client, name, args) {
  const r = await client.callTool({ name, arguments: args });
  assert.notEqual(r.isError, true, `${name} failed: ${JSON.stringify(r.content)}`);
  assert.ok(r.structuredContent, `${name}: no structured content`);
  assert.equal(r.content[0].type, 'text');
  assert.deepEqual(JSON.parse(r.content[0].text), r.structuredContent, `${name}: the text is the structured content`);
  return r.structuredContent;
}

/** Calls a tool that must fail as a tool error; returns `{code, message, hint}`. */
async function toolError(client, name, args) {
  const r = await client.callTool({ name, arguments: args });
  assert.equal(r.isError, true, `${name} should have failed: ${JSON.stringify(r.structuredContent)}`);
  assert.ok(r.structuredContent?.error, `${name}: the error has the API's shape: ${JSON.stringify(r.content)}`);
  return r.structuredContent.error;
}

/** An OAuthClientProvider kept in memory; the authorization URL is recorded, not opened. */
class MemoryProvider {
  constructor(redirectUrl) {
    this.redirect = redirectUrl;
    this.client = undefined;
    this.saved = undefined;
    this.verifier = undefined;
    this.authUrl = undefined;
  }
  get redirectUrl() { return this.redirect; }
  get clientMetadata() {
    return {
      client_name: 'pgfleet MCP test client',
      redirect_uris: [this.redirect],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() { return this.client; }
  saveClientInformation(c) { this.client = c; }
  tokens() { return this.saved; }
  saveTokens(t) { this.saved = t; }
  redirectToAuthorization(url) { this.authUrl = url; }
  saveCodeVerifier(v) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
}

/** A local redirect URI that records the callback URL. */
async function callbackServer() {
  let resolveHit;
  const hit = new Promise((r) => { resolveHit = r; });
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
    if (req.url.startsWith('/callback')) resolveHit(new URL(req.url, 'http://127.0.0.1'));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { redirectUri: `http://127.0.0.1:${server.address().port}/callback`, hit, close: () => new Promise((r) => server.close(r)) };
}

async function waitReady(client, databaseId) {
  for (let i = 0; i < 240; i++) {
    const list = await ok(client, 'list_databases', {});
    const db = list.data.find((d) => d.id === databaseId);
    if (db?.status === 'ready') return db;
    await sleep(500);
  }
  throw new Error(`database ${databaseId} did not become ready`);
}

describe('MCP server: the official TypeScript SDK over Streamable HTTP and stdio', { timeout: 15 * 60_000 }, () => {
  let server;
  let base;
  let http;

  before(async () => {
    server = new Server({ name: 'mcp', tokenPrefix: 'pgfleet_mcp_' });
    base = await server.start();
  }, { timeout: START_TIMEOUT_MS + 10_000 });

  after(async () => {
    await http?.close().catch(() => {});
    await server?.stop();
  }, { timeout: STOP_TIMEOUT_MS + 10_000 });

  const step = (name, fn) => it(name, { timeout: STEP_TIMEOUT_MS }, fn);

  step('/mcp without a token: 401 with the resource-metadata challenge; the metadata names the OAuth server', async () => {
    const res = await fetch(`${base}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    assert.equal(res.status, 401);
    const challenge = res.headers.get('www-authenticate');
    assert.match(challenge, /^Bearer /);
    assert.ok(challenge.includes(`resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`), challenge);
    const body = await res.json();
    assert.equal(typeof body.error.code, 'string');

    const meta = await (await fetch(`${base}/.well-known/oauth-protected-resource/mcp`)).json();
    assert.equal(meta.resource, `${base}/mcp`);
    assert.deepEqual(meta.authorization_servers, [base]);
    const as = await fetch(`${meta.authorization_servers[0]}/.well-known/oauth-authorization-server`);
    assert.equal(as.status, 200);

    const bad = await fetch(`${base}/mcp`, {
      method: 'POST',
      headers: { authorization: 'Bearer nope', 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: '{}',
    });
    assert.equal(bad.status, 401);
    assert.match(bad.headers.get('www-authenticate'), /error="invalid_token"/);
  });

  step('HTTP: connect with a service token and list the tools (descriptions and input schemas)', async () => {
    http = await httpClient(base, server.token);
    const { tools } = await http.listTools();
    const names = tools.map((t) => t.name);
    for (const t of TOOLS) assert.ok(names.includes(t), `tool ${t} is listed (got ${names.join(', ')})`);
    for (const t of tools) {
      assert.ok(t.description && t.description.length > 20, `${t.name} has a description`);
      assert.equal(t.inputSchema.type, 'object', `${t.name} has an object input schema`);
    }
    const sql = tools.find((t) => t.name === 'execute_sql');
    assert.ok(sql.inputSchema.properties.databaseId && sql.inputSchema.properties.sql && sql.inputSchema.properties.allowWrites);
    assert.deepEqual([...sql.inputSchema.required].sort(), ['databaseId', 'sql']);
  });

  step('HTTP: create a project (its default database) and wait until the database is ready', async () => {
    const client = need(http, 'the HTTP client');
    const created = await ok(client, 'create_project', { name: 'mcp-test' });
    assert.match(created.id, /^proj_/);
    assert.ok(created.url.startsWith(`${base}/v1/projects/`), `located url: ${created.url}`);
    const dbId = created.database?.id;
    assert.ok(dbId, `the project has a default database: ${JSON.stringify(created)}`);
    S.projectId = created.id;
    S.databaseId = dbId;
    await waitReady(client, dbId);
  });

  step('HTTP: a write without allowWrites is refused (read-only transaction)', async () => {
    const client = need(http, 'the HTTP client');
    const databaseId = need(S.databaseId, 'the database');
    const e = await toolError(client, 'execute_sql', { databaseId, sql: 'CREATE TABLE nope (id int)' });
    assert.equal(e.code, 'validation_error', JSON.stringify(e));
    assert.match(e.message, /read-only/);
    assert.match(e.hint, /allowWrites/);
  });

  step('HTTP: create a table and insert with allowWrites, select back as the database role', async () => {
    const client = need(http, 'the HTTP client');
    const databaseId = need(S.databaseId, 'the database');
    const created = await ok(client, 'execute_sql', {
      databaseId, allowWrites: true,
      sql: 'CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL, meta jsonb)',
    });
    assert.equal(created.committed, true);
    const inserted = await ok(client, 'execute_sql', {
      databaseId, allowWrites: true,
      sql: `INSERT INTO notes (body, meta) VALUES ('hello', '{"a": 1}'), ('world', NULL)`,
    });
    assert.equal(inserted.rowCount, 2);
    const e = await toolError(client, 'execute_sql', { databaseId, sql: `INSERT INTO notes (body) VALUES ('ro')` });
    assert.match(e.message, /read-only transaction/);

    const rows = await ok(client, 'execute_sql', { databaseId, sql: 'SELECT id, body, meta FROM notes ORDER BY id' });
    assert.deepEqual(rows.rows, [
      { id: 1, body: 'hello', meta: { a: 1 } },
      { id: 2, body: 'world', meta: null },
    ]);
    assert.equal(rows.truncated, false);
    assert.equal(rows.committed, false);
    assert.deepEqual(rows.columns.map((c) => c.type), ['int4', 'text', 'jsonb']);

    const who = await ok(client, 'execute_sql', {
      databaseId,
      sql: 'SELECT current_user AS role, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser',
    });
    assert.equal(who.rows[0].superuser, false);
    assert.match(who.rows[0].role, /_owner$/);

    const two = await toolError(client, 'execute_sql', { databaseId, sql: 'SELECT 1; SELECT 2' });
    assert.match(two.message, /multiple commands/);
  });

  step('HTTP: introspect_schema sees the table, its columns and primary key', async () => {
    const client = need(http, 'the HTTP client');
    const databaseId = need(S.databaseId, 'the database');
    const schema = await ok(client, 'introspect_schema', { databaseId });
    const notes = schema.tables.find((t) => t.schema === 'public' && t.name === 'notes');
    assert.ok(notes, `notes is listed: ${JSON.stringify(schema.tables)}`);
    assert.equal(notes.kind, 'table');
    assert.deepEqual(notes.columns.map((c) => c.name), ['id', 'body', 'meta']);
    assert.equal(notes.columns[1].nullable, false);
    assert.deepEqual(notes.primary_key, ['id']);
  });

  step('HTTP: a domain error is a tool error carrying the API message', async () => {
    const client = need(http, 'the HTTP client');
    const e = await toolError(client, 'execute_sql', { databaseId: 'db_doesnotexist', sql: 'SELECT 1' });
    assert.equal(e.code, 'not_found');
    assert.equal(e.message, 'Database db_doesnotexist not found');
    const del = await toolError(client, 'delete_database', { databaseId: need(S.databaseId, 'the database') });
    assert.match(del.message, /default database/);
  });

  step('HTTP: connection strings and backups through the tools', async () => {
    const client = need(http, 'the HTTP client');
    const databaseId = need(S.databaseId, 'the database');
    const c = await ok(client, 'create_connection_string', { databaseId, name: 'agent' });
    assert.match(c.connectionString, /^postgres(ql)?:\/\//);
    const list = await ok(client, 'list_connection_strings', { databaseId });
    assert.ok(list.data.some((x) => x.id === c.id));
    await ok(client, 'delete_connection_string', { connectionId: c.id });
    const backups = await ok(client, 'list_backups', { databaseId });
    assert.ok(Array.isArray(backups.data));
  });

  step('a read-only service token: writes are refused (SQL and the other tools), reads work', async () => {
    const databaseId = need(S.databaseId, 'the database');
    const boot = server.bootstrap(['workspace_id']);
    const res = await fetch(`${base}/v1/workspaces/${boot.workspace_id}/service-tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'mcp-read-only', readOnly: true }),
    });
    const body = await res.json();
    assert.equal(res.status, 201, JSON.stringify(body));
    const ro = await httpClient(base, body.data.value);
    try {
      const e = await toolError(ro, 'execute_sql', { databaseId, allowWrites: true, sql: `INSERT INTO notes (body) VALUES ('x')` });
      assert.equal(e.code, 'forbidden');
      assert.match(e.message, /read-only/);
      const rows = await ok(ro, 'execute_sql', { databaseId, sql: 'SELECT count(*) AS n FROM notes' });
      assert.equal(rows.rows[0].n, 2);
      for (const [name, args] of [
        ['create_project', { name: 'nope' }],
        ['create_connection_string', { databaseId, name: 'nope' }],
        ['create_backup', { databaseId }],
        ['delete_project', { projectId: need(S.projectId, 'the project') }],
      ]) {
        const err = await toolError(ro, name, args);
        assert.equal(err.code, 'forbidden', `${name}: ${JSON.stringify(err)}`);
      }
      await ok(ro, 'list_projects', {});
    } finally {
      await ro.close();
    }
  });

  step('a project-scoped service token sees its project only', async () => {
    const databaseId = need(S.databaseId, 'the database');
    const client = need(http, 'the HTTP client');
    const other = await ok(client, 'create_project', { name: 'mcp-other', createDatabase: false });
    const boot = server.bootstrap(['workspace_id']);
    const res = await fetch(`${base}/v1/workspaces/${boot.workspace_id}/service-tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'mcp-scoped', projectId: other.id }),
    });
    const body = await res.json();
    assert.equal(res.status, 201, JSON.stringify(body));
    const scoped = await httpClient(base, body.data.value);
    try {
      const projects = await ok(scoped, 'list_projects', {});
      assert.deepEqual(projects.data.map((p) => p.id), [other.id]);
      const e = await toolError(scoped, 'execute_sql', { databaseId, sql: 'SELECT 1' });
      assert.equal(e.code, 'not_found');
    } finally {
      await scoped.close();
    }
  });

  step('OAuth: the SDK registers itself, the user signs in and consents in Chromium, the token lists the tools', async () => {
    const boot = server.bootstrap(['admin_email', 'admin_password', 'workspace_id']);
    const cb = await callbackServer();
    const provider = new MemoryProvider(cb.redirectUri);
    const url = new URL(`${base}/mcp`);
    let browser;
    try {
      const first = new Client({ name: 'pgfleet-mcp-oauth-test', version: '1.0.0' });
      const transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
      await assert.rejects(first.connect(transport), (e) => e instanceof UnauthorizedError);
      assert.match(provider.client?.client_id ?? '', /./, 'the SDK registered a client dynamically');
      assert.equal(provider.client.token_endpoint_auth_method, 'none');
      const authUrl = need(provider.authUrl, 'the authorization URL');
      assert.equal(`${authUrl.origin}${authUrl.pathname}`, `${base}/authorize`);
      assert.equal(authUrl.searchParams.get('resource'), `${base}/mcp`);
      assert.equal(authUrl.searchParams.get('code_challenge_method'), 'S256');

      browser = await launchChromium({ extraArgs: ['--disable-quic'] });
      const context = await browser.newContext();
      const page = await context.newPage();
      page.setDefaultTimeout(60_000);
      try {
        await page.goto(authUrl.href);
        assert.equal(new URL(page.url()).pathname, '/login', `sent to sign in first: ${page.url()}`);
        await page.locator('input[name="email"]').fill(boot.admin_email);
        await page.locator('input[name="password"]').fill(boot.admin_password);
        await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Sign in' }).click()]);
        await page.getByText('pgfleet MCP test client').first().waitFor();
        await page.locator('select[name="workspace_id"]').selectOption(boot.workspace_id);
        await page.getByRole('button', { name: 'Allow', exact: true }).click();
        const callback = await Promise.race([cb.hit, sleep(60_000, null, { ref: false }).then(() => { throw new Error('no callback'); })]);
        const code = callback.searchParams.get('code');
        assert.ok(code, `the callback has a code: ${callback}`);
        await transport.finishAuth(code);
      } catch (e) {
        const shot = await screenshot(page, 'mcp-oauth-failure', { fullPage: true });
        throw new Error(`${e.message}\n(screenshot ${shot}; page ${page.url()})`);
      }
      assert.ok(provider.saved?.access_token, 'the SDK holds an access token');

      const client = new Client({ name: 'pgfleet-mcp-oauth-test', version: '1.0.0' });
      await client.connect(new StreamableHTTPClientTransport(url, { authProvider: provider }));
      const { tools } = await client.listTools();
      assert.ok(tools.some((t) => t.name === 'execute_sql'));
      const projects = await ok(client, 'list_projects', {});
      assert.ok(projects.data.some((p) => p.id === S.projectId), 'the token acts on the chosen workspace');
      await client.close();
    } finally {
      await browser?.close().catch(() => {});
      await cb.close();
    }
  });

  step('/metrics counts the tool calls by tool and outcome', async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    assert.match(text, /pgfleet_mcp_tool_calls_total\{outcome="ok",tool="execute_sql"\} [1-9]/);
    assert.match(text, /pgfleet_mcp_tool_calls_total\{outcome="error",tool="execute_sql"\} [1-9]/);
  });

  step('stdio: `pgfleet mcp` spawned by the SDK lists the tools and reads the table', async () => {
    const databaseId = need(S.databaseId, 'the database');
    const transport = new StdioClientTransport({
      command: server.bin,
      args: ['mcp', '--data-dir', server.dir],
      env: { ...server.env, PGFLEET_TOKEN: server.token, RUST_LOG: 'warn' },
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr?.on('data', (c) => { stderr += c; });
    const client = new Client({ name: 'pgfleet-mcp-stdio-test', version: '1.0.0' });
    try {
      await client.connect(transport);
      const { tools } = await client.listTools();
      for (const name of TOOLS) assert.ok(tools.some((x) => x.name === name), `stdio lists ${name}`);
      const rows = await ok(client, 'execute_sql', { databaseId, sql: 'SELECT body FROM notes ORDER BY id' });
      assert.deepEqual(rows.rows, [{ body: 'hello' }, { body: 'world' }]);
      const e = await toolError(client, 'execute_sql', { databaseId, sql: `DELETE FROM notes` });
      assert.match(e.message, /read-only/);
      const w = await ok(client, 'execute_sql', { databaseId, allowWrites: true, sql: `INSERT INTO notes (body) VALUES ('stdio')` });
      assert.equal(w.rowCount, 1);
      const projects = await ok(client, 'list_projects', {});
      assert.ok(projects.data.some((p) => p.id === S.projectId));
    } catch (e) {
      throw new Error(`${e.message}\n--- pgfleet mcp stderr ---\n${stderr}`);
    } finally {
      await client.close().catch(() => {});
    }
  });
});
