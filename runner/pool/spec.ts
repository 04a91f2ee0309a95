/**
 * What a pool is asked to keep: N started sandboxes of one image, desktop, limits and runtime.
 * Validated like every input (zod, codes, paths, fixes) before anything exists.
 */
import { z } from 'zod';
import { type Problem, ValidationError } from '../errors.ts';
import { parseOrThrow } from '../validation.ts';

export const POOL_MAX_SIZE = 64;
export const DEFAULT_POOL_SIZE = 2;
export const DEFAULT_MAX_IDLE_MS = 30 * 60_000;
const POOL_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export const poolNameSchema = z.string().refine((name) => POOL_NAME.test(name), {
  message: 'Not a pool name.',
  params: {
    code: 'E_POOL_NAME_INVALID',
    fix: 'Use 1-63 of a-z, 0-9, _ and -, starting with a letter or digit.',
  },
});

/**
 * The body of `PUT /v1/pools/:name`. `desktop`, `limits` and `runtime` mean what they mean on
 * `POST /v1/sandboxes`; a sandbox request is served from the pool when they match exactly.
 */
export const poolBodySchema = z
  .object({
    image: z.string().max(512),
    desktop: z.unknown().optional(),
    limits: z.unknown().optional(),
    runtime: z.unknown().optional(),
    size: z
      .number()
      .int()
      .refine((n) => n >= 0 && n <= POOL_MAX_SIZE, {
        message: `Outside 0..${POOL_MAX_SIZE}.`,
        params: {
          code: 'E_POOL_SIZE_INVALID',
          fix: `Give a size from 0 to ${POOL_MAX_SIZE}; each idle entry holds memory (docs/pools.md).`,
        },
      })
      .optional(),
    /** An entry idle this long is replaced by a fresh one. Default 30 min. */
    maxIdleMs: z
      .number()
      .int()
      .refine((n) => n >= 1_000 && n <= 7 * 86_400_000, {
        message: 'Outside 1 s..7 days.',
        params: { code: 'E_POOL_MAX_IDLE_INVALID', fix: 'Give e.g. 1800000 (30 min).' },
      })
      .optional(),
  })
  .strict();

export interface PoolSpec {
  name: string;
  image: string;
  /** As on a sandbox request: true or { width, height }; validated by runner/sandbox. */
  desktop?: unknown;
  limits?: unknown;
  runtime?: unknown;
  size: number;
  maxIdleMs: number;
}

/** What a library caller gives `Runner.setPool`: the name and the PUT body, defaults unfilled. */
export type PoolRequest = { name: string } & z.input<typeof poolBodySchema>;

/** Validates a pool's name and body; the sandbox options within are validated by whoever makes entries. */
export function parsePoolSpec(name: unknown, body: unknown): PoolSpec {
  const checkedName = parseOrThrow(poolNameSchema, name, 'pool', 'name');
  const parsed = parseOrThrow(poolBodySchema, body, 'pool');
  return {
    name: checkedName,
    image: parsed.image,
    ...(parsed.desktop === undefined ? {} : { desktop: parsed.desktop }),
    ...(parsed.limits === undefined ? {} : { limits: parsed.limits }),
    ...(parsed.runtime === undefined ? {} : { runtime: parsed.runtime }),
    size: parsed.size ?? DEFAULT_POOL_SIZE,
    maxIdleMs: parsed.maxIdleMs ?? DEFAULT_MAX_IDLE_MS,
  };
}

const FLAG_FIX =
  'Write --pool NAME=IMAGE[,desktop][,runtime=RUNTIME][,size=N][,maxIdle=30m], e.g. --pool sh=grexal/agent,size=4.';

/** `--pool name=image[,desktop][,runtime=…][,size=N][,maxIdle=30m]` → the PUT body's fields. */
export function parsePoolFlag(
  text: string,
  parseDurationMs: (text: string) => number | undefined,
  index = 0,
): PoolSpec {
  const path = `--pool[${index}]`;
  const fail = (message: string): never => {
    const problem: Problem = { code: 'E_POOL_FLAG_INVALID', path, message, fix: FLAG_FIX };
    throw new ValidationError([problem], 'pool');
  };
  const eq = text.indexOf('=');
  if (eq <= 0) fail(`'${text.slice(0, 80)}' has no NAME=IMAGE.`);
  const name = text.slice(0, eq);
  const [image, ...options] = text.slice(eq + 1).split(',');
  if (!image) fail(`Pool '${name.slice(0, 63)}' has no image.`);
  const body: Record<string, unknown> = { image };
  for (const option of options) {
    const [key, value, ...rest] = option.split('=');
    if (key === 'desktop' && value === undefined) body['desktop'] = true;
    else if (key === 'runtime' && value) body['runtime'] = value;
    else if (key === 'size' && value && rest.length === 0) body['size'] = Number(value);
    else if (key === 'maxIdle' && value) {
      const ms = parseDurationMs(value);
      if (ms === undefined) fail(`maxIdle '${value.slice(0, 40)}' is not a duration.`);
      body['maxIdleMs'] = ms;
    } else fail(`Unknown pool option '${option.slice(0, 60)}'.`);
  }
  return parsePoolSpec(name, body);
}
