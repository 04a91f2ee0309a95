/** What a caller may ask of a sandbox, validated before anything exists. */
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { desktopSchema } from '../../sandbox-agent/protocol.ts';
import { type Problem, ValidationError } from '../errors.ts';
import { isReservedEnvName } from '../inject/index.ts';
import { imageReferenceSchema, MAX_STOP_GRACE_MS, type SandboxLimits } from '../runtime/index.ts';
import { parseOrThrow, UNENCODABLE_FIX } from '../validation.ts';
import { formatBytes } from './units.ts';

const MiB = 1024 * 1024;

export const DEFAULT_LIMITS: SandboxLimits = {
  memoryBytes: 1024 * MiB,
  nanoCpus: 1e9,
  pidsLimit: 256,
  tmpBytes: 64 * MiB,
  homeBytes: 64 * MiB,
  shmBytes: 64 * MiB,
};
/** Chromium and the X/VNC server need more room than a plain agent (Chromium's profile and /dev/shm above all). */
export const DEFAULT_DESKTOP_LIMITS: SandboxLimits = {
  memoryBytes: 2048 * MiB,
  nanoCpus: 2e9,
  pidsLimit: 1024,
  tmpBytes: 256 * MiB,
  homeBytes: 512 * MiB,
  shmBytes: 512 * MiB,
};
const TMPFS_MIN_BYTES = MiB;
const TMPFS_MAX_BYTES = 1024 * 1024 * MiB;
export const DEFAULT_DESKTOP_SIZE = { width: 1280, height: 800 };
/** A sandbox nobody stops still ends: one hour by default. */
export const DEFAULT_TIMEOUT_MS = 60 * 60_000;
export const DEFAULT_STOP_TIMEOUT_MS = 5_000;

/** zod's built-in checks cannot carry a problem code; refinements can. */
function limit(ok: (value: number) => boolean, message: string, fix: string) {
  return [ok, { message, params: { code: 'E_LIMIT_INVALID', fix } }] as const;
}

const cores = availableParallelism();

/** argv and env values become C strings in the sandbox, where a NUL cannot be. */
const cString = (maxLength: number) =>
  z
    .string()
    .max(maxLength)
    .refine((value) => !value.includes('\0'), {
      message: 'Contains a NUL character, which argv and env cannot carry.',
      params: { code: 'E_STRING_UNENCODABLE', fix: UNENCODABLE_FIX },
    });

/**
 * The names a credential may not take are the caller's to avoid too: the runner's own
 * (`GREXAL_*`, `HOME`), and the shell's and loaders' (`LD_PRELOAD`, `NODE_OPTIONS`, …), which
 * would decide what code runs or break the sandbox's contract with its clients.
 */
const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
  .refine((name) => !isReservedEnvName(name), {
    message: 'This name belongs to the runner, the shell or a loader.',
    params: {
      code: 'E_ENV_NAME_RESERVED',
      fix: 'Choose another name; see docs/ctx-protocol.md for the reserved list.',
    },
  });

const tmpfsSize = (mount: string) =>
  z
    .number()
    .int()
    .refine(
      ...limit(
        (v) => v >= TMPFS_MIN_BYTES && v <= TMPFS_MAX_BYTES,
        `The ${mount} tmpfs size is outside 1 MiB..1 TiB.`,
        'Give a size in bytes, e.g. 134217728 (128 MiB).',
      ),
    );

export const limitsSchema = z
  .object({
    /** Memory ceiling in bytes. Default 1 GiB (desktop: 2 GiB). */
    memoryBytes: z
      .number()
      .int()
      .refine(...limit((v) => v >= 16 * MiB, 'Under 16 MiB.', 'Give at least 16 MiB (e.g. --memory 512m).')),
    /** CPUs, fractional allowed. Default 1 (desktop: 2). */
    cpus: z
      .number()
      .refine(...limit((v) => v > 0, 'Not a positive number of CPUs.', 'Give e.g. 0.5 or 1.'))
      .refine(
        ...limit((v) => v <= cores, `More CPUs than this machine has (${cores}).`, `Give at most ${cores}.`),
      ),
    /** Processes and threads. Default 256 (desktop: 1024). */
    pidsLimit: z
      .number()
      .int()
      .refine(...limit((v) => v >= 16 && v <= 65_536, 'Outside 16..65536.', 'Give e.g. 256.')),
    /** Wall-clock limit of the whole run. Default one hour. */
    timeoutMs: z
      .number()
      .int()
      .refine(
        ...limit((v) => v >= 1_000 && v <= 7 * 86_400_000, 'Outside 1 s..7 days.', 'Give e.g. 30s or 1h.'),
      ),
    /** Size of /tmp in bytes. Default 64 MiB (desktop: 256 MiB); counts against memoryBytes as it fills. */
    tmpBytes: tmpfsSize('/tmp'),
    /** Size of /home/agent in bytes. Default 64 MiB (desktop: 512 MiB); counts against memoryBytes. */
    homeBytes: tmpfsSize('/home/agent'),
    /** Size of /dev/shm in bytes. Default 64 MiB (desktop: 512 MiB); counts against memoryBytes. */
    shmBytes: tmpfsSize('/dev/shm'),
  })
  .partial()
  .strict();
