// The Prisma workload of the prisma+postgres:// tests (issue 18): one list of scenarios, each a
// function of a PrismaClient returning a plain, comparable value. The same list runs through
// Accelerate (the query-plan executor over HTTP: the reference one or pgfleet's) and through
// @prisma/adapter-pg directly, and the canonical results must be identical. Scenarios run in
// order on an empty schema (schema.sql) and build on each other's rows.
//
// `canonical` turns what Prisma Client returns into JSON that keeps the types apart (Decimal,
// BigInt, bytes, Date, errors) and replaces values the executor generates itself (uuid(),
// cuid(), now()) by a marker once their shape is checked, so two runs compare equal.

import { setTimeout as sleep } from 'node:timers/promises';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const CUID = /^c[a-z0-9]{24}$/;
// Fields filled by Prisma defaults the executor evaluates (generatorCall nodes in the plan).
const GENERATED = { externalId: 'uuid', createdAt: 'now', updatedAt: 'now' };

function isDecimal(v) {
  // Prisma's own test (decimal.js-like): the class name is minified away in the runtime.
  return v !== null && typeof v === 'object' && typeof v.toFixed === 'function' && 'd' in v && 'e' in v && 's' in v;
}

export function canonical(value, key) {
  if (value === undefined) return { $undefined: true };
  if (value === null) return null;
  if (typeof value === 'bigint') return { $bigint: value.toString() };
  if (typeof value === 'number') return Number.isInteger(value) ? value : { $float: value.toString() };
  if (value instanceof Date) {
    if (GENERATED[key] === 'now' && !Number.isNaN(value.getTime()) && Math.abs(Date.now() - value.getTime()) < 10 * 60_000) return '<now>';
    return { $date: Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString() };
  }
  if (typeof value === 'string') {
    if (GENERATED[key] === 'uuid' && UUID.test(value)) return '<uuid>';
    if ((key === 'id' || key === 'postId' || key === 'A') && CUID.test(value)) return '<cuid>';
    return value;
  }
  if (isDecimal(value)) return { $decimal: value.toString() };
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value).toString('base64') };
  if (value instanceof Error && key === 'driverAdapterError') {
    // Over HTTP the executor sends this nested error through JSON.stringify, which keeps its
    // own enumerable fields (name, cause) and drops `message`; applications read `cause`.
    return { name: value.name, cause: canonical(value.cause) };
  }
  if (value instanceof Error) {
    return {
      $error: {
        name: value.name,
        code: value.code ?? null,
        meta: value.meta === undefined ? null : canonical(value.meta),
        message: value.message,
      },
    };
  }
  if (Array.isArray(value)) return value.map((v) => canonical(v, key));
  if (typeof value === 'object') {
    const out = {};
    // An undefined field and a missing one are the same to JSON and to applications.
    for (const k of Object.keys(value)) if (value[k] !== undefined) out[k] = canonical(value[k], k);
    return out;
  }
  return value;
}

// Runs `promise`, returning its value or the error it rejected with (errors are results too).
async function settle(promise) {
  try {
    return await promise;
  } catch (e) {
    return e;
  }
}

const DATE1 = new Date('2024-01-02T03:04:05.678Z');
const DATE2 = new Date('2025-06-30T23:59:59.999Z');

