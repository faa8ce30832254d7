// Compatibility test: the official npm package `@prisma/management-api-sdk` (and node `pg`)
// against a real `pgfleet serve`, over the whole /v1 lifecycle.
//
// Run (as scripts/test does):
//   cd tests/node && PGFLEET_BIN=$PWD/../../target/debug/pgfleet \
//     node --test --test-concurrency=1 ./*.test.mjs
//
// ---------------------------------------------------------------------------------------------
// What the SDK is and how it calls the API (read from node_modules/@prisma/management-api-sdk
// 1.80.0: README.md, dist/index.js, dist/index.d.ts, and its one dependency openapi-fetch 0.14.0):
//
// * `createManagementApiClient({ baseUrl, token, headers?, fetch?, ... })` is a thin wrapper over
//   openapi-fetch's `createClient`: it sets `Authorization: Bearer <token>` (an explicit
//   `headers.Authorization` wins; with no token no Authorization header is sent at all), defaults
//   `baseUrl` to https://api.prisma.io and strips one trailing slash from it. Nothing else: no
//   retries, no error mapping, no Accept or User-Agent header of its own.
// * Calls are `client.GET|POST|PATCH|DELETE|PUT(pathTemplate, init)`; the path is the literal
//   OpenAPI template, starting with `/v1/`:
//       const { data, error, response } = await client.GET('/v1/projects/{id}', {
//         params: { path: { id }, query: { limit: 10, cursor } },
//       })
//       await client.POST('/v1/projects', { body: { name, region: 'us-east-1' } })
//   - path params are substituted with encodeURIComponent; a missing one is left as the
//     literal `{id}` in the URL (no client-side check);
//   - query params are serialised `name=value&...` (encodeURIComponent); undefined/null skipped;
//   - `body` is JSON.stringify'd and `Content-Type: application/json` is added ONLY when a body
//     is given: POST /v1/connections/{id}/rotate and every DELETE arrive with no body and no
//     Content-Type, so the server must not demand one there.
// * The promise resolves (never rejects on HTTP errors) to `{ data, error, response }`:
//   - status 204, a HEAD request, or a `Content-Length: 0` header => no body is read:
//     `{ data: undefined }` if ok else `{ error: undefined }`;
//   - 2xx otherwise => `data = await response.json()` (a 2xx with an empty or non-JSON body
//     makes the call THROW a SyntaxError, so every 200/201 must carry JSON);
//   - non-2xx => `error` = body text, JSON.parse'd when it parses (so `{error:{code,message}}`
//     arrives as an object; clients read `error.error.code`).
//   It rejects only on network failure (fetch's TypeError; the OAuth variant
//   `createManagementApiSdk` wraps that in its exported `FetchError`).
// * The OAuth variant `createManagementApiSdk({clientId, redirectUri, tokenStorage,
//   apiBaseUrl?, authBaseUrl?})` uses the same client with a fetch that, on any 401, refreshes
//   once at `POST {authBaseUrl}/token` (form-encoded, public client) and retries; not exercised
//   here (no OAuth server in pgfleet yet).
// ---------------------------------------------------------------------------------------------
//
// Every step below is its own test inside one `describe` that shares one server, so a failure
// names the step. Steps that need an earlier step's result fail with "needs ..." when that
// step failed. Nothing is skipped: a missing binary fails the run with a clear message.

import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { createManagementApiClient } from '@prisma/management-api-sdk';
import pg from 'pg';

import { Server, START_TIMEOUT_MS, STOP_TIMEOUT_MS } from './support.mjs';

const STEP_TIMEOUT_MS = 120_000;

/** Regions named by the contract's request enums; us-east-1 is the one pgfleet serves. */
const CONTRACT_REGIONS = ['us-east-1', 'us-west-1', 'eu-west-3', 'eu-central-1', 'ap-northeast-1', 'ap-southeast-1'];
const ISO_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/;
/** SQLSTATEs of a refused login: invalid_password, invalid_authorization_specification, no such database. */
const REFUSED = ['28P01', '28000', '3D000'];

// ------------------------------------------------------------------------------------------------
// Shape checkers (the contract: /work/shared/contract/management-api-v1.d.ts)
// ------------------------------------------------------------------------------------------------

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

function strOrNull(v, where) {
  if (v !== null) str(v, where);
}

function bool(v, where) {
  assert.equal(typeof v, 'boolean', `${where}: expected a boolean, got ${JSON.stringify(v)}`);
}

function iso(v, where) {
  str(v, where);
  assert.match(v, ISO_Z, `${where}: not ISO-8601 UTC with Z: ${v}`);
  assert.ok(!Number.isNaN(Date.parse(v)), `${where}: not a valid date: ${v}`);
}

function id(v, prefix, where) {
  str(v, where);
  if (prefix) assert.ok(v.startsWith(prefix) && v.length > prefix.length, `${where}: id ${v} must start with ${prefix}`);
}

function oneOf(v, allowed, where) {
  assert.ok(allowed.includes(v), `${where}: ${JSON.stringify(v)} is not one of ${JSON.stringify(allowed)}`);
}

function port(v, where) {
  assert.ok(Number.isInteger(v) && v > 0 && v < 65536, `${where}: not a port number: ${JSON.stringify(v)}`);
}

/** Checks that a `url` field is absolute, starts with the server's base URL and names the resource. */
function url(v, base, resourcePath, where) {
  str(v, where);
  assert.ok(v.startsWith(`${base}/`), `${where}: url ${v} does not start with the base URL ${base}`);
  assert.equal(v, `${base}${resourcePath}`, `${where}: url`);
}

function pagination(p, where) {
  keys(p, ['nextCursor', 'hasMore'], [], `${where}.pagination`);
  strOrNull(p.nextCursor, `${where}.pagination.nextCursor`);
  bool(p.hasMore, `${where}.pagination.hasMore`);
  assert.equal(p.hasMore, p.nextCursor !== null, `${where}.pagination: hasMore and nextCursor disagree`);
}

function list(body, where, check) {
  keys(body, ['data', 'pagination'], [], where);
  assert.ok(Array.isArray(body.data), `${where}.data: expected an array`);
  body.data.forEach((item, i) => check(item, `${where}.data[${i}]`));
  pagination(body.pagination, where);
}

function errorBody(body, where) {
  keys(body, ['error'], [], where);
  keys(body.error, ['code', 'message'], ['hint'], `${where}.error`);
  str(body.error.code, `${where}.error.code`);
  assert.match(body.error.code, /^[a-z][a-z0-9_-]*$/, `${where}.error.code must be lowercase`);
  str(body.error.message, `${where}.error.message`);
  if (body.error.hint !== undefined) str(body.error.hint, `${where}.error.hint`);
}

function checkWorkspace(w, base, where) {
  keys(w, ['id', 'type', 'url', 'name', 'createdAt'], [], where);
  id(w.id, 'wksp_', `${where}.id`);
  assert.equal(w.type, 'workspace', `${where}.type`);
  url(w.url, base, `/v1/workspaces/${w.id}`, `${where}.url`);
  str(w.name, `${where}.name`);
  iso(w.createdAt, `${where}.createdAt`);
}

