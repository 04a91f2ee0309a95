// Runs a TypeScript entry (benchmarks, examples) on Node 20: bundles it with esbuild to a temporary
// file, then imports it. Arguments after the entry are passed through.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  process.stderr.write('usage: node scripts/run-ts.mjs ENTRY.ts [ARGS...]\n');
  process.exit(2);
}
// Inside node_modules, so that the bundle's bare imports resolve from the repository at run time.
const cache = join(import.meta.dirname, '..', 'node_modules', '.cache');
mkdirSync(cache, { recursive: true });
const dir = mkdtempSync(join(cache, 'run-ts-'));
const outfile = join(dir, 'entry.mjs');
await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  logLevel: 'warning',
});
process.argv = [process.argv[0], entry, ...args];
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
await import(pathToFileURL(outfile).href);
