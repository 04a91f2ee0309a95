/**
 * `grexal run` from a V8 startup snapshot: dist/grexal-run.blob, made by `npm run build`
 * (scripts/run-snapshot.mjs) from this entry, holds the run bundle's modules already evaluated, so
 * a run skips their load (~20 ms of a cold `grexal run`; docs/pools.md, "The cold path").
 * bin/grexal starts `node --snapshot-blob dist/grexal-run.blob run …` when the blob was made by the
 * very `node` it would start; Node refuses a blob of another version.
 *
 * Whatever a module computed at its load was computed in the builder. So the builder watches the
 * load (load-audit.ts: the environment variables it read, and no host, clock or random answer),
 * and a run whose environment differs in one of those variables, or whose dist/ is not the
 * builder's (a moved checkout), loads the bundle itself as dist/grexal.cjs does. Node 20 cannot
 * snapshot `http`, `https` and `tls`: the bundle holds stand-ins for them (lazy-builtin.ts).
 */
import { realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startupSnapshot } from 'node:v8';
import { mark } from '../../timings.ts';
import { loadWithCodeCache } from '../code-cache.ts';
import { exitWhenDone } from '../exit-when-done.ts';
import { restoreExtraCaCerts } from '../extra-ca.ts';
import { changedSince, loadWatch } from './load-audit.ts';

if (!loadWatch) {
  throw new Error(
    "dist/grexal-run-snapshot.cjs is the startup snapshot's entry, for `node --build-snapshot` (npm run build): run bin/grexal.",
  );
}
// Required here, not imported: an import's place is the import sorter's, and the watch
// (load-audit.ts) must have started before the run's modules load; the few imported above are the
// launcher's own and read nothing at their load. esbuild evaluates a required module where the
// require is.
const { run } = require('../run-entry.ts') as typeof import('../run-entry.ts');
(require('./warm-up.ts') as typeof import('./warm-up.ts')).warmUpRun();
const frozen = loadWatch.finish();
// Real, as blobDirectory's is: a checkout reached through a symbolic link is not a moved one.
const builtIn = realpathSync(dirname(fileURLToPath(import.meta.url)));

startupSnapshot.setDeserializeMainFunction(() => {
  restoreExtraCaCerts();
  mark('launcher');
  // A snapshot's process has no script in its argv: the command comes first.
  const argv = process.argv.slice(1);
  const dist = blobDirectory() ?? builtIn;
  const changed = changedSince(frozen);
  if (dist === builtIn && changed.length === 0) {
    mark('cli bundle loaded (snapshot)');
    exitWhenDone(run(argv));
    return;
  }
  const bundle = loadWithCodeCache(join(dist, 'grexal-run.cjs'), 'run');
  mark(`cli bundle loaded (not the snapshot: ${dist === builtIn ? changed.join(', ') : 'moved'})`);
  exitWhenDone((bundle.exports['run'] as typeof run)(argv), bundle.save);
});

/** The real directory of the blob this process started from (`--snapshot-blob` in Node's options). */
function blobDirectory(): string | undefined {
  const options = process.execArgv;
  const at = options.indexOf('--snapshot-blob');
  const blob =
    at >= 0
      ? options[at + 1]
      : options.find((o) => o.startsWith('--snapshot-blob='))?.slice('--snapshot-blob='.length);
  try {
    return blob === undefined ? undefined : dirname(realpathSync(blob));
  } catch {
    return undefined;
  }
}
