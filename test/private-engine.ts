/**
 * A dockerd of the test's own, for fault tests that kill or stop the engine: its own data root,
 * exec root, pidfile and socket, no bridge and no iptables, in a network namespace of its own, so the
 * shared engine is never touched.
 * grexal/agent is copied in from the shared engine once. `dispose()` stops it and removes every
 * trace (shims, mounts, directories).
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';

export interface PrivateEngine {
  readonly root: string;
  readonly socket: string;
  /** `unix://<root>/docker.sock`, for DOCKER_HOST. */
  readonly endpoint: string;
  readonly docker: Dockerode;
  readonly pid: number | undefined;
  /** Sends the daemon a signal and waits (bounded) for it to exit. */
  kill(signal: 'SIGKILL' | 'SIGTERM'): Promise<void>;
  /** SIGSTOP / SIGCONT: the daemon hangs (its sockets stay open, nothing answers) or resumes. */
  freeze(frozen: boolean): void;
  /** Starts it again if it is not running, and waits (bounded) until it answers. */
  ensureUp(): Promise<void>;
  dispose(): Promise<void>;
}

/** overlay2 cannot sit on an overlay file system: the data root goes where it can. */
function baseDir(): string {
  const type = spawnSync('stat', ['-f', '-c', '%T', tmpdir()], { encoding: 'utf8' }).stdout.trim();
  return type.includes('overlay') ? '/var/lib' : tmpdir();
}

async function bounded(check: () => Promise<boolean>, what: string, attempts: number, everyMs = 250) {
  for (let i = 0; i < attempts; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  throw new Error(`private engine: never happened: ${what}`);
}

export async function startPrivateEngine(images: string[] = ['grexal/agent']): Promise<PrivateEngine> {
  // Not skipped when impossible: the suite fails saying why (a dockerd of its own needs root).
  if (process.getuid?.() !== 0) {
    throw new Error(
      'The engine fault tests start a dockerd of their own, which needs root: run them as root.',
    );
  }
  if (spawnSync('dockerd', ['--version']).status !== 0) {
    throw new Error(
      'The engine fault tests need dockerd on PATH: run `grexal doctor --fix` (it installs docker.io).',
    );
  }
  const base = baseDir();
  const root =
    base === '/var/lib' ? join(base, `grexal-test-engine-${process.pid}`) : await mkdtemp(join(base, 'gxe-'));
  await mkdir(join(root, 'data'), { recursive: true });
  await mkdir(join(root, 'exec'), { recursive: true });
  // Its own config file: the machine's daemon.json (runtimes, hosts) is not this engine's.
  await writeFile(join(root, 'daemon.json'), '{}');
  const socket = join(root, 'docker.sock');
  const endpoint = `unix://${socket}`;
  const docker = new Dockerode({ socketPath: socket });
  const args = [
    '--config-file',
    join(root, 'daemon.json'),
    '--data-root',
    join(root, 'data'),
    '--exec-root',
    join(root, 'exec'),
    '--pidfile',
    join(root, 'docker.pid'),
    '-H',
    endpoint,
    '--bridge=none',
    '--iptables=false',
    '--ip6tables=false',
  ];
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const answers = () =>
    (docker.ping({ abortSignal: AbortSignal.timeout(1_000) } as never) as unknown as Promise<unknown>).then(
      () => true,
      () => false,
    );
  const launch = async (): Promise<void> => {
    // A killed dockerd leaves its pidfile and its containerd's (which dies with it, a moment
    // later): a new dockerd that still sees either pid in /proc refuses to start or waits on the
    // dead containerd. Both are ours and dead once gone from /proc, so the files go.
    for (const pidFile of [join(root, 'docker.pid'), join(root, 'exec', 'containerd', 'containerd.pid')]) {
      await bounded(async () => !pidAlive(pidFile), `the process of ${pidFile} gone`, 120);
      await rm(pidFile, { force: true });
    }
    const logPath = join(root, 'dockerd.log');
    const log = openSync(logPath, 'a');
    // In a network namespace of its own: a dockerd started with --bridge=none deletes the host's
    // docker0 at start (moby's removeDefaultBridgeInterface), which the shared engine's containers
    // need. unshare execs dockerd, so the child's pid is the daemon's.
    const started = spawn('unshare', ['--net', '--', 'dockerd', ...args], { stdio: ['ignore', log, log] });
    child = started;
    exited = new Promise((resolve) => started.once('exit', () => resolve()));
    let gone = false;
    void exited.then(() => {
      gone = true;
    });
    await bounded(
      async () => {
        if (gone) {
          const tail = readFileSync(logPath, 'utf8').trim().split('\n').slice(-5).join('\n');
          throw new Error(`private dockerd exited at start:\n${tail}`);
        }
        return answers();
      },
      `dockerd answering on ${socket} (log: ${logPath})`,
      240,
    );
  };
  const running = () => child !== undefined && child.exitCode === null && child.signalCode === null;

  const engine: PrivateEngine = {
    root,
    socket,
    endpoint,
    docker,
    get pid() {
      return child?.pid;
    },
    async kill(signal) {
      if (!running()) return;
      child?.kill(signal);
      await Promise.race([
        exited,
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error(`dockerd did not exit on ${signal}`)), 60_000).unref(),
        ),
      ]);
    },
    freeze(frozen) {
      if (running()) child?.kill(frozen ? 'SIGSTOP' : 'SIGCONT');
    },
    async ensureUp() {
      if (running() && (await answers())) return;
      if (running()) await engine.kill('SIGKILL');
      await launch();
    },
    async dispose() {
      engine.freeze(false);
      if (running() && (await answers())) {
        // Its containers go with the engine's API, so no process of theirs outlives the test.
        const all = await docker.listContainers({ all: true }).catch(() => []);
        await Promise.allSettled(all.map((c) => docker.getContainer(c.Id).remove({ force: true })));
      }
      if (running()) {
        await engine.kill('SIGTERM').catch(() => engine.kill('SIGKILL'));
      }
      killStrays(root);
      unmountUnder(root);
      await rm(root, { recursive: true, force: true });
    },
  };

  try {
    await launch();
    for (const image of images) {
      // From the shared engine (DOCKER_HOST unset) into this one.
      execFileSync(
        'bash',
        ['-o', 'pipefail', '-c', `env -u DOCKER_HOST docker save ${image} | docker -H ${endpoint} load -q`],
        {
          stdio: ['ignore', 'ignore', 'inherit'],
          timeout: 300_000,
        },
      );
    }
  } catch (error) {
    await engine.dispose();
    throw error;
  }
  return engine;
}

function pidAlive(pidFile: string): boolean {
  let pid = '';
  try {
    pid = readFileSync(pidFile, 'utf8').trim();
  } catch {
    return false;
  }
  return /^\d+$/.test(pid) && existsSync(`/proc/${pid}`);
}

/** Container shims of this engine outlive a killed dockerd: they are found by its exec root. */
function killStrays(root: string): void {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmdline.includes(root)) {
      try {
        process.kill(Number(entry), 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
    }
  }
}

/** Mounts a killed engine left under its root (overlay, shm), deepest first. */
function unmountUnder(root: string): void {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((point) => point.startsWith(`${root}/`))
    .sort((a, b) => b.length - a.length);
  for (const point of mounts) spawnSync('umount', ['-l', point]);
}
