/** Runs python3 for the tests of the in-sandbox Python code, always with -B: no bytecode in the tree. */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';

export interface PythonExit {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function startPython(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; stdin?: Buffer } = {},
): { child: ChildProcess; exit: Promise<PythonExit> } {
  const child = spawn('python3', ['-B', ...args], {
    env: options.env ?? process.env,
    stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  if (options.stdin) child.stdin?.end(options.stdin);
  const exit = once(child, 'exit').then(([code]) => ({ code: code as number | null, stdout, stderr }));
  return { child, exit };
}