function checkServiceToken(t, withValue, where) {
  // projectId, readOnly: pgfleet's documented extension (scoped service tokens, issue 20).
  keys(t, ['id', 'type', 'name', 'valueHint', 'createdAt', ...(withValue ? ['value'] : [])], ['expiresAt', 'projectId', 'readOnly'], where);
  if (t.projectId !== undefined) strOrNull(t.projectId, `${where}.projectId`);
  if (t.readOnly !== undefined) assert.equal(typeof t.readOnly, 'boolean', `${where}.readOnly`);
  str(t.id, `${where}.id`);
  assert.equal(t.type, 'serviceToken', `${where}.type`);
  str(t.name, `${where}.name`);
  str(t.valueHint, `${where}.valueHint`);
  iso(t.createdAt, `${where}.createdAt`);
  if (t.expiresAt !== undefined && t.expiresAt !== null) iso(t.expiresAt, `${where}.expiresAt`);
  if (withValue) str(t.value, `${where}.value`);
}

function checkRef(r, base, collection, prefix, where) {
  keys(r, ['id', 'url', 'name'], [], where);
  id(r.id, prefix, `${where}.id`);
  url(r.url, base, `/v1/${collection}/${r.id}`, `${where}.url`);
  str(r.name, `${where}.name`);
}

function checkProject(p, base, { withDatabase }, where) {
  const required = ['id', 'type', 'url', 'name', 'logicalId', 'createdAt', 'defaultRegion', 'workspace'];
  keys(p, withDatabase ? [...required, 'database'] : required, [], where);
  id(p.id, 'proj_', `${where}.id`);
  assert.equal(p.type, 'project', `${where}.type`);
  url(p.url, base, `/v1/projects/${p.id}`, `${where}.url`);
  str(p.name, `${where}.name`);
  strOrNull(p.logicalId, `${where}.logicalId`);
  iso(p.createdAt, `${where}.createdAt`);
  strOrNull(p.defaultRegion, `${where}.defaultRegion`);
  checkRef(p.workspace, base, 'workspaces', 'wksp_', `${where}.workspace`);
}

function checkSource(s, where) {
  if (s === null) return;
  assert.ok(isObj(s), `${where}: expected an object or null`);
  if (s.type === 'empty') keys(s, ['type'], [], where);
  else if (s.type === 'backup') keys(s, ['type', 'databaseId', 'backupId'], [], where);
  else if (s.type === 'database') keys(s, ['type', 'databaseId'], [], where);
  else assert.fail(`${where}.type: unknown source type ${JSON.stringify(s.type)}`);
}

/**
 * endpoints: `read` => {host, port} only (no secrets on reads);
 * `create` => {host, port, connectionString?}; `created` => {host, port, connectionString}.
 */
function checkEndpoints(e, mode, where) {
  keys(e, [], ['direct', 'pooled', 'accelerate'], where);
  assert.ok(e.direct, `${where}.direct: pgfleet must return a direct endpoint`);
  for (const [name, ep] of Object.entries(e)) {
    const w = `${where}.${name}`;
    if (mode === 'read') keys(ep, ['host', 'port'], [], w);
    else if (mode === 'create') keys(ep, ['host', 'port'], ['connectionString'], w);
    else keys(ep, ['host', 'port', 'connectionString'], [], w);
    str(ep.host, `${w}.host`);
    port(ep.port, `${w}.port`);
    if (ep.connectionString !== undefined) str(ep.connectionString, `${w}.connectionString`);
  }
}

function checkDirectConnection(dc, where) {
  keys(dc, ['host', 'pass', 'user'], [], where);
  str(dc.host, `${where}.host`);
  str(dc.pass, `${where}.pass`);
  str(dc.user, `${where}.user`);
}

/**
 * A connection object.
 * `read`     GET /v1/connections..., and connections[] inside database reads: no secrets.
 * `embedded` connections[] inside a database create response.
 * `created`  POST /v1/databases/{id}/connections, POST /v1/connections, rotate: the secret.
 */
function checkConnection(c, base, mode, where) {
  const required = ['id', 'type', 'url', 'name', 'createdAt', 'kind', 'endpoints', 'database'];
  if (mode === 'created') keys(c, [...required, 'connectionString', 'host', 'pass', 'user'], ['directConnection'], where);
  else keys(c, required, ['directConnection'], where);
  str(c.id, `${where}.id`);
  assert.equal(c.type, 'connection', `${where}.type`);
  url(c.url, base, `/v1/connections/${c.id}`, `${where}.url`);
  str(c.name, `${where}.name`);
  iso(c.createdAt, `${where}.createdAt`);
  assert.equal(c.kind, 'postgres', `${where}.kind`);
  checkEndpoints(c.endpoints, mode === 'read' ? 'read' : mode === 'embedded' ? 'create' : 'created', `${where}.endpoints`);
  checkRef(c.database, base, 'databases', 'db_', `${where}.database`);
  if (mode === 'read') {
    assert.ok(c.directConnection === undefined || c.directConnection === null, `${where}.directConnection must be null on reads (no password)`);
  } else if (c.directConnection !== undefined && c.directConnection !== null) {
    checkDirectConnection(c.directConnection, `${where}.directConnection`);
  }
  if (mode === 'created') {
    str(c.connectionString, `${where}.connectionString`);
    strOrNull(c.host, `${where}.host`);
    strOrNull(c.pass, `${where}.pass`);
    strOrNull(c.user, `${where}.user`);
    checkConnString(c.endpoints.direct.connectionString, c.endpoints.direct, `${where}.endpoints.direct.connectionString`);
    if (c.user !== null) assert.equal(c.user, parseConnString(c.endpoints.direct.connectionString).user, `${where}.user`);
    if (c.pass !== null) assert.equal(c.pass, parseConnString(c.endpoints.direct.connectionString).password, `${where}.pass`);
  }
}

function checkApiKey(k, base, where) {
  keys(k, ['id', 'type', 'url', 'name', 'createdAt', 'kind', 'endpoints', 'connectionString'], ['directConnection'], where);
  str(k.id, `${where}.id`);
  assert.equal(k.type, 'connection', `${where}.type`);
  url(k.url, base, `/v1/connections/${k.id}`, `${where}.url`);
  str(k.name, `${where}.name`);
  iso(k.createdAt, `${where}.createdAt`);
  oneOf(k.kind, ['postgres', 'accelerate'], `${where}.kind`);
  checkEndpoints(k.endpoints, 'read', `${where}.endpoints`);
  str(k.connectionString, `${where}.connectionString`);
  if (k.directConnection !== undefined && k.directConnection !== null) checkDirectConnection(k.directConnection, `${where}.directConnection`);
}

/**
 * A database object; `variant` names the response it comes from, whose key set differs:
 * `project-create`  POST /v1/projects `data.database` (no `project`; apiKeys/connectionString/directConnection)
 * `project-db-create` POST /v1/projects/{projectId}/databases (with `project` and the deprecated trio)
 * `db-create`       POST /v1/databases
 * `read`            GET /v1/databases, /v1/databases/{id}, /v1/projects/{id}/databases, PATCH
 */
