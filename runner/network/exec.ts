/** Runs `ip`, `nft` and `nsenter`: the host tools the wiring needs, with a deadline and stdin. */
import { spawn } from 'node:child_process';
import { GrexalError } from '../errors.ts';

export interface ExecOptions {
  input?: string;
  /** Default 10 s; a wedged netlink call must not hang a sandbox's start. */
  timeoutMs?: number;
}

export class ExecFailure extends Error {
  constructor(
    readonly command: string,
    readonly stderr: string,
    readonly exitCode: number | null,
  ) {
    super(`${command} failed (${exitCode}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
  }
}

export function exec(file: string, args: string[], options: ExecOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? 10_000,
      env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'ENOENT'
          ? new GrexalError(
              'E_NETWORK_UNAVAILABLE',
              `${file} is not installed; sandbox networking needs it.`,
              {
                cause: error,
              },
            )
          : error,
      );
    });
    child.on('close', (code) => {
      if (code === 0) resolve(stdout);
      else reject(new ExecFailure(`${file} ${args.slice(0, 3).join(' ')}`, stderr, code));
    });
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}
