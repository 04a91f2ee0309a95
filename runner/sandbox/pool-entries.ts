/** What runner/sandbox adds to runner/pool: checking a pool spec and the exact-match key. */
import { totalmem } from 'node:os';
import { GrexalError, type Problem, ValidationError } from '../errors.ts';
import { type PoolSpec, poolNameSchema } from '../pool/index.ts';
import type { ContainerRuntime } from '../runtime/index.ts';
import { parseOrThrow } from '../validation.ts';
import { type ResolvedSandboxOptions, resolveSandboxOptions } from './options.ts';
import { formatBytes } from './units.ts';

/**
 * A pool entry's CPU weight while it starts (cgroup v1 `cpu.shares`; the default, every live
 * run's, is 1024): a refill that starts a desktop while the claimed run it replaces draws its first
 * takeover frame gets about 1/9 of the CPU they contend for, and all that is idle. Not lower: on a
 * machine loaded for long an entry must still become ready within its start deadline. A ready
 * entry has the default back (Sandbox.endWarming): idle, it takes no CPU anyway.
 */
export const ENTRY_CPU_SHARES = 128;

/**
 * How long a desktop pool's refill waits after a claim (at most 4× after the first of a burst):
 * the claimed run's first second is its agent's start, its first takeover's link and first frame
 * (or its first page), and a desktop's start (two containers, the engine's calls, the runner's
 * spawns for its host directory and link, which no CPU weight covers) would take from it. The
 * pool is then short of that entry a second longer: the next claim within ~3 s is cold either way.
 */
export const DESKTOP_REFILL_HOLD_MS = 1_000;

/**
 * A sandbox request is served from a pool only when everything that shapes the container is the
 * same: image, desktop size, every limit and the OCI runtime. The run's own fields (command, env,
 * credentials, network, timeout) are bound at the claim and never part of the key.
 */
export function poolKey(options: ResolvedSandboxOptions): string {
  const { memoryBytes, nanoCpus, pidsLimit, tmpBytes, homeBytes, shmBytes } = options.limits;
  return JSON.stringify([
    options.image,
    options.desktop ? [options.desktop.width, options.desktop.height] : null,
    [memoryBytes, nanoCpus, pidsLimit, tmpBytes, homeBytes, shmBytes],
    options.runtime ?? null,
  ]);
}

export function poolNameOf(pool: unknown): string | undefined {
  return pool === undefined ? undefined : parseOrThrow(poolNameSchema, pool, 'sandbox request', 'pool');
}

/** The sandbox options of a pool, checked against the engine (image, runtime) and the host. */
export async function checkPoolSpec(
  spec: PoolSpec,
  runtime: Pick<ContainerRuntime, 'image' | 'info'>,
): Promise<ResolvedSandboxOptions> {
  const options = resolveSandboxOptions({
    image: spec.image,
    desktop: spec.desktop,
    limits: spec.limits,
    runtime: spec.runtime,
  });
  const problems: Problem[] = [];
  // Accepting it would mean a pool's runs end at another time than the same request served cold.
  if (hasTimeout(spec.limits))
    problems.push({
      code: 'E_POOL_RUN_LIMIT',
      path: 'limits.timeoutMs',
      message:
        "A pool entry's deadline is its run's: it is bound at the claim, from the request's limits.timeoutMs, and counted from the claim.",
      fix: 'Leave limits.timeoutMs out of the pool and give it on POST /v1/sandboxes; maxIdleMs bounds how long an entry waits.',
    });
  if (options.limits.memoryBytes > totalmem())
    problems.push({
      code: 'E_POOL_LIMIT_HOST',
      path: 'limits.memoryBytes',
      message: `${formatBytes(options.limits.memoryBytes)} is over this host's ${formatBytes(totalmem())}.`,
      fix: `Give at most ${totalmem()} bytes.`,
    });
  const [image, info] = await Promise.all([
    runtime.image(options.image),
    options.runtime === undefined ? undefined : runtime.info(),
  ]);
  if (!image)
    problems.push({
      code: 'E_POOL_IMAGE_NOT_FOUND',
      path: 'image',
      message: `Image '${options.image}' is not in the engine.`,
      fix: `Run \`grexal images build\` (or build '${options.image}') on the runner's machine, then PUT the pool again.`,
    });
  else if (options.desktop && image.labels['grexal.image'] !== 'desktop')
    problems.push({
      code: 'E_POOL_DESKTOP_IMAGE',
      path: 'desktop',
      message: `Image '${options.image}' has no desktop (label grexal.image is '${image.labels['grexal.image'] ?? ''}').`,
      fix: 'Use grexal/desktop (or an image built FROM it), or leave desktop out.',
    });
  if (problems.length > 0) throw new ValidationError(problems, 'pool');
  if (info && options.runtime !== undefined && !info.runtimes.includes(options.runtime))
    throw new GrexalError(
      'E_RUNTIME_NOT_FOUND',
      `Runtime '${options.runtime}' is not registered with the engine (it has: ${info.runtimes.join(', ')}). Run \`grexal doctor --fix\` to register runsc, or leave runtime out.`,
    );
  return options;
}

function hasTimeout(limits: unknown): boolean {
  return typeof limits === 'object' && limits !== null && 'timeoutMs' in limits;
}
