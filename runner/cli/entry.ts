/**
 * The CLI's bundle (dist/grexal-cli.cjs), every command: launcher.ts loads it with a code cache
 * and calls `run`. CommonJS, because Node 20 caches compiled code for scripts only (code-cache.ts).
 */
import { COMMANDS } from './commands.ts';
import { runCli } from './main.ts';

/** Runs one command; resolves with the exit code (the launcher exits once output is flushed). */
export function run(argv: string[]): Promise<number> {
  return runCli(argv, COMMANDS);
}
