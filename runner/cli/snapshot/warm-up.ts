/**
 * The pure first steps of every `grexal run`, taken once while its startup snapshot is built: the
 * functions they call are compiled then and keep their bytecode in the blob, and zod's lazy schemas
 * of a run's options are built (a run's first resolveSandboxOptions took ~3.5 ms, its second 0.4).
 * Nothing here reads the host, the clock or the environment (the load's audit, which watches this
 * too, would fail the build), and nothing it makes is kept.
 */
import { parseArgs } from 'node:util';
import { resolveSandboxOptions } from '../../sandbox/options.ts';
import { runPolicy } from '../../sandbox/run-policy.ts';
import { LIMIT_FLAGS, parseLimitFlags } from '../limit-flags.ts';
import { NETWORK_FLAGS, parseNetworkFlags } from '../network-flags.ts';

export function warmUpRun(): void {
  const { values, positionals } = parseArgs({
    args: ['--image', 'grexal/agent', '--', 'true'],
    allowPositionals: true,
    options: { image: { type: 'string' }, ...LIMIT_FLAGS, ...NETWORK_FLAGS },
  });
  const limits = parseLimitFlags(values);
  runPolicy(undefined, parseNetworkFlags(values));
  resolveSandboxOptions({ image: values.image, command: positionals, limits });
}
