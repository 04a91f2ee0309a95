import { mark } from '../timings.ts';
import type { Command, CommandIo } from './command.ts';
import { formatError } from './format-error.ts';
import { abortOnSignals } from './interrupts.ts';

interface CommandEntry {
  name: string;
  summary: string;
  /** Loaded on use: `grexal run` must not pay for the HTTP server's modules (the bundle is split). */
  load: () => Promise<Command>;
}

const COMMANDS: CommandEntry[] = [
  {
    name: 'run',
    summary: 'run a command in a hardened sandbox',
    load: async () => (await import('./run.ts')).runCommand,
  },
  {
    name: 'serve',
    summary: "serve the orchestrator's HTTP API",
    load: async () => (await import('./serve.ts')).serveCommand,
  },
  {
    name: 'dev',
    summary: 'build and run an agent from its directory, with its local credentials',
    load: async () => (await import('./dev.ts')).devCommand,
  },
  {
    name: 'images',
    summary: 'build (or list) the base, agent and desktop images',
    load: async () => (await import('./images.ts')).imagesCommand,
  },
  {
    name: 'doctor',
    summary: 'check the engine, runtimes and images; --fix installs, starts and builds what is missing',
    load: async () => (await import('./doctor.ts')).doctorCommand,
  },
];

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  const lines = COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
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

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const interrupts = abortOnSignals(process.stderr);
  const io: CommandIo = {
    stdout: process.stdout,
    stderr: process.stderr,
    signal: interrupts.signal,
    stdin: process.stdin,
    interceptInterrupt: interrupts.intercept,
  };
  try {
    if (!name || name === '--help' || name === '-h' || name === 'help') {
      process.stdout.write(usage());
      return name ? 0 : 2;
    }
    const entry = COMMANDS.find((c) => c.name === name);
    if (!entry) {
      process.stderr.write(`grexal: unknown command '${name}'.\n\n${usage()}`);
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
