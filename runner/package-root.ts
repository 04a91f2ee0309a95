/**
 * The runner's package directory, found by walking up from this module to our package.json. The
 * code runs from source, from dist/ and from split chunks, and (benchmarks, the demo) from bundles
 * under node_modules/.cache: a path relative to the module itself is right in only some of these.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function packageRoot(from = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && /"name":\s*"grexal-runner"/.test(readFileSync(pkg, 'utf8'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
}
