/**
 * Finds a Docker engine the way testcontainers does: an ordered list of strategies, each pinged
 * with a short deadline; the first that answers wins, and the final error lists every attempt.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { GrexalError } from '../errors.ts';
import { refuseEngineRedirects } from './no-redirects.ts';

// On load, not only in probeEngines: a DockerRuntime built around any Dockerode must not follow either.
refuseEngineRedirects();

/** How long one candidate may take to answer `/_ping` before the next is tried. */
export const PING_TIMEOUT_MS = 1500;

export const DEFAULT_SOCKET = '/var/run/docker.sock';

/** One way to reach an engine, or the reason this strategy has nothing to offer. */
export interface EngineCandidate {
  /** Which strategy produced it, e.g. `DOCKER_HOST` or `default socket`. */
  strategy: string;
  /** `unix:///var/run/docker.sock` or `tcp://host:2375`; undefined when not applicable. */
  endpoint?: string;
  options?: Dockerode.DockerOptions;
  /** Why this strategy was skipped without trying (unset variable, bad URL, missing socket). */
  skipped?: string;
}

export interface EngineAttempt {
  strategy: string;
  endpoint?: string;
  error: string;
}

function fromDockerHost(value: string, env: NodeJS.ProcessEnv): EngineCandidate {
  const strategy = 'DOCKER_HOST';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { strategy, endpoint: value, skipped: 'not a URL (expected unix:///path or tcp://host:port)' };
  }
  if (url.protocol === 'unix:') {
    return { strategy, endpoint: value, options: socketOptions(url.pathname) };
  }
  if (url.protocol === 'tcp:' || url.protocol === 'http:' || url.protocol === 'https:') {
    const tls = url.protocol === 'https:' || (env.DOCKER_TLS_VERIFY ?? '') !== '';
    const port = Number(url.port || (tls ? 2376 : 2375));
    const options: Dockerode.DockerOptions = { host: url.hostname, port, protocol: tls ? 'https' : 'http' };
    if (tls) {
      const certs = env.DOCKER_CERT_PATH ?? join(homedir(), '.docker');
      try {
        options.ca = readFileSync(join(certs, 'ca.pem'));
        options.cert = readFileSync(join(certs, 'cert.pem'));
        options.key = readFileSync(join(certs, 'key.pem'));
      } catch (error) {
        return {
          strategy,
          endpoint: value,
          skipped: `TLS certificates unreadable in ${certs}: ${reason(error)}`,
        };
      }
    }
    return { strategy, endpoint: value, options };
  }
  return {
    strategy,
    endpoint: value,
    skipped: `unsupported scheme '${url.protocol}' (use unix:// or tcp://)`,
  };
}

function fromSocket(strategy: string, path: string, exists: (path: string) => boolean): EngineCandidate {
  const endpoint = `unix://${path}`;
  if (!exists(path)) return { strategy, endpoint, skipped: 'no such socket' };
  return { strategy, endpoint, options: socketOptions(path) };
}

/**
 * docker-modem merges DOCKER_HOST's host, port and TLS settings into every client's options, and a
 * host wins over socketPath: each field is set explicitly so a socket strategy uses its socket.
 */
function socketOptions(socketPath: string): Dockerode.DockerOptions {
  return {
    socketPath,
    host: undefined,
    port: undefined,
    protocol: 'http',
    ca: undefined,
    cert: undefined,
    key: undefined,
  };
}

/**
 * The ordered strategies: `DOCKER_HOST` alone when it is set (as the docker CLI does: an operator
 * who names an engine must never get another one silently, say the shared engine instead of a
 * private one), else the default socket, then rootless Docker's socket.
 * Pure apart from `exists`, so the order and the skip reasons are unit-tested without an engine.
 */
export function engineCandidates(
  env: NodeJS.ProcessEnv = process.env,
  exists: (path: string) => boolean = existsSync,
): EngineCandidate[] {
  const dockerHost = env.DOCKER_HOST?.trim();
  if (dockerHost) return [fromDockerHost(dockerHost, env)];
  const candidates: EngineCandidate[] = [{ strategy: 'DOCKER_HOST', skipped: 'not set' }];
  candidates.push(fromSocket('default socket', DEFAULT_SOCKET, exists));
  if (env.XDG_RUNTIME_DIR) {
    candidates.push(fromSocket('rootless socket', join(env.XDG_RUNTIME_DIR, 'docker.sock'), exists));
  }
  return candidates;
}

function reason(error: unknown): string {
  const e = error as { code?: string; message?: string; name?: string } | null;
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `no answer within ${PING_TIMEOUT_MS} ms`;
  if (e?.code === 'EACCES') return 'permission denied (add your user to the `docker` group or run as root)';
  if (e?.code === 'ECONNREFUSED') return 'connection refused (is dockerd running?)';
  if (e?.code === 'ENOENT') return 'no such socket';
  return e?.code ? `${e.code}: ${e.message ?? ''}`.trim() : (e?.message ?? String(error));
}

