/**
 * Gets a Docker engine answering on this machine: on Debian as root it installs Debian's
 * `docker.io`, starts `dockerd` in the background and registers gVisor's `runsc` when installed.
 * Idempotent, and fast when the engine already answers (one ping and one `info`).
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type Dockerode from 'dockerode';
import { GrexalError } from '../errors.ts';
import { findExecutable } from '../host/executable.ts';
import { connectEngine, type EngineAttempt, resetEngineCache, unreachableError } from './engine.ts';

export const DOCKERD_LOG = '/var/log/grexal-dockerd.log';
export const INSTALL_LOG = '/var/log/grexal-engine-install.log';
export const DAEMON_JSON = '/etc/docker/daemon.json';
const DOCKER_PID_FILE = '/var/run/docker.pid';
/**
 * Debian's runsc starts containers only with the first two (see DESIGN §5). `--host-uds=all`: the
 * supervisor connects to the runner's ctx.sock and the desktop's Xtigervnc creates vnc.sock, both Unix
 * sockets on the /run/grexal bind mount; gVisor refuses host sockets without it (connect EPERM). The
 * sandbox's only host-backed mount holding sockets is its own /run/grexal directory.
 */
export const RUNSC_ARGS = ['--network=host', '--ignore-cgroups', '--host-uds=all'];
const START_TIMEOUT_MS = 60_000;
const RELOAD_TIMEOUT_MS = 10_000;
const POLL_MS = 200;
const MANUAL_FIX =
  'Automatic install needs Debian and root: install Docker (https://docs.docker.com/engine/install/) and start it, or set DOCKER_HOST to a running engine.';

const DOCKER_HOST_FIX =
  'Start the engine DOCKER_HOST names, or unset DOCKER_HOST to use (and let `grexal doctor --fix` install) the local one.';

export interface EnsureEngineOptions {
  /** One human-readable line per step (what is being done and how long it took). */
  log: (line: string) => void;
  signal?: AbortSignal;
}

/**
 * Adds `runsc` to the daemon config, keeping every other key. `changed` is false when the same
 * registration is already there, so a second run does not reload the daemon.
 */
export function mergeDaemonConfig(
  text: string | undefined,
  runscPath: string,
): { text: string; changed: boolean } {
  let config: Record<string, unknown> = {};
  if (text?.trim()) {
    const parsed: unknown = JSON.parse(text);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new Error('the top level is not a JSON object');
    }
    config = parsed as Record<string, unknown>;
  }
  const runtimes = (config.runtimes && typeof config.runtimes === 'object' ? config.runtimes : {}) as Record<
    string,
    unknown
  >;
  const wanted = { path: runscPath, runtimeArgs: RUNSC_ARGS };
  const changed = JSON.stringify(runtimes.runsc) !== JSON.stringify(wanted);
  const merged = { ...config, runtimes: { ...runtimes, runsc: wanted } };
  return { text: `${JSON.stringify(merged, null, 2)}\n`, changed };
}

function isDebian(): boolean {
  return existsSync('/etc/debian_version');
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** The last lines of a log, where dockerd and apt say why they failed. */
function logTail(path: string, lines = 3): string {
  try {
    const tail = readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines);
    return tail.length > 0 ? ` Last lines of the log:\n  ${tail.join('\n  ')}\n` : '';
  } catch {
    return '';
  }
}

function installFailed(what: string, log: string, cause?: unknown): GrexalError {
  return new GrexalError(
    'E_ENGINE_INSTALL_FAILED',
    `${what}.${logTail(log)} See ${log} for the full output; fix the cause and run \`grexal doctor --fix\` again.`,
    { cause, details: { log } },
  );
}

/** Runs a command with its output appended to `logPath`; resolves with the exit code. */
function runLogged(cmd: string, args: string[], logPath: string, signal?: AbortSignal): Promise<number> {
  const fd = openSync(logPath, 'a');
  return new Promise<number>((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['ignore', fd, fd],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      signal,
    });
    child.once('error', reject);
    child.once('exit', (code) => resolve(code ?? 1));
  }).finally(() => closeSync(fd));
}

