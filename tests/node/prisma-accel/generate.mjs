// Generates the Prisma clients of prisma/schema.prisma (the `prisma-client` generator writes
// TypeScript) and bundles each to ESM for Node 20, like tests/node/pooler.test.mjs does. Two
// variants: `default` (.prisma-generated/) and `joins` (.prisma-generated-joins/), the same
// schema with the `relationJoins` preview feature, whose plans load relations with LATERAL
// joins and JSON instead of separate queries. `prisma generate` does not run the schema
// engine, but the CLI insists on having one and would download it from binaries.prisma.sh,
// which this machine cannot reach: a stub stands in for it.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { build } from 'esbuild';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCHEMA = path.join(HERE, 'prisma/schema.prisma');

const VARIANTS = {
  default: { dir: '.prisma-generated', schema: () => SCHEMA },
  joins: {
    dir: '.prisma-generated-joins',
    // The schema with the preview feature, in a temporary directory (the generator refuses
    // an output directory holding anything but its own files).
    schema() {
      const out = JSON.stringify(path.join(HERE, '.prisma-generated-joins'));
      const text = fs
        .readFileSync(SCHEMA, 'utf8')
        .replace('output       = "../.prisma-generated"', `output       = ${out}\n  previewFeatures = ["relationJoins"]`);
      if (!text.includes('relationJoins')) throw new Error('schema.prisma: generator block not as expected');
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pgfleet-prisma-joins-')), 'schema.prisma');
      fs.writeFileSync(file, text);
      return file;
    },
  },
};

export async function generate(variant = 'default') {
  const { dir, schema } = VARIANTS[variant];
  const stub = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pgfleet-prisma-')), 'schema-engine');
  fs.writeFileSync(stub, '#!/bin/sh\nexit 1\n', { mode: 0o755 });
  execFileSync(path.join(HERE, 'node_modules/.bin/prisma'), ['generate', '--schema', schema()], {
    cwd: HERE,
    env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: stub, CHECKPOINT_DISABLE: '1', PRISMA_HIDE_UPDATE_MESSAGE: '1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const out = path.join(HERE, dir, 'client.mjs');
  await build({
    entryPoints: [path.join(HERE, dir, 'client.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile: out,
    packages: 'external',
    logLevel: 'warning',
  });
  return out;
}

// The generated client of `variant`, generated on first use in this process.
const loaded = {};
export function prismaModule(variant = 'default') {
  loaded[variant] ??= generate(variant).then((out) => import(pathToFileURL(out).href));
  return loaded[variant];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const variant of Object.keys(VARIANTS)) {
    const out = await generate(variant);
    console.log(`generated ${path.relative(process.cwd(), out)}`);
  }
}
