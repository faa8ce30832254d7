// Signed webhooks (issue 20) against a real `pgfleet serve`: a receiver (node http on
// 127.0.0.1) verifies every request with the `standardwebhooks` npm library (the reference
// verifier of the Standard Webhooks spec), an endpoint is created through the API, the
// events are triggered (database ready, backup, restore, token created and deleted, project
// transfer, database deleted), and pgfleet is stopped while deliveries hang at the receiver
// and restarted on the same data: every event arrives at least once, duplicates carry the
// same `webhook-id` and the same body.
//
// Run (as scripts/test does):
//   cd tests/node && PGFLEET_BIN=$PWD/../../target/debug/pgfleet \
//     node --test --test-concurrency=1 ./webhooks.test.mjs

import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import standardwebhooks from 'standardwebhooks';

import { Server } from './support.mjs';

const { Webhook } = standardwebhooks;
const WAIT_MS = 120_000;

/** Polls `check` every 200 ms until it returns a truthy value; fails after WAIT_MS. */
async function until(what, check) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${WAIT_MS / 1000} s: ${what}`);
    await sleep(200);
  }
}

/** The receiver: records every request, verified; answers per `mode` (ok, hang). */
class Receiver {
  constructor() {
    this.got = []; // {id, type, body}
    this.rejected = []; // verification failures
    this.mode = 'ok';
    this.hanging = []; // responses held open
    this.secret = null;
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        try {
          const payload = new Webhook(this.secret).verify(body, req.headers);
          // `acked`: answered 2xx (a held request is received but not acknowledged).
          this.got.push({ id: req.headers['webhook-id'], type: payload.type, body, payload, acked: this.mode !== 'hang' });
        } catch (e) {
          this.rejected.push(`${e.message}: ${body.slice(0, 200)}`);
        }
        if (this.mode === 'hang') {
          this.hanging.push(res);
          return;
        }
        res.writeHead(204).end();
      });
    });
  }

  async listen() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${this.server.address().port}/hooks`;
  }

  /** Distinct event types received and acknowledged. */
  types() {
    return new Set(this.got.filter((g) => g.acked).map((g) => g.type));
  }

  release() {
    for (const res of this.hanging.splice(0)) res.destroy();
  }

  close() {
    this.release();
    this.server.closeAllConnections?.();
    return new Promise((resolve) => this.server.close(resolve));
  }
}

