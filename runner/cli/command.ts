/** A `grexal` subcommand. Each lives in its own file and is listed once in `main.ts`. */
export interface Command {
  name: string;
  /** One line for `grexal --help`. */
  summary: string;
  /** The full `grexal <name> --help` text. */
  usage: string;
  /** Returns the process exit code. `args` excludes the command name. */
  run(args: string[], io: CommandIo): Promise<number>;
}

export interface CommandIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Aborted on Ctrl-C / SIGTERM. */
  signal: AbortSignal;
  /** The terminal's input, for prompts (`grexal dev`'s local takeover). Absent: nothing to read. */
  stdin?: NodeJS.ReadableStream;
  /** Takes Ctrl-C for a prompt until the returned function is called (interrupts.ts). */
  interceptInterrupt?: (handler: () => void) => () => void;
}

/** Progress for long steps goes to stderr so stdout stays the agent's own. */
export function progress(io: CommandIo, line: string): void {
  io.stderr.write(`grexal: ${line}\n`);
}