export type LimitsInput = z.infer<typeof limitsSchema>;

export const sandboxOptionsSchema = z
  .object({
    /** A reference by Docker's grammar (`grexal/agent`, `localhost:5000/a/b:tag@sha256:…`). */
    image: imageReferenceSchema,
    /** argv of the agent; the image's CMD when absent. */
    command: z
      .array(cString(64 * 1024))
      .min(1)
      .max(1024)
      .optional(),
    /** Non-secret environment for the agent (credentials come from the manifest instead). */
    env: z.record(envName, cString(64 * 1024)).optional(),
    desktop: z.union([z.boolean(), desktopSchema]).optional(),
    limits: limitsSchema.optional(),
    /** An OCI runtime registered with the engine, e.g. `runsc` for gVisor. */
    runtime: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/)
      .optional(),
    /** The agent's grace period between SIGTERM and SIGKILL. Default 5 s. */
    stopTimeoutMs: z.number().int().min(0).max(MAX_STOP_GRACE_MS).optional(),
  })
  .strict();
export type SandboxOptionsInput = z.infer<typeof sandboxOptionsSchema>;

/** The options with every default filled in. */
export interface ResolvedSandboxOptions {
  image: string;
  command?: string[];
  env: Record<string, string>;
  desktop?: { width: number; height: number };
  limits: SandboxLimits;
  timeoutMs: number;
  runtime?: string;
  stopTimeoutMs: number;
}

export function resolveSandboxOptions(input: unknown): ResolvedSandboxOptions {
  const options = parseOrThrow(sandboxOptionsSchema, input, 'sandbox options');
  const desktop =
    options.desktop === true ? DEFAULT_DESKTOP_SIZE : options.desktop === false ? undefined : options.desktop;
  const defaults = desktop ? DEFAULT_DESKTOP_LIMITS : DEFAULT_LIMITS;
  const limits = options.limits ?? {};
  const resolved: SandboxLimits = {
    memoryBytes: limits.memoryBytes ?? defaults.memoryBytes,
    nanoCpus: limits.cpus === undefined ? defaults.nanoCpus : Math.round(limits.cpus * 1e9),
    pidsLimit: limits.pidsLimit ?? defaults.pidsLimit,
    tmpBytes: limits.tmpBytes ?? defaults.tmpBytes,
    homeBytes: limits.homeBytes ?? defaults.homeBytes,
    shmBytes: limits.shmBytes ?? defaults.shmBytes,
  };
  checkTmpfsFitsMemory(limits, resolved);
  return {
    image: options.image,
    command: options.command,
    env: options.env ?? {},
    desktop,
    limits: resolved,
    timeoutMs: limits.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    runtime: options.runtime,
    stopTimeoutMs: options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS,
  };
}

const TMPFS_FIELDS = ['tmpBytes', 'homeBytes', 'shmBytes'] as const;

/**
 * A tmpfs larger than the memory limit could never be filled (its pages are charged to the same
 * cgroup), so a size given over it is refused with that reason. The sum of the mounts may exceed the
 * limit: the sizes are ceilings, not reservations, and an agent that fills them runs out of memory
 * first (reported as `oom`). Defaults are never refused, so a small --memory keeps working.
 */
function checkTmpfsFitsMemory(asked: LimitsInput, limits: SandboxLimits): void {
  const problems: Problem[] = TMPFS_FIELDS.filter(
    (field) => asked[field] !== undefined && limits[field] > limits.memoryBytes,
  ).map((field) => ({
    code: 'E_LIMIT_INVALID',
    path: `limits.${field}`,
    message: `${formatBytes(limits[field])} is over the memory limit of ${formatBytes(limits.memoryBytes)}; tmpfs pages count against the memory limit, so this mount could never be filled.`,
    fix: `Give at most ${limits.memoryBytes} bytes, or raise limits.memoryBytes.`,
  }));
  if (problems.length > 0) throw new ValidationError(problems, 'sandbox options');
}