describe('signed webhooks, delivered at least once across a restart', { timeout: 15 * 60_000 }, () => {
  let server;
  const rx = new Receiver();

  before(async () => {
    server = new Server({
      name: 'webhooks',
      tokenPrefix: 'pgfst_webhooks_',
      env: {
        PGFLEET_WEBHOOKS__ALLOW_PRIVATE_DESTINATIONS: 'true',
        PGFLEET_WEBHOOKS__POLL_INTERVAL_MS: '100',
        PGFLEET_WEBHOOKS__BASE_BACKOFF_SECS: '0.2',
        PGFLEET_WEBHOOKS__MAX_BACKOFF_SECS: '2',
        PGFLEET_WEBHOOKS__ATTEMPT_TIMEOUT_SECS: '3',
      },
    });
    await server.start();
  });

  after(async () => {
    await rx.close();
    if (server) await server.stop();
  });

  async function api(method, path, body) {
    const res = await fetch(`${server.base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${server.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  async function expect(method, path, status, body) {
    const r = await api(method, path, body);
    assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(r.body)}`);
    return r.body;
  }

  const databaseIs = (id, status) => until(`database ${id} ${status}`, async () => {
    const r = await api('GET', `/v1/databases/${id}`);
    return r.status === 200 && r.body.data.status === status;
  });

  it('delivers every event, signed, at least once across a restart mid-delivery', async () => {
    const url = await rx.listen();
    const ws = (await expect('GET', '/v1/me', 200)).data.workspace.id;
    const hooks = `/v1/workspaces/${ws}/webhooks`;

    // Bad input answers 400 in the API's error shape.
    const bad = await expect('POST', hooks, 400, { url: 'ftp://example.com/x' });
    assert.equal(bad.error.code, 'bad_request');
    await expect('POST', hooks, 400, { url, events: ['nope.nope'] });

    const created = (await expect('POST', hooks, 201, { url })).data;
    assert.match(created.id, /^whk_/);
    assert.match(created.secret, /^whsec_[A-Za-z0-9+/]+=*$/);
    rx.secret = created.secret;
    const listed = (await expect('GET', hooks, 200)).data;
    assert.equal(listed.length, 1);
    assert.equal(listed[0].secret, undefined, 'the secret is shown once');

    // Phase 1, the receiver answering: ready, backup, restore.
    const project = (await expect('POST', '/v1/projects', 201, { name: 'webhooks' })).data;
    const db = project.database.id;
    await databaseIs(db, 'ready');
    const backup = (await expect('POST', `/v1/databases/${db}/backups`, 202, {})).data;
    await until('backup completed', async () => {
      const r = await api('GET', `/v1/databases/${db}/backups`);
      return r.body.data.find((b) => b.id === backup.id && b.status === 'completed');
    });
    await expect('POST', `/v1/databases/${db}/restore`, 200, {
      source: { type: 'backup', databaseId: db, backupId: backup.id },
    });
    await databaseIs(db, 'ready');
    await until('ready, backup and restore events', () =>
      ['database.ready', 'backup.completed', 'database.restored'].every((t) => rx.types().has(t)));
    const ready = rx.got.find((g) => g.type === 'database.ready').payload;
    assert.equal(ready.data.id, db);
    assert.equal(ready.data.status, 'ready');
    assert.match(ready.timestamp, /Z$/);
    assert.equal(rx.got.find((g) => g.type === 'backup.completed').payload.data.id, backup.id);

    // Phase 2, the receiver holding every request open: tokens, transfer, a second database
    // made and deleted. pgfleet is stopped while deliveries hang, then restarted.
    rx.mode = 'hang';
    const token = (await expect('POST', `/v1/workspaces/${ws}/service-tokens`, 201, { name: 'hooks' })).data;
    await expect('POST', `/v1/projects/${project.id}/transfer`, 204, { recipientAccessToken: token.value });
    await expect('DELETE', `/v1/workspaces/${ws}/service-tokens/${token.id}`, 204);
    const second = (await expect('POST', `/v1/projects/${project.id}/databases`, 201, { name: 'second' })).data;
    await databaseIs(second.id, 'ready');
    const del = await api('DELETE', `/v1/databases/${second.id}`);
    assert.ok([202, 204].includes(del.status), JSON.stringify(del.body));
    await until('the second database is gone', async () => (await api('GET', `/v1/databases/${second.id}`)).status === 404);
    await until('a delivery hangs at the receiver', () => rx.hanging.length > 0);

    server.child.kill('SIGTERM');
    await server.exited;
    assert.equal(server.exit.code, 0, server.tail());
    rx.release();
    rx.mode = 'ok';
    // The same Server, restarted on its data directory (start() spawns a new child).
    process.removeListener('exit', server.onProcessExit);
    server.exit = null;
    server.base = null;
    server.stdout = '';
    await server.start();

    const all = [
      'database.ready', 'backup.completed', 'database.restored', 'service_token.created',
      'project.transferred', 'service_token.deleted', 'database.deleted',
    ];
    await until(`every event type (${all.join(', ')})`, () => all.every((t) => rx.types().has(t)));
    await until('the second database\'s ready event', () =>
      rx.got.some((g) => g.acked && g.type === 'database.ready' && g.payload.data.id === second.id));
    // Every event held at the receiver when pgfleet stopped was sent again and acknowledged.
    const heldIds = new Set(rx.got.filter((g) => !g.acked).map((g) => g.id));
    assert.ok(heldIds.size >= 1);
    await until('every held event acknowledged after the restart', () =>
      [...heldIds].every((id) => rx.got.some((g) => g.acked && g.id === id)));

    assert.deepEqual(rx.rejected, [], 'every request verified');
    // Duplicates are the same event: same id, same body.
    const byId = new Map();
    let duplicates = 0;
    for (const g of rx.got) {
      if (byId.has(g.id)) {
        assert.equal(byId.get(g.id), g.body, `duplicate ${g.id} has the same body`);
        duplicates += 1;
      }
      byId.set(g.id, g.body);
    }
    assert.ok(duplicates >= heldIds.size, 'the interrupted deliveries were sent again');
    const deleted = rx.got.find((g) => g.type === 'database.deleted').payload;
    assert.equal(deleted.data.id, second.id);
    const transferred = rx.got.find((g) => g.type === 'project.transferred').payload;
    assert.equal(transferred.data.id, project.id);
    assert.equal(rx.got.find((g) => g.type === 'service_token.created').payload.data.id, token.id);
    assert.ok(!rx.got.some((g) => g.body.includes(token.value)), 'no token value in any event');

    // The attempts are visible, all delivered in the end.
    const deliveries = (await expect('GET', `${hooks}/${created.id}/deliveries`, 200)).data;
    assert.ok(deliveries.length >= all.length + 1, JSON.stringify(deliveries));
    await until('every delivery delivered', async () => {
      const d = (await expect('GET', `${hooks}/${created.id}/deliveries`, 200)).data;
      return d.every((x) => x.status === 'delivered');
    });
    // A wrong secret does not verify (the check above is not vacuous).
    const sample = rx.got[0];
    const other = new Webhook(`whsec_${Buffer.alloc(32, 7).toString('base64')}`);
    assert.throws(() => other.verify(sample.body, {
      'webhook-id': sample.id,
      'webhook-timestamp': String(Math.floor(Date.now() / 1000)),
      'webhook-signature': 'v1,AAAA',
    }));

    await expect('DELETE', `${hooks}/${created.id}`, 204);
    assert.deepEqual((await expect('GET', hooks, 200)).data, []);
  });
});
