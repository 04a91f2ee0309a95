#!/usr/bin/env node
// The CLI is bundled by `npm run build` into dist/ so that it starts fast.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/grexal.cjs', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('grexal: dist/grexal.cjs is missing. Run `npm run build` first.\n');
  process.exit(1);
}
await import(entry.href);
