// Generates the Prisma client of prisma/schema.prisma (the `prisma-client` generator writes
// TypeScript into .prisma-generated/) and bundles it to ESM for Node 20, like
// tests/node/pooler.test.mjs does. `prisma generate` does not run the schema engine, but the
// CLI insists on having one and would download it from binaries.prisma.sh, which this machine
// cannot reach: a stub stands in for it. Returns the generated module.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { build } from 'esbuild';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const OUT = path.join(HERE, '.prisma-generated/client.mjs');

export async function generate() {
  const stub = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pgfleet-prisma-')), 'schema-engine');
  fs.writeFileSync(stub, '#!/bin/sh\nexit 1\n', { mode: 0o755 });
  execFileSync(path.join(HERE, 'node_modules/.bin/prisma'), ['generate', '--schema', path.join(HERE, 'prisma/schema.prisma')], {
    cwd: HERE,
    env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: stub, CHECKPOINT_DISABLE: '1', PRISMA_HIDE_UPDATE_MESSAGE: '1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await build({
    entryPoints: [path.join(HERE, '.prisma-generated/client.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile: OUT,
    packages: 'external',
    logLevel: 'warning',
  });
}

// The generated client, generated on first use in this process.
let loaded;
export function prismaModule() {
  loaded ??= generate().then(() => import(pathToFileURL(OUT).href));
  return loaded;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await generate();
  console.log(`generated ${path.relative(process.cwd(), OUT)}`);
}
