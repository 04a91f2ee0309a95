/**
 * `grexal run --runtime runsc` (gVisor) against the real engine: exit codes, the ctx socket (a
 * host Unix socket on the /run/grexal bind mount, which gVisor allows only when runsc is
 * registered with --host-uds), the desktop's VNC socket, and nothing left behind.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  containersOfPid,
  docker,
  eventually,
  newStateDir,
  removeStateDir,
  runCli,
  sandboxDirs,
  startCli,
} from './helpers.ts';

let stateDir: string;
let env: Record<string, string>;

beforeAll(async () => {
  const info = (await docker.info()) as { Runtimes?: Record<string, { runtimeArgs?: string[] }> };
  const runsc = info.Runtimes?.['runsc'];
  if (!runsc) {
    throw new Error(
      'runsc is not registered with the engine: apt-get install runsc, then `grexal doctor --fix`.',
    );
  }
  if (!runsc.runtimeArgs?.includes('--host-uds=all')) {
    throw new Error(
      `runsc is registered without --host-uds=all (${JSON.stringify(runsc.runtimeArgs)}): run \`grexal doctor --fix\`.`,
    );
  }
  stateDir = await newStateDir();
  env = { GREXAL_STATE_DIR: stateDir };
});
afterAll(async () => {
  await removeStateDir(stateDir);
});

describe('grexal run --runtime runsc', () => {
  it('runs as uid 1000 under gVisor, exits with the command code, leaves nothing', async () => {
    const run = startCli(['run', '--runtime', 'runsc', '--', 'sh', '-c', 'id -u; exit 3'], env);
    const code = await run.exited;
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('1000\n');
    expect(code).toBe(3);
    expect(await containersOfPid(run.child.pid)).toEqual([]);
    expect(await sandboxDirs(stateDir)).toEqual([]);
  });

  it('is gVisor: the kernel the agent sees is the Sentry', async () => {
    // gVisor's /proc/version names no host kernel build; dmesg is its own boot log.
    const { code, stdout } = await runCli(['run', '--runtime', 'runsc', '--', 'dmesg'], env);
    expect(code).toBe(0);
    expect(stdout).toContain('gVisor');
  });

  describe('with credentials', () => {
    const secret = `canary-gvisor-${randomBytes(8).toString('hex')}`;
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'grexal-gvisor-creds-'));
      const manifest = {
        connections: [
          { id: 'svc', mode: 'secret_input', fields: [{ key: 'token' }], env: { SVC_TOKEN: 'token' } },
        ],
      };
      await writeFile(join(dir, 'grexal.json'), JSON.stringify(manifest));
      await writeFile(join(dir, 'connections.json'), JSON.stringify({ svc: { fields: { token: secret } } }));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('bootstraps over ctx.sock and answers ctx.connect() under gVisor', async () => {
      const connect =
        "import { ctx } from '/opt/grexal/ctx.mjs'; const r = await ctx.connect('svc'); console.log(r.fields.token === process.argv[1] ? 'ctx-ok' : 'ctx-wrong'); console.log('raw=' + r.fields.token);";
      const run = startCli(
        [
          'run',
          '--runtime',
          'runsc',
          '--manifest',
          join(dir, 'grexal.json'),
          '--connections',
          join(dir, 'connections.json'),
          '--',
          'sh',
          '-c',
          'test "$SVC_TOKEN" = "$0" && echo env-ok; node --input-type=module -e "$1" "$0"',
          secret,
          connect,
        ],
        env,
      );
      const code = await run.exited;
      expect(code).toBe(0);
      expect(run.stdout).toBe('env-ok\nctx-ok\nraw=***\n');
      expect(run.stderr).not.toContain(secret);
      expect(await containersOfPid(run.child.pid)).toEqual([]);
      expect(await sandboxDirs(stateDir)).toEqual([]);
    });
  });

  it("reaches the desktop's VNC socket from the host under gVisor", async () => {
    // The agent waits (bounded) for the test to say it is done; meanwhile Xtigervnc serves vnc.sock
    // from the browser container, which shares the agent's network namespace under runsc too.
    const script = 'for i in $(seq 1200); do [ -e /run/grexal/go ] && exit 0; sleep 0.1; done; exit 9';
    const run = startCli(['run', '--desktop', '--runtime', 'runsc', '--', 'sh', '-c', script], env);
    try {
      let socketPath = '';
      let agentDir = '';
      await eventually(
        async () => {
          // The desktop runs in the browser container, with a directory of its own (docs/browser.md).
          const dirs = await sandboxDirs(stateDir);
          const browserDir = dirs.find((d) => d.endsWith('.browser'));
          agentDir = dirs.find((d) => !d.endsWith('.browser')) ?? '';
          socketPath = browserDir ? join(browserDir, 'vnc.sock') : '';
          return socketPath !== '' && (await readBanner(socketPath).catch(() => '')) !== '';
        },
        'vnc.sock answering on the host',
        1200,
      );
      expect(await readBanner(socketPath)).toBe('RFB 003.008\n');
      await writeFile(join(agentDir, 'go'), '');
      // The CLI's own word, should it fail: what went wrong is in its stderr.
      expect(await run.exited, run.stderr).toBe(0);
    } finally {
      run.child.kill('SIGINT');
      await run.exited;
    }
    expect(await containersOfPid(run.child.pid)).toEqual([]);
    expect(await sandboxDirs(stateDir)).toEqual([]);
  });
});

/** The first 12 bytes a VNC server sends: its protocol version. */
function readBanner(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(new Error('no banner within 3 s')), 3_000);
    socket.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length >= 12) {
        clearTimeout(timer);
        socket.destroy();
        resolve(got.subarray(0, 12).toString('latin1'));
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      reject(new Error('closed before the banner'));
    });
  });
}
