/** What bench/bridge starts beside itself: its peer processes, websockify, a desktop container. */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { build } from 'esbuild';

const run = promisify(execFile);
const WEBSOCKIFY = process.env['WEBSOCKIFY'] ?? '/usr/bin/websockify';
const DOCKER = process.env['DOCKER_CLI'] ?? '/usr/bin/docker';
export const children: ChildProcess[] = [];
const containers: string[] = [];

export function startPeer(
  role: 'rfb' | 'bridge' | 'relay',
  socket: string,
): Promise<Record<string, unknown> & { pid: number }> {
  const child = spawn(process.execPath, ['scripts/run-ts.mjs', 'bench/bridge/peer.ts', role, socket], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${role} peer exited with ${code} before it was ready`)));
    createInterface({ input: child.stdout! }).once('line', (line) =>
      resolve({ ...JSON.parse(line), pid: child.pid! }),
    );
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Polls, boundedly, until `probe` answers. */
async function until(what: string, probe: () => Promise<boolean>, attempts = 600): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gave up waiting for ${what}`);
}

function accepts(target: { port: number; host: string } | { path: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(target, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

export async function startWebsockify(socket: string): Promise<{ url: string; pid: number }> {
  const port = await freePort();
  const child = spawn(WEBSOCKIFY, [`--unix-target=${socket}`, `127.0.0.1:${port}`], { stdio: 'ignore' });
  children.push(child);
  await until(`websockify on ${port} (is ${WEBSOCKIFY} installed?)`, () =>
    accepts({ port, host: '127.0.0.1' }),
  );
  return { url: `ws://127.0.0.1:${port}/`, pid: child.pid! };
}

/**
 * A grexal/desktop container started the way a sandbox starts its desktop (sandbox-agent/desktop.ts),
 * with the sandbox's hardening; its vnc.sock appears in `dir` on the host.
 */
export async function startDesktopContainer(dir: string, image: string): Promise<string> {
  const runDir = join(dir, 'run');
  mkdirSync(runDir, { mode: 0o700 });
  chownSync(runDir, 1000, 1000);
  chmodSync(runDir, 0o700);
  await build({
    entryPoints: ['bench/bridge/desktop-peer.ts'],
    outfile: join(dir, 'x', 'desktop-peer.mjs'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node18',
    logLevel: 'warning',
  });
  const { stdout } = await run(DOCKER, [
    ...['run', '-d', '--rm', '--label', 'grexal.bench=1', '--user', '1000:1000', '--read-only'],
    ...[
      '--cap-drop',
      'ALL',
      '--security-opt',
      'no-new-privileges',
      '--network',
      'none',
      '--shm-size',
      '512m',
    ],
    ...[
      '--tmpfs',
      '/tmp:rw,nodev,nosuid,mode=1777',
      '--tmpfs',
      '/home/agent:rw,nodev,nosuid,mode=0700,uid=1000,gid=1000',
    ],
    ...[
      '-v',
      `${join(dir, 'x')}:/x:ro`,
      '-v',
      `${runDir}:/run/grexal`,
      '--entrypoint',
      'node',
      image,
      '/x/desktop-peer.mjs',
    ],
  ]);
  containers.push(stdout.trim());
  const socket = join(runDir, 'vnc.sock');
  await until("the desktop container's vnc.sock", () => accepts({ path: socket }));
  return socket;
}

export async function stopAll(): Promise<void> {
  for (const child of children) {
    child.stdin?.end();
    if (child.exitCode === null) child.kill('SIGTERM');
  }
  for (const id of containers) await run(DOCKER, ['rm', '-f', id]).catch(() => undefined);
}
