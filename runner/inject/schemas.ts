/**
 * zod schemas for a manifest's connections (all four modes), exactly as DESIGN §4. Objects are
 * strict: an unknown field is refused, not ignored. Rules that zod's built-ins cannot name carry
 * their own problem code through `params` (see runner/validation.ts and problem-codes.ts).
 */
import { z } from 'zod';
import {
  CONNECTION_ID_PATTERN,
  ENV_NAME_PATTERN,
  FIELD_KEY_PATTERN,
  FILE_NAME_PATTERN,
  FILE_REF_PREFIX,
  isReservedEnvName,
} from './names.ts';
import { PROBLEM_CODES, type ProblemCode, problemParams } from './problem-codes.ts';

/** Default cap on all files of one sandbox together (file_upload files and secret_input `file`s). */
export const DEFAULT_MAX_TOTAL_FILE_BYTES = 8 * 1024 * 1024;
export const MAX_CONNECTIONS = 64;
export const CONNECTION_MODES = ['secret_input', 'oauth_redirect', 'file_upload', 'browser_login'] as const;
export type ConnectionMode = (typeof CONNECTION_MODES)[number];

type RefineCtx = z.core.$RefinementCtx<unknown>;

/**
 * Run a refinement even when the shape had problems, so one answer lists every problem. Such a
 * refinement sees the raw input and reads it defensively.
 */
const ALWAYS = { when: () => true };

function issue(ctx: RefineCtx, code: ProblemCode, message: string, path: PropertyKey[]): void {
  ctx.addIssue({ code: 'custom', message, params: problemParams(code), path });
}

/** A string refined by a pattern, reporting `code` instead of zod's generic format error. */
function named(pattern: RegExp, code: ProblemCode, what: string) {
  return z.string().superRefine((value, ctx) => {
    if (!pattern.test(value)) {
      issue(ctx, code, `Invalid ${what} ${JSON.stringify(value)}: ${PROBLEM_CODES[code].summary}`, []);
    }
  });
}

export const connectionIdSchema = named(CONNECTION_ID_PATTERN, 'E_CONNECTION_ID_INVALID', 'connection id');
export const fileNameSchema = named(FILE_NAME_PATTERN, 'E_FILE_NAME_INVALID', 'file name');
const fieldKeySchema = named(FIELD_KEY_PATTERN, 'E_FIELD_KEY_INVALID', 'field key');

/** `{ "ENV_NAME": "field_key" | "file:<name>" }`; names are checked here, targets per mode. */
const envSchema = z.record(z.string(), z.string()).superRefine((env, ctx) => {
  for (const name of Object.keys(env)) {
    if (!ENV_NAME_PATTERN.test(name)) {
      issue(ctx, 'E_ENV_NAME_INVALID', `Invalid env name ${JSON.stringify(name)}.`, [name]);
    } else if (isReservedEnvName(name)) {
      issue(ctx, 'E_ENV_NAME_RESERVED', `Env name ${name} is reserved.`, [name]);
    }
  }
});

const common = {
  id: connectionIdSchema,
  label: z.string().min(1).max(200).optional(),
  /** Default true: a required connection without a credential refuses the run. */
  required: z.boolean().optional(),
};

export const secretFieldSchema = z.strictObject({
  key: fieldKeySchema,
  label: z.string().min(1).max(200).optional(),
  /** Default true. Secret values are masked in output and must be at least 8 characters. */
  secret: z.boolean().optional(),
});

export const fileDeclSchema = z.strictObject({
  name: fileNameSchema,
  label: z.string().min(1).max(200).optional(),
  /** Per-file cap in bytes; the sandbox's total cap (8 MiB by default) applies in any case. */
  maxBytes: z.number().int().positive().max(DEFAULT_MAX_TOTAL_FILE_BYTES).optional(),
});

function unique(
  ctx: RefineCtx,
  values: unknown[],
  code: ProblemCode,
  what: string,
  at: (i: number) => PropertyKey[],
) {
  const seen = new Set<unknown>();
  values.forEach((value, i) => {
    if (typeof value !== 'string') return;
    if (seen.has(value)) issue(ctx, code, `Duplicate ${what} ${JSON.stringify(value)}.`, at(i));
    seen.add(value);
  });
}

/** Each env mapping must name a declared field key or `file:<declared file>`. */
function checkEnvTargets(ctx: RefineCtx, env: unknown, fields: Set<string>, files: Set<string>): void {
  if (typeof env !== 'object' || env === null) return;
  for (const [name, target] of Object.entries(env)) {
    if (typeof target !== 'string') continue;
    const ok = target.startsWith(FILE_REF_PREFIX)
      ? files.has(target.slice(FILE_REF_PREFIX.length))
      : fields.has(target);
    if (!ok) {
      const known = [...fields, ...[...files].map((f) => `${FILE_REF_PREFIX}${f}`)].join(', ') || 'none';
      issue(
        ctx,
        'E_ENV_TARGET_UNKNOWN',
        `Env ${name} maps to ${JSON.stringify(target)}, which this connection does not declare (declared: ${known}).`,
        ['env', name],
      );
    }
  }
}