export const SCENARIOS = [
  {
    name: 'create-scalars',
    async run(prisma) {
      const ada = await prisma.user.create({
        data: {
          email: 'ada@example.com',
          name: 'Ada',
          role: 'ADMIN',
          balance: '1234.56',
          points: 9007199254740993n,
          avatar: Uint8Array.from([0, 1, 2, 254, 255]),
          profile: { langs: ['en', 'fr'], nested: { a: 1, b: null, c: 'x"y' }, n: 1.5, ok: true },
        },
      });
      const bob = await prisma.user.create({ data: { email: 'bob@example.com', externalId: '0d2a5b6e-1111-4222-8333-944455556666' } });
      const generated = await prisma.user.findUniqueOrThrow({ where: { id: ada.id }, select: { externalId: true, createdAt: true } });
      return { ada, bob, generatedShapes: { uuid: UUID.test(generated.externalId), now: generated.createdAt instanceof Date } };
    },
  },
  {
    name: 'read-filters',
    async run(prisma) {
      return {
        byEmail: await prisma.user.findUnique({ where: { email: 'ada@example.com' }, omit: { avatar: true } }),
        byExternalId: await prisma.user.findUnique({ where: { externalId: '0d2a5b6e-1111-4222-8333-944455556666' }, select: { email: true, role: true } }),
        missing: await prisma.user.findUnique({ where: { email: 'nobody@example.com' } }),
        decimalGt: await prisma.user.findMany({ where: { balance: { gt: '1000' } }, select: { email: true, balance: true } }),
        bigintGte: await prisma.user.findMany({ where: { points: { gte: 9007199254740992n } }, select: { email: true, points: true } }),
        enumIn: await prisma.user.findMany({ where: { role: { in: ['ADMIN'] } }, select: { email: true } }),
        insensitive: await prisma.user.findFirst({ where: { email: { startsWith: 'ADA', mode: 'insensitive' } }, select: { email: true } }),
        jsonPath: await prisma.user.findMany({ where: { profile: { path: ['langs'], array_contains: ['fr'] } }, select: { email: true } }),
        jsonEquals: await prisma.user.count({ where: { profile: { path: ['nested', 'a'], equals: 1 } } }),
        nullFilter: await prisma.user.findMany({ where: { name: null }, select: { email: true } }),
        bytes: await prisma.user.findFirst({ where: { avatar: { not: null } }, select: { avatar: true } }),
      };
    },
  },
  {
    name: 'nested-writes',
    async run(prisma) {
      const created = await prisma.user.create({
        data: {
          email: 'cy@example.com',
          name: 'Cy',
          posts: {
            create: [
              { id: 'p1', title: 'First', content: 'hello', status: 'PUBLISHED', views: 10, rating: 4.5, labels: ['a', 'b'], meta: { words: 2 }, publishedAt: DATE1, tags: { connectOrCreate: [{ where: { name: 'rust' }, create: { name: 'rust' } }, { where: { name: 'sql' }, create: { name: 'sql' } }] } },
              { id: 'p2', title: 'Second', status: 'DRAFT', views: 3, labels: [], tags: { create: { name: 'prisma' } } },
              { id: 'p3', title: 'Third', status: 'ARCHIVED', views: 7, rating: 2.25, publishedAt: DATE2 },
            ],
          },
        },
        include: { posts: { orderBy: { id: 'asc' }, include: { tags: { orderBy: { name: 'asc' } } } } },
      });
      const generatedPost = await prisma.post.create({ data: { title: 'Generated id', author: { connect: { email: 'ada@example.com' } }, tags: { connect: { name: 'rust' } } }, select: { id: true, status: true, meta: true, labels: true } });
      const like = await prisma.like.create({ data: { user: { connect: { email: 'ada@example.com' } }, post: { connect: { id: 'p1' } }, stars: 5 }, select: { stars: true, user: { select: { email: true } }, post: { select: { title: true } } } });
      const updated = await prisma.user.update({
        where: { email: 'cy@example.com' },
        data: {
          name: 'Cyrus',
          posts: {
            update: { where: { id: 'p1' }, data: { views: { increment: 5 }, tags: { disconnect: { name: 'sql' } } } },
            upsert: { where: { id: 'p4' }, create: { id: 'p4', title: 'Fourth', views: 1 }, update: { title: 'never' } },
            deleteMany: { status: 'ARCHIVED' },
          },
        },
        select: { name: true, posts: { orderBy: { id: 'asc' }, select: { id: true, views: true, tags: { select: { name: true }, orderBy: { name: 'asc' } } } } },
      });
      const setTags = await prisma.post.update({ where: { id: 'p2' }, data: { tags: { set: [{ name: 'rust' }, { name: 'sql' }] } }, select: { tags: { select: { name: true }, orderBy: { name: 'asc' } } } });
      return { created, generatedPost: { ...generatedPost, idIsCuid: CUID.test(generatedPost.id) }, like, updated, setTags };
    },
  },
  {
    name: 'relation-filters',
    async run(prisma) {
      const emails = { select: { email: true }, orderBy: { email: 'asc' } };
      return {
        some: await prisma.user.findMany({ where: { posts: { some: { status: 'PUBLISHED' } } }, ...emails }),
        every: await prisma.user.findMany({ where: { posts: { every: { views: { gte: 1 } } } }, ...emails }),
        none: await prisma.user.findMany({ where: { posts: { none: {} } }, ...emails }),
        authorIs: await prisma.post.findMany({ where: { author: { is: { role: 'ADMIN' } } }, select: { title: true }, orderBy: { title: 'asc' } }),
        authorIsNot: await prisma.post.findMany({ where: { author: { isNot: { role: 'ADMIN' } } }, select: { id: true }, orderBy: { id: 'asc' } }),
        tagsSome: await prisma.post.findMany({ where: { tags: { some: { name: { in: ['sql', 'prisma'] } } } }, select: { id: true }, orderBy: { id: 'asc' } }),
        nestedCount: await prisma.user.findMany({ select: { email: true, _count: { select: { posts: true, likes: true } } }, orderBy: [{ posts: { _count: 'desc' } }, { email: 'asc' }] }),
        includeFiltered: await prisma.user.findUnique({ where: { email: 'cy@example.com' }, select: { posts: { where: { views: { gt: 2 } }, orderBy: { views: 'desc' }, take: 1, select: { id: true, author: { select: { email: true } } } } } }),
        labelsHas: await prisma.post.findMany({ where: { labels: { has: 'a' } }, select: { id: true } }),
        fluent: await prisma.user.findUnique({ where: { email: 'cy@example.com' } }).posts({ orderBy: { id: 'asc' }, select: { id: true } }),
      };
    },
  },
  {
    name: 'pagination',
    async run(prisma) {
      const ids = { select: { id: true, views: true } };
      return {
        skipTake: await prisma.post.findMany({ ...ids, where: { authorId: { not: 1 } }, orderBy: { id: 'asc' }, skip: 1, take: 2 }),
        cursor: await prisma.post.findMany({ ...ids, where: { authorId: { not: 1 } }, orderBy: { id: 'asc' }, cursor: { id: 'p2' }, skip: 1, take: 5 }),
        negativeTake: await prisma.post.findMany({ ...ids, where: { authorId: { not: 1 } }, orderBy: { id: 'asc' }, take: -2 }),
        distinct: await prisma.post.findMany({ select: { status: true }, distinct: ['status'], orderBy: { status: 'asc' } }),
        orderByRelation: await prisma.post.findMany({ where: { authorId: { not: 1 } }, select: { id: true }, orderBy: [{ author: { email: 'desc' } }, { id: 'desc' }] }),
        nullsLast: await prisma.post.findMany({ where: { authorId: { not: 1 } }, select: { id: true, rating: true }, orderBy: [{ rating: { sort: 'desc', nulls: 'last' } }, { id: 'asc' }] }),
      };
    },
  },
  {
    name: 'aggregates',
    async run(prisma) {
      return {
        aggregate: await prisma.post.aggregate({ _count: { _all: true, rating: true }, _sum: { views: true }, _avg: { views: true, rating: true }, _min: { views: true, publishedAt: true }, _max: { views: true, title: true } }),
        decimalBigint: await prisma.user.aggregate({ _sum: { balance: true, points: true }, _avg: { balance: true }, _max: { points: true } }),
        groupBy: await prisma.post.groupBy({ by: ['status'], _count: { _all: true }, _sum: { views: true }, orderBy: { status: 'asc' } }),
        groupByHaving: await prisma.post.groupBy({ by: ['authorId'], _sum: { views: true }, having: { views: { _sum: { gt: 5 } } }, orderBy: { authorId: 'asc' } }),
        count: await prisma.post.count(),
        countSelect: await prisma.post.count({ select: { _all: true, rating: true, publishedAt: true } }),
      };
    },
  },
  {
    name: 'updates-and-deletes',
    async run(prisma) {
      const out = {};
      out.updateMany = await prisma.post.updateMany({ where: { status: 'DRAFT' }, data: { views: { multiply: 2 } } });
      out.decimalIncrement = await prisma.user.update({ where: { email: 'ada@example.com' }, data: { balance: { increment: '0.44' }, points: { increment: 7n } }, select: { balance: true, points: true } });
      out.listPush = await prisma.post.update({ where: { id: 'p2' }, data: { labels: { push: ['x', 'y'] } }, select: { labels: true } });
      out.jsonSet = await prisma.post.update({ where: { id: 'p2' }, data: { meta: { replaced: [1, 2, { deep: 'yes' }] } }, select: { meta: true } });
      out.upsertCreate = await prisma.tag.upsert({ where: { name: 'go' }, create: { name: 'go' }, update: {}, select: { name: true } });
      out.upsertUpdate = await prisma.tag.upsert({ where: { name: 'go' }, create: { name: 'go' }, update: { name: 'golang' }, select: { name: true } });
      out.createMany = await prisma.tag.createMany({ data: [{ name: 'a1' }, { name: 'a2' }, { name: 'rust' }], skipDuplicates: true });
      out.createManyAndReturn = await prisma.tag.createManyAndReturn({ data: [{ name: 'b1' }, { name: 'b2' }], select: { name: true } });
      out.updateManyAndReturn = await prisma.post.updateManyAndReturn({ where: { status: 'DRAFT', authorId: { not: 1 } }, data: { rating: 1.75 }, select: { id: true, rating: true } });
      out.deleteOne = await prisma.tag.delete({ where: { name: 'a1' }, select: { name: true } });
      out.deleteMany = await prisma.tag.deleteMany({ where: { name: { in: ['a2', 'b1', 'b2', 'golang'] } } });
      out.remainingTags = await prisma.tag.findMany({ select: { name: true }, orderBy: { name: 'asc' } });
      return out;
    },
  },
  {
    name: 'errors-unique-fk',
    async run(prisma) {
      return {
        uniqueEmail: await settle(prisma.user.create({ data: { email: 'ada@example.com' } })),
        uniqueCompound: await settle(prisma.like.create({ data: { userId: 1, postId: 'p1' } })),
        foreignKey: await settle(prisma.post.create({ data: { title: 'orphan', authorId: 999999 } })),
      };
    },
  },
  {
    name: 'errors-not-found',
    async run(prisma) {
      return {
        findUniqueOrThrow: await settle(prisma.user.findUniqueOrThrow({ where: { email: 'nobody@example.com' } })),
        findFirstOrThrow: await settle(prisma.post.findFirstOrThrow({ where: { title: 'nope' } })),
        updateMissing: await settle(prisma.user.update({ where: { id: 424242 }, data: { name: 'x' } })),
        deleteMissing: await settle(prisma.post.delete({ where: { id: 'missing' } })),
        connectMissing: await settle(prisma.post.update({ where: { id: 'p1' }, data: { tags: { connect: { name: 'no-such-tag' } } } })),
      };
    },
  },
  {
    name: 'itx-commit',
    async run(prisma) {
      const inside = await prisma.$transaction(async (tx) => {
        const u = await tx.user.create({ data: { email: 'tx@example.com', name: 'in tx' }, select: { id: true, email: true } });
        await tx.post.create({ data: { id: 'tx1', title: 'tx post', authorId: u.id } });
        const seen = await tx.post.count({ where: { author: { email: 'tx@example.com' } } });
        return { email: u.email, seen };
      });
      const after = await prisma.user.findUnique({ where: { email: 'tx@example.com' }, select: { name: true, posts: { select: { id: true } } } });
      return { inside, after };
    },
  },
  {
    name: 'itx-rollback',
    async run(prisma) {
      const thrown = await settle(
        prisma.$transaction(async (tx) => {
          await tx.user.create({ data: { email: 'rolled@example.com' } });
          throw new Error('rollback please');
        }),
      );
      const failedQuery = await settle(
        prisma.$transaction(async (tx) => {
          await tx.user.create({ data: { email: 'rolled2@example.com' } });
          await tx.user.create({ data: { email: 'ada@example.com' } });
        }),
      );
      const left = await prisma.user.count({ where: { email: { in: ['rolled@example.com', 'rolled2@example.com'] } } });
      return { thrown: { message: thrown.message }, failedQuery, left };
    },
  },
  {
    name: 'itx-timeout',
    async run(prisma) {
      const timedOut = await settle(
        prisma.$transaction(
          async (tx) => {
            await tx.user.create({ data: { email: 'slow@example.com' } });
            await sleep(1200);
            return tx.user.count();
          },
          { timeout: 400, maxWait: 2000 },
        ),
      );
      const left = await prisma.user.count({ where: { email: 'slow@example.com' } });
      return { timedOut: canonicalTimeout(timedOut), left };
    },
  },
  {
    name: 'itx-isolation',
    async run(prisma) {
      const level = (tx) => tx.$queryRaw`SELECT current_setting('transaction_isolation') AS level`;
      return {
        default: await prisma.$transaction((tx) => level(tx)),
        readCommitted: await prisma.$transaction((tx) => level(tx), { isolationLevel: 'ReadCommitted' }),
        repeatableRead: await prisma.$transaction((tx) => level(tx), { isolationLevel: 'RepeatableRead' }),
        serializable: await prisma.$transaction((tx) => level(tx), { isolationLevel: 'Serializable' }),
        readUncommitted: await prisma.$transaction((tx) => level(tx), { isolationLevel: 'ReadUncommitted' }),
      };
    },
  },
  {
    name: 'raw',
    async run(prisma) {
      const types = await prisma.$queryRaw`SELECT ${1}::int4 AS i4, ${2n ** 62n}::int8 AS i8, ${'12.3400'}::numeric AS num, 1.5::float8 AS f8, 1.25::float4 AS f4,
        'text'::text AS t, true AS b, decode('00ff', 'hex') AS bytes, '{"a":[1,2]}'::json AS j, '{"b":{"c":null}}'::jsonb AS jb,
        '2024-01-02 03:04:05.678+00'::timestamptz AS tz, '2024-01-02 03:04:05.678'::timestamp AS ts, '2024-01-02'::date AS d, '03:04:05.678'::time AS tm,
        '0d2a5b6e-1111-4222-8333-944455556666'::uuid AS u, ARRAY['x','y']::text[] AS ta, ARRAY[1,2]::int4[] AS ia, ARRAY[${3n}]::int8[] AS i8a,
        NULL::text AS n, 'ADMIN'::"Role" AS e, ${DATE1} AS param_date, ${Uint8Array.from([9, 8])} AS param_bytes, ${{ k: 'v' }}::jsonb AS param_json`;
      const unsafe = await prisma.$queryRawUnsafe('SELECT "email", "balance", "points", "role" FROM "User" WHERE "email" = $1', 'ada@example.com');
      const modelRows = await prisma.$queryRaw`SELECT "id", "externalId", "avatar", "profile" FROM "User" WHERE "email" = ${'bob@example.com'}`;
      const executed = await prisma.$executeRaw`UPDATE "Post" SET "views" = "views" + ${1} WHERE "authorId" <> ${1}`;
      const executedUnsafe = await prisma.$executeRawUnsafe('UPDATE "Tag" SET "name" = "name" WHERE "name" = $1', 'rust');
      const syntaxError = await settle(prisma.$executeRawUnsafe('UPDATE nothing SET'));
      const uniqueInRaw = await settle(prisma.$executeRaw`INSERT INTO "Tag" ("name") VALUES (${'rust'})`);
      return { types, unsafe, modelRows, executed, executedUnsafe, syntaxError, uniqueInRaw };
    },
  },
  {
    name: 'batch-transaction',
    async run(prisma) {
      const ok = await prisma.$transaction([
        prisma.tag.create({ data: { name: 'batch1' }, select: { name: true } }),
        prisma.tag.update({ where: { name: 'batch1' }, data: { name: 'batch1b' }, select: { name: true } }),
        prisma.tag.count({ where: { name: { startsWith: 'batch' } } }),
        prisma.$queryRaw`SELECT count(*)::int AS n FROM "Tag" WHERE "name" LIKE 'batch%'`,
      ]);
      const failed = await settle(
        prisma.$transaction([prisma.tag.create({ data: { name: 'batch2' } }), prisma.tag.create({ data: { name: 'rust' } })], { isolationLevel: 'Serializable' }),
      );
      const left = await prisma.tag.count({ where: { name: 'batch2' } });
      return { ok, failed, left };
    },
  },
  {
    name: 'find-unique-batching',
    async run(prisma) {
      // Several findUnique calls in one tick: the client's DataLoader sends one compacted batch.
      const [a, b, missing] = await Promise.all([
        prisma.user.findUnique({ where: { email: 'ada@example.com' }, select: { email: true, role: true } }),
        prisma.user.findUnique({ where: { email: 'bob@example.com' }, select: { email: true, role: true } }),
        prisma.user.findUnique({ where: { email: 'none@example.com' }, select: { email: true, role: true } }),
      ]);
      const orThrow = await Promise.all([settle(prisma.post.findUniqueOrThrow({ where: { id: 'p1' }, select: { id: true } })), settle(prisma.post.findUniqueOrThrow({ where: { id: 'zz' }, select: { id: true } }))]);
      return { a, b, missing, orThrow };
    },
  },
  {
    name: 'delete-cascade',
    async run(prisma) {
      const deleted = await prisma.user.delete({ where: { email: 'cy@example.com' }, select: { email: true } });
      return { deleted, posts: await prisma.post.count(), likes: await prisma.like.count(), users: await prisma.user.count() };
    },
  },
];