async function aptInstallDocker(options: EnsureEngineOptions): Promise<void> {
  await mkdir(dirname(INSTALL_LOG), { recursive: true });
  const started = Date.now();
  // `apt-get update` only when the package lists do not know docker.io yet.
  if ((await runLogged('apt-cache', ['show', 'docker.io'], INSTALL_LOG, options.signal)) !== 0) {
    options.log('apt-get update (package lists do not know docker.io yet)');
    if ((await runLogged('apt-get', ['update'], INSTALL_LOG, options.signal)) !== 0) {
      throw installFailed('`apt-get update` failed', INSTALL_LOG);
    }
  }
  options.log('apt-get install docker.io');
  // No recommends: they add git, needrestart and apparmor, none of which the runner needs.
  const args = ['install', '-y', '--no-install-recommends', 'docker.io', 'ca-certificates'];
  if ((await runLogged('apt-get', args, INSTALL_LOG, options.signal)) !== 0) {
    throw installFailed('`apt-get install docker.io` failed', INSTALL_LOG);
  }
  options.log(`docker.io installed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

function runningDockerdPid(): number | undefined {
  try {
    const pid = Number(readFileSync(DOCKER_PID_FILE, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/** Starts dockerd detached (it outlives this process) with its output in DOCKERD_LOG. */
function startDockerd(dockerd: string): { exited: () => number | null } {
  const fd = openSync(DOCKERD_LOG, 'a');
  const child = spawn(dockerd, [], { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let exitCode: number | null = null;
  child.once('exit', (code) => {
    exitCode = code ?? 1;
  });
  child.once('error', () => {
    exitCode = 127;
  });
  child.unref();
  return { exited: () => exitCode };
}

async function waitForApi(options: EnsureEngineOptions, exited: () => number | null): Promise<Dockerode> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let last: unknown;
  while (Date.now() < deadline) {
    options.signal?.throwIfAborted();
    const code = exited();
    if (code !== null) throw installFailed(`dockerd exited with code ${code} while starting`, DOCKERD_LOG);
    resetEngineCache();
    try {
      return (await connectEngine(options)).docker;
    } catch (error) {
      last = error;
    }
    await sleep(POLL_MS, undefined, { signal: options.signal });
  }
  throw installFailed(`dockerd did not answer within ${START_TIMEOUT_MS / 1000} s`, DOCKERD_LOG, last);
}

async function installAndStart(options: EnsureEngineOptions): Promise<Dockerode> {
  let dockerd = findExecutable('dockerd');
  if (!dockerd) {
    await aptInstallDocker(options);
    dockerd = findExecutable('dockerd');
    if (!dockerd) throw installFailed('docker.io installed but no `dockerd` found on PATH', INSTALL_LOG);
  }
  const started = Date.now();
  let exited = (): number | null => null;
  if (runningDockerdPid() === undefined) {
    options.log(`starting dockerd in the background (log: ${DOCKERD_LOG})`);
    ({ exited } = startDockerd(dockerd));
  } else {
    options.log('dockerd is already running; waiting for its API');
  }
  const docker = await waitForApi(options, exited);
  options.log(`engine answered after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return docker;
}

/** The engine's registrations, as `docker info` lists them: `{ path, runtimeArgs? }` by name. */
async function runtimes(docker: Dockerode): Promise<Record<string, unknown>> {
  const info = (await docker.info()) as { Runtimes?: Record<string, unknown> };
  return info.Runtimes ?? {};
}

/** Whether the engine runs runsc from this path with exactly RUNSC_ARGS. */
export function isRunscRegistered(registered: unknown, runscPath: string): boolean {
  const r = registered as { path?: unknown; runtimeArgs?: unknown } | undefined;
  return r?.path === runscPath && JSON.stringify(r.runtimeArgs ?? []) === JSON.stringify(RUNSC_ARGS);
}

/**
 * Registers runsc in daemon.json and reloads dockerd (SIGHUP) when it is installed but unknown to
 * the engine, or known with other arguments (an older registration is updated, not kept).
 */
async function registerRunsc(docker: Dockerode, options: EnsureEngineOptions): Promise<void> {
  const runsc = findExecutable('runsc');
  if (!runsc || isRunscRegistered((await runtimes(docker))['runsc'], runsc)) return;
  const pid = runningDockerdPid();
  if (!isRoot() || pid === undefined) {
    options.log(
      `runsc is installed but not registered as ${runsc} ${RUNSC_ARGS.join(' ')}; set it in ${DAEMON_JSON} and reload the engine`,
    );
    return;
  }
  let current: string | undefined;
  try {
    current = await readFile(DAEMON_JSON, 'utf8');
  } catch {
    current = undefined;
  }
  let merged: { text: string; changed: boolean };
  try {
    merged = mergeDaemonConfig(current, runsc);
  } catch (error) {
    throw installFailed(`${DAEMON_JSON} is not valid JSON (${(error as Error).message})`, DAEMON_JSON, error);
  }
  if (merged.changed) {
    await mkdir(dirname(DAEMON_JSON), { recursive: true });
    await writeFile(DAEMON_JSON, merged.text);
  }
  options.log(`registering runsc (${runsc} ${RUNSC_ARGS.join(' ')}) in ${DAEMON_JSON} and reloading dockerd`);
  process.kill(pid, 'SIGHUP');
  const deadline = Date.now() + RELOAD_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (isRunscRegistered((await runtimes(docker))['runsc'], runsc)) return;
    await sleep(POLL_MS, undefined, { signal: options.signal });
  }
  throw installFailed(`dockerd did not list runsc as registered after reloading ${DAEMON_JSON}`, DOCKERD_LOG);
}

/** Makes sure an engine answers (installing and starting one where we can), then registers runsc. */
export async function ensureEngine(options: EnsureEngineOptions): Promise<void> {
  let docker: Dockerode;
  try {
    docker = (await connectEngine(options)).docker;
  } catch (error) {
    if (!(error instanceof GrexalError) || error.code !== 'E_ENGINE_UNREACHABLE') throw error;
    const attempts = error.details as EngineAttempt[];
    // An engine named by DOCKER_HOST is the operator's: installing a local one would not answer there.
    if (process.env.DOCKER_HOST?.trim()) throw unreachableError(attempts, DOCKER_HOST_FIX);
    if (!isDebian() || !isRoot()) throw unreachableError(attempts, MANUAL_FIX);
    docker = await installAndStart(options);
  }
  await registerRunsc(docker, options);
}
