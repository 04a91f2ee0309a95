/** Times a child process as a user at a terminal sees it: to its first output, and to its exit. */
import { spawn } from 'node:child_process';

export interface TimedRun {
  /** Milliseconds from spawn to the first byte on stdout; undefined when it printed nothing. */
  firstOutputMs: number | undefined;
  /** Milliseconds from spawn to exit. */
  exitMs: number;
  code: number | null;
  stdout: string;
}

/** Runs `file args`, stderr passed through, and resolves once it has exited, whatever its code. */
export function timeProcess(
  file: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv } = {},
): Promise<TimedRun> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const since = () => Number(process.hrtime.bigint() - started) / 1e6;
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'inherit'], env: options.env });
    let firstOutputMs: number | undefined;
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      firstOutputMs ??= since();
      stdout += chunk;
    });
    child.on('error', reject);
    // `close`, not `exit`: stdout has been read to its end by then.
    child.on('close', (code) => resolve({ firstOutputMs, exitMs: since(), code, stdout }));
  });
}
