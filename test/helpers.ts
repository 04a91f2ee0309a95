/** Fixtures for tests against the real engine: CLI runs, leftovers, and waiting without sleeps. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, realpath, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { runDirMountsUnder, unmountRunDir } from '../runner/sandbox/run-dir-mount.ts';

export const REPO = new URL('..', import.meta.url).pathname;
/** A child's exit code and everything it printed, once it has closed its output. */
export function collected(child: ChildProcess): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

export const docker = new Dockerode({
  socketPath: process.env['DOCKER_HOST']?.replace('unix://', '') ?? '/var/run/docker.sock',
});

export async function newStateDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'grexal-test-state-'));
}

/** Every sandbox directory under a state dir (any runner instance). */
export async function sandboxDirs(stateDir: string): Promise<string[]> {
  const found: string[] = [];
  for (const instance of await readdir(stateDir).catch(() => [] as string[])) {
    // The runner's id key and instance records (runner/runtime/instance-ids.ts), not a sandbox.
    if (instance === '.ids') continue;
    for (const sandbox of await readdir(join(stateDir, instance)).catch(() => [] as string[])) {
      found.push(join(stateDir, instance, sandbox));
    }
  }
  return found;
}

/** Containers of a given sandbox id, or of any grexal sandbox. */
export async function sandboxContainers(sandboxId?: string): Promise<Dockerode.ContainerInfo[]> {
  return docker.listContainers({
    all: true,
    filters: { label: [sandboxId ? `grexal.sandbox=${sandboxId}` : 'grexal.sandbox'] },
  });
}

/** Containers that a runner process (by pid) left behind. */
export async function containersOfPid(pid: number | undefined): Promise<Dockerode.ContainerInfo[]> {
  return (await sandboxContainers()).filter((c) =>
    c.Labels['grexal.runner']?.startsWith(`${hostname()}/${pid}-`),
  );
}

/**
 * Containers the engine created for a runner process between two times (epoch seconds), from the
 * engine's own event log: unlike a listing afterwards, it also sees a container created and then
 * removed again, which is what "nothing was created" must rule out.
 */
export async function containersCreatedByPid(pid: number | undefined, since: number): Promise<string[]> {
  const until = Math.ceil(Date.now() / 1000) + 1;
  const raw = (await docker.getEvents({
    since,
    until,
    filters: { type: ['container'], event: ['create'], label: ['grexal.sandbox'] },
  })) as unknown as NodeJS.ReadableStream;
  let text = '';
  for await (const chunk of raw) text += chunk.toString();
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { id: string; Actor: { Attributes: Record<string, string> } })
    .filter((e) => e.Actor.Attributes['grexal.runner']?.startsWith(`${hostname()}/${pid}-`))
    .map((e) => e.id);
}

export interface CliRun {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  /** Resolves when stdout or stderr has matched. */
  waitFor(pattern: RegExp, stream?: 'stdout' | 'stderr'): Promise<RegExpMatchArray>;
  exited: Promise<number>;
}

export function startCli(args: string[], env: Record<string, string> = {}): CliRun {
  const child = spawn(process.execPath, [join(REPO, 'bin/grexal.mjs'), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const waiters: { pattern: RegExp; stream?: string; resolve: (m: RegExpMatchArray) => void }[] = [];
  const run: CliRun = {
    child,
    stdout: '',
    stderr: '',
    waitFor(pattern, stream) {
      return new Promise((resolve, reject) => {
        const hit = (stream ? run[stream] : run.stdout + run.stderr).match(pattern);
        if (hit) return resolve(hit);
        waiters.push({ pattern, stream, resolve });
        run.exited.then(() => reject(new Error(`exited before ${pattern}:\n${run.stdout}\n${run.stderr}`)));
      });
    },
    exited: new Promise((resolve) =>
      child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? 15 : 0))),
    ),
  };
  const feed = (name: 'stdout' | 'stderr') => (chunk: Buffer) => {
    run[name] += chunk.toString();
    for (const waiter of [...waiters]) {
      const hit = (waiter.stream ? run[waiter.stream as 'stdout'] : run.stdout + run.stderr).match(
        waiter.pattern,
      );
      if (hit) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(hit);
      }
    }
  };
  child.stdout?.on('data', feed('stdout'));
  child.stderr?.on('data', feed('stderr'));
  return run;
}

export async function runCli(args: string[], env: Record<string, string> = {}) {
  const run = startCli(args, env);
  const code = await run.exited;
  return { code, stdout: run.stdout, stderr: run.stderr };
}

/**
 * Removes a test's state dir, first unmounting the sandbox tmpfs a killed runner left there (no
 * runner was started after it to reap them, as when a test failed half-way).
 */
export async function removeStateDir(stateDir: string): Promise<void> {
  const real = await realpath(stateDir).catch(() => undefined);
  if (real) for (const mount of await runDirMountsUnder(real)) await unmountRunDir(mount);
  await rm(stateDir, { recursive: true, force: true });
}

/** Polls until `check` holds; bounded, so a broken promise fails the test instead of hanging it. */
export async function eventually(check: () => Promise<boolean>, what: string, attempts = 200): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`never happened: ${what}`);
}