export const UNREACHABLE_FIX = 'Run `grexal doctor --fix` or start Docker.';

/** The E_ENGINE_UNREACHABLE error: every strategy with why it failed, then the fix. */
export function unreachableError(attempts: EngineAttempt[], fix = UNREACHABLE_FIX): GrexalError {
  const tried = attempts
    .map((a) => `${a.strategy}${a.endpoint ? ` (${a.endpoint})` : ''}: ${a.error}`)
    .join('; ');
  return new GrexalError('E_ENGINE_UNREACHABLE', `No Docker engine found (tried ${tried}). ${fix}`, {
    details: attempts,
  });
}

async function ping(docker: Dockerode, signal?: AbortSignal): Promise<void> {
  const deadline = AbortSignal.timeout(PING_TIMEOUT_MS);
  // dockerode's types omit ping's options; it does pass abortSignal through to the request.
  const pingWith = docker.ping.bind(docker) as unknown as (opts: {
    abortSignal: AbortSignal;
  }) => Promise<unknown>;
  await pingWith({ abortSignal: signal ? AbortSignal.any([signal, deadline]) : deadline });
}

/** Tries each candidate in order; resolves with the first that answers. */
export async function probeEngines(
  candidates: EngineCandidate[],
  options: { signal?: AbortSignal } = {},
): Promise<{ docker: Dockerode; endpoint: string }> {
  refuseEngineRedirects();
  const attempts: EngineAttempt[] = [];
  for (const candidate of candidates) {
    options.signal?.throwIfAborted();
    if (candidate.skipped || !candidate.options) {
      attempts.push({
        strategy: candidate.strategy,
        endpoint: candidate.endpoint,
        error: candidate.skipped ?? '',
      });
      continue;
    }
    const docker = new Dockerode(candidate.options);
    try {
      await ping(docker, options.signal);
      return { docker, endpoint: candidate.endpoint ?? '' };
    } catch (error) {
      options.signal?.throwIfAborted();
      attempts.push({ strategy: candidate.strategy, endpoint: candidate.endpoint, error: reason(error) });
    }
  }
  throw unreachableError(attempts);
}

/** An engine chosen without waiting for its ping: `reachable` settles with the ping. */
export interface EngineAlongside {
  docker: Dockerode;
  endpoint: string;
  /** Resolves once the engine answered its ping; rejects as probeEngines would (E_ENGINE_UNREACHABLE). */
  reachable: Promise<void>;
}

/**
 * For one-shot callers (`grexal run`): with a single candidate to try there is nothing to choose,
 * so its ping runs beside the caller's first engine calls instead of before them (it cost ~8 ms
 * of the cold start). The caller must make its engine calls wait for `reachable` before it
 * reports their failure, so a missing engine gives the very error probeEngines gives, with the
 * same list of attempts and the same fix, and a hung one is still told within PING_TIMEOUT_MS.
 * With several candidates the first that answers wins, as in connectEngine.
 */
export async function connectEngineAlongside(
  candidates: EngineCandidate[],
  options: { signal?: AbortSignal } = {},
): Promise<EngineAlongside> {
  const usable = candidates.filter((c) => !c.skipped && c.options);
  const only = usable.length === 1 ? usable[0] : undefined;
  if (!only?.options) {
    const found = await probeEngines(candidates, options);
    return { ...found, reachable: Promise.resolve() };
  }
  refuseEngineRedirects();
  options.signal?.throwIfAborted();
  const docker = new Dockerode(only.options);
  const reachable = ping(docker, options.signal).catch((error: unknown) => {
    options.signal?.throwIfAborted();
    throw unreachableError(
      candidates.map((c) => ({
        strategy: c.strategy,
        endpoint: c.endpoint,
        error: c === only ? reason(error) : (c.skipped ?? ''),
      })),
    );
  });
  reachable.catch(() => {});
  return { docker, endpoint: only.endpoint ?? '', reachable };
}

let cached: Promise<{ docker: Dockerode; endpoint: string }> | undefined;

/** The engine this process uses; found once and cached (a failed search is not cached). */
export function connectEngine(
  options: { signal?: AbortSignal } = {},
): Promise<{ docker: Dockerode; endpoint: string }> {
  if (!cached) {
    const attempt = probeEngines(engineCandidates(), options);
    cached = attempt;
    attempt.catch(() => {
      if (cached === attempt) cached = undefined;
    });
  }
  return cached;
}

/** Forgets the cached client, e.g. after `ensureEngine` started a new daemon. */
export function resetEngineCache(): void {
  cached = undefined;
}
