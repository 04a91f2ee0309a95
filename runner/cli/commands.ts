/** The `grexal` commands, each loaded on use. */
import type { Command } from './command.ts';

export interface CommandEntry {
  name: string;
  summary: string;
  /**
   * Loaded on use: `grexal run` must not pay for the HTTP server's modules (it has a bundle of its
   * own, run-entry.ts; in the others each command's modules are evaluated on first require).
   */
  load: () => Promise<Command>;
}

export const COMMANDS: CommandEntry[] = [
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
