// `grexal run`'s V8 startup snapshot, dist/grexal-run.blob (runner/cli/snapshot/entry.ts): its entry
// bundled as dist/grexal-run.cjs is, with stand-ins for the built-ins Node 20 cannot snapshot, then
// `node --build-snapshot` by the Node that runs this build, and last the identity of that Node's
// binary in dist/grexal-run.blob.node, which bin/grexal compares with the `node` it would start.
import { spawnSync } from 'node:child_process';
import { realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { asciiComments } from './ascii-comments.mjs';

const require = createRequire(import.meta.url);
const ENTRY = 'dist/grexal-run-snapshot.cjs';
const BLOB = 'dist/grexal-run.blob';
const BLOB_NODE = `${BLOB}.node`;

/** The built-ins Node 20's snapshot builder aborts on once loaded (a native handle V8 cannot keep). */
const LAZY = ['http', 'https', 'tls'];
const LAZY_BUILTIN = fileURLToPath(new URL('../runner/cli/snapshot/lazy-builtin.ts', import.meta.url));

const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(b) {
    b.onResolve({ filter: new RegExp(`^(node:)?(${LAZY.join('|')})$`) }, (args) => {
      const name = args.path.replace(/^node:/, '');
      // The stand-in's own require is of the real module.
      if (args.namespace === 'lazy-builtin') return { path: `node:${name}`, external: true };
      return { path: name, namespace: 'lazy-builtin' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => {
      const keys = Reflect.ownKeys(require(`node:${args.path}`)).filter((k) => typeof k === 'string');
      return {
        contents: `const { lazyBuiltin } = require(${JSON.stringify(LAZY_BUILTIN)});
module.exports = lazyBuiltin(${JSON.stringify(args.path)}, ${JSON.stringify(keys)}, () => require("node:${args.path}"));`,
        resolveDir: process.cwd(),
        loader: 'js',
      };
    });
  },
};

/** What `stat -L -c %d:%i:%s:%Z` prints for the file: device, inode, size, change time. */
function binaryIdentity(file) {
  const s = statSync(realpathSync(file));
  return `${s.dev}:${s.ino}:${s.size}:${Math.floor(s.ctimeMs / 1000)}`;
}

/** Removes the snapshot of an earlier build: a stale blob must never meet a new bundle. */
export function removeRunSnapshot() {
  for (const file of [BLOB_NODE, BLOB, ENTRY]) rmSync(file, { force: true });
}

/** Builds the blob; `cli` is the CLI's esbuild options (its plugins, aliases and banner). */
export async function buildRunSnapshot(cli) {
  if (process.config.variables.node_use_node_snapshot === false) {
    console.log(`build: no startup snapshot for grexal run (${process.execPath} is built without them)`);
    return;
  }
  await build({
    ...cli,
    entryPoints: { 'grexal-run-snapshot': 'runner/cli/snapshot/entry.ts' },
    sourcemap: false,
    plugins: [...cli.plugins, lazyBuiltins],
  });
  asciiComments(ENTRY);
  // An empty environment: each variable the load reads is kept unset, which a run compares with
  // its own (runner/cli/snapshot/load-audit.ts).
  const builder = spawnSync(
    process.execPath,
    ['--no-warnings', '--snapshot-blob', BLOB, '--build-snapshot', ENTRY],
    {
      encoding: 'utf8',
      env: {},
    },
  );
  if (builder.status !== 0) {
    throw new Error(
      `node --build-snapshot ${ENTRY} failed (${builder.status ?? builder.signal}):\n${builder.stderr}`,
    );
  }
  writeFileSync(BLOB_NODE, `${binaryIdentity(process.execPath)}\n`);
}
