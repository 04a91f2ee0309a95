/**
 * The CLI's bundle (dist/grexal-cli.cjs): launcher.ts loads it with a code cache and calls `run`.
 * CommonJS, because Node 20 caches compiled code for scripts only (code-cache.ts).
 */
import { formatTimings, mark, timings, timingsEnabled } from '../timings.ts';
import { main } from './main.ts';

mark('cli entry');

/** Runs one command; resolves with the exit code (the launcher exits once output is flushed). */
export async function run(argv: string[]): Promise<number> {
  const code = await main(argv);
  mark('cli done');
  if (timingsEnabled()) process.stderr.write(`${formatTimings(timings())}\n`);
  return code;
}
