/**
 * The `grexal` command the way users run it: the executable package.json's "bin" names (npm
 * links it as node_modules/.bin/grexal, a symlink, and the shell execs it), not `node
 * bin/grexal.mjs`. Today's bin is a sh launcher that may start Node without NODE_EXTRA_CA_CERTS
 * (bin/grexal); an older build's is bin/grexal.mjs through its `#!/usr/bin/env node` line. Each
 * build is run through its own bin, so a comparison between builds includes each launcher's cost.
 */
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * A symlink `linkDir`/bin/grexal to `root`'s bin, as npm links it; returns its path. In a `bin`
 * directory of its own: `linkDir` may be the side's XDG_CACHE_HOME, whose `grexal` entry is the
 * code cache's directory (a symlink there would make the CLI refuse the cache and compile).
 */
export function linkGrexalCommand(root: string, linkDir: string): string {
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    bin?: string | Record<string, string>;
  };
  const bin = typeof manifest.bin === 'string' ? manifest.bin : manifest.bin?.['grexal'];
  if (!bin) throw new Error(`${root}/package.json names no grexal bin`);
  mkdirSync(join(linkDir, 'bin'));
  const link = join(linkDir, 'bin', 'grexal');
  symlinkSync(resolve(root, bin), link);
  return link;
}