// Scenarios for the client generated with the `relationJoins` preview feature (generate.mjs,
// variant `joins`), run after SCENARIOS on the same database: `relationLoadStrategy: 'join'`
// makes the plans load relations in one statement (LATERAL joins building JSON), so every
// scalar type also travels inside JSON and is mapped from there.
export const JOIN_SCENARIOS = [
  {
    name: 'relation-joins',
    async run(prisma) {
      const jo = await prisma.user.create({
        data: {
          email: 'jo@example.com',
          name: 'Jo',
          balance: '99.90',
          points: 12345678901234567n,
          avatar: Uint8Array.from([7, 0, 255]),
          profile: { k: [1, 'two', null], deep: { x: 1.25 } },
          posts: {
            create: [
              { id: 'j1', title: 'Join one', status: 'PUBLISHED', views: 5, rating: 3.5, labels: ['l1'], publishedAt: DATE1, tags: { connectOrCreate: [{ where: { name: 'rust' }, create: { name: 'rust' } }, { where: { name: 'joins' }, create: { name: 'joins' } }] } },
              { id: 'j2', title: 'Join two', views: 9, meta: { n: 2 } },
              { id: 'j3', title: 'Join three', status: 'PUBLISHED', views: 1 },
            ],
          },
        },
        select: { id: true },
      });
      await prisma.like.createMany({ data: [{ userId: jo.id, postId: 'j1', stars: 4 }, { userId: 1, postId: 'j1', stars: 2 }, { userId: 1, postId: 'j2', stars: 5 }] });
      const join = { relationLoadStrategy: 'join' };
      return {
        includeNested: await prisma.user.findUnique({
          ...join,
          where: { email: 'jo@example.com' },
          omit: { createdAt: true, updatedAt: true },
          include: { posts: { orderBy: { id: 'asc' }, include: { tags: { orderBy: { name: 'asc' }, select: { name: true } }, _count: { select: { likes: true } } } } },
        }),
        typesInJson: await prisma.post.findMany({
          ...join,
          where: { authorId: jo.id },
          orderBy: { id: 'asc' },
          select: { id: true, publishedAt: true, author: { select: { email: true, balance: true, points: true, avatar: true, profile: true, role: true, createdAt: true } }, likes: { orderBy: { stars: 'desc' }, select: { stars: true, user: { select: { email: true } } } } },
        }),
        nestedPagination: await prisma.user.findMany({
          ...join,
          where: { email: { in: ['ada@example.com', 'jo@example.com'] } },
          orderBy: { email: 'asc' },
          select: { email: true, posts: { orderBy: { views: 'desc' }, skip: 1, take: 1, select: { id: true, views: true } }, likes: { orderBy: { postId: 'asc' }, select: { postId: true } } },
        }),
        nestedDistinct: await prisma.user.findUnique({ ...join, where: { email: 'jo@example.com' }, select: { posts: { distinct: ['status'], orderBy: [{ status: 'asc' }, { id: 'asc' }], select: { status: true, id: true } } } }),
        relationFilterAndCount: await prisma.tag.findMany({ ...join, where: { posts: { some: { author: { email: 'jo@example.com' } } } }, orderBy: { name: 'asc' }, select: { name: true, _count: { select: { posts: true } }, posts: { where: { views: { gt: 1 } }, select: { id: true } } } }),
      };
    },
  },
];

// The expired-transaction error names the transaction id and timings, which differ per run.
function canonicalTimeout(e) {
  if (!(e instanceof Error)) return e;
  return { name: e.name, code: e.code ?? null, message: e.message.replace(/[0-9a-f-]{36}/g, '<txid>').replace(/\d+ ?ms/g, '<n> ms') };
}

// Runs every scenario of `scenarios` in order; `before(name)` is called before each (the recording proxy
// labels its pairs with it). Returns { [scenario]: canonical result }.
export async function runWorkload(prisma, { before = () => {}, scenarios = SCENARIOS } = {}) {
  const results = {};
  for (const s of scenarios) {
    before(s.name);
    results[s.name] = canonical(await settle(s.run(prisma)));
  }
  return results;
}