function checkDatabase(d, base, variant, where) {
  const common = ['id', 'type', 'url', 'name', 'status', 'createdAt', 'isDefault', 'defaultConnectionId', 'connections', 'region', 'source', 'branchId', 'logicalId'];
  const deprecated = ['apiKeys', 'connectionString', 'directConnection'];
  const required = {
    'project-create': [...common, ...deprecated],
    'project-db-create': [...common, 'project', ...deprecated],
    'db-create': [...common, 'project'],
    read: [...common, 'project'],
  }[variant];
  // restoreWindow: pgfleet's documented extension for point-in-time recovery (issue 19), null
  // when the database's server is not archived.
  keys(d, required, ['restoreWindow'], where);
  if (d.restoreWindow !== undefined && d.restoreWindow !== null) {
    keys(d.restoreWindow, ['earliest', 'latest'], [], `${where}.restoreWindow`);
    assert.match(d.restoreWindow.earliest, ISO_Z, `${where}.restoreWindow.earliest`);
    assert.match(d.restoreWindow.latest, ISO_Z, `${where}.restoreWindow.latest`);
  }
  id(d.id, 'db_', `${where}.id`);
  assert.equal(d.type, 'database', `${where}.type`);
  url(d.url, base, `/v1/databases/${d.id}`, `${where}.url`);
  str(d.name, `${where}.name`);
  oneOf(d.status, variant.endsWith('create') && variant !== 'db-create' ? ['provisioning', 'ready'] : ['failure', 'provisioning', 'ready', 'recovering'], `${where}.status`);
  iso(d.createdAt, `${where}.createdAt`);
  bool(d.isDefault, `${where}.isDefault`);
  strOrNull(d.defaultConnectionId, `${where}.defaultConnectionId`);
  assert.ok(Array.isArray(d.connections), `${where}.connections: expected an array`);
  d.connections.forEach((c, i) => {
    checkConnection(c, base, variant === 'read' ? 'read' : 'embedded', `${where}.connections[${i}]`);
    assert.equal(c.database.id, d.id, `${where}.connections[${i}].database.id`);
  });
  if (d.defaultConnectionId !== null) {
    assert.ok(d.connections.some((c) => c.id === d.defaultConnectionId), `${where}.defaultConnectionId ${d.defaultConnectionId} is not among connections[]`);
  }
  if (variant !== 'project-create') checkRef(d.project, base, 'projects', 'proj_', `${where}.project`);
  if (d.region !== null || variant === 'project-create' || variant === 'project-db-create') {
    keys(d.region, ['id', 'name'], [], `${where}.region`);
    str(d.region.id, `${where}.region.id`);
    str(d.region.name, `${where}.region.name`);
  }
  checkSource(d.source, `${where}.source`);
  strOrNull(d.branchId, `${where}.branchId`);
  strOrNull(d.logicalId, `${where}.logicalId`);
  if (deprecated.every((k) => required.includes(k))) {
    assert.ok(Array.isArray(d.apiKeys), `${where}.apiKeys: expected an array`);
    d.apiKeys.forEach((k, i) => checkApiKey(k, base, `${where}.apiKeys[${i}]`));
    strOrNull(d.connectionString, `${where}.connectionString`);
    if (d.directConnection !== null) checkDirectConnection(d.directConnection, `${where}.directConnection`);
  }
}

function checkRegion(r, withProduct, where) {
  keys(r, withProduct ? ['id', 'type', 'name', 'product'] : ['id', 'type', 'name', 'status'], withProduct ? ['status'] : [], where);
  str(r.id, `${where}.id`);
  assert.equal(r.type, 'region', `${where}.type`);
  str(r.name, `${where}.name`);
  if (withProduct) oneOf(r.product, ['postgres', 'accelerate'], `${where}.product`);
  if (r.status !== undefined) oneOf(r.status, ['available', 'unavailable'], `${where}.status`);
}

// ------------------------------------------------------------------------------------------------
// HTTP and PostgreSQL helpers
// ------------------------------------------------------------------------------------------------

function show(res) {
  const r = res.response;
  return `HTTP ${r.status} from ${r.url} (x-request-id ${r.headers.get('x-request-id')}): ${JSON.stringify(res.error ?? res.data)}`;
}

/** Asserts the status and the headers every response carries; returns `data`. */
function ok(res, status) {
  assert.equal(res.response.status, status, `expected HTTP ${status}, got ${show(res)}`);
  assert.ok(res.response.headers.get('x-request-id'), `x-request-id header missing: ${show(res)}`);
  if (status === 204) {
    assert.equal(res.data, undefined, '204 must have no body');
  } else {
    assert.match(res.response.headers.get('content-type') ?? '', /^application\/json/, `content-type of ${show(res)}`);
  }
  return res.data;
}

/** Asserts an error response `{error:{code,message,hint?}}`; returns the inner error. */
function fails(res, status, code) {
  assert.equal(res.response.status, status, `expected HTTP ${status}, got ${show(res)}`);
  assert.equal(res.data, undefined);
  assert.match(res.response.headers.get('content-type') ?? '', /^application\/json/, `content-type of ${show(res)}`);
  errorBody(res.error, `HTTP ${status} body`);
  if (code) assert.equal(res.error.error.code, code, `error code of ${show(res)}`);
  return res.error.error;
}

function need(value, what) {
  if (value === undefined || value === null) throw new Error(`needs ${what}, which an earlier step did not produce (see the first failure above)`);
  return value;
}

