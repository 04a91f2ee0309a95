/** `grexal serve` as a child process, as an operator runs it, for the API benchmarks. */
import { type ChildProcess, spawn } from 'node:child_process';

export interface ServeChild {
  child: ChildProcess;
  /** The URL it printed once listening. */
  url: string;
}

/** Starts `grexal serve --port 0 ARGS…` with its state dir and token; resolves once it listens. */
export function startServe(
  args: string[],
  env: {
    stateDir: string;
    token: string /** Pass its log (warn and above) on to ours once it listens. */;
    passLogs?: boolean;
    /** Each of its JSON log lines at info and above (its level is then info, not warn). */
    onLog?: (entry: Record<string, unknown>) => void;
  },
  /** Another build to run (a checkout with its own dist/), for a before/after. Default: this one. */
  root = '.',
): Promise<ServeChild> {
  // GREXAL_BENCH_SERVE_NODE_ARGS: Node flags for the runner only, e.g. to profile it under a burst
  // (`--cpu-prof --cpu-prof-dir=DIR`, written when it exits); NODE_OPTIONS refuses --cpu-prof.
  const nodeArgs = process.env.GREXAL_BENCH_SERVE_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(
    process.execPath,
    [...nodeArgs, `${root}/bin/grexal.mjs`, 'serve', '--port', '0', ...args],
    {
      env: {
        ...process.env,
        GREXAL_STATE_DIR: env.stateDir,
        GREXAL_RUNNER_TOKEN: env.token,
        GREXAL_LOG_LEVEL: env.onLog ? 'info' : 'warn',
      },
      stdio: ['ignore', 'inherit', 'pipe'],
    },
  );
  return new Promise((resolve, reject) => {
    let err = '';
    let partial = '';
    let listening = false;
    child.stderr?.on('data', (chunk: Buffer) => {
      if (env.onLog) {
        const lines = (partial + chunk.toString('utf8')).split('\n');
        partial = lines.pop()!;
        for (const line of lines.filter((l) => l.startsWith('{'))) {
          const entry = JSON.parse(line) as Record<string, unknown>;
          env.onLog(entry);
          // Info lines are for onLog; warnings and errors are passed on as without it.
          if (listening && env.passLogs && Number(entry['level']) >= 40) process.stderr.write(`${line}\n`);
        }
      } else if (listening && env.passLogs) process.stderr.write(chunk);
      // Kept for the URL and for the error if it exits; its later log lines are not needed here.
      if (err.length < 65_536) err += chunk;
      const url = /serving on (http:\/\/\S+)/.exec(err)?.[1];
      if (url && !listening) {
        listening = true;
        resolve({ child, url });
      }
    });
    child.on('exit', (code) => reject(new Error(`grexal serve exited ${code}: ${err}`)));
  });
}
