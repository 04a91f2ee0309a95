/**
 * `grexal run`'s own bundle (dist/grexal-run.cjs): that command's modules and nothing else, half
 * the bytes of the whole CLI to read and load on every run's start.
 */
import { runCli } from './main.ts';
import { runCommand } from './run.ts';

export function run(argv: string[]): Promise<number> {
  return runCli(argv, [{ name: 'run', summary: runCommand.summary, load: async () => runCommand }]);
}