function parseConnString(cs) {
  const u = new URL(cs);
  return {
    protocol: u.protocol,
    host: u.hostname,
    port: u.port ? Number(u.port) : 5432,
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: decodeURIComponent(u.pathname.replace(/^\//, '')),
    sslmode: u.searchParams.get('sslmode'),
  };
}

function checkConnString(cs, endpoint, where) {
  str(cs, where);
  const p = parseConnString(cs);
  oneOf(p.protocol, ['postgresql:', 'postgres:'], `${where} scheme`);
  str(p.user, `${where} user`);
  str(p.password, `${where} password`);
  str(p.database, `${where} database`);
  assert.equal(p.sslmode, 'require', `${where}: sslmode`);
  if (endpoint) {
    assert.equal(p.host, endpoint.host, `${where}: host differs from endpoints.direct.host`);
    assert.equal(p.port, endpoint.port, `${where}: port differs from endpoints.direct.port`);
  }
  return p;
}

/** The server's certificate is self-signed: TLS is required but not verified; sslmode is stripped. */
function pgClient(cs) {
  const p = parseConnString(cs);
  const client = new pg.Client({
    host: p.host,
    port: p.port,
    user: p.user,
    password: p.password,
    database: p.database,
    ssl: { rejectUnauthorized: false },
    connectionTimeoutMillis: 15_000,
  });
  client.on('error', () => {});
  return client;
}

async function withPg(cs, fn) {
  const client = pgClient(cs);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

async function expectRefused(cs, what) {
  const client = pgClient(cs);
  let connected = false;
  try {
    await client.connect();
    connected = true;
  } catch (e) {
    assert.ok(REFUSED.includes(e.code), `${what}: expected a refused login (${REFUSED.join('/')}), got ${e.code ?? ''} ${e.message}`);
  } finally {
    await client.end().catch(() => {});
  }
  assert.ok(!connected, `${what}: the login succeeded but must be refused`);
}

// ------------------------------------------------------------------------------------------------
// The lifecycle
// ------------------------------------------------------------------------------------------------

describe('pgfleet /v1 through @prisma/management-api-sdk', { timeout: 20 * 60_000 }, () => {
  /** @type {Server} */
  let server;
  let base;
  /** @type {ReturnType<typeof createManagementApiClient>} */
  let client;
  const S = {}; // state handed from step to step

  before(async () => {
    server = new Server({ name: 'sdk', tokenPrefix: 'pgfleet_sdk_test_', tokenBytes: 24, checkedStop: true }); // a 65-character token
    base = await server.start();
    client = createManagementApiClient({ baseUrl: base, token: server.token });
  }, { timeout: START_TIMEOUT_MS + 10_000 });

  after(async () => {
    try {
      if (server) await server.stop();
    } finally {
      server?.cleanup();
    }
  }, { timeout: STOP_TIMEOUT_MS + 30_000 });

  const step = (name, fn) => it(name, { timeout: STEP_TIMEOUT_MS }, fn);

  async function waitReady(databaseId) {
    const deadline = Date.now() + 90_000;
    for (;;) {
      const res = await client.GET('/v1/databases/{databaseId}', { params: { path: { databaseId } } });
      const d = ok(res, 200).data;
      if (d.status === 'ready') return d;
      assert.notEqual(d.status, 'failure', `database ${databaseId} failed to provision`);
      assert.ok(Date.now() < deadline, `database ${databaseId} still ${d.status} after 90 s`);
      await sleep(500);
    }
  }

  // -------------------------------------------------------------------- identity and workspaces

  step('GET /v1/me', async () => {
    const body = ok(await client.GET('/v1/me'), 200);
    keys(body, ['data'], [], 'me');
    const d = body.data;
    keys(d, ['user', 'workspace', 'credential'], [], 'me.data');
    if (d.user !== null) {
      keys(d.user, ['id', 'email', 'name'], [], 'me.data.user');
      str(d.user.id, 'me.data.user.id');
      assert.match(d.user.email, /^[^@\s]+@[^@\s]+$/, 'me.data.user.email');
      strOrNull(d.user.name, 'me.data.user.name');
    }
    keys(d.workspace, ['id', 'name'], [], 'me.data.workspace');
    id(d.workspace.id, 'wksp_', 'me.data.workspace.id');
    str(d.workspace.name, 'me.data.workspace.name');
    // projectId, readOnly: pgfleet's documented extension (the credential's own limits).
    keys(d.credential, ['type', 'id', 'name'], ['projectId', 'readOnly'], 'me.data.credential');
    assert.equal(d.credential.type, 'service_token', 'me.data.credential.type');
    strOrNull(d.credential.id, 'me.data.credential.id');
    strOrNull(d.credential.name, 'me.data.credential.name');
    S.workspaceId = d.workspace.id;
    S.workspaceName = d.workspace.name;
    S.bootstrapTokenId = d.credential.id;
  });

  step('GET /v1/workspaces (with pagination)', async () => {
    const wsId = need(S.workspaceId, 'the workspace id from GET /v1/me');
    const body = ok(await client.GET('/v1/workspaces'), 200);
    list(body, 'workspaces', (w, where) => checkWorkspace(w, base, where));
    assert.deepEqual(body.data.map((w) => w.id), [wsId], 'a service token sees exactly its own workspace');
    assert.equal(body.data[0].name, S.workspaceName);
    const page = ok(await client.GET('/v1/workspaces', { params: { query: { limit: 1 } } }), 200);
    list(page, 'workspaces?limit=1', (w, where) => checkWorkspace(w, base, where));
    assert.equal(page.data.length, 1);
    assert.deepEqual(page.pagination, { nextCursor: null, hasMore: false });
  });

  step('GET /v1/workspaces/{id}', async () => {
    const wsId = need(S.workspaceId, 'the workspace id from GET /v1/me');
    const body = ok(await client.GET('/v1/workspaces/{id}', { params: { path: { id: wsId } } }), 200);
    keys(body, ['data'], [], 'workspace');
    checkWorkspace(body.data, base, 'workspace.data');
    assert.equal(body.data.id, wsId);
    fails(await client.GET('/v1/workspaces/{id}', { params: { path: { id: 'wksp_doesnotexist' } } }), 404, 'not_found');
  });

  // ----------------------------------------------------------------------------------- regions

  step('GET /v1/regions', async () => {
    const body = ok(await client.GET('/v1/regions'), 200);
    keys(body, ['data'], [], 'regions');
    assert.ok(Array.isArray(body.data), 'regions.data: expected an array');
    body.data.forEach((r, i) => checkRegion(r, true, `regions.data[${i}]`));
    const pgRegions = body.data.filter((r) => r.product === 'postgres');
    for (const rid of CONTRACT_REGIONS) {
      const r = pgRegions.find((x) => x.id === rid);
      assert.ok(r, `postgres region ${rid} missing from GET /v1/regions`);
      if (r.status !== undefined) assert.equal(r.status, rid === 'us-east-1' ? 'available' : 'unavailable', `status of ${rid}`);
    }
    const filtered = ok(await client.GET('/v1/regions', { params: { query: { product: 'postgres' } } }), 200);
    keys(filtered, ['data'], [], 'regions?product=postgres');
    filtered.data.forEach((r, i) => {
      checkRegion(r, true, `regions?product=postgres.data[${i}]`);
      assert.equal(r.product, 'postgres', `regions?product=postgres.data[${i}].product`);
    });
    assert.deepEqual(filtered.data.map((r) => r.id).sort(), pgRegions.map((r) => r.id).sort());
  });

  step('GET /v1/regions/postgres', async () => {
    const body = ok(await client.GET('/v1/regions/postgres'), 200);
    keys(body, ['data'], [], 'regions/postgres');
    assert.ok(Array.isArray(body.data), 'regions/postgres.data: expected an array');
    body.data.forEach((r, i) => checkRegion(r, false, `regions/postgres.data[${i}]`));
    for (const rid of CONTRACT_REGIONS) {
      const r = body.data.find((x) => x.id === rid);
      assert.ok(r, `region ${rid} missing from GET /v1/regions/postgres`);
      assert.equal(r.status, rid === 'us-east-1' ? 'available' : 'unavailable', `status of ${rid}`);
    }
  });

  // ----------------------------------------------------------------------------- service tokens

  step('POST /v1/workspaces/{workspaceId}/service-tokens, and the new token works', async () => {
    const workspaceId = need(S.workspaceId, 'the workspace id from GET /v1/me');
    const res = await client.POST('/v1/workspaces/{workspaceId}/service-tokens', {
      params: { path: { workspaceId } },
      body: { name: 'sdk-test' },
    });
    const body = ok(res, 201);
    keys(body, ['data'], [], 'service token');
    checkServiceToken(body.data, true, 'service token.data');
    assert.equal(body.data.name, 'sdk-test');
    S.token = body.data;

    const other = createManagementApiClient({ baseUrl: base, token: body.data.value });
    const me = ok(await other.GET('/v1/me'), 200).data;
    assert.equal(me.workspace.id, workspaceId);
    assert.deepEqual(me.credential, { type: 'service_token', id: body.data.id, name: 'sdk-test', projectId: null, readOnly: false });
  });

  step('GET /v1/workspaces/{workspaceId}/service-tokens (no secrets)', async () => {
    const workspaceId = need(S.workspaceId, 'the workspace id from GET /v1/me');
    const token = need(S.token, 'the service token created above');
    const res = await client.GET('/v1/workspaces/{workspaceId}/service-tokens', { params: { path: { workspaceId } } });
    const body = ok(res, 200);
    list(body, 'service tokens', (t, where) => checkServiceToken(t, false, where));
    assert.ok(!JSON.stringify(body).includes(token.value), 'a token value must never be listed');
    assert.ok(!JSON.stringify(body).includes(server.token), 'the bootstrap token value must never be listed');
    const ids = body.data.map((t) => t.id);
    assert.ok(ids.includes(token.id), 'the new token is listed');
    if (S.bootstrapTokenId) assert.ok(ids.includes(S.bootstrapTokenId), 'the bootstrap token is listed');
    assert.equal(body.data.find((t) => t.id === token.id).valueHint, token.valueHint);
  });

  step('GET /v1/workspaces/{workspaceId}/service-tokens lists newest first (contract description)', async () => {
    const workspaceId = need(S.workspaceId, 'the workspace id from GET /v1/me');
    const token = need(S.token, 'the service token created above');
    const body = ok(await client.GET('/v1/workspaces/{workspaceId}/service-tokens', { params: { path: { workspaceId } } }), 200);
    const ids = body.data.map((t) => t.id);
    const created = body.data.map((t) => t.createdAt);
    assert.equal(ids[0], token.id, `the contract says "Returns the service tokens for the given workspace, newest first"; got ${JSON.stringify(ids)}`);
    assert.deepEqual(created, [...created].sort().reverse(), 'createdAt descending');
  });

  step('DELETE /v1/workspaces/{workspaceId}/service-tokens/{serviceTokenId}, then the token is refused', async () => {
    const workspaceId = need(S.workspaceId, 'the workspace id from GET /v1/me');
    const token = need(S.token, 'the service token created above');
    const del = () => client.DELETE('/v1/workspaces/{workspaceId}/service-tokens/{serviceTokenId}', {
      params: { path: { workspaceId, serviceTokenId: token.id } },
    });
    ok(await del(), 204);
    const revoked = createManagementApiClient({ baseUrl: base, token: token.value });
    fails(await revoked.GET('/v1/me'), 401, 'authentication-failed');
    const listed = ok(await client.GET('/v1/workspaces/{workspaceId}/service-tokens', { params: { path: { workspaceId } } }), 200);
    assert.ok(!listed.data.some((t) => t.id === token.id), 'a deleted token is no longer listed');
    fails(await del(), 404, 'not_found');
  });

  // ---------------------------------------------------------------------------------- projects

  step('POST /v1/projects {name, region: us-east-1} creates the project and its default database', async () => {
    const res = await client.POST('/v1/projects', { body: { name: 'sdk-test-project', region: 'us-east-1' } });
    const body = ok(res, 201);
    keys(body, ['data'], [], 'project');
    const p = body.data;
    checkProject(p, base, { withDatabase: true }, 'project.data');
    assert.equal(p.name, 'sdk-test-project');
    if (S.workspaceId) assert.equal(p.workspace.id, S.workspaceId);
    if (p.defaultRegion !== null) assert.equal(p.defaultRegion, 'us-east-1', 'project.data.defaultRegion');
    S.project = p;

    const d = p.database;
    assert.ok(d !== null, 'createDatabase defaults to true: data.database must not be null');
    checkDatabase(d, base, 'project-create', 'project.data.database');
    assert.equal(d.isDefault, true, 'the project database is the default one');
    assert.equal(d.region.id, 'us-east-1');
    assert.ok(d.connections.length >= 1, 'the new database has a connection');
    const c0 = d.connections[0];
    const cs = c0.endpoints.direct.connectionString;
    const parsed = checkConnString(cs, c0.endpoints.direct, 'connections[0].endpoints.direct.connectionString');
    str(d.connectionString, 'database.connectionString');
    oneOf(parseConnString(d.connectionString).protocol, ['postgresql:', 'postgres:'], 'database.connectionString scheme');
    assert.ok(d.directConnection !== null, 'database.directConnection carries the new credentials');
    assert.equal(d.directConnection.user, parsed.user, 'directConnection.user');
    assert.equal(d.directConnection.pass, parsed.password, 'directConnection.pass');
    assert.ok(d.directConnection.host.startsWith(parsed.host), `directConnection.host ${d.directConnection.host} vs ${parsed.host}`);
    S.db0 = d;
    S.cs0 = cs;
    S.pass0 = parsed.password;
  });

  step('the default database is ready and node pg connects with its direct connection string (TLS)', async () => {
    const d0 = need(S.db0, 'the default database from POST /v1/projects');
    const ready = await waitReady(d0.id);
    checkDatabase(ready, base, 'read', 'database');
    await withPg(S.cs0, async (db) => {
      const info = await db.query('select current_database() as db, session_user as usr');
      const p = parseConnString(S.cs0);
      assert.equal(info.rows[0].db, p.database);
      assert.equal(info.rows[0].usr, p.user);
      assert.equal(db.connection.stream.encrypted, true, 'the connection must be TLS-encrypted');
      await db.query('create table sdk_items (id serial primary key, name text not null)');
      await db.query("insert into sdk_items (name) values ('alpha'), ('beta'), ('gamma')");
      const rows = await db.query('select name from sdk_items order by id');
      assert.deepEqual(rows.rows.map((r) => r.name), ['alpha', 'beta', 'gamma']);
    });
  });

  step('GET /v1/projects and GET /v1/projects/{id} (no password on reads)', async () => {
    const p = need(S.project, 'the project from POST /v1/projects');
    const listed = ok(await client.GET('/v1/projects'), 200);
    list(listed, 'projects', (x, where) => checkProject(x, base, { withDatabase: false }, where));
    assert.ok(listed.data.some((x) => x.id === p.id), 'the new project is listed');
    const got = ok(await client.GET('/v1/projects/{id}', { params: { path: { id: p.id } } }), 200);
    keys(got, ['data'], [], 'project');
    checkProject(got.data, base, { withDatabase: false }, 'project.data');
    const { database: _db, ...created } = p;
    assert.deepEqual(got.data, created, 'GET returns what POST returned (without the database)');
    // The url field leads back to the same resource.
    const viaUrl = ok(await client.GET(new URL(got.data.url).pathname), 200);
    assert.equal(viaUrl.data.id, p.id);
    if (S.pass0) assert.ok(!JSON.stringify([listed, got]).includes(S.pass0), 'project reads must not contain a password');
  });

  step('PATCH /v1/projects/{id} {name}', async () => {
    const p = need(S.project, 'the project from POST /v1/projects');
    const res = await client.PATCH('/v1/projects/{id}', { params: { path: { id: p.id } }, body: { name: 'sdk-test-project-renamed' } });
    const body = ok(res, 200);
    keys(body, ['data'], [], 'project');
    checkProject(body.data, base, { withDatabase: false }, 'project.data');
    assert.equal(body.data.id, p.id);
    assert.equal(body.data.name, 'sdk-test-project-renamed');
    assert.equal(body.data.createdAt, p.createdAt);
    const got = ok(await client.GET('/v1/projects/{id}', { params: { path: { id: p.id } } }), 200);
    assert.equal(got.data.name, 'sdk-test-project-renamed');
  });

  // --------------------------------------------------------------------------------- databases

  step('POST /v1/projects/{projectId}/databases creates a second, non-default database', async () => {
    const p = need(S.project, 'the project from POST /v1/projects');
    const res = await client.POST('/v1/projects/{projectId}/databases', {
      params: { path: { projectId: p.id } },
      body: { name: 'sdk-second', region: 'us-east-1' },
    });
    const body = ok(res, 201);
    keys(body, ['data'], [], 'database');
    const d = body.data;
    checkDatabase(d, base, 'project-db-create', 'database.data');
    assert.equal(d.name, 'sdk-second');
    assert.equal(d.isDefault, false);
    assert.equal(d.project.id, p.id);
    assert.equal(d.region.id, 'us-east-1');
    assert.ok(d.connections.length >= 1, 'the new database has a connection');
    const cs = d.connections[0].endpoints.direct?.connectionString ?? d.connectionString;
    checkConnString(cs, d.connections[0].endpoints.direct, 'second database connection string');
    S.db2 = d;
    S.cs2 = cs;

    await waitReady(d.id);
    await withPg(cs, async (db) => {
      const r = await db.query("select current_database() as db, to_regclass('public.sdk_items') as t");
      assert.equal(r.rows[0].db, parseConnString(cs).database);
      assert.notEqual(r.rows[0].db, parseConnString(S.cs0).database, 'a second database is a separate PostgreSQL database');
      assert.equal(r.rows[0].t, null, 'the default database\'s table is not visible here');
    });
  });

  step('POST /v1/databases {projectId, name} creates a third database (region defaults to us-east-1)', async () => {
    const p = need(S.project, 'the project from POST /v1/projects');
    const res = await client.POST('/v1/databases', { body: { projectId: p.id, name: 'sdk-third' } });
    const body = ok(res, 201);
    keys(body, ['data'], [], 'database');
    const d = body.data;
    checkDatabase(d, base, 'db-create', 'database.data');
    assert.equal(d.name, 'sdk-third');
    assert.equal(d.isDefault, false);
    assert.equal(d.project.id, p.id);
    if (d.region !== null) assert.equal(d.region.id, 'us-east-1');
    S.db3 = d;
    await waitReady(d.id);
  });

  step('GET /v1/databases, ?projectId=, and cursor pagination', async () => {
    const p = need(S.project, 'the project from POST /v1/projects');
    const ids = [need(S.db0, 'the default database').id, need(S.db2, 'the second database').id, need(S.db3, 'the third database').id];
    const all = ok(await client.GET('/v1/databases'), 200);
    list(all, 'databases', (d, where) => checkDatabase(d, base, 'read', where));
    for (const i of ids) assert.ok(all.data.some((d) => d.id === i), `${i} is listed`);

    const mine = ok(await client.GET('/v1/databases', { params: { query: { projectId: p.id } } }), 200);
    list(mine, 'databases?projectId', (d, where) => checkDatabase(d, base, 'read', where));
    assert.deepEqual(mine.data.map((d) => d.id), ids, 'the project\'s databases, in creation order');
    assert.deepEqual(mine.pagination, { nextCursor: null, hasMore: false });
    if (S.pass0) assert.ok(!JSON.stringify(all).includes(S.pass0), 'database reads must not contain a password');

    const seen = [];
    let cursor;
    for (let i = 0; i < 5; i++) {
      const page = ok(await client.GET('/v1/databases', { params: { query: { projectId: p.id, limit: 1, cursor } } }), 200);
      list(page, `databases?limit=1 page ${i + 1}`, (d, where) => checkDatabase(d, base, 'read', where));
      assert.equal(page.data.length, 1, `page ${i + 1} has one item`);
      seen.push(page.data[0].id);
      if (!page.pagination.hasMore) break;
      cursor = page.pagination.nextCursor;
    }
    assert.deepEqual(seen, ids, 'walking the cursor yields each database once, in order');
  });

  step('GET /v1/projects/{projectId}/databases', async () => {
    const p = need(S.project, 'the project from POST /v1/projects');
    const ids = [need(S.db0, 'the default database').id, need(S.db2, 'the second database').id, need(S.db3, 'the third database').id];
    const body = ok(await client.GET('/v1/projects/{projectId}/databases', { params: { path: { projectId: p.id } } }), 200);
    list(body, 'project databases', (d, where) => checkDatabase(d, base, 'read', where));
    assert.deepEqual(body.data.map((d) => d.id), ids);
    assert.deepEqual(body.data.map((d) => d.isDefault), [true, false, false]);
    fails(await client.GET('/v1/projects/{projectId}/databases', { params: { path: { projectId: 'proj_doesnotexist' } } }), 404, 'not_found');
  });

  step('GET /v1/databases/{databaseId}', async () => {
    const d0 = need(S.db0, 'the default database');
    const body = ok(await client.GET('/v1/databases/{databaseId}', { params: { path: { databaseId: d0.id } } }), 200);
    keys(body, ['data'], [], 'database');
    checkDatabase(body.data, base, 'read', 'database.data');
    assert.equal(body.data.id, d0.id);
    assert.equal(body.data.name, d0.name);
    assert.equal(body.data.isDefault, true);
    assert.equal(body.data.status, 'ready');
    assert.equal(body.data.createdAt, d0.createdAt);
    assert.deepEqual(body.data.region, d0.region);
    assert.equal(body.data.project.id, S.project.id);
    assert.deepEqual(body.data.connections.map((c) => c.id), d0.connections.map((c) => c.id));
    if (S.pass0) assert.ok(!JSON.stringify(body).includes(S.pass0), 'database reads must not contain a password');
    const viaUrl = ok(await client.GET(new URL(body.data.url).pathname), 200);
    assert.equal(viaUrl.data.id, d0.id);
  });

  step('PATCH /v1/databases/{databaseId} {name}', async () => {
    const d2 = need(S.db2, 'the second database');
    const res = await client.PATCH('/v1/databases/{databaseId}', { params: { path: { databaseId: d2.id } }, body: { name: 'sdk-second-renamed' } });
    const body = ok(res, 200);
    keys(body, ['data'], [], 'database');
    checkDatabase(body.data, base, 'read', 'database.data');
    assert.equal(body.data.id, d2.id);
    assert.equal(body.data.name, 'sdk-second-renamed');
    assert.equal(body.data.isDefault, false);
    const got = ok(await client.GET('/v1/databases/{databaseId}', { params: { path: { databaseId: d2.id } } }), 200);
    assert.equal(got.data.name, 'sdk-second-renamed');
    // The data plane is untouched by a rename.
    await withPg(need(S.cs2, 'the second database\'s connection string'), (db) => db.query('select 1'));
  });

  // ------------------------------------------------------------------------------- connections

  step('POST /v1/databases/{databaseId}/connections {name} -> 200, and the credentials work', async () => {
    const d0 = need(S.db0, 'the default database');
    const res = await client.POST('/v1/databases/{databaseId}/connections', { params: { path: { databaseId: d0.id } }, body: { name: 'sdk-conn-a' } });
    const body = ok(res, 200);
    keys(body, ['data'], [], 'connection');
    const c = body.data;
    checkConnection(c, base, 'created', 'connection.data');
    assert.equal(c.name, 'sdk-conn-a');
    assert.equal(c.database.id, d0.id);
    S.connA = c;
    await withPg(c.endpoints.direct.connectionString, async (db) => {
      const r = await db.query('select current_database() as db');
      assert.equal(r.rows[0].db, parseConnString(S.cs0).database, 'the connection is to the same database');
      const rows = await db.query('select name from sdk_items order by id');
      assert.deepEqual(rows.rows.map((x) => x.name), ['alpha', 'beta', 'gamma'], 'a new connection sees the database\'s data');
      await db.query("insert into sdk_items (name) values ('delta')");
    });
  });

  step('POST /v1/connections {databaseId, name} -> 201, and the credentials work', async () => {
    const d0 = need(S.db0, 'the default database');
    const res = await client.POST('/v1/connections', { body: { databaseId: d0.id, name: 'sdk-conn-b' } });
    const body = ok(res, 201);
    keys(body, ['data'], [], 'connection');
    const c = body.data;
    checkConnection(c, base, 'created', 'connection.data');
    assert.equal(c.name, 'sdk-conn-b');
    assert.equal(c.database.id, d0.id);
    S.connB = c;
    await withPg(c.endpoints.direct.connectionString, async (db) => {
      const rows = await db.query('select count(*)::int as n from sdk_items');
      assert.equal(rows.rows[0].n, 4);
    });
  });

  step('GET /v1/connections, ?databaseId=, /v1/databases/{id}/connections, /v1/connections/{id} (no password)', async () => {
    const d0 = need(S.db0, 'the default database');
    const a = need(S.connA, 'connection A');
    const b = need(S.connB, 'connection B');
    const ids0 = [...d0.connections.map((c) => c.id), a.id, b.id];
    const secrets = [S.pass0, a.pass, b.pass, parseConnString(a.connectionString).password, parseConnString(b.connectionString).password].filter(Boolean);
    const noSecrets = (body, where) => {
      const text = JSON.stringify(body);
      for (const s of secrets) assert.ok(!text.includes(s), `${where} must not contain a password`);
    };

    const all = ok(await client.GET('/v1/connections'), 200);
    list(all, 'connections', (c, where) => checkConnection(c, base, 'read', where));
    for (const i of ids0) assert.ok(all.data.some((c) => c.id === i), `connection ${i} is listed`);
    noSecrets(all, 'GET /v1/connections');

    const byDb = ok(await client.GET('/v1/connections', { params: { query: { databaseId: d0.id } } }), 200);
    list(byDb, 'connections?databaseId', (c, where) => checkConnection(c, base, 'read', where));
    assert.deepEqual(byDb.data.map((c) => c.id), ids0, 'the database\'s connections, in creation order');
    assert.ok(byDb.data.every((c) => c.database.id === d0.id));
    noSecrets(byDb, 'GET /v1/connections?databaseId');

    const nested = ok(await client.GET('/v1/databases/{databaseId}/connections', { params: { path: { databaseId: d0.id } } }), 200);
    list(nested, 'database connections', (c, where) => checkConnection(c, base, 'read', where));
    assert.deepEqual(nested.data.map((c) => c.id), ids0);
    noSecrets(nested, 'GET /v1/databases/{id}/connections');

    const one = ok(await client.GET('/v1/connections/{id}', { params: { path: { id: a.id } } }), 200);
    keys(one, ['data'], [], 'connection');
    checkConnection(one.data, base, 'read', 'connection.data');
    assert.equal(one.data.id, a.id);
    assert.equal(one.data.name, 'sdk-conn-a');
    assert.equal(one.data.createdAt, a.createdAt);
    assert.equal(one.data.directConnection ?? null, null, 'directConnection is null on reads');
    assert.deepEqual(one.data.endpoints.direct, { host: a.endpoints.direct.host, port: a.endpoints.direct.port });
    noSecrets(one, 'GET /v1/connections/{id}');

    fails(await client.GET('/v1/connections/{id}', { params: { path: { id: 'con_doesnotexist' } } }), 404, 'not_found');
  });

  step('POST /v1/connections/{id}/rotate: the new password connects, the old one is refused', async () => {
    const b = need(S.connB, 'connection B');
    const oldCs = b.endpoints.direct.connectionString;
    const res = await client.POST('/v1/connections/{id}/rotate', { params: { path: { id: b.id } } });
    const body = ok(res, 200);
    keys(body, ['data'], [], 'rotated connection');
    const c = body.data;
    checkConnection(c, base, 'created', 'rotated connection.data');
    assert.equal(c.id, b.id, 'rotation keeps the connection id');
    assert.equal(c.name, b.name);
    assert.equal(c.database.id, b.database.id);
    const newCs = c.endpoints.direct.connectionString;
    assert.notEqual(parseConnString(newCs).password, parseConnString(oldCs).password, 'rotation changes the password');
    await withPg(newCs, async (db) => {
      const rows = await db.query('select count(*)::int as n from sdk_items');
      assert.equal(rows.rows[0].n, 4);
    });
    await expectRefused(oldCs, 'the pre-rotation credentials');
    S.connB = c;
  });

  step('DELETE /v1/connections/{id} -> 204, then its credentials are refused', async () => {
    const a = need(S.connA, 'connection A');
    ok(await client.DELETE('/v1/connections/{id}', { params: { path: { id: a.id } } }), 204);
    await expectRefused(a.endpoints.direct.connectionString, 'a deleted connection');
    fails(await client.GET('/v1/connections/{id}', { params: { path: { id: a.id } } }), 404, 'not_found');
    fails(await client.DELETE('/v1/connections/{id}', { params: { path: { id: a.id } } }), 404, 'not_found');
    const left = ok(await client.GET('/v1/databases/{databaseId}/connections', { params: { path: { databaseId: a.database.id } } }), 200);
    assert.ok(!left.data.some((c) => c.id === a.id), 'a deleted connection is no longer listed');
    // The other connections are unaffected.
    await withPg(need(S.cs0, 'the default connection string'), (db) => db.query('select 1'));
  });

  // ---------------------------------------------------------------------------------- transfer

  step('POST /v1/projects/{id}/transfer {recipientAccessToken} -> 204, the project stays readable', async () => {
    const p = need(S.project, 'the project from POST /v1/projects');
    const workspaceId = need(S.workspaceId, 'the workspace id from GET /v1/me');
    const created = ok(await client.POST('/v1/workspaces/{workspaceId}/service-tokens', {
      params: { path: { workspaceId } },
      body: { name: 'sdk-transfer-recipient' },
    }), 201).data;
    try {
      const res = await client.POST('/v1/projects/{id}/transfer', {
        params: { path: { id: p.id } },
        body: { recipientAccessToken: created.value },
      });
      ok(res, 204);
      const got = ok(await client.GET('/v1/projects/{id}', { params: { path: { id: p.id } } }), 200);
      checkProject(got.data, base, { withDatabase: false }, 'project.data');
      assert.equal(got.data.workspace.id, workspaceId);
      const recipient = createManagementApiClient({ baseUrl: base, token: created.value });
      const seen = ok(await recipient.GET('/v1/projects/{id}', { params: { path: { id: p.id } } }), 200);
      assert.equal(seen.data.id, p.id, 'the recipient sees the project');
      fails(await client.POST('/v1/projects/{id}/transfer', {
        params: { path: { id: 'proj_doesnotexist' } },
        body: { recipientAccessToken: created.value },
      }), 404, 'not_found');
    } finally {
      await client.DELETE('/v1/workspaces/{workspaceId}/service-tokens/{serviceTokenId}', {
        params: { path: { workspaceId, serviceTokenId: created.id } },
      });
    }
  });

  // -------------------------------------------------------------------------- errors, deletion

  step('GET /v1/databases/db_doesnotexist -> 404 {error:{code:not_found, message}}', async () => {
    const e = fails(await client.GET('/v1/databases/{databaseId}', { params: { path: { databaseId: 'db_doesnotexist' } } }), 404, 'not_found');
    // pgfleet's unknown-route 404 has the same code; make sure this one comes from the resource.
    assert.doesNotMatch(e.message, /^No route/, 'the 404 must come from the databases route, not the unknown-route fallback');
    fails(await client.GET('/v1/projects/{id}', { params: { path: { id: 'proj_doesnotexist' } } }), 404, 'not_found');
    fails(await client.PATCH('/v1/databases/{databaseId}', { params: { path: { databaseId: 'db_doesnotexist' } }, body: { name: 'x' } }), 404, 'not_found');
    fails(await client.POST('/v1/databases/{databaseId}/connections', { params: { path: { databaseId: 'db_doesnotexist' } }, body: { name: 'x' } }), 404, 'not_found');
  });

  step('DELETE of the default database -> 403', async () => {
    const d0 = need(S.db0, 'the default database');
    fails(await client.DELETE('/v1/databases/{databaseId}', { params: { path: { databaseId: d0.id } } }), 403);
    const still = ok(await client.GET('/v1/databases/{databaseId}', { params: { path: { databaseId: d0.id } } }), 200);
    assert.equal(still.data.status, 'ready');
    await withPg(need(S.cs0, 'the default connection string'), (db) => db.query('select count(*) from sdk_items'));
  });

  step('DELETE /v1/projects/{id} while a non-default database remains -> 400', async () => {
    const p = need(S.project, 'the project from POST /v1/projects');
    fails(await client.DELETE('/v1/projects/{id}', { params: { path: { id: p.id } } }), 400);
    ok(await client.GET('/v1/projects/{id}', { params: { path: { id: p.id } } }), 200);
  });

  step('DELETE the non-default databases -> 204, then they are gone', async () => {
    const d2 = need(S.db2, 'the second database');
    const d3 = need(S.db3, 'the third database');
    for (const d of [d2, d3]) {
      ok(await client.DELETE('/v1/databases/{databaseId}', { params: { path: { databaseId: d.id } } }), 204);
      fails(await client.GET('/v1/databases/{databaseId}', { params: { path: { databaseId: d.id } } }), 404, 'not_found');
      fails(await client.DELETE('/v1/databases/{databaseId}', { params: { path: { databaseId: d.id } } }), 404, 'not_found');
    }
    await expectRefused(need(S.cs2, 'the second database\'s connection string'), 'a deleted database');
    const left = ok(await client.GET('/v1/projects/{projectId}/databases', { params: { path: { projectId: S.project.id } } }), 200);
    assert.deepEqual(left.data.map((d) => d.id), [S.db0.id]);
  });

  step('DELETE /v1/projects/{id} -> 204, then GET -> 404 and its database is gone', async () => {
    const p = need(S.project, 'the project from POST /v1/projects');
    ok(await client.DELETE('/v1/projects/{id}', { params: { path: { id: p.id } } }), 204);
    fails(await client.GET('/v1/projects/{id}', { params: { path: { id: p.id } } }), 404, 'not_found');
    fails(await client.DELETE('/v1/projects/{id}', { params: { path: { id: p.id } } }), 404, 'not_found');
    if (S.db0) {
      fails(await client.GET('/v1/databases/{databaseId}', { params: { path: { databaseId: S.db0.id } } }), 404, 'not_found');
      await expectRefused(S.cs0, 'the deleted project\'s database');
    }
    if (S.connB) {
      fails(await client.GET('/v1/connections/{id}', { params: { path: { id: S.connB.id } } }), 404, 'not_found');
      await expectRefused(S.connB.endpoints.direct.connectionString, 'a connection of the deleted project');
    }
    const listed = ok(await client.GET('/v1/projects'), 200);
    assert.ok(!listed.data.some((x) => x.id === p.id), 'a deleted project is no longer listed');
  });

  // ------------------------------------------------------------------------------------ auth

  step('a bad token -> 401 authentication-failed; no token -> 401 unauthorized', async () => {
    const bad = createManagementApiClient({ baseUrl: base, token: `bad_${randomBytes(20).toString('hex')}` });
    fails(await bad.GET('/v1/me'), 401, 'authentication-failed');
    fails(await bad.GET('/v1/workspaces'), 401, 'authentication-failed');
    const none = createManagementApiClient({ baseUrl: base });
    const res = await none.GET('/v1/workspaces');
    fails(res, 401, 'unauthorized');
    assert.match(res.response.headers.get('www-authenticate') ?? '', /^Bearer\b/, 'WWW-Authenticate: Bearer');
  });

  step('a bad token on the project, database and connection routes -> 401 authentication-failed', async () => {
    const bad = createManagementApiClient({ baseUrl: base, token: `bad_${randomBytes(20).toString('hex')}` });
    fails(await bad.GET('/v1/projects'), 401, 'authentication-failed');
    fails(await bad.POST('/v1/projects', { body: { name: 'nope', region: 'us-east-1' } }), 401, 'authentication-failed');
    fails(await bad.GET('/v1/databases'), 401, 'authentication-failed');
    fails(await bad.GET('/v1/connections'), 401, 'authentication-failed');
    fails(await bad.GET('/v1/regions/postgres'), 401, 'authentication-failed');
  });
});
