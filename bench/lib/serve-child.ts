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
  },
  /** Another build to run (a checkout with its own dist/), for a before/after. Default: this one. */
  root = '.',
): Promise<ServeChild> {
  const child = spawn(process.execPath, [`${root}/bin/grexal.mjs`, 'serve', '--port', '0', ...args], {
    env: {
      ...process.env,
      GREXAL_STATE_DIR: env.stateDir,
      GREXAL_RUNNER_TOKEN: env.token,
      GREXAL_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      if (env.passLogs && /serving on/.test(err)) process.stderr.write(chunk);
      err += chunk;
      const url = /serving on (http:\/\/\S+)/.exec(err)?.[1];
      if (url) resolve({ child, url });
    });
    child.on('exit', (code) => reject(new Error(`grexal serve exited ${code}: ${err}`)));
  });
}
