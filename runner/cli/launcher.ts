/**
 * dist/grexal.cjs, what bin/grexal starts (and bin/grexal.mjs imports): loads the CLI's bundle
 * through the code cache and runs the command. Node built-ins only, and CommonJS: an ES module
 * entry costs Node ~5 ms of loader set-up at every start (bin/grexal).
 */
import { fileURLToPath } from 'node:url';
import { mark } from '../timings.ts';
import { loadWithCodeCache } from './code-cache.ts';
import { exitWhenDone } from './exit-when-done.ts';
import { restoreExtraCaCerts } from './extra-ca.ts';

// First: whatever the CLI spawns must see the user's NODE_EXTRA_CA_CERTS (bin/grexal may hold it).
restoreExtraCaCerts();
mark('launcher');
const argv = process.argv.slice(2);
// `grexal run` has a bundle of its own; every other command (and help) the whole CLI's.
const file = argv[0] === 'run' ? './grexal-run.cjs' : './grexal-cli.cjs';
const bundle = loadWithCodeCache(fileURLToPath(new URL(file, import.meta.url)), argv[0] ?? '');
mark(bundle.cached ? 'cli bundle loaded (code cache)' : 'cli bundle loaded (compiled)');
const run = bundle.exports['run'] as (argv: string[]) => Promise<number>;
exitWhenDone(run(argv), bundle.save);