const keysOf = (items: unknown, key: string): string[] =>
  Array.isArray(items)
    ? items
        .map((item) => (item as Record<string, unknown> | null)?.[key])
        .filter((v) => typeof v === 'string')
    : [];

export const secretInputConnectionSchema = z
  .strictObject({
    ...common,
    mode: z.literal('secret_input'),
    fields: z.array(secretFieldSchema).min(1).max(32),
    env: envSchema.optional(),
    /** Also write the fields, as JSON, to /tmp/grexal/<id>/<file>. */
    file: fileNameSchema.optional(),
  })
  .superRefine((c, ctx) => {
    unique(ctx, keysOf(c.fields, 'key'), 'E_FIELD_KEY_DUPLICATE', 'field key', (i) => ['fields', i, 'key']);
    const files = typeof c.file === 'string' ? [c.file] : [];
    checkEnvTargets(ctx, c.env, new Set(keysOf(c.fields, 'key')), new Set(files));
  }, ALWAYS);

/** How long a broken connection's `connect` calls wait for a new credential, by default: 10 minutes. */
export const DEFAULT_RECONNECT_TIMEOUT_MS = 10 * 60_000;
/** Longest wait a manifest or the orchestrator may ask for: a day (a sandbox's own timeout caps it too). */
export const MAX_RECONNECT_TIMEOUT_MS = 24 * 60 * 60_000;
export const reconnectTimeoutMsSchema = z.number().int().min(0).max(MAX_RECONNECT_TIMEOUT_MS);

export const oauthRedirectConnectionSchema = z.strictObject({
  ...common,
  mode: z.literal('oauth_redirect'),
  provider: z.string().min(1).max(64),
  scopes: z.array(z.string().min(1).max(256)).max(64).optional(),
  /** How long `connect` waits for a new credential once the connection breaks; 0: answer `broken` at once. Default 600 000. */
  reconnectTimeoutMs: reconnectTimeoutMsSchema.optional(),
});

export const fileUploadConnectionSchema = z
  .strictObject({
    ...common,
    mode: z.literal('file_upload'),
    files: z.array(fileDeclSchema).min(1).max(16),
    env: envSchema.optional(),
  })
  .superRefine((c, ctx) => {
    unique(ctx, keysOf(c.files, 'name'), 'E_FILE_NAME_DUPLICATE', 'file name', (i) => ['files', i, 'name']);
    checkEnvTargets(ctx, c.env, new Set(), new Set(keysOf(c.files, 'name')));
  }, ALWAYS);

export const browserLoginConnectionSchema = z.strictObject({
  ...common,
  mode: z.literal('browser_login'),
  loginUrl: z.url({ protocol: /^https?$/ }).optional(),
});

export const connectionSchema = z.discriminatedUnion(
  'mode',
  [
    secretInputConnectionSchema,
    oauthRedirectConnectionSchema,
    fileUploadConnectionSchema,
    browserLoginConnectionSchema,
  ],
  { error: () => `mode must be one of ${CONNECTION_MODES.join(', ')}.` },
);

/** Cross-connection rules; runs even when an element failed, so it reads the raw input defensively. */
function checkAcrossConnections(connections: unknown, ctx: RefineCtx): void {
  if (!Array.isArray(connections)) return;
  if (connections.length > MAX_CONNECTIONS) {
    issue(
      ctx,
      'E_CONNECTIONS_TOO_MANY',
      `${connections.length} connections declared; at most ${MAX_CONNECTIONS}.`,
      [],
    );
  }
  unique(ctx, keysOf(connections, 'id'), 'E_CONNECTION_ID_DUPLICATE', 'connection id', (i) => [i, 'id']);
  const envOwner = new Map<string, string>();
  connections.forEach((c, i) => {
    const env = (c as { env?: unknown } | null)?.env;
    if (typeof env !== 'object' || env === null) return;
    for (const name of Object.keys(env)) {
      const owner = envOwner.get(name);
      if (owner !== undefined) {
        issue(ctx, 'E_ENV_NAME_DUPLICATE', `Env ${name} is already set by connection ${owner}.`, [
          i,
          'env',
          name,
        ]);
      } else envOwner.set(name, String((c as { id?: unknown }).id));
    }
  });
}

export const connectionsSchema = z.array(connectionSchema).superRefine(checkAcrossConnections, ALWAYS);

export const manifestSchema = z.strictObject({ connections: connectionsSchema });

export type SecretInputConnection = z.output<typeof secretInputConnectionSchema>;
export type OauthRedirectConnection = z.output<typeof oauthRedirectConnectionSchema>;
export type FileUploadConnection = z.output<typeof fileUploadConnectionSchema>;
export type BrowserLoginConnection = z.output<typeof browserLoginConnectionSchema>;
export type Connection = z.output<typeof connectionSchema>;
export type Manifest = z.output<typeof manifestSchema>;

export function isRequired(connection: Connection): boolean {
  return connection.required !== false;
}
