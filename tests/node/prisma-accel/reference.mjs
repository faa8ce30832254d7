// The reference side of the prisma+postgres:// tests: the npm `@prisma/query-plan-executor`
// (the executor Prisma runs behind Accelerate / Prisma Postgres) served over node:http on a
// loopback port, and a recording HTTP proxy that sits between Prisma Client and any executor
// (the reference or pgfleet) and keeps every request/response pair per scenario, so that the
// exchanged JSON can be committed as fixtures (tests/fixtures/accelerate/*.json).
import { AsyncLocalStorage } from 'node:async_hooks';
import http from 'node:http';

import { context, ROOT_CONTEXT } from '@opentelemetry/api';

import { Server, withActiveLogger, createConsoleLogger, parseDuration } from '@prisma/query-plan-executor';

// Limits given to the reference executor; they are its own defaults in Prisma's deployment as
// far as the package shows (the package has none: every field of `Options` is required).
export const REFERENCE_LIMITS = {
  queryTimeout: '30000',
  maxTransactionTimeout: '15000',
  maxTransactionWaitTime: '5000',
  maxResponseSize: 128 * 1024 * 1024,
};

// The executor keeps its logger in the OpenTelemetry context (`withActiveLogger`) and fails
// every request with "No active logger found" unless a context manager carries that context
// across awaits; its own entry point registers @opentelemetry/context-async-hooks. This is the
// same thing in a few lines (the API's registry is global, so the bundled copy sees it).
class AsyncLocalStorageContextManager {
  #als = new AsyncLocalStorage();
  active() {
    return this.#als.getStore() ?? ROOT_CONTEXT;
  }
  with(ctx, fn, thisArg, ...args) {
    return this.#als.run(ctx, () => fn.apply(thisArg, args));
  }
  bind(_ctx, target) {
    return target;
  }
  enable() {
    return this;
  }
  disable() {
    this.#als.disable();
    return this;
  }
}
context.setGlobalContextManager(new AsyncLocalStorageContextManager());

// Adapts a WHATWG `fetch` handler to node:http.
function serveFetch(fetchHandler) {
  return http.createServer(async (req, res) => {
    try {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      const body = Buffer.concat(chunks);
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
      const request = new Request(`http://${req.headers.host}${req.url}`, {
        method: req.method,
        headers,
        body: req.method === 'GET' || req.method === 'HEAD' ? undefined : body,
      });
      const response = await fetchHandler(request);
      const out = Buffer.from(await response.arrayBuffer());
      res.writeHead(response.status, Object.fromEntries(response.headers));
      res.end(out);
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(e?.stack ?? e));
    }
  });
}

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

function close(server) {
  return new Promise((resolve) => {
    server.closeAllConnections?.();
    server.close(() => resolve());
  });
}

// Starts the reference executor in this process in front of `databaseUrl` (postgresql://).
// Returns { url: 'http://127.0.0.1:PORT', port, stop() }.
export async function startReferenceExecutor(databaseUrl, limits = {}) {
  const l = { ...REFERENCE_LIMITS, ...limits };
  const logger = createConsoleLogger('text', process.env.QPE_LOG_LEVEL ?? 'off');
  const server = await withActiveLogger(logger, () =>
    Server.create({
      databaseUrl,
      queryTimeout: parseDuration(l.queryTimeout),
      maxTransactionTimeout: parseDuration(l.maxTransactionTimeout),
      maxTransactionWaitTime: parseDuration(l.maxTransactionWaitTime),
      maxResponseSize: l.maxResponseSize,
    }),
  );
  const httpServer = serveFetch((request) => withActiveLogger(logger, () => server.fetch(request)));
  const port = await listen(httpServer);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    async stop() {
      await close(httpServer);
      await withActiveLogger(logger, () => server.shutdown());
    },
  };
}

// Request headers the protocol defines (RemoteExecutor + HeaderBuilder in @prisma/client);
// everything else (host, connection, content-length, user-agent …) is transport noise.
const REQUEST_HEADERS = [
  'authorization',
  'accept',
  'content-type',
  'prisma-engine-hash',
  'prisma-engine-version',
  'x-capture-telemetry',
  'x-transaction-id',
  'traceparent',
  'cookie',
  'accelerate-query-engine-jwt',
  'x-query-timeout',
  'x-max-transaction-timeout',
  'x-max-response-size',
];
const RESPONSE_HEADERS = ['content-type', 'prisma-transaction-id', 'prisma-error-code', 'set-cookie', 'accelerate-query-engine-jwt'];

function pick(headers, names) {
  const out = {};
  for (const n of names) if (headers[n] !== undefined) out[n] = headers[n];
  return out;
}

function parseJson(buf) {
  if (buf.length === 0) return null;
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch {
    return { $text: buf.toString('utf8') };
  }
}

// A recording proxy in front of `targetUrl`. `scenario(name)` sets the label of the pairs
// recorded from then on; `records()` returns them grouped by scenario.
export async function startRecordingProxy(targetUrl) {
  const target = new URL(targetUrl);
  let current = 'unlabelled';
  const byScenario = new Map();
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    const headers = { ...req.headers };
    delete headers.host;
    const upstream = await fetch(new URL(req.url, target), {
      method: req.method,
      headers: Object.fromEntries(Object.entries(headers).filter(([k]) => !['connection', 'content-length', 'transfer-encoding', 'keep-alive'].includes(k))),
      body: req.method === 'GET' ? undefined : body,
    });
    const out = Buffer.from(await upstream.arrayBuffer());
    const respHeaders = Object.fromEntries(upstream.headers);
    const pair = {
      request: { method: req.method, path: req.url, headers: pick(req.headers, REQUEST_HEADERS), body: parseJson(body) },
      response: { status: upstream.status, headers: pick(respHeaders, RESPONSE_HEADERS), body: parseJson(out) },
    };
    if (!byScenario.has(current)) byScenario.set(current, []);
    byScenario.get(current).push(pair);
    delete respHeaders['content-encoding'];
    delete respHeaders['content-length'];
    delete respHeaders['transfer-encoding'];
    res.writeHead(upstream.status, respHeaders);
    res.end(out);
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    scenario(name) {
      current = name;
    },
    records() {
      return byScenario;
    },
    stop: () => close(server),
  };
}
