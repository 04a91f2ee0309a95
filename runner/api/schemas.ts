/**
 * The zod schemas of the API: the request body is validated with them, and /openapi.json is
 * generated from them. The sandbox options and the manifest come from their own modules, so the
 * API accepts exactly what the library accepts.
 */
import { z } from 'zod';
import {
  credentialSchema,
  credentialsSchema,
  manifestSchema,
  reconnectTimeoutMsSchema,
} from '../inject/index.ts';
import { networkPolicySchema } from '../network/index.ts';
import { EXIT_REASONS, SANDBOX_STATES, sandboxOptionsSchema } from '../sandbox/index.ts';

const METADATA_MAX_KEYS = 32;

/** Free-form labels for the caller's own bookkeeping (user id, job id, …); never interpreted. */
export const metadataSchema = z
  .record(
    z.string().regex(/^[A-Za-z0-9_.:/-]{1,64}$/, 'Keys are 1-64 of A-Z a-z 0-9 _ . : / -.'),
    z.string().max(1024),
  )
  .refine((value) => Object.keys(value).length <= METADATA_MAX_KEYS, {
    message: `More than ${METADATA_MAX_KEYS} metadata keys.`,
    params: { code: 'E_FIELD_INVALID', fix: `Send at most ${METADATA_MAX_KEYS} keys.` },
  });

/**
 * `POST /v1/sandboxes`. Credentials are checked against the manifest by runner/inject after this
 * shape check (their problems come in a second answer, with `credentials.<id>` paths).
 */
export const createSandboxBodySchema = sandboxOptionsSchema
  .extend({
    /** `{ connections: [...], network? }` as in grexal.json; `network` is checked by runner/network. */
    manifest: manifestSchema.extend({ network: z.unknown().optional() }).optional(),
    /** The orchestrator's network policy; it narrows the manifest's. Default "public". */
    network: networkPolicySchema.optional(),
    /** Keyed by connection id; see DESIGN §4 for each mode's shape. */
    credentials: z.record(z.string(), z.unknown()).optional(),
    /** Overrides every connection's reconnectTimeoutMs: how long a broken connection's connect waits. */
    reconnectTimeoutMs: reconnectTimeoutMsSchema.optional(),
    metadata: metadataSchema.optional(),
    /**
     * Serve from this pool only. Without it any pool matching image, desktop, limits and runtime
     * exactly serves; no match or an empty pool is a cold create (docs/pools.md).
     */
    pool: z.string().max(63).optional(),
  })
  .strict();

export type CreateSandboxBody = z.input<typeof createSandboxBodySchema>;

/** The documented (not the validating) shape of `credentials`, for /openapi.json. */
export const documentedCreateSandboxBodySchema = createSandboxBodySchema.extend({
  credentials: credentialsSchema.optional(),
});

const state = z.enum(SANDBOX_STATES);
const exitReason = z.enum(EXIT_REASONS);

export const openTakeoverSchema = z.object({
  id: z.string(),
  url: z.string().describe('The link for the user; it carries the takeover token.'),
  expiresAt: z.string(),
  reason: z.string().optional(),
  connectionId: z.string().optional(),
  label: z.string().optional(),
});

export const sandboxViewSchema = z.object({
  id: z.string(),
  state,
  image: z.string(),
  createdAt: z.string(),
  endedAt: z.string().optional(),
  exitCode: z.number().int().nullable(),
  exitReason: exitReason.nullable(),
  oomKilled: z
    .boolean()
    .nullable()
    .describe("Once ended: the cgroup's record that a process of the sandbox was killed for memory."),
  exitMessage: z
    .string()
    .optional()
    .describe('For engine_lost, engine_stopped and killed: what happened and the fix.'),
  takeover: openTakeoverSchema.nullable(),
  metadata: z.record(z.string(), z.string()),
  network: z.object({ mode: z.enum(['none', 'public', 'allow']), allow: z.array(z.string()).optional() }),
  warm: z.boolean().describe('A pool entry served the run.'),
});

/**
 * `PUT /v1/sandboxes/:id/credentials/:connectionId`: the connection's credential, the shape of its
 * mode exactly as in a create's `credentials` (checked against the manifest by runner/inject).
 */
export const credentialChangeBodySchema = z.unknown();
/** The documented shape, for /openapi.json. */
export const documentedCredentialChangeBodySchema = credentialSchema;

export const credentialChangedSchema = z.object({
  connectionId: z.string(),
  outcome: z
    .enum(['restored', 'updated'])
    .describe('restored: the connection was broken and the calls waiting for it go on; updated: a rotation.'),
});

export const createdSandboxSchema = z.object({
  id: z.string(),
  state,
  warm: z.boolean().describe('A pool entry serves the run (it was started before the request).'),
});

/** `PUT /v1/pools/:name` answers, and `GET`: the pool's spec and where its entries are. */
export const poolStatusSchema = z.object({
  name: z.string(),
  image: z.string(),
  desktop: z.unknown().optional(),
  limits: z.unknown().optional(),
  runtime: z.unknown().optional(),
  size: z.number().int(),
  maxIdleMs: z.number().int(),
  ready: z.number().int().describe('Entries started, waiting for their bootstrap, claimable now.'),
  starting: z.number().int(),
  stale: z
    .number()
    .int()
    .describe('Entries of an image whose id changed; retired one at a time, never claimed.'),
  warmClaims: z.number().int(),
  failures: z.number().int().describe('Entries that failed to start or died while idle.'),
  failing: z
    .object({
      consecutiveFailures: z.number().int(),
      code: z.string(),
      message: z.string(),
      retryAt: z.string(),
    })
    .optional()
    .describe('While entries keep failing: the last error, and when the next single attempt comes.'),
  limitedBy: z
    .literal('max-sandboxes')
    .optional()
    .describe(
      'While the pool is below its size because live sandboxes and entries fill --max-sandboxes (live runs come first).',
    ),
});

/** `GET /readyz` when ready. */
export const readyReportSchema = z.object({
  ready: z.literal(true),
  engine: z.string().describe('How the engine was reached, e.g. unix:///var/run/docker.sock.'),
  images: z.array(z.string()).describe('The images found in the engine.'),
});

export const errorEnvelopeSchema = z.object({
  error: z.object({
    code: z.string().describe('A stable code from docs/errors.md.'),
    message: z.string(),
    details: z
      .array(
        z.object({ code: z.string(), path: z.string(), message: z.string(), fix: z.string().optional() }),
      )
      .optional()
      .describe(
        'For E_VALIDATION and E_MISSING_CREDENTIALS: every problem found; for E_NOT_READY: every failed check.',
      ),
  }),
});
