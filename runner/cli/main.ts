import { formatTimings, mark, timings, timingsEnabled } from '../timings.ts';
import type { CommandIo } from './command.ts';
import type { CommandEntry } from './commands.ts';
import { formatError } from './format-error.ts';
import { abortOnSignals } from './interrupts.ts';

function usage(commands: CommandEntry[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    'Usage: grexal <command> [options]',
    '',
    "Runs AI agents in hardened container sandboxes with their users' credentials.",
    '',
    'Commands:',
    ...lines,
    '',
    "Run `grexal <command> --help` for a command's options.",
    '',
  ].join('\n');
}

/** Runs the command `argv` names, one of `commands`; resolves with the exit code. */
export async function main(argv: string[], commands: CommandEntry[]): Promise<number> {
  const [name, ...rest] = argv;
  const interrupts = abortOnSignals(process.stderr);
  const io: CommandIo = {
    stdout: process.stdout,
    stderr: process.stderr,
    signal: interrupts.signal,
    // A getter: process.stdin makes its stream at first use (~1 ms), which only `dev` needs.
    get stdin() {
      return process.stdin;
    },
    interceptInterrupt: interrupts.intercept,
  };
  try {
    if (!name || name === '--help' || name === '-h' || name === 'help') {
      process.stdout.write(usage(commands));
      return name ? 0 : 2;
    }
    const entry = commands.find((c) => c.name === name);
    if (!entry) {
      process.stderr.write(`grexal: unknown command '${name}'.\n\n${usage(commands)}`);
      return 2;
    }
    const command = await entry.load();
    mark('command loaded');
    if (rest.includes('--help') || rest.includes('-h')) {
      const dashdash = rest.indexOf('--');
      const helpAt = Math.max(rest.indexOf('--help'), rest.indexOf('-h'));
      if (dashdash === -1 || helpAt < dashdash) {
        process.stdout.write(command.usage.endsWith('\n') ? command.usage : `${command.usage}\n`);
        return 0;
      }
    }
    return await command.run(rest, io);
  } catch (error) {
    process.stderr.write(`${formatError(error)}\n`);
    return 1;
  } finally {
    interrupts.dispose();
  }
}

/** What a bundle's `run` export does (launcher.ts calls it): the command, then the timings. */
export async function runCli(argv: string[], commands: CommandEntry[]): Promise<number> {
  mark('cli entry');
  const code = await main(argv, commands);
  mark('cli done');
  if (timingsEnabled()) process.stderr.write(`${formatTimings(timings())}\n`);
  return code;
}
